"""Running a kernel on one thread or on all: a serial kernel, and one parallel launcher for every kernel.

Every multi-threaded kernel in this package is one compiled serial function over a share of its tasks:

    kernel_part(part, parts, *args)     does tasks  n*part//parts  up to  n*(part+1)//parts
                                        (n, the number of tasks, computed inside from the arguments)

`run(kernel_part, *args)` calls kernel_part(0, 1, *args) when minicnn runs on one thread
(`numba.get_num_threads()` is 1: a small layer, see `threads_for` in __init__.py, or a user's
`numba.set_num_threads(1)`), and otherwise a launcher (`launch3` .. `launch10`, by argument
count), whose `prange` loop calls kernel_part once per thread, one share each, as a `prange` loop
with a static schedule would split the tasks.  Each task
writes memory no other task writes, so the result does not depend on the number of threads.

Why a share function at all: a `parallel=True` function compiles much more slowly than a serial one
(Numba's parfor passes outline the loop body into a function of its own), and a first call on a small
input runs on one thread anyway.  So a call that runs on one thread compiles only the serial kernel.

Why the launcher calls kernel_part through its address (`call_at`) instead of by name: a compiled
function that calls another by name links the callee's code into its own and LLVM optimises and
emits all of it again (Numba does this so that it can inline).  A `prange` twin per kernel,
`for part in prange(parts): kernel_part(part, parts, ...)`, thereby compiled each kernel two more
times (the twin and its outlined loop body), which was a third of a LeNet-5 training step's first
call in a fresh cache.  Called through its address, kernel_part is compiled once; a launcher is
compiled once per list of argument types (not per kernel: kernels whose arguments have the same types
share it), and quickly, since it holds nothing but the loop.  An indirect call per thread costs nothing
next to a share of a kernel.  The convolution's shares (conv.py) call their task function the same
way, for the same reason (a share is a loop over tasks, and compiled its task's code once more); a
task runs all the taps of several filters over its piece of output (LeNet-5's conv3: 4 filters x 400
taps x 64 positions), so the call costs nothing there either.
`address_of(f, args)` gives the address of f compiled for the types of `args`.  Measured:
docs/performance.md, "What the first call compiles".

Why not Python threads around the serial kernel (tried): handing a share to a waiting Python
thread cost about 60 microseconds a call (`prange`: 3, as Numba's OpenMP threads spin between
calls), which made LeNet-5's small layers 30-60% slower on two threads.
"""
from __future__ import annotations

from contextlib import contextmanager

import numba
import numpy as np
from numba import njit, prange, types
from numba.core import cgutils
from numba.extending import intrinsic

_only = None    # None: choose by the thread count; "serial" or "parallel": only_version(), for precompile


if numba.config.DISABLE_JIT:
    # NUMBA_DISABLE_JIT=1 (stepping through the kernels in a Python debugger): nothing is compiled,
    # so an "address" is the Python function itself (see address_of) and calling it is a plain call.
    def call_at(address, args):
        """call_at(f, args): f(*args) (NUMBA_DISABLE_JIT=1)."""
        address(*args)
else:
    @intrinsic
    def call_at(typingctx, address, args):
        """call_at(address, args): calls the compiled function at `address` as f(*args), with Numba's own
        calling convention, and re-raises what it raised.

        `address` must be that of a Numba-compiled function whose arguments have exactly the types of
        `args` and which returns None: `address_of` makes sure of it."""
        argtys = tuple(args.types)

        def codegen(context, builder, signature, llargs):
            cc = context.call_conv
            address_v, args_v = llargs
            values = [builder.extract_value(args_v, i) for i in range(len(argtys))]
            # the address as a pointer to the function type Numba gives f(*args)
            fn = builder.inttoptr(address_v, cc.get_function_type(types.none, argtys).as_pointer())
            status, _ = cc.call_function(builder, fn, types.none, argtys, values)
            with cgutils.if_unlikely(builder, status.is_error):   # it raised: return, raising it here too
                cc.return_status_propagate(builder, status)
            return context.get_dummy_value()

        return types.none(address, args), codegen


# launchN(address, parts, *N arguments): f(part, parts, *arguments) for part in 0..parts-1 on Numba's
# threads, f the function at `address`.  One per argument count, because Numba's parfor lowering
# rejects a star-argument tuple that holds a tuple (the Plan): the loop body gets the arguments one
# by one and packs them itself.

@njit(cache=True, parallel=True)
def launch3(address, parts, a, b, c):
    for part in prange(parts):      # one share per thread
        call_at(address, (np.int64(part), parts, a, b, c))


@njit(cache=True, parallel=True)
def launch4(address, parts, a, b, c, d):
    for part in prange(parts):      # one share per thread
        call_at(address, (np.int64(part), parts, a, b, c, d))


@njit(cache=True, parallel=True)
def launch6(address, parts, a, b, c, d, e, f):
    for part in prange(parts):      # one share per thread
        call_at(address, (np.int64(part), parts, a, b, c, d, e, f))


@njit(cache=True, parallel=True)
def launch8(address, parts, a, b, c, d, e, f, g, h):
    for part in prange(parts):      # one share per thread
        call_at(address, (np.int64(part), parts, a, b, c, d, e, f, g, h))


@njit(cache=True, parallel=True)
def launch10(address, parts, a, b, c, d, e, f, g, h, i, j):
    for part in prange(parts):      # one share per thread
        call_at(address, (np.int64(part), parts, a, b, c, d, e, f, g, h, i, j))


# the argument counts the kernels have (a launcher never called would be missing from a
# precompiled cache, and `minicnn precompile` would say so)
LAUNCH = {3: launch3, 4: launch4, 6: launch6, 8: launch8, 10: launch10}


_addresses = {}     # (kernel, the arguments' kinds) -> the address of its compiled version for them


def _kind(a):
    """What decides the Numba type of argument `a` (cheaper than numba.typeof, which takes ~7 us)."""
    if isinstance(a, np.ndarray):
        f = a.flags
        return (a.dtype, a.ndim, f.c_contiguous, f.f_contiguous, f.writeable, f.aligned)
    if isinstance(a, tuple):
        return (type(a),) + tuple(_kind(v) for v in a)
    return type(a)


def address_of(fn, args) -> int:
    """The address of `fn` compiled for the types of `args` (the call f(*args)); compiled, or loaded
    from Numba's cache, on first use, then remembered per argument kinds."""
    if numba.config.DISABLE_JIT:
        return fn               # a Python function: call_at calls it as it is
    key = (fn, tuple(_kind(a) for a in args))
    address = _addresses.get(key)
    if address is None:
        sig = tuple(numba.typeof(a) for a in args)
        fn.compile(sig)
        compiled = fn.overloads[sig]
        address = compiled.library.get_pointer_to_function(compiled.fndesc.llvm_func_name)
        _addresses[key] = address
    return address


def run(kernel_part, *args) -> None:
    """kernel_part(0, 1, *args) on one thread; else launchN(its address, numba.get_num_threads(), *args)."""
    parts = numba.get_num_threads()
    if _only == "parallel" or (parts > 1 and _only is None):
        LAUNCH[len(args)](address_of(kernel_part, (0, parts) + args), parts, *args)
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
