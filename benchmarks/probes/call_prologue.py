"""The fixed cost of a public conv2d call, piece by piece: the argument checks in front of the
kernel (dtype_of, as_array, conv_geometry, bias_vector, the NaN checks, check_out), on LeNet-5's
conv3 shape (N64, 16 -> 120, 5x5 on 5x5), float32, one thread, medians of 5,000 calls of each
piece in microseconds; then the kernel alone against the whole call, interleaved.

    python benchmarks/probes/call_prologue.py
    PYTHONPATH=OTHER_CHECKOUT python benchmarks/probes/call_prologue.py     # to compare
"""
import time, numba, numpy as np, minicnn
from minicnn import argcheck, geometry, outarg
from minicnn.kernels import kernels
numba.set_num_threads(1)
rng = np.random.default_rng(0)
x = rng.standard_normal((64, 16, 5, 5)).astype(np.float32)
w = rng.standard_normal((120, 16, 5, 5)).astype(np.float32)
b = rng.standard_normal(120).astype(np.float32)
def med(fn, n=5000):
    ts = []
    for _ in range(n):
        t = time.perf_counter_ns(); fn(); ts.append(time.perf_counter_ns() - t)
    return np.median(ts) / 1e3
dt = argcheck.dtype_of(x, w, b)
g = geometry.conv_geometry("conv2d", x.shape, w.shape, 1, 0, 1, False)
bb = geometry.bias_vector(b, 120, dt, True)
K = kernels("fast")["conv2d_forward"]
out = minicnn.conv2d(x, w, b)
for name, fn in [
    ("dtype_of", lambda: argcheck.dtype_of(x, w, b)),
    ("as_array x", lambda: argcheck.as_array("x", x, 4, "(N, C, H, W)", dt)),
    ("geometry", lambda: geometry.conv_geometry("conv2d", x.shape, w.shape, 1, 0, 1, False)),
    ("bias_vector", lambda: geometry.bias_vector(b, 120, dt, True)),
    ("check_finite x", lambda: argcheck.check_finite("x", x)),
    ("check_finite w", lambda: argcheck.check_finite("w", w)),
    ("check_out None", lambda: outarg.check_out("conv2d", "out", None, (64, 120, 1, 1), dt, {"x": x, "weight": w, "bias": bb})),
    ("kernels()", lambda: kernels("fast")),
    ("kernel", lambda: K(x, w, bb, g, None)),
    ("conv2d", lambda: minicnn.conv2d(x, w, b)),
    ("conv2d nocheck", lambda: minicnn.conv2d(x, w, b, check_finite=False)),
]:
    print(f"{name:16s} {med(fn):8.2f} us")
print("interleaved:")
import itertools
fns = {"kernel": lambda: K(x, w, bb, g, None), "conv2d": lambda: minicnn.conv2d(x, w, b), "conv2d nocheck": lambda: minicnn.conv2d(x, w, b, check_finite=False)}
res = {k: [] for k in fns}
for r in range(2000):
    for k, fn in fns.items():
        t = time.perf_counter_ns(); fn(); res[k].append(time.perf_counter_ns() - t)
for k, v in res.items(): print(f"{k:16s} {np.median(v)/1e3:8.2f} us")
