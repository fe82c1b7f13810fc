"""Faster CPU kernels, computing exactly what `loops.py` computes.

Same arrays in, same arrays out as the teaching loops; the loops are reordered so that:
- the work is split with `prange` over pieces that write disjoint memory (one output
  plane, one input-gradient plane, one filter's gradient), so no two threads ever add
  into the same element: no races, and the result does not depend on the thread count;
- the innermost loop runs along a row with unit stride (stride-1 layers) so LLVM can
  vectorise it: each filter tap becomes one long multiply-add over a row.  A runtime
  stride inside the innermost index stops vectorisation, so strided layers take a
  separate (slower) inner loop;
- no padding branches sit in inner loops: inputs arrive padded.
"""
import numpy as np
from numba import njit, prange


@njit(cache=True, parallel=True)
def conv2d_forward(xp, w, b, sh, sw, dh, dw, out_h, out_w):
    """xp (N, C, Hp, Wp) padded input, w (K, C, kH, kW), b (K,) -> (N, K, out_h, out_w)."""
    n_batch, n_chan = xp.shape[0], xp.shape[1]
    n_filt, k_h, k_w = w.shape[0], w.shape[2], w.shape[3]
    out = np.empty((n_batch, n_filt, out_h, out_w), dtype=xp.dtype)
    for task in prange(n_batch * n_filt):  # one output plane per task
        n = task // n_filt
        k = task % n_filt
        plane = out[n, k]
        plane[:, :] = b[k]
        for c in range(n_chan):
            for u in range(k_h):
                for v in range(k_w):
                    tap = w[k, c, u, v]
                    for i in range(out_h):
                        src = xp[n, c, i * sh + u * dh]
                        dst = plane[i]
                        off = v * dw
                        if sw == 1:
                            for j in range(out_w):
                                dst[j] += tap * src[j + off]
                        else:
                            for j in range(out_w):
                                dst[j] += tap * src[j * sw + off]
    return out


@njit(cache=True, parallel=True)
def conv2d_backward_input(grad_out, w, sh, sw, dh, dw, padded_h, padded_w):
    """grad_out (N, K, Ho, Wo), w (K, C, kH, kW) -> grad of the padded input (N, C, padded_h, padded_w)."""
    n_batch, n_filt, out_h, out_w = grad_out.shape
    n_chan, k_h, k_w = w.shape[1], w.shape[2], w.shape[3]
    grad_xp = np.zeros((n_batch, n_chan, padded_h, padded_w), dtype=grad_out.dtype)
    for task in prange(n_batch * n_chan):  # one input-gradient plane per task: disjoint writes
        n = task // n_chan
        c = task % n_chan
        plane = grad_xp[n, c]
        for k in range(n_filt):
            for u in range(k_h):
                for v in range(k_w):
                    tap = w[k, c, u, v]
                    off = v * dw
                    for i in range(out_h):
                        src = grad_out[n, k, i]
                        dst = plane[i * sh + u * dh]
                        if sw == 1:
                            for j in range(out_w):
                                dst[j + off] += tap * src[j]
                        else:
                            for j in range(out_w):
                                dst[j * sw + off] += tap * src[j]
    return grad_xp


@njit(cache=True, parallel=True)
def conv2d_backward_weight(grad_out, xp, k_h, k_w, sh, sw, dh, dw):
    """grad_out (N, K, Ho, Wo), xp (N, C, Hp, Wp) -> grad_weight (K, C, k_h, k_w)."""
    n_batch, n_filt, out_h, out_w = grad_out.shape
    n_chan = xp.shape[1]
    grad_w = np.zeros((n_filt, n_chan, k_h, k_w), dtype=grad_out.dtype)
    for task in prange(n_filt * n_chan):  # one (filter, channel) slice of the gradient per task
        k = task // n_chan
        c = task % n_chan
        for u in range(k_h):
            for v in range(k_w):
                off = v * dw
                total = grad_w[k, c, u, v]
                for n in range(n_batch):
                    for i in range(out_h):
                        g = grad_out[n, k, i]
                        src = xp[n, c, i * sh + u * dh]
                        row = g[0] * 0  # per-row partial sum keeps float32 error small
                        if sw == 1:
                            for j in range(out_w):
                                row += g[j] * src[j + off]
                        else:
                            for j in range(out_w):
                                row += g[j] * src[j * sw + off]
                        total += row
                grad_w[k, c, u, v] = total
    return grad_w


@njit(cache=True, parallel=True)
def bias_backward(grad_out):
    """grad_out (N, K, Ho, Wo) -> grad_bias (K,)."""
    n_batch, n_filt = grad_out.shape[0], grad_out.shape[1]
    grad_b = np.zeros(n_filt, dtype=grad_out.dtype)
    for k in prange(n_filt):
        total = grad_b[k]
        for n in range(n_batch):
            total += grad_out[n, k].sum()
        grad_b[k] = total
    return grad_b


