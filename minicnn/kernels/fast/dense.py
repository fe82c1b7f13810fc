"""Fast dense (fully connected) kernels: the loops of `loops.py` with unit-stride inner loops.

Why not NumPy's matrix product: NumPy's BLAS (OpenBLAS) keeps its own worker threads, which
spin on their cores for 60 to 120 ms after every product, even a 64 x 120 by 120 x 84 one.
With two threads that doubled the time of the convolution kernels that ran next (they got
half the cores): the benchmark's LeNet-5 step at batch 64 took 16.4 ms instead of 6.2 ms
(`python benchmarks/probes/lenet_blas_dense.py`, then with `--numba`).  Here the dense
layers run on Numba's threads like every other kernel, so `numba.set_num_threads` alone says
how many cores minicnn uses.  The price: on one core these loops are 2-3x slower than
OpenBLAS (LeNet's 400 -> 120 layer at batch 64: 0.16 ms forward against 0.08, 0.35 ms
backward against 0.17), a few hundred microseconds of a 7 ms step.

forward:   out[n, o]    = b[o] + sum_i x[n, i] w[o, i]     a dot product of two rows (from b[o])
backward:  grad_x[n, :] = sum_o grad_out[n, o] w[o, :]     rows of w, scaled and added
           grad_w[o, :] = sum_n grad_out[n, o] x[n, :]     rows of x, scaled and added
           grad_b[o]    = sum_n grad_out[n, o]
Each task writes its own rows, and every sum over o or n runs in a fixed order, so the result
does not depend on the thread count.  The compiled kernels do share `part` of `parts` of the
rows and run on every thread through threads.run.
"""
import numpy as np
from numba import njit

from .threads import run

_FMA = {"contract"}             # fused multiply-add, every sum kept in its order
_SUM = {"contract", "reassoc"}  # dot products: let LLVM split each sum into vector lanes

OB = 4   # rows of w (or of x) per pass: every value loaded feeds four multiply-adds


def dense_forward(x, w, b):
    """x (N, I), w (O, I), b (O,) -> (N, O)."""
    out = np.empty((x.shape[0], w.shape[0]), dtype=x.dtype)
    run(dense_forward_part, x, w, b, out)
    return out


@njit(cache=True, fastmath=_SUM)
def dense_forward_part(part, parts, x, w, b, out):
    """Rows n of out in share `part` of `parts`: out[n, o] = b[o] + x[n] . w[o]."""
    n_batch, n_in = x.shape
    n_out = w.shape[0]
    for n in range(n_batch * part // parts, n_batch * (part + 1) // parts):
        row = x[n]
        o = 0
        while o + OB <= n_out:
            w0, w1, w2, w3 = w[o], w[o + 1], w[o + 2], w[o + 3]
            s0, s1, s2, s3 = b[o], b[o + 1], b[o + 2], b[o + 3]
            for i in range(n_in):
                v = row[i]
                s0 += v * w0[i]
                s1 += v * w1[i]
                s2 += v * w2[i]
                s3 += v * w3[i]
            out[n, o] = s0
            out[n, o + 1] = s1
            out[n, o + 2] = s2
            out[n, o + 3] = s3
            o += OB
        for p in range(o, n_out):
            wp = w[p]
            s = b[p]
            for i in range(n_in):
                s += row[i] * wp[i]
            out[n, p] = s


def dense_backward(grad_out, x, w, input_grad=True):
    """grad_out (N, O), x (N, I), w (O, I) -> (grad_x (N, I), grad_w (O, I), grad_b (O,)).
    input_grad=False: grad_x is None, and its rows are not computed (the kernel gets a grad_x with
    no rows: the same compiled kernel, its grad_x loop empty)."""
    grad_x = np.zeros((x.shape[0] if input_grad else 0, x.shape[1]), dtype=grad_out.dtype)
    grad_w = np.zeros(w.shape, dtype=grad_out.dtype)
    grad_b = np.zeros(w.shape[0], dtype=grad_out.dtype)
    run(dense_backward_part, grad_out, x, w, grad_x, grad_w, grad_b)
    return (grad_x if input_grad else None), grad_w, grad_b


@njit(cache=True, fastmath=_FMA)
def dense_backward_part(part, parts, grad_out, x, w, grad_x, grad_w, grad_b):
    """Share `part` of `parts` of the rows n of grad_x and of the rows o of grad_w and grad_b
    (zeros on entry): the two sums do not depend on each other, so one call does a share of each.
    A grad_x with no rows (input_grad=False) skips the first sum."""
    n_batch, n_in = x.shape
    n_out = w.shape[0]
    n_rows = grad_x.shape[0]     # n_batch, or 0: no input gradient wanted
    for n in range(n_rows * part // parts, n_rows * (part + 1) // parts):
        gx = grad_x[n]
        g = grad_out[n]
        o = 0
        while o + OB <= n_out:   # four rows of w per pass: one load and one store of gx per 4 FMAs
            g0, g1, g2, g3 = g[o], g[o + 1], g[o + 2], g[o + 3]
            w0, w1, w2, w3 = w[o], w[o + 1], w[o + 2], w[o + 3]
            for i in range(n_in):
                gx[i] += g0 * w0[i] + g1 * w1[i] + g2 * w2[i] + g3 * w3[i]
            o += OB
        for p in range(o, n_out):
            gp, wp = g[p], w[p]
            for i in range(n_in):
                gx[i] += gp * wp[i]
    for o in range(n_out * part // parts, n_out * (part + 1) // parts):
        gw = grad_w[o]
        total = grad_b[o]
        n = 0
        while n + OB <= n_batch:   # the same, four rows of x per pass
            g0, g1, g2, g3 = grad_out[n, o], grad_out[n + 1, o], grad_out[n + 2, o], grad_out[n + 3, o]
            x0, x1, x2, x3 = x[n], x[n + 1], x[n + 2], x[n + 3]
            total += g0 + g1 + g2 + g3
            for i in range(n_in):
                gw[i] += g0 * x0[i] + g1 * x1[i] + g2 * x2[i] + g3 * x3[i]
            n += OB
        for m in range(n, n_batch):
            gm, xm = grad_out[m, o], x[m]
            total += gm
            for i in range(n_in):
                gw[i] += gm * xm[i]
        grad_b[o] = total
