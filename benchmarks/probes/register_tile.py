"""Does a register tile beat the three-tap pass?  The pass of `minicnn/kernels/fast/passes.py`
(`taps_pass`: three taps x four output channels over a long run, the accumulators in L1) against
two register tiles that keep their accumulators in ymm registers across every tap of every
input channel and store them once:

    tile4x16   four channels x 16 positions (8 accumulators; per tap 2 loads, 4 broadcasts, 8 FMAs)
    tile2x48   two channels x 48 positions, called twice (12 accumulators; per tap 6 loads,
               2 broadcasts, 12 FMAs)

Both read the input through one flat array and precomputed unsigned offsets (a plane's base plus
the tap's offset), so their inner loops compile to exactly that (no bounds arithmetic; check with
`--asm`), and both give bit for bit the pass's sums.  The data are the benchmark's large layer
for one image and one block of four filters: C input planes 34 x 34 (padded 32 x 32), 3 x 3 taps,
1056 output positions (the wide layout).  C = 4 keeps everything in L1; C = 32 is the layer.

    python benchmarks/probes/register_tile.py [--channels 4,32] [--reps 1000] [--asm]

Prints GFLOP/s (medians of reps calls, the three alternating).  On the 2-core AMD EPYC Zen 4 of
2026-12-03 (AVX2 build; FMA peak 107 GFLOP/s a thread): C=4: pass 55-81, tiles 30-46; C=32: pass
70-80, tiles 53-66; with every tap's offset a multiple of 8 (no misaligned load) the same.
"""
import argparse
import re
import statistics
import sys
import time
from pathlib import Path

import minicnn  # first: its vector-width choice must be made before Numba compiles anything
import numpy as np
from llvmlite import ir
from numba import carray, njit, types
from numba.core import cgutils
from numba.extending import intrinsic

from minicnn.kernels.fast import layout
from minicnn.kernels.fast.passes import FMA, taps_pass


@intrinsic
def _stack(typingctx, n):
    """A float32 buffer of n (a literal) elements on the stack: LLVM keeps it in registers when
    every index into it is a constant after unrolling."""
    if not isinstance(n, types.IntegerLiteral):
        return None
    size = n.literal_value

    def codegen(context, builder, signature, args):
        return cgutils.alloca_once(builder, ir.FloatType(), size=size)
    return types.CPointer(types.float32)(n), codegen


@njit(fastmath=FMA)
def tile4x16(a0, a1, a2, a3, flat, w_t, base, start, length):
    """a_q[p] += sum_t w_t[t, q] * flat[base[t] + start + p] for q < 4; length a multiple of 16."""
    acc = carray(_stack(64), (64,))
    origin = np.uint64(start)
    for p0 in range(0, length, 16):
        for i in range(16):
            acc[i] = a0[p0 + i]
            acc[16 + i] = a1[p0 + i]
            acc[32 + i] = a2[p0 + i]
            acc[48 + i] = a3[p0 + i]
        at = origin + np.uint64(p0)
        for t in range(base.shape[0]):
            o = base[t] + at                  # unsigned: no negative-index arithmetic per load
            c0, c1, c2, c3 = w_t[t, 0], w_t[t, 1], w_t[t, 2], w_t[t, 3]
            for i in range(16):
                x = flat[o + np.uint64(i)]
                acc[i] += c0 * x
                acc[16 + i] += c1 * x
                acc[32 + i] += c2 * x
                acc[48 + i] += c3 * x
        for i in range(16):
            a0[p0 + i] = acc[i]
            a1[p0 + i] = acc[16 + i]
            a2[p0 + i] = acc[32 + i]
            a3[p0 + i] = acc[48 + i]


@njit(fastmath=FMA)
def tile2x48(a0, a1, flat, w_t, q, base, start, length):
    """a0/a1 += channels q and q + 1 as in tile4x16; length a multiple of 48."""
    acc = carray(_stack(96), (96,))
    origin = np.uint64(start)
    for p0 in range(0, length, 48):
        for i in range(48):
            acc[i] = a0[p0 + i]
            acc[48 + i] = a1[p0 + i]
        at = origin + np.uint64(p0)
        for t in range(base.shape[0]):
            o = base[t] + at
            c0, c1 = w_t[t, q], w_t[t, q + 1]
            for i in range(48):
                x = flat[o + np.uint64(i)]
                acc[i] += c0 * x
                acc[48 + i] += c1 * x
        for i in range(48):
            a0[p0 + i] = acc[i]
            a1[p0 + i] = acc[48 + i]


def measure(n_chan, reps, aligned=False, show_asm=False):
    rng = np.random.default_rng(0)
    row, length = 34, 1056                      # 1056: a multiple of 16 and of 48
    plane = 34 * 34 + 64 if not aligned else 34 * 34 + 640
    planes = rng.random((n_chan, plane), dtype=np.float32)
    flat = planes.reshape(-1)
    tplane, toff = layout.channel_taps(n_chan, 3, 3, 1, 1, 1, 1, row, 1)
    if aligned:
        toff = toff * 8                         # every load starts on a 32-byte boundary
    base = (tplane * plane + toff).astype(np.uint64)
    w4 = rng.random((4, n_chan * 9), dtype=np.float32)
    w_t = np.ascontiguousarray(w4.T)
    outs = {k: np.zeros((4, length + 16), np.float32) for k in ("pass", "tile4x16", "tile2x48")}
    rows = {k: [v[q, :length] for q in range(4)] for k, v in outs.items()}
    a, b, d = rows["pass"], rows["tile4x16"], rows["tile2x48"]

    def pair():
        tile2x48(d[0], d[1], flat, w_t, 0, base, 0, length)
        tile2x48(d[2], d[3], flat, w_t, 2, base, 0, length)
    calls = {"pass": lambda: taps_pass(a[0], a[1], a[2], a[3], planes, w4, tplane, toff, 0, length),
             "tile4x16": lambda: tile4x16(b[0], b[1], b[2], b[3], flat, w_t, base, 0, length),
             "tile2x48": pair}
    for call in calls.values():
        call()
    for v in outs.values():
        v[:] = 0
    for call in calls.values():
        call()
    for k in ("tile4x16", "tile2x48"):
        assert np.array_equal(outs[k], outs["pass"]), k    # bit for bit the pass's sums
    if show_asm:
        for fn in (tile4x16, tile2x48):
            asm = next(iter(fn.inspect_asm().values()))
            print(fn.__name__, "FMA instructions:", len(re.findall("vfmadd", asm)))
    times = {k: [] for k in calls}
    for _ in range(reps):
        for k, call in calls.items():
            t0 = time.perf_counter()
            call()
            times[k].append(time.perf_counter() - t0)
    flops = 2 * 4 * n_chan * 9 * length
    return {k: round(flops / statistics.median(v) / 1e9, 1) for k, v in times.items()}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--channels", default="4,32")
    ap.add_argument("--reps", type=int, default=1000)
    ap.add_argument("--asm", action="store_true")
    args = ap.parse_args()
    import numba
    numba.set_num_threads(1)
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))   # benchmarks/: machine.py
    from machine import describe, fma_peak
    print(describe(), "FMA peak, one thread:", round(fma_peak(1), 1), "GFLOP/s")
    for c in (int(v) for v in args.channels.split(",")):
        for aligned in (False, True):
            print(f"C={c} aligned={aligned}: GFLOP/s", measure(c, args.reps, aligned, args.asm))


if __name__ == "__main__":
    main()
