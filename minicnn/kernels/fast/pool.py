"""Fast pooling kernels: the loops of `loops.py`, one task per plane, with the common
2x2 window at stride 2 written out so that LLVM vectorises it (a stride known at compile
time becomes vector shuffles; a runtime stride would not vectorise).

Results are exactly the loops' for max pooling (same comparisons in the same order: the
first maximum in row-major order wins, NaN never replaces a number) and equal to rounding
for average pooling (sums in the input's dtype).  Each task writes one plane: no races.
The window, stride and output size come as one value, geom (a minicnn.geometry.PoolGeometry);
the input arrives padded already (-inf for max pooling, 0 for average pooling).  Each compiled
kernel does share `part` of `parts` of the planes and runs on every thread through threads.run.
"""
import numpy as np
from numba import njit

from ..loops import window_argmax
from .threads import run


@njit(cache=True)
def two_by_two(geom):
    """True for the 2x2 window at stride 2, the path each kernel below writes out (the one
    place that tests it)."""
    return geom.kh == 2 and geom.kw == 2 and geom.sh == 2 and geom.sw == 2


def max_pool(xp, geom, out=None):
    """xp (N, C, Hp, Wp) padded with -inf -> (N, C, geom.out_h, geom.out_w), written into `out`
    when given (that shape and xp's dtype, C-contiguous: the caller checks)."""
    if out is None:
        out = np.empty((xp.shape[0], xp.shape[1], geom.out_h, geom.out_w), dtype=xp.dtype)
    run(max_pool_part, xp, geom, out)
    return out


