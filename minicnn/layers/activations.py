"""The element-wise activation layers, over minicnn's relu, tanh, sigmoid and their backwards."""
from __future__ import annotations

from .. import activations
from .base import Layer, as_input


class Activation(Layer):
    """What the activations share: y = f(x) element-wise, dL/dx = b(dL/dy, x) (any shape).

    A subclass sets `_f` and `_b` (the forward and backward functions) and `name`, its label in
    the summary table, where it is folded into the row of the layer before it."""
    role = "activation"
    _f = _b = None
    _b_takes_output = False   # the backward accepts y = the forward's output (saves recomputing it)
    name = ""

    def default_label(self):
        return self.name

    def _forward(self, x):
        x = as_input(x)
        y = type(self)._f(x)
        self._cache = (x, y if self._b_takes_output else None)
        return y

    def _backward(self, grad_out):
        x, y = self._cache
        g = self._check_grad(grad_out, x.shape)
        return type(self)._b(g, x, y=y) if y is not None else type(self)._b(g, x)


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
