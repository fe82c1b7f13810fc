"""dense_backward with and without the input gradient (input_grad=False, what a network's first
dense layer asks for), in one process, the two interleaved, medians of 201 calls.

    python benchmarks/probes/dense_input_grad.py [--threads 1]
"""
import argparse
import time

import numba
import numpy as np

import minicnn

SHAPES = [(64, 784, 256),   # an MLP's first layer on MNIST digits, batch 64
          (64, 400, 120)]   # LeNet-5's first dense layer (after its convolutions)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--calls", type=int, default=201)
    args = ap.parse_args()
    numba.set_num_threads(args.threads)
    rng = np.random.default_rng(0)
    for n, n_in, n_out in SHAPES:
        x = rng.standard_normal((n, n_in)).astype(np.float32)
        w = rng.standard_normal((n_out, n_in)).astype(np.float32)
        g = rng.standard_normal((n, n_out)).astype(np.float32)
        times = {True: [], False: []}
        for flag in times:      # compile (or load) both before timing
            minicnn.dense_backward(g, x, w, input_grad=flag)
        for _ in range(args.calls):
            for flag in times:
                t0 = time.perf_counter()
                minicnn.dense_backward(g, x, w, input_grad=flag)
                times[flag].append(time.perf_counter() - t0)
        full, part = (1e3 * float(np.median(times[f])) for f in (True, False))
        print(f"threads={args.threads} N={n} {n_in}->{n_out}: with grad_x {full:.3f} ms, "
              f"input_grad=False {part:.3f} ms, ratio {part / full:.2f}")


if __name__ == "__main__":
    main()
