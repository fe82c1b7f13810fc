"""Every backward against central finite differences, through minicnn.gradcheck.

float64 backwards must match the finite differences tightly; float32 backwards
are compared with the same float64 finite differences (taken at the float32
inputs) loosely.  The last tests show that gradcheck can fail: deliberately
wrong backwards are caught.

conv2d and pooling come from the `F` fixture (minicnn, or minicnn.cuda in the
CUDA run, where fewer cases run because the simulator is slow).
"""
import numpy as np
import pytest

import minicnn
from backend_under_test import BACKEND, need
from minicnn import gradcheck, numerical_gradient

CPU = BACKEND == "cpu"
IMPLS = ["loop", "fast"] if CPU else [None]
RTOL, ATOL = 1e-5, 1e-7  # finite differences of these smooth/linear ops are good to ~1e-9


def impl_kw(impl):
    return {} if impl is None else {"impl": impl}


def assert_gradcheck(f, inputs, grads, grad_out):
    result = gradcheck(f, inputs, grads, grad_out=grad_out, rtol=RTOL, atol=ATOL)
    assert result, str(result)


def assert_float32_backward(f, inputs32, grads32, grad_out32, names):
    """grads32 (computed in float32) against float64 finite differences at the same points."""
    inputs64 = [a.astype(np.float64) for a in inputs32]
    g64 = grad_out32.astype(np.float64)
    for i, (name, analytic) in enumerate(zip(names, grads32)):
        assert analytic.dtype == np.float32, f"{name}: dtype {analytic.dtype}"
        numeric = numerical_gradient(f, inputs64, i, g64)
        scale = max(1.0, float(np.abs(numeric).max()))
        np.testing.assert_allclose(analytic, numeric, rtol=1e-3, atol=1e-3 * scale, err_msg=name)


def distinct(rng, shape):
    """No ties, neighbours 0.25 apart: far beyond eps, exact in float32."""
    n = int(np.prod(shape))
    return ((rng.permutation(n) - n / 2) * 0.25).reshape(shape)


# --------------------------------------------------------------------------- conv2d

CONV2D_CASES = [
    # x shape, weight shape, stride, padding, dilation
    ((2, 2, 5, 5), (3, 2, 3, 3), 1, 0, 1),
    ((2, 2, 6, 5), (2, 2, 3, 2), 2, 1, 1),
    ((1, 3, 6, 7), (2, 3, 2, 3), (1, 2), (2, 1), 2),
    ((2, 1, 5, 4), (2, 1, 3, 3), 1, "same", (2, 1)),
    ((1, 2, 3, 4), (2, 2, 2, 2), (2, 3), "full", 1),
]
if not CPU:  # each finite difference is a kernel launch: tiny inputs for the CUDA simulator
    CONV2D_CASES = [((2, 1, 3, 3), (2, 1, 2, 2), 2, 1, 1),
                    ((1, 2, 4, 5), (1, 2, 2, 3), (1, 2), (1, 0), 2)]


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("xs,ws,stride,padding,dilation", CONV2D_CASES)
def test_conv2d_gradcheck(F, rng, xs, ws, stride, padding, dilation, impl):
    need(F, "conv2d", "conv2d_backward")
    kw = dict(stride=stride, padding=padding, dilation=dilation)
    x, w, b = rng.standard_normal(xs), rng.standard_normal(ws), rng.standard_normal(ws[0])

    def f(x, w, b):
        return F.conv2d(x, w, b, **kw, **impl_kw(impl))

    g = rng.standard_normal(f(x, w, b).shape)
    grads = F.conv2d_backward(g, x, w, **kw, **impl_kw(impl))
    assert_gradcheck(f, [x, w, b], grads, g)
    # float32
    x32, w32, b32, g32 = (a.astype(np.float32) for a in (x, w, b, g))
    grads32 = F.conv2d_backward(g32, x32, w32, **kw, **impl_kw(impl))
    assert_float32_backward(f, [x32, w32, b32], grads32, g32, ["grad_x", "grad_weight", "grad_bias"])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("xs,ws,stride,padding,dilation", CONV2D_CASES)
