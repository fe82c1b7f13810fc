"""Pieces of this session's kernel changes, one thread, interleaved medians in one process:
the per-image against the batch layout of the wide convolution (the stride-2 and large layers),
the one-pass NaN check against np.isfinite, and the Numba dense kernels against OpenBLAS.

    python benchmarks/probes/kernel_pieces.py
"""
import statistics
import time

import numba
import numpy as np
from threadpoolctl import threadpool_limits

from minicnn.argcheck import all_finite
from minicnn.geometry import conv_geometry
from minicnn.kernels import fast
from minicnn.kernels.fast import dense as fast_dense
from minicnn.kernels.fast.layout import PER_IMAGE, WIDE

numba.set_num_threads(1)
rng = np.random.default_rng(0)


def medians(calls, rounds=25):
    for f in calls.values():
        f()
    times = {k: [] for k in calls}
    for _ in range(rounds):
        for k, f in calls.items():
            t0 = time.perf_counter()
            f()
            times[k].append(time.perf_counter() - t0)
    return "  ".join(f"{k} {statistics.median(v) * 1e3:.3f} ms" for k, v in times.items())


for name, (n, c, hw, k, s, p) in {"stride-2": (32, 16, 64, 32, 2, 1), "large": (64, 32, 32, 64, 1, 1)}.items():
    x = rng.standard_normal((n, c, hw, hw)).astype(np.float32)
    w = rng.standard_normal((k, c, 3, 3)).astype(np.float32)
    b = np.zeros(k, np.float32)
    g = conv_geometry("conv2d", x.shape, w.shape, s, p, 1)
    print(f"{name} forward:", medians({f"per-image={v == PER_IMAGE}": (lambda v=v: fast.conv2d_forward(x, w, b, g,
                                                                                                     layout=v))
                                       for v in (PER_IMAGE, WIDE)}))
x = rng.standard_normal((32, 16, 64, 64)).astype(np.float32)
print("NaN check, 8 MB:", medians({"np.isfinite": lambda: bool(np.all(np.isfinite(x))),
                                   "one pass": lambda: all_finite(x)}))
with threadpool_limits(1, user_api="blas"):
    for (nb, i, o) in ((64, 400, 120), (64, 120, 84)):
        x = rng.standard_normal((nb, i)).astype(np.float32)
        w = rng.standard_normal((o, i)).astype(np.float32)
        b = rng.standard_normal(o).astype(np.float32)
        g = rng.standard_normal((nb, o)).astype(np.float32)
        print(f"dense {nb}x{i} -> {o}:", medians({
            "numba fwd": lambda: fast_dense.dense_forward(x, w, b), "BLAS fwd": lambda: x @ w.T + b,
            "numba bwd": lambda: fast_dense.dense_backward(g, x, w),
            "BLAS bwd": lambda: (g @ w, g.T @ x, g.sum(axis=0))}, rounds=200))
