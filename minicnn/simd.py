"""Which vector width Numba compiles minicnn's kernels for: 512-bit on AVX-512 hosts (issue 17).

LLVM's models of Intel's AVX-512 cores (skylake-avx512 through emeraldrapids) carry the tuning
flag `prefer-256-bit`, so Numba, left alone, compiles loops to 256-bit `ymm` code there and half
of each FMA unit idles.  Measured on a 2-core slice of an Intel Xeon (LLVM: emeraldrapids),
float32, minicnn over torch 2.11, medians, two processes each, `benchmarks/cpu_bench.py --rounds 9
--sections conv,lenet`:

    layer / thread count            256-bit (LLVM's choice)   512-bit (this module)
    large 3x3 forward, 1 / 2        1.99, 2.02 / 2.21, 2.20   1.51, 1.55 / 1.61, 1.58
    large 3x3 backward, 1 / 2       2.20, 2.20 / 2.72, 2.27   1.65, 1.65 / 1.73, 1.74
    LeNet-5 training step, 1 / 2    0.94, 0.93 / 1.21, 1.19   0.87, 0.84 / 0.99, 1.10

So when `import minicnn` comes before Numba's first `@njit` (before Numba's import, or after it, as
in the course notebooks' `from numba import njit` / `import minicnn`), on a host whose CPU has
`avx512f`, this module sets NUMBA_CPU_NAME to the host's CPU and NUMBA_CPU_FEATURES to the host's features plus
`-prefer-256-bit`, the same machine with the tuning flag off; except on the hosts in AVX2_FASTER
(AMD Zen 4, whose AVX-512 runs on 256-bit units and gives no more FMAs per cycle), where it
sets the host's features with every AVX-512 feature off, the build measured fastest there.
Numba reads both when it first
compiles, for every `@njit` function in the process (and in child processes, which inherit
the environment); they are also part of the key of Numba's on-disk cache, so a cache stays valid
per machine and per setting.  Nothing changes:

* on hosts without AVX-512 (AVX2 machines, Arm): there is nothing wider to ask for;
* when NUMBA_CPU_NAME or NUMBA_CPU_FEATURES is set: the user's choice stands;
* when Numba's CPU target already exists (a function was decorated or compiled before `import
  minicnn`): its CPU and features are fixed for the process, and setting the variables then would
  change only child processes;
* with MINICNN_VECTOR_WIDTH=llvm: LLVM's own choice, e.g. to compare the two.

`status()` says which of these happened.
"""
from __future__ import annotations

import os
import sys

ENV = "MINICNN_VECTOR_WIDTH"
CHOICES = ("auto", "llvm")          # auto: 512-bit on AVX-512 hosts (but AVX2_FASTER); llvm: leave LLVM's choice

# AVX-512 hosts whose cores execute a 512-bit instruction as two 256-bit halves, where minicnn's
# AVX2 build measured faster than its AVX-512 builds (512- and 256-bit alike), so auto turns the
# AVX-512 features off there (LLVM's CPU names).  znver4, AMD Zen 4, 2026-12-01: FMA peak 117
# GFLOP/s a thread at 512 bits, 116 at 256; `benchmarks/cpu_bench.py --rounds 9`, minicnn's own
# times, host minus AVX-512 against minicnn's 512-bit default: large forward 29.9, 30.0 against
# 31.8, 32.0 ms, stride-2 forward 5.8, 5.7 against 6.9, 7.0 (docs/results/cpu_bench_2026-12-01_zen4_
# {zavx2,auto}_{a,b}3.json); docs/performance.md, "Vector width".
AVX2_FASTER = frozenset({"znver4"})

_decision = None                    # (settings applied or None, reason), from configure()


