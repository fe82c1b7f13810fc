"""Assignment 4's graded parts: convolution and max pooling as @cuda.jit kernels (one thread per
output element, the warm-up), then a shared-memory tiled convolution; checked on Numba's CUDA
simulator (NUMBA_ENABLE_CUDASIM=1; the autograder sets it).

The student writes the kernels and, for the warm-up, a host function that pads, copies,
launches and copies back.  The kernels are tested as kernels: the grader launches them itself
with its own configuration on its own device arrays (a4_launch.launch_flat / launch_tiled),
so a host function that computes with NumPy earns nothing for them.  The host functions are
checked with the grader's stand-in kernel in place of the student's (a4_launch.with_stand_in),
and every kernel launch they make is recorded (grid and block sizes): at least one thread per
output element.  The simulator runs each CUDA thread as a Python thread, so the cases are
small (at most a few hundred outputs).
"""
from __future__ import annotations

import math

import numpy as np

from .. import conv, examples, pool
from ..cuda import simulator_enabled
from .cases import EDGE_KINDS, ORDINARY, REF, case_label, cite, geometry, ints
from .a4_launch import KMAX, MARK, TILE, flat_blocks, launch_flat, launch_tiled, with_stand_in
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
    value = got[0] if isinstance(got, tuple) and len(got) == 2 else got
    if m["kind"] == "values" and compare_arrays(np.asarray(case.expected) - MARK, value) is None:
        return STAND_IN_HINT
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
    if not launches:
        return ("no kernel was launched: the host function launches the kernel, kernel[blocks, threads](...), and "
                "returns what it wrote into `out`")
    return ("for this check the grader's own kernel replaced yours, and it computes the right values from what the "
            "host function hands it: check the padding of the input, the order of the kernel's arguments (as in "
            "its signature), and that the result is `out` copied back from the device")


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


# ----------------------------------------------------------------------------- the kernels, launched by the grader

THREADS = (32, 8, 64)   # threads per block, by case: most cases 32, and others so that a fixed block size fails


def _flat_launch(case, i, arrays, settings, alternatives=None):
    """`case` (a host-function case) as a kernel case: the kernel's own arguments, then the output
    shape and the case's block size.  alternatives: what known mistakes return (hint -> result)."""
    threads = THREADS[i % len(THREADS)]
    shape = tuple(np.shape(case.expected))
    blocks = flat_blocks(math.prod(shape), threads)
    return Case(case.label, (*arrays, *settings, shape, threads), case.expected,
                f"{case.describe}; launched as {blocks} blocks of {threads} threads", hidden=case.hidden,
                worked=case.worked, example_id=case.example_id, alternatives=alternatives or {})


def _pad(x, p):
    return np.pad(x, ((0, 0), (0, 0), (p, p), (p, p)))


BIAS_HINT = "every output of filter k is off by b[k]: start each sum from the bias, total = b[k]"
STRIDE_HINT = ("these are the outputs of windows that move one pixel at a time: the window of output (i, j) starts "
               "at row i * stride, column j * stride")


def _conv_kernel_cases(rng, hidden):
    def mistakes(x, w, b, s, p, expected):
        _, _, out_h, out_w = expected.shape
        return {BIAS_HINT: lambda: expected - b[None, :, None, None],
                STRIDE_HINT: lambda: conv.conv2d(x, w, b, 1, p, impl=REF)[:, :, :out_h, :out_w]}

    return [_flat_launch(c, i, (_pad(c.args[0], c.args[4]), c.args[1], c.args[2]), (c.args[3],),
                         mistakes(*c.args, c.expected) if c.args[3] > 1 or c.args[2].any() else None)
            for i, c in enumerate(_conv_gpu_cases(rng, hidden))]


def _pool_kernel_cases(rng, hidden):
    def mistakes(x, k, s, expected):
        _, _, out_h, out_w = expected.shape
        return {STRIDE_HINT: lambda: pool.max_pool2d(x, k, 1, impl=REF)[:, :, :out_h, :out_w]} if s > 1 else None

    return [_flat_launch(c, i, (c.args[0],), (c.args[1], c.args[2]), mistakes(*c.args, c.expected))
            for i, c in enumerate(_pool_gpu_cases(rng, hidden))]


def _kernel_hint(case, got, m):
    if m["kind"] == "nan":
        return ("some outputs were never written (still NaN): every output needs its thread. The grader launched "
                f"ceil(outputs / threads) blocks of {case.args[-1]} threads: take the thread's index from "
                "cuda.grid(1) (right for any block size), and check that the index -> (n, k, i, j) arithmetic "
                "reaches every output (j = t % W_out, i = (t // W_out) % H_out, ...)")
    return ("check the index arithmetic that turns the thread's flat index into (n, k, i, j): j varies fastest, "
            "then i, then k, then n")


def _marked(cases):
    """Host-function cases checked with the stand-in kernel: the answer + MARK."""
    for c in cases:
        c.expected = c.expected + MARK
    return cases


STAND_IN_HINT = ("the values are the right answer, but not what the kernel wrote: the host function is checked "
                 f"with the grader's own kernel in place of yours (it adds {MARK:g} to every output, so the grader "
                 "can tell its writes from anything else); launch the kernel and return what it wrote in `out`")


