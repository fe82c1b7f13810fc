"""A user's own training loop over the layer API: `models.lenet5(seed=0)`, SoftmaxCrossEntropy,
optim.SGD, batch 64, float32; median step time and page faults a step on 1 and 2 threads.

    python benchmarks/probes/model_step.py            # as a script of one's own runs: no special calls
    python benchmarks/probes/model_step.py --keep     # after minicnn.keep_freed_memory()
    python benchmarks/probes/model_step.py --layers   # faults and time of each layer's forward/backward (1 thread)

Run plain and --keep alternately, in separate processes (keep_freed_memory changes malloc for
the whole process), and compare the fault counts first: the times move with the machine's load.
"""
import collections
import resource
import sys
import time

import numba
import numpy as np

sys.modules["torch"] = None                       # measure minicnn alone
import minicnn  # noqa: E402
from minicnn import models, optim  # noqa: E402
from minicnn.layers import SoftmaxCrossEntropy  # noqa: E402

if "--keep" in sys.argv:
    print("keep_freed_memory:", minicnn.keep_freed_memory())
rng = np.random.default_rng(0)
x = rng.standard_normal((64, 1, 32, 32)).astype(np.float32)
labels = rng.integers(0, 10, 64)
model = models.lenet5(seed=0)
loss_fn = SoftmaxCrossEntropy()
opt = optim.SGD(model.parameters(), lr=0.01)
times, faults = collections.defaultdict(list), collections.defaultdict(list)


def minflt():
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt


def step():
    loss = loss_fn.forward(model.forward(x), labels)
    model.backward(loss_fn.backward())
    opt.step()
    return loss


def step_by_layer():
    """step(), with each layer's forward and backward timed and its faults counted."""
    h = x
    for i, layer in enumerate(model.layers):
        f0, t0 = minflt(), time.perf_counter()
        h = layer.forward(h)
        times[i, type(layer).__name__, "forward"].append(time.perf_counter() - t0)
        faults[i, type(layer).__name__, "forward"].append(minflt() - f0)
    loss_fn.forward(h, labels)
    g = loss_fn.backward()
    for i in reversed(range(len(model.layers))):
        layer = model.layers[i]
        f0, t0 = minflt(), time.perf_counter()
        g = layer.backward(g)
        times[i, type(layer).__name__, "backward"].append(time.perf_counter() - t0)
        faults[i, type(layer).__name__, "backward"].append(minflt() - f0)
    opt.step()


if "--layers" in sys.argv:
    numba.set_num_threads(1)
    for _ in range(10):
        step_by_layer()
    times.clear(), faults.clear()
    for _ in range(30):
        step_by_layer()
    for key in times:
        i, name, way = key
        print(f"  {name}#{i} {way:8s} {np.median(times[key]) * 1e3:7.3f} ms  {np.median(faults[key]):5.0f} faults")
    sys.exit(0)

for threads in (1, 2):
    numba.set_num_threads(threads)
    for _ in range(10):
        step()
    ts, f0 = [], minflt()
    for _ in range(60):
        t0 = time.perf_counter()
        step()
        ts.append(time.perf_counter() - t0)
    per_step = (minflt() - f0) / 60
    print(f"{'keep' if '--keep' in sys.argv else 'plain'} t={threads}: step {np.median(ts) * 1e3:.2f} ms "
          f"(median of 60), {per_step:.1f} page faults a step")
