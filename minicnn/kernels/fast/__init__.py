"""The "fast" row of the op table: faster CPU kernels, computing what `loops.py` computes (to rounding).

Same signatures as every row (see `minicnn/kernels/__init__.py`): convolution and pooling
ops take the unpadded input and the geometry (a ConvGeometry or PoolGeometry).  The
functions here pick a memory layout, lay out the filters and the tap table, and call
the compiled kernels:

    layout.py   the Plan (the convolution's geometry and layout as one value) and the
                copies into and out of the three layouts
    passes.py   the inner loops (a few filter taps over one unit-stride run)
    conv.py     the convolution's tasks: correlate, scatter (input gradient), weight_grad
    pool.py     pooling, with the 2x2 stride-2 window written out
    dense.py    dense layers (its docstring says why not NumPy's BLAS)
    workspace.py  scratch buffers reused from call to call (the laid-out copies), so that a
                plain loop over conv2d_backward does not page-fault (its docstring has figures)
    threads.py  runs a kernel's serial share function on one thread, or under a prange launcher on more

Throughout:
- work is split into tasks that write disjoint memory, one consecutive share of them per thread
  (threads.py: a serial kernel per share, and a `prange` launcher that calls it by address once
  per share; a call on one thread compiles only the serial one), and partial sums are added in a
  fixed order, so no two threads ever add into the same element and the result does not depend
  on the thread count;
- inner loops run with unit stride and no branches, so LLVM vectorises them.
- a pass's kernels are called one by one from here, not from one @njit wrapper per pass: a
  wrapper must be compiled with every kernel it might call, so the first call in a fresh cache
  compiled both forward layouts (measured: the first conv2d in a new process, 31-47 s with the
  wrappers, 21-24 s without, on the loaded 2-core Zen 3); the price is a few microseconds of
  argument typing per extra call.
- copies inside kernels are written as loops, not slice assignments (`a[i:j] = b[k:l]`): Numba
  checks a slice copy's shapes and, to report a mismatch, compiles its string formatting into
  the kernel: 3.1-3.4 s for the shape-error raise and 3-5 s for the str/repr it formats with, per
  compile of _correlate_task (which a prange kernel compiled twice), on the loaded 2-core machine
  (numba.core.event's "numba:compile" events).

A caution for editing: Numba's cache (`cache=True`) checks only the file of the function it
caches, not the files of the functions it calls.  After changing `passes.py` or `layout.py`,
delete `minicnn/kernels/fast/__pycache__` (or touch `conv.py`), or `conv.py`'s cached kernels
keep the old inner loops.
"""
from contextlib import contextmanager

import numba
import numpy as np

from ...geometry import ConvGeometry, cropped, padded
from ..loops import avg_pool_divisors
from . import conv as fc
from . import dense as fd
from . import pool as fp
from .layout import (BATCH_INNER, KB, PER_IMAGE, SLACK, grad_rows, make_plan, merge_phases, phases_shape, plan_taps,
                     rows_shape, split_phases)
from .workspace import scratch

SMALL_FLOPS = 4_000_000      # convolutions with less work than this run on one thread
SMALL_ELEMENTS = 1 << 18     # and so do pooling layers with fewer input elements


@contextmanager
def threads_for(small):
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
    """kernel(*args) under threads_for(small)."""
    with threads_for(small):
        return kernel(*args)


# ---------------------------------------------------------------- convolution

def laid_out(x, plan):
    """x (N, C, H, W) split into the plan's stride phases (layout.split_phases), in scratch memory."""
    src = scratch("phases", phases_shape(x.shape, plan), x.dtype, zero=plan.layout == BATCH_INNER)
    return split_phases(np.ascontiguousarray(x), plan, src)


def rows_of(grad_out, plan):
    """grad_out (N, K, Ho, Wo) in the correlation's layout (layout.grad_rows), in scratch memory."""
    return grad_rows(np.ascontiguousarray(grad_out), plan, scratch("rows", rows_shape(grad_out.shape, plan),
                                                                   grad_out.dtype))


