"""How assignment 4's kernels are run by the grader: launched by the grader itself.

A host function that computes with NumPy and launches a kernel that does nothing would pass
any check that only looks at the host function's result.  So the kernels are tested as
kernels: each adapter below takes what the student wrote and

- `launch_flat(...)`  launches a one-thread-per-output kernel (`conv2d_kernel`,
  `max_pool2d_kernel`) with the grader's own 1-D configuration: ceil(outputs / threads)
  blocks of `threads` threads, where the case picks `threads` (32 on most cases, 8 or 64 on
  others, so a kernel that assumes one block size fails);
- `launch_tiled(...)` launches the shared-memory kernel (`conv2d_tiled_kernel`) with
  TILE x TILE threads per block and the case's number of blocks (one per tile of work, or
  fewer: the kernel walks the work with a block-stride loop);

on device arrays the grader made, with `out` filled with NaN first: an output no thread
writes stays NaN and fails the comparison.  Only a @cuda.jit kernel is launched.

The host functions (`conv2d_gpu`, `max_pool2d_gpu`) are checked with a *stand-in kernel*:
`with_stand_in(...)` puts the grader's own kernel under the kernel's name in the host
function's module for the call (and puts the student's back after).  The stand-in writes the
right value plus MARK into every output it has a thread for.  So the host function passes only
if it pads, allocates, launches at least one thread per output with the documented
arguments, and returns what the kernel wrote; a host function that computes the answer with
NumPy returns values without the MARK and fails.  (This runs in the student's process, as
every call does; it tests the host function as written, not a student who sets out to
detect the stand-in.  Which points such a student could still reach is said in
docs/instructor.md.)
"""
from __future__ import annotations

import math

import numpy as np

from . import inspection

TILE = 8          # the tiled kernel's block is TILE x TILE threads (the notebook's TILE)
KMAX = 5          # the largest kernel side the tiled kernel's shared array holds (the notebook's KMAX)
MARK = 0.25       # what the stand-in kernels add to every output they write

_STAND_INS: dict = {}


def _require_kernel(kernel, name: str) -> None:
    if not inspection.is_cuda_kernel(kernel):
        raise TypeError(f"`{name}` is a {type(kernel).__name__}, not a @cuda.jit kernel: the grader launches "
                        f"it as {name}[blocks, threads](...), which needs @cuda.jit on the line above `def`")


def flat_blocks(outputs: int, threads: int) -> int:
    """ceil(outputs / threads): the grader's number of blocks for one thread per output."""
    return max(1, math.ceil(outputs / threads))


def launch_flat(name: str):
    """Adapter for a one-thread-per-output kernel called as kernel(*arrays, out, *settings): the
    case's args are (*arrays, *settings, out_shape, threads), arrays being the NumPy ones.

    conv2d_kernel(xp, w, b, out, stride):      args (xp, w, b, stride, out_shape, threads)
    max_pool2d_kernel(x, out, k, stride):      args (x, k, stride, out_shape, threads)"""
    def adapter(kernel):
        def run(*args):
            from numba import cuda

            _require_kernel(kernel, name)
            *inputs, out_shape, threads = args
            arrays = [cuda.to_device(np.ascontiguousarray(a)) for a in inputs if isinstance(a, np.ndarray)]
            settings = [a for a in inputs if not isinstance(a, np.ndarray)]
            out = cuda.to_device(np.full(tuple(out_shape), np.nan))
            blocks = flat_blocks(math.prod(out_shape), threads)
            kernel[blocks, threads](*arrays, out, *settings)
            return out.copy_to_host()
        run.__wrapped__ = kernel
        return run
    return adapter


def launch_tiled(kernel):
    """Adapter for conv2d_tiled_kernel(xp, w, b, out): args (xp, w, b, out_shape, blocks);
    launched as kernel[blocks, (TILE, TILE)]."""
    def run(xp, w, b, out_shape, blocks):
        from numba import cuda

        _require_kernel(kernel, "conv2d_tiled_kernel")
        out = cuda.to_device(np.full(tuple(out_shape), np.nan))
        kernel[blocks, (TILE, TILE)](cuda.to_device(np.ascontiguousarray(xp)), cuda.to_device(w),
                                     cuda.to_device(b), out)
        return out.copy_to_host()
    run.__wrapped__ = kernel
    return run


# ----------------------------------------------------------------------------- stand-in kernels

cuda = None  # numba.cuda, imported on first use: the simulator must be chosen (NUMBA_ENABLE_CUDASIM) before


def _conv2d_stand_in(xp, w, b, out, stride):
    t = cuda.grid(1)
    n_img, n_filt, out_h, out_w = out.shape
    if t >= n_img * n_filt * out_h * out_w:
        return
    # t -> (n, k, i, j), j fastest (the notebook's numbering)
    j = t % out_w
    i = (t // out_w) % out_h
    k = (t // (out_w * out_h)) % n_filt
    n = t // (out_w * out_h * n_filt)
    acc = b[k] + MARK
    for c in range(w.shape[1]):
        for u in range(w.shape[2]):
            for v in range(w.shape[3]):
                acc += xp[n, c, i * stride + u, j * stride + v] * w[k, c, u, v]
    out[n, k, i, j] = acc


def _max_pool2d_stand_in(x, out, k, stride):
    t = cuda.grid(1)
    n_img, n_chan, out_h, out_w = out.shape
    if t >= n_img * n_chan * out_h * out_w:
        return
    j = t % out_w
    i = (t // out_w) % out_h
    c = (t // (out_w * out_h)) % n_chan
    n = t // (out_w * out_h * n_chan)
    top = x[n, c, i * stride, j * stride]
    for u in range(k):
        for v in range(k):
            top = max(top, x[n, c, i * stride + u, j * stride + v])
    out[n, c, i, j] = top + MARK


def _make_stand_ins() -> dict:
    """The grader's kernels, with the notebook's signatures, each writing its answer + MARK;
    compiled on first use.  (They read `cuda` as a module global, as a notebook's kernel does:
    the simulator swaps that global for its own stand-in module while a kernel runs.)"""
    global cuda
    if not _STAND_INS:
        from numba import cuda as numba_cuda

        cuda = numba_cuda
        _STAND_INS.update(conv2d_kernel=cuda.jit(_conv2d_stand_in), max_pool2d_kernel=cuda.jit(_max_pool2d_stand_in))
    return _STAND_INS


def with_stand_in(kernel_name: str, log_launches):
    """Adapter for a host function: the call runs with the grader's stand-in under the name
    `kernel_name` in the host function's globals (the student's kernel is put back after),
    and returns (value, launches) as a4_gpu.with_launch_log does."""
    def adapter(host_fn):
        logged = log_launches(host_fn)

        def run(*args):
            names = getattr(host_fn, "__globals__", None)
            if not isinstance(names, dict):
                raise TypeError(f"the host function is a {type(host_fn).__name__}, not a Python function "
                                "(no @cuda.jit or @njit on the host side)")
            stand_in = _make_stand_ins()[kernel_name]
            had, previous = kernel_name in names, names.get(kernel_name)
            names[kernel_name] = stand_in
            try:
                return logged(*args)
            finally:
                if had:
                    names[kernel_name] = previous
                else:
                    names.pop(kernel_name, None)
        run.__wrapped__ = host_fn
        return run
    return adapter