@njit(cache=True, parallel=True)
def max_pool2d_forward(xp, k_h, k_w, sh, sw, out_h, out_w):
    """xp (N, C, Hp, Wp) padded with -inf -> (N, C, out_h, out_w)."""
    n_batch, n_chan = xp.shape[0], xp.shape[1]
    out = np.empty((n_batch, n_chan, out_h, out_w), dtype=xp.dtype)
    for task in prange(n_batch * n_chan):
        n = task // n_chan
        c = task % n_chan
        src = xp[n, c]
        dst = out[n, c]
        for i in range(out_h):
            for j in range(out_w):
                best = src[i * sh, j * sw]
                for u in range(k_h):
                    row = src[i * sh + u]
                    for v in range(k_w):
                        if row[j * sw + v] > best:
                            best = row[j * sw + v]
                dst[i, j] = best
    return out


@njit(cache=True, parallel=True)
def max_pool2d_backward(grad_out, xp, k_h, k_w, sh, sw):
    """grad_out (N, C, Ho, Wo), xp padded -> grad of the padded input; first maximum wins ties."""
    n_batch, n_chan, out_h, out_w = grad_out.shape
    grad_xp = np.zeros(xp.shape, dtype=grad_out.dtype)
    for task in prange(n_batch * n_chan):  # windows of one plane only write into that plane
        n = task // n_chan
        c = task % n_chan
        src = xp[n, c]
        dst = grad_xp[n, c]
        for i in range(out_h):
            for j in range(out_w):
                best_r, best_c = i * sh, j * sw
                for u in range(k_h):
                    for v in range(k_w):
                        if src[i * sh + u, j * sw + v] > src[best_r, best_c]:
                            best_r, best_c = i * sh + u, j * sw + v
                dst[best_r, best_c] += grad_out[n, c, i, j]
    return grad_xp


@njit(cache=True, parallel=True)
def avg_pool2d_forward(xp, k_h, k_w, sh, sw, div):
    """xp (N, C, Hp, Wp) zero-padded, div (Ho, Wo) -> (N, C, Ho, Wo)."""
    n_batch, n_chan = xp.shape[0], xp.shape[1]
    out_h, out_w = div.shape
    out = np.empty((n_batch, n_chan, out_h, out_w), dtype=xp.dtype)
    for task in prange(n_batch * n_chan):
        n = task // n_chan
        c = task % n_chan
        src = xp[n, c]
        dst = out[n, c]
        for i in range(out_h):
            for j in range(out_w):
                total = 0.0
                for u in range(k_h):
                    row = src[i * sh + u]
                    for v in range(k_w):
                        total += row[j * sw + v]
                dst[i, j] = total / div[i, j]
    return out


@njit(cache=True, parallel=True)
def avg_pool2d_backward(grad_out, k_h, k_w, sh, sw, div, padded_h, padded_w):
    """grad_out (N, C, Ho, Wo) -> grad of the padded input (N, C, padded_h, padded_w)."""
    n_batch, n_chan, out_h, out_w = grad_out.shape
    grad_xp = np.zeros((n_batch, n_chan, padded_h, padded_w), dtype=grad_out.dtype)
    for task in prange(n_batch * n_chan):
        n = task // n_chan
        c = task % n_chan
        dst = grad_xp[n, c]
        for i in range(out_h):
            for j in range(out_w):
                share = grad_out[n, c, i, j] / div[i, j]
                for u in range(k_h):
                    for v in range(k_w):
                        dst[i * sh + u, j * sw + v] += share
    return grad_xp


def conv_transpose2d_forward(x, w, sh, sw, dh, dw, canvas_h, canvas_w):
    """x (N, C_in, H, W), w (C_in, C_out, kH, kW) -> uncropped output (N, C_out, canvas_h, canvas_w).

    A transposed convolution is exactly the input-gradient of a convolution whose weight
    is w (C_in filters over C_out channels), so it reuses that kernel."""
    return conv2d_backward_input(x, w, sh, sw, dh, dw, canvas_h, canvas_w)


def dense_forward(x, w, b):
    """x (N, I), w (O, I), b (O,) -> (N, O) through NumPy's BLAS matrix product."""
    return x @ w.T + b


def dense_backward(grad_out, x, w):
    """grad_out (N, O), x (N, I), w (O, I) -> (grad_x, grad_w, grad_b)."""
    return grad_out @ w, grad_out.T @ x, grad_out.sum(axis=0)
