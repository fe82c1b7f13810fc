"""Max and average pooling, forward and backward.  Pooling has no parameters: it summarises
each kH x kW window of each channel separately (Zese, Ferrara; Aksoy, Halmstad)."""
from __future__ import annotations

import numpy as np

from .argcheck import as_array, check_finite as _check_finite, check_fits, check_grad_out, dtype_of, int_pair
from .conv import _padded
from .kernels import kernels


def _pool_geometry(what, x, kernel_size, stride, padding, strict):
    kh, kw = int_pair("kernel_size", kernel_size, 1)
    sh, sw = (kh, kw) if stride is None else int_pair("stride", stride, 1)
    if isinstance(padding, str):
        raise ValueError(f"{what}: padding must be an int or a pair for pooling, got {padding!r}")
    ph, pw = int_pair("padding", padding, 0)
    if 2 * ph > kh or 2 * pw > kw:
        raise ValueError(f"{what}: padding ({ph}, {pw}) must be at most half the kernel_size ({kh}, {kw}), "
                         "or some windows would hold nothing but padding")
    if min(x.shape) < 1:
        raise ValueError(f"{what}: x has an empty dimension, shape {x.shape}")
    out_h = check_fits(what, x.shape[2], kh, sh, ph, 1, strict, "rows")
    out_w = check_fits(what, x.shape[3], kw, sw, pw, 1, strict, "columns")
    return kh, kw, sh, sw, ph, pw, out_h, out_w


def _inputs(x, grad_out=None):
    dtype = dtype_of(x, grad_out)
    x = as_array("x", x, 4, "(N, C, H, W)", dtype)
    if grad_out is not None:
        grad_out = as_array("grad_out", grad_out, 4, "(N, C, H_out, W_out)", dtype)
    return x, grad_out


def max_pool2d(x, kernel_size, stride=None, padding=0, *, strict=False, check_finite=True, impl="fast"):
    """Max pooling: the largest value of each window.

    Inputs: x (N, C, H, W); kernel_size, stride (default: kernel_size) and padding int or pair.
    Padding cells hold -inf, so they never win; padding may be at most half the kernel.
    Returns: (N, C, H_out, W_out), H_out = floor((H + 2p - kH)/s) + 1.
    """
    x, _ = _inputs(x)
    kh, kw, sh, sw, ph, pw, out_h, out_w = _pool_geometry("max_pool2d", x, kernel_size, stride, padding, strict)
    if check_finite:
        _check_finite("x", x)
    xp = _padded(x, ph, pw, -np.inf)
    return kernels(impl)["max_pool2d_forward"](xp, kh, kw, sh, sw, out_h, out_w)


def max_pool2d_backward(grad_out, x, kernel_size, stride=None, padding=0, *, impl="fast"):
    """Gradient of max pooling: each window's gradient goes to its maximum (on a tie, the first
    in row-major order); a cell that wins several overlapping windows collects them all.

    Inputs: grad_out (N, C, H_out, W_out), x and settings as given to max_pool2d.
    Returns: grad_x (N, C, H, W).
    """
    x, grad_out = _inputs(x, grad_out)
    kh, kw, sh, sw, ph, pw, out_h, out_w = _pool_geometry("max_pool2d_backward", x, kernel_size, stride,
                                                          padding, False)
    check_grad_out(grad_out, (x.shape[0], x.shape[1], out_h, out_w), "max_pool2d")
    xp = _padded(x, ph, pw, -np.inf)
    grad_xp = kernels(impl)["max_pool2d_backward"](grad_out, xp, kh, kw, sh, sw)
    return np.ascontiguousarray(grad_xp[:, :, ph:ph + x.shape[2], pw:pw + x.shape[3]])


def _divisors(K, x, kh, kw, sh, sw, ph, pw, out_h, out_w, count_include_pad):
    return K["avg_pool_divisors"](x.shape[2], x.shape[3], kh, kw, sh, sw, ph, pw, out_h, out_w,
                                  bool(count_include_pad))


def avg_pool2d(x, kernel_size, stride=None, padding=0, count_include_pad=True, *, strict=False,
               check_finite=True, impl="fast"):
    """Average pooling: the mean of each window.

    Inputs: x (N, C, H, W); kernel_size, stride (default: kernel_size), padding int or pair.
    Padding cells hold zeros.  With count_include_pad=True (the default, as in PyTorch) they
    count in the divisor, so a border window is divided by kH*kW; with False only the cells
    inside the image are counted.
    Returns: (N, C, H_out, W_out).
    """
    x, _ = _inputs(x)
    kh, kw, sh, sw, ph, pw, out_h, out_w = _pool_geometry("avg_pool2d", x, kernel_size, stride, padding, strict)
    if check_finite:
        _check_finite("x", x)
    K = kernels(impl)
    div = _divisors(K, x, kh, kw, sh, sw, ph, pw, out_h, out_w, count_include_pad)
    return K["avg_pool2d_forward"](_padded(x, ph, pw), kh, kw, sh, sw, div)


def avg_pool2d_backward(grad_out, x, kernel_size, stride=None, padding=0, count_include_pad=True, *,
                        impl="fast"):
    """Gradient of average pooling: every cell of a window gets grad / divisor.

    Inputs: grad_out (N, C, H_out, W_out), x and settings as given to avg_pool2d.
    Returns: grad_x (N, C, H, W).
    """
    x, grad_out = _inputs(x, grad_out)
    kh, kw, sh, sw, ph, pw, out_h, out_w = _pool_geometry("avg_pool2d_backward", x, kernel_size, stride,
                                                          padding, False)
    check_grad_out(grad_out, (x.shape[0], x.shape[1], out_h, out_w), "avg_pool2d")
    K = kernels(impl)
    div = _divisors(K, x, kh, kw, sh, sw, ph, pw, out_h, out_w, count_include_pad)
    grad_xp = K["avg_pool2d_backward"](grad_out, kh, kw, sh, sw, div, x.shape[2] + 2 * ph, x.shape[3] + 2 * pw)
    return np.ascontiguousarray(grad_xp[:, :, ph:ph + x.shape[2], pw:pw + x.shape[3]])
