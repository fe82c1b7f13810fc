"""conv2d(..., out=) and conv2d_backward(..., out=): the result written into the caller's array
is the allocating call's result, bit for bit; a wrong `out` is refused with an error that names
it and the shapes; and the fast kernels' reused scratch memory (kernels/fast/workspace.py)
never carries one call's data into the next call's result."""
import threading

import numpy as np
import pytest

import minicnn
from minicnn.kernels.fast import workspace
from minicnn.outarg import check_out, check_out_tuple

DTYPES = [np.float32, np.float64]
# (N, C, H, K, k, stride, padding): the per-image, wide (stride 2, one image per thread) and
# batch-inner layouts of the fast kernels
CASES = [(4, 3, 12, 5, 3, 1, 1), (1, 2, 11, 4, 3, 2, 1), (8, 6, 6, 9, 5, 1, 0)]


def _data(case, dtype, seed=0):
    n, c, h, k, ks, s, p = case
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, c, h, h)).astype(dtype)
    w = rng.standard_normal((k, c, ks, ks)).astype(dtype)
    b = rng.standard_normal(k).astype(dtype)
    return x, w, b, s, p


@pytest.mark.parametrize("impl", ["fast", "loop"])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", CASES)
def test_out_equals_the_allocating_call(case, dtype, impl):
    x, w, b, s, p = _data(case, dtype)
    want = minicnn.conv2d(x, w, b, s, p, impl=impl)
    out = np.full(want.shape, np.nan, dtype=dtype)      # NaN: every element must be written
    got = minicnn.conv2d(x, w, b, s, p, impl=impl, out=out)
    assert got is out
    np.testing.assert_array_equal(out, want)

    g = np.random.default_rng(1).standard_normal(want.shape).astype(dtype)
    want_b = minicnn.conv2d_backward(g, x, w, s, p, impl=impl)
    outs = tuple(np.full(a.shape, np.nan, dtype=dtype) for a in want_b)
    got_b = minicnn.conv2d_backward(g, x, w, s, p, impl=impl, out=outs)
    for name, o, gb, wb in zip(("grad_x", "grad_weight", "grad_bias"), outs, got_b, want_b):
        assert gb is o, name
        np.testing.assert_array_equal(o, wb, err_msg=name)
    # some entries None: those are allocated, the others written
    gx_only = np.empty_like(want_b[0])
    got_b = minicnn.conv2d_backward(g, x, w, s, p, impl=impl, out=[gx_only, None, None])
    assert got_b[0] is gx_only
    for a, e in zip(got_b, want_b):
        np.testing.assert_array_equal(a, e)


def test_scratch_reuse_keeps_results_exact():
    """Calls of different shapes and dtypes in between (which reuse and overwrite the same scratch
    buffers) do not change a result; nor does a second thread doing the same at the same time."""
    first = {}
    for case in CASES:
        for dtype in DTYPES:
            x, w, b, s, p = _data(case, dtype)
            y = minicnn.conv2d(x, w, b, s, p)
            first[case, dtype] = (y, minicnn.conv2d_backward(y, x, w, s, p))
    errors = []

    def again(order):
        try:
            for case in order:
                for dtype in DTYPES:
                    x, w, b, s, p = _data(case, dtype)
                    y = minicnn.conv2d(x, w, b, s, p)
                    got = (y, *minicnn.conv2d_backward(y, x, w, s, p))
                    want = (first[case, dtype][0], *first[case, dtype][1])
                    for a, e in zip(got, want):
                        np.testing.assert_array_equal(a, e)
        except AssertionError as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=again, args=(order,)) for order in (CASES, CASES[::-1])]
    for t in threads:
        t.start()
    again(CASES[1:] + CASES[:1])
    for t in threads:
        t.join()
    assert not errors, errors[0]
    assert workspace.release() > 0       # this thread's buffers existed, and are gone
    assert workspace.release() == 0


def _bad(kind, like):
    if kind == "shape":
        return np.empty(like.shape[:-1] + (like.shape[-1] + 1,), like.dtype)
    if kind == "dtype":
        return np.empty(like.shape, np.float64 if like.dtype == np.float32 else np.float32)
    if kind == "strided":
        return np.empty(like.shape[:-1] + (2 * like.shape[-1],), like.dtype)[..., ::2]
    if kind == "readonly":
        a = np.empty_like(like)
        a.flags.writeable = False
        return a
    if kind == "list":
        return like.tolist()
    raise AssertionError(kind)


