"""Bad input gets a clear ValueError/TypeError naming the argument and the shapes, never a
Numba typing error or garbage; odd but valid input is converted; inputs are never modified."""
import numpy as np
import pytest

import minicnn

X = np.arange(2 * 3 * 6 * 5, dtype=np.float64).reshape(2, 3, 6, 5)
W = np.ones((4, 3, 3, 3))


def _no_numba(excinfo):
    text = str(excinfo.value)
    assert "numba" not in text.lower() and "typing" not in text.lower(), text


@pytest.mark.parametrize("call, match", [
    (lambda: minicnn.conv2d(X[0], W), r"x must be 4-D \(N, C, H, W\), got shape \(3, 6, 5\)"),
    (lambda: minicnn.conv2d(X, W[0]), r"weight must be 4-D \(K, C, kH, kW\), got shape \(3, 3, 3\)"),
    (lambda: minicnn.conv2d(X, np.ones((4, 2, 3, 3))), r"x has 3 channels \(shape \(2, 3, 6, 5\)\) but weight expects 2 \(shape \(4, 2, 3, 3\)\)"),
    (lambda: minicnn.conv2d(X, np.ones((4, 3, 7, 3))), r"rows kernel extent 7 .* larger than the padded input 6 \+ 2\*0 = 6"),
    (lambda: minicnn.conv2d(X, W, dilation=3), r"kernel extent 7 \(kernel 3, dilation 3\)"),
    (lambda: minicnn.conv2d(X, W, stride=0), r"stride must be >= 1, got 0"),
    (lambda: minicnn.conv2d(X, W, stride=(1, -2)), r"stride must be >= 1"),
    (lambda: minicnn.conv2d(X, W, dilation=0), r"dilation must be >= 1"),
    (lambda: minicnn.conv2d(X, W, padding=-1), r"padding must be >= 0, got -1 \(negative\)"),
    (lambda: minicnn.conv2d(X, W, padding="sane"), r"padding must be an int, a pair, 'valid', 'same' or 'full'; got 'sane'"),
    (lambda: minicnn.conv2d(X, W, padding="same", stride=2), r"padding='same' is undefined for stride=\(2, 2\)"),
    (lambda: minicnn.conv2d(X, np.ones((4, 3, 2, 2)), padding="same"), r"padding='same' is undefined for kernel_size=\(2, 2\)"),
    (lambda: minicnn.conv2d(X, W, padding=(1, 2, 3)), r"padding must be an int or a pair"),
    (lambda: minicnn.conv2d(X, W, bias=np.ones(3)), r"bias must have shape \(4,\), one value per filter; got \(3,\)"),
    (lambda: minicnn.conv2d(X, W, impl="gpu"), r"impl must be one of \['fast', 'loop'\], got 'gpu'"),
    (lambda: minicnn.conv2d(X, W, stride=1.5), r"stride must be an int or a pair of ints, got 1.5"),
    (lambda: minicnn.conv2d(X.astype(complex), W), r"x must be real"),
    (lambda: minicnn.conv2d([[["a"]]], W), r"x must hold real numbers"),
    (lambda: minicnn.conv2d(np.zeros((0, 3, 6, 5)), W), r"x has an empty dimension"),
    (lambda: minicnn.conv2d_backward(np.ones((2, 4, 4, 4)), X, W), r"grad_out has shape \(2, 4, 4, 4\) but conv2d produces shape \(2, 4, 4, 3\)"),
    (lambda: minicnn.conv2d_backward(np.ones((2, 4, 4)), X, W), r"grad_out must be 4-D"),
    (lambda: minicnn.max_pool2d(X, 7), r"max_pool2d: the rows kernel extent 7"),
    (lambda: minicnn.max_pool2d(X, 2, padding=2), r"padding \(2, 2\) must be at most half the kernel_size \(2, 2\)"),
    (lambda: minicnn.avg_pool2d(X, 2, stride=0), r"stride must be >= 1"),
    (lambda: minicnn.avg_pool2d(X, 2, padding="same"), r"padding must be an int or a pair for pooling"),
    (lambda: minicnn.max_pool2d_backward(np.ones((2, 3, 2, 2)), X, 2), r"grad_out has shape \(2, 3, 2, 2\) but max_pool2d produces shape \(2, 3, 3, 2\)"),
    (lambda: minicnn.avg_pool2d_backward(np.ones((2, 3, 2, 2)), X, 2), r"but avg_pool2d produces shape \(2, 3, 3, 2\)"),
    (lambda: minicnn.conv_transpose2d(X, np.ones((2, 4, 3, 3))), r"x has 3 channels .* weight has 2 input channels"),
    (lambda: minicnn.conv_transpose2d(X, np.ones((3, 4, 3, 3)), stride=2, output_padding=2), r"output_padding 2 must be smaller than stride 2"),
    (lambda: minicnn.conv_transpose2d_backward(np.ones((2, 4, 5, 5)), X, np.ones((3, 4, 3, 3))), r"grad_out has shape \(2, 4, 5, 5\) but conv_transpose2d produces shape \(2, 4, 8, 7\)"),
    (lambda: minicnn.conv1d(np.ones((2, 3, 8)), np.ones((4, 2, 3))), r"conv1d: x has 3 channels"),
    (lambda: minicnn.conv1d(np.ones((2, 3, 8)), np.ones((4, 3, 3)), stride=(1, 2)), r"stride must be an int"),
    (lambda: minicnn.conv1d(np.ones((3, 8)), np.ones((4, 3, 3))), r"x must be 3-D \(N, C, L\)"),
    (lambda: minicnn.correlate2d(np.ones((3, 3)), np.ones((4, 4))), r"correlate2d: the rows kernel extent 4"),
    (lambda: minicnn.correlate2d(np.ones((1, 3, 3)), np.ones((3, 3))), r"image must be 2-D \(H, W\)"),
    (lambda: minicnn.convolve2d(np.ones((3, 3)), np.ones((1, 3, 3))), r"kernel must be 2-D"),
    (lambda: minicnn.dense(np.ones((2, 5)), np.ones((3, 4))), r"dense: x has 5 features \(shape \(2, 5\)\) but weight expects 4 \(shape \(3, 4\)\)"),
    (lambda: minicnn.dense(np.ones((2, 4)), np.ones((3, 4)), np.ones(4)), r"bias must have shape \(3,\)"),
    (lambda: minicnn.dense_backward(np.ones((2, 4)), np.ones((2, 4)), np.ones((3, 4))), r"grad_out has shape \(2, 4\) but dense produces shape \(2, 3\)"),
    (lambda: minicnn.relu_backward(np.ones(3), np.ones(4)), r"grad_out has shape \(3,\) but x has shape \(4,\)"),
    (lambda: minicnn.softmax_cross_entropy(np.ones((2, 3)), [0, 3]), r"labels must lie in \[0, 3\)"),
    (lambda: minicnn.softmax_cross_entropy(np.ones((2, 3)), [0]), r"labels must have shape \(2,\)"),
    (lambda: minicnn.softmax_cross_entropy(np.ones((2, 3)), [0.5, 1]), r"labels must be integer class indices"),
    (lambda: minicnn.conv_output_size(5, 7), r"kernel extent 7 .* larger than the padded input"),
    (lambda: minicnn.conv2d_param_count(3, 0, 5), r"in_channels and out_channels must be >= 1"),
])
def test_bad_input_is_a_clear_error(call, match):
    with pytest.raises((ValueError, TypeError), match=match) as excinfo:
        call()
    _no_numba(excinfo)


