"""Backward without the input gradient: conv2d_backward and dense_backward(..., input_grad=False), Layer.backward and
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


@pytest.fixture
def dense_calls(monkeypatch):
    """The input_grad argument of every call of the dense backward of both CPU rows."""
    calls = []
    for impl in ("fast", "loop"):
        kernel = KERNELS[impl]["dense_backward"]

        def spy(grad_out, x, w, input_grad=True, _kernel=kernel):
            calls.append(input_grad)
            return _kernel(grad_out, x, w, input_grad)
        monkeypatch.setitem(KERNELS[impl], "dense_backward", spy)
    return calls


@pytest.mark.parametrize("first_dense", [False, True])
@pytest.mark.parametrize("dtype", DTYPES)
def test_sequential_backward_without_input_grad(dtype, first_dense, input_grad_calls, dense_calls, rng,
                                                monkeypatch):
    """Every parameter's gradient equals the full backward's; None comes back; only the first
    layer with parameters skips its dL/dx (a Conv2D first: one input-gradient call fewer; a Dense
    after a Flatten: the Dense is asked for no input gradient, and the Flatten is not run backward
    at all)."""
    net, twin = lenet_like(dtype, first_dense), lenet_like(dtype, first_dense)
    x = rng.standard_normal((2, 3, 8, 8)).astype(dtype)
    g = rng.standard_normal(net.forward(x).shape).astype(dtype)
    twin.forward(x)
    assert twin.backward(g).shape == x.shape
    full_calls = len(input_grad_calls)
    assert dense_calls == ([True, True] if first_dense else [True])
    ran_back = []
    for i, layer in enumerate(net.layers):
        monkeypatch.setattr(layer, "backward", lambda g, *, input_grad=True, _i=i, _f=layer.backward:
                            ran_back.append((_i, input_grad)) or _f(g, input_grad=input_grad))
    assert net.backward(g, input_grad=False) is None
    last = len(net.layers) - 1
    if first_dense:     # Flatten, Dense, Tanh, Dense: layer 1 is the first with parameters
        assert ran_back == [(last, True), (2, True), (1, False)]
        assert dense_calls == [True, True, True, False]
        assert len(input_grad_calls) == full_calls == 0
    else:               # the first Conv2D is layer 0: every layer runs, the first without dL/dx
        assert ran_back == [(i, i > 0) for i in range(last, -1, -1)]
        assert dense_calls == [True, True]
        assert len(input_grad_calls) - full_calls == full_calls - 1
    for p, q in zip(net.parameters(), twin.parameters()):
        np.testing.assert_array_equal(p.grad, q.grad, err_msg=p.name)


def test_sequential_without_input_grad_and_without_parameters_runs_nothing(rng):
    """A network of parameter-free layers has no gradient anyone needs: backward(input_grad=False)
    returns None without running a layer; input_grad must still be a bool."""
    net = Sequential(ReLU(), Flatten())
    x = rng.standard_normal((2, 3, 4, 4))
    y = net.forward(x)
    assert net.backward(np.ones_like(y), input_grad=False) is None
    assert net.backward(np.ones_like(y)).shape == x.shape
    with pytest.raises(TypeError, match=r"input_grad must be True or False, got 0"):
        net.backward(np.ones_like(y), input_grad=0)


@pytest.mark.parametrize("impl", ["fast", "loop"])
@pytest.mark.parametrize("dtype", DTYPES)
def test_dense_backward_without_the_input_gradient(impl, dtype, rng):
    """dense_backward(..., input_grad=False): None for grad_x, the weight and bias gradients bit for
    bit the full backward's; a flag that is not a bool is refused, naming it."""
    x = rng.standard_normal((7, 13)).astype(dtype)
    w = rng.standard_normal((6, 13)).astype(dtype)
    g = rng.standard_normal((7, 6)).astype(dtype)
    full = minicnn.dense_backward(g, x, w, impl=impl)
    assert full[0].shape == x.shape
    gx, gw, gb = minicnn.dense_backward(g, x, w, impl=impl, input_grad=False)
    assert gx is None and gw.dtype == gb.dtype == dtype
    np.testing.assert_array_equal(gw, full[1])
    np.testing.assert_array_equal(gb, full[2])
    tol = 1e-4 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(full[0], g.astype(np.float64) @ w, rtol=tol, atol=tol)
    for bad in ("no", 1, None):
        with pytest.raises(TypeError, match=r"dense_backward: input_grad must be True or False"):
            minicnn.dense_backward(g, x, w, impl=impl, input_grad=bad)


@pytest.mark.parametrize("threads", [1, 2])
def test_the_fast_dense_kernel_gets_no_input_rows_to_compute(threads, monkeypatch, rng):
    """The fast row's compiled kernel is handed a grad_x with no rows when input_grad is False (so
    its input-gradient loop does no work), and all N rows otherwise, on one thread and on two
    (N large enough to run in parallel)."""
    import numba
    from minicnn.kernels.fast import dense as fd
    seen = []
    real_run = fd.run

    def spy(part, *args):
        if part is fd.dense_backward_part:
            seen.append(args[3].shape)      # (grad_out, x, w, grad_x, grad_w, grad_b)
        return real_run(part, *args)
    monkeypatch.setattr(fd, "run", spy)
    x = rng.standard_normal((256, 120)).astype(np.float32)
    w = rng.standard_normal((84, 120)).astype(np.float32)
    g = rng.standard_normal((256, 84)).astype(np.float32)
    before = numba.get_num_threads()
    numba.set_num_threads(min(threads, numba.config.NUMBA_NUM_THREADS))
    try:
        full = minicnn.dense_backward(g, x, w)
        part = minicnn.dense_backward(g, x, w, input_grad=False)
    finally:
        numba.set_num_threads(before)
    assert seen == [(256, 120), (0, 120)]
    assert part[0] is None
    np.testing.assert_array_equal(part[1], full[1])
    np.testing.assert_array_equal(part[2], full[2])


@pytest.mark.parametrize("dtype", DTYPES)
def test_dense_layer_backward_without_input_grad(dtype, dense_calls, rng):
    layer, twin = Dense(5, 4, rng=0, dtype=dtype), Dense(5, 4, rng=0, dtype=dtype)
    x = rng.standard_normal((3, 5)).astype(dtype)
    g = rng.standard_normal((3, 4)).astype(dtype)
    layer.forward(x)
    twin.forward(x)
    want = twin.backward(g)
    assert layer.backward(g, input_grad=False) is None
    assert dense_calls == [True, False]
    for p, q in zip(layer.parameters(), twin.parameters()):
        np.testing.assert_array_equal(p.grad, q.grad, err_msg=p.name)
    np.testing.assert_array_equal(layer.backward(g), want)
    with pytest.raises(TypeError, match=r"Dense.*input_grad must be True or False"):
        layer.backward(g, input_grad="no")


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
