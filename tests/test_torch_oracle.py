"""A second, external oracle: torch.nn.functional and autograd, when torch is installed.

A handful of float64 cases per op, forward and backward (torch's gradients come
from autograd with grad_out as the upstream gradient).  tests/reference.py is
checked against torch here as well, so the oracle itself is vouched for.
"""
import numpy as np
import pytest

import minicnn
import reference as R
from backend_under_test import need

torch = pytest.importorskip("torch")
TF = torch.nn.functional


def t(a):
    return torch.tensor(np.asarray(a, dtype=np.float64), requires_grad=True)


def torch_forward_backward(fn, arrays, grad_out_seed):
    """fn(*tensors) -> y; returns (y, [d sum(y * G) / d array for each array]) with a seeded G."""
    ts = [t(a) for a in arrays]
    y = fn(*ts)
    g = np.random.default_rng(grad_out_seed).standard_normal(tuple(y.shape))
    y.backward(torch.tensor(g))
    return y.detach().numpy(), [tt.grad.numpy() for tt in ts], g


def close(got, want, what=""):
    got = np.asarray(got)
    assert got.shape == want.shape, f"{what}: {got.shape} vs {want.shape}"
    np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-9 * max(1.0, float(np.abs(want).max(initial=0))),
                               err_msg=what)


CONV2D = [  # x shape, weight shape, stride, padding, dilation
    ((2, 3, 7, 8), (4, 3, 3, 2), 1, 0, 1),
    ((1, 2, 9, 6), (3, 2, 3, 3), (2, 1), (1, 2), (1, 2)),
    ((2, 1, 5, 5), (2, 1, 4, 4), 3, 2, 1),
    ((1, 2, 6, 7), (2, 2, 3, 3), 1, "same", 2),
]


@pytest.mark.parametrize("xs,ws,stride,padding,dilation", CONV2D)
def test_conv2d_vs_torch(F, rng, xs, ws, stride, padding, dilation):
    need(F, "conv2d", "conv2d_backward")
    x, w, b = rng.standard_normal(xs), rng.standard_normal(ws), rng.standard_normal(ws[0])
    kw = dict(stride=stride, padding=padding, dilation=dilation)
    y_t, (gx_t, gw_t, gb_t), g = torch_forward_backward(lambda x, w, b: TF.conv2d(x, w, b, **kw), [x, w, b], 1)
    close(F.conv2d(x, w, b, **kw), y_t, "conv2d")
    close(R.conv2d(x, w, b, **kw), y_t, "reference conv2d")
    for got, ref, want in zip(F.conv2d_backward(g, x, w, **kw), R.conv2d_backward(g, x, w, **kw), (gx_t, gw_t, gb_t)):
        close(got, want, "conv2d_backward")
        close(ref, want, "reference conv2d_backward")


POOL = [  # x shape, kernel, stride, padding
    ((2, 2, 6, 6), 2, None, 0),
    ((1, 3, 7, 5), 3, 2, 1),
    ((2, 1, 6, 7), (3, 2), (1, 2), (1, 1)),
]


@pytest.mark.parametrize("xs,kernel_size,stride,padding", POOL)
def test_max_pool2d_vs_torch(F, rng, xs, kernel_size, stride, padding):
    need(F, "max_pool2d", "max_pool2d_backward")
    x = rng.permutation(int(np.prod(xs))).reshape(xs) * 0.5
    kw = dict(kernel_size=kernel_size, stride=stride, padding=padding)
    y_t, (gx_t,), g = torch_forward_backward(lambda x: TF.max_pool2d(x, **kw), [x], 2)
    close(F.max_pool2d(x, **kw), y_t, "max_pool2d")
    close(R.max_pool2d(x, **kw), y_t, "reference max_pool2d")
    close(F.max_pool2d_backward(g, x, **kw), gx_t, "max_pool2d_backward")
    close(R.max_pool2d_backward(g, x, **kw), gx_t, "reference max_pool2d_backward")


