"""A user's plain loop over conv2d / conv2d_backward: time and page faults per call, against the
same loop passing `out=` arrays, interleaved in one process (medians), for the benchmark's layers.

    python benchmarks/probes/conv_loop_faults.py            # glibc's default malloc settings
    python benchmarks/probes/conv_loop_faults.py --keep     # after minicnn.keep_freed_memory()
    PYTHONPATH=/other/checkout python benchmarks/probes/conv_loop_faults.py   # a minicnn without out=

"plain" is what a script of one's own does (every call allocates its results); "out=" reuses
one set of result arrays.  Run it with and without --keep: "plain" without --keep against
either column with --keep is the distance the issue asks to close (the tuned figure).
"""
import resource
import statistics
import sys
import time

import numba
import numpy as np

import minicnn as m

ROUNDS = 15
LAYERS = {"conv1": (64, 1, 32, 6, 5, 1, 0), "conv2": (64, 6, 14, 16, 5, 1, 0), "large": (64, 32, 32, 64, 3, 1, 1),
          "stride2": (32, 16, 64, 32, 3, 2, 1)}


def faults():
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt


def main():
    if "--keep" in sys.argv:
        print("keep_freed_memory:", m.keep_freed_memory())
    threads = int(sys.argv[sys.argv.index("--threads") + 1]) if "--threads" in sys.argv else 1
    numba.set_num_threads(threads)
    print(f"minicnn from {m.__file__}, {threads} thread(s), medians of {ROUNDS} interleaved rounds")
    rng = np.random.default_rng(0)
    for name, (n, c, hw, k, ks, s, p) in LAYERS.items():
        x = rng.standard_normal((n, c, hw, hw)).astype(np.float32)
        w = (rng.standard_normal((k, c, ks, ks)) / np.sqrt(c * ks * ks)).astype(np.float32)
        b = np.zeros(k, np.float32)
        y = m.conv2d(x, w, b, s, p)
        g = rng.standard_normal(y.shape).astype(np.float32)
        outs = (np.empty_like(y), (np.empty_like(x), np.empty_like(w), np.empty_like(b)))
        calls = {"fwd plain": lambda: m.conv2d(x, w, b, s, p), "bwd plain": lambda: m.conv2d_backward(g, x, w, s, p)}
        try:
            m.conv2d(x, w, b, s, p, out=outs[0])
            calls["fwd out="] = lambda: m.conv2d(x, w, b, s, p, out=outs[0])
            calls["bwd out="] = lambda: m.conv2d_backward(g, x, w, s, p, out=outs[1])
        except TypeError:
            pass                                            # a minicnn without out=
        times = {key: [] for key in calls}
        flts = {key: [] for key in calls}
        for fn in calls.values():
            fn(), fn()
        for _ in range(ROUNDS):
            for key, fn in calls.items():
                f0, t0 = faults(), time.perf_counter()
                fn()
                times[key].append(time.perf_counter() - t0)
                flts[key].append(faults() - f0)
        print(f"{name:8s} " + " | ".join(f"{key} {statistics.median(times[key]) * 1e3:7.2f} ms "
                                         f"{statistics.median(flts[key]):6.0f} faults" for key in calls), flush=True)


if __name__ == "__main__":
    main()
