"""Convolutions: conv2d, conv1d, transposed conv2d, and single-image correlate2d/convolve2d.

Every function validates and converts its arguments (see `argcheck.py`), works out the
geometry (`geometry.py`), then hands plain arrays and the geometry to a kernel from the op
table (`kernels/`), which pads as it needs.
"""
from __future__ import annotations

import numpy as np

from .argcheck import (as_array, check_finite as _check_finite, check_grad_out, dtype_of, flag, int_single,
                       shape_str)
from .geometry import ConvGeometry, bias_vector, conv_geometry, conv_transpose_geometry, pad2d
from .kernels import kernels
from .outarg import check_out, check_out_tuple, into

__all__ = ["conv2d", "conv2d_backward", "conv1d", "conv1d_backward", "conv_transpose2d", "conv_transpose2d_backward",
           "correlate2d", "convolve2d", "pad2d", "ConvGeometry"]


def conv2d(x, weight, bias=None, stride=1, padding=0, dilation=1, *, strict=False, check_finite=True,
           impl="fast", out=None):
    """2-D convolution (cross-correlation, as in every CNN library) of a batch of images.

    Inputs:
      x        (N, C, H, W) images
      weight   (K, C, kH, kW) K filters spanning all C channels
      bias     (K,) or None
      stride, dilation   int or (rows, cols), >= 1
      padding  int or (rows, cols) zeros added on each side, or 'valid' (0), 'same' (output
               as large as the input; stride 1 and odd kernels only) or 'full' (d*(k-1))
      strict   raise instead of flooring when the filter does not tile the input evenly
      out      None, or an array to write the result into and return: exactly the result's shape
               and dtype, C-contiguous, sharing no memory with the inputs (see minicnn/outarg.py);
               a loop that passes the same `out` allocates no new output each call
    Returns: (N, K, H_out, W_out) with H_out = floor((H + 2p - d(kH - 1) - 1)/s) + 1, float32 if all
    inputs are float32, else float64.

        out[n, k, i, j] = bias[k] + sum_{c,u,v} x_pad[n, c, i*s + u*d, j*s + v*d] * weight[k, c, u, v]
    """
    dtype = dtype_of(x, weight, bias)
    x = as_array("x", x, 4, "(N, C, H, W)", dtype)
    weight = as_array("weight", weight, 4, "(K, C, kH, kW)", dtype)
    g = conv_geometry("conv2d", x.shape, weight.shape, stride, padding, dilation, strict)
    b = bias_vector(bias, weight.shape[0], dtype, check_finite)
    if check_finite:
        _check_finite("x", x)
        _check_finite("weight", weight)
    check_out("conv2d", "out", out, (x.shape[0], weight.shape[0], g.out_h, g.out_w), dtype,
              {"x": x, "weight": weight, "bias": b})
    return kernels(impl)["conv2d_forward"](x, weight, b, g, out)


def conv2d_backward(grad_out, x, weight, stride=1, padding=0, dilation=1, *, impl="fast", out=None,
                    input_grad=True):
    """Gradients of conv2d.

    Inputs: grad_out (N, K, H_out, W_out) = dL/d(output); x, weight and the settings as given
    to conv2d; out None, or a tuple (grad_x, grad_weight, grad_bias) of arrays to write the
    results into, any of them None (allocated), each as conv2d's `out` requires.
    input_grad  False: grad_x is not computed and None is returned in its place (a network's
                first layer: nothing needs dL/d(images), and PyTorch skips it there too;
                for LeNet-5's first convolution it is about half of the backward's work);
                out[0] must then be None.
    Returns: (grad_x (N, C, H, W), grad_weight (K, C, kH, kW), grad_bias (K,)).
    """
    input_grad = flag("conv2d_backward: input_grad", input_grad)
    dtype = dtype_of(grad_out, x, weight)
    x = as_array("x", x, 4, "(N, C, H, W)", dtype)
    weight = as_array("weight", weight, 4, "(K, C, kH, kW)", dtype)
    grad_out = as_array("grad_out", grad_out, 4, "(N, K, H_out, W_out)", dtype)
    g = conv_geometry("conv2d_backward", x.shape, weight.shape, stride, padding, dilation, False)
    check_grad_out(grad_out, (x.shape[0], weight.shape[0], g.out_h, g.out_w), "conv2d")
    out_x, out_w, out_b = check_out_tuple(
        "conv2d_backward", out, (("grad_x", x.shape, dtype), ("grad_weight", weight.shape, dtype),
                                 ("grad_bias", weight.shape[:1], dtype)),
        {"grad_out": grad_out, "x": x, "weight": weight})
    if out_x is not None and not input_grad:
        raise ValueError("conv2d_backward: out[0] (grad_x) was given but input_grad=False computes no grad_x; "
                         "pass None there")
    K = kernels(impl)
    grad_x = K["conv2d_backward_input"](grad_out, weight, g, x.shape[2:], out_x) if input_grad else None
    grad_w = into(out_w, K["conv2d_backward_weight"](grad_out, x, g))     # small: computed, then copied
    return grad_x, grad_w, into(out_b, K["bias_backward"](grad_out))