# the error for conv2d's out, whose result has shape (4, 5, 12, 12), float32
BAD = {"shape": (ValueError, r"conv2d: out must have shape \(4, 5, 12, 12\), dtype float32 \(the result's\), "
                             r"got shape \(4, 5, 12, 13\), dtype float32"),
       "dtype": (ValueError, r"conv2d: out must have shape \(4, 5, 12, 12\), dtype float32 \(the result's\), "
                             r"got shape \(4, 5, 12, 12\), dtype float64"),
       "strided": (ValueError, r"conv2d: out \(shape \(4, 5, 12, 12\)\) must be C-contiguous"),
       "readonly": (ValueError, r"conv2d: out \(shape \(4, 5, 12, 12\)\) is read-only"),
       "list": (TypeError, r"conv2d: out must be a numpy array of shape \(4, 5, 12, 12\), dtype float32, got list")}


@pytest.mark.parametrize("kind", sorted(BAD))
def test_a_wrong_out_is_refused_by_name(kind):
    x, w, b, s, p = _data(CASES[0], np.float32)
    y = minicnn.conv2d(x, w, b, s, p)
    exc, pattern = BAD[kind]
    with pytest.raises(exc, match=pattern):
        minicnn.conv2d(x, w, b, s, p, out=_bad(kind, y))
    # the backward's grad_x (index 0) by the same rules, named as out[0] (grad_x), with x's shape
    with pytest.raises(exc, match=r"conv2d_backward: out\[0\] \(grad_x\) .*\(4, 3, 12, 1[23]\)"):
        minicnn.conv2d_backward(y, x, w, s, p, out=(_bad(kind, x), None, None))


def test_an_out_that_overlaps_an_input_is_refused():
    x, w, b, s, p = _data(CASES[2], np.float32)          # stride 1, no padding: out smaller than x
    y = minicnn.conv2d(x, w, b, s, p)
    with pytest.raises(ValueError, match=r"conv2d: out \(shape \(8, 9, 2, 2\)\) shares memory with the input x "
                                         r"\(shape \(8, 6, 6, 6\)\)"):
        minicnn.conv2d(x, w, b, s, p, out=_view_into(x, y.shape))
    g = np.ones_like(y)
    gx, gw, gb = (np.empty_like(a) for a in (x, w, b))
    with pytest.raises(ValueError, match=r"out\[0\] \(grad_x\) \(shape \(8, 6, 6, 6\)\) shares memory with the "
                                         r"input x"):
        minicnn.conv2d_backward(g, x, w, s, p, out=(x, gw, gb))
    with pytest.raises(ValueError, match=r"out\[1\] \(grad_weight\) .*shares memory with the input weight"):
        minicnn.conv2d_backward(g, x, w, s, p, out=(gx, w, gb))
    both = np.empty(w.size + b.size, np.float32)         # grad_weight and grad_bias in one block
    with pytest.raises(ValueError, match=r"out\[2\] \(grad_bias\) .*shares memory with the input "
                                         r"out\[1\] \(grad_weight\)"):
        minicnn.conv2d_backward(g, x, w, s, p, out=(gx, both[:w.size].reshape(w.shape), both[w.size - 1:][:b.size]))
    with pytest.raises(TypeError, match=r"out must be None or a tuple of 3 arrays \(grad_x, grad_weight, "
                                        r"grad_bias\), got tuple of length 2"):
        minicnn.conv2d_backward(g, x, w, s, p, out=(gx, gw))


def test_no_out_passes_the_checks_as_none():
    """out=None (the op allocates) goes through check_out and check_out_tuple unchanged, so the ops
    call them without testing for None first; a good `out` comes back as the same array."""
    x = np.zeros((2, 3), np.float32)
    assert check_out("op", "out", None, (2, 3), np.float32, {"x": x}) is None
    assert check_out_tuple("op", None, (("a", (2, 3), np.float32), ("b", (3,), np.float32)), {"x": x}) == (None, None)
    out = np.empty((3,), np.float32)
    got = check_out_tuple("op", (None, out), (("a", (2, 3), np.float32), ("b", (3,), np.float32)), {"x": x})
    assert got[0] is None and got[1] is out
    assert check_out("op", "out", out, (3,), np.float32, {"x": x}) is out
    with pytest.raises(ValueError, match=r"op: out must have shape \(2, 3\), dtype float32"):
        check_out("op", "out", out, (2, 3), np.float32, {"x": x})


def _view_into(x, shape):
    """A C-contiguous array of `shape` that is a view of x's memory."""
    return x.reshape(-1)[:int(np.prod(shape))].reshape(shape)
