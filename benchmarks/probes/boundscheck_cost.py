"""What a bounds-checked build of minicnn's kernels costs: the setting every course notebook runs
with (NUMBA_BOUNDSCHECK=1), before and after minicnn/unchecked.py.

    python benchmarks/probes/boundscheck_cost.py [--rounds 3] [--threads 1]

Child processes alternate, each with NUMBA_BOUNDSCHECK=1 and one of two private Numba caches:
"checked", where minicnn's compile listener is unregistered right after `import minicnn` (what
happened before it existed: the library's kernels compiled, and cached, with bounds checks), and
"unchecked" (the listener in place, as shipped); and, as the baseline, "plain": no
NUMBA_BOUNDSCHECK at all, a third cache.  Each child times conv2d and conv2d_backward on
LeNet-5's conv2 and conv3 and the benchmark's large layer, float32, medians of many calls, and the
script prints the medians over rounds per mode, checked/unchecked and unchecked/plain (which
should be 1: the listener leaves nothing of the setting in the library's kernels).  The first round of each
mode compiles into its empty cache (excluded from the timing: each child warms up first).
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile

MODES = ("checked", "unchecked", "plain")
CHILD = r'''
import json, sys, time
import numba, numpy as np
import minicnn
if sys.argv[1] == "checked":
    from numba.core import event
    event.unregister("numba:compile", minicnn.unchecked.install())
numba.set_num_threads(int(sys.argv[2]))
rng = np.random.default_rng(0)
layers = {"conv2": (64, 6, 14, 16, 5, 0), "conv3": (64, 16, 5, 120, 5, 0), "large": (64, 32, 32, 64, 3, 1)}
calls, out = {}, {}
for name, (n, c, h, k, ks, p) in layers.items():
    x = rng.standard_normal((n, c, h, h)).astype(np.float32)
    w = rng.standard_normal((k, c, ks, ks)).astype(np.float32)
    b = rng.standard_normal(k).astype(np.float32)
    g = np.ones_like(minicnn.conv2d(x, w, b, 1, p))
    minicnn.conv2d_backward(g, x, w, 1, p)
    calls[name + " forward"] = lambda x=x, w=w, b=b, p=p: minicnn.conv2d(x, w, b, 1, p)
    calls[name + " backward"] = lambda g=g, x=x, w=w, p=p: minicnn.conv2d_backward(g, x, w, 1, p)
times = {key: [] for key in calls}
for _ in range(60):
    for key, fn in calls.items():
        t = time.perf_counter()
        fn()
        times[key].append(time.perf_counter() - t)
print(json.dumps({key: float(np.median(v)) * 1e3 for key, v in times.items()}))
'''


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args(argv)
    caches = {mode: tempfile.mkdtemp(prefix=f"minicnn-{mode}-") for mode in MODES}
    results = {mode: [] for mode in caches}
    for r in range(args.rounds + 1):
        order = list(caches)[r % len(caches):] + list(caches)[:r % len(caches)]   # each mode first in turn
        for mode in order:
            cache = caches[mode]
            env = dict(os.environ, NUMBA_BOUNDSCHECK="1", NUMBA_CACHE_DIR=cache)
            if mode == "plain":
                del env["NUMBA_BOUNDSCHECK"]
            proc = subprocess.run([sys.executable, "-c", CHILD, mode, str(args.threads)], env=env,
                                  capture_output=True, text=True, check=True)
            if r:   # round 0 filled the caches
                results[mode].append(json.loads(proc.stdout.strip().splitlines()[-1]))
    keys = list(results["checked"][0])
    print(f"{'layer, pass (ms)':18s} {'checked':>9s} {'unchecked':>9s} {'plain':>9s} {'c/u':>6s} {'u/p':>6s}")
    for key in keys:
        med = {m: sorted(run[key] for run in results[m])[len(results[m]) // 2] for m in results}
        print(f"{key:18s} {med['checked']:9.3f} {med['unchecked']:9.3f} {med['plain']:9.3f} "
              f"{med['checked'] / med['unchecked']:6.2f} {med['unchecked'] / med['plain']:6.2f}")


if __name__ == "__main__":
    main()
