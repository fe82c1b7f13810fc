"""How the fast convolution lays its data out: the plan, the three layouts, and the copies
into and out of them.

The idea (see `conv.py` for the arithmetic): read a padded input plane Hp x Wp as one
flat array with rows Wp long and make the output "wide", rows Wp long too, of which the
first Wo columns are kept.  Output position p = i*Wp + j then reads the input at
p + (u*Wp + v) for filter tap (u, v): one unit-stride run per tap.  Stride > 1 becomes
stride 1 by splitting the input into its sh*sw stride phases first (phase (a, b) holds
xp[a::sh, b::sw], Hq x Wq), and the zero padding is added during the same copy.

A `Plan` holds everything the compiled functions need to know about one convolution, as
one value (a NamedTuple of ints, which Numba passes like any scalar):

    layout   WIDE, PER_IMAGE or BATCH_INNER (below)
    n        images in the batch
    in_h, in_w       the input plane, unpadded
    ph, pw, sh, sw, dh, dw   padding, stride, dilation
    hq, wq   one stride phase: rows, and its row length (the wide row)
    out_h, out_w     the output plane
    chunk    the longest run one pass handles, in elements (CHUNK_BYTES of the dtype)

The layouts:
  WIDE         src (N, C, sh*sw, Hq*Wq + SLACK): every image laid out first, then correlated;
               one output run per image and filter block: position p = i*Wq + j.
  PER_IMAGE    the same positions, but each task lays out its own image into a buffer that
               stays in L2 (conv.correlate_per_image); needs N >= 2 x threads to keep every
               thread busy.  The arithmetic, and so every bit of the result, is WIDE's.
  BATCH_INNER  src (1, C, sh*sw, Hq*Wq*N + SLACK), the batch innermost: position
               p = (i*Wq + j)*N + n, one output row of all N images is a single run of Wo*N
               values.  For small planes (LeNet's 14x14 -> 10x10 or 5x5 -> 1x1), where a wide
               row would waste most of the work.
"""
from functools import lru_cache
from typing import NamedTuple

import numpy as np
from numba import njit

from .threads import run

KB = 4       # output channels per pass of the correlation (input channels per pass of the scatter)
KBW = 4      # filters per pass of the weight gradient
VEC = 16     # every run is rounded up to a multiple of this many elements (no scalar tail loops)
SLACK = 2 * VEC  # zero elements after each flat plane, so rounded-up runs never read past it
CHUNK_BYTES = 8192  # longest run one pass handles: KB accumulator rows of it stay in L1

WIDE, PER_IMAGE, BATCH_INNER = 0, 1, 2
LAYOUTS = {"wide": WIDE, "per-image": PER_IMAGE, "batch-inner": BATCH_INNER}


class Plan(NamedTuple):
    layout: int
    n: int
    in_h: int
    in_w: int
    ph: int
    pw: int
    sh: int
    sw: int
    dh: int
    dw: int
    hq: int
    wq: int
    out_h: int
    out_w: int
    chunk: int


def wants_batch_inner(n_batch, out_h, out_w, row):
    """Batch-inner when a wide row (row long) would waste over a fifth of the work, or planes are tiny."""
    wide = (out_h - 1) * row + out_w
    return n_batch > 1 and (out_h * out_w < 64 or 4 * wide > 5 * out_h * out_w)


