"""The element-wise activation layers, over minicnn's relu, tanh, sigmoid and their backwards."""
from __future__ import annotations

from .. import activations
from .base import Layer, as_input, reuse_one_of, reuse_or_new


class Activation(Layer):
    """What the activations share: y = f(x) element-wise, dL/dx = b(dL/dy, x) (any shape).

    A subclass sets `_f` and `_b` (the forward and backward functions) and `name`, its label in
    the summary table, where it is folded into the row of the layer before it.

    The layer writes its output into one of its previous two outputs and its input gradient into
    the previous one (the functions' `out`) whenever nothing outside the layer refers to them
    any more (base.reuse_one_of, base.reuse_or_new; why two outputs: see reuse_one_of), so a
    training loop allocates no new arrays for them.  The cost: up to two outputs and one input
    gradient stay alive between steps (each x's size: for LeNet-5's first tanh at batch 64 in
    float32, 3 x 1.2 MB)."""
    role = "activation"
    _f = _b = None
    _b_takes_output = False   # the backward accepts y = the forward's output (saves recomputing it)
    name = ""

    def __init__(self, label=None):
        self._ys = [None, None]    # the last two outputs, reused when free
        self._gx = None            # the last input gradient, likewise
        super().__init__(label)

    def default_label(self):
        return self.name

    def _forward(self, x):
        x = as_input(x)
        self._cache = None        # the cache may hold last step's output: let reuse_one_of see it free
        y = type(self)._f(x, out=reuse_one_of(self._ys, x.shape, x.dtype))
        self._cache = (x, y if self._b_takes_output else None)
        return y

    def _backward(self, grad_out):
        x, y = self._cache
        g = self._check_grad(grad_out, x.shape)
        if getattr(g, "dtype", None) != x.dtype:      # a mixed-dtype call: the function picks the dtype
            return type(self)._b(g, x, y=y) if y is not None else type(self)._b(g, x)
        out = reuse_or_new(self._gx, x.shape, x.dtype)
        self._gx = gx = type(self)._b(g, x, y=y, out=out) if y is not None else type(self)._b(g, x, out=out)
        return gx


class ReLU(Activation):
    """max(0, x) element-wise; gradient passes where x > 0."""
    _f, _b, name = staticmethod(activations.relu), staticmethod(activations.relu_backward), "relu"


class Tanh(Activation):
    """tanh(x) element-wise; gradient times 1 - tanh(x)^2."""
    _f, _b, name = staticmethod(activations.tanh), staticmethod(activations.tanh_backward), "tanh"
    _b_takes_output = True


class Sigmoid(Activation):
    """1 / (1 + exp(-x)) element-wise; gradient times s (1 - s)."""
    _f, _b, name = staticmethod(activations.sigmoid), staticmethod(activations.sigmoid_backward), "sigmoid"
    _b_takes_output = True