# ---------------------------------------------------------------- 1-D: a conv2d one row high

def _as_2d_args(x, weight, stride, padding, dilation, dtype):
    x = as_array("x", x, 3, "(N, C, L)", dtype)
    weight = as_array("weight", weight, 3, "(K, C, k)", dtype)
    if x.shape[1] != weight.shape[1]:
        raise ValueError(f"conv1d: x has {x.shape[1]} channels (shape {shape_str(x)}) but weight expects "
                         f"{weight.shape[1]} (shape {shape_str(weight)}); weight must be (K, C, k)")
    stride = (1, int_single("stride", stride, 1))
    dilation = (1, int_single("dilation", dilation, 1))
    if not isinstance(padding, str):
        padding = (0, int_single("padding", padding, 0))
    return x[:, :, None, :], weight[:, :, None, :], stride, padding, dilation


def conv1d(x, weight, bias=None, stride=1, padding=0, dilation=1, *, strict=False, check_finite=True,
           impl="fast"):
    """1-D convolution (cross-correlation) of a batch of sequences: a conv2d one row high.

    Inputs: x (N, C, L), weight (K, C, k), bias (K,) or None; stride, padding, dilation ints
    (padding may also be 'valid', 'same', 'full').
    Returns: (N, K, L_out), L_out = floor((L + 2p - d(k - 1) - 1)/s) + 1.
    """
    dtype = dtype_of(x, weight, bias)
    x4, w4, stride, padding, dilation = _as_2d_args(x, weight, stride, padding, dilation, dtype)
    return conv2d(x4, w4, bias, stride, padding, dilation, strict=strict, check_finite=check_finite,
                  impl=impl)[:, :, 0, :]


def conv1d_backward(grad_out, x, weight, stride=1, padding=0, dilation=1, *, impl="fast"):
    """Gradients of conv1d: grad_out (N, K, L_out) -> (grad_x (N, C, L), grad_weight (K, C, k), grad_bias (K,))."""
    dtype = dtype_of(grad_out, x, weight)
    x4, w4, stride, padding, dilation = _as_2d_args(x, weight, stride, padding, dilation, dtype)
    grad_out = as_array("grad_out", grad_out, 3, "(N, K, L_out)", dtype)
    gx, gw, gb = conv2d_backward(grad_out[:, :, None, :], x4, w4, stride, padding, dilation, impl=impl)
    return gx[:, :, 0, :], gw[:, :, 0, :], gb


# ---------------------------------------------------------------- transposed convolution

def conv_transpose2d(x, weight, bias=None, stride=1, padding=0, output_padding=0, dilation=1, *,
                     check_finite=True, impl="fast"):
    """Transposed convolution ("up-convolution"): each input pixel stamps a scaled copy of the
    kernel onto the output, stamps `stride` apart, overlaps adding up; then `padding` rows and
    columns are cropped from each side.  It is the input-gradient of conv2d with the same weight.

    Inputs: x (N, C_in, H, W), weight (C_in, C_out, kH, kW), bias (C_out,) or None,
    stride/dilation >= 1, padding >= 0, output_padding < max(stride, dilation) (extra rows/cols
    at the bottom/right).
    Returns: (N, C_out, (H - 1)s - 2p + d(kH - 1) + output_padding + 1, likewise for W).
    """
    dtype = dtype_of(x, weight, bias)
    x = as_array("x", x, 4, "(N, C_in, H, W)", dtype)
    weight = as_array("weight", weight, 4, "(C_in, C_out, kH, kW)", dtype)
    g = conv_transpose_geometry("conv_transpose2d", x.shape, weight.shape, stride, padding, output_padding,
                                dilation)
    b = bias_vector(bias, weight.shape[1], dtype, check_finite)
    if check_finite:
        _check_finite("x", x)
        _check_finite("weight", weight)
    out = kernels(impl)["conv_transpose2d_forward"](x, weight, g) + b[None, :, None, None]
    return np.ascontiguousarray(out, dtype=dtype)


