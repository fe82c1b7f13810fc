"""Fully connected (dense, linear) layer: every output sees every input."""
from __future__ import annotations

import numpy as np

from .argcheck import as_array, check_finite as _check_finite, check_grad_out, dtype_of, flag, shape_str
from .kernels import kernels


def _inputs(what, x, weight, extra=()):
    dtype = dtype_of(x, weight, *extra)
    x = as_array("x", x, 2, "(N, in_features)", dtype)
    weight = as_array("weight", weight, 2, "(out_features, in_features)", dtype)
    if x.shape[1] != weight.shape[1]:
        raise ValueError(f"{what}: x has {x.shape[1]} features (shape {shape_str(x)}) but weight expects "
                         f"{weight.shape[1]} (shape {shape_str(weight)}); weight must be (out_features, in_features)")
    return x, weight, dtype


def dense(x, weight, bias=None, *, check_finite=True, impl="fast"):
    """Fully connected layer, out = x @ weight.T + bias (as torch.nn.functional.linear).

    Inputs: x (N, in_features), weight (out_features, in_features), bias (out_features,) or None.
    Returns: (N, out_features).
    """
    x, weight, dtype = _inputs("dense", x, weight, (bias,))
    if bias is None:
        b = np.zeros(weight.shape[0], dtype=dtype)
    else:
        b = as_array("bias", bias, 1, "(out_features,)", dtype)
        if b.shape[0] != weight.shape[0]:
            raise ValueError(f"bias must have shape ({weight.shape[0]},), got {shape_str(b)}")
    if check_finite:
        for name, a in (("x", x), ("weight", weight), ("bias", b)):
            _check_finite(name, a)
    return kernels(impl)["dense_forward"](x, weight, b)


def dense_backward(grad_out, x, weight, *, impl="fast", input_grad=True):
    """Gradients of dense.

    Inputs: grad_out (N, out_features), x (N, in_features), weight (out_features, in_features).
    input_grad  False: grad_x is not computed and None is returned in its place (a network's first
                layer, as for conv2d_backward; for a dense layer it is half of the backward's work).
    Returns: (grad_x = grad_out @ weight, grad_weight = grad_out.T @ x, grad_bias = grad_out summed over N).
    """
    input_grad = flag("dense_backward: input_grad", input_grad)
    x, weight, dtype = _inputs("dense_backward", x, weight, (grad_out,))
    grad_out = as_array("grad_out", grad_out, 2, "(N, out_features)", dtype)
    check_grad_out(grad_out, (x.shape[0], weight.shape[0]), "dense")
    return kernels(impl)["dense_backward"](grad_out, x, weight, input_grad)
