"""Independent float64 NumPy oracle for every minicnn op.

Written from the definitions only (never from minicnn's kernels), so the two can
disagree.  Everything here is slow and plain on purpose: forward passes gather
over kernel taps or windows, backward passes are the adjoints written as
explicit scatters (each input cell receives exactly what it contributed to),
not finite differences.  Every function returns float64 and copies its inputs.
"""
from __future__ import annotations

import numpy as np


def f64(a):
    return np.array(a, dtype=np.float64, copy=True)


def pair(v):
    """int or (rows, cols) -> (rows, cols)."""
    if isinstance(v, (tuple, list)):
        assert len(v) == 2
        return int(v[0]), int(v[1])
    return int(v), int(v)


def resolve_padding(padding, kernel_hw, stride_hw, dilation_hw):
    """'valid' / 'same' / 'full' / int / pair -> (pad_rows, pad_cols)."""
    if isinstance(padding, str):
        span = [d * (k - 1) for k, d in zip(kernel_hw, dilation_hw)]
        if padding == "valid":
            return 0, 0
        if padding == "full":
            return span[0], span[1]
        if padding == "same":
            if max(stride_hw) != 1 or span[0] % 2 or span[1] % 2:
                raise ValueError("'same' needs stride 1 and an odd dilated kernel")
            return span[0] // 2, span[1] // 2
        raise ValueError(padding)
    return pair(padding)


def out_size(n, k, s, p, d):
    """floor((n + 2p - d(k-1) - 1) / s) + 1."""
    return (n + 2 * p - d * (k - 1) - 1) // s + 1


def pad_hw(x, ph, pw, value=0.0):
    """(N, C, H, W) -> (N, C, H+2ph, W+2pw), constant `value` around the border."""
    return np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)), mode="constant", constant_values=value)


def _tap(xp, i, j, sh, sw, dh, dw, ho, wo):
    """(N, C, Hp, Wp) -> (N, C, ho, wo): the input cells that kernel tap (i, j) meets
    at every output position, xp[:, :, i*dh + oh*sh, j*dw + ow*sw]."""
    return xp[:, :, i * dh: i * dh + sh * (ho - 1) + 1: sh, j * dw: j * dw + sw * (wo - 1) + 1: sw]


# --------------------------------------------------------------------------- conv2d

def conv2d(x, weight, bias=None, stride=1, padding=0, dilation=1):
    """x (N, C, H, W), weight (K, C, kH, kW), bias (K,) or None -> (N, K, Ho, Wo).

    y[n, k, oh, ow] = b[k] + sum_{c, i, j} w[k, c, i, j] * xpad[n, c, oh*sh + i*dh, ow*sw + j*dw]
    """
    x, w = f64(x), f64(weight)
    kh, kw = w.shape[2:]
    (sh, sw), (dh, dw) = pair(stride), pair(dilation)
    ph, pw = resolve_padding(padding, (kh, kw), (sh, sw), (dh, dw))
    ho, wo = out_size(x.shape[2], kh, sh, ph, dh), out_size(x.shape[3], kw, sw, pw, dw)
    assert ho >= 1 and wo >= 1
    xp = pad_hw(x, ph, pw)
    y = np.zeros((x.shape[0], w.shape[0], ho, wo))
    for i in range(kh):
        for j in range(kw):
            y += np.einsum("nchw,kc->nkhw", _tap(xp, i, j, sh, sw, dh, dw, ho, wo), w[:, :, i, j])
    if bias is not None:
        y += f64(bias)[None, :, None, None]
    return y


