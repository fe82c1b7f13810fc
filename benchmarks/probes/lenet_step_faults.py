"""Page faults and per-op times of a functional LeNet-5 step at batch 64 (the benchmark's step),
1 and 2 threads, in a process without PyTorch.

    python benchmarks/probes/lenet_step_faults.py           # glibc's default thresholds
    python benchmarks/probes/lenet_step_faults.py --keep    # after minicnn.keep_freed_memory()
"""
import collections
import resource
import sys
import time
from pathlib import Path

import numba
import numpy as np

sys.modules["torch"] = None                       # measure minicnn alone
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import cpu_bench as cb  # noqa: E402
import minicnn as m  # noqa: E402

if "--keep" in sys.argv:
    print("keep_freed_memory:", m.keep_freed_memory())
rng = np.random.default_rng(2)
x = rng.standard_normal((64, 1, 32, 32)).astype(np.float32)
y = rng.integers(0, 10, 64)
P = cb.lenet_params(rng)
times, faults = collections.defaultdict(list), collections.defaultdict(list)


def timed(name, f, *a, **k):
    f0 = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    t0 = time.perf_counter()
    r = f(*a, **k)
    times[name].append(time.perf_counter() - t0)
    faults[name].append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - f0)
    return r


def step():
    a1 = timed("conv1 f", m.conv2d, x, P["w1"], P["b1"]); h1 = timed("tanh1", m.tanh, a1)
    p1 = timed("pool1 f", m.avg_pool2d, h1, 2)
    a2 = timed("conv2 f", m.conv2d, p1, P["w2"], P["b2"]); h2 = timed("tanh2", m.tanh, a2)
    p2 = timed("pool2 f", m.avg_pool2d, h2, 2)
    a3 = timed("conv3 f", m.conv2d, p2, P["w3"], P["b3"]); h3 = timed("tanh3", m.tanh, a3).reshape(64, 120)
    a4 = timed("dense4 f", m.dense, h3, P["w4"], P["b4"]); h4 = timed("tanh4", m.tanh, a4)
    a5 = timed("dense5 f", m.dense, h4, P["w5"], P["b5"])
    timed("loss", m.softmax_cross_entropy, a5, y)
    g5 = timed("loss b", m.softmax_cross_entropy_backward, a5, y)
    gh4, gw5, gb5 = timed("dense5 b", m.dense_backward, g5, h4, P["w5"])
    t4 = timed("tanh4 b", m.tanh_backward, gh4, a4, y=h4)
    gh3, gw4, gb4 = timed("dense4 b", m.dense_backward, t4, h3, P["w4"])
    ga3 = timed("tanh3 b", m.tanh_backward, gh3.reshape(a3.shape), a3, y=h3.reshape(a3.shape))
    gp2, gw3, gb3 = timed("conv3 b", m.conv2d_backward, ga3, p2, P["w3"])
    q2 = timed("pool2 b", m.avg_pool2d_backward, gp2, h2, 2); ga2 = timed("tanh2 b", m.tanh_backward, q2, a2, y=h2)
    gp1, gw2, gb2 = timed("conv2 b", m.conv2d_backward, ga2, p1, P["w2"])
    q1 = timed("pool1 b", m.avg_pool2d_backward, gp1, h1, 2); ga1 = timed("tanh1 b", m.tanh_backward, q1, a1, y=h1)
    _, gw1, gb1 = timed("conv1 b", m.conv2d_backward, ga1, x, P["w1"])
    for name, grad in (("w1", gw1), ("b1", gb1), ("w2", gw2), ("b2", gb2), ("w3", gw3), ("b3", gb3),
                       ("w4", gw4), ("b4", gb4), ("w5", gw5), ("b5", gb5)):
        P[name] -= np.float32(0.01) * grad


for threads in (1, 2):
    numba.set_num_threads(threads)
    with cb.blas_threads(threads):
        for _ in range(10):
            step()
        times.clear(), faults.clear()
        total, f0 = [], resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        for _ in range(60):
            t0 = time.perf_counter()
            step()
            total.append(time.perf_counter() - t0)
        per_step = (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - f0) / 60
    print(f"{threads} thread(s): step {np.median(total) * 1e3:.2f} ms (median of 60), {per_step:.1f} page faults a step")
    for k in times:
        print(f"  {k:9s} {np.median(times[k]) * 1e3:7.3f} ms  {np.median(faults[k]):6.0f} faults")
