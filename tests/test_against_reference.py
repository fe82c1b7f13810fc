"""Every minicnn op against the independent NumPy oracle in tests/reference.py.

For each op: forward and backward on random shapes, strides, paddings and
dilations; float32 and float64; both implementations (impl="loop" and "fast")
on the CPU; output dtype; non-contiguous inputs; inputs left untouched.

conv2d, the pooling ops and their backwards come from the `F` fixture, so the
CUDA run (MINICNN_TEST_BACKEND=cuda) repeats these tests on minicnn.cuda, with
fewer cases because the CUDA simulator is slow.
"""
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import minicnn
import reference as R
from backend_under_test import BACKEND, need

CPU = BACKEND == "cpu"
IMPLS = ["loop", "fast"] if CPU else [None]  # the CUDA backend takes no impl=
CASES = range(10 if CPU else 2)
DTYPES = [np.float32, np.float64]
HYPO = settings(max_examples=25 if CPU else 3, deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


# --------------------------------------------------------------------------- helpers

def impl_kw(impl):
    return {} if impl is None else {"impl": impl}


def call(fn, *args, **kwargs):
    """fn(*args, **kwargs), asserting that no array argument was written to."""
    before = [np.array(a, copy=True) if isinstance(a, np.ndarray) else None for a in args]
    out = fn(*args, **kwargs)
    for i, (a, b) in enumerate(zip(args, before)):
        if b is not None:
            assert a.dtype == b.dtype and a.shape == b.shape
            np.testing.assert_array_equal(a, b, err_msg=f"{getattr(fn, '__name__', fn)} modified argument {i}")
    return out


def assert_matches(got, want, dtype, what=""):
    """got must have want's shape, the given dtype, and match within dtype-dependent
    tolerances (atol scaled to the largest magnitude in want)."""
    assert isinstance(got, np.ndarray), f"{what}: expected an ndarray, got {type(got).__name__}"
    assert got.shape == want.shape, f"{what}: shape {got.shape}, expected {want.shape}"
    assert got.dtype == np.dtype(dtype), f"{what}: dtype {got.dtype}, expected {np.dtype(dtype)}"
    scale = max(1.0, float(np.abs(want).max(initial=0.0)))
    tol = 1e-4 if np.dtype(dtype) == np.float32 else 1e-10
    np.testing.assert_allclose(got, want, rtol=tol, atol=tol * scale, err_msg=what)


def randn(rng, shape, dtype):
    return rng.standard_normal(shape).astype(dtype)


def noncontiguous(a, rng):
    """A view with a's values that is not C-contiguous: a transposed copy transposed
    back, or every other slice (along a's longest axis) of an array twice as big."""
    view = np.ascontiguousarray(a.T).T
    if view.flags.c_contiguous or rng.random() < 0.5:
        axis = int(np.argmax(a.shape))
        big_shape = list(a.shape)
        big_shape[axis] *= 2
        big = np.full(big_shape, 1e6, dtype=a.dtype)  # garbage in between that must never be read
        every_other = tuple(slice(None, None, 2) if i == axis else slice(None) for i in range(a.ndim))
        big[every_other] = a
        view = big[every_other]
    assert not view.flags.c_contiguous or a.size <= 1
    np.testing.assert_array_equal(view, a)
    return view


def maybe_pair(rng, lo, hi):
    """An int in [lo, hi], or a (rows, cols) pair of them."""
    if rng.random() < 0.5:
        return int(rng.integers(lo, hi + 1))
    return int(rng.integers(lo, hi + 1)), int(rng.integers(lo, hi + 1))


# --------------------------------------------------------------------------- random configurations

def conv2d_case(rng):
    """Random small conv2d problem: shapes and hyper-parameters that fit."""
    kh, kw = int(rng.integers(1, 5)), int(rng.integers(1, 5))
    stride, dilation = maybe_pair(rng, 1, 3), maybe_pair(rng, 1, 2)
    (sh, sw), (dh, dw) = R.pair(stride), R.pair(dilation)
    u = rng.random()
    if u < 0.1:
        padding = "valid"
    elif u < 0.2:
        padding = "full"
    elif u < 0.3 and (sh, sw) == (1, 1) and dh * (kh - 1) % 2 == 0 and dw * (kw - 1) % 2 == 0:
        padding = "same"
    else:
        padding = maybe_pair(rng, 0, 2)
    ph, pw = R.resolve_padding(padding, (kh, kw), (sh, sw), (dh, dw))
    h = int(rng.integers(max(1, dh * (kh - 1) + 1 - 2 * ph), 11))
    w = int(rng.integers(max(1, dw * (kw - 1) + 1 - 2 * pw), 11))
    return dict(N=int(rng.integers(1, 3)), C=int(rng.integers(1, 4)), K=int(rng.integers(1, 5)),
                H=h, W=w, kh=kh, kw=kw, stride=stride, padding=padding, dilation=dilation)


def conv2d_data(rng, c, dtype, bias=True):
    x = randn(rng, (c["N"], c["C"], c["H"], c["W"]), dtype)
    w = randn(rng, (c["K"], c["C"], c["kh"], c["kw"]), dtype)
    b = randn(rng, (c["K"],), dtype) if bias else None
    return x, w, b


def conv_kw(c):
    return dict(stride=c["stride"], padding=c["padding"], dilation=c["dilation"])


def pool_case(rng):
    """Random small pooling problem: padding <= kernel // 2 per axis."""
    kernel = maybe_pair(rng, 1, 4)
    kh, kw = R.pair(kernel)
    stride = None if rng.random() < 0.3 else maybe_pair(rng, 1, 3)
    padding = (int(rng.integers(0, kh // 2 + 1)), int(rng.integers(0, kw // 2 + 1)))
    if padding[0] == padding[1] and rng.random() < 0.5:
        padding = padding[0]
    ph, pw = R.pair(padding)
    h = int(rng.integers(max(1, kh - 2 * ph), 11))
    w = int(rng.integers(max(1, kw - 2 * pw), 11))
    return dict(N=int(rng.integers(1, 3)), C=int(rng.integers(1, 4)), H=h, W=w,
                kernel_size=kernel, stride=stride, padding=padding)


def distinct_values(rng, shape, dtype):
    """Values with no ties anywhere (a shuffled arange, spaced 0.25 apart)."""
    n = int(np.prod(shape))
    return ((rng.permutation(n) - n / 2) * 0.25).reshape(shape).astype(dtype)


# --------------------------------------------------------------------------- the reference itself

def test_reference_hand_examples():
    img = np.arange(9.0).reshape(3, 3)
    k = np.array([[1.0, 2.0], [3.0, 4.0]])
    np.testing.assert_array_equal(R.correlate2d(img, k), [[27, 37], [57, 67]])
    np.testing.assert_array_equal(R.convolve2d(img, k), [[13, 23], [43, 53]])
    np.testing.assert_array_equal(R.convolve2d(img, k, padding="full"), R.convolve2d_full(img, k))
    x = np.ones((1, 1, 3, 3))
    np.testing.assert_allclose(R.avg_pool2d(x, 3, 1, 1, count_include_pad=False), np.ones((1, 1, 3, 3)))
    np.testing.assert_allclose(R.avg_pool2d(x, 3, 1, 1)[0, 0, 0, 0], 4 / 9)
    np.testing.assert_array_equal(R.max_pool2d_backward(np.ones((1, 1, 1, 1)), np.ones((1, 1, 2, 2)), 2),
                                  [[[[1, 0], [0, 0]]]])


def test_reference_adjoints(rng):
    """The reference backwards are the adjoints of the reference forwards."""
    x, w = rng.standard_normal((2, 3, 9, 8)), rng.standard_normal((4, 3, 3, 2))
    kw = dict(stride=(2, 3), padding=(1, 2), dilation=(2, 1))
    y = R.conv2d(x, w, **kw)
    g = rng.standard_normal(y.shape)
    gx, gw, _ = R.conv2d_backward(g, x, w, **kw)
    dx, dw = rng.standard_normal(x.shape), rng.standard_normal(w.shape)
    np.testing.assert_allclose(np.sum(R.conv2d(dx, w, **kw) * g), np.sum(gx * dx))
    np.testing.assert_allclose(np.sum(R.conv2d(x, dw, **kw) * g), np.sum(gw * dw))
    # conv_transpose2d is conv2d's input-adjoint
    y = R.conv2d(x, w, stride=2, padding=1)
    g = rng.standard_normal(y.shape)
    gx = R.conv2d_backward(g, x, w, stride=2, padding=1)[0]
    op = (x.shape[2] - ((y.shape[2] - 1) * 2 - 2 + 3), x.shape[3] - ((y.shape[3] - 1) * 2 - 2 + 2))
    np.testing.assert_allclose(R.conv_transpose2d(g, w, stride=2, padding=1, output_padding=op), gx)
    # conv1d is conv2d with one row
    x1, w1 = rng.standard_normal((2, 3, 11)), rng.standard_normal((4, 3, 3))
    np.testing.assert_allclose(R.conv1d(x1, w1, stride=2, padding=1, dilation=2),
                               R.conv2d(x1[:, :, None], w1[:, :, None], stride=2, padding=(0, 1), dilation=2)[:, :, 0])


# --------------------------------------------------------------------------- conv2d

@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("dtype", DTYPES)
def test_conv2d_forward(F, rng, dtype, impl, case):
    need(F, "conv2d")
    c = conv2d_case(rng)
    x, w, b = conv2d_data(rng, c, dtype, bias=case % 2 == 0)
    got = call(F.conv2d, x, w, b, **conv_kw(c), **impl_kw(impl))
    assert_matches(got, R.conv2d(x, w, b, **conv_kw(c)), dtype, f"conv2d {c}")


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("dtype", DTYPES)
def test_conv2d_backward(F, rng, dtype, impl, case):
    need(F, "conv2d_backward")
    c = conv2d_case(rng)
    x, w, _ = conv2d_data(rng, c, dtype, bias=False)
    g = randn(rng, R.conv2d(x, w, **conv_kw(c)).shape, dtype)
    got = call(F.conv2d_backward, g, x, w, **conv_kw(c), **impl_kw(impl))
    assert len(got) == 3
    for name, a, e in zip(("grad_x", "grad_weight", "grad_bias"), got, R.conv2d_backward(g, x, w, **conv_kw(c))):
        assert_matches(a, e, dtype, f"conv2d_backward {name} {c}")


@HYPO
@given(seed=st.integers(0, 2**32 - 1), use_f32=st.booleans())
def test_conv2d_hypothesis(F, seed, use_f32):
    need(F, "conv2d", "conv2d_backward")
    rng = np.random.default_rng(seed)
    dtype = np.float32 if use_f32 else np.float64
    c = conv2d_case(rng)
    x, w, b = conv2d_data(rng, c, dtype)
    y = call(F.conv2d, x, w, b, **conv_kw(c))
    assert_matches(y, R.conv2d(x, w, b, **conv_kw(c)), dtype, f"conv2d {c}")
    g = randn(rng, y.shape, dtype)
    got = call(F.conv2d_backward, g, x, w, **conv_kw(c))
    for a, e in zip(got, R.conv2d_backward(g, x, w, **conv_kw(c))):
        assert_matches(a, e, dtype, f"conv2d_backward {c}")


@pytest.mark.parametrize("impl", IMPLS)
def test_conv2d_dtypes(F, rng, impl):
    need(F, "conv2d", "conv2d_backward")
    c = dict(stride=(2, 1), padding=1, dilation=1)
    x = rng.integers(-3, 4, size=(2, 2, 5, 6))
    w = rng.integers(-2, 3, size=(3, 2, 3, 2))
    g = rng.integers(-2, 3, size=R.conv2d(x, w, **c).shape)
    # integer inputs compute in float64
    assert_matches(call(F.conv2d, x, w, None, **c, **impl_kw(impl)), R.conv2d(x, w, **c), np.float64, "int conv2d")
    for a, e in zip(call(F.conv2d_backward, g, x, w, **c, **impl_kw(impl)), R.conv2d_backward(g, x, w, **c)):
        assert_matches(a, e, np.float64, "int conv2d_backward")
    xb = x > 0  # booleans count as integers
    assert_matches(call(F.conv2d, xb, w, None, **c, **impl_kw(impl)), R.conv2d(xb, w, **c), np.float64, "bool conv2d")
    # mixing float32 and float64 gives float64
    x32, w64 = x.astype(np.float32), w.astype(np.float64)
    assert call(F.conv2d, x32, w64, **c, **impl_kw(impl)).dtype == np.float64
    assert call(F.conv2d, x32, w64.astype(np.float32), np.zeros(3), **c, **impl_kw(impl)).dtype == np.float64


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("dtype", DTYPES)
def test_conv2d_noncontiguous(F, rng, dtype, impl):
    need(F, "conv2d", "conv2d_backward")
    c = dict(stride=(1, 2), padding=(2, 1), dilation=(1, 2))
    x, w, b = randn(rng, (2, 3, 7, 8), dtype), randn(rng, (4, 3, 3, 2), dtype), randn(rng, (4,), dtype)
    y = call(F.conv2d, x, w, b, **c, **impl_kw(impl))
    y_nc = call(F.conv2d, noncontiguous(x, rng), noncontiguous(w, rng), noncontiguous(b, rng), **c, **impl_kw(impl))
    tol = 1e-6 if dtype == np.float32 else 1e-13
    np.testing.assert_allclose(y_nc, y, rtol=tol, atol=tol)
    assert_matches(y_nc, R.conv2d(x, w, b, **c), dtype, "conv2d non-contiguous")
    # a strided slice of a bigger image, and a transposed (H <-> W) image
    big = randn(rng, (2, 3, 14, 8), dtype)
    assert_matches(call(F.conv2d, big[:, :, ::2], w, **c, **impl_kw(impl)), R.conv2d(big[:, :, ::2], w, **c), dtype,
                   "conv2d on x[:, :, ::2]")
    xt = big.transpose(0, 1, 3, 2)
    assert_matches(call(F.conv2d, xt, w, **c, **impl_kw(impl)), R.conv2d(xt, w, **c), dtype, "conv2d on transposed x")
    g = randn(rng, y.shape, dtype)
    got = call(F.conv2d_backward, noncontiguous(g, rng), noncontiguous(x, rng), noncontiguous(w, rng),
               **c, **impl_kw(impl))
    for a, e in zip(got, R.conv2d_backward(g, x, w, **c)):
        assert_matches(a, e, dtype, "conv2d_backward non-contiguous")


def test_conv2d_same_full_valid(F, rng):
    need(F, "conv2d")
    x, w = rng.standard_normal((1, 2, 6, 7)), rng.standard_normal((3, 2, 3, 5))
    y = call(F.conv2d, x, w, padding="same")
    assert y.shape == (1, 3, 6, 7)
    assert_matches(y, R.conv2d(x, w, padding=(1, 2)), np.float64, "same")
    assert_matches(call(F.conv2d, x, w, padding="full"), R.conv2d(x, w, padding=(2, 4)), np.float64, "full")
    assert_matches(call(F.conv2d, x, w, padding="full", dilation=2), R.conv2d(x, w, padding=(4, 8), dilation=2),
                   np.float64, "full dilated")
    assert_matches(call(F.conv2d, x, w, padding="valid"), R.conv2d(x, w), np.float64, "valid")
    with pytest.raises(ValueError):
        F.conv2d(x, w, padding="same", stride=2)
    with pytest.raises(ValueError):
        F.conv2d(x, rng.standard_normal((3, 2, 2, 3)), padding="same")


def test_conv2d_output_size_matches_shapes_helper(rng):
    for _ in range(30):
        c = conv2d_case(rng)
        ho, wo = minicnn.conv_output_size((c["H"], c["W"]), (c["kh"], c["kw"]), **conv_kw(c))
        (sh, sw), (dh, dw) = R.pair(c["stride"]), R.pair(c["dilation"])
        ph, pw = R.resolve_padding(c["padding"], (c["kh"], c["kw"]), (sh, sw), (dh, dw))
        assert (ho, wo) == (R.out_size(c["H"], c["kh"], sh, ph, dh), R.out_size(c["W"], c["kw"], sw, pw, dw)), c


# --------------------------------------------------------------------------- pooling

@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("dtype", DTYPES)
def test_max_pool2d(F, rng, dtype, impl, case):
    need(F, "max_pool2d", "max_pool2d_backward")
    c = pool_case(rng)
    kw = dict(kernel_size=c["kernel_size"], stride=c["stride"], padding=c["padding"])
    x = distinct_values(rng, (c["N"], c["C"], c["H"], c["W"]), dtype)
    y = call(F.max_pool2d, x, **kw, **impl_kw(impl))
    assert_matches(y, R.max_pool2d(x, **kw), dtype, f"max_pool2d {c}")
    g = randn(rng, y.shape, dtype)
    assert_matches(call(F.max_pool2d_backward, g, x, **kw, **impl_kw(impl)), R.max_pool2d_backward(g, x, **kw),
                   dtype, f"max_pool2d_backward {c}")


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("impl", IMPLS)
def test_max_pool2d_ties_go_to_first(F, rng, impl, case):
    """Few distinct values, so most windows hold their maximum more than once."""
    need(F, "max_pool2d", "max_pool2d_backward")
    c = pool_case(rng)
    kw = dict(kernel_size=c["kernel_size"], stride=c["stride"], padding=c["padding"])
    x = rng.integers(0, 2, size=(c["N"], c["C"], c["H"], c["W"])).astype(np.float64)
    y = call(F.max_pool2d, x, **kw, **impl_kw(impl))
    assert_matches(y, R.max_pool2d(x, **kw), np.float64, f"max_pool2d ties {c}")
    g = rng.standard_normal(y.shape)
    assert_matches(call(F.max_pool2d_backward, g, x, **kw, **impl_kw(impl)), R.max_pool2d_backward(g, x, **kw),
                   np.float64, f"max_pool2d_backward ties {c}")


def test_max_pool2d_all_equal_and_negative(F):
    """All-equal windows send the gradient to the top-left cell; an all-negative image
    padded with -inf still pools to its own (negative) values."""
    need(F, "max_pool2d", "max_pool2d_backward")
    x = np.full((1, 1, 4, 4), 2.0)
    expected = np.zeros((1, 1, 4, 4))
    expected[0, 0, ::2, ::2] = [[1, 2], [3, 4]]
    got = call(F.max_pool2d_backward, np.arange(1.0, 5.0).reshape(1, 1, 2, 2), x, 2)
    np.testing.assert_array_equal(got, expected)
    xn = -1.0 - np.arange(16.0).reshape(1, 1, 4, 4)
    assert_matches(call(F.max_pool2d, xn, 3, 2, 1), R.max_pool2d(xn, 3, 2, 1), np.float64, "negative max pool")


@pytest.mark.parametrize("count_include_pad", [True, False])
@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("dtype", DTYPES)
def test_avg_pool2d(F, rng, dtype, impl, case, count_include_pad):
    need(F, "avg_pool2d", "avg_pool2d_backward")
    c = pool_case(rng)
    kw = dict(kernel_size=c["kernel_size"], stride=c["stride"], padding=c["padding"],
              count_include_pad=count_include_pad)
    x = randn(rng, (c["N"], c["C"], c["H"], c["W"]), dtype)
    y = call(F.avg_pool2d, x, **kw, **impl_kw(impl))
    assert_matches(y, R.avg_pool2d(x, **kw), dtype, f"avg_pool2d {c}")
    g = randn(rng, y.shape, dtype)
    assert_matches(call(F.avg_pool2d_backward, g, x, **kw, **impl_kw(impl)), R.avg_pool2d_backward(g, x, **kw),
                   dtype, f"avg_pool2d_backward {c}")


@HYPO
@given(seed=st.integers(0, 2**32 - 1), use_f32=st.booleans(), cip=st.booleans())
def test_pooling_hypothesis(F, seed, use_f32, cip):
    need(F, "max_pool2d", "max_pool2d_backward", "avg_pool2d", "avg_pool2d_backward")
    rng = np.random.default_rng(seed)
    dtype = np.float32 if use_f32 else np.float64
    c = pool_case(rng)
    kw = dict(kernel_size=c["kernel_size"], stride=c["stride"], padding=c["padding"])
    x = distinct_values(rng, (c["N"], c["C"], c["H"], c["W"]), dtype)
    y = call(F.max_pool2d, x, **kw)
    assert_matches(y, R.max_pool2d(x, **kw), dtype, f"max_pool2d {c}")
    g = randn(rng, y.shape, dtype)
    assert_matches(call(F.max_pool2d_backward, g, x, **kw), R.max_pool2d_backward(g, x, **kw), dtype,
                   f"max_pool2d_backward {c}")
    y = call(F.avg_pool2d, x, **kw, count_include_pad=cip)
    assert_matches(y, R.avg_pool2d(x, **kw, count_include_pad=cip), dtype, f"avg_pool2d {c} cip={cip}")
    assert_matches(call(F.avg_pool2d_backward, g, x, **kw, count_include_pad=cip),
                   R.avg_pool2d_backward(g, x, **kw, count_include_pad=cip), dtype, f"avg_pool2d_backward {c}")


@pytest.mark.parametrize("impl", IMPLS)
def test_pooling_dtypes_and_noncontiguous(F, rng, impl):
    need(F, "max_pool2d", "max_pool2d_backward", "avg_pool2d", "avg_pool2d_backward")
    kw = dict(kernel_size=(3, 2), stride=(2, 1), padding=(1, 1))
    xi = rng.permutation(2 * 3 * 7 * 6).reshape(2, 3, 7, 6)  # int64, no ties
    gi = rng.integers(-3, 4, size=R.max_pool2d(xi, **kw).shape)
    for name in ("max_pool2d", "avg_pool2d"):
        fwd, bwd = getattr(F, name), getattr(F, name + "_backward")
        ref_f, ref_b = getattr(R, name), getattr(R, name + "_backward")
        assert_matches(call(fwd, xi, **kw, **impl_kw(impl)), ref_f(xi, **kw), np.float64, f"{name} int")
        assert_matches(call(bwd, gi, xi, **kw, **impl_kw(impl)), ref_b(gi, xi, **kw), np.float64,
                       f"{name}_backward int")
        for dtype in DTYPES:
            x, g = xi.astype(dtype), gi.astype(dtype)
            y = call(fwd, x, **kw, **impl_kw(impl))
            y_nc = call(fwd, noncontiguous(x, rng), **kw, **impl_kw(impl))
            np.testing.assert_array_equal(y_nc, y)
            assert_matches(y_nc, ref_f(x, **kw), dtype, f"{name} non-contiguous")
            xt = x.transpose(0, 1, 3, 2)
            assert_matches(call(fwd, xt, **kw, **impl_kw(impl)), ref_f(xt, **kw), dtype,
                           f"{name} transposed")
            assert_matches(call(bwd, noncontiguous(g, rng), noncontiguous(x, rng), **kw, **impl_kw(impl)),
                           ref_b(g, x, **kw), dtype, f"{name}_backward non-contiguous")


def test_pooling_padding_limit(F, rng):
    need(F, "max_pool2d")
    x = rng.standard_normal((1, 1, 6, 6))
    with pytest.raises(ValueError):
        F.max_pool2d(x, 2, padding=2)
    with pytest.raises(ValueError):
        F.max_pool2d(x, (4, 2), padding=(2, 2))
    call(F.max_pool2d, x, (4, 2), padding=(2, 1))  # at the limit: fine


# --------------------------------------------------------------------------- conv1d

def conv1d_case(rng):
    k = int(rng.integers(1, 5))
    s, d = int(rng.integers(1, 4)), int(rng.integers(1, 3))
    p = int(rng.integers(0, 3))
    length = int(rng.integers(max(1, d * (k - 1) + 1 - 2 * p), 13))
    return dict(N=int(rng.integers(1, 3)), C=int(rng.integers(1, 4)), K=int(rng.integers(1, 5)), L=length, k=k,
                kw=dict(stride=s, padding=p, dilation=d))


@pytest.mark.parametrize("case", range(8))
@pytest.mark.parametrize("impl", ["loop", "fast"])
@pytest.mark.parametrize("dtype", DTYPES)
def test_conv1d(rng, dtype, impl, case):
    c = conv1d_case(rng)
    x = randn(rng, (c["N"], c["C"], c["L"]), dtype)
    w = randn(rng, (c["K"], c["C"], c["k"]), dtype)
    b = randn(rng, (c["K"],), dtype) if case % 2 == 0 else None
    y = call(minicnn.conv1d, x, w, b, **c["kw"], impl=impl)
    assert_matches(y, R.conv1d(x, w, b, **c["kw"]), dtype, f"conv1d {c}")
    g = randn(rng, y.shape, dtype)
    got = call(minicnn.conv1d_backward, g, x, w, **c["kw"], impl=impl)
    assert len(got) == 3
    for a, e in zip(got, R.conv1d_backward(g, x, w, **c["kw"])):
        assert_matches(a, e, dtype, f"conv1d_backward {c}")


@pytest.mark.parametrize("impl", ["loop", "fast"])
def test_conv1d_dtypes_and_noncontiguous(rng, impl):
    kw = dict(stride=2, padding=1, dilation=2)
    xi, wi = rng.integers(-3, 4, size=(2, 3, 11)), rng.integers(-3, 4, size=(2, 3, 3))
    assert_matches(call(minicnn.conv1d, xi, wi, **kw, impl=impl), R.conv1d(xi, wi, **kw), np.float64, "int conv1d")
    for dtype in DTYPES:
        big = randn(rng, (2, 3, 22), dtype)
        x, w = big[:, :, ::2], randn(rng, (2, 3, 3), dtype)
        y = call(minicnn.conv1d, x, w, **kw, impl=impl)
        assert_matches(y, R.conv1d(x, w, **kw), dtype, "conv1d on x[:, :, ::2]")
        g = noncontiguous(randn(rng, y.shape, dtype), rng)
        for a, e in zip(call(minicnn.conv1d_backward, g, x, w, **kw, impl=impl), R.conv1d_backward(g, x, w, **kw)):
            assert_matches(a, e, dtype, "conv1d_backward non-contiguous")


# --------------------------------------------------------------------------- conv_transpose2d

def conv_transpose_case(rng):
    kh, kw = int(rng.integers(1, 5)), int(rng.integers(1, 5))
    stride, dilation = maybe_pair(rng, 1, 3), maybe_pair(rng, 1, 2)
    (sh, sw), (dh, dw) = R.pair(stride), R.pair(dilation)
    h, w = int(rng.integers(1, 6)), int(rng.integers(1, 6))
    # output_padding < max(stride, dilation); padding small enough to leave an output
    oph, opw = int(rng.integers(0, max(sh, dh))), int(rng.integers(0, max(sw, dw)))
    full_h, full_w = (h - 1) * sh + dh * (kh - 1) + oph + 1, (w - 1) * sw + dw * (kw - 1) + opw + 1
    ph, pw = int(rng.integers(0, min(2, (full_h - 1) // 2) + 1)), int(rng.integers(0, min(2, (full_w - 1) // 2) + 1))
    padding = (ph, pw) if ph != pw or rng.random() < 0.5 else ph
    output_padding = (oph, opw) if oph != opw or rng.random() < 0.5 else oph
    return dict(N=int(rng.integers(1, 3)), Cin=int(rng.integers(1, 4)), Cout=int(rng.integers(1, 4)),
                H=h, W=w, kh=kh, kw=kw,
                kwargs=dict(stride=stride, padding=padding, output_padding=output_padding, dilation=dilation))


@pytest.mark.parametrize("case", range(8))
@pytest.mark.parametrize("impl", ["loop", "fast"])
@pytest.mark.parametrize("dtype", DTYPES)
def test_conv_transpose2d(rng, dtype, impl, case):
    c = conv_transpose_case(rng)
    kw = c["kwargs"]
    x = randn(rng, (c["N"], c["Cin"], c["H"], c["W"]), dtype)
    w = randn(rng, (c["Cin"], c["Cout"], c["kh"], c["kw"]), dtype)
    b = randn(rng, (c["Cout"],), dtype) if case % 2 == 0 else None
    y = call(minicnn.conv_transpose2d, x, w, b, **kw, impl=impl)
    expected = R.conv_transpose2d(x, w, b, **kw)
    assert expected.shape[2:] == minicnn.conv_transpose_output_size((c["H"], c["W"]), (c["kh"], c["kw"]), **kw)
    assert_matches(y, expected, dtype, f"conv_transpose2d {c}")
    g = randn(rng, y.shape, dtype)
    got = call(minicnn.conv_transpose2d_backward, g, x, w, **kw, impl=impl)
    assert len(got) == 3
    for name, a, e in zip(("grad_x", "grad_weight", "grad_bias"), got, R.conv_transpose2d_backward(g, x, w, **kw)):
        assert_matches(a, e, dtype, f"conv_transpose2d_backward {name} {c}")


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), use_f32=st.booleans(), impl=st.sampled_from(["loop", "fast"]))
def test_conv_transpose2d_hypothesis(seed, use_f32, impl):
    rng = np.random.default_rng(seed)
    dtype = np.float32 if use_f32 else np.float64
    c = conv_transpose_case(rng)
    kw = c["kwargs"]
    x = randn(rng, (c["N"], c["Cin"], c["H"], c["W"]), dtype)
    w = randn(rng, (c["Cin"], c["Cout"], c["kh"], c["kw"]), dtype)
    y = call(minicnn.conv_transpose2d, x, w, **kw, impl=impl)
    assert_matches(y, R.conv_transpose2d(x, w, **kw), dtype, f"conv_transpose2d {c}")
    g = randn(rng, y.shape, dtype)
    for a, e in zip(call(minicnn.conv_transpose2d_backward, g, x, w, **kw, impl=impl),
                    R.conv_transpose2d_backward(g, x, w, **kw)):
        assert_matches(a, e, dtype, f"conv_transpose2d_backward {c}")


@pytest.mark.parametrize("impl", ["loop", "fast"])
def test_conv_transpose2d_dtypes_and_noncontiguous(rng, impl):
    kw = dict(stride=2, padding=1, output_padding=1)
    xi, wi = rng.integers(-3, 4, size=(2, 2, 3, 4)), rng.integers(-3, 4, size=(2, 3, 3, 3))
    assert_matches(call(minicnn.conv_transpose2d, xi, wi, **kw, impl=impl), R.conv_transpose2d(xi, wi, **kw),
                   np.float64, "int conv_transpose2d")
    for dtype in DTYPES:
        x, w = randn(rng, (2, 2, 3, 4), dtype), randn(rng, (2, 3, 3, 3), dtype)
        xt = np.ascontiguousarray(x.transpose(0, 1, 3, 2)).transpose(0, 1, 3, 2)
        y = call(minicnn.conv_transpose2d, xt, noncontiguous(w, rng), **kw, impl=impl)
        assert_matches(y, R.conv_transpose2d(x, w, **kw), dtype, "conv_transpose2d non-contiguous")
        g = randn(rng, y.shape, dtype)
        for a, e in zip(call(minicnn.conv_transpose2d_backward, noncontiguous(g, rng), xt, w, **kw, impl=impl),
                        R.conv_transpose2d_backward(g, x, w, **kw)):
            assert_matches(a, e, dtype, "conv_transpose2d_backward non-contiguous")


# --------------------------------------------------------------------------- correlate2d / convolve2d

@pytest.mark.parametrize("case", range(8))
def test_correlate_convolve2d(rng, case):
    kh, kw = int(rng.integers(1, 5)), int(rng.integers(1, 5))
    stride = maybe_pair(rng, 1, 3)
    padding = ["valid", "full", maybe_pair(rng, 0, 2), maybe_pair(rng, 0, 2)][case % 4]
    ph, pw = R.resolve_padding(padding, (kh, kw), R.pair(stride), (1, 1))
    h, w = int(rng.integers(max(1, kh - 2 * ph), 11)), int(rng.integers(max(1, kw - 2 * pw), 11))
    for dtype in DTYPES:
        img, k = randn(rng, (h, w), dtype), randn(rng, (kh, kw), dtype)
        assert_matches(call(minicnn.correlate2d, img, k, stride, padding), R.correlate2d(img, k, stride, padding),
                       dtype, f"correlate2d {(h, w, kh, kw, stride, padding)}")
        assert_matches(call(minicnn.convolve2d, img, k, stride, padding), R.convolve2d(img, k, stride, padding),
                       dtype, f"convolve2d {(h, w, kh, kw, stride, padding)}")


def test_convolve2d_full_is_textbook_convolution(rng):
    """With padding='full', convolve2d is scipy.signal.convolve2d(mode='full')."""
    try:
        from scipy.signal import convolve2d as scipy_convolve2d
    except ImportError:
        scipy_convolve2d = None
    for h, w, kh, kw in [(5, 6, 3, 2), (1, 1, 1, 1), (4, 3, 4, 4), (7, 2, 2, 1)]:
        img, k = rng.standard_normal((h, w)), rng.standard_normal((kh, kw))
        got = call(minicnn.convolve2d, img, k, padding="full")
        assert_matches(got, R.convolve2d_full(img, k), np.float64, "convolve2d full")
        if scipy_convolve2d is not None:
            np.testing.assert_allclose(got, scipy_convolve2d(img, k, mode="full"), rtol=1e-10, atol=1e-12)
    # ints, and a non-contiguous image
    img, k = rng.integers(-5, 6, size=(6, 5)), rng.integers(-2, 3, size=(3, 2))
    assert_matches(call(minicnn.convolve2d, img, k, padding="full"), R.convolve2d_full(img, k), np.float64, "int")
    assert_matches(call(minicnn.correlate2d, img.T, k), R.correlate2d(img.T, k), np.float64, "transposed image")


# --------------------------------------------------------------------------- dense

@pytest.mark.parametrize("case", range(4))
@pytest.mark.parametrize("impl", ["loop", "fast"])
@pytest.mark.parametrize("dtype", DTYPES)
def test_dense(rng, dtype, impl, case):
    n, fin, fout = int(rng.integers(1, 4)), int(rng.integers(1, 9)), int(rng.integers(1, 7))
    x, w = randn(rng, (n, fin), dtype), randn(rng, (fout, fin), dtype)
    b = randn(rng, (fout,), dtype) if case % 2 == 0 else None
    y = call(minicnn.dense, x, w, b, impl=impl)
    assert_matches(y, R.dense(x, w, b), dtype, "dense")
    g = randn(rng, y.shape, dtype)
    got = call(minicnn.dense_backward, g, x, w, impl=impl)
    assert len(got) == 3
    for a, e in zip(got, R.dense_backward(g, x, w)):
        assert_matches(a, e, dtype, "dense_backward")
    # non-contiguous: a transposed weight and every other row of x
    wt = np.ascontiguousarray(w.T).T
    xs = noncontiguous(x, rng)
    assert_matches(call(minicnn.dense, xs, wt, b, impl=impl), R.dense(x, w, b), dtype, "dense non-contiguous")
    for a, e in zip(call(minicnn.dense_backward, noncontiguous(g, rng), xs, wt, impl=impl), R.dense_backward(g, x, w)):
        assert_matches(a, e, dtype, "dense_backward non-contiguous")


@pytest.mark.parametrize("impl", ["loop", "fast"])
def test_dense_int(rng, impl):
    x, w, b = rng.integers(-3, 4, size=(3, 5)), rng.integers(-3, 4, size=(2, 5)), rng.integers(-3, 4, size=2)
    assert_matches(call(minicnn.dense, x, w, b, impl=impl), R.dense(x, w, b), np.float64, "int dense")
    g = rng.integers(-3, 4, size=(3, 2))
    for a, e in zip(call(minicnn.dense_backward, g, x, w, impl=impl), R.dense_backward(g, x, w)):
        assert_matches(a, e, np.float64, "int dense_backward")


# --------------------------------------------------------------------------- activations

ACTIVATIONS = [("relu", R.relu, R.relu_backward), ("tanh", R.tanh, R.tanh_backward),
               ("sigmoid", R.sigmoid, R.sigmoid_backward)]


@pytest.mark.parametrize("name,ref_f,ref_b", ACTIVATIONS, ids=[a[0] for a in ACTIVATIONS])
@pytest.mark.parametrize("shape", [(7,), (2, 5), (2, 3, 4, 5), (1, 1, 1)])
@pytest.mark.parametrize("dtype", DTYPES)
def test_activations(rng, dtype, shape, name, ref_f, ref_b):
    fwd, bwd = getattr(minicnn, name), getattr(minicnn, name + "_backward")
    x = (3 * rng.standard_normal(shape)).astype(dtype)
    x.reshape(-1)[0] = 0.0  # relu'(0) = 0
    y = call(fwd, x)
    assert_matches(y, ref_f(x), dtype, name)
    g = randn(rng, shape, dtype)
    assert_matches(call(bwd, g, x), ref_b(g, x), dtype, name + "_backward")
    if x.ndim >= 2:
        xt, gt = x.T, g.T
        assert_matches(call(fwd, xt), ref_f(xt), dtype, name + " transposed")
        assert_matches(call(bwd, gt, xt), ref_b(gt, xt), dtype, name + "_backward transposed")


@pytest.mark.parametrize("name,ref_f,ref_b", ACTIVATIONS[1:], ids=[a[0] for a in ACTIVATIONS[1:]])
@pytest.mark.parametrize("dtype", DTYPES)
def test_activation_backward_from_the_forward_output(rng, dtype, name, ref_f, ref_b):
    """tanh_backward and sigmoid_backward accept y, the forward's output, instead of computing
    it again: the same gradient, y and grad_out left alone, a wrong shape named."""
    fwd, bwd = getattr(minicnn, name), getattr(minicnn, name + "_backward")
    x = (3 * rng.standard_normal((2, 3, 4))).astype(dtype)
    g = randn(rng, x.shape, dtype)
    y = fwd(x)
    y_before, g_before = y.copy(), g.copy()
    got = bwd(g, x, y=y)
    assert got.dtype == dtype
    assert_matches(got, ref_b(g, x), dtype, name + "_backward with y")
    np.testing.assert_array_equal(y, y_before)
    np.testing.assert_array_equal(g, g_before)
    with pytest.raises(ValueError, match=r"y \(the forward's output\) has shape \(3, 4\) but x has shape \(2, 3, 4\)"):
        bwd(g, x, y=y[0])


@pytest.mark.parametrize("name,ref_f,ref_b", ACTIVATIONS, ids=[a[0] for a in ACTIVATIONS])
def test_activations_extremes_and_ints(name, ref_f, ref_b):
    fwd, bwd = getattr(minicnn, name), getattr(minicnn, name + "_backward")
    for dtype in DTYPES:
        x = np.array([-1000.0, -80.0, -20.0, -1e-8, 0.0, 1e-8, 20.0, 80.0, 1000.0], dtype=dtype)
        with np.errstate(over="raise", invalid="raise"):
            y, gx = call(fwd, x), call(bwd, np.ones_like(x), x)
        assert np.all(np.isfinite(y)) and np.all(np.isfinite(gx))
        assert_matches(y, ref_f(x), dtype, name + " extremes")
        assert_matches(gx, ref_b(np.ones_like(x), x), dtype, name + "_backward extremes")
    xi = np.arange(-3, 4)
    assert_matches(call(fwd, xi), ref_f(xi), np.float64, name + " int")
    assert_matches(call(bwd, np.ones(7, dtype=np.int64), xi), ref_b(np.ones(7), xi), np.float64, name + "_backward int")
    xb = xi > 0
    assert_matches(call(fwd, xb), ref_f(xb), np.float64, name + " bool")
    slope_at_zero = {"relu": 0.0, "tanh": 1.0, "sigmoid": 0.25}[name]
    np.testing.assert_allclose(call(bwd, np.ones(3), np.zeros(3)), slope_at_zero, rtol=1e-15)


# --------------------------------------------------------------------------- softmax / cross-entropy

@pytest.mark.parametrize("case", range(4))
@pytest.mark.parametrize("dtype", DTYPES)
def test_softmax_cross_entropy(rng, dtype, case):
    n, c = int(rng.integers(1, 5)), int(rng.integers(2, 7))
    z = (3 * rng.standard_normal((n, c))).astype(dtype)
    labels = rng.integers(0, c, size=n)
    p = call(minicnn.softmax, z)
    assert_matches(p, R.softmax(z), dtype, "softmax")
    np.testing.assert_allclose(p.sum(axis=1), 1.0, rtol=1e-5 if dtype == np.float32 else 1e-12)
    loss = call(minicnn.softmax_cross_entropy, z, labels)
    assert np.ndim(loss) == 0
    np.testing.assert_allclose(float(loss), R.softmax_cross_entropy(z, labels),
                               rtol=1e-4 if dtype == np.float32 else 1e-10)
    assert_matches(call(minicnn.softmax_cross_entropy_backward, z, labels),
                   R.softmax_cross_entropy_backward(z, labels), dtype, "softmax_cross_entropy_backward")
    zt = np.ascontiguousarray(z.T).T
    assert_matches(call(minicnn.softmax, zt), R.softmax(z), dtype, "softmax non-contiguous")
    assert_matches(call(minicnn.softmax_cross_entropy_backward, zt, labels),
                   R.softmax_cross_entropy_backward(z, labels), dtype, "ce backward non-contiguous")


@pytest.mark.parametrize("dtype", DTYPES)
def test_softmax_cross_entropy_large_logits(dtype):
    z = np.array([[1000.0, 0.0, -1000.0], [-1000.0, -1000.0, -1000.0], [1000.0, 1000.0, 999.0]], dtype=dtype)
    labels = np.array([1, 2, 0])
    with np.errstate(over="raise", invalid="raise"):
        p = call(minicnn.softmax, z)
        loss = call(minicnn.softmax_cross_entropy, z, labels)
        g = call(minicnn.softmax_cross_entropy_backward, z, labels)
    assert np.all(np.isfinite(p)) and np.isfinite(loss) and np.all(np.isfinite(g))
    assert_matches(p, R.softmax(z), dtype, "softmax large")
    np.testing.assert_allclose(float(loss), R.softmax_cross_entropy(z, labels), rtol=1e-5)
    assert_matches(g, R.softmax_cross_entropy_backward(z, labels), dtype, "ce backward large")
    # row 0 loses 1000 nats, row 1 is uniform over 3, row 2 is -log(1 / (2 + e^-1))
    np.testing.assert_allclose(float(loss), (1000.0 + np.log(3.0) + np.log(2.0 + np.exp(-1.0))) / 3, rtol=1e-5)


def test_softmax_int_logits():
    z, labels = np.array([[1, 2, 3], [0, 0, 5]]), np.array([2, 0])
    assert_matches(call(minicnn.softmax, z), R.softmax(z), np.float64, "int softmax")
    assert_matches(call(minicnn.softmax_cross_entropy_backward, z, labels),
                   R.softmax_cross_entropy_backward(z, labels), np.float64, "int ce backward")
