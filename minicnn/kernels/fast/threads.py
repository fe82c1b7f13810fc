"""Running a kernel on one thread or on all: a serial kernel, and a parallel twin that calls it.

Every multi-threaded kernel in this package comes as two compiled functions:

    kernel_part(part, parts, *args)     serial: does tasks  n*part//parts  up to  n*(part+1)//parts
                                        (n, the number of tasks, computed inside from the arguments)
    kernel_parallel(parts, *args)       for part in prange(parts): kernel_part(part, parts, *args)

`run(kernel_part, kernel_parallel, *args)` calls kernel_part(0, 1, *args) when minicnn runs on one
thread (`numba.get_num_threads()` is 1: a small layer, see `threads_for` in __init__.py, or a user's
`numba.set_num_threads(1)`), and kernel_parallel(threads, *args) otherwise: one share per thread,
as a `prange` loop with a static schedule would split the tasks.  Each task writes memory no other
task writes, so the result does not depend on the number of threads.

Why two: a `parallel=True` function compiles much more slowly than a serial one (Numba's parfor
passes outline the loop body into a function of its own, and LLVM compiles the task it calls once
more inside it), and a first call on a small input runs on one thread anyway.  So a call that runs on
one thread compiles only the serial kernel.  Measured on the idle 2-core AMD EPYC (Zen 3), a new
process each with an empty NUMBA_CACHE_DIR (`python benchmarks/cold_start.py --no-precompiled`,
whose scenarios are small inputs): see docs/performance.md, "What the first call compiles".

Why not Python threads around the serial kernel (tried): handing a share to a waiting Python
thread cost about 60 microseconds a call (`prange`: 3, as Numba's OpenMP threads spin between
calls), which made LeNet-5's small layers 30-60% slower on two threads.
"""
from __future__ import annotations

from contextlib import contextmanager

import numba

_only = None    # None: choose by the thread count; "serial" or "parallel": only_version(), for precompile


def run(kernel_part, kernel_parallel, *args) -> None:
    """kernel_part(0, 1, *args) on one thread, else kernel_parallel(numba.get_num_threads(), *args)."""
    parts = numba.get_num_threads()
    if _only == "parallel" or (parts > 1 and _only is None):
        kernel_parallel(parts, *args)
    else:
        kernel_part(0, 1, *args)


@contextmanager
def only_version(which: str):
    """Inside the block every call runs the "serial" or the "parallel" version of its kernel,
    whatever the thread count (the parallel one on as many threads as Numba has, one included):
    `minicnn precompile` uses it to put both into the cache.  Both compute the same result."""
    global _only
    if which not in ("serial", "parallel"):
        raise ValueError(f"which must be 'serial' or 'parallel', got {which!r}")
    before, _only = _only, which
    try:
        yield
    finally:
        _only = before
