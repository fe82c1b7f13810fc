"""The `out=` argument of the convolution ops: write the result into an array the caller keeps.

Why: every call that returns a new array of megabytes may get it as fresh pages from the
operating system (glibc returns large freed blocks), and touching fresh pages costs a page
fault per 4 KiB.  A loop that passes the same `out` every time allocates nothing large; the
layers (`minicnn.layers.Conv2D`) do that with their gradient buffers.

An `out` array must be exactly what the op would have returned: the same shape and dtype,
C-contiguous and writeable; and it must not share memory with any input (the kernels read
their inputs while they write the output, so an overlap would change the result).  Anything
else is refused with an error naming the argument, not converted: a converted copy would not
be the caller's array, and the caller would never see the result.
"""
from __future__ import annotations

import numpy as np

from .argcheck import shape_str


def check_out(op: str, name: str, out, shape: tuple, dtype, inputs: dict) -> np.ndarray | None:
    """Return `out` if it can hold the result of `op`: an ndarray of `shape` and `dtype`,
    C-contiguous, writeable, sharing no memory with any array of `inputs` ({name: array}).
    None (no `out` given: the op allocates its result) is returned as it is."""
    if out is None:
        return None
    want = f"shape {tuple(int(s) for s in shape)}, dtype {np.dtype(dtype)}"
    if not isinstance(out, np.ndarray):
        raise TypeError(f"{op}: {name} must be a numpy array of {want}, got {type(out).__name__}")
    if out.shape != tuple(shape) or out.dtype != dtype:
        raise ValueError(f"{op}: {name} must have {want} (the result's), got shape {shape_str(out)}, "
                         f"dtype {out.dtype}")
    if not out.flags.c_contiguous:
        raise ValueError(f"{op}: {name} (shape {shape_str(out)}) must be C-contiguous, got a strided view "
                         f"(strides {out.strides}); pass np.ascontiguousarray(...) or a new np.empty")
    if not out.flags.writeable:
        raise ValueError(f"{op}: {name} (shape {shape_str(out)}) is read-only")
    for arg, arr in inputs.items():
        if arr is not None and np.may_share_memory(out, arr):
            raise ValueError(f"{op}: {name} (shape {shape_str(out)}) shares memory with the input {arg} "
                             f"(shape {shape_str(arr)}); the result must go to a separate array")
    return out


def check_out_tuple(op: str, out, parts: tuple, inputs: dict) -> tuple:
    """For ops that return several arrays: `out` is None or a tuple/list with one entry per
    result, each None (allocate that one) or an array for check_out.  parts: ((name, shape,
    dtype), ...) in the order of the results.  Returns a tuple of len(parts), Nones kept.
    The entries must not share memory with each other either."""
    if out is None:
        return (None,) * len(parts)
    names = ", ".join(p[0] for p in parts)
    if not isinstance(out, (tuple, list)) or len(out) != len(parts):
        raise TypeError(f"{op}: out must be None or a tuple of {len(parts)} arrays ({names}), got "
                        f"{type(out).__name__}{f' of length {len(out)}' if isinstance(out, (tuple, list)) else ''}")
    checked = []
    for i, (arr, (name, shape, dtype)) in enumerate(zip(out, parts)):
        others = {f"out[{j}] ({parts[j][0]})": a for j, a in enumerate(checked) if a is not None}
        checked.append(check_out(op, f"out[{i}] ({name})", arr, shape, dtype, {**inputs, **others}))
    return tuple(checked)


def into(out, result):
    """`result`, or, when the caller gave an `out`, result copied into it and `out` returned (for
    kernels that allocate their own result: the teaching loops, the small weight gradients)."""
    if out is None:
        return result
    out[...] = result
    return out
