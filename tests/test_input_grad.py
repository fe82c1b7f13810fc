"""Backward without the input gradient: conv2d_backward(..., input_grad=False), Layer.backward and
Sequential.backward(..., input_grad=False), and training, which uses it for the first layer.

The input gradient of a network's first layer is dL/d(images): nothing in training needs it, and
for LeNet-5's first convolution it is about half of the backward's work.  These tests check that
it is really not computed (the input-gradient kernel is not called), that every other gradient is
bit for bit what the full backward gives, and that the options are refused when misused.
(The functional op on both backends: tests/test_gradients.py.)"""
import numpy as np
import pytest

import minicnn
from minicnn.kernels import KERNELS
from minicnn.training import train
from minicnn.layers import AvgPool2D, Conv2D, Dense, Flatten, ReLU, Sequential, Tanh

DTYPES = [np.float32, np.float64]


@pytest.fixture
def input_grad_calls(monkeypatch):
    """Counts calls of the input-gradient kernel of both CPU rows of the op table."""
    calls = []
    for impl in ("fast", "loop"):
        kernel = KERNELS[impl]["conv2d_backward_input"]

        def spy(*args, _kernel=kernel, _impl=impl, **kw):
            calls.append(_impl)
            return _kernel(*args, **kw)
        monkeypatch.setitem(KERNELS[impl], "conv2d_backward_input", spy)
    return calls


@pytest.mark.parametrize("impl", ["fast", "loop"])
@pytest.mark.parametrize("dtype", DTYPES)
def test_the_functional_op_skips_the_kernel_and_honours_out(impl, dtype, input_grad_calls, rng):
    x = rng.standard_normal((3, 2, 9, 8)).astype(dtype)
    w = rng.standard_normal((5, 2, 3, 3)).astype(dtype)
    g = rng.standard_normal((3, 5, 5, 4)).astype(dtype)
    full = minicnn.conv2d_backward(g, x, w, 2, 1, impl=impl)
    assert input_grad_calls == [impl]
    outs = (None, np.full(w.shape, np.nan, dtype), np.full(5, np.nan, dtype))
    got = minicnn.conv2d_backward(g, x, w, 2, 1, impl=impl, out=outs, input_grad=False)
    assert input_grad_calls == [impl], "input_grad=False still ran the input-gradient kernel"
    assert got[0] is None and got[1] is outs[1] and got[2] is outs[2]
    np.testing.assert_array_equal(outs[1], full[1])
    np.testing.assert_array_equal(outs[2], full[2])
    # an array for grad_x with input_grad=False: a mistake, refused before any work, the array untouched
    gx = np.full(x.shape, 7, dtype)
    with pytest.raises(ValueError, match=r"out\[0\] \(grad_x\).*input_grad=False"):
        minicnn.conv2d_backward(g, x, w, 2, 1, impl=impl, out=(gx, None, None), input_grad=False)
    assert (gx == 7).all() and input_grad_calls == [impl]


@pytest.mark.parametrize("dtype", DTYPES)
def test_conv_layer_backward_without_input_grad(dtype, input_grad_calls, rng):
    layer, twin = Conv2D(3, 4, 3, padding=1, rng=0, dtype=dtype), Conv2D(3, 4, 3, padding=1, rng=0, dtype=dtype)
    x = rng.standard_normal((2, 3, 7, 7)).astype(dtype)
    g = rng.standard_normal((2, 4, 7, 7)).astype(dtype)
    layer.forward(x)
    twin.forward(x)
    want = twin.backward(g)
    calls = len(input_grad_calls)
    assert layer.backward(g, input_grad=False) is None
    assert len(input_grad_calls) == calls
    for p, q in zip(layer.parameters(), twin.parameters()):
        np.testing.assert_array_equal(p.grad, q.grad, err_msg=p.name)
    # the layer's reused buffers are intact: a full backward afterwards is still exact
    np.testing.assert_array_equal(layer.backward(g), want)
    with pytest.raises(TypeError, match=r"Conv2D.*input_grad must be True or False"):
        layer.backward(g, input_grad="no")


def lenet_like(dtype, first_dense=False):
    if first_dense:
        return Sequential(Flatten(), Dense(3 * 8 * 8, 10, rng=1, dtype=dtype), Tanh(), Dense(10, 3, rng=2, dtype=dtype))
    return Sequential(Conv2D(3, 4, 3, rng=0, dtype=dtype), Tanh(), AvgPool2D(2), Conv2D(4, 5, 3, rng=1, dtype=dtype),
                      ReLU(), Flatten(), Dense(5, 3, rng=2, dtype=dtype))


@pytest.mark.parametrize("first_dense", [False, True])
@pytest.mark.parametrize("dtype", DTYPES)
def test_sequential_backward_without_input_grad(dtype, first_dense, input_grad_calls, rng):
    """Every parameter's gradient equals the full backward's; None comes back; only the first
    layer skips (a Conv2D first: one input-gradient call fewer; a layer that cannot skip still
    runs its backward, for its parameters, and its dL/dx is dropped)."""
    net, twin = lenet_like(dtype, first_dense), lenet_like(dtype, first_dense)
    x = rng.standard_normal((2, 3, 8, 8)).astype(dtype)
    g = rng.standard_normal(net.forward(x).shape).astype(dtype)
    twin.forward(x)
    assert twin.backward(g).shape == x.shape
    full_calls = len(input_grad_calls)
    assert net.backward(g, input_grad=False) is None
    assert len(input_grad_calls) - full_calls == (full_calls if first_dense else full_calls - 1)
    for p, q in zip(net.parameters(), twin.parameters()):
        np.testing.assert_array_equal(p.grad, q.grad, err_msg=p.name)


def test_training_skips_only_the_first_layers_input_gradient(input_grad_calls, monkeypatch):
    """minicnn.train asks for no input gradient of the first layer, and trains to exactly the
    weights a full backward gives."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((12, 3, 8, 8)).astype(np.float32)
    y = rng.integers(0, 3, 12)
    net, twin = lenet_like(np.float32), lenet_like(np.float32)
    train(net, (x, y), epochs=2, batch_size=4, progress=False)
    assert len(input_grad_calls) == 6      # 2 epochs x 3 batches, the second conv only
    full = Sequential.backward
    monkeypatch.setattr(Sequential, "backward", lambda self, g, input_grad=True: full(self, g))
    train(twin, (x, y), epochs=2, batch_size=4, progress=False)
    assert len(input_grad_calls) == 6 + 12
    for p, q in zip(net.parameters(), twin.parameters()):
        np.testing.assert_array_equal(p.value, q.value, err_msg=p.name)


def test_training_a_model_of_ones_own_making_still_works():
    """train() passes input_grad only to a Sequential: a duck-typed model with backward(g) is
    called as before."""
    class Mine:
        def __init__(self):
            self.net = lenet_like(np.float32)
            self.backward_args = []

        def forward(self, x):
            return self.net.forward(x)

        def backward(self, g):
            self.backward_args.append(g.shape)
            return self.net.backward(g)

        def parameters(self):
            return self.net.parameters()

        def train(self, mode=True):
            self.net.train(mode)
            return self

        def eval(self):
            return self.train(False)

    rng = np.random.default_rng(1)
    model = Mine()
    train(model, (rng.standard_normal((8, 3, 8, 8)).astype(np.float32), rng.integers(0, 3, 8)), epochs=1,
                  batch_size=4, progress=False, optimizer="sgd")
    assert model.backward_args == [(4, 3), (4, 3)]
