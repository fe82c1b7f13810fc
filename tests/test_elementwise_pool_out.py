"""out= on the activations (relu, tanh, sigmoid), the pooling ops and all their backwards: the
result written into the caller's array is the allocating call's result, bit for bit, on both
CPU rows; a wrong `out` is refused with an error naming it and the shapes, never converted."""
import numpy as np
import pytest

import minicnn

DTYPES = [np.float32, np.float64]
# (kernel_size, stride, padding): the written-out 2x2 path, the general path with and without
# padding (with padding the fast row crops into `out`, without it writes there directly), overlap
POOLS = [(2, 2, 0), (3, 2, 1), (2, 2, 1), (3, 1, 0)]


def _x(dtype, shape=(2, 3, 9, 8), seed=0):
    x = np.random.default_rng(seed).standard_normal(shape).astype(dtype)
    x[0, 0, 0, :3] = 0          # relu's derivative at 0, and ties for max pooling
    x[-1, -1, -1, :4] = 0.5
    return x


def _check(call, want):
    out = np.full(want.shape, np.nan, dtype=want.dtype)     # NaN: every element must be written
    got = call(out)
    assert got is out
    assert got.tobytes() == want.tobytes()                  # bitwise, NaN patterns and signed zeros included


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", ["relu", "tanh", "sigmoid"])
def test_activation_out_is_bitwise_the_allocating_call(name, dtype):
    f, b = getattr(minicnn, name), getattr(minicnn, name + "_backward")
    x = _x(dtype)
    g = _x(dtype, seed=1)
    y = f(x)
    _check(lambda out: f(x, out=out), y)
    _check(lambda out: b(g, x, out=out), b(g, x))
    if name != "relu":                                        # the backward from the kept output
        _check(lambda out: b(g, x, y=y, out=out), b(g, x, y=y))


@pytest.mark.parametrize("impl", ["fast", "loop"])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", ["max_pool2d", "avg_pool2d"])
def test_pool_out_is_bitwise_the_allocating_call(name, dtype, impl):
    f, b = getattr(minicnn, name), getattr(minicnn, name + "_backward")
    x = _x(dtype)
    for k, s, p in POOLS:
        y = f(x, k, s, p, impl=impl)
        _check(lambda out: f(x, k, s, p, impl=impl, out=out), y)
        g = _x(dtype, y.shape, seed=2)
        _check(lambda out: b(g, x, k, s, p, impl=impl, out=out), b(g, x, k, s, p, impl=impl))


def test_pool_out_called_again_with_stale_contents():
    """A reused `out` holds the previous call's numbers: the backwards that add into their
    result must clear it first (the general path), the 2x2 path overwrites every cell."""
    x = _x(np.float32, (2, 3, 9, 9))
    for name in ("max_pool2d", "avg_pool2d"):
        f, b = getattr(minicnn, name), getattr(minicnn, name + "_backward")
        for k, s, p in POOLS:
            y = f(x, k, s, p)
            g = _x(np.float32, y.shape, seed=3)
            out = np.full(x.shape, 5.0, np.float32)
            b(g, x, k, s, p, out=out)
            np.testing.assert_array_equal(b(g, x, k, s, p, out=out), b(g, x, k, s, p))


def _calls(x):
    """(op name, call with out=, the result's shape) for each op."""
    g = _x(x.dtype, seed=1)
    gp = _x(x.dtype, (2, 3, 4, 4), seed=2)
    return [("relu", lambda out: minicnn.relu(x, out=out), x.shape),
            ("relu_backward", lambda out: minicnn.relu_backward(g, x, out=out), x.shape),
            ("tanh", lambda out: minicnn.tanh(x, out=out), x.shape),
            ("tanh_backward", lambda out: minicnn.tanh_backward(g, x, out=out), x.shape),
            ("sigmoid", lambda out: minicnn.sigmoid(x, out=out), x.shape),
            ("sigmoid_backward", lambda out: minicnn.sigmoid_backward(g, x, out=out), x.shape),
            ("max_pool2d", lambda out: minicnn.max_pool2d(x, 2, out=out), (2, 3, 4, 4)),
            ("max_pool2d_backward", lambda out: minicnn.max_pool2d_backward(gp, x, 2, out=out), x.shape),
            ("avg_pool2d", lambda out: minicnn.avg_pool2d(x, 2, out=out), (2, 3, 4, 4)),
            ("avg_pool2d_backward", lambda out: minicnn.avg_pool2d_backward(gp, x, 2, out=out), x.shape)]


def _shape(s):
    return r"\(" + ", ".join(str(d) for d in s) + r"\)"


@pytest.mark.parametrize("kind", ["shape", "dtype", "strided", "readonly", "list", "overlap"])
def test_a_wrong_out_is_refused_by_name(kind):
    x = _x(np.float32)
    for op, call, shape in _calls(x):
        wide = shape[:-1] + (shape[-1] + 1,)
        if kind == "shape":
            bad, exc = np.empty(wide, np.float32), ValueError
            pattern = rf"{op}: out must have shape {_shape(shape)}, dtype float32 \(the result's\), " \
                      rf"got shape {_shape(wide)}, dtype float32"
        elif kind == "dtype":
            bad, exc = np.empty(shape, np.float64), ValueError
            pattern = rf"{op}: out must have shape {_shape(shape)}, dtype float32 \(the result's\), " \
                      rf"got shape {_shape(shape)}, dtype float64"
        elif kind == "strided":
            bad, exc = np.empty(shape[:-1] + (2 * shape[-1],), np.float32)[..., ::2], ValueError
            pattern = rf"{op}: out \(shape {_shape(shape)}\) must be C-contiguous"
        elif kind == "readonly":
            bad, exc = np.empty(shape, np.float32), ValueError
            bad.flags.writeable = False
            pattern = rf"{op}: out \(shape {_shape(shape)}\) is read-only"
        elif kind == "list":
            bad, exc = np.zeros(shape, np.float32).tolist(), TypeError
            pattern = rf"{op}: out must be a numpy array of shape {_shape(shape)}, dtype float32, got list"
        else:
            if shape != x.shape:          # an output smaller than x: a view of x's memory
                bad = x.reshape(-1)[:int(np.prod(shape))].reshape(shape)
            else:
                bad = x
            exc = ValueError
            pattern = rf"{op}: out \(shape {_shape(shape)}\) shares memory with the input x \(shape {_shape(x.shape)}\)"
        before = x.copy()
        with pytest.raises(exc, match=pattern):
            call(bad)
        np.testing.assert_array_equal(x, before)        # refused before anything was written
