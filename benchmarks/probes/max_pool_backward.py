"""Where does max-pool backward's 2x2 path spend its time, and was the offsets rewrite worth it?

Three single-threaded versions of the same plane-by-plane pass, interleaved, medians:

    kernel   minicnn's kernel (minicnn/kernels/fast/pool.py, max_pool_backward_pairs): winners
             as unsigned offsets into the flattened pair of rows, one store per window
    codes    the winners as the kernel before 2026-12-03 kept them, codes 0-3 (int64), stored
             at dst[2i + (w >> 1), 2j + (w & 1)] (signed indices, a wrap check per store), in a
             function of its own as the kernel is now
    zero     only the kernel's zeroing of the gradient (the floor of any version that writes it)
    call     minicnn.max_pool2d_backward(g, x, 2, out=...) (the checks and dispatch on top)

The three agree bit for bit (checked first).  Shapes: the benchmark's pooling layer (N64 C32
32x32) and LeNet-5's first pool (N64 C6 28x28).

    python benchmarks/probes/max_pool_backward.py [--reps 200]

On the 2-core AMD EPYC Zen 4 of 2026-12-03 (AVX2 build), three runs with --reps 300, kernel /
codes / zero in ms: N64 C32 32x32 1.01 / 1.09 / 0.34, 1.00 / 1.04 / 0.37, 0.98 / 0.97 / 0.33;
LeNet pool 0.18 / 0.20 / 0.02, 0.18 / 0.20 / 0.03, 0.14 / 0.16 / 0.02.  Most of the gain over the
kernel before (13-16%) came from the 2x2 path becoming a function of its own; see
docs/performance.md, "What is left".
"""
import argparse
import statistics
import time

import minicnn  # first: its vector-width choice must be made before Numba compiles anything
import numba
import numpy as np
from numba import njit

from minicnn.kernels.fast.pool import max_pool_backward_pairs


@njit(cache=True)
def codes(grad_out, xp, grad_xp):
    """The previous 2x2 path: each window's winner as a code 0-3, then a store at its cell."""
    n_batch, n_chan, out_h, out_w = grad_out.shape
    win = np.empty(out_w, dtype=np.int64)
    for task in range(n_batch * n_chan):
        src = xp[task // n_chan, task % n_chan]
        dst = grad_xp[task // n_chan, task % n_chan]
        for r in range(2 * out_h, dst.shape[0]):
            dst[r][:] = 0
        for i in range(out_h):
            g = grad_out[task // n_chan, task % n_chan, i]
            r0, r1 = src[2 * i], src[2 * i + 1]
            dst[2 * i][:] = 0
            dst[2 * i + 1][:] = 0
            for j in range(out_w):
                a, b, c, d = r0[2 * j], r0[2 * j + 1], r1[2 * j], r1[2 * j + 1]
                w = 1 if b > a else 0
                best = b if b > a else a
                w = 2 if c > best else w
                best = c if c > best else best
                win[j] = 3 if d > best else w
            for j in range(out_w):
                dst[2 * i + (win[j] >> 1), 2 * j + (win[j] & 1)] = g[j]


@njit(cache=True)
def zero(grad_xp):
    for task in range(grad_xp.shape[0] * grad_xp.shape[1]):
        grad_xp[task // grad_xp.shape[1], task % grad_xp.shape[1]][:, :] = 0


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--reps", type=int, default=200)
    args = ap.parse_args()
    numba.set_num_threads(1)
    rng = np.random.default_rng(0)
    for shape in ((64, 32, 32, 32), (64, 6, 28, 28)):
        x = rng.standard_normal(shape).astype(np.float32)
        g = rng.standard_normal(shape[:2] + (shape[2] // 2, shape[3] // 2)).astype(np.float32)
        outs = [np.full_like(x, np.nan) for _ in range(4)]
        runs = {
            "kernel": lambda: max_pool_backward_pairs(0, 1, g, x, outs[0]),
            "codes": lambda: codes(g, x, outs[1]),
            "zero": lambda: zero(outs[2]),
            "call": lambda: minicnn.max_pool2d_backward(g, x, 2, out=outs[3]),
        }
        for run in runs.values():
            run()
        assert np.array_equal(outs[0], outs[1]) and np.array_equal(outs[0], outs[3])
        times = {name: [] for name in runs}
        for _ in range(args.reps):
            for name, run in runs.items():
                t = time.perf_counter()
                run()
                times[name].append(time.perf_counter() - t)
        print("N%d C%d %dx%d" % shape, "  ".join(f"{k} {statistics.median(v) * 1e3:.3f} ms" for k, v in times.items()))


if __name__ == "__main__":
    main()
