"""Scratch memory the fast convolution reuses from call to call, so a plain loop does not page-fault.

A convolution's backward lays out copies as large as its input (the output gradient in rows,
the input in stride phases, the input gradient's accumulator): for the benchmark's large layer
(N=64, C=32, 32x32, K=64) about 37 MB of temporaries per call.  Freed at the end of every
call, that much free memory at the top of glibc's heap is over its trim threshold, so glibc
handed it back to the system and the next call faulted every page in again: measured on the
2-core Zen 3 (loaded), 11,886 page faults per `conv2d_backward` of that layer in a plain loop,
none with `minicnn.keep_freed_memory()`.

Here each kind of temporary ("role") has one buffer per thread, grown to the largest size
asked for and then reused: the memory a process keeps is the largest layer's temporaries (a
few times its input), never more, and no allocator setting of the process changes.  A buffer
is only ever used within one op call (the op returns new arrays or the caller's `out`, never a
scratch buffer), and each thread has its own, so two Python threads never share one.
"""
from __future__ import annotations

import math
import threading

import numpy as np

_local = threading.local()
ALIGN = 64      # bytes: scratch arrays start on a cache line


def scratch(role: str, shape: tuple, dtype, zero: bool = False) -> np.ndarray:
    """A C-contiguous array of `shape` and `dtype` in this thread's buffer for `role`, its contents
    left from the last use unless `zero`.  Valid until the next scratch() call for the same role.
    (A few microseconds a call: this runs several times in every convolution, small ones too.)"""
    dtype = np.dtype(dtype)
    nbytes = math.prod(shape) * dtype.itemsize
    buffers = getattr(_local, "buffers", None)
    if buffers is None:
        buffers = _local.buffers = {}
    held = buffers.get(role)
    if held is None or held[0].size < held[1] + nbytes:
        buf = np.empty(nbytes + ALIGN, dtype=np.uint8)
        held = buffers[role] = (buf, -buf.ctypes.data % ALIGN)   # (buffer, bytes to its first aligned one)
    buf, skip = held
    arr = buf[skip:skip + nbytes].view(dtype).reshape(shape)
    if zero:
        arr.fill(0)
    return arr


def release() -> int:
    """Drop this thread's scratch buffers (they are made again when next needed); returns the bytes freed."""
    buffers = getattr(_local, "buffers", {})
    freed = sum(buf.size for buf, _ in buffers.values())
    buffers.clear()
    return freed