def _tiled_cases(rng, hidden):
    """Stride-1 convolutions whose outputs mostly do not divide into TILE x TILE tiles (partial tiles
    at the bottom, at the right, or both; an output smaller than one tile); xp already padded;
    launched with one block per tile of work on even cases and 1 to 3 blocks on odd ones."""
    cases = []

    def add(label, x, w, b, p, i, **kw):
        expected = conv.conv2d(x, w, b, 1, p, impl=REF)
        n, k, out_h, out_w = expected.shape
        jobs = n * k * math.ceil(out_h / TILE) * math.ceil(out_w / TILE)
        blocks = jobs if i % 2 == 0 else max(1, min(3, jobs - 1))
        xp = _pad(x, p)
        cases.append(Case(label, (xp, w, b, expected.shape, blocks), expected,
                          f"xp {'x'.join(map(str, xp.shape))} (padding {p} applied), w "
                          f"{'x'.join(map(str, w.shape))}, stride 1, output {out_h}x{out_w}; launched as {blocks} "
                          f"blocks of {TILE}x{TILE} threads", **kw))

    ex = examples.get("halmstad-rgb-with-bias")
    add(cite(ex), ex.array("x")[None], ex.array("weight"), ex.array("bias"), ex.params["padding"], 0,
        worked=True, example_id=ex.id)
    kinds = ["output smaller than one tile", "a partial last row of tiles", "a partial last column of tiles",
             "partial tiles both ways", "a 1x1 kernel", f"a {KMAX}x{KMAX} kernel with padding",
             "non-square kernel", "batch and filters"]
    r = lambda lo, hi: int(rng.integers(lo, hi + 1))  # noqa: E731
    for i, kind in enumerate(kinds * (2 if hidden else 1), start=1):
        kh = kw = r(2, 3)
        p = 0
        oh, ow = r(TILE + 1, TILE + 5), r(TILE + 1, TILE + 5)
        if kind == "output smaller than one tile":
            oh, ow = r(2, TILE - 1), r(2, TILE - 1)
        elif kind == "a partial last row of tiles":
            ow = TILE
        elif kind == "a partial last column of tiles":
            oh = TILE
        elif kind == "a 1x1 kernel":
            kh = kw = 1
        elif kind.startswith(f"a {KMAX}x{KMAX}"):
            kh = kw = KMAX
            p = r(1, 2)
        elif kind == "non-square kernel":
            kh, kw = 2, r(3, KMAX)
        n, c, k = (2, 2, 2) if kind == "batch and filters" else (1, r(1, 2), 1)
        if kind == "batch and filters":
            oh, ow = r(TILE - 3, TILE + 3), r(TILE + 1, TILE + 3)
        h, w = oh + kh - 1 - 2 * p, ow + kw - 1 - 2 * p
        add(case_label(i, kind, hidden), ints(rng, (n, c, h, w)), ints(rng, (k, c, kh, kw), -2, 2),
            ints(rng, (k,)), p, i, hidden=hidden)
    return cases


def _tiled_hint(case, got, m):
    if m["kind"] == "nan":
        return ("some outputs were never written: the work is N * K * ceil(H_out / TILE) * ceil(W_out / TILE) tiles "
                "(round up: the last tiles are partial), and a block takes every gridDim.x-th of them "
                "(for job in range(cuda.blockIdx.x, jobs, cuda.gridDim.x)); threads of a partial tile that have no "
                "output still help to load and still reach every cuda.syncthreads()")
    return ("check the tile: TILE x TILE outputs read (TILE + kh - 1) x (TILE + kw - 1) inputs (the halo), and "
            "every thread must wait at cuda.syncthreads() after the load (the window holds cells other threads "
            "loaded) and again before the next load overwrites the tile")


def _common(**kw):
    return dict(compiled_kind="cuda", fork=_fork, timeout=60.0, **kw)


def _shown(got):
    return got[0] if isinstance(got, tuple) else got


PARTS.append(Part("a4.conv2d_kernel", "conv2d_kernel", "GPU convolution kernel, one thread per output",
                  _conv_kernel_cases, hint=_kernel_hint, adapter=launch_flat("conv2d_kernel"), **_common(kernel=True)))
PARTS.append(Part("a4.conv2d_gpu", "conv2d_gpu", "GPU convolution, the host function",
                  lambda rng, hidden: _marked(_conv_gpu_cases(rng, hidden)), compare=compare_launched,
                  hint=_launch_hint, adapter=with_stand_in("conv2d_kernel", with_launch_log), display=_shown,
                  **_common()))
PARTS.append(Part("a4.max_pool2d_kernel", "max_pool2d_kernel", "GPU max pooling kernel, one thread per output",
                  _pool_kernel_cases, hint=_kernel_hint, adapter=launch_flat("max_pool2d_kernel"),
                  **_common(kernel=True)))
PARTS.append(Part("a4.max_pool2d_gpu", "max_pool2d_gpu", "GPU max pooling, the host function",
                  lambda rng, hidden: _marked(_pool_gpu_cases(rng, hidden)), compare=compare_launched,
                  hint=_launch_hint, adapter=with_stand_in("max_pool2d_kernel", with_launch_log), display=_shown,
                  **_common()))
PARTS.append(Part("a4.conv2d_tiled_kernel", "conv2d_tiled_kernel", "GPU convolution, shared-memory tiles",
                  _tiled_cases, hint=_tiled_hint, adapter=launch_tiled, **_common(kernel=True)))
