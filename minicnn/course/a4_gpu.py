"""Assignment 4's graded parts: convolution and max pooling as @cuda.jit kernels, one thread per
output element, checked on Numba's CUDA simulator (NUMBA_ENABLE_CUDASIM=1; the autograder sets it).

The student writes a kernel and a host function that pads, copies, launches and copies back.
Each check calls the host function, compares the result with minicnn's CPU reference, and
records every kernel launch (grid and block sizes): the launch must have at least one thread
per output element.  The simulator runs each CUDA thread as a Python thread, so the cases
are small (at most a few hundred outputs).
"""
from __future__ import annotations

import math

import numpy as np

from .. import conv, examples, pool
from ..cuda import simulator_enabled
from .cases import EDGE_KINDS, ORDINARY, REF, case_label, cite, geometry, ints
from .part import Case, Part, compare_arrays

PARTS: list[Part] = []   # this assignment's graded parts, in notebook order


def simulator_on() -> bool:
    try:
        return simulator_enabled()
    except Exception:  # noqa: BLE001 - no CUDA target at all
        return False


def _patch_launches(log):
    """Record (grid, block) of every kernel launch in this process (the sandbox's child)."""
    patched = False
    try:
        from numba.cuda.simulator import kernel as sim

        original = sim.FakeCUDAKernel.__call__

        def recording_call(self, *args):
            grid, block = sim.normalize_kernel_dimensions(self.grid_dim, self.block_dim)
            log.append((tuple(grid), tuple(block)))
            return original(self, *args)

        sim.FakeCUDAKernel.__call__ = recording_call
        patched = True
    except Exception:  # noqa: BLE001 - not the simulator
        pass
    if not patched:
        try:
            from numba.cuda import dispatcher as real

            original_real = real._LaunchConfiguration.__call__

            def recording_real(self, *args):
                grid, block = self.griddim, self.blockdim
                log.append((tuple(grid), tuple(block)))
                return original_real(self, *args)

            real._LaunchConfiguration.__call__ = recording_real
        except Exception:  # noqa: BLE001
            pass


def with_launch_log(host_fn):
    """The callable the sandbox runs: host_fn(*args) plus the launches it made."""
    def run(*args):
        log = []
        _patch_launches(log)
        value = host_fn(*args)
        if hasattr(value, "copy_to_host"):
            value = value.copy_to_host()
        return value, log
    run.__wrapped__ = host_fn
    return run


def _threads(launch):
    grid, block = launch
    return math.prod(grid) * math.prod(block)


def compare_launched(expected, got):
    if not (isinstance(got, tuple) and len(got) == 2):
        return {"kind": "type", "text": "internal: no launch record"}
    value, launches = got
    mismatch = compare_arrays(expected, value)
    if mismatch is not None:
        return mismatch
    need = int(np.asarray(expected).size)
    if not launches:
        return {"kind": "launch", "text": "the result is right, but no CUDA kernel was launched: compute it on the "
                                          "GPU with kernel[blocks, threads_per_block](...)"}
    most = max(_threads(l) for l in launches)
    if most < need:
        return {"kind": "launch", "text": f"the result is right, but the largest launch had {most} threads for "
                                          f"{need} output elements: launch (at least) one thread per output"}
    return None


def _launch_hint(case, got, m):
    need = int(np.asarray(case.expected).size)
    launches = got[1] if isinstance(got, tuple) and len(got) == 2 else []
    if launches and max(_threads(l) for l in launches) < need and case.hidden:   # no sizes for a hidden case
        return ("fewer threads were launched than there are outputs: launch ceil(outputs / threads_per_block) "
                "blocks so that every output gets its thread")
    if launches and max(_threads(l) for l in launches) < need:
        return (f"only {max(_threads(l) for l in launches)} threads were launched for {need} outputs: launch "
                "ceil(outputs / threads_per_block) blocks so that every output gets its thread")
    if m["kind"] == "launch":
        return ("blocks = ceil(outputs / threads_per_block); each thread finds its output from cuda.grid(1) and "
                "returns at once when that index is past the end")
    if m["kind"] == "shape":
        return "the host function allocates the output: (N, K, H_out, W_out) with the usual output-size formula"
    return ("check the index arithmetic that turns the thread's flat index into (n, k, i, j): j varies fastest, "
            "then i, then k, then n")


