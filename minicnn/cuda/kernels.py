"""The CUDA kernels, and the launch configurations that go with them.

Each kernel is the CPU loop nest of `minicnn/kernels/loops.py` with its outer loops
replaced by threads: a thread computes ONE element of its output and loops over
the rest.  Inputs arrive unpadded; a thread that would read a padding cell tests
the index instead (0 for convolution and average pooling, -inf for max pooling),
so no padded copy is ever made on the GPU.

Why a factory (`kernels_for(dtype)`)?  Numba compiles a kernel per argument type
anyway, but two things must be compile-time constants: the element type of a
shared-memory array, and the type of an accumulator's starting value (a Python
`0.0` is a float64, and `float32 + float64` promotes the whole sum to float64,
which is 2x to 64x slower on a GPU).  So each dtype gets its own copy of the
kernels, built on first use, with `real` (the Numba type), ZERO and NEG_INF
frozen into them.

Determinism and races: no kernel uses atomics, and no two threads ever write the
same element.  The backward kernels are written as *gathers*: the thread that
owns grad_x[n, c, h, w] finds every output that read x[n, c, h, w] and adds
their contributions itself, in a fixed order; the thread that owns
grad_weight[k, c, u, v] sums over the batch and all output positions.  The
obvious *scatter* (a thread per output adding into every input it read) needs
atomicAdd, whose order - and so whose float rounding - changes from run to run.

Launch configurations (chosen by `flat_config` and `conv_tile` below, used in ops.py):
  * one thread per element, flat: blocks of up to THREADS_PER_BLOCK = 128 threads
    (4 warps; fewer, rounded up to a whole warp, when the output is smaller), a 1-D
    grid of ceil(size / block) blocks.  The flat index has the last axis (columns)
    varying fastest, so the 32 threads of a warp read and write neighbouring
    addresses (coalesced memory access).
  * convolution forward: 2-D blocks of TILE x TILE threads (TILE <= 16, shrunk to the
    output's size rounded up to a power of two), one thread per output pixel of a
    tile; grid (ceil(W_out/TILE), ceil(H_out/TILE), N*K) - the z axis walks the
    (image, filter) planes, capped at the hardware limit 65535 and looped beyond it.
"""
from __future__ import annotations

import functools
import math
from types import SimpleNamespace

import numba
import numpy as np

from ._target import cuda

THREADS_PER_BLOCK = 128   # flat kernels: 4 warps per block
TILE = 16                 # conv forward: 16 x 16 = 256 threads per block at most
MAX_GRID_Z = 65535        # CUDA's limit on gridDim.z
SHARED_BYTES = 48 * 1024  # shared memory a block may use without opting in (all GPUs since Kepler)
WARP = 32


# --------------------------------------------------------------------------- device helpers

@cuda.jit(device=True)
def unravel4(i, n1, n2, n3):
    """The flat index i of a C-ordered (n0, n1, n2, n3) array as (i0, i1, i2, i3): the last axis
    varies fastest, so neighbouring threads (i, i + 1) touch neighbouring memory (coalesced)."""
    i3 = i % n3
    t = i // n3
    i2 = t % n2
    t //= n2
    return t // n1, t % n1, i2, i3


@cuda.jit(device=True)
def window_range(pos, pad, k, s, n_out):
    """Output windows o (of length k, stride s, after `pad` padding cells) that contain
    input position `pos`: those with o*s - pad <= pos <= o*s - pad + k - 1.
    Returns (first, last + 1), clipped to 0 .. n_out; empty when first >= last + 1."""
    last = (pos + pad) // s              # pos + pad >= 0, so // is a plain floor
    above = pos + pad - k + 1            # o*s must be >= this
    first = 0
    if above > 0:
        first = (above + s - 1) // s     # ceil(above / s)
    if last > n_out - 1:
        last = n_out - 1
    return first, last + 1


@cuda.jit(device=True)
def inside(start, k, n):
    """How many of the k positions start, start + 1, ..., start + k - 1 lie in 0 .. n-1."""
    first = start if start > 0 else 0
    end = start + k if start + k < n else n
    return end - first


# --------------------------------------------------------------------------- the kernels