def conv2d_backward(grad_out, x, weight, stride=1, padding=0, dilation=1):
    """grad_out (N, K, Ho, Wo), x (N, C, H, W), weight (K, C, kH, kW)
    -> (grad_x (N, C, H, W), grad_weight (K, C, kH, kW), grad_bias (K,)).

    Each tap (i, j) sent w[k, c, i, j] * x-cell into y; so the x-cell gets back
    w[k, c, i, j] * g and w[k, c, i, j] collects x-cell * g, summed over n, oh, ow.
    Padding cells receive gradient too, and are cut off at the end.
    """
    g, x, w = f64(grad_out), f64(x), f64(weight)
    kh, kw = w.shape[2:]
    (sh, sw), (dh, dw) = pair(stride), pair(dilation)
    ph, pw = resolve_padding(padding, (kh, kw), (sh, sw), (dh, dw))
    ho, wo = g.shape[2:]
    assert (ho, wo) == (out_size(x.shape[2], kh, sh, ph, dh), out_size(x.shape[3], kw, sw, pw, dw))
    xp = pad_hw(x, ph, pw)
    gxp = np.zeros_like(xp)
    gw = np.zeros_like(w)
    for i in range(kh):
        for j in range(kw):
            _tap(gxp, i, j, sh, sw, dh, dw, ho, wo)[...] += np.einsum("nkhw,kc->nchw", g, w[:, :, i, j])
            gw[:, :, i, j] = np.einsum("nkhw,nchw->kc", g, _tap(xp, i, j, sh, sw, dh, dw, ho, wo))
    gx = gxp[:, :, ph: ph + x.shape[2], pw: pw + x.shape[3]]
    return gx.copy(), gw, g.sum(axis=(0, 2, 3))


# --------------------------------------------------------------------------- conv1d

def conv1d(x, weight, bias=None, stride=1, padding=0, dilation=1):
    """x (N, C, L), weight (K, C, k), bias (K,) or None -> (N, K, Lo).

    y[n, o, t] = b[o] + sum_{c, i} w[o, c, i] * xpad[n, c, t*s + i*d]   (explicit loops)
    """
    x, w = f64(x), f64(weight)
    n_, c_, length = x.shape
    k_, _, k = w.shape
    s, d = int(stride), int(dilation)
    p = resolve_padding(padding, (k, k), (s, s), (d, d))[0]
    lo = out_size(length, k, s, p, d)
    xp = np.pad(x, ((0, 0), (0, 0), (p, p)))
    y = np.zeros((n_, k_, lo))
    for n in range(n_):
        for o in range(k_):
            for t in range(lo):
                acc = 0.0 if bias is None else float(bias[o])
                for c in range(c_):
                    for i in range(k):
                        acc += w[o, c, i] * xp[n, c, t * s + i * d]
                y[n, o, t] = acc
    return y


def conv1d_backward(grad_out, x, weight, stride=1, padding=0, dilation=1):
    """grad_out (N, K, Lo), x (N, C, L), weight (K, C, k) -> (grad_x, grad_weight, grad_bias)."""
    g, x, w = f64(grad_out), f64(x), f64(weight)
    n_, c_, length = x.shape
    k_, _, k = w.shape
    s, d = int(stride), int(dilation)
    p = resolve_padding(padding, (k, k), (s, s), (d, d))[0]
    lo = g.shape[2]
    assert lo == out_size(length, k, s, p, d)
    xp = np.pad(x, ((0, 0), (0, 0), (p, p)))
    gxp = np.zeros_like(xp)
    gw = np.zeros_like(w)
    for n in range(n_):
        for o in range(k_):
            for t in range(lo):
                for c in range(c_):
                    for i in range(k):
                        gxp[n, c, t * s + i * d] += w[o, c, i] * g[n, o, t]
                        gw[o, c, i] += xp[n, c, t * s + i * d] * g[n, o, t]
    return gxp[:, :, p: p + length].copy(), gw, g.sum(axis=(0, 2))


# --------------------------------------------------------------------------- conv_transpose2d

