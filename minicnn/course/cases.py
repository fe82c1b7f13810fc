"""Case helpers shared by the assignments (public: every assignment module may use them).

The kinds of random case every geometry part mixes (the edges: a kernel as large as the
input, a stride larger than the kernel, 'same' padding, non-square inputs and kernels),
the random inputs, the labels and citations the feedback shows, and small size helpers.
"""
from __future__ import annotations

import numpy as np

from .part import AnyOf

REF = "loop"  # the teaching kernels are the reference

ORDINARY = "ordinary"
KERNEL_AS_INPUT = "kernel as large as the input"
STRIDE_GT_KERNEL = "stride larger than the kernel"
SAME = "'same' padding"
NON_SQUARE = "non-square input and kernel"
EDGE_KINDS = (KERNEL_AS_INPUT, STRIDE_GT_KERNEL, SAME, NON_SQUARE)


def case_kinds(hidden: bool):
    """The mix of random cases: every edge, plus ordinary ones (more of everything when hidden)."""
    if hidden:
        return list(EDGE_KINDS) * 2 + [ORDINARY] * 4
    return list(EDGE_KINDS) + [ORDINARY] * 2


def ints(rng, shape, lo=-4, hi=4):
    """Small integer-valued float64 inputs (results a student can check by hand)."""
    return rng.integers(lo, hi + 1, size=shape).astype(np.float64)


def geometry(rng, kind):
    """(H, W, kh, kw, stride, padding) for one kind of case; always a valid convolution."""
    r = lambda lo, hi: int(rng.integers(lo, hi + 1))  # noqa: E731
    if kind == KERNEL_AS_INPUT:
        h, w = r(2, 5), r(2, 5)
        p = r(0, 1)
        return h, w, h + 2 * p, w + 2 * p, r(1, 2), p
    if kind == STRIDE_GT_KERNEL:
        k = r(1, 2)
        return r(5, 9), r(5, 9), k, k, k + r(1, 2), r(0, 1)
    if kind == SAME:
        k = 3 if rng.random() < 0.6 else 5
        return r(k, 7), r(k, 8), k, k, 1, (k - 1) // 2
    if kind == NON_SQUARE:
        h = r(4, 8)
        w = h + r(1, 3)
        kh = r(1, 3)
        kw = kh + 1 if kh < 3 else 2
        return h, w, kh, kw, r(1, 2), r(0, 1)
    k = r(2, 4)
    return r(max(k, 4), 8), r(max(k, 4), 8), k, k, r(1, 3), r(0, 2)


def case_label(i, kind, hidden):
    """'public case 3 (stride larger than the kernel)': how a random case is named in the feedback."""
    return f"{'hidden' if hidden else 'public'} case {i} ({kind})"


def cite(ex):
    """How a worked example from the catalogue is named in the feedback (lecture, author, slide)."""
    return "worked example: " + ex.citation


def pad_of(p, k):
    """Catalogue padding ('valid', 'same', int) as the int the exercises take."""
    if p == "valid":
        return 0
    if p == "same":
        return (k - 1) // 2
    return int(p)


def out_size(n, k, s, p):
    """A convolution's output size along one axis: floor((n + 2p - k) / s) + 1."""
    return (n + 2 * p - k) // s + 1


def first_match(candidates):
    """Several results one mistake can produce: the hint applies when any of them matches."""
    return AnyOf(candidates)


def floats(rng, shape):
    """Standard-normal inputs (backward passes: gradients are not small integers)."""
    return rng.standard_normal(shape)


def conv_desc(x, w, s, p, d=1):
    """The shapes and settings of a convolution case (safe to show for hidden cases)."""
    n, c, h, ww = x.shape
    text = f"x {n}x{c}x{h}x{ww}, weight {w.shape[0]}x{w.shape[1]}x{w.shape[2]}x{w.shape[3]}, stride {s}, padding {p}"
    return text + (f", dilation {d}" if d != 1 else "")


WINDOW_START = ("an index ran off the input: the window of output (i, j) starts at row i*stride and column "
                "j*stride (not i*kernel_size), and covers kernel_size rows and columns from there; with "
                "H_out = floor((H - k)/stride) + 1 every window stays inside the input")


def window_error_hint(case, error: str):
    """The hint for a pooling call that raised IndexError (NUMBA_BOUNDSCHECK makes an index past
    the input one): windows placed at i*kernel_size run off the input when stride < kernel_size."""
    return WINDOW_START if error.startswith("IndexError") or "IndexError" in error.split(":", 1)[0] else None


def first_that_computes(*thunks):
    """Several results one mistake can produce, each from a thunk; a thunk that raises (the
    mistake gives no valid result for this case, e.g. padding - 1 below zero) is left out."""
    found = []
    for thunk in thunks:
        try:
            found.append(thunk())
        except Exception:  # noqa: BLE001 - that variant does not exist for this case
            continue
    return AnyOf(found)