def test_conv2d_backward_without_the_input_gradient(F, rng, xs, ws, stride, padding, dilation, impl, dtype):
    """input_grad=False (a network's first layer): None for grad_x, and grad_weight and grad_bias
    bit for bit those of the full backward; anything but True/False is refused by name."""
    x, w = rng.standard_normal(xs).astype(dtype), rng.standard_normal(ws).astype(dtype)
    kw = dict(stride=stride, padding=padding, dilation=dilation, **impl_kw(impl))
    g = rng.standard_normal(F.conv2d(x, w, None, **kw).shape).astype(dtype)
    full = F.conv2d_backward(g, x, w, **kw)
    part = F.conv2d_backward(g, x, w, **kw, input_grad=False)
    assert len(part) == 3 and part[0] is None
    for name, got, want in zip(("grad_weight", "grad_bias"), part[1:], full[1:]):
        assert got.dtype == dtype, name
        np.testing.assert_array_equal(got, want, err_msg=name)
    assert F.conv2d_backward(g, x, w, **kw, input_grad=np.True_)[0].shape == x.shape
    for bad in (0, 1, None, "no"):
        with pytest.raises(TypeError, match=r"input_grad must be True or False"):
            F.conv2d_backward(g, x, w, **kw, input_grad=bad)


# --------------------------------------------------------------------------- pooling

POOL_CASES = [
    # x shape, kernel_size, stride, padding
    ((2, 2, 6, 6), 2, None, 0),
    ((1, 2, 7, 6), 3, 2, 1),          # overlapping windows, padded
    ((2, 1, 5, 7), (3, 2), 1, (1, 1)),  # stride 1: heavy overlap
    ((1, 3, 5, 5), (2, 3), (2, 1), (0, 1)),
]
if not CPU:
    POOL_CASES = [((1, 2, 5, 4), 3, 2, 1), ((1, 1, 4, 5), (3, 2), 1, (1, 1))]


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("xs,kernel_size,stride,padding", POOL_CASES)
def test_max_pool2d_gradcheck(F, rng, xs, kernel_size, stride, padding, impl):
    need(F, "max_pool2d", "max_pool2d_backward")
    kw = dict(kernel_size=kernel_size, stride=stride, padding=padding)
    x = distinct(rng, xs)

    def f(x):
        return F.max_pool2d(x, **kw, **impl_kw(impl))

    g = rng.standard_normal(f(x).shape)
    assert_gradcheck(f, [x], [F.max_pool2d_backward(g, x, **kw, **impl_kw(impl))], g)
    x32, g32 = x.astype(np.float32), g.astype(np.float32)
    assert_float32_backward(f, [x32], [F.max_pool2d_backward(g32, x32, **kw, **impl_kw(impl))], g32, ["grad_x"])


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("count_include_pad", [True, False])
@pytest.mark.parametrize("xs,kernel_size,stride,padding", POOL_CASES)
def test_avg_pool2d_gradcheck(F, rng, xs, kernel_size, stride, padding, count_include_pad, impl):
    need(F, "avg_pool2d", "avg_pool2d_backward")
    kw = dict(kernel_size=kernel_size, stride=stride, padding=padding, count_include_pad=count_include_pad)
    x = rng.standard_normal(xs)

    def f(x):
        return F.avg_pool2d(x, **kw, **impl_kw(impl))

    g = rng.standard_normal(f(x).shape)
    assert_gradcheck(f, [x], [F.avg_pool2d_backward(g, x, **kw, **impl_kw(impl))], g)
    x32, g32 = x.astype(np.float32), g.astype(np.float32)
    assert_float32_backward(f, [x32], [F.avg_pool2d_backward(g32, x32, **kw, **impl_kw(impl))], g32, ["grad_x"])


# --------------------------------------------------------------------------- conv1d, conv_transpose2d, dense

