"""The fast direct convolution: every filter tap is one long unit-stride multiply-add.

The idea, on one input plane xp (Hp x Wp) and one filter tap (u, v), stride 1:

    out[i, j] += w[u, v] * xp[i + u, j + v]      for all i < Ho, j < Wo

Read xp as one flat array with rows Wp long, and let the output be "wide": rows Wp
long too, of which only the first Wo columns are kept.  Then output position
p = i*Wp + j reads xp at p + (u*Wp + v), so the tap is

    wide[p] += w[u, v] * flat[p + u*Wp + v]      for p in 0 .. (Ho-1)*Wp + Wo - 1

one loop with unit stride, no branches and no 2-D indexing, which LLVM turns into
AVX/FMA vector code.  (The wide columns j >= Wo read across the row end and are
thrown away.)  The pieces, one file each:

- `layout.py`: the Plan (the convolution's geometry and chosen layout, one value), the
  three layouts (WIDE, PER_IMAGE, BATCH_INNER), and the copies into and out of them:
  stride > 1 becomes stride 1 by splitting the input into its stride phases (phase (a, b)
  holds xp[a::sh, b::sw], and tap (u, v) reads phase ((u*dh) % sh, (v*dw) % sw) at row
  (u*dh)//sh and column (v*dw)//sw; dilation only changes the offsets), with the zero
  padding added during the same copy (split_phases), so no padded copy is made first.
- `passes.py`: the inner loops.  Each pass does three taps for four output channels: every
  input value loaded feeds four multiply-adds and every output value is loaded and stored
  once per three taps (the load/store balance that keeps the FMA units busy).  The taps of
  all input channels form one list of (plane, offset), so nothing depends on the filter
  size.  A last block of fewer than four channels goes one channel at a time.
- here: the tasks and their parallel loops.  Every run is rounded up to a multiple of VEC
  elements (the arrays carry SLACK zeros at the end) so there is no scalar tail loop,
  accumulator rows start on cache lines, and long runs are cut into pieces whose
  accumulators stay in L1.
  The input gradient is the transpose (scatter): every tap adds w * grad_out, shifted, into
  the stride phase of the input it read from, three output-gradient channels and four input
  channels per pass; then the phases are merged and the padding dropped (merge_phases).
  The weight gradient is a dot product of the (zeroed-outside) output gradient with the
  shifted input, for four filters and three taps per pass: twelve sums, each vectorised; a task
  takes several filter blocks of one group of images and (unless batch-inner) lays out each of
  its images itself, into a buffer that stays in L2 while the blocks read it.

Work is split into tasks that write disjoint memory, and the tasks into one consecutive share per
thread (threads.py: each compiled kernel here is serial, `*_part(part, parts, ...)`, and runs
on several Python threads at once); partial sums are always added in the same fixed order, so
results do not depend on the number of threads.  Float32 stays float32 throughout: no Python
float or int enters the arithmetic.
"""
import numpy as np
from numba import njit

from .layout import BATCH_INNER, KB, KBW, SLACK, aligned_rows, pieces, round_up, split_plane
from .passes import SUM, dot_pass, dot_pass4, taps_pass, taps_pass1
from .threads import address_of, call_at, run


