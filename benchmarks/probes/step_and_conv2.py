"""Running time of what the thread launcher touches: a LeNet-5 training step (batch 64, float32,
`input_grad=False` as minicnn.train does) and LeNet-5's conv2 forward (64x6x14x14, 16 5x5 filters,
`out=`), medians in ms on one and on two threads.  To compare two checkouts, run it alternately
in fresh processes, each after one warm-up run (so that its cache is filled):

    for i in 1 2 3; do for s in OLD NEW; do PYTHONPATH=$s python benchmarks/probes/step_and_conv2.py; done; done
"""
import statistics
import sys
import time

import numba
import numpy as np

sys.modules["torch"] = None                       # measure minicnn alone
import minicnn  # noqa: E402
from minicnn import models, optim  # noqa: E402
from minicnn.layers import SoftmaxCrossEntropy  # noqa: E402


def median_ms(fn, n):
    times = []
    for _ in range(n):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times) * 1e3


def main():
    rng = np.random.default_rng(0)
    model, loss_fn = models.lenet5(seed=0), SoftmaxCrossEntropy()
    opt = optim.SGD(model.parameters(), lr=0.01)
    xb = rng.standard_normal((64, 1, 32, 32)).astype(np.float32)
    yb = rng.integers(0, 10, 64)
    x2 = rng.standard_normal((64, 6, 14, 14)).astype(np.float32)
    w2 = rng.standard_normal((16, 6, 5, 5)).astype(np.float32)
    out = minicnn.conv2d(x2, w2)

    def step():
        loss_fn.forward(model.forward(xb), yb)
        model.backward(loss_fn.backward(), input_grad=False)
        opt.step()

    results = {}
    for threads in (1, 2):
        numba.set_num_threads(min(threads, numba.config.NUMBA_NUM_THREADS))
        for _ in range(5):
            step()
        results[f"step t{threads}"] = median_ms(step, 40)
        results[f"conv2 fwd t{threads}"] = median_ms(lambda: minicnn.conv2d(x2, w2, out=out), 60)
    print(minicnn.__file__, " ".join(f"{k}={v:.3f}" for k, v in results.items()))


if __name__ == "__main__":
    main()
