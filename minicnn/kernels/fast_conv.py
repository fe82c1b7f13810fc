"""The fast direct convolution: every filter tap is one long unit-stride multiply-add.

The idea, on one input plane xp (Hp x Wp) and one filter tap (u, v), stride 1:

    out[i, j] += w[u, v] * xp[i + u, j + v]      for all i < Ho, j < Wo

Read xp as one flat array with rows Wp long, and let the output be "wide": rows Wp
long too, of which only the first Wo columns are kept.  Then output position
p = i*Wp + j reads xp at p + (u*Wp + v), so the tap is

    wide[p] += w[u, v] * flat[p + u*Wp + v]      for p in 0 .. (Ho-1)*Wp + Wo - 1

one loop with unit stride, no branches and no 2-D indexing, which LLVM turns into
AVX/FMA vector code.  (The wide columns j >= Wo read across the row end and are
thrown away.)  On top of that:

- stride > 1 becomes stride 1 by splitting the input into its stride phases first:
  phase (a, b) holds xp[a::sh, b::sw], and tap (u, v) reads phase ((u*dh) % sh, (v*dw) % sw)
  at row (u*dh)//sh and column (v*dw)//sw.  Dilation only changes the offsets.  The zero
  padding is added during the same copy (split_phases), so no padded copy is made first.
- each pass of the inner loop (_taps_pass) does three taps for four output channels: every
  input value loaded feeds four multiply-adds and every output value is loaded and stored
  once per three taps (the load/store balance that keeps the FMA units busy).  The taps of
  all input channels form one list of (plane, offset), so nothing depends on the filter
  size: one compiled kernel serves 1x1, 3x3, 5x5, dilated and strided filters alike.
  A last block of fewer than four channels goes one channel at a time (_taps_pass1).
- every run is rounded up to a multiple of VEC elements (the arrays carry SLACK zeros at
  the end) so there is no scalar tail loop, accumulator rows start on cache lines, and long
  runs are cut into pieces whose accumulators stay in L1.
- small planes (LeNet's 14x14 -> 10x10 or 5x5 -> 1x1) waste most of a wide row, so there
  the batch goes innermost: position p = (i*Wq + j)*N + n, one output row of all N images
  is a single run of Wo*N values, and nothing is wasted ("batch-inner" layout).
- the input gradient is the transpose (scatter): every tap adds w * grad_out, shifted, into
  the stride phase of the input it read from, three output-gradient channels and four input
  channels per pass; then the phases are merged and the padding dropped (merge_phases).
- the weight gradient is a dot product of the (zeroed-outside) output gradient with the
  shifted input, for two filters and three taps per pass: six sums, each vectorised.

Work is split with prange over tasks that write disjoint memory (each prange body is one
call to a plain @njit task function, which keeps the parallel compile short), and partial
sums are always added in the same fixed order, so results do not depend on the number of
threads.  Float32 stays float32 throughout: no Python float or int enters the arithmetic.
"""
import numpy as np
from numba import njit, prange

KB = 4       # output channels per pass of the correlation
KBW = 2      # filters per pass of the weight gradient
VEC = 16     # every run is rounded up to a multiple of this many elements (no scalar tail loops)
SLACK = 2 * VEC  # zero elements after each flat plane, so rounded-up runs never read past it
CHUNK_BYTES = 8192  # longest run one pass handles: KB accumulator rows of it stay in L1

_FMA = {"contract"}                 # allow fused multiply-add, keep the order of every sum
_SUM = {"contract", "reassoc"}      # dot products: let LLVM split each sum into vector lanes


@njit(cache=True)
def round_up(n):
    return (n + VEC - 1) // VEC * VEC


# ---------------------------------------------------------------- layouts

@njit(cache=True)
def _span(first, step, limit):
    """The k >= 0 with 0 <= first + k*step < limit, as a range (first may be negative)."""
    lo = 0 if first >= 0 else (-first + step - 1) // step
    hi = 0 if first >= limit else (limit - first + step - 1) // step
    return lo, max(lo, hi)


