"""Conv2D reuses its result arrays (output, input gradient, parameter gradients) only when nothing
outside the layer refers to them any more, so reuse never changes an array a caller still holds."""
import numpy as np
import pytest

import minicnn
from minicnn.layers import Conv2D


def _setup(dtype):
    rng = np.random.default_rng(0)
    layer = Conv2D(3, 4, 3, stride=2, padding=1, rng=1, dtype=dtype)
    xs = [rng.standard_normal((2, 3, 9, 8)).astype(dtype) for _ in range(3)]
    gs = [rng.standard_normal((2, 4, 5, 4)).astype(dtype) for _ in range(3)]
    return layer, xs, gs


def _expected(layer, x, g):
    w, b = layer.weight.value, layer.bias.value
    return minicnn.conv2d(x, w, b, 2, 1), minicnn.conv2d_backward(g, x, w, 2, 1)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_results_a_caller_holds_are_never_overwritten(dtype):
    layer, xs, gs = _setup(dtype)
    held = []
    for x, g in zip(xs, gs):
        y = layer.forward(x)
        gx = layer.backward(g)
        held.append((y, gx, layer.weight.grad, layer.bias.grad, _expected(layer, x, g)))
    ids = {id(a) for h in held for a in h[:4]}
    assert len(ids) == 4 * len(xs)                # every held result is its own array
    for y, gx, gw, gb, (ey, (egx, egw, egb)) in held:
        for got, want in ((y, ey), (gx, egx), (gw, egw), (gb, egb)):
            np.testing.assert_array_equal(got, want)
    held.clear()
    view = layer.weight.grad[0]                   # a view keeps its base alive: no reuse either
    kept = view.copy()
    layer.forward(xs[0])
    layer.backward(gs[0])
    assert layer.weight.grad is not view.base
    np.testing.assert_array_equal(view, kept)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_results_nobody_holds_are_reused_and_correct(dtype):
    layer, xs, gs = _setup(dtype)
    y = layer.forward(xs[0])
    gx = layer.backward(gs[0])
    first = [id(a) for a in (y, gx, layer.weight.grad, layer.bias.grad)]
    del y, gx
    for x, g in zip(xs[1:], gs[1:]):
        y = layer.forward(x)
        gx = layer.backward(g)
        assert [id(a) for a in (y, gx, layer.weight.grad, layer.bias.grad)] == first
        ey, (egx, egw, egb) = _expected(layer, x, g)
        for got, want in ((y, ey), (gx, egx), (layer.weight.grad, egw), (layer.bias.grad, egb)):
            np.testing.assert_array_equal(got, want)
        del y, gx, got, want     # `got` still names bias.grad after the loop: it would block its reuse
    # a new input shape: new arrays of the new shape
    y = layer.forward(xs[0][:1])
    assert y.shape == (1, 4, 5, 4) and layer.backward(gs[0][:1]).shape == (1, 3, 9, 8)


# ------------------------------------------------------------ the other layers, and inside a Sequential

from minicnn import layers, models, optim       # noqa: E402  (the Conv2D tests above need only Conv2D)
from minicnn.layers import conv as conv_layer, activations as act_layer, pool as pool_layer   # noqa: E402

OTHER_LAYERS = {"relu": lambda: layers.ReLU(), "tanh": lambda: layers.Tanh(), "sigmoid": lambda: layers.Sigmoid(),
                "maxpool": lambda: layers.MaxPool2D(2), "avgpool": lambda: layers.AvgPool2D(3, 2, 1)}


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", sorted(OTHER_LAYERS))
def test_activation_and_pool_results_a_caller_holds_are_never_overwritten(name, dtype):
    layer = OTHER_LAYERS[name]()
    rng = np.random.default_rng(0)
    held = []
    for _ in range(4):
        x = rng.standard_normal((2, 3, 9, 8)).astype(dtype)
        y = layer.forward(x)
        gx = layer.backward(rng.standard_normal(y.shape).astype(dtype))
        held.append((y, gx, y.copy(), gx.copy()))
    assert len({id(a) for h in held for a in h[:2]}) == 2 * len(held)
    for y, gx, y0, gx0 in held:
        assert y.dtype == dtype and gx.dtype == dtype
        np.testing.assert_array_equal(y, y0)
        np.testing.assert_array_equal(gx, gx0)


def _lenet_step(model, loss_fn, opt, x, labels, seen=None):
    """One training step of LeNet-5 layer by layer (what Sequential.forward/backward do), noting
    in `seen` ({(layer index, 'f' or 'b'): set of ids}) which arrays the reusing layers returned."""
    reusing = (layers.Conv2D, act_layer.Activation, pool_layer.Pool2D)
    h = x
    for i, layer in enumerate(model.layers):
        h = layer.forward(h)
        if seen is not None and isinstance(layer, reusing):
            seen.setdefault((i, "f"), set()).add(id(h))
    loss = loss_fn.forward(h, labels)
    g = loss_fn.backward()
    for i in reversed(range(len(model.layers))):
        g = model.layers[i].backward(g)
        if seen is not None and isinstance(model.layers[i], reusing):
            seen.setdefault((i, "b"), set()).add(id(g))
    opt.step()
    return loss


def _lenet(batch=8, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((batch, 1, 32, 32)).astype(np.float32)
    model = models.lenet5(seed=0)
    return model, layers.SoftmaxCrossEntropy(), optim.SGD(model.parameters(), lr=0.05), x, rng.integers(0, 10, batch)


def test_lenet_training_allocates_no_new_results_after_the_second_step():
    """In a Sequential, each reusing layer's output alternates between two arrays (the next layer
    still holds the last one) and its input gradient stays one array: no step after the second
    returns an array the first two did not.  (Conv2D#0's output alternates: Tanh#1 caches it.)"""
    model, loss_fn, opt, x, labels = _lenet()
    first = {}
    for _ in range(2):
        _lenet_step(model, loss_fn, opt, x, labels, first)
    later = {}
    for _ in range(4):
        _lenet_step(model, loss_fn, opt, x, labels, later)
    assert len(first) == 2 * 11         # 3 convolutions, 2 poolings and 6 tanh, forward and backward
    for key, ids in later.items():
        assert ids <= first[key], key
        assert len(ids) <= (2 if key[1] == "f" else 1), key     # one when nothing held the last output
    assert len(later[0, "f"]) == 2 and len(later[1, "f"]) == 2


def test_lenet_trained_with_reuse_equals_without(monkeypatch):
    """Reusing result arrays changes where results go, never what they are: the same model trained
    a few steps with reuse and with reuse switched off (every result a new array, allocated by
    the functions themselves) ends with bitwise equal parameters and losses."""
    def run():
        model, loss_fn, opt, x, labels = _lenet()
        losses = [_lenet_step(model, loss_fn, opt, x, labels) for _ in range(5)]
        return losses, [p.value.copy() for p in model.parameters()]

    with_reuse = run()
    for module in (conv_layer, act_layer, pool_layer):
        if hasattr(module, "reuse_one_of"):
            monkeypatch.setattr(module, "reuse_one_of", lambda held, shape, dtype: None)
        if hasattr(module, "reuse_or_new"):
            monkeypatch.setattr(module, "reuse_or_new", lambda held, shape, dtype: None)
    without = run()
    assert with_reuse[0] == without[0]
    for a, b in zip(with_reuse[1], without[1]):
        assert a.tobytes() == b.tobytes()
