"""Element-wise activations and their gradients.

Each backward takes the upstream gradient and the forward's *input* x, and returns
grad_out * f'(x).  They run as NumPy array expressions: inside @njit, np.tanh and
np.exp become scalar library calls per element, which is slower than NumPy's loops.
"""
from __future__ import annotations

import numpy as np

from .argcheck import as_array, dtype_of, shape_str


def _pair(grad_out, x):
    dtype = dtype_of(grad_out, x)
    g, x = as_array("grad_out", grad_out, None, dtype=dtype), as_array("x", x, None, dtype=dtype)
    if g.shape != x.shape:
        raise ValueError(f"grad_out has shape {shape_str(g)} but x has shape {shape_str(x)}; they must match")
    return g, x


def _output(y, x, dtype):
    y = as_array("y", y, None, dtype=dtype)
    if y.shape != x.shape:
        raise ValueError(f"y (the forward's output) has shape {shape_str(y)} but x has shape {shape_str(x)}; "
                         "they must match")
    return y


def relu(x):
    """max(0, x), any shape."""
    x = as_array("x", x, None)
    return np.maximum(x, 0).astype(x.dtype, copy=False)


def relu_backward(grad_out, x):
    """grad_out where x > 0, else 0 (the derivative at 0 is taken as 0)."""
    g, x = _pair(grad_out, x)
    return np.where(x > 0, g, 0).astype(g.dtype, copy=False)


def tanh(x):
    """Hyperbolic tangent, any shape."""
    return np.tanh(as_array("x", x, None))


def tanh_backward(grad_out, x, *, y=None):
    """grad_out * (1 - tanh(x)^2).

    y: tanh(x) as the forward returned it, if kept; it saves computing tanh again, which on
    float32 is a scalar library call per element (LeNet-5's tanh layers cost more than its
    pooling).  It must be the forward's output: it is not checked against x."""
    g, x = _pair(grad_out, x)
    t = np.tanh(x) if y is None else _output(y, x, g.dtype)
    d = t * t            # a new array: neither y nor grad_out is written to
    np.subtract(1, d, out=d)
    return np.multiply(g, d, out=d)


def sigmoid(x):
    """1 / (1 + exp(-x)), computed as (1 + tanh(x/2)) / 2 so that no exp overflows."""
    x = as_array("x", x, None)
    half = x.dtype.type(0.5)
    return half * (1 + np.tanh(half * x))


def sigmoid_backward(grad_out, x, *, y=None):
    """grad_out * s * (1 - s) with s = sigmoid(x); y: sigmoid(x) from the forward, if kept
    (as for tanh_backward)."""
    g, x = _pair(grad_out, x)
    s = sigmoid(x) if y is None else _output(y, x, g.dtype)
    d = 1 - s
    np.multiply(d, s, out=d)
    return np.multiply(g, d, out=d)