def conv_transpose2d(x, weight, bias=None, stride=1, padding=0, output_padding=0, dilation=1):
    """x (N, Cin, H, W), weight (Cin, Cout, kH, kW), bias (Cout,) -> (N, Cout, Ho, Wo),
    Ho = (H-1)*sh - 2*ph + dh*(kH-1) + oph + 1.

    Every input cell stamps its weight slice onto the output:
        full[n, o, h*sh + i*dh, w*sw + j*dw] += x[n, c, h, w] * weight[c, o, i, j]
    and the result is full[..., ph: ph + Ho, pw: pw + Wo] (output_padding adds rows/cols
    at the bottom/right that only the bias reaches, unless padding lets stamps land there).
    """
    x, wt = f64(x), f64(weight)
    n_, cin, h, w_ = x.shape
    cout, kh, kw = wt.shape[1:]
    (sh, sw), (ph, pw), (oph, opw), (dh, dw) = pair(stride), pair(padding), pair(output_padding), pair(dilation)
    ho = (h - 1) * sh - 2 * ph + dh * (kh - 1) + oph + 1
    wo = (w_ - 1) * sw - 2 * pw + dw * (kw - 1) + opw + 1
    full = np.zeros((n_, cout, ph + ho + ph, pw + wo + pw))
    for hh in range(h):
        for ww in range(w_):
            for i in range(kh):
                for j in range(kw):
                    full[:, :, hh * sh + i * dh, ww * sw + j * dw] += x[:, :, hh, ww] @ wt[:, :, i, j]
    y = full[:, :, ph: ph + ho, pw: pw + wo].copy()
    if bias is not None:
        y += f64(bias)[None, :, None, None]
    return y


def conv_transpose2d_backward(grad_out, x, weight, stride=1, padding=0, output_padding=0, dilation=1):
    """grad_out (N, Cout, Ho, Wo), x (N, Cin, H, W), weight (Cin, Cout, kH, kW)
    -> (grad_x, grad_weight, grad_bias (Cout,)).

    Adjoint of the stamp: put grad_out back where the crop took it from (zeros where
    it was cut off) and read every stamped position back."""
    g, x, wt = f64(grad_out), f64(x), f64(weight)
    n_, cin, h, w_ = x.shape
    cout, kh, kw = wt.shape[1:]
    (sh, sw), (ph, pw), (dh, dw) = pair(stride), pair(padding), pair(dilation)
    ho, wo = g.shape[2:]
    gfull = np.zeros((n_, cout, ph + ho + ph, pw + wo + pw))
    gfull[:, :, ph: ph + ho, pw: pw + wo] = g
    gx = np.zeros_like(x)
    gw = np.zeros_like(wt)
    for hh in range(h):
        for ww in range(w_):
            for i in range(kh):
                for j in range(kw):
                    gcell = gfull[:, :, hh * sh + i * dh, ww * sw + j * dw]  # (N, Cout)
                    gx[:, :, hh, ww] += gcell @ wt[:, :, i, j].T
                    gw[:, :, i, j] += x[:, :, hh, ww].T @ gcell
    return gx, gw, g.sum(axis=(0, 2, 3))


# --------------------------------------------------------------------------- pooling

def _pool_windows(shape, kernel_size, stride, padding):
    """Yield (oh, ow, rows, cols) for every pooling window, rows/cols as ranges in the
    padded image."""
    kh, kw = pair(kernel_size)
    sh, sw = pair(kernel_size if stride is None else stride)
    ph, pw = pair(padding)
    ho, wo = out_size(shape[2], kh, sh, ph, 1), out_size(shape[3], kw, sw, pw, 1)
    for oh in range(ho):
        for ow in range(wo):
            yield oh, ow, range(oh * sh, oh * sh + kh), range(ow * sw, ow * sw + kw)


def _pool_out_shape(shape, kernel_size, stride, padding):
    kh, kw = pair(kernel_size)
    sh, sw = pair(kernel_size if stride is None else stride)
    ph, pw = pair(padding)
    return shape[0], shape[1], out_size(shape[2], kh, sh, ph, 1), out_size(shape[3], kw, sw, pw, 1)