@pytest.mark.parametrize("name, args", [
    ("x", (np.where(X == 7, np.nan, X), W)),
    ("weight", (X, np.where(W > 0, np.inf, W))),
    ("bias", (X, W, np.array([0, np.nan, 0, 0]))),
])
def test_non_finite_values_are_named(name, args):
    with pytest.raises(ValueError, match=rf"{name} contains (nan|inf) at index \["):
        minicnn.conv2d(*args)
    minicnn.conv2d(*args, check_finite=False)  # allowed when asked for


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_every_non_finite_value_is_found(dtype, bad):
    """The finite check is one vectorised pass (x - x summed): a single bad value anywhere,
    in the first, a middle, a vector-tail or the last position, is reported at its index."""
    rng = np.random.default_rng(8)
    x = (rng.standard_normal((3, 2, 7, 11)) * 1e30).astype(dtype)   # large but finite values
    minicnn.max_pool2d(x, 2)
    for flat in (0, 17, x.size - 9, x.size - 1):
        y = x.copy()
        y.flat[flat] = bad
        index = ", ".join(str(i) for i in np.unravel_index(flat, x.shape))
        with pytest.raises(ValueError, match=rf"x contains -?(nan|inf) at index \[{index}\]"):
            minicnn.max_pool2d(y, 2)
        with pytest.raises(ValueError, match=r"x contains"):
            minicnn.max_pool2d(y[:, :, :, ::-1], 2)   # not contiguous: copied, then checked


def test_max_pool_reports_nan():
    with pytest.raises(ValueError, match=r"x contains nan at index \[0, 0, 0, 1\]"):
        minicnn.max_pool2d(np.array([[[[1.0, np.nan], [0, 0]]]]), 2)


def test_integer_boolean_and_noncontiguous_inputs_are_converted():
    xi = np.arange(2 * 3 * 6 * 5).reshape(2, 3, 6, 5)
    wi = np.ones((4, 3, 3, 3), dtype=np.int32)
    out = minicnn.conv2d(xi, wi)
    assert out.dtype == np.float64
    np.testing.assert_array_equal(out, minicnn.conv2d(xi.astype(float), wi.astype(float)))
    big = np.zeros((2, 3, 12, 10))
    big[:, :, ::2, ::2] = X
    view = big[:, :, ::2, ::2]  # a strided view, not contiguous
    assert not view.flags.c_contiguous
    np.testing.assert_array_equal(minicnn.conv2d(view, W), minicnn.conv2d(X, W))
    xt = np.ascontiguousarray(X.transpose(0, 1, 3, 2)).transpose(0, 1, 3, 2)  # Fortran-ordered planes
    np.testing.assert_array_equal(minicnn.max_pool2d(xt, 2), minicnn.max_pool2d(X, 2))
    assert minicnn.correlate2d(np.eye(3, dtype=bool), np.ones((2, 2))).tolist() == [[2.0, 1.0], [1.0, 2.0]]
    assert minicnn.conv2d(X.astype(np.float16), W.astype(np.float32)).dtype == np.float32


