"""The geometry of a convolution or a pooling layer, checked once, as one value.

Every backend (the CPU ops in `conv.py` and `pool.py`, the CUDA ops in `minicnn.cuda`,
the layers) turns its arguments into the same two NamedTuples here, with the same
checks and the same error messages:

    ConvGeometry  kh, kw   kernel size       PoolGeometry  kh, kw   window size
                  sh, sw   stride                          sh, sw   stride
                  ph, pw   zero padding                    ph, pw   padding (-inf or 0)
                  dh, dw   dilation                        out_h, out_w
                  out_h, out_w

with, per axis, out = floor((n + 2p - d(k - 1) - 1) / s) + 1 (d = 1 for pooling).

    >>> g = conv_geometry("conv2d", (8, 3, 32, 32), (16, 3, 5, 5), stride=1, padding="same", dilation=1)
    >>> g.ph, g.pw, g.out_h, g.out_w
    (2, 2, 32, 32)
    >>> pool_geometry("max_pool2d", (8, 16, 32, 32), 2, None, 0).out_h
    16
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np

from .argcheck import as_array, check_finite, check_fits, int_pair, padding_pair, shape_str
from .shapes import conv_transpose_output_size


class ConvGeometry(NamedTuple):
    """A convolution's kernel size, stride, padding, dilation and output size (all ints)."""
    kh: int
    kw: int
    sh: int
    sw: int
    ph: int
    pw: int
    dh: int
    dw: int
    out_h: int
    out_w: int


class PoolGeometry(NamedTuple):
    """A pooling layer's window size, stride, padding and output size (all ints)."""
    kh: int
    kw: int
    sh: int
    sw: int
    ph: int
    pw: int
    out_h: int
    out_w: int


def _shape_of(shape) -> str:
    return shape_str(np.empty(shape, np.uint8))


_SEEN: dict = {}     # settings already checked -> their ConvGeometry (see conv_geometry)
_SEEN_MAX = 512


def conv_geometry(what, x_shape, w_shape, stride, padding, dilation, strict=False, names=("x", "weight")):
    """Check that x (N, C, H, W) and weight (K, C, kH, kW) fit together; return their ConvGeometry.

    what: the op's name, for the error messages; names: what the caller calls x and weight.
    padding: int, (rows, cols), 'valid', 'same' or 'full'.  strict: raise instead of flooring
    when the filter does not tile the input evenly.

    A training loop asks the same question every step, and the checks cost several
    microseconds of a small layer's call: settings given as plain ints (or a padding string)
    that passed once are remembered (only those: True == 1 and np.int64(1) == 1 as dict keys,
    and those must still be checked, and refused or accepted, as they were)."""
    plain = type(stride) is int and type(dilation) is int and type(padding) in (int, str) and type(strict) is bool
    if plain:
        key = (tuple(x_shape), tuple(w_shape), stride, padding, dilation, strict)
        g = _SEEN.get(key)
        if g is not None:
            return g
    g = _conv_geometry(what, x_shape, w_shape, stride, padding, dilation, strict, names)
    if plain:
        if len(_SEEN) >= _SEEN_MAX:
            _SEEN.clear()
        _SEEN[key] = g
    return g


def _conv_geometry(what, x_shape, w_shape, stride, padding, dilation, strict, names):
    if x_shape[1] != w_shape[1]:
        raise ValueError(
            f"{what}: {names[0]} has {x_shape[1]} channels (shape {_shape_of(x_shape)}) "
            f"but {names[1]} expects {w_shape[1]} (shape {_shape_of(w_shape)}); "
            f"{names[1]} must be (K, C, kH, kW) with C = {names[0]}.shape[1]")
    for name, shape in zip(names, (x_shape, w_shape)):
        if min(shape) < 1:
            raise ValueError(f"{what}: {name} has an empty dimension, shape {_shape_of(shape)}")
    sh, sw = int_pair("stride", stride, 1)
    dh, dw = int_pair("dilation", dilation, 1)
    kh, kw = int(w_shape[2]), int(w_shape[3])
    ph, pw = padding_pair(padding, (kh, kw), (sh, sw), (dh, dw))
    out_h = check_fits(what, x_shape[2], kh, sh, ph, dh, strict, "rows")
    out_w = check_fits(what, x_shape[3], kw, sw, pw, dw, strict, "columns")
    return ConvGeometry(kh, kw, sh, sw, ph, pw, dh, dw, out_h, out_w)


