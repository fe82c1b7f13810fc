"""Time minicnn.cuda's kernels on a real GPU, with and without host <-> device copies.

    python benchmarks/cuda_bench.py                 # default layer: N=32, C=K=64, 56x56, 3x3
    python benchmarks/cuda_bench.py --repeats 50 --batch 8 --channels 32 --size 28

For each op two timings are taken, interleaved (one of each per round, so clock
changes and other load hit both alike), and the median of the rounds is printed:
  device     inputs already on the GPU, outputs left there (what a network whose
             activations stay on the GPU pays); the clock stops after
             cuda.synchronize(), so the kernels have finished
  transfers  NumPy in, NumPy out: copies to the GPU, kernels, copies back
Both use check_finite=False, so the two differ by the copies alone.  The first call
of every op (compilation) is not timed.

Without a GPU (or under NUMBA_ENABLE_CUDASIM=1, whose timings mean nothing) it says
so and exits with status 0.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import minicnn.cuda as mc  # noqa: E402
from numba import cuda  # noqa: E402  (numba-cuda when installed, as minicnn.cuda uses)


def median_ms(samples):
    return 1e3 * statistics.median(samples)


def timed(fn):
    start = time.perf_counter()
    fn()
    cuda.synchronize()
    return time.perf_counter() - start


def cases(n, c, size, k, dtype, rng):
    x = rng.standard_normal((n, c, size, size)).astype(dtype)
    w = (rng.standard_normal((k, c, 3, 3)) / np.sqrt(9 * c)).astype(dtype)
    b = rng.standard_normal(k).astype(dtype)
    gy = rng.standard_normal((n, k, size, size)).astype(dtype)       # conv2d(x, w, padding=1) shape
    gp = rng.standard_normal((n, c, size // 2, size // 2)).astype(dtype)  # pool 2x2 stride 2
    host = dict(x=x, w=w, b=b, gy=gy, gp=gp)
    return [
        ("conv2d naive", lambda a: mc.conv2d(a["x"], a["w"], a["b"], padding=1, kernel="naive",
                                             check_finite=False)),
        ("conv2d tiled", lambda a: mc.conv2d(a["x"], a["w"], a["b"], padding=1, kernel="tiled",
                                             check_finite=False)),
        ("conv2d_backward", lambda a: mc.conv2d_backward(a["gy"], a["x"], a["w"], padding=1)),
        ("max_pool2d 2x2", lambda a: mc.max_pool2d(a["x"], 2, check_finite=False)),
        ("max_pool2d_backward", lambda a: mc.max_pool2d_backward(a["gp"], a["x"], 2)),
        ("avg_pool2d 2x2", lambda a: mc.avg_pool2d(a["x"], 2, check_finite=False)),
        ("avg_pool2d_backward", lambda a: mc.avg_pool2d_backward(a["gp"], a["x"], 2)),
    ], host


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--channels", type=int, default=64, help="C = K")
    parser.add_argument("--size", type=int, default=56, help="H = W")
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--float64", action="store_true")
    parser.add_argument("--allow-simulator", action="store_true",
                        help="run even on the simulator (to test this script; the numbers are meaningless)")
    args = parser.parse_args(argv)

    if mc.simulator_enabled() and not args.allow_simulator:
        print("minicnn.cuda is running on the CUDA simulator (NUMBA_ENABLE_CUDASIM=1): timings would be "
              "meaningless, so there is nothing to benchmark. Unset it and run on a machine with a GPU.")
        return 0
    if not mc.is_available():
        print(f"No CUDA GPU found (target: {mc.target_name()}); nothing to benchmark.")
        return 0

    dtype = np.float64 if args.float64 else np.float32
    rng = np.random.default_rng(0)
    ops, host = cases(args.batch, args.channels, args.size, args.channels, dtype, rng)
    device = {name: cuda.to_device(a) for name, a in host.items()}
    cuda.synchronize()

    if mc.simulator_enabled():
        where = "the CUDA simulator (timings meaningless)"
    else:
        dev = cuda.get_current_device()
        name = dev.name.decode() if isinstance(dev.name, bytes) else dev.name
        where = f"{name} (compute capability {dev.compute_capability[0]}.{dev.compute_capability[1]})"
    print(f"minicnn.cuda on {where}; target {mc.target_name()}")
    print(f"x ({args.batch}, {args.channels}, {args.size}, {args.size}) {np.dtype(dtype).name}, "
          f"weight ({args.channels}, {args.channels}, 3, 3), padding 1; pools 2x2 stride 2; "
          f"median of {args.repeats} interleaved rounds\n")
    print(f"{'op':22s} {'device (ms)':>12s} {'transfers (ms)':>15s} {'copies add':>11s}")
    for name, op in ops:
        op(device), op(host)               # compile, and first-touch allocations
        cuda.synchronize()
        on_device, with_copies = [], []
        for _ in range(args.repeats):
            on_device.append(timed(lambda: op(device)))
            with_copies.append(timed(lambda: op(host)))
        d, t = median_ms(on_device), median_ms(with_copies)
        print(f"{name:22s} {d:12.3f} {t:15.3f} {t / d:10.1f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