@pytest.mark.parametrize("count_include_pad", [True, False])
@pytest.mark.parametrize("xs,kernel_size,stride,padding", POOL)
def test_avg_pool2d_vs_torch(F, rng, xs, kernel_size, stride, padding, count_include_pad):
    need(F, "avg_pool2d", "avg_pool2d_backward")
    x = rng.standard_normal(xs)
    kw = dict(kernel_size=kernel_size, stride=stride, padding=padding, count_include_pad=count_include_pad)
    y_t, (gx_t,), g = torch_forward_backward(lambda x: TF.avg_pool2d(x, **kw), [x], 3)
    close(F.avg_pool2d(x, **kw), y_t, "avg_pool2d")
    close(R.avg_pool2d(x, **kw), y_t, "reference avg_pool2d")
    close(F.avg_pool2d_backward(g, x, **kw), gx_t, "avg_pool2d_backward")
    close(R.avg_pool2d_backward(g, x, **kw), gx_t, "reference avg_pool2d_backward")


@pytest.mark.parametrize("xs,ws,stride,padding,output_padding,dilation", [
    ((2, 3, 4, 5), (3, 2, 3, 3), 1, 0, 0, 1),
    ((1, 2, 3, 4), (2, 3, 3, 2), 2, 1, 1, 1),
    ((2, 2, 3, 3), (2, 2, 2, 4), (3, 2), (1, 0), (2, 1), (1, 2)),
])
def test_conv_transpose2d_vs_torch(rng, xs, ws, stride, padding, output_padding, dilation):
    x, w, b = rng.standard_normal(xs), rng.standard_normal(ws), rng.standard_normal(ws[1])
    kw = dict(stride=stride, padding=padding, output_padding=output_padding, dilation=dilation)
    y_t, grads_t, g = torch_forward_backward(lambda x, w, b: TF.conv_transpose2d(x, w, b, **kw), [x, w, b], 4)
    close(minicnn.conv_transpose2d(x, w, b, **kw), y_t, "conv_transpose2d")
    close(R.conv_transpose2d(x, w, b, **kw), y_t, "reference conv_transpose2d")
    for got, ref, want in zip(minicnn.conv_transpose2d_backward(g, x, w, **kw),
                              R.conv_transpose2d_backward(g, x, w, **kw), grads_t):
        close(got, want, "conv_transpose2d_backward")
        close(ref, want, "reference conv_transpose2d_backward")


@pytest.mark.parametrize("xs,ws,stride,padding,dilation", [((2, 3, 11), (4, 3, 3), 1, 0, 1),
                                                           ((1, 2, 12), (3, 2, 4), 2, 3, 2)])
def test_conv1d_vs_torch(rng, xs, ws, stride, padding, dilation):
    x, w, b = rng.standard_normal(xs), rng.standard_normal(ws), rng.standard_normal(ws[0])
    kw = dict(stride=stride, padding=padding, dilation=dilation)
    y_t, grads_t, g = torch_forward_backward(lambda x, w, b: TF.conv1d(x, w, b, **kw), [x, w, b], 5)
    close(minicnn.conv1d(x, w, b, **kw), y_t, "conv1d")
    for got, want in zip(minicnn.conv1d_backward(g, x, w, **kw), grads_t):
        close(got, want, "conv1d_backward")


def test_dense_activations_softmax_vs_torch(rng):
    x, w, b = rng.standard_normal((3, 5)), rng.standard_normal((4, 5)), rng.standard_normal(4)
    y_t, grads_t, g = torch_forward_backward(TF.linear, [x, w, b], 6)
    close(minicnn.dense(x, w, b), y_t, "dense")
    for got, want in zip(minicnn.dense_backward(g, x, w), grads_t):
        close(got, want, "dense_backward")
    a = 3 * rng.standard_normal((2, 3, 4))
    for name, fn in (("relu", torch.relu), ("tanh", torch.tanh), ("sigmoid", torch.sigmoid)):
        y_t, (gx_t,), g = torch_forward_backward(fn, [a], 7)
        close(getattr(minicnn, name)(a), y_t, name)
        close(getattr(minicnn, name + "_backward")(g, a), gx_t, name + "_backward")
    z, labels = 5 * rng.standard_normal((4, 6)), np.array([0, 5, 2, 2])
    z[1, 3] = 1000.0
    close(minicnn.softmax(z), TF.softmax(torch.tensor(z), dim=1).numpy(), "softmax")
    zt = t(z)
    loss = TF.cross_entropy(zt, torch.tensor(labels))
    loss.backward()
    np.testing.assert_allclose(minicnn.softmax_cross_entropy(z, labels), loss.item(), rtol=1e-12)
    close(minicnn.softmax_cross_entropy_backward(z, labels), zt.grad.numpy(), "softmax_cross_entropy_backward")
