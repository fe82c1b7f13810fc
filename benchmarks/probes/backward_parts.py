"""Where a convolution's backward spends its time, part by part, against PyTorch's same parts.

For the benchmark's layers (benchmarks/cpu_bench.py's shapes, float32), in one process,
interleaved, medians, in ms:

    dx scatter   fast.conv2d_backward_input(..., form="scatter"): every tap adds w * grad_out into
                 the stride phase it read from, then the phases are merged
    dx gather    form="gather" (stride 1 only): the forward kernel on grad_out with the filters
                 turned, grad_out padded by the filter's reach
    dw           fast.conv2d_backward_weight (dot_pass4: four filters x three taps per pass)
    torch dx, torch dw   torch.ops.aten.convolution_backward asked for that one gradient

and which input-gradient form minicnn chooses by default (fast.input_grad_form).  The gather
does (H*W) / (Ho*Wo) times the scatter's multiply-adds (the padded zeros), which is why it is
chosen only up to 1.5 times.

    python benchmarks/probes/backward_parts.py [--threads 1] [--rounds 21] [--layers large,stride2]
"""
import argparse
import statistics
import time

import minicnn  # first: its vector-width choice must be made before Numba compiles anything
import numba
import numpy as np
from minicnn.geometry import conv_geometry
from minicnn.kernels import fast

try:
    import torch
except ImportError:   # the torch columns are left out
    torch = None

# name: (x shape, filters, kernel size, stride, padding), as in benchmarks/cpu_bench.py
LAYERS = {"conv1": ((64, 1, 32, 32), 6, 5, 1, 0), "conv2": ((64, 6, 14, 14), 16, 5, 1, 0),
          "conv3": ((64, 16, 5, 5), 120, 5, 1, 0), "large": ((64, 32, 32, 32), 64, 3, 1, 1),
          "stride2": ((32, 16, 64, 64), 32, 3, 2, 1)}


def calls_for(shape, n_filt, k, stride, pad, rng):
    x = rng.standard_normal(shape).astype(np.float32)
    w = (rng.standard_normal((n_filt, shape[1], k, k)) / np.sqrt(shape[1] * k * k)).astype(np.float32)
    g = conv_geometry("backward_parts", x.shape, w.shape, stride, pad, 1)
    go = rng.standard_normal((shape[0], n_filt, g.out_h, g.out_w)).astype(np.float32)
    calls = {"dx scatter": lambda: fast.conv2d_backward_input(go, w, g, shape[2:], form="scatter")}
    if fast.gather_geometry(g, shape[2:], (g.out_h, g.out_w)) is not None:
        calls["dx gather"] = lambda: fast.conv2d_backward_input(go, w, g, shape[2:], form="gather")
    calls["dw"] = lambda: fast.conv2d_backward_weight(go, x, g)
    if torch is not None:
        xt, wt, gt = torch.from_numpy(x), torch.from_numpy(w), torch.from_numpy(go)

        def torch_part(mask):
            return lambda: torch.ops.aten.convolution_backward(gt, xt, wt, [n_filt], [stride] * 2, [pad] * 2,
                                                               [1, 1], False, [0, 0], 1, mask)
        calls["torch dx"] = torch_part([True, False, False])
        calls["torch dw"] = torch_part([False, True, False])
    return calls, fast.input_grad_form(g, shape[2:], (g.out_h, g.out_w))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--rounds", type=int, default=21)
    ap.add_argument("--layers", default=",".join(LAYERS))
    args = ap.parse_args()
    numba.set_num_threads(args.threads)
    if torch is not None:
        torch.set_num_threads(args.threads)
    minicnn.keep_freed_memory()   # as the benchmark: no page faults from freed scratch memory
    rng = np.random.default_rng(0)
    print(f"{args.threads} thread(s); vector width: {minicnn.simd.status()['reason']}")
    for name in args.layers.split(","):
        calls, form = calls_for(*LAYERS[name], rng)
        for fn in calls.values():
            fn()
        times = {part: [] for part in calls}
        for _ in range(args.rounds):
            for part, fn in calls.items():
                t0 = time.perf_counter()
                fn()
                times[part].append(time.perf_counter() - t0)
        med = {part: statistics.median(v) * 1e3 for part, v in times.items()}
        cells = "  ".join(f"{part} {ms:.3f}" for part, ms in med.items())
        print(f"{name:8s} default dx: {form:8s} {cells}")


if __name__ == "__main__":
    main()
