"""What machine a benchmark ran on: the CPU model, the instruction set Numba compiles for, and
a measured float32 FMA peak to put every GFLOP/s figure in proportion.

    python benchmarks/machine.py        # print all three (a few seconds, plus the probe's compile)

The ISA is read two ways.  What LLVM was told: Numba's target CPU name and feature list
(NUMBA_CPU_NAME / NUMBA_CPU_FEATURES when set, else the host's, as llvmlite reports it).  What
it did with that: the widest vector registers in the FMA probe's own machine code (xmm = 128,
ymm = 256, zmm = 512 bits).  The two differ on AVX-512 hosts where LLVM prefers 256-bit vectors.

The FMA probe keeps 8 independent chains of `lanes`-wide FMAs in flight (enough to cover an FMA's
latency on every x86 core so far), lanes = the vector width the probe compiled to, so the loop
is bound by FMA throughput: its GFLOP/s is the peak a convolution kernel can approach.
"""
from __future__ import annotations

import os
import platform
import re
import time
from pathlib import Path

import numpy as np

import minicnn  # before Numba, so that the vector width minicnn chooses (minicnn/simd.py) is what is probed
from numba import config, njit, prange  # noqa: E402

CHAINS = 8                  # independent vector accumulators in the probe


def cpu_model() -> str:
    """The CPU's model name (/proc/cpuinfo on Linux, else what platform knows)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def numba_target() -> tuple[str, list[str]]:
    """(LLVM CPU name, enabled '+feature' names) that Numba compiles for in this process."""
    import llvmlite.binding as ll

    name = config.CPU_NAME or ll.get_host_cpu_name()
    features = config.CPU_FEATURES if config.CPU_FEATURES is not None else ll.get_host_cpu_features().flatten()
    enabled = sorted(f for f in features.split(",") if f.startswith("+"))
    return name, enabled


def simd_summary(enabled: list[str]) -> str:
    """The vector extensions among the enabled features, widest first (e.g. 'avx2, fma')."""
    wanted = ("avx512f", "avx512vl", "avx512bw", "avx512vnni", "avx512bf16", "avx512fp16", "avx2", "fma", "avx",
              "sse4.2", "neon", "sve", "asimd")
    have = {f[1:] for f in enabled}
    return ", ".join(w for w in wanted if w in have) or "none of the known vector extensions"


def host_lanes(enabled: list[str]) -> int:
    """float32 lanes of the widest vector unit the features name: 16 (AVX-512), 8 (AVX), else 4."""
    return 16 if "+avx512f" in enabled else 8 if "+avx" in enabled else 4


PROBE_FLOATS = CHAINS * host_lanes(numba_target()[1])   # a compile-time constant of the probe


@njit(fastmath={"contract"})
def _fma_chains(reps):
    """PROBE_FLOATS independent a = a*m + c chains, reps times; returns the chains (so nothing is dead)."""
    a = np.empty(PROBE_FLOATS, dtype=np.float32)
    for i in range(PROBE_FLOATS):
        a[i] = np.float32(i) * np.float32(1e-3)
    m = np.float32(0.999999)
    c = np.float32(1e-7)
    for _ in range(reps):
        for i in range(PROBE_FLOATS):
            a[i] = a[i] * m + c
    return a


@njit(parallel=True, fastmath={"contract"})
def _fma_threads(reps, n_tasks):
    out = np.zeros((n_tasks, PROBE_FLOATS), dtype=np.float32)
    for t in prange(n_tasks):
        out[t] = _fma_chains(reps)
    return out


def vector_bits() -> int:
    """The widest vector register (bits) in the FMA probe's compiled code: 512, 256, 128, or 0 if unknown
    (not x86: the assembly names no xmm/ymm/zmm registers)."""
    _fma_chains(1)
    asm = "\n".join(_fma_chains.inspect_asm().values())
    for bits, reg in ((512, "zmm"), (256, "ymm"), (128, "xmm")):
        if re.search(rf"\b{reg}\d+", asm) and re.search(rf"vfmadd\w*\s+%{reg}", asm):
            return bits
    return 0


def fma_peak(threads: int = 1, reps: int = 200_000, rounds: int = 5) -> float:
    """Measured float32 GFLOP/s of independent FMAs on `threads` threads, best of `rounds`
    (each FMA counts as 2 flops).  Sets Numba's thread count to `threads`."""
    import numba

    numba.set_num_threads(threads)
    _fma_threads(10, threads)            # compile and warm up
    best = float("inf")
    for _ in range(rounds):
        t0 = time.perf_counter()
        _fma_threads(reps, threads)
        best = min(best, time.perf_counter() - t0)
    return 2 * PROBE_FLOATS * reps * threads / best / 1e9


def describe() -> dict:
    """CPU model, core count, Numba's target CPU and SIMD features, the probe's vector width."""
    name, enabled = numba_target()
    return {"cpu_model": cpu_model(), "cpu_count": os.cpu_count(), "numba_cpu_name": name,
            "numba_cpu_name_from": "NUMBA_CPU_NAME" if config.CPU_NAME else "host",
            "simd": simd_summary(enabled), "vector_bits": vector_bits(),
            "vector_width_choice": minicnn.simd.status()["reason"]}


def summary_lines(info: dict, peaks: dict) -> list[str]:
    """Printable lines for describe()'s dict and {threads: GFLOP/s}."""
    per_thread = ", ".join(f"{t} thread{'s' * (t > 1)} {p:.0f} GFLOP/s ({p / t:.0f} per thread)"
                           for t, p in peaks.items())
    return [f"cpu: {info['cpu_model']}, {info['cpu_count']} cores",
            f"isa: numba compiles for '{info['numba_cpu_name']}' ({info['numba_cpu_name_from']}), "
            f"{info['simd']}; the FMA probe compiled to {info['vector_bits']}-bit vectors",
            f"vector width: {info.get('vector_width_choice', 'not recorded')}",
            f"float32 FMA peak (measured): {per_thread}"]


if __name__ == "__main__":
    machine = describe()
    for line in summary_lines(machine, {1: fma_peak(1)}):
        print(line)