def conv2d_forward(x, w, b, g, out=None, layout=None):
    """x (N, C, H, W) unpadded, w (K, C, kH, kW), b (K,), g a ConvGeometry -> (N, K, g.out_h, g.out_w),
    written into `out` when given (checked by the caller: that shape and dtype, C-contiguous).

    The zero padding is added while the input is laid out.  layout: None chooses (see
    layout.make_plan: PER_IMAGE when there are at least two images per thread), or force
    layout.WIDE, PER_IMAGE or BATCH_INNER (the tests compare them)."""
    n, c = x.shape[0], x.shape[1]
    k, kh, kw = w.shape[0], w.shape[2], w.shape[3]
    small = 2 * n * k * g.out_h * g.out_w * c * kh * kw < SMALL_FLOPS
    nkb = -(-k // KB)
    wt = np.empty((nkb * KB, c * kh * kw), dtype=x.dtype)   # filters padded to a multiple of KB
    wt[:k] = w.reshape(k, -1)
    wt[k:] = 0.0                                             # (only the padding rows need zeros)
    if out is None:
        out = np.empty((n, k, g.out_h, g.out_w), dtype=x.dtype)
    x, wt, b = np.ascontiguousarray(x), wt.reshape(nkb, KB, -1), np.ascontiguousarray(b, dtype=x.dtype)
    with threads_for(small):
        plan = make_plan(x.shape, g, (g.out_h, g.out_w), x.dtype, 2 * numba.get_num_threads(), layout)
        tplane, toff = plan_taps(plan, kh, kw, c)
        # the layout is chosen here, in Python, so that a first call compiles only the kernel it
        # runs: correlate and correlate_per_image take several seconds each to compile
        if plan.layout == PER_IMAGE:
            return fc.correlate_per_image(x, wt, b, tplane, toff, out, plan)
        return fc.correlate(laid_out(x, plan), wt, b, tplane, toff, out, plan)


def gather_geometry(g, x_hw, out_hw):
    """The forward convolution that computes a stride-1 convolution's input gradient (H, W) = x_hw
    from grad_out's (Ho, Wo) = out_hw, or None.

    With stride 1, grad_x[c, a, b] = sum over k, u, v of w[k, c, u, v] * grad_out[k, a + ph - u*dh,
    b + pw - v*dw] (zero outside grad_out): a plain correlation of grad_out, zero-padded by
    (kH-1)*dh - ph rows and (kW-1)*dw - pw columns, with each filter turned by 180 degrees and
    the roles of K and C swapped.  That padding must not be negative (a convolution padded by
    more than its filter's reach, such as a 1x1 filter with padding 1, has none), and the
    correlation must come out at exactly H x W: a transposed convolution's output padding (stride
    1 with dilation allows it) asks for rows past that, which this correlation would read from
    beyond the padded grad_out; the scatter serves those."""
    pad_h, pad_w = (g.kh - 1) * g.dh - g.ph, (g.kw - 1) * g.dw - g.pw
    if g.sh != 1 or g.sw != 1 or pad_h < 0 or pad_w < 0:
        return None
    if (out_hw[0] + 2 * pad_h - (g.kh - 1) * g.dh, out_hw[1] + 2 * pad_w - (g.kw - 1) * g.dw) != tuple(x_hw):
        return None
    return ConvGeometry(g.kh, g.kw, 1, 1, pad_h, pad_w, g.dh, g.dw, x_hw[0], x_hw[1])


def input_grad_form(g, x_hw, out_hw):
    """'gather' or 'scatter': how conv2d_backward_input computes this gradient by default.

    The gather (a forward correlation, see gather_geometry) writes each gradient value once
    from aligned accumulator rows; the scatter adds into shifted rows of the input's layout and
    then merges them (its stores are misaligned), but it only works on the output's Ho x Wo
    positions, where the gather also multiplies the zero padding around grad_out over the whole
    H x W plane.  Measured on the 2-core Zen 4 (AVX2 build, one and two threads), the gather took
    0.70-0.73 of the scatter's time where the two planes are the same size (the benchmark's large
    layer), 0.77-0.82 for LeNet-5's conv1 (32x32 against 28x28: 1.31 times the work) and
    1.32-1.37 for conv2 (14x14 against 10x10: 1.96 times): so the gather is chosen up to 1.5
    times the scatter's work."""
    if gather_geometry(g, x_hw, out_hw) is None:
        return "scatter"
    return "gather" if 2 * x_hw[0] * x_hw[1] <= 3 * out_hw[0] * out_hw[1] else "scatter"


def conv2d_backward_input(grad_out, w, g, x_hw, out=None, form=None):
    """grad_out (N, K, Ho, Wo), w (K, C, kH, kW), g a ConvGeometry, x_hw = (H, W) -> grad_x (N, C, H, W),
    written into `out` when given (checked by the caller).

    Two forms (form None chooses with input_grad_form; the tests force each):
    'scatter', the forward correlation read backwards (conv.scatter): every tap adds w * grad_out,
    shifted, into the stride phase it read from; then the phases are merged and the padding dropped.
    'gather', stride 1 only: the forward kernel on grad_out with the turned filters (gather_geometry)."""
    n, k, out_h, out_w = grad_out.shape
    c, kh, kw = w.shape[1], w.shape[2], w.shape[3]
    if form is None:
        form = input_grad_form(g, x_hw, (out_h, out_w))
    if form == "gather":
        g_in = gather_geometry(g, x_hw, (out_h, out_w))
        if g_in is None:
            raise ValueError(f"conv2d_backward_input: no gather form for stride ({g.sh}, {g.sw}), "
                             f"padding ({g.ph}, {g.pw}) and a {kh}x{kw} filter")
        turned = np.ascontiguousarray(w.transpose(1, 0, 2, 3)[:, :, ::-1, ::-1])   # (C, K, kH, kW)
        return conv2d_forward(grad_out, turned, np.zeros(c, dtype=grad_out.dtype), g_in, out)
    plan = make_plan((n, c) + tuple(x_hw), g, (out_h, out_w), grad_out.dtype)
    inner = plan.layout == BATCH_INNER
    tplane, toff = plan_taps(plan, kh, kw)
    small = 2 * grad_out.size * c * kh * kw < SMALL_FLOPS
    ncb = -(-c // KB)
    ws = np.empty((kh * kw, ncb * KB, k), dtype=grad_out.dtype)   # ws[t, c, k] = w[k, c, u_t, v_t]
    ws[:, :c] = w.reshape(k, c, kh * kw).transpose(2, 1, 0)
    ws[:, c:] = 0.0                                                # the channels padding to KB
    unit = n if inner else 1
    dst = scratch("scatter", (1 if inner else n, ncb * KB, plan.sh * plan.sw, plan.hq * plan.wq * unit + SLACK),
                  grad_out.dtype, zero=True)
    with threads_for(small):
        # the output-gradient channels as the passes' "taps": planes 0..K-1, offset 0 (made here:
        # np.arange inside the kernel cost its own compile on a first call)
        fc.scatter(rows_of(grad_out, plan), ws.reshape(kh * kw, ncb, KB, k), tplane, toff, dst, c, plan,
                   np.arange(k, dtype=np.int64), np.zeros(k, dtype=np.int64))
        if out is None:
            out = np.empty((n, c) + tuple(x_hw), dtype=grad_out.dtype)
        return merge_phases(dst, plan, out)


def conv2d_backward_weight(grad_out, x, g):
    """grad_out (N, K, Ho, Wo), x (N, C, H, W) unpadded, g a ConvGeometry -> grad_weight (K, C, g.kh, g.kw)."""
    n, k, out_h, out_w = grad_out.shape
    c = x.shape[1]
    plan = make_plan(x.shape, g, (out_h, out_w), grad_out.dtype)
    small = 2 * grad_out.size * c * g.kh * g.kw < SMALL_FLOPS
    tplane, toff = plan_taps(plan, g.kh, g.kw, c)
    with threads_for(small):
        rows = rows_of(grad_out, plan)   # items go in at most 8 fixed groups
        # batch-inner: one laid-out source for every item; else each task lays out its own images
        src = laid_out(x, plan) if plan.layout == BATCH_INNER else None
        gw = fc.weight_grad(rows, src, x, tplane, toff, plan, min(rows.shape[0], 8))
    return gw.reshape(k, c, g.kh, g.kw)


def bias_backward(grad_out):
    """grad_out (N, K, Ho, Wo) -> grad_bias (K,)."""
    return fc.bias_grad(np.ascontiguousarray(grad_out))


def conv_transpose2d_forward(x, w, g):
    """x (N, C_in, H, W), w (C_in, C_out, kH, kW), g the transposed convolution's ConvGeometry
    -> (N, C_out, g.out_h, g.out_w), without bias.

    A transposed convolution is exactly the input-gradient of a convolution whose weight is
    w (C_in filters over C_out channels) and whose input is the output here, so it reuses that
    kernel; the padding it crops is that convolution's padding."""
    return conv2d_backward_input(x, w, g, (g.out_h, g.out_w))


# ---------------------------------------------------------------- pooling (pool.py)

def max_pool2d_forward(x, g, out=None):
    """x (N, C, H, W), g a PoolGeometry -> (N, C, g.out_h, g.out_w); padding cells hold -inf.
    Written into `out` when given (checked by the caller), as for every pooling op here."""
    xp = np.ascontiguousarray(padded(x, g.ph, g.pw, -np.inf))
    return _run(xp.size < SMALL_ELEMENTS, fp.max_pool, xp, g, out)


def max_pool2d_backward(grad_out, x, g, out=None):
    """grad_out (N, C, Ho, Wo), x (N, C, H, W) -> grad_x (N, C, H, W); the first maximum wins ties.
    Without padding the kernel writes straight into `out`; with padding it is cropped into it."""
    xp = np.ascontiguousarray(padded(x, g.ph, g.pw, -np.inf))
    direct = out if g.ph == 0 and g.pw == 0 else None
    grad_xp = _run(xp.size < SMALL_ELEMENTS, fp.max_pool_backward, np.ascontiguousarray(grad_out), xp, g, direct)
    return cropped(grad_xp, g.ph, g.pw, x.shape[2:], out)


def avg_pool2d_forward(x, g, count_include_pad, out=None):
    """x (N, C, H, W), g a PoolGeometry -> (N, C, g.out_h, g.out_w); padding cells hold 0."""
    xp = np.ascontiguousarray(padded(x, g.ph, g.pw))
    div = avg_pool_divisors(x.shape[2], x.shape[3], g.kh, g.kw, g.sh, g.sw, g.ph, g.pw, g.out_h, g.out_w,
                            bool(count_include_pad))
    return _run(xp.size < SMALL_ELEMENTS, fp.avg_pool, xp, g, div.astype(xp.dtype), out)


def avg_pool2d_backward(grad_out, g, x_hw, count_include_pad, out=None):
    """grad_out (N, C, Ho, Wo), g a PoolGeometry, x_hw = (H, W) -> grad_x (N, C, H, W)."""
    h, w = x_hw
    div = avg_pool_divisors(h, w, g.kh, g.kw, g.sh, g.sw, g.ph, g.pw, g.out_h, g.out_w, bool(count_include_pad))
    direct = out if g.ph == 0 and g.pw == 0 else None
    grad_xp = _run(grad_out.size * g.kh * g.kw < SMALL_ELEMENTS, fp.avg_pool_backward,
                   np.ascontiguousarray(grad_out), g, div.astype(grad_out.dtype), h + 2 * g.ph, w + 2 * g.pw,
                   direct)
    return cropped(grad_xp, g.ph, g.pw, x_hw, out)


# ---------------------------------------------------------------- dense (dense.py)

def dense_forward(x, w, b):
    """x (N, I), w (O, I), b (O,) -> (N, O)."""
    small = 2 * x.shape[0] * x.shape[1] * w.shape[0] < SMALL_FLOPS
    return _run(small, fd.dense_forward, np.ascontiguousarray(x), np.ascontiguousarray(w), np.ascontiguousarray(b))


def dense_backward(grad_out, x, w, input_grad=True):
    """grad_out (N, O), x (N, I), w (O, I) -> (grad_x, grad_w, grad_b); grad_x None (not computed)
    when input_grad is False."""
    small = (4 if input_grad else 2) * x.shape[0] * x.shape[1] * w.shape[0] < SMALL_FLOPS
    return _run(small, fd.dense_backward, np.ascontiguousarray(grad_out), np.ascontiguousarray(x),
                np.ascontiguousarray(w), input_grad)