def max_pool2d(x, kernel_size, stride=None, padding=0):
    """x (N, C, H, W) -> (N, C, Ho, Wo): maximum over each window of x padded with -inf."""
    x = f64(x)
    ph, pw = pair(padding)
    xp = pad_hw(x, ph, pw, -np.inf)
    y = np.empty(_pool_out_shape(x.shape, kernel_size, stride, padding))
    for oh, ow, rows, cols in _pool_windows(x.shape, kernel_size, stride, padding):
        y[:, :, oh, ow] = xp[:, :, rows.start: rows.stop, cols.start: cols.stop].max(axis=(2, 3))
    return y


def max_pool2d_backward(grad_out, x, kernel_size, stride=None, padding=0):
    """grad_out (N, C, Ho, Wo), x (N, C, H, W) -> grad_x (N, C, H, W).

    Each window's gradient goes to the first (row-major) cell holding its maximum;
    overlapping windows add up."""
    g, x = f64(grad_out), f64(x)
    ph, pw = pair(padding)
    xp = pad_hw(x, ph, pw, -np.inf)
    gxp = np.zeros_like(xp)
    for oh, ow, rows, cols in _pool_windows(x.shape, kernel_size, stride, padding):
        for n in range(x.shape[0]):
            for c in range(x.shape[1]):
                best_r, best_c, best = None, None, -np.inf
                for r in rows:
                    for q in cols:
                        if best_r is None or xp[n, c, r, q] > best:
                            best_r, best_c, best = r, q, xp[n, c, r, q]
                gxp[n, c, best_r, best_c] += g[n, c, oh, ow]
    return gxp[:, :, ph: ph + x.shape[2], pw: pw + x.shape[3]].copy()


def _avg_divisor(rows, cols, shape, padding, count_include_pad):
    if count_include_pad:
        return len(rows) * len(cols)
    ph, pw = pair(padding)
    inside_r = sum(1 for r in rows if ph <= r < ph + shape[2])
    inside_c = sum(1 for q in cols if pw <= q < pw + shape[3])
    return inside_r * inside_c


def avg_pool2d(x, kernel_size, stride=None, padding=0, count_include_pad=True):
    """x (N, C, H, W) -> (N, C, Ho, Wo): window sum of zero-padded x divided by kH*kW
    (count_include_pad) or by the number of window cells inside the image."""
    x = f64(x)
    ph, pw = pair(padding)
    xp = pad_hw(x, ph, pw, 0.0)
    y = np.empty(_pool_out_shape(x.shape, kernel_size, stride, padding))
    for oh, ow, rows, cols in _pool_windows(x.shape, kernel_size, stride, padding):
        div = _avg_divisor(rows, cols, x.shape, padding, count_include_pad)
        y[:, :, oh, ow] = xp[:, :, rows.start: rows.stop, cols.start: cols.stop].sum(axis=(2, 3)) / div
    return y


def avg_pool2d_backward(grad_out, x, kernel_size, stride=None, padding=0, count_include_pad=True):
    """grad_out (N, C, Ho, Wo), x (N, C, H, W) -> grad_x: each window spreads g / divisor
    over its cells (padding cells' share is dropped)."""
    g, x = f64(grad_out), f64(x)
    ph, pw = pair(padding)
    gxp = np.zeros(pad_hw(x, ph, pw).shape)
    for oh, ow, rows, cols in _pool_windows(x.shape, kernel_size, stride, padding):
        div = _avg_divisor(rows, cols, x.shape, padding, count_include_pad)
        for r in rows:
            for q in cols:
                gxp[:, :, r, q] += g[:, :, oh, ow] / div
    return gxp[:, :, ph: ph + x.shape[2], pw: pw + x.shape[3]].copy()


# --------------------------------------------------------------------------- 2-D image ops

