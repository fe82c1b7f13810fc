"""The teaching kernels: one plain @njit loop per op, written to be read beside the lecture.

Each loop is the formula on the slide, nothing more.  For convolution (a
cross-correlation, as in every CNN library), with the input already zero-padded:

    out[n, k, i, j] = b[k] + sum_c sum_u sum_v  xp[n, c, i*sh + u*dh, j*sw + v*dw] * w[k, c, u, v]

(Pitié, TCD, "Convolutional Neural Networks": logit = w0 + sum over the window
and the channels of w * u).  The backward loops are that same sum read the
other way round: every product w*x that made an output contributes grad_out
times the *other* factor to each factor's gradient.

These are the reference the fast kernels in `fast.py` must agree with.  They
take arrays already validated, converted and padded by the public functions.
"""
import numpy as np
from numba import njit


@njit(cache=True)
def conv2d_forward(xp, w, b, sh, sw, dh, dw, out_h, out_w):
    """xp (N, C, Hp, Wp) padded input, w (K, C, kH, kW), b (K,) -> (N, K, out_h, out_w)."""
    n_batch, n_chan = xp.shape[0], xp.shape[1]
    n_filt, k_h, k_w = w.shape[0], w.shape[2], w.shape[3]
    out = np.empty((n_batch, n_filt, out_h, out_w), dtype=xp.dtype)
    for n in range(n_batch):
        for k in range(n_filt):
            for i in range(out_h):
                for j in range(out_w):
                    total = b[k]
                    for c in range(n_chan):
                        for u in range(k_h):
                            for v in range(k_w):
                                total += xp[n, c, i * sh + u * dh, j * sw + v * dw] * w[k, c, u, v]
                    out[n, k, i, j] = total
    return out


@njit(cache=True)
def conv2d_backward_input(grad_out, w, sh, sw, dh, dw, padded_h, padded_w):
    """grad_out (N, K, Ho, Wo), w (K, C, kH, kW) -> grad of the padded input (N, C, padded_h, padded_w).

    x[n, c, i*sh + u*dh, j*sw + v*dw] was multiplied by w[k, c, u, v] to make out[n, k, i, j],
    so it receives grad_out[n, k, i, j] * w[k, c, u, v]; a pixel under several windows adds them all.
    """
    n_batch, n_filt, out_h, out_w = grad_out.shape
    n_chan, k_h, k_w = w.shape[1], w.shape[2], w.shape[3]
    grad_xp = np.zeros((n_batch, n_chan, padded_h, padded_w), dtype=grad_out.dtype)
    for n in range(n_batch):
        for k in range(n_filt):
            for i in range(out_h):
                for j in range(out_w):
                    g = grad_out[n, k, i, j]
                    for c in range(n_chan):
                        for u in range(k_h):
                            for v in range(k_w):
                                grad_xp[n, c, i * sh + u * dh, j * sw + v * dw] += g * w[k, c, u, v]
    return grad_xp


@njit(cache=True)
def conv2d_backward_weight(grad_out, xp, k_h, k_w, sh, sw, dh, dw):
    """grad_out (N, K, Ho, Wo), xp (N, C, Hp, Wp) -> grad_weight (K, C, k_h, k_w).

    The same weight is used at every position of every image, so its gradient sums
    over the batch and all output positions.
    """
    n_batch, n_filt, out_h, out_w = grad_out.shape
    n_chan = xp.shape[1]
    grad_w = np.zeros((n_filt, n_chan, k_h, k_w), dtype=grad_out.dtype)
    for k in range(n_filt):
        for c in range(n_chan):
            for u in range(k_h):
                for v in range(k_w):
                    total = grad_w[k, c, u, v]
                    for n in range(n_batch):
                        for i in range(out_h):
                            for j in range(out_w):
                                total += grad_out[n, k, i, j] * xp[n, c, i * sh + u * dh, j * sw + v * dw]
                    grad_w[k, c, u, v] = total
    return grad_w


@njit(cache=True)
def bias_backward(grad_out):
    """grad_out (N, K, Ho, Wo) -> grad_bias (K,): the bias is added to every output of its map."""
    n_batch, n_filt, out_h, out_w = grad_out.shape
    grad_b = np.zeros(n_filt, dtype=grad_out.dtype)
    for k in range(n_filt):
        total = grad_b[k]
        for n in range(n_batch):
            for i in range(out_h):
                for j in range(out_w):
                    total += grad_out[n, k, i, j]
        grad_b[k] = total
    return grad_b


@njit(cache=True)
def conv_transpose2d_forward(x, w, sh, sw, dh, dw, canvas_h, canvas_w):
    """x (N, C_in, H, W), w (C_in, C_out, kH, kW) -> uncropped output (N, C_out, canvas_h, canvas_w).

    Each input pixel stamps a copy of the kernel, scaled by its value, onto the output,
    the stamps `stride` apart; where stamps overlap they add.
    """
    n_batch, c_in, in_h, in_w = x.shape
    c_out, k_h, k_w = w.shape[1], w.shape[2], w.shape[3]
    out = np.zeros((n_batch, c_out, canvas_h, canvas_w), dtype=x.dtype)
    for n in range(n_batch):
        for ci in range(c_in):
            for i in range(in_h):
                for j in range(in_w):
                    value = x[n, ci, i, j]
                    for co in range(c_out):
                        for u in range(k_h):
                            for v in range(k_w):
                                out[n, co, i * sh + u * dh, j * sw + v * dw] += value * w[ci, co, u, v]
    return out