@njit(cache=True)
def max_pool_part(part, parts, xp, geom, out):
    """Fills share `part` of `parts` of out's planes with xp's window maxima."""
    k_h, k_w, sh, sw, out_h, out_w = geom.kh, geom.kw, geom.sh, geom.sw, geom.out_h, geom.out_w
    n_batch, n_chan = xp.shape[0], xp.shape[1]
    pair = two_by_two(geom)
    n_tasks = n_batch * n_chan
    for task in range(n_tasks * part // parts, n_tasks * (part + 1) // parts):
        src = xp[task // n_chan, task % n_chan]
        dst = out[task // n_chan, task % n_chan]
        for i in range(out_h):
            d = dst[i]
            if pair:
                r0 = src[2 * i]
                r1 = src[2 * i + 1]
                for j in range(out_w):
                    best = r0[2 * j]
                    v = r0[2 * j + 1]
                    best = v if v > best else best
                    v = r1[2 * j]
                    best = v if v > best else best
                    v = r1[2 * j + 1]
                    best = v if v > best else best
                    d[j] = best
            else:
                first = src[i * sh]
                for j in range(out_w):      # a loop, not a slice copy (see fast/__init__.py)
                    d[j] = first[j * sw]
                for u in range(k_h):
                    row = src[i * sh + u]
                    for v in range(k_w):
                        for j in range(out_w):
                            x = row[j * sw + v]
                            d[j] = x if x > d[j] else d[j]


def max_pool_backward(grad_out, xp, geom, grad_xp=None):
    """grad_out (N, C, Ho, Wo), xp padded -> grad of the padded input; the first maximum wins ties.
    grad_xp: None, or the array to write it into (xp's shape, grad_out's dtype, C-contiguous; what it
    held is overwritten)."""
    # Each task zeroes its own planes (the kernel, not here): the 2x2 path each pair of rows just
    # before it stores into them, while they sit in L1, so the memory is gone over once, not twice.
    if grad_xp is None:
        grad_xp = np.empty(xp.shape, dtype=grad_out.dtype)
    run(max_pool_backward_part, grad_out, xp, geom, grad_xp)
    return grad_xp


@njit(cache=True)
def max_pool_backward_part(part, parts, grad_out, xp, geom, grad_xp):
    """Share `part` of `parts` of max_pool_backward's planes, into grad_xp (see there)."""
    if two_by_two(geom):
        max_pool_backward_pairs(part, parts, grad_out, xp, grad_xp)
        return
    k_h, k_w, sh, sw = geom.kh, geom.kw, geom.sh, geom.sw
    n_batch, n_chan, out_h, out_w = grad_out.shape
    n_tasks = n_batch * n_chan
    for task in range(n_tasks * part // parts, n_tasks * (part + 1) // parts):
        n, c = divmod(task, n_chan)
        dst = grad_xp[n, c]
        dst[:, :] = 0       # adds into it below (overlapping windows share cells)
        for i in range(out_h):
            for j in range(out_w):
                u, v = window_argmax(xp[n, c], i * sh, j * sw, k_h, k_w)
                dst[i * sh + u, j * sw + v] += grad_out[n, c, i, j]


@njit(cache=True)
def max_pool_backward_pairs(part, parts, grad_out, xp, grad_xp):
    """max_pool_backward_part's 2x2 stride-2 path (grad_xp C-contiguous).

    Each pair of input rows is gone over twice.  First every window's winner, kept as its
    offset from the window's top-left cell in the flattened pair of rows (0, 1, W, W+1), is
    picked with selects only, which LLVM turns into 8-wide vector compares and blends.  Then each
    window's gradient is stored once at 2*j + offset.  Offsets and index are unsigned on purpose:
    a signed index makes Numba add a negative-index wrap to every store.  `off` is allocated
    here, not passed in: LLVM then knows that no other array shares its memory (measured: 10%
    slower as an argument)."""
    n_batch, n_chan, out_h, out_w = grad_out.shape
    row = grad_xp.shape[3]
    right, down, diagonal, here = np.uint32(1), np.uint32(row), np.uint32(row + 1), np.uint32(0)
    off = np.empty(out_w, dtype=np.uint32)
    n_tasks = n_batch * n_chan
    for task in range(n_tasks * part // parts, n_tasks * (part + 1) // parts):
        n = task // n_chan
        c = task % n_chan
        src = xp[n, c]
        dst = grad_xp[n, c]
        flat = dst.reshape(dst.shape[0] * row)
        for r in range(2 * out_h, dst.shape[0]):   # an odd last row belongs to no window
            dst[r][:] = 0
        for i in range(out_h):
            g = grad_out[n, c, i]
            r0 = src[2 * i]
            r1 = src[2 * i + 1]
            rows = flat[2 * i * row:(2 * i + 2) * row]   # input rows 2i and 2i+1, zeroed here,
            rows[:] = 0                                  # just before the stores, while in L1
            for j in range(out_w):   # the first maximum wins, as in the general path
                a, b, cc, d = r0[2 * j], r0[2 * j + 1], r1[2 * j], r1[2 * j + 1]
                o = right if b > a else here
                best = b if b > a else a
                o = down if cc > best else o
                best = cc if cc > best else best
                off[j] = diagonal if d > best else o
            for j in range(out_w):
                rows[np.uint64(2 * j) + np.uint64(off[j])] = g[j]


def avg_pool(xp, geom, div, out=None):
    """xp (N, C, Hp, Wp) zero-padded, div (Ho, Wo) in xp's dtype -> (N, C, Ho, Wo), written into
    `out` when given (as for max_pool)."""
    if out is None:
        out = np.empty((xp.shape[0], xp.shape[1]) + div.shape, dtype=xp.dtype)
    run(avg_pool_part, xp, geom, div, out)
    return out


@njit(cache=True)
def avg_pool_part(part, parts, xp, geom, div, out):
    """Fills share `part` of `parts` of out's planes with xp's window means."""
    k_h, k_w, sh, sw = geom.kh, geom.kw, geom.sh, geom.sw
    n_batch, n_chan = xp.shape[0], xp.shape[1]
    out_h, out_w = div.shape
    pair = two_by_two(geom)
    n_tasks = n_batch * n_chan
    for task in range(n_tasks * part // parts, n_tasks * (part + 1) // parts):
        src = xp[task // n_chan, task % n_chan]
        dst = out[task // n_chan, task % n_chan]
        for i in range(out_h):
            d = dst[i]
            q = div[i]
            if pair:
                r0 = src[2 * i]
                r1 = src[2 * i + 1]
                for j in range(out_w):
                    d[j] = (r0[2 * j] + r0[2 * j + 1] + r1[2 * j] + r1[2 * j + 1]) / q[j]
            else:
                first = src[i * sh]
                for j in range(out_w):      # a loop, not a slice copy (see fast/__init__.py)
                    d[j] = first[j * sw]
                for u in range(k_h):
                    row = src[i * sh + u]
                    for v in range(k_w):
                        if u + v > 0:
                            for j in range(out_w):
                                d[j] += row[j * sw + v]
                for j in range(out_w):
                    d[j] /= q[j]


def avg_pool_backward(grad_out, geom, div, padded_h, padded_w, grad_xp=None):
    """grad_out (N, C, Ho, Wo), div in grad_out's dtype -> grad of the padded input (N, C, padded_h, padded_w),
    written into grad_xp when given (that shape, grad_out's dtype, C-contiguous)."""
    if grad_xp is None:
        grad_xp = np.zeros(grad_out.shape[:2] + (padded_h, padded_w), dtype=grad_out.dtype)
    else:
        grad_xp.fill(0)     # cells no window covers stay 0, and the general path adds into it
    run(avg_pool_backward_part, grad_out, geom, div, grad_xp)
    return grad_xp


@njit(cache=True)
def avg_pool_backward_part(part, parts, grad_out, geom, div, grad_xp):
    """Share `part` of `parts` of avg_pool_backward's planes, added into grad_xp (zeros)."""
    k_h, k_w, sh, sw = geom.kh, geom.kw, geom.sh, geom.sw
    n_batch, n_chan, out_h, out_w = grad_out.shape
    pair = two_by_two(geom)
    n_tasks = n_batch * n_chan
    for task in range(n_tasks * part // parts, n_tasks * (part + 1) // parts):
        n = task // n_chan
        c = task % n_chan
        dst = grad_xp[n, c]
        for i in range(out_h):
            g = grad_out[n, c, i]
            q = div[i]
            if pair:
                q0 = dst[2 * i]
                q1 = dst[2 * i + 1]
                for j in range(out_w):
                    share = g[j] / q[j]
                    q0[2 * j] = share
                    q0[2 * j + 1] = share
                    q1[2 * j] = share
                    q1[2 * j + 1] = share
            else:
                for u in range(k_h):
                    row = dst[i * sh + u]
                    for v in range(k_w):
                        for j in range(out_w):
                            row[j * sw + v] += g[j] / q[j]