@njit(cache=True)
def _split_plane(plane, ph, pw, sh, sw, dst):
    """One (H, W) plane of split_phases (inner=False): dst (sh*sw, Hq*Wq + SLACK), all of it written.
    dst may be uninitialised: it is zeroed first, while it sits in L1 (zero-filling a whole
    array beforehand costs one more pass over memory)."""
    h, w = plane.shape
    wq = (w + 2 * pw + sw - 1) // sw
    for q in range(sh * sw):
        dst[q][:] = 0
    for a in range(sh):
        r_lo, r_hi = _span(a - ph, sh, h)
        for b in range(sw):
            phase = dst[a * sw + b]
            s_lo, s_hi = _span(b - pw, sw, w)
            for r in range(r_lo, r_hi):
                # views that start at the first cell, so every index below is >= 0
                # (a possibly negative index costs a wrap-around check per element)
                d = phase[r * wq + s_lo:r * wq + s_hi]
                row = plane[r * sh + a - ph, s_lo * sw + b - pw:]
                if sw == 1:
                    for t in range(s_hi - s_lo):
                        d[t] = row[t]
                elif sw == 2:   # a constant stride
                    for t in range(s_hi - s_lo):
                        d[t] = row[2 * t]
                else:
                    for t in range(s_hi - s_lo):
                        d[t] = row[t * sw]