def test_the_shortcut_for_arrays_already_right_takes_nothing_else():
    """as_array returns an array that is already what the kernels need (an ndarray, C-contiguous,
    that dtype and rank) as it is, and converts everything else as before: a subclass, a
    big-endian float32, a read-only view, a float64 where float32 is asked for."""
    from minicnn.argcheck import as_array, dtype_of
    x32 = np.ascontiguousarray(X, dtype=np.float32)
    assert as_array("x", x32, 4, "", np.dtype(np.float32)) is x32
    masked = np.ma.masked_array(x32)
    assert type(as_array("x", masked, 4, "", np.dtype(np.float32))) is np.ndarray
    swapped = x32.astype(">f4")
    assert dtype_of(swapped, W.astype(np.float32)) == np.float32
    got = as_array("x", swapped, 4, "", np.dtype(np.float32))
    assert got.dtype == np.dtype(np.float32) and got.dtype.isnative
    np.testing.assert_array_equal(minicnn.conv2d(swapped, W.astype(np.float32)), minicnn.conv2d(x32, W.astype(np.float32)))
    with pytest.raises(ValueError, match="x must be 4-D"):
        as_array("x", x32[0], 4, "(N, C, H, W)", np.dtype(np.float32))
    assert as_array("x", x32, 4, "", np.dtype(np.float64)).dtype == np.float64
    assert dtype_of(x32, None, np.ones(3, np.float32)) == np.float32
    assert dtype_of(x32, np.ones(3)) == np.float64 and dtype_of(np.ones(2, np.int32)) == np.float64


def test_float32_stays_float32_and_mixed_becomes_float64():
    x32, w32 = X.astype(np.float32), W.astype(np.float32)
    assert minicnn.conv2d(x32, w32).dtype == np.float32
    assert all(g.dtype == np.float32 for g in minicnn.conv2d_backward(np.ones((2, 4, 4, 3), np.float32), x32, w32))
    assert minicnn.conv2d(x32, W).dtype == np.float64
    assert minicnn.max_pool2d(x32, 2).dtype == np.float32
    assert minicnn.avg_pool2d(x32, 2).dtype == np.float32
    assert minicnn.dense(np.ones((2, 3), np.float32), np.ones((4, 3), np.float32)).dtype == np.float32
    for f in (minicnn.relu, minicnn.tanh, minicnn.sigmoid):
        assert f(x32).dtype == np.float32
    assert minicnn.sigmoid_backward(np.ones(3, np.float32), np.ones(3, np.float32)).dtype == np.float32


def test_inputs_are_never_modified():
    rng = np.random.default_rng(1)
    arrays = {
        "x": rng.standard_normal((2, 3, 7, 6)), "w": rng.standard_normal((4, 3, 3, 3)), "b": rng.standard_normal(4),
        "wt": rng.standard_normal((3, 2, 3, 3)), "d": rng.standard_normal((5, 4)), "dw": rng.standard_normal((3, 4)),
    }
    saved = {k: v.copy() for k, v in arrays.items()}
    a = arrays
    y = minicnn.conv2d(a["x"], a["w"], a["b"], 2, 1)
    minicnn.conv2d_backward(np.ones_like(y), a["x"], a["w"], 2, 1)
    for impl in ("fast", "loop"):
        p = minicnn.max_pool2d(a["x"], 3, 2, 1, impl=impl)
        minicnn.max_pool2d_backward(np.ones_like(p), a["x"], 3, 2, 1, impl=impl)
        minicnn.avg_pool2d_backward(np.ones_like(p), a["x"], 3, 2, 1, impl=impl)
    t = minicnn.conv_transpose2d(a["x"], a["wt"], None, 2, 1)
    minicnn.conv_transpose2d_backward(np.ones_like(t), a["x"], a["wt"], 2, 1)
    minicnn.dense_backward(np.ones((5, 3)), a["d"], a["dw"])
    for f in (minicnn.relu_backward, minicnn.tanh_backward, minicnn.sigmoid_backward):
        f(a["x"], a["x"])
    minicnn.softmax_cross_entropy_backward(a["d"], [0, 1, 2, 3, 0])
    minicnn.gradcheck(lambda x: minicnn.relu(x), [a["d"]], [None])
    for k in arrays:
        np.testing.assert_array_equal(arrays[k], saved[k], err_msg=k)


def test_outputs_do_not_alias_inputs():
    x = np.ones((1, 1, 3, 3))
    out = minicnn.correlate2d(x[0, 0], np.ones((1, 1)))
    out[0, 0] = 5
    assert x[0, 0, 0, 0] == 1
    r = minicnn.relu(x)
    r[...] = -1
    assert x.min() == 1
