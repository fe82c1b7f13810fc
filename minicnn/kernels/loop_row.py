"""The "loop" row of the op table: the teaching loops of `loops.py` behind the table's signatures.

The loops are written as on the slides, on an input that is already padded; the table's
ops take the unpadded input and the geometry (see `__init__.py`).  So each op here is a thin
adapter: pad the input, call the loop with the geometry's numbers, crop the padding from
an input gradient.  Nothing is computed here that the loop does not compute.
"""
import numpy as np

from ..geometry import cropped, padded
from ..outarg import into
from . import loops


# ---------------------------------------------------------------- convolution

def conv2d_forward(x, w, b, g, out=None):
    """x (N, C, H, W) unpadded, w (K, C, kH, kW), b (K,), g a ConvGeometry -> (N, K, g.out_h, g.out_w)."""
    xp = padded(x, g.ph, g.pw)
    return into(out, loops.conv2d_forward(xp, w, b, g.sh, g.sw, g.dh, g.dw, g.out_h, g.out_w))


def conv2d_backward_input(grad_out, w, g, x_hw, out=None):
    """grad_out (N, K, Ho, Wo), w (K, C, kH, kW), g a ConvGeometry, x_hw = (H, W) -> grad_x (N, C, H, W)."""
    h, wd = x_hw
    grad_xp = loops.conv2d_backward_input(grad_out, w, g.sh, g.sw, g.dh, g.dw, h + 2 * g.ph, wd + 2 * g.pw)
    return cropped(grad_xp, g.ph, g.pw, (h, wd), out)


def conv2d_backward_weight(grad_out, x, g):
    """grad_out (N, K, Ho, Wo), x (N, C, H, W) unpadded, g a ConvGeometry -> grad_weight (K, C, g.kh, g.kw)."""
    return loops.conv2d_backward_weight(grad_out, padded(x, g.ph, g.pw), g.kh, g.kw, g.sh, g.sw, g.dh, g.dw)


bias_backward = loops.bias_backward   # grad_out (N, K, Ho, Wo) -> grad_bias (K,)


def conv_transpose2d_forward(x, w, g):
    """x (N, C_in, H, W), w (C_in, C_out, kH, kW), g the transposed convolution's ConvGeometry
    -> (N, C_out, g.out_h, g.out_w), without bias: the stamps on the whole canvas, then
    (g.ph, g.pw) cropped from each side."""
    canvas = loops.conv_transpose2d_forward(x, w, g.sh, g.sw, g.dh, g.dw, g.out_h + 2 * g.ph, g.out_w + 2 * g.pw)
    return cropped(canvas, g.ph, g.pw, (g.out_h, g.out_w))


# ---------------------------------------------------------------- pooling

# The loops allocate their results; `out`, when given, gets a copy (into).

def max_pool2d_forward(x, g, out=None):
    """x (N, C, H, W), g a PoolGeometry -> (N, C, g.out_h, g.out_w); padding cells hold -inf."""
    return into(out, loops.max_pool2d_forward(padded(x, g.ph, g.pw, -np.inf), g.kh, g.kw, g.sh, g.sw,
                                              g.out_h, g.out_w))


def max_pool2d_backward(grad_out, x, g, out=None):
    """grad_out (N, C, Ho, Wo), x (N, C, H, W) -> grad_x (N, C, H, W)."""
    h, w = x.shape[2], x.shape[3]
    grad_xp = loops.max_pool2d_backward(grad_out, padded(x, g.ph, g.pw, -np.inf), g.kh, g.kw, g.sh, g.sw)
    return cropped(grad_xp, g.ph, g.pw, (h, w), out)


def _divisors(h, w, g, count_include_pad):
    return loops.avg_pool_divisors(h, w, g.kh, g.kw, g.sh, g.sw, g.ph, g.pw, g.out_h, g.out_w,
                                   bool(count_include_pad))


def avg_pool2d_forward(x, g, count_include_pad, out=None):
    """x (N, C, H, W), g a PoolGeometry -> (N, C, g.out_h, g.out_w); padding cells hold 0."""
    div = _divisors(x.shape[2], x.shape[3], g, count_include_pad)
    return into(out, loops.avg_pool2d_forward(padded(x, g.ph, g.pw), g.kh, g.kw, g.sh, g.sw, div))


def avg_pool2d_backward(grad_out, g, x_hw, count_include_pad, out=None):
    """grad_out (N, C, Ho, Wo), g a PoolGeometry, x_hw = (H, W) -> grad_x (N, C, H, W)."""
    h, w = x_hw
    div = _divisors(h, w, g, count_include_pad)
    grad_xp = loops.avg_pool2d_backward(grad_out, g.kh, g.kw, g.sh, g.sw, div, h + 2 * g.ph, w + 2 * g.pw)
    return cropped(grad_xp, g.ph, g.pw, (h, w), out)


# ---------------------------------------------------------------- dense: the loops as they are

dense_forward = loops.dense_forward     # x (N, I), w (O, I), b (O,) -> (N, O)


def dense_backward(grad_out, x, w, input_grad=True):
    """grad_out (N, O), x (N, I), w (O, I) -> (grad_x, grad_w, grad_b), grad_x None when input_grad
    is False.  The teaching loop is the three sums in one loop nest, as the formula reads, so it
    computes grad_x either way and this row drops it (the fast row skips it)."""
    grad_x, grad_w, grad_b = loops.dense_backward(grad_out, x, w)
    return (grad_x if input_grad else None), grad_w, grad_b