@njit(cache=True)
def split_phases(x, ph, pw, sh, sw, inner):
    """x (N, C, H, W), zero-padded by (ph, pw) on the fly, split into stride phases and flattened,
    with SLACK zeros after each plane.  With Hp = H + 2ph, Wp = W + 2pw, Hq = ceil(Hp/sh), Wq = ceil(Wp/sw):

    inner=False: (N, C, sh*sw, Hq*Wq + SLACK), src[n, c, a*sw + b, r*Wq + s] = x_padded[n, c, r*sh + a, s*sw + b]
    inner=True:  (1, C, sh*sw, Hq*Wq*N + SLACK), the same value at (r*Wq + s)*N + n
    and 0 wherever that falls in the padding or past the edge of a phase."""
    n_batch, n_chan, h, w = x.shape
    hq = (h + 2 * ph + sh - 1) // sh
    wq = (w + 2 * pw + sw - 1) // sw
    if inner:
        src = np.zeros((1, n_chan, sh * sw, hq * wq * n_batch + SLACK), dtype=x.dtype)
        for task in range(n_chan * hq):
            c = task // hq
            r = task % hq
            for a in range(sh):
                y = r * sh + a - ph
                if 0 <= y < h:
                    for b in range(sw):
                        dst = src[0, c, a * sw + b]
                        s_lo, s_hi = _span(b - pw, sw, w)
                        for s in range(s_lo, s_hi):
                            base = (r * wq + s) * n_batch
                            col = s * sw + b - pw
                            for n in range(n_batch):
                                dst[base + n] = x[n, c, y, col]
    else:
        src = np.empty((n_batch, n_chan, sh * sw, hq * wq + SLACK), dtype=x.dtype)
        for task in range(n_batch * n_chan):
            _split_plane(x[task // n_chan, task % n_chan], ph, pw, sh, sw, src[task // n_chan, task % n_chan])
    return src


@njit(cache=True)
def merge_phases(src, n_chan, ph, pw, sh, sw, h, w, inner, n_batch):
    """The inverse of split_phases, cropping the padding: (N, n_chan, h, w) from the phase layout of
    a (h + 2ph) x (w + 2pw) plane (channels past n_chan ignored)."""
    hq = (h + 2 * ph + sh - 1) // sh
    wq = (w + 2 * pw + sw - 1) // sw
    out = np.empty((n_batch, n_chan, h, w), dtype=src.dtype)
    if inner:
        for task in range(n_chan * hq):
            c = task // hq
            r = task % hq
            for a in range(sh):
                y = r * sh + a - ph
                if 0 <= y < h:
                    for b in range(sw):
                        phase = src[0, c, a * sw + b]
                        s_lo, s_hi = _span(b - pw, sw, w)
                        for s in range(s_lo, s_hi):
                            base = (r * wq + s) * n_batch
                            col = s * sw + b - pw
                            for n in range(n_batch):
                                out[n, c, y, col] = phase[base + n]
    else:
        for task in range(n_batch * n_chan):
            n = task // n_chan
            c = task % n_chan
            for a in range(sh):
                r_lo, r_hi = _span(a - ph, sh, h)
                for b in range(sw):
                    phase = src[n, c, a * sw + b]
                    s_lo, s_hi = _span(b - pw, sw, w)
                    for r in range(r_lo, r_hi):
                        q = phase[r * wq + s_lo:r * wq + s_hi]
                        row = out[n, c, r * sh + a - ph, s_lo * sw + b - pw:]
                        if sw == 1:
                            for t in range(s_hi - s_lo):
                                row[t] = q[t]
                        elif sw == 2:
                            for t in range(s_hi - s_lo):
                                row[2 * t] = q[t]
                        else:
                            for t in range(s_hi - s_lo):
                                row[t * sw] = q[t]
    return out


@njit(cache=True, parallel=True)
def grad_rows(grad_out, row, inner):
    """The output gradient in the correlation's wide layout, zero in the discarded columns and
    in the rounding tail: (N, K, round_up((Ho-1)*row + Wo)) or, batch-inner,
    (Ho, K, round_up(Wo*N)) (one run per output row)."""
    n_batch, n_filt, out_h, out_w = grad_out.shape
    if inner:
        g = np.zeros((out_h, n_filt, round_up(out_w * n_batch)), dtype=grad_out.dtype)
        for task in prange(out_h * n_filt):
            i = task // n_filt
            k = task % n_filt
            dst = g[i, k]
            for j in range(out_w):
                for n in range(n_batch):
                    dst[j * n_batch + n] = grad_out[n, k, i, j]
    else:
        g = np.zeros((n_batch, n_filt, round_up((out_h - 1) * row + out_w)), dtype=grad_out.dtype)
        for task in prange(n_batch * n_filt):
            n = task // n_filt
            k = task % n_filt
            dst = g[n, k]
            for i in range(out_h):
                dst[i * row:i * row + out_w] = grad_out[n, k, i]
    return g


@njit(cache=True)
def _aligned_rows(n_rows, length, like):
    """Uninitialised (n_rows, >= length) rows of like's dtype, each starting on a 64-byte
    boundary: a vector store that straddles two cache lines costs about twice as much."""
    per_line = 64 // like.itemsize
    stride = (length + per_line - 1) // per_line * per_line
    buf = np.empty(n_rows * stride + per_line, dtype=like.dtype)
    skip = ((64 - buf.ctypes.data % 64) % 64) // like.itemsize
    return buf[skip:skip + n_rows * stride].reshape(n_rows, stride)


@njit(cache=True)
def _pieces(n_len, chunk):
    """Split a run of n_len (a multiple of VEC) into equal pieces of at most ~chunk, multiples of VEC."""
    n_piece = (n_len + chunk - 1) // chunk
    return n_piece, (((n_len + n_piece - 1) // n_piece) + VEC - 1) // VEC * VEC


# ---------------------------------------------------------------- the correlation

@njit(cache=True, fastmath=_FMA)
def _taps_pass(a0, a1, a2, a3, planes, w4, tplane, toff, start, length):
    """a_q[p] += sum over taps t of w4[q, t] * planes[tplane[t], toff[t] + start + p], q < KB = 4, p < length.

    The four rows come as separate 1-D views: a 2-D view's inner stride is a runtime value
    to Numba, which would stop vectorisation."""
    n_taps = tplane.shape[0]
    t = 0
    while t + 3 <= n_taps:
        o0 = toff[t] + start
        o1 = toff[t + 1] + start
        o2 = toff[t + 2] + start
        s0 = planes[tplane[t], o0:o0 + length]
        s1 = planes[tplane[t + 1], o1:o1 + length]
        s2 = planes[tplane[t + 2], o2:o2 + length]
        c00, c01, c02 = w4[0, t], w4[0, t + 1], w4[0, t + 2]
        c10, c11, c12 = w4[1, t], w4[1, t + 1], w4[1, t + 2]
        c20, c21, c22 = w4[2, t], w4[2, t + 1], w4[2, t + 2]
        c30, c31, c32 = w4[3, t], w4[3, t + 1], w4[3, t + 2]
        for p in range(length):
            x0 = s0[p]
            x1 = s1[p]
            x2 = s2[p]
            a0[p] = a0[p] + c00 * x0 + c01 * x1 + c02 * x2
            a1[p] = a1[p] + c10 * x0 + c11 * x1 + c12 * x2
            a2[p] = a2[p] + c20 * x0 + c21 * x1 + c22 * x2
            a3[p] = a3[p] + c30 * x0 + c31 * x1 + c32 * x2
        t += 3
    while t < n_taps:  # the last one or two taps
        o0 = toff[t] + start
        s0 = planes[tplane[t], o0:o0 + length]
        c00, c10, c20, c30 = w4[0, t], w4[1, t], w4[2, t], w4[3, t]
        for p in range(length):
            x0 = s0[p]
            a0[p] = a0[p] + c00 * x0
            a1[p] = a1[p] + c10 * x0
            a2[p] = a2[p] + c20 * x0
            a3[p] = a3[p] + c30 * x0
        t += 1


@njit(cache=True, fastmath=_FMA)
def _taps_pass1(a0, planes, w1, tplane, toff, start, length):
    """_taps_pass for a single output row: a0[p] += sum_t w1[t] * planes[tplane[t], toff[t] + start + p],
    four taps per pass (for channel counts that are not a multiple of KB)."""
    n_taps = tplane.shape[0]
    t = 0
    while t + 4 <= n_taps:
        o0 = toff[t] + start
        o1 = toff[t + 1] + start
        o2 = toff[t + 2] + start
        o3 = toff[t + 3] + start
        s0 = planes[tplane[t], o0:o0 + length]
        s1 = planes[tplane[t + 1], o1:o1 + length]
        s2 = planes[tplane[t + 2], o2:o2 + length]
        s3 = planes[tplane[t + 3], o3:o3 + length]
        c0, c1, c2, c3 = w1[t], w1[t + 1], w1[t + 2], w1[t + 3]
        for p in range(length):
            a0[p] = a0[p] + c0 * s0[p] + c1 * s1[p] + c2 * s2[p] + c3 * s3[p]
        t += 4
    while t < n_taps:
        o0 = toff[t] + start
        s0 = planes[tplane[t], o0:o0 + length]
        c0 = w1[t]
        for p in range(length):
            a0[p] = a0[p] + c0 * s0[p]
        t += 1


@njit(cache=True)
def _correlate_task(task, src, wt, bias, tplane, toff, out, row, inner, chunk):
    """One task of `correlate`: KB output channels of one image (or one output row), one piece."""
    n_batch, n_out, out_h, out_w = out.shape
    n_kb = wt.shape[0]
    if inner:
        seg = out_w * n_batch               # one output row of every image
        stride = row * n_batch
    else:
        seg = (out_h - 1) * row + out_w     # the whole wide plane of one image
        stride = 0
    n_piece, piece = _pieces(round_up(seg), chunk)
    s = task // (n_kb * n_piece)
    kb = (task // n_piece) % n_kb
    lo = (task % n_piece) * piece
    if lo >= seg:
        return
    vlen = min(piece, round_up(seg) - lo)   # computed (a multiple of VEC)
    valid = min(vlen, seg - lo)             # kept
    # src holds every image (read image s), or one: the batch-inner layout or this task's own image
    planes = src[0 if src.shape[0] == 1 else s].reshape(src.shape[1] * src.shape[2], src.shape[3])
    acc = _aligned_rows(KB, piece, out)
    for q in range(KB):
        acc[q, :vlen] = bias[min(kb * KB + q, n_out - 1)]
    if kb * KB + KB <= n_out:
        _taps_pass(acc[0], acc[1], acc[2], acc[3], planes, wt[kb], tplane, toff, s * stride + lo, vlen)
    else:   # the last, partial block of filters: one at a time, no work on the zero filters
        for q in range(n_out - kb * KB):
            _taps_pass1(acc[q], planes, wt[kb, q], tplane, toff, s * stride + lo, vlen)
    for q in range(min(KB, n_out - kb * KB)):
        k = kb * KB + q
        a = acc[q]
        if inner:   # a[m]: output row s, column j = (lo + m) // N, image n = (lo + m) % N
            if lo == 0 and valid == seg:    # the usual case: the whole row of every image
                for n in range(n_batch):
                    dst = out[n, k, s]
                    col = a[n:]
                    for j in range(out_w):
                        dst[j] = col[j * n_batch]
            else:
                j = lo // n_batch
                n = lo - j * n_batch
                for m in range(valid):
                    out[n, k, s, j] = a[m]
                    n += 1
                    if n == n_batch:
                        n = 0
                        j += 1
        else:       # a[m] is wide position lo + m = i*row + j; keep j < out_w
            i = lo // row
            while i * row < lo + valid:
                j0 = max(lo - i * row, 0)
                j1 = min(out_w, lo + valid - i * row)
                out[s, k, i, j0:j1] = a[i * row + j0 - lo:i * row + j1 - lo]
                i += 1


@njit(cache=True, parallel=True)
def correlate(src, wt, bias, tplane, toff, out, row, inner, chunk):
    """out[n, k, i, j] = bias[k] + sum_t wt[k//KB, k%KB, t] * src(tap t at output (i, j))

    src (G, C, P, Ls) from split_phases (G = N, or 1 if inner), read as C*P flat planes;
    wt (ceil(K/KB), KB, T), zero past the last filter; tap t reads plane tplane[t] at flat offset
    toff[t] + p, p the wide output position: i*row + j (inner=False) or (i*row + j)*N + n
    (inner=True).  A task owns KB output channels of one image (or of one output row) and one
    piece of it, and writes only those: tasks never share memory."""
    n_batch, n_out, out_h, out_w = out.shape
    seg = out_w * n_batch if inner else (out_h - 1) * row + out_w
    n_piece = _pieces(round_up(seg), chunk)[0]
    n_tasks = (out_h if inner else n_batch) * wt.shape[0] * n_piece
    for task in prange(n_tasks):
        _correlate_task(task, src, wt, bias, tplane, toff, out, row, inner, chunk)
    return out


@njit(cache=True, parallel=True)
def correlate_per_image(x, ph, pw, sh, sw, wt, bias, tplane, toff, out, row, chunk):
    """`correlate` (inner=False) on x (N, C, H, W) itself, one task per image: the task lays its
    image out (as split_phases would, padding included) in a buffer of its own, which stays in
    L2 while every output channel of that image is computed from it.  This saves writing the
    whole laid-out batch to memory and reading it back; it needs N >= the thread count to keep
    every thread busy.  The arithmetic, and so the result, is `correlate`'s."""
    n_batch, n_chan, h, w = x.shape
    hq = (h + 2 * ph + sh - 1) // sh
    out_h, out_w = out.shape[2], out.shape[3]
    n_piece = _pieces(round_up((out_h - 1) * row + out_w), chunk)[0]
    per_image = wt.shape[0] * n_piece
    for s in prange(n_batch):
        own = np.empty((1, n_chan, sh * sw, hq * row + SLACK), dtype=x.dtype)
        for c in range(n_chan):
            _split_plane(x[s, c], ph, pw, sh, sw, own[0, c])
        for t in range(per_image):
            _correlate_task(s * per_image + t, own, wt, bias, tplane, toff, out, row, False, chunk)
    return out


@njit(cache=True)
def _scatter_task(task, g, ws, tplane, toff, dst, n_chan, item_stride, inner, chunk):
    """One task of `scatter`: KB channels of dst, of one image (or, inner, of all)."""
    n_items, n_filt, n_len = g.shape
    n_cb = ws.shape[1]
    kidx = np.arange(n_filt)
    kzero = np.zeros(n_filt, dtype=np.int64)
    piece = _pieces(n_len, chunk)[1]
    s = task // n_cb
    cb = task % n_cb
    c0 = cb * KB
    first, last = (0, n_items) if inner else (s, s + 1)
    for item in range(first, last):
        planes = g[item]
        for lo in range(0, n_len, piece):
            vlen = min(piece, n_len - lo)
            for t in range(tplane.shape[0]):
                o = toff[t] + item * item_stride + lo
                ph = tplane[t]
                if c0 + KB <= n_chan:
                    _taps_pass(dst[s, c0, ph, o:o + vlen], dst[s, c0 + 1, ph, o:o + vlen],
                               dst[s, c0 + 2, ph, o:o + vlen], dst[s, c0 + 3, ph, o:o + vlen],
                               planes, ws[t, cb], kidx, kzero, lo, vlen)
                else:   # the last, partial block of channels: one channel at a time, no wasted work
                    for c in range(c0, n_chan):
                        _taps_pass1(dst[s, c, ph, o:o + vlen], planes, ws[t, cb, c - c0], kidx, kzero, lo, vlen)


@njit(cache=True, parallel=True)
def scatter(g, ws, tplane, toff, dst, n_chan, item_stride, inner, chunk):
    """The transpose of `correlate`, for the input gradient: for every tap t and channel c,

        dst[., c, tplane[t], toff[t] + item*item_stride + p] += sum_k ws[t, c//KB, c%KB, k] * g[item, k, p]

    g from grad_rows (zero in the discarded wide columns and the tail); dst (G, ceil(C/KB)*KB, P, Ls)
    zeros, laid out as split_phases lays out the input (G = N, or 1 if inner); channels from
    n_chan = C on are left alone.  Each task owns KB
    channels of dst (and one image unless inner), so no two tasks write the same memory."""
    n_tasks = (1 if inner else g.shape[0]) * ws.shape[1]
    for task in prange(n_tasks):
        _scatter_task(task, g, ws, tplane, toff, dst, n_chan, item_stride, inner, chunk)
    return dst


# ---------------------------------------------------------------- the weight gradient

@njit(cache=True, fastmath=_SUM)
def _dot_pass(part, g0, g1, planes, tplane, toff, start, length):
    """part[q, t] += dot(g_q, planes[tplane[t], toff[t] + start : ... + length]) for q < KBW = 2, all t."""
    n_taps = tplane.shape[0]
    t = 0
    while t + 3 <= n_taps:
        o0 = toff[t] + start
        o1 = toff[t + 1] + start
        o2 = toff[t + 2] + start
        s0 = planes[tplane[t], o0:o0 + length]
        s1 = planes[tplane[t + 1], o1:o1 + length]
        s2 = planes[tplane[t + 2], o2:o2 + length]
        r00, r01, r02 = part[0, t], part[0, t + 1], part[0, t + 2]  # the sums start from the partial
        r10, r11, r12 = part[1, t], part[1, t + 1], part[1, t + 2]  # (no Python 0: float32 stays float32)
        for p in range(length):
            y0 = g0[p]
            y1 = g1[p]
            x0 = s0[p]
            x1 = s1[p]
            x2 = s2[p]
            r00 += y0 * x0
            r01 += y0 * x1
            r02 += y0 * x2
            r10 += y1 * x0
            r11 += y1 * x1
            r12 += y1 * x2
        part[0, t], part[0, t + 1], part[0, t + 2] = r00, r01, r02
        part[1, t], part[1, t + 1], part[1, t + 2] = r10, r11, r12
        t += 3
    while t < n_taps:
        o0 = toff[t] + start
        s0 = planes[tplane[t], o0:o0 + length]
        r00, r10 = part[0, t], part[1, t]
        for p in range(length):
            x0 = s0[p]
            r00 += g0[p] * x0
            r10 += g1[p] * x0
        part[0, t], part[1, t] = r00, r10
        t += 1


@njit(cache=True)
def _weight_task(task, g, src, tplane, toff, partial, item_stride, inner, chunk):
    """One task of `weight_grad`: KBW filters, one group of items, into partial[group, filter block]."""
    n_groups, n_kb = partial.shape[0], partial.shape[1]
    n_items, n_filt, n_len = g.shape
    per_group = (n_items + n_groups - 1) // n_groups
    piece = _pieces(n_len, chunk)[1]
    grp = task // n_kb
    kb = task % n_kb
    k0 = kb * KBW
    k1 = min(k0 + 1, n_filt - 1)
    for item in range(grp * per_group, min(n_items, (grp + 1) * per_group)):
        planes = src[0 if inner else item].reshape(src.shape[1] * src.shape[2], src.shape[3])
        for lo in range(0, n_len, piece):
            vlen = min(piece, n_len - lo)
            _dot_pass(partial[grp, kb], g[item, k0, lo:lo + vlen], g[item, k1, lo:lo + vlen], planes,
                      tplane, toff, item * item_stride + lo, vlen)


@njit(cache=True, parallel=True)
def weight_grad(g, src, tplane, toff, item_stride, inner, n_groups, chunk):
    """grad_w (K, T): sum over items (images, or output rows if inner) of g[item, k] . shifted src.

    g from grad_rows; src and the (channel-fused) taps as for correlate.  Item i reads src[i or 0]
    from flat offset i*item_stride.  Items are split into n_groups fixed groups (a function of
    the shapes only); each group's partial sums are kept apart and added in group order at the
    end, so the result does not depend on the thread count."""
    n_filt, n_taps = g.shape[1], tplane.shape[0]
    n_kb = (n_filt + KBW - 1) // KBW
    partial = np.zeros((n_groups, n_kb, KBW, n_taps), dtype=g.dtype)
    for task in prange(n_groups * n_kb):
        _weight_task(task, g, src, tplane, toff, partial, item_stride, inner, chunk)
    grad_w = np.zeros((n_filt, n_taps), dtype=g.dtype)
    for k in range(n_filt):
        for grp in range(n_groups):
            for t in range(n_taps):
                grad_w[k, t] += partial[grp, k // KBW, k % KBW, t]
    return grad_w


@njit(cache=True, fastmath=_SUM)
def bias_grad(grad_out):
    """grad_out (N, K, Ho, Wo) -> (K,): one vectorised sum per filter, images in order."""
    n_batch, n_filt = grad_out.shape[0], grad_out.shape[1]
    size = grad_out.shape[2] * grad_out.shape[3]
    flat = grad_out.reshape(n_batch, n_filt, size)
    grad_b = np.zeros(n_filt, dtype=grad_out.dtype)
    for k in range(n_filt):
        total = grad_b[k]
        for n in range(n_batch):
            plane = flat[n, k]
            for p in range(size):
                total += plane[p]
        grad_b[k] = total
    return grad_b
