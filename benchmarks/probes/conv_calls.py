"""Public conv2d / conv2d_backward calls on LeNet-5's conv2 and conv3 shapes and a tiny 2x1x8x8
input, float32, one thread (or the count given), medians of 1,500 interleaved rounds in
microseconds.  Used to compare two checkouts, or one checkout with two Numba caches, in
alternating processes:

    for i in 1 2 3; do PYTHONPATH=OLD python benchmarks/probes/conv_calls.py; python benchmarks/probes/conv_calls.py; done
"""
import time, sys, numba, numpy as np, minicnn
numba.set_num_threads(int(sys.argv[1]) if len(sys.argv) > 1 else 1)
rng = np.random.default_rng(0)
cases = {}
for name, (n, c, h, k, ks) in {"conv2": (64, 6, 14, 16, 5), "conv3": (64, 16, 5, 120, 5), "tiny": (2, 1, 8, 2, 3)}.items():
    x = rng.standard_normal((n, c, h, h)).astype(np.float32); w = rng.standard_normal((k, c, ks, ks)).astype(np.float32)
    b = rng.standard_normal(k).astype(np.float32); y = minicnn.conv2d(x, w, b); g = np.ones_like(y)
    minicnn.conv2d_backward(g, x, w)
    cases[name + " fwd"] = (lambda x=x, w=w, b=b: minicnn.conv2d(x, w, b))
    cases[name + " bwd"] = (lambda g=g, x=x, w=w: minicnn.conv2d_backward(g, x, w))
res = {k: [] for k in cases}
for r in range(1500):
    for k, fn in cases.items():
        t = time.perf_counter_ns(); fn(); res[k].append(time.perf_counter_ns() - t)
print(minicnn.__file__, " ".join(f"{k}={np.median(v)/1e3:.1f}" for k, v in res.items()))
