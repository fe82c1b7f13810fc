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
