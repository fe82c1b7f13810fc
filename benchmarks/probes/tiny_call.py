"""The fixed cost of a fast-kernel call: conv2d (with out=) and conv2d_backward on a tiny input
(2x1x8x8, two 3x3 filters), one thread, medians of 3000 calls in microseconds.  To compare two
checkouts, alternate fresh processes:

    for i in 1 2 3; do for s in OLD NEW; do PYTHONPATH=$s python benchmarks/probes/tiny_call.py; done; done
"""
import numba
import numpy as np

import minicnn
from step_and_conv2 import median_ms     # this folder's probe (the script's folder is on sys.path)


def median_us(fn, n=3000):
    return median_ms(fn, n) * 1e3


def main():
    numba.set_num_threads(1)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 1, 8, 8)).astype(np.float32)
    w = rng.standard_normal((2, 1, 3, 3)).astype(np.float32)
    out = minicnn.conv2d(x, w)
    g = np.ones_like(out)
    minicnn.conv2d_backward(g, x, w)
    fwd = median_us(lambda: minicnn.conv2d(x, w, out=out))
    bwd = median_us(lambda: minicnn.conv2d_backward(g, x, w))
    print(minicnn.__file__, f"conv2d {fwd:.1f} us, conv2d_backward {bwd:.1f} us")


if __name__ == "__main__":
    main()