def kernels_for(dtype) -> SimpleNamespace:
    """All kernels specialised for float32 or float64 (each compiled on its first launch)."""
    return _build(np.dtype(dtype).name)


@functools.lru_cache(maxsize=None)
def _build(dtype_name: str) -> SimpleNamespace:
    dtype = np.dtype(dtype_name)
    real = numba.from_dtype(dtype)     # numba.float32 / numba.float64: a type, and a cast
    ZERO = dtype.type(0)
    NEG_INF = dtype.type(-np.inf)

    # ------------------------------------------------------------ conv2d forward, naive

    @cuda.jit
    def conv2d_naive(x, w, b, out, sh, sw, ph, pw, dh, dw):
        """out[n, k, oh, ow] = b[k] + sum_{c,u,v} x[n, c, oh*sh - ph + u*dh, ow*sw - pw + v*dw] * w[k, c, u, v]

        One thread per output pixel (oh, ow); blockIdx.z picks the (image, filter) plane.
        Every thread reads its whole window from global memory, so each input value is
        fetched up to kH*kW times by different threads: the tiled kernel fixes that."""
        ow, oh = cuda.grid(2)                  # x -> column, y -> row
        n_batch, n_chan, in_h, in_w = x.shape
        n_filt, k_h, k_w = w.shape[0], w.shape[2], w.shape[3]
        out_h, out_w = out.shape[2], out.shape[3]
        if oh >= out_h or ow >= out_w:         # the grid is rounded up to whole blocks
            return
        for nk in range(cuda.blockIdx.z, n_batch * n_filt, cuda.gridDim.z):
            n = nk // n_filt
            k = nk - n * n_filt
            acc = b[k]
            for c in range(n_chan):
                for u in range(k_h):
                    r = oh * sh - ph + u * dh
                    if r < 0 or r >= in_h:     # a padding row: contributes 0
                        continue
                    for v in range(k_w):
                        q = ow * sw - pw + v * dw
                        if 0 <= q < in_w:
                            acc += x[n, c, r, q] * w[k, c, u, v]
            out[n, k, oh, ow] = acc

    # ------------------------------------------------------------ conv2d forward, tiled

    @cuda.jit
    def conv2d_tiled(x, w, b, out, sh, sw, ph, pw, dh, dw, tile_h, tile_w):
        """Same result as conv2d_naive; the block first copies the input its outputs need
        into shared memory, then every thread reads its window from there.

        The block computes a blockDim.y x blockDim.x tile of one output plane.  Output
        (oh, ow) reads input rows oh*sh - ph + u*dh, so the block's outputs together read
        the input rectangle of
            tile_h = (blockDim.y - 1)*sh + (kH - 1)*dh + 1  rows and
            tile_w = (blockDim.x - 1)*sw + (kW - 1)*dw + 1  columns
        (the tile plus its "halo"), starting at image cell (row0, col0) below.  Cells of
        that rectangle outside the image are padding and are stored as 0.  The rectangle
        lives in `tile`, row-major: image cell (row0 + i, col0 + j) is tile[i*tile_w + j].
        One input channel is staged at a time, so the shared memory needed is
        tile_h * tile_w values (sized at launch: cuda.shared.array(0) is "dynamic").
        """
        tile = cuda.shared.array(0, real)
        tx, ty = cuda.threadIdx.x, cuda.threadIdx.y
        bw, bh = cuda.blockDim.x, cuda.blockDim.y
        ow = cuda.blockIdx.x * bw + tx
        oh = cuda.blockIdx.y * bh + ty
        n_batch, n_chan, in_h, in_w = x.shape
        n_filt, k_h, k_w = w.shape[0], w.shape[2], w.shape[3]
        out_h, out_w = out.shape[2], out.shape[3]
        # Threads past the output's edge (last tiles of a size the block does not divide)
        # compute nothing, but must NOT return: they help load the tile and must reach
        # every syncthreads, or the threads waiting there would wait for ever.
        active = oh < out_h and ow < out_w
        row0 = cuda.blockIdx.y * bh * sh - ph     # image row of tile row 0 (negative: padding)
        col0 = cuda.blockIdx.x * bw * sw - pw     # image column of tile column 0
        me = ty * bw + tx                         # this thread's rank in the block
        n_threads = bw * bh
        n_cells = tile_h * tile_w
        for nk in range(cuda.blockIdx.z, n_batch * n_filt, cuda.gridDim.z):
            n = nk // n_filt
            k = nk - n * n_filt
            acc = b[k]
            for c in range(n_chan):
                # Cooperative load: the halo makes the tile larger than the block, so
                # thread `me` copies cells me, me + n_threads, me + 2*n_threads, ...
                # Consecutive threads take consecutive cells of a row: coalesced reads.
                for cell in range(me, n_cells, n_threads):
                    r = row0 + cell // tile_w
                    q = col0 + cell % tile_w
                    if 0 <= r < in_h and 0 <= q < in_w:
                        tile[cell] = x[n, c, r, q]
                    else:
                        tile[cell] = ZERO
                # (1) Wait until every thread has stored its cells: the window below
                # reads cells that OTHER threads loaded.
                cuda.syncthreads()
                if active:
                    for u in range(k_h):
                        # this output's window starts at tile row ty*sh, column tx*sw
                        base = (ty * sh + u * dh) * tile_w + tx * sw
                        for v in range(k_w):
                            acc += tile[base + v * dw] * w[k, c, u, v]
                # (2) Wait until every thread has finished reading this channel's tile
                # before the next iteration's load overwrites it.
                cuda.syncthreads()
            if active:
                out[n, k, oh, ow] = acc

    # ------------------------------------------------------------ conv2d backward

    @cuda.jit
    def conv2d_grad_input(g, w, gx, sh, sw, ph, pw, dh, dw):
        """gx[n, c, row, col] = sum of g[n, k, oh, ow] * w[k, c, u, v] over every (k, oh, ow, u, v)
        with oh*sh - ph + u*dh == row and ow*sw - pw + v*dw == col.

        One thread per element of grad_x (a gather): for each tap u the only output row
        that can have used this input row is oh = (row + ph - u*dh) / sh, if that is a
        whole number inside the output.  No other thread writes gx[n, c, row, col], so no
        atomics, and the sum runs in the same order (k, u, v) every time."""
        i = cuda.grid(1)
        n_batch, n_chan, in_h, in_w = gx.shape
        if i >= n_batch * n_chan * in_h * in_w:
            return
        n, c, row, col = unravel4(i, n_chan, in_h, in_w)
        n_filt, k_h, k_w = w.shape[0], w.shape[2], w.shape[3]
        out_h, out_w = g.shape[2], g.shape[3]
        acc = ZERO
        for k in range(n_filt):
            for u in range(k_h):
                top = row + ph - u * dh        # = oh * sh for the output row that used tap u here
                if top < 0 or top % sh != 0:
                    continue
                oh = top // sh
                if oh >= out_h:
                    continue
                for v in range(k_w):
                    left = col + pw - v * dw
                    if left < 0 or left % sw != 0:
                        continue
                    ow = left // sw
                    if ow < out_w:
                        acc += g[n, k, oh, ow] * w[k, c, u, v]
        gx[n, c, row, col] = acc

    @cuda.jit
    def conv2d_grad_weight(g, x, gw, sh, sw, ph, pw, dh, dw):
        """gw[k, c, u, v] = sum_{n, oh, ow} g[n, k, oh, ow] * x[n, c, oh*sh - ph + u*dh, ow*sw - pw + v*dw]

        One thread per weight: the weight is shared by every position of every image, so
        its thread loops over all of them (padding cells contribute 0).  Deterministic:
        one writer per element, a fixed summation order."""
        i = cuda.grid(1)
        n_filt, n_chan, k_h, k_w = gw.shape
        if i >= n_filt * n_chan * k_h * k_w:
            return
        k, c, u, v = unravel4(i, n_chan, k_h, k_w)
        n_batch, in_h, in_w = x.shape[0], x.shape[2], x.shape[3]
        out_h, out_w = g.shape[2], g.shape[3]
        acc = ZERO
        for n in range(n_batch):
            for oh in range(out_h):
                r = oh * sh - ph + u * dh
                if r < 0 or r >= in_h:
                    continue
                for ow in range(out_w):
                    q = ow * sw - pw + v * dw
                    if 0 <= q < in_w:
                        acc += g[n, k, oh, ow] * x[n, c, r, q]
        gw[k, c, u, v] = acc

    @cuda.jit
    def conv2d_grad_bias(g, gb):
        """gb[k] = sum_{n, oh, ow} g[n, k, oh, ow]: one thread per filter."""
        k = cuda.grid(1)
        n_batch, n_filt, out_h, out_w = g.shape
        if k >= n_filt:
            return
        acc = ZERO
        for n in range(n_batch):
            for oh in range(out_h):
                for ow in range(out_w):
                    acc += g[n, k, oh, ow]
        gb[k] = acc

    # ------------------------------------------------------------ pooling

    @cuda.jit
    def max_pool_forward(x, out, arg, k_h, k_w, sh, sw, ph, pw, want_arg):
        """out[n, c, oh, ow] = max of the window (padding cells are -inf); one thread per output.

        Scans the window row-major and keeps a value only if it is strictly larger, so
        on a tie the FIRST maximum wins (as in PyTorch and minicnn's CPU loop).  With
        want_arg, also stores where that maximum is, as row*W + col in the image, or -1
        when a padding cell won (the gradient then has nowhere to go)."""
        i = cuda.grid(1)
        n_batch, n_chan, out_h, out_w = out.shape
        if i >= n_batch * n_chan * out_h * out_w:
            return
        n, c, oh, ow = unravel4(i, n_chan, out_h, out_w)
        in_h, in_w = x.shape[2], x.shape[3]
        best = NEG_INF
        where = -1
        first = True
        for u in range(k_h):
            r = oh * sh - ph + u
            for v in range(k_w):
                q = ow * sw - pw + v
                inside = 0 <= r < in_h and 0 <= q < in_w
                value = x[n, c, r, q] if inside else NEG_INF
                if first or value > best:
                    best = value
                    where = r * in_w + q if inside else -1
                    first = False
        out[n, c, oh, ow] = best
        if want_arg:
            arg[n, c, oh, ow] = where

    @cuda.jit
    def max_pool_grad_input(g, arg, gx, k_h, k_w, sh, sw, ph, pw):
        """gx[n, c, row, col] = sum of g over the windows whose (first) maximum is this cell.

        One thread per input cell (a gather), visiting only the windows that contain it,
        in row-major order.  The scatter "each window adds g to its argmax" would race
        wherever windows overlap (stride < kernel)."""
        i = cuda.grid(1)
        n_batch, n_chan, in_h, in_w = gx.shape
        if i >= n_batch * n_chan * in_h * in_w:
            return
        n, c, row, col = unravel4(i, n_chan, in_h, in_w)
        out_h, out_w = g.shape[2], g.shape[3]
        me = row * in_w + col
        oh_first, oh_end = window_range(row, ph, k_h, sh, out_h)
        ow_first, ow_end = window_range(col, pw, k_w, sw, out_w)
        acc = ZERO
        for oh in range(oh_first, oh_end):
            for ow in range(ow_first, ow_end):
                if arg[n, c, oh, ow] == me:
                    acc += g[n, c, oh, ow]
        gx[n, c, row, col] = acc

    @cuda.jit
    def avg_pool_forward(x, out, k_h, k_w, sh, sw, ph, pw, count_include_pad):
        """out[n, c, oh, ow] = (sum of the window's image cells) / divisor; one thread per output.
        divisor = kH*kW (count_include_pad) or the number of window cells inside the image."""
        i = cuda.grid(1)
        n_batch, n_chan, out_h, out_w = out.shape
        if i >= n_batch * n_chan * out_h * out_w:
            return
        n, c, oh, ow = unravel4(i, n_chan, out_h, out_w)
        in_h, in_w = x.shape[2], x.shape[3]
        total = ZERO
        count = 0
        for u in range(k_h):
            r = oh * sh - ph + u
            if r < 0 or r >= in_h:
                continue
            for v in range(k_w):
                q = ow * sw - pw + v
                if 0 <= q < in_w:
                    total += x[n, c, r, q]
                    count += 1
        if count_include_pad:
            count = k_h * k_w
        out[n, c, oh, ow] = total / real(count)

    @cuda.jit
    def avg_pool_grad_input(g, gx, k_h, k_w, sh, sw, ph, pw, count_include_pad):
        """gx[n, c, row, col] = sum of g[n, c, oh, ow] / divisor(oh, ow) over the windows
        containing the cell: one thread per input cell (a gather, no atomics)."""
        i = cuda.grid(1)
        n_batch, n_chan, in_h, in_w = gx.shape
        if i >= n_batch * n_chan * in_h * in_w:
            return
        n, c, row, col = unravel4(i, n_chan, in_h, in_w)
        out_h, out_w = g.shape[2], g.shape[3]
        oh_first, oh_end = window_range(row, ph, k_h, sh, out_h)
        ow_first, ow_end = window_range(col, pw, k_w, sw, out_w)
        acc = ZERO
        for oh in range(oh_first, oh_end):
            top = oh * sh - ph                            # the window's first row (may be padding)
            rows = inside(top, k_h, in_h)                 # how many of its rows are in the image
            for ow in range(ow_first, ow_end):
                count = k_h * k_w
                if not count_include_pad:
                    count = rows * inside(ow * sw - pw, k_w, in_w)
                acc += g[n, c, oh, ow] / real(count)
        gx[n, c, row, col] = acc

    # ------------------------------------------------------------ NaN / inf check

    @cuda.jit
    def flag_nonfinite(flat, flag):
        """flag[0] = 1 if any element of the 1-D array is NaN or +-inf.  Several threads may
        store the same 1 at once; that is harmless (every writer writes the same value)."""
        i = cuda.grid(1)
        if i < flat.shape[0]:
            value = flat[i]
            if math.isnan(value) or math.isinf(value):
                flag[0] = 1

    return SimpleNamespace(
        conv2d_naive=conv2d_naive, conv2d_tiled=conv2d_tiled, conv2d_grad_input=conv2d_grad_input,
        conv2d_grad_weight=conv2d_grad_weight, conv2d_grad_bias=conv2d_grad_bias,
        max_pool_forward=max_pool_forward, max_pool_grad_input=max_pool_grad_input,
        avg_pool_forward=avg_pool_forward, avg_pool_grad_input=avg_pool_grad_input,
        flag_nonfinite=flag_nonfinite)