@njit(cache=True)
def max_pool2d_forward(xp, k_h, k_w, sh, sw, out_h, out_w):
    """xp (N, C, Hp, Wp) padded with -inf -> (N, C, out_h, out_w), the maximum of each window."""
    n_batch, n_chan = xp.shape[0], xp.shape[1]
    out = np.empty((n_batch, n_chan, out_h, out_w), dtype=xp.dtype)
    for n in range(n_batch):
        for c in range(n_chan):
            for i in range(out_h):
                for j in range(out_w):
                    best = xp[n, c, i * sh, j * sw]
                    for u in range(k_h):
                        for v in range(k_w):
                            if xp[n, c, i * sh + u, j * sw + v] > best:
                                best = xp[n, c, i * sh + u, j * sw + v]
                    out[n, c, i, j] = best
    return out


@njit(cache=True)
def max_pool2d_backward(grad_out, xp, k_h, k_w, sh, sw):
    """grad_out (N, C, Ho, Wo), xp (N, C, Hp, Wp) -> grad of the padded input.

    Only the winner of each window affected the output, so only it gets the gradient;
    on a tie the first maximum in row-major order wins (as in PyTorch).
    """
    n_batch, n_chan, out_h, out_w = grad_out.shape
    grad_xp = np.zeros(xp.shape, dtype=grad_out.dtype)
    for n in range(n_batch):
        for c in range(n_chan):
            for i in range(out_h):
                for j in range(out_w):
                    u, v = window_argmax(xp[n, c], i * sh, j * sw, k_h, k_w)
                    grad_xp[n, c, i * sh + u, j * sw + v] += grad_out[n, c, i, j]
    return grad_xp


@njit(cache=True)
def window_argmax(plane, top, left, k_h, k_w):
    """(u, v) of the first maximum, in row-major order, of plane[top:top + k_h, left:left + k_w]:
    a later cell replaces the best only when strictly larger (so NaN never wins)."""
    best_u, best_v = 0, 0
    for u in range(k_h):
        for v in range(k_w):
            if plane[top + u, left + v] > plane[top + best_u, left + best_v]:
                best_u, best_v = u, v
    return best_u, best_v


@njit(cache=True)
def avg_pool_divisors(in_h, in_w, k_h, k_w, sh, sw, ph, pw, out_h, out_w, count_include_pad):
    """(out_h, out_w) window sizes to divide by: k_h*k_w, or only the cells inside the image."""
    div = np.empty((out_h, out_w), dtype=np.float64)
    for i in range(out_h):
        for j in range(out_w):
            if count_include_pad:
                div[i, j] = k_h * k_w
            else:
                rows = min(i * sh - ph + k_h, in_h) - max(i * sh - ph, 0)
                cols = min(j * sw - pw + k_w, in_w) - max(j * sw - pw, 0)
                div[i, j] = rows * cols
    return div


@njit(cache=True)
def avg_pool2d_forward(xp, k_h, k_w, sh, sw, div):
    """xp (N, C, Hp, Wp) zero-padded, div (Ho, Wo) -> (N, C, Ho, Wo), each window's sum / div."""
    n_batch, n_chan = xp.shape[0], xp.shape[1]
    out_h, out_w = div.shape
    out = np.empty((n_batch, n_chan, out_h, out_w), dtype=xp.dtype)
    for n in range(n_batch):
        for c in range(n_chan):
            for i in range(out_h):
                for j in range(out_w):
                    total = 0.0
                    for u in range(k_h):
                        for v in range(k_w):
                            total += xp[n, c, i * sh + u, j * sw + v]
                    out[n, c, i, j] = total / div[i, j]
    return out


@njit(cache=True)
def avg_pool2d_backward(grad_out, k_h, k_w, sh, sw, div, padded_h, padded_w):
    """grad_out (N, C, Ho, Wo) -> grad of the padded input: each cell of a window gets grad / div."""
    n_batch, n_chan, out_h, out_w = grad_out.shape
    grad_xp = np.zeros((n_batch, n_chan, padded_h, padded_w), dtype=grad_out.dtype)
    for n in range(n_batch):
        for c in range(n_chan):
            for i in range(out_h):
                for j in range(out_w):
                    share = grad_out[n, c, i, j] / div[i, j]
                    for u in range(k_h):
                        for v in range(k_w):
                            grad_xp[n, c, i * sh + u, j * sw + v] += share
    return grad_xp


@njit(cache=True)
def dense_forward(x, w, b):
    """x (N, I), w (O, I), b (O,) -> (N, O): out[n, o] = b[o] + sum_i x[n, i] * w[o, i]."""
    n_batch, n_in = x.shape
    n_out = w.shape[0]
    out = np.empty((n_batch, n_out), dtype=x.dtype)
    for n in range(n_batch):
        for o in range(n_out):
            total = b[o]
            for i in range(n_in):
                total += x[n, i] * w[o, i]
            out[n, o] = total
    return out


@njit(cache=True)
def dense_backward(grad_out, x, w):
    """grad_out (N, O), x (N, I), w (O, I) -> (grad_x (N, I), grad_w (O, I), grad_b (O,))."""
    n_batch, n_in = x.shape
    n_out = w.shape[0]
    grad_x = np.zeros((n_batch, n_in), dtype=grad_out.dtype)
    grad_w = np.zeros((n_out, n_in), dtype=grad_out.dtype)
    grad_b = np.zeros(n_out, dtype=grad_out.dtype)
    for n in range(n_batch):
        for o in range(n_out):
            g = grad_out[n, o]
            grad_b[o] += g
            for i in range(n_in):
                grad_x[n, i] += g * w[o, i]
                grad_w[o, i] += g * x[n, i]
    return grad_x, grad_w, grad_b
