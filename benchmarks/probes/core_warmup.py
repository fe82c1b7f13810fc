"""How long the second core takes to come back to speed after a pause, two threads: conv2 forward
(LeNet-5, batch 64) called six times in a row after an 18 ms busy loop, an 18 ms sleep or
nothing, minicnn and (if installed) PyTorch; medians over 30 repetitions of each position.

    python benchmarks/probes/core_warmup.py
"""
import time

import numba
import numpy as np

import minicnn

try:
    import torch
except ImportError:
    torch = None

rng = np.random.default_rng(0)
x = rng.standard_normal((64, 6, 14, 14)).astype(np.float32)
w = rng.standard_normal((16, 6, 5, 5)).astype(np.float32)
b = np.zeros(16, np.float32)
numba.set_num_threads(2)
calls = {"minicnn": lambda: minicnn.conv2d(x, w, b)}
if torch is not None:
    torch.set_num_threads(2)
    xt, wt, bt = map(torch.from_numpy, (x, w, b))

    def torch_conv():
        with torch.no_grad():
            torch.nn.functional.conv2d(xt, wt, bt)
    calls["torch"] = torch_conv


def busy(seconds):
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        pass


for lib, call in calls.items():
    call()
    for label, pause in (("busy 18 ms", lambda: busy(0.018)), ("sleep 18 ms", lambda: time.sleep(0.018)),
                         ("no pause", lambda: None)):
        rows = []
        for _ in range(30):
            pause()
            row = []
            for _ in range(6):
                t0 = time.perf_counter()
                call()
                row.append(time.perf_counter() - t0)
            rows.append(row)
        med = np.median(np.array(rows), axis=0) * 1e3
        print(f"{lib:8s} after {label:12s}: " + " ".join(f"{v:.3f}" for v in med) + " ms")
