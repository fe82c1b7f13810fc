"""OpenBLAS's spinning workers against the next Numba kernel, two threads.

After a pause of P seconds, one small NumPy matrix product (64x120 by 120x84 and others), then
the large convolution timed; and the same convolution after a pause only.  If the product's
workers still spin, the convolution gets half the cores.

    python benchmarks/probes/blas_spin.py
"""
import time

import numba
import numpy as np
from threadpoolctl import threadpool_limits

import minicnn

rng = np.random.default_rng(0)
x = rng.standard_normal((64, 32, 32, 32)).astype(np.float32)
w = rng.standard_normal((64, 32, 3, 3)).astype(np.float32)
b = np.zeros(64, np.float32)
numba.set_num_threads(2)


def conv_after(before, pause, reps=8):
    ts = []
    for _ in range(reps):
        time.sleep(0.3)
        before()
        time.sleep(pause)
        t0 = time.perf_counter()
        minicnn.conv2d(x, w, b, padding=1)
        ts.append(time.perf_counter() - t0)
    return np.median(ts) * 1e3


minicnn.conv2d(x, w, b, padding=1)
with threadpool_limits(2, user_api="blas"):
    print(f"no product before:              {conv_after(lambda: None, 0):6.1f} ms")
    for mkn in ((64, 400, 120), (64, 120, 84)):
        A = rng.standard_normal(mkn[:2]).astype(np.float32)
        B = rng.standard_normal(mkn[1:]).astype(np.float32)
        for pause in (0, 0.06, 0.12, 0.25):
            print(f"after a {mkn} product, {pause:4.2f} s pause: {conv_after(lambda: A @ B, pause):6.1f} ms")
