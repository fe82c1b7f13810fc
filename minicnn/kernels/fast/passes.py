"""The inner loops of the fast convolution: one pass = a few filter taps over one run.

Each pass reads a handful of unit-stride runs of the input (one per tap) and updates a few
accumulator rows with multiply-adds, so that every value loaded feeds several FMAs:

    taps_pass    three taps for four output rows (KB = 4): each input value feeds four
                 multiply-adds, each accumulator is loaded and stored once per three taps
    taps_pass1   four taps for one output row (the last, partial block of channels)
    dot_pass4    the weight gradient: four gradient rows (KBW = 4) against three taps, twelve
                 dot products that LLVM splits into vector lanes (seven loads feed twelve
                 multiply-adds, and twelve independent sums hide the multiply-add's latency)
    dot_pass     the same for two gradient rows (the last one or two filters)

The taps come as a list of (plane, flat offset), so nothing here depends on the filter size:
one compiled pass serves 1x1, 3x3, 5x5, dilated and strided filters alike.  The rows come as
separate 1-D views: a 2-D view's inner stride is a runtime value to Numba, which would stop
vectorisation.  Float32 stays float32: no Python float or int enters the arithmetic.
"""
from numba import njit

FMA = {"contract"}                 # allow fused multiply-add, keep the order of every sum
SUM = {"contract", "reassoc"}      # dot products: let LLVM split each sum into vector lanes


@njit(cache=True, fastmath=FMA)
def taps_pass(a0, a1, a2, a3, planes, w4, tplane, toff, start, length):
    """a_q[p] += sum over taps t of w4[q, t] * planes[tplane[t], toff[t] + start + p], q < KB = 4, p < length.

    The four rows come as separate 1-D views: a 2-D view's inner stride is a runtime value
    to Numba, which would stop vectorisation."""
    n_taps = tplane.shape[0]
    t = 0
    while t + 3 <= n_taps:
        o0 = toff[t] + start
        o1 = toff[t + 1] + start
        o2 = toff[t + 2] + start
        s0 = planes[tplane[t], o0:o0 + length]
        s1 = planes[tplane[t + 1], o1:o1 + length]
        s2 = planes[tplane[t + 2], o2:o2 + length]
        c00, c01, c02 = w4[0, t], w4[0, t + 1], w4[0, t + 2]
        c10, c11, c12 = w4[1, t], w4[1, t + 1], w4[1, t + 2]
        c20, c21, c22 = w4[2, t], w4[2, t + 1], w4[2, t + 2]
        c30, c31, c32 = w4[3, t], w4[3, t + 1], w4[3, t + 2]
        for p in range(length):
            x0 = s0[p]
            x1 = s1[p]
            x2 = s2[p]
            a0[p] = a0[p] + c00 * x0 + c01 * x1 + c02 * x2
            a1[p] = a1[p] + c10 * x0 + c11 * x1 + c12 * x2
            a2[p] = a2[p] + c20 * x0 + c21 * x1 + c22 * x2
            a3[p] = a3[p] + c30 * x0 + c31 * x1 + c32 * x2
        t += 3
    while t < n_taps:  # the last one or two taps
        o0 = toff[t] + start
        s0 = planes[tplane[t], o0:o0 + length]
        c00, c10, c20, c30 = w4[0, t], w4[1, t], w4[2, t], w4[3, t]
        for p in range(length):
            x0 = s0[p]
            a0[p] = a0[p] + c00 * x0
            a1[p] = a1[p] + c10 * x0
            a2[p] = a2[p] + c20 * x0
            a3[p] = a3[p] + c30 * x0
        t += 1


@njit(cache=True, fastmath=FMA)
def taps_pass1(a0, planes, w1, tplane, toff, start, length):
    """taps_pass for a single output row: a0[p] += sum_t w1[t] * planes[tplane[t], toff[t] + start + p],
    four taps per pass (for channel counts that are not a multiple of KB)."""
    n_taps = tplane.shape[0]
    t = 0
    while t + 4 <= n_taps:
        o0 = toff[t] + start
        o1 = toff[t + 1] + start
        o2 = toff[t + 2] + start
        o3 = toff[t + 3] + start
        s0 = planes[tplane[t], o0:o0 + length]
        s1 = planes[tplane[t + 1], o1:o1 + length]
        s2 = planes[tplane[t + 2], o2:o2 + length]
        s3 = planes[tplane[t + 3], o3:o3 + length]
        c0, c1, c2, c3 = w1[t], w1[t + 1], w1[t + 2], w1[t + 3]
        for p in range(length):
            a0[p] = a0[p] + c0 * s0[p] + c1 * s1[p] + c2 * s2[p] + c3 * s3[p]
        t += 4
    while t < n_taps:
        o0 = toff[t] + start
        s0 = planes[tplane[t], o0:o0 + length]
        c0 = w1[t]
        for p in range(length):
            a0[p] = a0[p] + c0 * s0[p]
        t += 1



