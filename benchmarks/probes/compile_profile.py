"""Where a first LeNet-5 training step's compile time goes: each compiled function's own time
(its callees' compiles taken out), from Numba's `numba:compile` events.  Run it with an empty
private cache, or everything is loaded instead of compiled:

    rm -rf /tmp/cp && NUMBA_CACHE_DIR=/tmp/cp python benchmarks/probes/compile_profile.py [--top 30]
"""
import collections
import sys
import time

t0 = time.perf_counter()
from numba.core import event  # noqa: E402

_stack = []
own = collections.defaultdict(float)       # function and signature -> seconds, callees excluded
total = collections.defaultdict(float)     # the same, callees included


class _Listener(event.Listener):
    def on_start(self, ev):
        name = ev.data["dispatcher"].py_func.__qualname__ + str(ev.data["args"])
        _stack.append([name, time.perf_counter(), 0.0])

    def on_end(self, ev):
        name, start, children = _stack.pop()
        spent = time.perf_counter() - start
        total[name] += spent
        own[name] += spent - children
        if _stack:
            _stack[-1][2] += spent


event.register("numba:compile", _Listener())

import numpy as np  # noqa: E402

from minicnn import models, optim  # noqa: E402
from minicnn.layers import SoftmaxCrossEntropy  # noqa: E402


def main():
    top = int(sys.argv[sys.argv.index("--top") + 1]) if "--top" in sys.argv else 30
    rng = np.random.default_rng(0)
    model, loss_fn = models.lenet5(seed=0), SoftmaxCrossEntropy()
    opt = optim.SGD(model.parameters(), lr=0.01)
    xb = rng.standard_normal((16, 1, 32, 32)).astype(np.float32)
    yb = rng.integers(0, 10, 16)
    t1 = time.perf_counter()
    loss_fn.forward(model.forward(xb), yb)
    model.backward(loss_fn.backward(), input_grad=False)
    opt.step()
    t2 = time.perf_counter()
    print(f"import {t1 - t0:.2f} s, first step {t2 - t1:.2f} s, of which compiling {sum(own.values()):.2f} s")
    for name, seconds in sorted(own.items(), key=lambda kv: -kv[1])[:top]:
        print(f"{seconds:7.2f} own {total[name]:7.2f} with callees  {name[:140]}")


if __name__ == "__main__":
    main()