# --------------------------------------------------------------------------- launch configurations

def flat_config(size: int) -> tuple[int, int]:
    """(blocks, threads) for one thread per element of `size` elements: THREADS_PER_BLOCK
    threads per block, or fewer (a whole number of warps) for small arrays."""
    threads = min(THREADS_PER_BLOCK, WARP * max(1, math.ceil(size / WARP)))
    return max(1, math.ceil(size / threads)), threads


def _tile_side(n: int) -> int:
    """Block side for an output side of n pixels: the power of two >= n, at most TILE."""
    side = 1
    while side < min(n, TILE):
        side *= 2
    return side


def tile_halo(block_hw, k_hw, s_hw, d_hw) -> tuple[int, int]:
    """(tile_h, tile_w): the input rectangle a block of block_hw outputs reads."""
    return tuple((b - 1) * s + (k - 1) * d + 1 for b, k, s, d in zip(block_hw, k_hw, s_hw, d_hw))


def conv_tile(out_hw, k_hw, s_hw, d_hw, itemsize, tile=None):
    """Block shape (rows, cols) for the conv forward kernels, and the tiled kernel's
    (tile_h, tile_w) input rectangle.

    Default: each side a power of two covering the output, at most TILE (16x16 = 256
    threads).  If the rectangle plus halo would not fit in SHARED_BYTES of shared
    memory (large, dilated kernels), the longer side is halved until it does; returns
    None for the tile if even a 1x1 block's halo is too big (the caller then uses the
    naive kernel).  `tile` forces a block shape (tests use shapes that do not divide
    the output)."""
    block = tuple(tile) if tile is not None else (_tile_side(out_hw[0]), _tile_side(out_hw[1]))
    halo = tile_halo(block, k_hw, s_hw, d_hw)
    while halo[0] * halo[1] * itemsize > SHARED_BYTES:
        if block == (1, 1):
            return block, None
        block = (max(1, block[0] // 2), block[1]) if block[0] >= block[1] else (block[0], max(1, block[1] // 2))
        halo = tile_halo(block, k_hw, s_hw, d_hw)
    return block, halo
