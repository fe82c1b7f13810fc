"""Faster CPU kernels, computing what `loops.py` computes (to rounding).

Same arrays in, same arrays out as the teaching loops (the op table in `__init__.py` maps
the same names to both).  Convolution lives in `fast_conv.py` (see its docstring for how
each filter tap becomes one long vectorised multiply-add); the functions here only pick a
memory layout, lay out the filters and the tap table, and call it.  Throughout:
- work is split with `prange` over pieces that write disjoint memory, and partial sums are
  added in a fixed order, so no two threads ever add into the same element and the result
  does not depend on the thread count;
- inner loops run with unit stride and no branches, so LLVM vectorises them.
Dense layers are in `fast_dense.py` (its docstring says why not NumPy's BLAS).
"""
from contextlib import contextmanager
from functools import lru_cache

import numba
import numpy as np

from . import fast_conv as fc
from . import fast_dense as fd
from . import fast_pool as fp

SMALL_FLOPS = 4_000_000      # convolutions with less work than this run on one thread
SMALL_ELEMENTS = 1 << 18     # and so do pooling layers with fewer input elements


@contextmanager
def _threads_for(small):
    """Run the block on one thread when the work is small: waking the other threads of a
    parallel region costs tens of microseconds (far more on a busy machine), more than a
    small layer's whole work.  The result is the same either way (see the module docstring)."""
    threads = numba.get_num_threads()
    if not small or threads == 1:
        yield
        return
    numba.set_num_threads(1)
    try:
        yield
    finally:
        numba.set_num_threads(threads)


def _run(small, kernel, *args):
    """kernel(*args) under _threads_for(small)."""
    with _threads_for(small):
        return kernel(*args)


# ---------------------------------------------------------------- convolution

def _chunk(dtype):
    return fc.CHUNK_BYTES // np.dtype(dtype).itemsize


def _batch_inner(n_batch, out_h, out_w, row):
    """Batch-inner layout when a wide row would waste over a fifth of the work, or planes are tiny."""
    wide = (out_h - 1) * row + out_w
    return n_batch > 1 and (out_h * out_w < 64 or 4 * wide > 5 * out_h * out_w)


