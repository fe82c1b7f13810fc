"""Element-wise activations and their gradients.

Each backward takes the upstream gradient and the forward's *input* x, and returns
grad_out * f'(x).  They run as NumPy array expressions: inside @njit, np.tanh and
np.exp become scalar library calls per element, which is slower than NumPy's loops.

Every function takes `out=None`: an array to write the result into and return, exactly the
result's shape and dtype, C-contiguous, writeable and sharing no memory with any input
(minicnn/outarg.py says why and checks it).  The result is the same, bit for bit, with or
without it: the same NumPy operations run in the same order, only into `out`.
"""
from __future__ import annotations

import numpy as np

from .argcheck import as_array, dtype_of, shape_str
from .outarg import check_out


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


def relu(x, *, out=None):
    """max(0, x), any shape."""
    x = as_array("x", x, None)
    if out is None:
        return np.maximum(x, 0).astype(x.dtype, copy=False)
    return np.maximum(x, 0, out=check_out("relu", "out", out, x.shape, x.dtype, {"x": x}))


def relu_backward(grad_out, x, *, out=None):
    """grad_out where x > 0, else 0 (the derivative at 0 is taken as 0)."""
    g, x = _pair(grad_out, x)
    if out is None:
        return np.where(x > 0, g, 0).astype(g.dtype, copy=False)
    out = check_out("relu_backward", "out", out, g.shape, g.dtype, {"grad_out": g, "x": x})
    out.fill(0)
    np.copyto(out, g, where=x > 0)      # what np.where(x > 0, g, 0) picks, element by element
    return out


def tanh(x, *, out=None):
    """Hyperbolic tangent, any shape."""
    x = as_array("x", x, None)
    return np.tanh(x, out=check_out("tanh", "out", out, x.shape, x.dtype, {"x": x}))     # out=None: a new array


def tanh_backward(grad_out, x, *, y=None, out=None):
    """grad_out * (1 - tanh(x)^2).

    y: tanh(x) as the forward returned it, if kept; it saves computing tanh again, which on
    float32 is a scalar library call per element (LeNet-5's tanh layers cost more than its
    pooling).  It must be the forward's output: it is not checked against x."""
    g, x = _pair(grad_out, x)
    y = None if y is None else _output(y, x, g.dtype)
    d = check_out("tanh_backward", "out", out, g.shape, g.dtype, {"grad_out": g, "x": x, "y": y})
    d = np.empty_like(g) if d is None else d
    t = np.tanh(x, out=d) if y is None else y
    np.multiply(t, t, out=d)    # neither y nor grad_out is written to
    np.subtract(1, d, out=d)
    return np.multiply(g, d, out=d)


def sigmoid(x, *, out=None):
    """1 / (1 + exp(-x)), computed as (1 + tanh(x/2)) / 2 so that no exp overflows."""
    x = as_array("x", x, None)
    half = x.dtype.type(0.5)
    if out is None:
        return half * (1 + np.tanh(half * x))
    s = check_out("sigmoid", "out", out, x.shape, x.dtype, {"x": x})     # the same steps, each into `out`
    np.multiply(half, x, out=s)
    np.tanh(s, out=s)
    np.add(1, s, out=s)
    return np.multiply(half, s, out=s)


def sigmoid_backward(grad_out, x, *, y=None, out=None):
    """grad_out * s * (1 - s) with s = sigmoid(x); y: sigmoid(x) from the forward, if kept
    (as for tanh_backward)."""
    g, x = _pair(grad_out, x)
    s = sigmoid(x) if y is None else _output(y, x, g.dtype)
    d = check_out("sigmoid_backward", "out", out, g.shape, g.dtype, {"grad_out": g, "x": x, "y": s})
    d = np.empty_like(g) if d is None else d
    np.subtract(1, s, out=d)
    np.multiply(d, s, out=d)
    return np.multiply(g, d, out=d)