def make_plan(x_shape, g, out_hw, dtype, per_image_from=None, layout=None):
    """The Plan for a convolution of x (N, C, H, W) with geometry g (a ConvGeometry: only its
    kernel, stride, padding and dilation are read) producing out_hw = (Ho, Wo) planes.

    layout None chooses: BATCH_INNER when wants_batch_inner, else PER_IMAGE when the batch has
    at least per_image_from images (None: never), else WIDE."""
    n, _, h, w = x_shape
    out_h, out_w = out_hw
    hq = -(-(h + 2 * g.ph) // g.sh)
    wq = -(-(w + 2 * g.pw) // g.sw)
    if layout is None:
        if wants_batch_inner(n, out_h, out_w, wq):
            layout = BATCH_INNER
        elif per_image_from is not None and n >= per_image_from:
            layout = PER_IMAGE
        else:
            layout = WIDE
    chunk = CHUNK_BYTES // np.dtype(dtype).itemsize
    return Plan(int(layout), int(n), int(h), int(w), int(g.ph), int(g.pw), int(g.sh), int(g.sw), int(g.dh),
                int(g.dw), int(hq), int(wq), int(out_h), int(out_w), int(chunk))


# ---------------------------------------------------------------- the tap tables (host side)

@lru_cache(maxsize=256)  # the same layer is called again and again in training: build its tables once
def taps(kh, kw, sh, sw, dh, dw, row, unit):
    """Tap (u, v) reads phase ((u*dh) % sh, (v*dw) % sw) at row (u*dh)//sh, column (v*dw)//sw
    of that phase: (phase, flat offset) for each tap, in (u, v) order; unit = N in the
    batch-inner layout, else 1.  (Cached: never write to them.)"""
    u, v = np.divmod(np.arange(kh * kw), kw)
    plane = (u * dh % sh) * sw + v * dw % sw
    off = ((u * dh // sh) * row + v * dw // sw) * unit
    return plane.astype(np.int64), off.astype(np.int64)


@lru_cache(maxsize=256)
def channel_taps(n_chan, kh, kw, sh, sw, dh, dw, row, unit):
    """The taps of every input channel in one list, (c, u, v) order: channel c's phases are
    planes c*P .. c*P + P - 1 of the source read as (C*P, Ls)."""
    plane, off = taps(kh, kw, sh, sw, dh, dw, row, unit)
    planes = (np.arange(n_chan)[:, None] * (sh * sw) + plane).ravel()
    return planes, np.tile(off, n_chan)


def plan_taps(plan, kh, kw, n_chan=None):
    """taps (n_chan None) or channel_taps for the plan: offsets scaled by N when batch-inner."""
    unit = plan.n if plan.layout == BATCH_INNER else 1
    geometry = (kh, kw, plan.sh, plan.sw, plan.dh, plan.dw, plan.wq, unit)
    return taps(*geometry) if n_chan is None else channel_taps(n_chan, *geometry)


# ---------------------------------------------------------------- runs

@njit(cache=True)
def round_up(n):
    return (n + VEC - 1) // VEC * VEC


@njit(cache=True)
def aligned_rows(n_rows, length, like):
    """Uninitialised (n_rows, >= length) rows of like's dtype, each starting on a 64-byte
    boundary: a vector store that straddles two cache lines costs about twice as much."""
    per_line = 64 // like.itemsize
    stride = (length + per_line - 1) // per_line * per_line
    buf = np.empty(n_rows * stride + per_line, dtype=like.dtype)
    skip = ((64 - buf.ctypes.data % 64) % 64) // like.itemsize
    return buf[skip:skip + n_rows * stride].reshape(n_rows, stride)


@njit(cache=True)
def pieces(n_len, chunk):
    """Split a run of n_len (a multiple of VEC) into equal pieces of at most ~chunk, multiples of VEC."""
    n_piece = (n_len + chunk - 1) // chunk
    return n_piece, (((n_len + n_piece - 1) // n_piece) + VEC - 1) // VEC * VEC


# ---------------------------------------------------------------- into and out of the phase layout

@njit(cache=True)
def span(first, step, limit):
    """The k >= 0 with 0 <= first + k*step < limit, as a range (first may be negative)."""
    lo = 0 if first >= 0 else (-first + step - 1) // step
    hi = 0 if first >= limit else (limit - first + step - 1) // step
    return lo, max(lo, hi)


@njit(cache=True)
def split_plane(plane, plan, dst):
    """One (H, W) plane of split_phases (not batch-inner): dst (sh*sw, Hq*Wq + SLACK), all of it
    written.  dst may be uninitialised: it is zeroed first, while it sits in L1 (zero-filling a
    whole array beforehand costs one more pass over memory)."""
    h, w = plane.shape
    ph, pw, sh, sw, wq = plan.ph, plan.pw, plan.sh, plan.sw, plan.wq
    for q in range(sh * sw):
        dst[q][:] = 0
    for a in range(sh):
        r_lo, r_hi = span(a - ph, sh, h)
        for b in range(sw):
            phase = dst[a * sw + b]
            s_lo, s_hi = span(b - pw, sw, w)
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


def phases_shape(x_shape, plan):
    """The shape split_phases fills for an input of x_shape (N, C, H, W) (see there)."""
    n_batch, n_chan = x_shape[0], x_shape[1]
    if plan.layout == BATCH_INNER:
        return (1, n_chan, plan.sh * plan.sw, plan.hq * plan.wq * n_batch + SLACK)
    return (n_batch, n_chan, plan.sh * plan.sw, plan.hq * plan.wq + SLACK)


@njit(cache=True)
def split_phases(x, plan, src):
    """Fills src (of phases_shape(x.shape, plan)) with x (N, C, H, W), zero-padded by (ph, pw) on
    the fly, split into stride phases and flattened, with SLACK zeros after each plane, and returns
    it.  With Hp = H + 2ph, Wp = W + 2pw, Hq = ceil(Hp/sh), Wq = ceil(Wp/sw):

    WIDE:         (N, C, sh*sw, Hq*Wq + SLACK), src[n, c, a*sw + b, r*Wq + s] = x_padded[n, c, r*sh + a, s*sw + b]
    BATCH_INNER:  (1, C, sh*sw, Hq*Wq*N + SLACK), the same value at (r*Wq + s)*N + n
    and 0 wherever that falls in the padding or past the edge of a phase (BATCH_INNER: src must
    arrive zeroed; WIDE writes every element)."""
    n_batch, n_chan, h, w = x.shape
    ph, pw, sh, sw, hq, wq = plan.ph, plan.pw, plan.sh, plan.sw, plan.hq, plan.wq
    if plan.layout == BATCH_INNER:
        for task in range(n_chan * hq):
            c = task // hq
            r = task % hq
            for a in range(sh):
                y = r * sh + a - ph
                if 0 <= y < h:
                    for b in range(sw):
                        dst = src[0, c, a * sw + b]
                        s_lo, s_hi = span(b - pw, sw, w)
                        for s in range(s_lo, s_hi):
                            base = (r * wq + s) * n_batch
                            col = s * sw + b - pw
                            for n in range(n_batch):
                                dst[base + n] = x[n, c, y, col]
    else:
        for task in range(n_batch * n_chan):
            split_plane(x[task // n_chan, task % n_chan], plan, src[task // n_chan, task % n_chan])
    return src


@njit(cache=True)
def merge_phases(src, plan, out):
    """The inverse of split_phases, cropping the padding: fills out (N, C, H, W) from the phase
    layout of the padded plane (src's channels past C ignored) and returns it."""
    ph, pw, sh, sw, wq = plan.ph, plan.pw, plan.sh, plan.sw, plan.wq
    h, w, n_batch, n_chan = plan.in_h, plan.in_w, plan.n, out.shape[1]
    if plan.layout == BATCH_INNER:
        for task in range(n_chan * plan.hq):
            c = task // plan.hq
            r = task % plan.hq
            for a in range(sh):
                y = r * sh + a - ph
                if 0 <= y < h:
                    for b in range(sw):
                        phase = src[0, c, a * sw + b]
                        s_lo, s_hi = span(b - pw, sw, w)
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
                r_lo, r_hi = span(a - ph, sh, h)
                for b in range(sw):
                    phase = src[n, c, a * sw + b]
                    s_lo, s_hi = span(b - pw, sw, w)
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


def rows_shape(grad_shape, plan):
    """The shape grad_rows fills for an output gradient of grad_shape (N, K, Ho, Wo) (see there)."""
    n_batch, n_filt, out_h, out_w = grad_shape
    if plan.layout == BATCH_INNER:
        return (out_h, n_filt, round_up(out_w * n_batch))
    return (n_batch, n_filt, round_up((out_h - 1) * plan.wq + out_w))


@njit(cache=True)
def grad_rows_part(part, parts, grad_out, plan, g):
    """Fills g (of rows_shape(grad_out.shape, plan)) with the output gradient in the correlation's
    layout, zero in the discarded wide columns and in the rounding tail:
    (N, K, round_up((Ho-1)*Wq + Wo)) or, batch-inner, (Ho, K, round_up(Wo*N)) (one run per output
    row).  Every element of g is written, so g may arrive holding anything.  Share `part` of
    `parts` of the work (threads.py)."""
    n_batch, n_filt, out_h, out_w = grad_out.shape
    row = plan.wq
    n_len = g.shape[2]
    if plan.layout == BATCH_INNER:
        n_tasks = out_h * n_filt
        for task in range(n_tasks * part // parts, n_tasks * (part + 1) // parts):
            i = task // n_filt
            k = task % n_filt
            dst = g[i, k]
            for j in range(out_w):
                for n in range(n_batch):
                    dst[j * n_batch + n] = grad_out[n, k, i, j]
            for p in range(out_w * n_batch, n_len):
                dst[p] = 0
    else:
        n_tasks = n_batch * n_filt
        for task in range(n_tasks * part // parts, n_tasks * (part + 1) // parts):
            n = task // n_filt
            k = task % n_filt
            dst = g[n, k]
            for i in range(out_h):
                src = grad_out[n, k, i]
                for j in range(out_w):      # a loop, not a slice copy (see fast/__init__.py)
                    dst[i * row + j] = src[j]
                end = min((i + 1) * row, n_len) if i < out_h - 1 else n_len
                for p in range(i * row + out_w, end):   # the discarded wide columns (and the tail)
                    dst[p] = 0


def grad_rows(grad_out, plan, g):
    """grad_rows_part on every thread (threads.run); returns g."""
    run(grad_rows_part, grad_out, plan, g)
    return g
