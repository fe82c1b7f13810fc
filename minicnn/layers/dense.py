"""The fully connected end of a network: `Flatten` (images to vectors) and `Dense`, over
minicnn.dense / dense_backward."""
from __future__ import annotations

from math import prod

import numpy as np

from ..argcheck import shape_str
from ..dense import dense, dense_backward
from .base import Layer, Parameter, as_input, init_weights, param_dtype


class Flatten(Layer):
    """(N, C, H, W) (or any (N, ...)) -> (N, C*H*W), row-major, as a new array; backward reshapes back."""
    role = "reshape"

    def _forward(self, x):
        x = as_input(x)
        if x.ndim < 2:
            raise ValueError(f"expects input (N, ...) with a batch axis, got shape {shape_str(x)}")
        self._cache = x.shape
        return x.reshape(x.shape[0], -1).copy()

    def _backward(self, grad_out):
        g = self._check_grad(grad_out, (self._cache[0], prod(self._cache[1:])))
        return g.reshape(self._cache).copy()

    def output_shape(self, input_shape):
        return (prod(input_shape),)


class Dense(Layer):
    """Fully connected layer, y = x @ weight.T + bias.

    Input (N, in_features) -> output (N, out_features); put a Flatten() before it after a
    convolution or pooling layer.  Parameters: weight (out, in), bias (out,); out * (in + 1).
    init as for Conv2D, fan_in = in_features, fan_out = out_features.
    """

    def __init__(self, in_features, out_features, *, init="he", rng=None, dtype=np.float32, label=None):
        self.in_features, self.out_features = int(in_features), int(out_features)
        if self.in_features < 1 or self.out_features < 1:
            raise ValueError(f"Dense: in_features and out_features must be >= 1, got {in_features}, {out_features}")
        w = init_weights((self.out_features, self.in_features), self.in_features, self.out_features, init, rng,
                         dtype)
        self.weight = Parameter("weight", w)
        self.bias = Parameter("bias", np.zeros(self.out_features, dtype=param_dtype(dtype)))
        super().__init__(label)

    def default_label(self):
        return "Fully connected"

    def parameters(self):
        return [self.weight, self.bias]

    def _forward(self, x):
        x = as_input(x, dtype=self.weight.value.dtype)
        if x.ndim != 2 or x.shape[1] != self.in_features:
            hint = " (add a Flatten() layer before it)" if x.ndim > 2 else ""
            raise ValueError(f"expects input (N, {self.in_features}), got shape {shape_str(x)}{hint}")
        self._cache = x
        return dense(x, self.weight.value, self.bias.value)

    skips_input_grad = True     # backward(g, input_grad=False) computes no input gradient

    def _backward(self, grad_out, input_grad=True):
        x = self._cache
        g = self._check_grad(grad_out, (x.shape[0], self.out_features))
        gx, gw, gb = dense_backward(g, x, self.weight.value, input_grad=input_grad)
        self.weight.grad, self.bias.grad = gw, gb
        return gx

    def output_shape(self, input_shape):
        if tuple(input_shape) != (self.in_features,):
            raise ValueError(f"{self!r}: expects a ({self.in_features},) input, got {tuple(input_shape)}")
        return (self.out_features,)

    def config(self):
        return {"in_features": self.in_features, "out_features": self.out_features,
                "dtype": str(self.weight.value.dtype), **super().config()}

    def __repr__(self):
        return f"Dense({self.in_features}, {self.out_features})"