@lru_cache(maxsize=256)  # the same layer is called again and again in training: build its tables once
def _taps(kh, kw, sh, sw, dh, dw, row, unit):
    """Tap (u, v) reads phase ((u*dh) % sh, (v*dw) % sw) at row (u*dh)//sh, column (v*dw)//sw
    of that phase: (phase, flat offset) for each tap, in (u, v) order.  (Cached: never write to them.)"""
    u, v = np.divmod(np.arange(kh * kw), kw)
    plane = (u * dh % sh) * sw + v * dw % sw
    off = ((u * dh // sh) * row + v * dw // sw) * unit
    return plane.astype(np.int64), off.astype(np.int64)


@lru_cache(maxsize=256)
def _channel_taps(n_chan, kh, kw, sh, sw, dh, dw, row, unit):
    """The taps of every input channel in one list, (c, u, v) order: channel c's phases are
    planes c*P .. c*P + P - 1 of the source read as (C*P, Ls)."""
    plane, off = _taps(kh, kw, sh, sw, dh, dw, row, unit)
    planes = (np.arange(n_chan)[:, None] * (sh * sw) + plane).ravel()
    return planes, np.tile(off, n_chan)


def _forward(x, ph, pw, w, b, sh, sw, dh, dw, out_h, out_w, per_image=None):
    """conv2d of x (N, C, H, W) zero-padded by (ph, pw): the padding is added while laying out.
    per_image: lay the input out image by image inside the correlation (fast_conv.correlate_per_image);
    None picks it when the wide layout is used and there are at least two images per thread."""
    n, c, h, wd = x.shape
    k, _, kh, kw = w.shape
    wq = -(-(wd + 2 * pw) // sw)
    inner = _batch_inner(n, out_h, out_w, wq)
    small = 2 * n * k * out_h * out_w * c * kh * kw < SMALL_FLOPS
    tplane, toff = _channel_taps(c, kh, kw, sh, sw, dh, dw, wq, n if inner else 1)
    nkb = -(-k // fc.KB)
    wt = np.zeros((nkb * fc.KB, c * kh * kw), dtype=x.dtype)   # filters padded to a multiple of KB
    wt[:k] = w.reshape(k, -1)
    out = np.empty((n, k, out_h, out_w), dtype=x.dtype)
    x, wt, b = np.ascontiguousarray(x), wt.reshape(nkb, fc.KB, -1), np.ascontiguousarray(b, dtype=x.dtype)
    with _threads_for(small):
        if per_image is None:
            per_image = not inner and n >= 2 * numba.get_num_threads()
        if per_image and not inner:
            return fc.correlate_per_image(x, ph, pw, sh, sw, wt, b, tplane, toff, out, wq, _chunk(x.dtype))
        src = fc.split_phases(x, ph, pw, sh, sw, inner)
        return fc.correlate(src, wt, b, tplane, toff, out, wq, inner, _chunk(x.dtype))


def _backward_input(grad_out, w, ph, pw, sh, sw, dh, dw, h, wd):
    """The gradient of x (N, C, h, wd) for a conv2d that padded x by (ph, pw): the forward
    correlation read backwards (fast_conv.scatter), every tap adding w * grad_out, shifted,
    into the stride phase it read from; then the phases are merged and the padding dropped."""
    n, k, out_h, out_w = grad_out.shape
    c, kh, kw = w.shape[1], w.shape[2], w.shape[3]
    hq, wq = -(-(h + 2 * ph) // sh), -(-(wd + 2 * pw) // sw)
    inner = _batch_inner(n, out_h, out_w, wq)
    unit = n if inner else 1
    tplane, toff = _taps(kh, kw, sh, sw, dh, dw, wq, unit)
    small = 2 * grad_out.size * c * kh * kw < SMALL_FLOPS
    ncb = -(-c // fc.KB)
    ws = np.zeros((kh * kw, ncb * fc.KB, k), dtype=grad_out.dtype)   # ws[t, c, k] = w[k, c, u_t, v_t]
    ws[:, :c] = w.reshape(k, c, kh * kw).transpose(2, 1, 0)
    dst = np.zeros((1 if inner else n, ncb * fc.KB, sh * sw, hq * wq * unit + fc.SLACK), dtype=grad_out.dtype)
    with _threads_for(small):
        g = fc.grad_rows(np.ascontiguousarray(grad_out), wq, inner)
        fc.scatter(g, ws.reshape(kh * kw, ncb, fc.KB, k), tplane, toff, dst, c, wq * n if inner else 0,
                   inner, _chunk(grad_out.dtype))
        return fc.merge_phases(dst, c, ph, pw, sh, sw, h, wd, inner, n)


def _backward_weight(grad_out, x, ph, pw, kh, kw, sh, sw, dh, dw):
    """grad_weight (K, C, kh, kw) of a conv2d that padded x (N, C, H, W) by (ph, pw)."""
    n, k, out_h, out_w = grad_out.shape
    c, wd = x.shape[1], x.shape[3]
    wq = -(-(wd + 2 * pw) // sw)
    inner = _batch_inner(n, out_h, out_w, wq)
    small = 2 * grad_out.size * c * kh * kw < SMALL_FLOPS
    tplane, toff = _channel_taps(c, kh, kw, sh, sw, dh, dw, wq, n if inner else 1)
    with _threads_for(small):
        src = fc.split_phases(np.ascontiguousarray(x), ph, pw, sh, sw, inner)
        g = fc.grad_rows(np.ascontiguousarray(grad_out), wq, inner)
        n_groups = min(g.shape[0], 8)
        gw = fc.weight_grad(g, src, tplane, toff, wq * n if inner else 0, inner, n_groups, _chunk(x.dtype))
    return gw.reshape(k, c, kh, kw)


def conv2d_forward(xp, w, b, sh, sw, dh, dw, out_h, out_w):
    """xp (N, C, Hp, Wp) padded input, w (K, C, kH, kW), b (K,) -> (N, K, out_h, out_w)."""
    return _forward(xp, 0, 0, w, b, sh, sw, dh, dw, out_h, out_w)


def conv2d_backward_input(grad_out, w, sh, sw, dh, dw, padded_h, padded_w):
    """grad_out (N, K, Ho, Wo), w (K, C, kH, kW) -> grad of the padded input (N, C, padded_h, padded_w)."""
    return _backward_input(grad_out, w, 0, 0, sh, sw, dh, dw, padded_h, padded_w)


def conv2d_backward_weight(grad_out, xp, k_h, k_w, sh, sw, dh, dw):
    """grad_out (N, K, Ho, Wo), xp (N, C, Hp, Wp) -> grad_weight (K, C, k_h, k_w)."""
    return _backward_weight(grad_out, xp, 0, 0, k_h, k_w, sh, sw, dh, dw)


def conv2d_forward_padding(x, w, b, geom):
    """conv2d of the unpadded x with conv.ConvGeometry geom: the padding is added while the
    input is laid out for the kernel, saving conv2d's padded copy."""
    return _forward(x, geom.ph, geom.pw, w, b, geom.sh, geom.sw, geom.dh, geom.dw, geom.out_h, geom.out_w)


def conv2d_backward_padding(grad_out, x, w, geom):
    """(grad_x, grad_weight, grad_bias) of conv2d on the unpadded x (grad_x cropped already)."""
    h, wd = x.shape[2], x.shape[3]
    grad_x = _backward_input(grad_out, w, geom.ph, geom.pw, geom.sh, geom.sw, geom.dh, geom.dw, h, wd)
    grad_w = _backward_weight(grad_out, x, geom.ph, geom.pw, geom.kh, geom.kw, geom.sh, geom.sw, geom.dh, geom.dw)
    return grad_x, grad_w, bias_backward(grad_out)


def bias_backward(grad_out):
    """grad_out (N, K, Ho, Wo) -> grad_bias (K,)."""
    return fc.bias_grad(np.ascontiguousarray(grad_out))


def conv_transpose2d_forward(x, w, sh, sw, dh, dw, canvas_h, canvas_w):
    """x (N, C_in, H, W), w (C_in, C_out, kH, kW) -> uncropped output (N, C_out, canvas_h, canvas_w).

    A transposed convolution is exactly the input-gradient of a convolution whose weight
    is w (C_in filters over C_out channels), so it reuses that kernel."""
    return conv2d_backward_input(x, w, sh, sw, dh, dw, canvas_h, canvas_w)


# ---------------------------------------------------------------- pooling (fast_pool.py)

def max_pool2d_forward(xp, k_h, k_w, sh, sw, out_h, out_w):
    """xp (N, C, Hp, Wp) padded with -inf -> (N, C, out_h, out_w)."""
    return _run(xp.size < SMALL_ELEMENTS, fp.max_pool, np.ascontiguousarray(xp), k_h, k_w, sh, sw, out_h, out_w)


def max_pool2d_backward(grad_out, xp, k_h, k_w, sh, sw):
    """grad_out (N, C, Ho, Wo), xp padded -> grad of the padded input; first maximum wins ties."""
    return _run(xp.size < SMALL_ELEMENTS, fp.max_pool_backward, np.ascontiguousarray(grad_out),
                np.ascontiguousarray(xp), k_h, k_w, sh, sw)


def avg_pool2d_forward(xp, k_h, k_w, sh, sw, div):
    """xp (N, C, Hp, Wp) zero-padded, div (Ho, Wo) -> (N, C, Ho, Wo)."""
    return _run(xp.size < SMALL_ELEMENTS, fp.avg_pool, np.ascontiguousarray(xp), k_h, k_w, sh, sw,
                div.astype(xp.dtype))


def avg_pool2d_backward(grad_out, k_h, k_w, sh, sw, div, padded_h, padded_w):
    """grad_out (N, C, Ho, Wo) -> grad of the padded input (N, C, padded_h, padded_w)."""
    return _run(grad_out.size * k_h * k_w < SMALL_ELEMENTS, fp.avg_pool_backward, np.ascontiguousarray(grad_out),
                k_h, k_w, sh, sw, div.astype(grad_out.dtype), padded_h, padded_w)


# ---------------------------------------------------------------- dense (fast_dense.py)

def dense_forward(x, w, b):
    """x (N, I), w (O, I), b (O,) -> (N, O)."""
    small = 2 * x.shape[0] * x.shape[1] * w.shape[0] < SMALL_FLOPS
    return _run(small, fd.dense_forward, np.ascontiguousarray(x), np.ascontiguousarray(w), np.ascontiguousarray(b))


def dense_backward(grad_out, x, w):
    """grad_out (N, O), x (N, I), w (O, I) -> (grad_x, grad_w, grad_b)."""
    small = 4 * x.shape[0] * x.shape[1] * w.shape[0] < SMALL_FLOPS
    return _run(small, fd.dense_backward, np.ascontiguousarray(grad_out), np.ascontiguousarray(x),
                np.ascontiguousarray(w))