def conv_transpose2d_backward(grad_out, x, weight, stride=1, padding=0, output_padding=0, dilation=1, *,
                              impl="fast"):
    """Gradients of conv_transpose2d.

    Inputs: grad_out (N, C_out, H_out, W_out); x, weight and settings as given to conv_transpose2d.
    Returns: (grad_x (N, C_in, H, W), grad_weight (C_in, C_out, kH, kW), grad_bias (C_out,)).
    The transpose of "stamp the kernel" is "slide the kernel and take dot products": grad_x is
    a plain conv2d of the (re-padded) grad_out with the same weight.
    """
    dtype = dtype_of(grad_out, x, weight)
    x = as_array("x", x, 4, "(N, C_in, H, W)", dtype)
    weight = as_array("weight", weight, 4, "(C_in, C_out, kH, kW)", dtype)
    grad_out = as_array("grad_out", grad_out, 4, "(N, C_out, H_out, W_out)", dtype)
    g = conv_transpose_geometry("conv_transpose2d_backward", x.shape, weight.shape, stride, padding,
                                output_padding, dilation)
    check_grad_out(grad_out, (x.shape[0], weight.shape[1], g.out_h, g.out_w), "conv_transpose2d")
    K = kernels(impl)
    # The convolution whose input-gradient this op is: input grad_out (padded by g.ph, g.pw),
    # output the size of x.
    conv = g._replace(out_h=x.shape[2], out_w=x.shape[3])
    no_bias = np.zeros(weight.shape[0], dtype=dtype)
    grad_x = K["conv2d_forward"](grad_out, weight, no_bias, conv)
    grad_w = K["conv2d_backward_weight"](x, grad_out, conv)
    return grad_x, grad_w, K["bias_backward"](grad_out)


# ---------------------------------------------------------------- one image, as on the slides

def correlate2d(image, kernel, stride=1, padding=0, *, strict=False, check_finite=True, impl="fast"):
    """Slide `kernel` over one 2-D `image` and take dot products: what CNNs call convolution.

    Inputs: image (H, W), kernel (kH, kW), stride, padding (int, pair, 'valid', 'same', 'full').
    Returns: (H_out, W_out), out[i, j] = sum_{u,v} image_pad[i*s + u, j*s + v] * kernel[u, v].
    """
    dtype = dtype_of(image, kernel)
    image = as_array("image", image, 2, "(H, W)", dtype)
    kernel = as_array("kernel", kernel, 2, "(kH, kW)", dtype)
    x4, w4 = image[None, None], kernel[None, None]
    conv_geometry("correlate2d", x4.shape, w4.shape, stride, padding, 1, strict, names=("image", "kernel"))
    return conv2d(x4, w4, None, stride, padding, strict=strict, check_finite=check_finite, impl=impl)[0, 0]


def convolve2d(image, kernel, stride=1, padding=0, *, strict=False, check_finite=True, impl="fast"):
    """True (signal-processing) convolution of one 2-D image: correlate2d with the kernel flipped
    in both axes, out[i, j] = sum_{u,v} image_pad[i*s + u, j*s + v] * kernel[kH-1-u, kW-1-v].
    For symmetric kernels (the Halmstad X kernel, the TCD Laplacian) the two agree; for the
    Sobel kernel of the Ferrara lecture they differ in sign."""
    kernel = np.asarray(kernel)
    if kernel.ndim != 2:
        raise ValueError(f"kernel must be 2-D (kH, kW), got shape {shape_str(kernel)} ({kernel.ndim}-D)")
    return correlate2d(image, kernel[::-1, ::-1], stride, padding, strict=strict, check_finite=check_finite,
                       impl=impl)