def correlate2d(image, kernel, stride=1, padding=0):
    """image (H, W), kernel (kH, kW) -> (Ho, Wo) cross-correlation, explicit loops."""
    img, k = f64(image), f64(kernel)
    kh, kw = k.shape
    sh, sw = pair(stride)
    ph, pw = resolve_padding(padding, (kh, kw), (sh, sw), (1, 1))
    xp = np.pad(img, ((ph, ph), (pw, pw)))
    ho, wo = out_size(img.shape[0], kh, sh, ph, 1), out_size(img.shape[1], kw, sw, pw, 1)
    y = np.zeros((ho, wo))
    for a in range(ho):
        for b in range(wo):
            for i in range(kh):
                for j in range(kw):
                    y[a, b] += k[i, j] * xp[a * sh + i, b * sw + j]
    return y


def convolve2d(image, kernel, stride=1, padding=0):
    """True convolution: correlation with the kernel flipped in both axes."""
    return correlate2d(image, f64(kernel)[::-1, ::-1], stride, padding)


def convolve2d_full(image, kernel):
    """(H, W), (kH, kW) -> (H+kH-1, W+kW-1): y[a, b] = sum_{r, q} image[r, q] * kernel[a-r, b-q],
    the textbook definition (what scipy.signal.convolve2d(mode='full') computes)."""
    img, k = f64(image), f64(kernel)
    y = np.zeros((img.shape[0] + k.shape[0] - 1, img.shape[1] + k.shape[1] - 1))
    for r in range(img.shape[0]):
        for q in range(img.shape[1]):
            y[r: r + k.shape[0], q: q + k.shape[1]] += img[r, q] * k
    return y


# --------------------------------------------------------------------------- dense

def dense(x, weight, bias=None):
    """x (N, in), weight (out, in), bias (out,) -> (N, out) = x W^T + b."""
    y = f64(x) @ f64(weight).T
    if bias is not None:
        y += f64(bias)[None, :]
    return y


def dense_backward(grad_out, x, weight):
    """grad_out (N, out) -> (grad_x (N, in), grad_weight (out, in), grad_bias (out,))."""
    g, x, w = f64(grad_out), f64(x), f64(weight)
    return g @ w, g.T @ x, g.sum(axis=0)


# --------------------------------------------------------------------------- activations

def relu(x):
    x = f64(x)
    return np.where(x > 0, x, 0.0)


def relu_backward(grad_out, x):
    """relu'(0) = 0."""
    return np.where(f64(x) > 0, f64(grad_out), 0.0)


def tanh(x):
    return np.tanh(f64(x))


def tanh_backward(grad_out, x):
    t = np.tanh(f64(x))
    return f64(grad_out) * (1.0 - t * t)


def sigmoid(x):
    x = f64(x)
    # 0.5 * (1 + tanh(x/2)) never overflows
    return 0.5 * (1.0 + np.tanh(0.5 * x))


def sigmoid_backward(grad_out, x):
    s = sigmoid(x)
    return f64(grad_out) * s * (1.0 - s)


# --------------------------------------------------------------------------- softmax

def log_softmax(logits):
    """(N, C) -> (N, C), row-wise, via the max shift."""
    z = f64(logits)
    z = z - z.max(axis=1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=1, keepdims=True))


def softmax(logits):
    return np.exp(log_softmax(logits))


def softmax_cross_entropy(logits, labels):
    """(N, C), (N,) ints -> mean over rows of -log softmax[label]."""
    ls = log_softmax(logits)
    labels = np.asarray(labels)
    return float(-ls[np.arange(ls.shape[0]), labels].mean())


def softmax_cross_entropy_backward(logits, labels):
    """(N, C) -> (softmax - onehot) / N."""
    p = softmax(logits)
    labels = np.asarray(labels)
    p[np.arange(p.shape[0]), labels] -= 1.0
    return p / p.shape[0]