@njit(cache=True)
def _correlate_task(task, src, wt, bias, tplane, toff, out, plan):
    """One task of `correlate`: KB output channels of one image (or one output row), one piece."""
    row, chunk = plan.wq, plan.chunk
    inner = plan.layout == BATCH_INNER
    n_batch, n_out, out_h, out_w = out.shape
    n_kb = wt.shape[0]
    if inner:
        seg = out_w * n_batch               # one output row of every image
        stride = row * n_batch
    else:
        seg = (out_h - 1) * row + out_w     # the whole wide plane of one image
        stride = 0
    n_piece, piece = pieces(round_up(seg), chunk)
    s = task // (n_kb * n_piece)
    kb = (task // n_piece) % n_kb
    lo = (task % n_piece) * piece
    if lo >= seg:
        return
    vlen = min(piece, round_up(seg) - lo)   # computed (a multiple of VEC)
    valid = min(vlen, seg - lo)             # kept
    # src holds every image (read image s), or one: the batch-inner layout or this task's own image
    planes = src[0 if src.shape[0] == 1 else s].reshape(src.shape[1] * src.shape[2], src.shape[3])
    acc = aligned_rows(KB, piece, out)
    for q in range(KB):
        acc[q, :vlen] = bias[min(kb * KB + q, n_out - 1)]
    if kb * KB + KB <= n_out:
        taps_pass(acc[0], acc[1], acc[2], acc[3], planes, wt[kb], tplane, toff, s * stride + lo, vlen)
    else:   # the last, partial block of filters: one at a time, no work on the zero filters
        for q in range(n_out - kb * KB):
            taps_pass1(acc[q], planes, wt[kb, q], tplane, toff, s * stride + lo, vlen)
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
                dst = out[s, k, i]
                for j in range(j0, j1):     # a loop, not a slice copy (see fast/__init__.py)
                    dst[j] = a[i * row + j - lo]
                i += 1


@njit(cache=True)
def correlate_part(part, parts, task_at, src, wt, bias, tplane, toff, out, plan):
    """Share `part` of `parts` of correlate's tasks (see threads.py); task_at: _correlate_task's
    address (see threads.py: called by address, its code is not compiled again in here)."""
    n_batch, n_out, out_h, out_w = out.shape
    inner = plan.layout == BATCH_INNER
    seg = out_w * n_batch if inner else (out_h - 1) * plan.wq + out_w
    n_piece = pieces(round_up(seg), plan.chunk)[0]
    n_tasks = (out_h if inner else n_batch) * wt.shape[0] * n_piece
    for task in range(n_tasks * part // parts, n_tasks * (part + 1) // parts):
        call_at(task_at, (np.int64(task), src, wt, bias, tplane, toff, out, plan))


def correlate(src, wt, bias, tplane, toff, out, plan):
    """out[n, k, i, j] = bias[k] + sum_t wt[k//KB, k%KB, t] * src(tap t at output (i, j)); returns out.

    src (G, C, P, Ls) from split_phases(x, plan) (G = N, or 1 if batch-inner), read as C*P flat
    planes; wt (ceil(K/KB), KB, T), zero past the last filter; tap t reads plane tplane[t] at
    flat offset toff[t] + p, p the output position in the plan's layout: i*Wq + j (WIDE) or
    (i*Wq + j)*N + n (BATCH_INNER).  A task owns KB output channels of one image (or of one output row) and one
    piece of it, and writes only those: tasks never share memory."""
    task_at = address_of(_correlate_task, (0, src, wt, bias, tplane, toff, out, plan))
    run(correlate_part, task_at, src, wt, bias, tplane, toff, out, plan)
    return out


@njit(cache=True)
def correlate_per_image_part(part, parts, task_at, x, wt, bias, tplane, toff, out, plan):
    """Share `part` of `parts` of correlate_per_image's images (see threads.py); task_at:
    _correlate_task's address, for an `own` buffer (a 4-D C-contiguous array of x's dtype)."""
    n_batch, n_chan = x.shape[0], x.shape[1]
    row, n_phase = plan.wq, plan.sh * plan.sw
    out_h, out_w = out.shape[2], out.shape[3]
    n_piece = pieces(round_up((out_h - 1) * row + out_w), plan.chunk)[0]
    per_image = wt.shape[0] * n_piece
    own = np.empty((1, n_chan, n_phase, plan.hq * row + SLACK), dtype=x.dtype)
    for s in range(n_batch * part // parts, n_batch * (part + 1) // parts):
        for c in range(n_chan):
            split_plane(x[s, c], plan, own[0, c])
        for t in range(per_image):
            call_at(task_at, (np.int64(s * per_image + t), own, wt, bias, tplane, toff, out, plan))


def correlate_per_image(x, wt, bias, tplane, toff, out, plan):
    """`correlate` on x (N, C, H, W) itself (a PER_IMAGE plan: WIDE positions), one task per
    image: the task lays its image out (as split_phases would, padding included) in a buffer of its
    thread's own, which stays in L2 while every output channel of that image is computed from it.
    This saves writing the whole laid-out batch to memory and reading it back; it needs N >= the
    thread count to keep every thread busy.  The arithmetic, and so the result, is `correlate`'s."""
    own = np.empty((1, 1, 1, 1), dtype=x.dtype)   # of the type of the part's own buffer
    task_at = address_of(_correlate_task, (0, own, wt, bias, tplane, toff, out, plan))
    run(correlate_per_image_part, task_at, x, wt, bias, tplane, toff, out, plan)
    return out


@njit(cache=True)
def _scatter_task(task, g, ws, tplane, toff, dst, n_chan, plan, kidx, kzero):
    """One task of `scatter`: KB channels of dst, of one image (or, batch-inner, of all)."""
    inner = plan.layout == BATCH_INNER
    item_stride = plan.wq * plan.n if inner else 0   # batch-inner: item = output row
    n_items, n_filt, n_len = g.shape
    n_cb = ws.shape[1]
    piece = pieces(n_len, plan.chunk)[1]
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
                    taps_pass(dst[s, c0, ph, o:o + vlen], dst[s, c0 + 1, ph, o:o + vlen],
                              dst[s, c0 + 2, ph, o:o + vlen], dst[s, c0 + 3, ph, o:o + vlen],
                              planes, ws[t, cb], kidx, kzero, lo, vlen)
                else:   # the last, partial block of channels: one channel at a time, no wasted work
                    for c in range(c0, n_chan):
                        taps_pass1(dst[s, c, ph, o:o + vlen], planes, ws[t, cb, c - c0], kidx, kzero, lo, vlen)


@njit(cache=True)
def scatter_part(part, parts, task_at, g, ws, tplane, toff, dst, n_chan, plan, kidx, kzero):
    """Share `part` of `parts` of scatter's tasks (see threads.py); task_at: _scatter_task's address."""
    n_tasks = (1 if plan.layout == BATCH_INNER else g.shape[0]) * ws.shape[1]
    for task in range(n_tasks * part // parts, n_tasks * (part + 1) // parts):
        call_at(task_at, (np.int64(task), g, ws, tplane, toff, dst, n_chan, plan, kidx, kzero))


def scatter(g, ws, tplane, toff, dst, n_chan, plan, kidx, kzero):
    """The transpose of `correlate`, for the input gradient: for every tap t and channel c,

        dst[., c, tplane[t], toff[t] + item*item_stride + p] += sum_k ws[t, c//KB, c%KB, k] * g[item, k, p]

    (item_stride = Wq*N when batch-inner, where an item is an output row, else 0.)
    g from grad_rows (zero in the discarded wide columns and the tail); dst (G, ceil(C/KB)*KB, P, Ls)
    zeros, laid out as split_phases lays out the input (G = N, or 1 if batch-inner); channels from
    n_chan = C on are left alone.  kidx = arange(K) and kzero = K zeros (int64): the output-gradient
    channels as the passes' list of (plane, offset).  Each task owns KB channels of dst (and one
    image unless batch-inner), so no two tasks write the same memory.  Returns dst."""
    task_at = address_of(_scatter_task, (0, g, ws, tplane, toff, dst, n_chan, plan, kidx, kzero))
    run(scatter_part, task_at, g, ws, tplane, toff, dst, n_chan, plan, kidx, kzero)
    return dst


# ---------------------------------------------------------------- the weight gradient

WEIGHT_TASKS = 16   # weight_grad's tasks: about this many, each several filter blocks of one group of items


@njit(cache=True)
def weight_span(n_groups, n_kb):
    """How many filter blocks one task of weight_grad takes: enough that a task reads each of its
    items' laid-out image once for several blocks (from L2), few enough to leave about
    WEIGHT_TASKS tasks to share among threads.  A function of the shapes only."""
    return max(1, n_groups * n_kb // WEIGHT_TASKS)


@njit(cache=True)
def _weight_item(item, grp, kb_lo, kb_hi, g, src, tplane, toff, partial, plan):
    """One item of a weight_grad task: filter blocks kb_lo .. kb_hi-1 (KBW filters each) of one item
    (an image, or an output row if batch-inner), added into partial[grp, block].  src holds every
    image (read image `item`), or one: the batch-inner layout or this item's own laid-out image."""
    n_items, n_filt, n_len = g.shape
    inner = plan.layout == BATCH_INNER
    item_stride = plan.wq * plan.n if inner else 0
    piece = pieces(n_len, plan.chunk)[1]
    planes = src[0 if src.shape[0] == 1 else item].reshape(src.shape[1] * src.shape[2], src.shape[3])
    for kb in range(kb_lo, kb_hi):
        k0 = kb * KBW
        # rows past the last filter repeat it (their sums are dropped); one or two filters left: two rows
        k1, k2, k3 = min(k0 + 1, n_filt - 1), min(k0 + 2, n_filt - 1), min(k0 + 3, n_filt - 1)
        for lo in range(0, n_len, piece):
            vlen = min(piece, n_len - lo)
            start = item * item_stride + lo
            if k0 + 2 < n_filt:
                dot_pass4(partial[grp, kb], g[item, k0, lo:lo + vlen], g[item, k1, lo:lo + vlen],
                          g[item, k2, lo:lo + vlen], g[item, k3, lo:lo + vlen], planes, tplane, toff, start, vlen)
            else:
                dot_pass(partial[grp, kb, :2], g[item, k0, lo:lo + vlen], g[item, k1, lo:lo + vlen], planes,
                         tplane, toff, start, vlen)


@njit(cache=True)
def weight_grad_part(part, parts, item_at, g, src, x, tplane, toff, plan, partial):
    """Share `part` of `parts` of weight_grad's tasks (see threads.py); item_at: _weight_item's address.

    A task is one group of items and a span of filter blocks (weight_span); it adds its items in
    order, so each block's sums add the items, and their pieces, in the same order however the
    tasks are shared.  x (N, C, H, W) with src of shape (0, ...): every image is laid out here,
    item by item, into a buffer of this share's own (split_plane, as split_phases would), which
    stays in L2 while the task's blocks read it; else src is the laid-out input."""
    n_groups, n_kb = partial.shape[0], partial.shape[1]
    n_items = g.shape[0]
    per_group = (n_items + n_groups - 1) // n_groups
    span = weight_span(n_groups, n_kb)
    n_spans = (n_kb + span - 1) // span
    n_tasks = n_groups * n_spans
    own_images = src.shape[0] == 0
    n_chan = x.shape[1]
    own = np.empty((1, n_chan if own_images else 0, plan.sh * plan.sw, plan.hq * plan.wq + SLACK), dtype=g.dtype)
    for task in range(n_tasks * part // parts, n_tasks * (part + 1) // parts):
        grp = task // n_spans
        kb_lo = (task % n_spans) * span
        kb_hi = min(n_kb, kb_lo + span)
        for item in range(grp * per_group, min(n_items, (grp + 1) * per_group)):
            if own_images:
                for c in range(n_chan):
                    split_plane(x[item, c], plan, own[0, c])
            call_at(item_at, (np.int64(item), np.int64(grp), np.int64(kb_lo), np.int64(kb_hi), g,
                              own if own_images else src, tplane, toff, partial, plan))


def weight_grad(g, src, x, tplane, toff, plan, n_groups):
    """grad_w (K, T): sum over items (images, or output rows if batch-inner) of g[item, k] . shifted src.

    g from grad_rows; src and the (channel-fused) taps as for correlate.  Item i reads src[i or 0]
    from flat offset i*item_stride.  src None (not batch-inner): each image of x (N, C, H, W) is
    laid out by the task that reads it, into a buffer that stays in L2 (the same values, so the
    same result, as src = split_phases(x)); this saves writing the whole laid-out batch to memory
    and reading it back once per task.  Items are split into n_groups fixed groups (a function of
    the shapes only); each group's partial sums are kept apart and added in group order at the
    end, so the result does not depend on the thread count."""
    n_filt, n_taps = g.shape[1], tplane.shape[0]
    n_kb = -(-n_filt // KBW)
    partial = np.zeros((n_groups, n_kb, KBW, n_taps), dtype=g.dtype)
    if src is None:
        src = np.empty((0, 1, 1, 1), dtype=g.dtype)
        x = np.ascontiguousarray(x, dtype=g.dtype)
    else:
        x = np.empty((0, 0, 1, 1), dtype=g.dtype)
    own = np.empty((1, 1, 1, 1), dtype=g.dtype)   # of the type of a part's own buffer
    item_at = address_of(_weight_item, (0, 0, 0, 0, g, own, tplane, toff, partial, plan))
    run(weight_grad_part, item_at, g, src, x, tplane, toff, plan, partial)
    # NumPy adds along the first axis one group after the other: the fixed order promised above
    return partial.sum(axis=0).reshape(n_kb * KBW, n_taps)[:n_filt]


@njit(cache=True, fastmath=SUM)
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
