"""minicnn's own compiled functions are built without bounds checks, whatever NUMBA_BOUNDSCHECK says.

Every course notebook sets NUMBA_BOUNDSCHECK=1 before importing Numba, so that an index outside
an array in the *student's* `@njit` code raises IndexError instead of corrupting memory.  Numba
applies that setting to every function it compiles in the process, minicnn's kernels included,
and its on-disk cache does not record it: the key of a cached build is the signature, the CPU and
the bytecode, not the compile flags.  So one notebook session compiled bounds-checked kernels into
minicnn's cache, and every later process that loaded them (`minicnn train`, a benchmark, the next
notebook) ran them checked.  Measured on a 2-core AMD Zen 4 (`benchmarks/probes/boundscheck_cost.py`):
see docs/performance.md, "Bounds-checked builds in the cache".

minicnn's kernels index only what the public functions have checked (argcheck.py, geometry.py)
and are tested against NumPy references with random shapes, so they need no run-time checks.
`install()` registers a listener for Numba's compile event (numba.core.event, Numba's public
event API): while Numba compiles a function defined in minicnn's library, the environment's
override is lifted (numba.config.BOUNDSCHECK back to None: the decorator's own setting, off), and
put back when that compile ends, also when it fails.  Numba compiles under one global lock, so no
other function is compiled meanwhile; a student's function that calls a library function keeps
its own checks, as the library function is compiled as a compile of its own.

Left alone: the course's and grader's compiled helpers (minicnn.course, minicnn.grader,
minicnn.sandbox), which run beside the student's code and keep whatever the notebook chose.
"""
from __future__ import annotations

from numba.core import config, event

LIBRARY = "minicnn."
NOT_LIBRARY = ("minicnn.course", "minicnn.grader", "minicnn.sandbox", "minicnn.answers")


def is_library(dispatcher) -> bool:
    """Whether `dispatcher` (a Numba dispatcher, or anything) wraps a function of minicnn's library."""
    module = getattr(getattr(dispatcher, "py_func", None), "__module__", None) or ""
    return module.startswith(LIBRARY) and not module.startswith(NOT_LIBRARY)


class LibraryBuilds(event.Listener):
    """Lifts NUMBA_BOUNDSCHECK for the duration of each compile of a library function."""

    def __init__(self):
        self.stack = []         # per compile in progress (they nest): (lifted?, the value before)

    def on_start(self, ev):
        data = ev.data if isinstance(ev.data, dict) else {}
        mine = is_library(data.get("dispatcher"))
        self.stack.append((mine, config.BOUNDSCHECK))
        if mine:
            config.BOUNDSCHECK = None

    def on_end(self, ev):
        if self.stack:
            mine, before = self.stack.pop()
            if mine:
                config.BOUNDSCHECK = before


_INSTALLED: list = []


def install() -> LibraryBuilds:
    """Register the listener (once per process); returns it."""
    if not _INSTALLED:
        listener = LibraryBuilds()
        event.register("numba:compile", listener)
        _INSTALLED.append(listener)
    return _INSTALLED[0]