@pytest.mark.parametrize("impl", ["loop", "fast"])
@pytest.mark.parametrize("xs,ws,stride,padding,dilation", [
    ((2, 2, 9), (3, 2, 3), 1, 0, 1),
    ((2, 3, 10), (2, 3, 2), 3, 2, 2),
    ((1, 1, 6), (2, 1, 4), 2, 1, 1),
])
def test_conv1d_gradcheck(rng, xs, ws, stride, padding, dilation, impl):
    kw = dict(stride=stride, padding=padding, dilation=dilation, impl=impl)
    x, w, b = rng.standard_normal(xs), rng.standard_normal(ws), rng.standard_normal(ws[0])

    def f(x, w, b):
        return minicnn.conv1d(x, w, b, **kw)

    g = rng.standard_normal(f(x, w, b).shape)
    assert_gradcheck(f, [x, w, b], minicnn.conv1d_backward(g, x, w, **kw), g)
    x32, w32, b32, g32 = (a.astype(np.float32) for a in (x, w, b, g))
    assert_float32_backward(f, [x32, w32, b32], minicnn.conv1d_backward(g32, x32, w32, **kw), g32,
                            ["grad_x", "grad_weight", "grad_bias"])


@pytest.mark.parametrize("impl", ["loop", "fast"])
@pytest.mark.parametrize("xs,ws,stride,padding,output_padding,dilation", [
    ((2, 2, 3, 3), (2, 3, 3, 3), 1, 0, 0, 1),
    ((2, 2, 3, 4), (2, 2, 3, 2), 2, 1, 1, 1),
    ((1, 3, 2, 3), (3, 2, 2, 3), (2, 3), (0, 1), (1, 2), (1, 2)),
])
def test_conv_transpose2d_gradcheck(rng, xs, ws, stride, padding, output_padding, dilation, impl):
    kw = dict(stride=stride, padding=padding, output_padding=output_padding, dilation=dilation, impl=impl)
    x, w, b = rng.standard_normal(xs), rng.standard_normal(ws), rng.standard_normal(ws[1])

    def f(x, w, b):
        return minicnn.conv_transpose2d(x, w, b, **kw)

    g = rng.standard_normal(f(x, w, b).shape)
    assert_gradcheck(f, [x, w, b], minicnn.conv_transpose2d_backward(g, x, w, **kw), g)
    x32, w32, b32, g32 = (a.astype(np.float32) for a in (x, w, b, g))
    assert_float32_backward(f, [x32, w32, b32], minicnn.conv_transpose2d_backward(g32, x32, w32, **kw), g32,
                            ["grad_x", "grad_weight", "grad_bias"])


@pytest.mark.parametrize("impl", ["loop", "fast"])
@pytest.mark.parametrize("n,fin,fout", [(1, 4, 3), (3, 5, 2)])
def test_dense_gradcheck(rng, n, fin, fout, impl):
    x, w, b = rng.standard_normal((n, fin)), rng.standard_normal((fout, fin)), rng.standard_normal(fout)

    def f(x, w, b):
        return minicnn.dense(x, w, b, impl=impl)

    g = rng.standard_normal((n, fout))
    assert_gradcheck(f, [x, w, b], minicnn.dense_backward(g, x, w, impl=impl), g)
    x32, w32, b32, g32 = (a.astype(np.float32) for a in (x, w, b, g))
    assert_float32_backward(f, [x32, w32, b32], minicnn.dense_backward(g32, x32, w32, impl=impl), g32,
                            ["grad_x", "grad_weight", "grad_bias"])


# --------------------------------------------------------------------------- activations, loss

@pytest.mark.parametrize("name", ["relu", "tanh", "sigmoid"])
def test_activation_gradcheck(rng, name):
    fwd, bwd = getattr(minicnn, name), getattr(minicnn, name + "_backward")
    x = rng.standard_normal((2, 3, 4))
    x = np.sign(x) * (0.05 + 2 * np.abs(x))  # relu's kink at 0 stays far from x +- eps
    g = rng.standard_normal(x.shape)
    assert_gradcheck(fwd, [x], [bwd(g, x)], g)
    x32, g32 = x.astype(np.float32), g.astype(np.float32)
    assert_float32_backward(fwd, [x32], [bwd(g32, x32)], g32, [name + "_backward"])