def choose(environ, numba_started: bool, host_name: str, host_features: str):
    """(settings, reason): the NUMBA_CPU_* variables to set ({} for none) and why.

    A pure function of its arguments, so every branch can be tested on any host:
    `host_name`/`host_features` are llvmlite's `get_host_cpu_name()` and
    `get_host_cpu_features().flatten()` ('+avx2,-avx512f,...')."""
    wanted = environ.get(ENV, "auto").strip().lower() or "auto"
    if wanted not in CHOICES:
        raise ValueError(f"{ENV}={environ.get(ENV)!r}: expected one of {', '.join(CHOICES)}")
    if wanted == "llvm":
        return {}, f"{ENV}=llvm: LLVM's own vector width"
    if environ.get("NUMBA_CPU_NAME") is not None or environ.get("NUMBA_CPU_FEATURES") is not None:
        return {}, "NUMBA_CPU_NAME/NUMBA_CPU_FEATURES are set: the user's choice stands"
    if numba_started:
        return {}, "Numba had compiled or decorated a function before minicnn was imported: its setting stands"
    features = host_features.split(",")
    if "+avx512f" not in features:
        return {}, f"no AVX-512 on this host ({host_name}): nothing wider to ask for"
    if host_name in AVX2_FASTER:
        off = ["-" + f[1:] if f.startswith("+") and is_avx512_feature(f[1:]) else f for f in features]
        settings = {"NUMBA_CPU_NAME": host_name, "NUMBA_CPU_FEATURES": ",".join(off)}
        return settings, f"AVX-512 host ({host_name}) that runs it on 256-bit units: AVX2 code, measured faster there"
    kept = [f for f in features if f not in ("+prefer-256-bit", "-prefer-256-bit")]
    settings = {"NUMBA_CPU_NAME": host_name, "NUMBA_CPU_FEATURES": ",".join(kept + ["-prefer-256-bit"])}
    return settings, f"AVX-512 host ({host_name}): 512-bit vectors (-prefer-256-bit)"


def is_avx512_feature(name: str) -> bool:
    """Whether an LLVM feature name ('avx512vl', 'evex512', 'avx10.1-512', ...) needs AVX-512."""
    return name.startswith(("avx512", "evex512", "avx10"))


def configure() -> None:
    """Apply `choose` to this process, once; `import minicnn` calls it before importing its kernels."""
    global _decision
    if _decision is not None:
        return
    started = numba_started()
    try:
        import llvmlite.binding as ll
        host_name, host_features = ll.get_host_cpu_name(), ll.get_host_cpu_features().flatten()
    except Exception as exc:  # llvmlite cannot read this host's features: keep LLVM's choice
        _decision = ({}, f"host features unreadable ({type(exc).__name__}): LLVM's own choice")
        return
    settings, reason = choose(os.environ, started, host_name, host_features)
    os.environ.update(settings)
    if settings and "numba" in sys.modules:      # imported, not started: make it read the variables now
        sys.modules["numba"].core.config.reload_config()
    _decision = (settings, reason)


def numba_started() -> bool:
    """Whether Numba's CPU target exists in this process (created by the first `@njit`, decorated or
    called; from then on its CPU name and features are fixed).  Numba offers no public test, so this
    looks for the lazily created context on its CPU target descriptor; if that has changed in some
    Numba version, an imported Numba counts as started (the setting is then left alone)."""
    if "numba" not in sys.modules:
        return False
    registry = sys.modules.get("numba.core.registry")
    target = getattr(registry, "cpu_target", None)
    if target is None or not hasattr(type(target), "_toplevel_target_context"):
        return True
    return "_toplevel_target_context" in vars(target)


def status() -> dict:
    """What `configure` did: {'applied': {NUMBA_CPU_*: value} or {}, 'reason': str,
    'numba_cpu_name': ..., 'numba_cpu_features': ...} (the last two as Numba will read them)."""
    settings, reason = _decision if _decision is not None else ({}, "not configured")
    return {"applied": dict(settings), "reason": reason,
            "numba_cpu_name": os.environ.get("NUMBA_CPU_NAME"),
            "numba_cpu_features": os.environ.get("NUMBA_CPU_FEATURES")}