@njit(cache=True, fastmath=SUM)
def dot_pass4(part, g0, g1, g2, g3, planes, tplane, toff, start, length):
    """part[q, t] += dot(g_q, planes[tplane[t], toff[t] + start : ... + length]) for q < KBW = 4, all t.

    On the benchmark's large layer (32 planes of 34x34, 288 taps, rows of 1088, one thread, the
    2-core Zen 4's AVX2 build) it ran at 85-106 GFLOP/s where two rows (dot_pass) ran at 71-83."""
    n_taps = tplane.shape[0]
    t = 0
    while t + 3 <= n_taps:
        o0 = toff[t] + start
        o1 = toff[t + 1] + start
        o2 = toff[t + 2] + start
        s0 = planes[tplane[t], o0:o0 + length]
        s1 = planes[tplane[t + 1], o1:o1 + length]
        s2 = planes[tplane[t + 2], o2:o2 + length]
        r00, r01, r02 = part[0, t], part[0, t + 1], part[0, t + 2]  # the sums start from the partial
        r10, r11, r12 = part[1, t], part[1, t + 1], part[1, t + 2]  # (no Python 0: float32 stays float32)
        r20, r21, r22 = part[2, t], part[2, t + 1], part[2, t + 2]
        r30, r31, r32 = part[3, t], part[3, t + 1], part[3, t + 2]
        for p in range(length):
            x0 = s0[p]
            x1 = s1[p]
            x2 = s2[p]
            y0 = g0[p]
            r00 += y0 * x0
            r01 += y0 * x1
            r02 += y0 * x2
            y1 = g1[p]
            r10 += y1 * x0
            r11 += y1 * x1
            r12 += y1 * x2
            y2 = g2[p]
            r20 += y2 * x0
            r21 += y2 * x1
            r22 += y2 * x2
            y3 = g3[p]
            r30 += y3 * x0
            r31 += y3 * x1
            r32 += y3 * x2
        part[0, t], part[0, t + 1], part[0, t + 2] = r00, r01, r02
        part[1, t], part[1, t + 1], part[1, t + 2] = r10, r11, r12
        part[2, t], part[2, t + 1], part[2, t + 2] = r20, r21, r22
        part[3, t], part[3, t + 1], part[3, t + 2] = r30, r31, r32
        t += 3
    while t < n_taps:
        o0 = toff[t] + start
        s0 = planes[tplane[t], o0:o0 + length]
        r00, r10, r20, r30 = part[0, t], part[1, t], part[2, t], part[3, t]
        for p in range(length):
            x0 = s0[p]
            r00 += g0[p] * x0
            r10 += g1[p] * x0
            r20 += g2[p] * x0
            r30 += g3[p] * x0
        part[0, t], part[1, t], part[2, t], part[3, t] = r00, r10, r20, r30
        t += 1


@njit(cache=True, fastmath=SUM)
def dot_pass(part, g0, g1, planes, tplane, toff, start, length):
    """part[q, t] += dot(g_q, planes[tplane[t], toff[t] + start : ... + length]) for q < 2, all t."""
    n_taps = tplane.shape[0]
    t = 0
    while t + 3 <= n_taps:
        o0 = toff[t] + start
        o1 = toff[t + 1] + start
        o2 = toff[t + 2] + start
        s0 = planes[tplane[t], o0:o0 + length]
        s1 = planes[tplane[t + 1], o1:o1 + length]
        s2 = planes[tplane[t + 2], o2:o2 + length]
        r00, r01, r02 = part[0, t], part[0, t + 1], part[0, t + 2]  # the sums start from the partial
        r10, r11, r12 = part[1, t], part[1, t + 1], part[1, t + 2]  # (no Python 0: float32 stays float32)
        for p in range(length):
            y0 = g0[p]
            y1 = g1[p]
            x0 = s0[p]
            x1 = s1[p]
            x2 = s2[p]
            r00 += y0 * x0
            r01 += y0 * x1
            r02 += y0 * x2
            r10 += y1 * x0
            r11 += y1 * x1
            r12 += y1 * x2
        part[0, t], part[0, t + 1], part[0, t + 2] = r00, r01, r02
        part[1, t], part[1, t + 1], part[1, t + 2] = r10, r11, r12
        t += 3
    while t < n_taps:
        o0 = toff[t] + start
        s0 = planes[tplane[t], o0:o0 + length]
        r00, r10 = part[0, t], part[1, t]
        for p in range(length):
            x0 = s0[p]
            r00 += g0[p] * x0
            r10 += g1[p] * x0
        part[0, t], part[1, t] = r00, r10
        t += 1