@pytest.mark.parametrize("n,c", [(1, 3), (4, 5)])
def test_softmax_cross_entropy_gradcheck(rng, n, c):
    z = 2 * rng.standard_normal((n, c))
    labels = rng.integers(0, c, size=n)

    def f(z):
        return np.array(minicnn.softmax_cross_entropy(z, labels))

    assert_gradcheck(f, [z], [minicnn.softmax_cross_entropy_backward(z, labels)], np.array(1.0))
    z32 = z.astype(np.float32)
    assert_float32_backward(f, [z32], [minicnn.softmax_cross_entropy_backward(z32, labels)], np.array(1.0, np.float32),
                            ["softmax_cross_entropy_backward"])


def test_softmax_cross_entropy_gradcheck_large_logits():
    """Near-saturated logits: the gradient is still right (and finite)."""
    z = np.array([[700.0, 699.0, -300.0], [-500.0, -501.5, -499.0]])
    labels = np.array([1, 0])

    def f(z):
        return np.array(minicnn.softmax_cross_entropy(z, labels))

    assert_gradcheck(f, [z], [minicnn.softmax_cross_entropy_backward(z, labels)], np.array(1.0))


# --------------------------------------------------------------------------- gradcheck can fail

def test_gradcheck_catches_missing_batch_sum(F, rng):
    """grad_weight from sample 0 alone (the batch sum forgotten) must fail."""
    need(F, "conv2d", "conv2d_backward")
    x, w = rng.standard_normal((2, 2, 3, 3)), rng.standard_normal((1, 2, 2, 2))
    kw = dict(stride=1, padding=1)

    def f(x, w):
        return F.conv2d(x, w, **kw)

    g = rng.standard_normal(f(x, w).shape)
    gw = F.conv2d_backward(g, x, w, **kw)[1]
    assert gradcheck(f, [x, w], [None, gw], grad_out=g, rtol=RTOL, atol=ATOL)
    wrong_gw = F.conv2d_backward(g[:1], x[:1], w, **kw)[1]
    result = gradcheck(f, [x, w], [None, wrong_gw], grad_out=g, rtol=RTOL, atol=ATOL)
    assert not result
    assert "FAILED" in str(result) and "input 1" in str(result)


def test_gradcheck_catches_max_pool_gradient_everywhere(F, rng):
    """A max-pool backward that copies each window's gradient to every cell must fail."""
    need(F, "max_pool2d", "max_pool2d_backward")
    x = distinct(rng, (1, 2, 4, 4))

    def f(x):
        return F.max_pool2d(x, 2)

    g = rng.standard_normal(f(x).shape)
    assert gradcheck(f, [x], [F.max_pool2d_backward(g, x, 2)], grad_out=g, rtol=RTOL, atol=ATOL)
    everywhere = np.repeat(np.repeat(g, 2, axis=2), 2, axis=3)
    result = gradcheck(f, [x], [everywhere], grad_out=g, rtol=RTOL, atol=ATOL)
    assert not result
    assert "FAILED" in str(result)


def test_gradcheck_catches_wrong_activation_and_shape(rng):
    x = rng.standard_normal((3, 4)) + 0.1
    g = rng.standard_normal(x.shape)
    # relu backward that forgets the mask
    assert not gradcheck(minicnn.relu, [x], [g.copy()], grad_out=g)
    # sigmoid backward with s instead of s(1 - s)
    s = 1 / (1 + np.exp(-x))
    assert not gradcheck(minicnn.sigmoid, [x], [g * s], grad_out=g)
    # a gradient of the wrong shape is reported, not broadcast
    result = gradcheck(minicnn.relu, [x], [minicnn.relu_backward(g, x).T], grad_out=g)
    assert not result and "shape" in str(result)


def test_gradcheck_default_grad_out_is_random(rng):
    """With grad_out=None the seeded random upstream gradient is used, so a backward
    computed for grad_out = ones fails, and one computed with that same random
    array passes."""
    x, w = rng.standard_normal((3, 4)), rng.standard_normal((2, 4))

    def f(x, w):
        return minicnn.dense(x, w)

    ones_gx = minicnn.dense_backward(np.ones((3, 2)), x, w)[0]
    assert not gradcheck(f, [x, w], [ones_gx, None])
    g = np.random.default_rng(7).standard_normal((3, 2))
    assert gradcheck(f, [x, w], [minicnn.dense_backward(g, x, w)[0], None], seed=7)
