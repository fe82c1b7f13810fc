"""Where a convolution forward spends its time: the stride-phase split (`layout.split_phases`) alone,
its inverse (`layout.merge_phases`, which the input gradient ends with), and the whole forward in
the WIDE layout (split + correlation) and the PER_IMAGE layout, on one thread, for the benchmark's
stride-2 and large layers (float32); medians of 15 calls, in ms.

Run it once per build to compare builds, each in a fresh cache, e.g. on an AVX-512 host:

    NUMBA_CACHE_DIR=$(mktemp -d) python benchmarks/probes/conv_parts.py
    NUMBA_CACHE_DIR=$(mktemp -d) MINICNN_VECTOR_WIDTH=llvm python benchmarks/probes/conv_parts.py
"""
import json
import statistics
import time

import minicnn  # first: its vector-width choice must be made before Numba compiles anything
import numba
import numpy as np
from minicnn.geometry import conv_geometry
from minicnn.kernels import fast
from minicnn.kernels.fast import layout

# name: (x shape, filters, kernel size, stride, padding), as in benchmarks/cpu_bench.py
CASES = {"stride2": ((32, 16, 64, 64), 32, 3, 2, 1), "large": ((64, 32, 32, 32), 64, 3, 1, 1)}


def main(rounds=15):
    numba.set_num_threads(1)
    rng = np.random.default_rng(0)
    result = {"vector_width": minicnn.simd.status()["reason"]}
    for name, (shape, n_filt, k, s, p) in CASES.items():
        x = rng.standard_normal(shape).astype(np.float32)
        w = rng.standard_normal((n_filt, shape[1], k, k)).astype(np.float32)
        b = rng.standard_normal(n_filt).astype(np.float32)
        g = conv_geometry("conv_parts", x.shape, w.shape, s, p, 1)
        plan = layout.make_plan(x.shape, g, (g.out_h, g.out_w), x.dtype, layout=layout.WIDE)
        src = np.zeros(layout.phases_shape(x.shape, plan), np.float32)
        back = np.empty_like(x)
        calls = {"split_phases": lambda: layout.split_phases(x, plan, src),
                 "merge_phases": lambda: layout.merge_phases(src, plan, back),
                 "wide (split + correlate)": lambda: fast.conv2d_forward(x, w, b, g, layout=layout.WIDE),
                 "per_image": lambda: fast.conv2d_forward(x, w, b, g, layout=layout.PER_IMAGE)}
        for call in calls.values():
            call()   # compile
        times = {what: [] for what in calls}
        for _ in range(rounds):   # interleaved: each round calls each once
            for what, call in calls.items():
                t0 = time.perf_counter()
                call()
                times[what].append(time.perf_counter() - t0)
        result[name] = {what: round(statistics.median(t) * 1e3, 3) for what, t in times.items()}
    print(json.dumps(result))


if __name__ == "__main__":
    main()
