"""Max and average pooling, forward and backward.  Pooling has no parameters: it summarises
each kH x kW window of each channel separately (Zese, Ferrara; Aksoy, Halmstad)."""
from __future__ import annotations

from .argcheck import as_array, check_finite as _check_finite, check_grad_out, dtype_of
from .geometry import pool_geometry
from .kernels import kernels
from .outarg import check_out


def _inputs(x, grad_out=None):
    dtype = dtype_of(x, grad_out)
    x = as_array("x", x, 4, "(N, C, H, W)", dtype)
    if grad_out is not None:
        grad_out = as_array("grad_out", grad_out, 4, "(N, C, H_out, W_out)", dtype)
    return x, grad_out


def max_pool2d(x, kernel_size, stride=None, padding=0, *, strict=False, check_finite=True, impl="fast", out=None):
    """Max pooling: the largest value of each window.

    Inputs: x (N, C, H, W); kernel_size, stride (default: kernel_size) and padding int or pair.
    Padding cells hold -inf, so they never win; padding may be at most half the kernel.
    out: None, or an array to write the result into and return (exactly the result's shape and
    dtype, C-contiguous, sharing no memory with x; see minicnn/outarg.py), as for every op here.
    Returns: (N, C, H_out, W_out), H_out = floor((H + 2p - kH)/s) + 1.
    """
    x, _ = _inputs(x)
    g = pool_geometry("max_pool2d", x.shape, kernel_size, stride, padding, strict)
    out = check_out("max_pool2d", "out", out, (x.shape[0], x.shape[1], g.out_h, g.out_w), x.dtype, {"x": x})
    if check_finite:
        _check_finite("x", x)
    return kernels(impl)["max_pool2d_forward"](x, g, out)


def max_pool2d_backward(grad_out, x, kernel_size, stride=None, padding=0, *, impl="fast", out=None):
    """Gradient of max pooling: each window's gradient goes to its maximum (on a tie, the first
    in row-major order); a cell that wins several overlapping windows collects them all.

    Inputs: grad_out (N, C, H_out, W_out), x and settings as given to max_pool2d; out as there
    (grad_x's shape).
    Returns: grad_x (N, C, H, W).
    """
    x, grad_out = _inputs(x, grad_out)
    g = pool_geometry("max_pool2d_backward", x.shape, kernel_size, stride, padding, False)
    check_grad_out(grad_out, (x.shape[0], x.shape[1], g.out_h, g.out_w), "max_pool2d")
    out = check_out("max_pool2d_backward", "out", out, x.shape, x.dtype, {"grad_out": grad_out, "x": x})
    return kernels(impl)["max_pool2d_backward"](grad_out, x, g, out)


def avg_pool2d(x, kernel_size, stride=None, padding=0, count_include_pad=True, *, strict=False,
               check_finite=True, impl="fast", out=None):
    """Average pooling: the mean of each window.

    Inputs: x (N, C, H, W); kernel_size, stride (default: kernel_size), padding int or pair.
    Padding cells hold zeros.  With count_include_pad=True (the default, as in PyTorch) they
    count in the divisor, so a border window is divided by kH*kW; with False only the cells
    inside the image are counted.  out: as for max_pool2d.
    Returns: (N, C, H_out, W_out).
    """
    x, _ = _inputs(x)
    g = pool_geometry("avg_pool2d", x.shape, kernel_size, stride, padding, strict)
    out = check_out("avg_pool2d", "out", out, (x.shape[0], x.shape[1], g.out_h, g.out_w), x.dtype, {"x": x})
    if check_finite:
        _check_finite("x", x)
    return kernels(impl)["avg_pool2d_forward"](x, g, bool(count_include_pad), out)


def avg_pool2d_backward(grad_out, x, kernel_size, stride=None, padding=0, count_include_pad=True, *,
                        impl="fast", out=None):
    """Gradient of average pooling: every cell of a window gets grad / divisor.

    Inputs: grad_out (N, C, H_out, W_out), x and settings as given to avg_pool2d; out as for
    max_pool2d (grad_x's shape).
    Returns: grad_x (N, C, H, W).
    """
    x, grad_out = _inputs(x, grad_out)
    g = pool_geometry("avg_pool2d_backward", x.shape, kernel_size, stride, padding, False)
    check_grad_out(grad_out, (x.shape[0], x.shape[1], g.out_h, g.out_w), "avg_pool2d")
    out = check_out("avg_pool2d_backward", "out", out, x.shape, x.dtype, {"grad_out": grad_out, "x": x})
    return kernels(impl)["avg_pool2d_backward"](grad_out, g, x.shape[2:], bool(count_include_pad), out)
