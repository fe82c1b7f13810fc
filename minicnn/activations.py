"""Element-wise activations and their gradients.

Each backward takes the upstream gradient and the forward's *input* x, and returns
grad_out * f'(x).  They run as NumPy array expressions: inside @njit, np.tanh and
np.exp become scalar library calls per element, which is slower than NumPy's loops.
"""
from __future__ import annotations

import numpy as np

from ._checks import as_array, dtype_of, shape_str


def _pair(grad_out, x):
    dtype = dtype_of(grad_out, x)
    g, x = as_array("grad_out", grad_out, None, dtype=dtype), as_array("x", x, None, dtype=dtype)
    if g.shape != x.shape:
        raise ValueError(f"grad_out has shape {shape_str(g)} but x has shape {shape_str(x)}; they must match")
    return g, x


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


def tanh_backward(grad_out, x):
    """grad_out * (1 - tanh(x)^2)."""
    g, x = _pair(grad_out, x)
    t = np.tanh(x)
    return g * (1 - t * t)


def sigmoid(x):
    """1 / (1 + exp(-x)), computed as (1 + tanh(x/2)) / 2 so that no exp overflows."""
    x = as_array("x", x, None)
    half = x.dtype.type(0.5)
    return half * (1 + np.tanh(half * x))


def sigmoid_backward(grad_out, x):
    """grad_out * s * (1 - s) with s = sigmoid(x)."""
    g, x = _pair(grad_out, x)
    s = sigmoid(x)
    return g * s * (1 - s)
