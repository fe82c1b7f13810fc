"""Keep freed memory in the process, so that new arrays do not page-fault (Linux, glibc).

Every minicnn op returns a new array, and a training step makes dozens of them, from a few
bytes to megabytes.  glibc's malloc hands large freed blocks back to the operating system
(blocks over its mmap threshold, and the heap's free top once it exceeds the trim threshold),
and the next array of that size then starts as untouched pages: one page fault per 4 KiB on
first write.  On the 2-core development machine (a virtual machine) a fault cost about 2 us,
and a LeNet-5 step at batch 64 written with the functional API took 2,468 of them: 15.5 ms a
step instead of 8.4-9.1 ms (`python benchmarks/probes/lenet_step_faults.py [--keep]`).

keep_freed_memory() raises both thresholds, so freed blocks stay in the process and are
reused.  It changes the whole process (glibc has one allocator), so minicnn never calls it
on import: the benchmark and the training command call it, and a script of your own may.
The cost is memory: up to `trim_bytes` of freed heap may stay with the process.
The same settings can be given from outside: MALLOC_MMAP_THRESHOLD_ and MALLOC_TRIM_THRESHOLD_.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import sys

_M_TRIM_THRESHOLD = -1   # glibc's mallopt parameter numbers (malloc.h)
_M_MMAP_THRESHOLD = -3


def keep_freed_memory(mmap_bytes: int = 64 << 20, trim_bytes: int = 256 << 20) -> bool:
    """Blocks under mmap_bytes come from the heap, and up to trim_bytes of free heap is kept.

    Returns True when the settings were applied, False where there is no glibc (macOS,
    Windows, musl): nothing changes there.
    """
    for name, value in (("mmap_bytes", mmap_bytes), ("trim_bytes", trim_bytes)):
        if isinstance(value, bool) or not isinstance(value, int) or not 0 < value < 2 ** 31:
            raise ValueError(f"{name} must be a positive int below 2**31 bytes, got {value!r}")
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes, mallopt.restype = (ctypes.c_int, ctypes.c_int), ctypes.c_int
    return bool(mallopt(_M_MMAP_THRESHOLD, mmap_bytes)) and bool(mallopt(_M_TRIM_THRESHOLD, trim_bytes))