def _fork():
    return simulator_on()  # a real GPU's context does not survive fork: run in-process there


def _conv_gpu_cases(rng, hidden):
    cases = []

    def add(label, x, w, b, s, p, **kw):
        cases.append(Case(label, (x, w, b, s, p), conv.conv2d(x, w, b, s, p, impl=REF),
                          f"x {'x'.join(map(str, x.shape))}, w {'x'.join(map(str, w.shape))}, stride {s}, padding {p}",
                          **kw))

    ex = examples.get("halmstad-rgb-with-bias")
    add(cite(ex), ex.array("x")[None], ex.array("weight"), ex.array("bias"), ex.params["stride"],
        ex.params["padding"], worked=True, example_id=ex.id)
    ex = examples.get("ferrara-5x5-stride-2-padding-1")
    add(cite(ex), ex.array("image")[None, None], ex.array("kernel")[None, None], np.zeros(1),
        ex.params["stride"], ex.params["padding"], worked=True, example_id=ex.id)
    kinds = list(EDGE_KINDS) + ["batch and filters", ORDINARY]
    for i, kind in enumerate(kinds * (2 if hidden else 1)):
        h, w, kh, kw, s, p = geometry(rng, kind)
        h, w = min(h, 6), min(w, 6)
        kh, kw = min(kh, h + 2 * p), min(kw, w + 2 * p)
        n, c, k = (2, 2, 2) if kind == "batch and filters" else (1, int(rng.integers(1, 3)), 1)
        add(case_label(i, kind, hidden), ints(rng, (n, c, h, w)), ints(rng, (k, c, kh, kw), -2, 2),
            ints(rng, (k,)), s, p, hidden=hidden)
    return cases


def _pool_gpu_cases(rng, hidden):
    cases = []

    def add(label, x, k, s, **kw):
        cases.append(Case(label, (x, k, s), pool.max_pool2d(x, k, s, impl=REF),
                          f"x {'x'.join(map(str, x.shape))}, kernel {k}, stride {s}", **kw))

    ex = examples.get("tcd-max-pooling-4x4")
    add(cite(ex), ex.array("x")[None, None], ex.params["kernel_size"], ex.params["stride"], worked=True,
        example_id=ex.id)
    kinds = ["overlapping windows (stride < kernel)", "stride larger than the kernel", "window as large as the input",
             "non-square input", "negative values only", "batch and channels"]
    for i, kind in enumerate(kinds * (2 if hidden else 1)):
        r = lambda lo, hi: int(rng.integers(lo, hi + 1))  # noqa: E731
        k = r(2, 3)
        s = {"overlapping windows (stride < kernel)": 1, "stride larger than the kernel": k + 1}.get(kind, k)
        h, w = r(k, 7), r(k, 7)
        if kind == "window as large as the input":
            h = w = k
        elif kind == "non-square input":
            w = min(h + r(1, 3), 9)
        n, c = (2, 2) if kind == "batch and channels" else (1, 1)
        x = ints(rng, (n, c, h, w), -9, 9)
        if kind == "negative values only":
            x = -np.abs(x) - 1
        add(case_label(i, kind, hidden), x, k, s, hidden=hidden)
    return cases


PARTS.append(Part("a4.conv2d_gpu", "conv2d_gpu", "GPU convolution, one thread per output", _conv_gpu_cases,
                  compare=compare_launched, hint=_launch_hint, adapter=with_launch_log, compiled_kind="cuda",
                  fork=_fork, timeout=60.0, display=lambda got: got[0] if isinstance(got, tuple) else got))
PARTS.append(Part("a4.max_pool2d_gpu", "max_pool2d_gpu", "GPU max pooling, one thread per output", _pool_gpu_cases,
                  compare=compare_launched, hint=_launch_hint, adapter=with_launch_log, compiled_kind="cuda",
                  fork=_fork, timeout=60.0, display=lambda got: got[0] if isinstance(got, tuple) else got))