def conv_transpose_geometry(what, x_shape, w_shape, stride, padding, output_padding, dilation):
    """The ConvGeometry of a transposed convolution of x (N, C_in, H, W) with weight
    (C_in, C_out, kH, kW): out_h, out_w are the transposed convolution's output size,
    (H - 1)s - 2p + d(kH - 1) + output_padding + 1, and (ph, pw) what it crops from each side."""
    if x_shape[1] != w_shape[0]:
        raise ValueError(
            f"{what}: x has {x_shape[1]} channels (shape {_shape_of(x_shape)}) but weight has {w_shape[0]} "
            f"input channels (shape {_shape_of(w_shape)}); weight must be (C_in, C_out, kH, kW)")
    if min(x_shape) < 1 or min(w_shape) < 1:
        raise ValueError(f"{what}: empty dimension in x {_shape_of(x_shape)} or weight {_shape_of(w_shape)}")
    kh, kw = int(w_shape[2]), int(w_shape[3])
    sh, sw = int_pair("stride", stride, 1)
    ph, pw = int_pair("padding", padding, 0)
    dh, dw = int_pair("dilation", dilation, 1)
    out_h, out_w = conv_transpose_output_size((x_shape[2], x_shape[3]), (kh, kw), (sh, sw), (ph, pw),
                                              output_padding, (dh, dw))
    return ConvGeometry(kh, kw, sh, sw, ph, pw, dh, dw, out_h, out_w)


def pool_geometry(what, x_shape, kernel_size, stride, padding, strict=False):
    """Check a pooling layer's settings against x (N, C, H, W); return its PoolGeometry.

    stride None means the window size; padding (int or pair) may be at most half the window."""
    kh, kw = int_pair("kernel_size", kernel_size, 1)
    sh, sw = (kh, kw) if stride is None else int_pair("stride", stride, 1)
    if isinstance(padding, str):
        raise ValueError(f"{what}: padding must be an int or a pair for pooling, got {padding!r}")
    ph, pw = int_pair("padding", padding, 0)
    if 2 * ph > kh or 2 * pw > kw:
        raise ValueError(f"{what}: padding ({ph}, {pw}) must be at most half the kernel_size ({kh}, {kw}), "
                         "or some windows would hold nothing but padding")
    if min(x_shape) < 1:
        raise ValueError(f"{what}: x has an empty dimension, shape {tuple(x_shape)}")
    out_h = check_fits(what, x_shape[2], kh, sh, ph, 1, strict, "rows")
    out_w = check_fits(what, x_shape[3], kw, sw, pw, 1, strict, "columns")
    return PoolGeometry(kh, kw, sh, sw, ph, pw, out_h, out_w)


def bias_vector(bias, n_filters, dtype, check=True):
    """The bias as a (K,) array of `dtype`, K = n_filters: zeros when bias is None.

    check: refuse NaN and infinity (check_finite)."""
    if bias is None:
        return np.zeros(n_filters, dtype=dtype)
    b = as_array("bias", bias, 1, f"(K,) with K = {n_filters}", dtype)
    if b.shape[0] != n_filters:
        raise ValueError(f"bias must have shape ({n_filters},), one value per filter; got {shape_str(b)}")
    if check:
        check_finite("bias", b)
    return b


def pad2d(x, padding, value=0.0):
    """Pad the last two axes of x with `padding` = (rows, cols) cells of `value` on each side.

    x (..., H, W) -> (..., H + 2*rows, W + 2*cols), a new array (x is not modified).

    >>> pad2d(np.ones((2, 2)), 1)
    array([[0., 0., 0., 0.],
           [0., 1., 1., 0.],
           [0., 1., 1., 0.],
           [0., 0., 0., 0.]])
    """
    ph, pw = int_pair("padding", padding, 0)
    x = np.asarray(x)
    out = np.full(x.shape[:-2] + (x.shape[-2] + 2 * ph, x.shape[-1] + 2 * pw), value, dtype=x.dtype)
    out[..., ph:ph + x.shape[-2], pw:pw + x.shape[-1]] = x
    return out


def padded(x, ph, pw, value=0.0):
    """pad2d for kernels, which only read their input: x itself when there is no padding."""
    return x if ph == 0 and pw == 0 else pad2d(x, (ph, pw), value)


def cropped(xp, ph, pw, hw, out=None):
    """The inverse of padded for a gradient: xp (N, C, H + 2ph, W + 2pw) without its padding rows
    and columns, hw = (H, W).  Copied once: into `out` when given (an array the caller checked),
    else into a new C-contiguous array (xp itself when there is no padding and it is contiguous)."""
    if xp is out:           # the kernel wrote straight into `out` (no padding): nothing to copy
        return out
    h, w = hw
    inner = xp[:, :, ph:ph + h, pw:pw + w]
    if out is None:
        return np.ascontiguousarray(inner)
    out[...] = inner
    return out
