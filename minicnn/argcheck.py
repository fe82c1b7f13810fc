"""Argument checking shared by every public op.

Numba reports a wrong argument as a long typing traceback, or not at all (an
out-of-bounds write just corrupts memory).  So every public function checks and
normalises its arguments here, in plain Python, before a compiled kernel sees
them, and raises a ValueError/TypeError that names the argument and its shape.
"""
from __future__ import annotations

import numbers

import numpy as np
from numba import njit


def shape_str(a) -> str:
    return str(tuple(int(s) for s in np.shape(a)))


def as_array(name: str, value, ndim: int | None, layout: str = "", dtype=None) -> np.ndarray:
    """Return `value` as a C-contiguous float32/float64 array with `ndim` dimensions (any if None).

    Integer, boolean and non-contiguous inputs are converted (a new array), never
    rejected; float16 becomes float32, other integers float64.  The caller's array
    is never written to: kernels always allocate their outputs.
    """
    if (type(value) is np.ndarray and dtype is not None and value.dtype == dtype and (ndim is None or value.ndim == ndim)
            and value.flags.c_contiguous):
        return value    # the common case, already right: what np.ascontiguousarray would return
    if isinstance(value, np.ndarray) and type(value) is not np.ndarray:
        value = np.asarray(value)  # drop ndarray subclasses (np.matrix, masked arrays)
    try:
        arr = np.asarray(value)
    except Exception as exc:  # ragged lists and the like
        raise TypeError(f"{name} must be an array-like of numbers, got {type(value).__name__}: {exc}") from None
    if arr.dtype == object or not (np.issubdtype(arr.dtype, np.number) or arr.dtype == np.bool_):
        raise TypeError(f"{name} must hold real numbers, got dtype {arr.dtype}")
    if np.issubdtype(arr.dtype, np.complexfloating):
        raise TypeError(f"{name} must be real, got complex dtype {arr.dtype}")
    if ndim is not None and arr.ndim != ndim:
        raise ValueError(f"{name} must be {ndim}-D {layout}, got shape {shape_str(arr)} ({arr.ndim}-D)")
    if dtype is None:
        dtype = float_dtype(arr.dtype)
    return np.ascontiguousarray(arr, dtype=dtype)


F32, F64 = np.dtype(np.float32), np.dtype(np.float64)


def float_dtype(*dtypes) -> np.dtype:
    """The float dtype an op computes in: float32 if every float input is float32
    (or smaller), otherwise float64.  Integers count as float64, as in NumPy."""
    if dtypes and all(d is F32 for d in dtypes):      # the common cases, without np.result_type
        return F32
    if dtypes and all(d is F64 for d in dtypes):
        return F64
    floats = [np.dtype(d) for d in dtypes]
    result = np.result_type(*floats) if floats else np.dtype(np.float64)
    if result == np.float16:
        return np.dtype(np.float32)
    if result in (np.dtype(np.float32), np.dtype(np.float64)):
        return result
    return np.dtype(np.float64)


def dtype_of(*values) -> np.dtype:
    """The float dtype an op computes in for these inputs (None entries skipped)."""
    return float_dtype(*[v.dtype if type(v) is np.ndarray else np.asarray(v).dtype for v in values if v is not None])


@njit(cache=True, fastmath={"reassoc"})
def _finite_sum(flat):
    """0 when every element is a number; NaN otherwise (x - x is NaN for NaN and +-inf, and a
    NaN stays in the sum).  One vectorised pass with no temporary array: np.isfinite made a
    boolean copy of the input, close to a millisecond for a large layer's 8 MB."""
    total = flat[0] - flat[0]
    for i in range(flat.shape[0]):
        total += flat[i] - flat[i]
    return total


def all_finite(arr: np.ndarray) -> bool:
    if arr.size == 0:
        return True
    if arr.dtype in (F32, F64) and arr.flags.c_contiguous:
        return _finite_sum(arr.reshape(-1)) == 0
    return bool(np.all(np.isfinite(arr)))


def check_finite(name: str, arr: np.ndarray) -> None:
    if not all_finite(arr):
        bad = np.argwhere(~np.isfinite(arr))[0]
        where = "[" + ", ".join(str(int(i)) for i in bad) + "]"
        raise ValueError(
            f"{name} contains {arr[tuple(bad)]} at index {where} (shape {shape_str(arr)}); "
            "NaN and inf would spread through every output they touch. "
            "Pass check_finite=False to compute anyway."
        )


def flag(name: str, value) -> bool:
    """`value` as a bool: True/False (or NumPy's), nothing else (a 0/1, a string or None is
    more likely a mistake than a choice)."""
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    raise TypeError(f"{name} must be True or False, got {value!r}")


def as_int(name: str, v) -> int:
    if isinstance(v, (bool, np.bool_)) or not isinstance(v, numbers.Integral):
        raise TypeError(f"{name} must be an int or a pair of ints, got {v!r}")
    return int(v)


def int_pair(name: str, value, minimum: int) -> tuple[int, int]:
    """Accept an int or a pair of ints, each >= minimum; return (rows, cols)."""
    if isinstance(value, (tuple, list)):
        if len(value) != 2:
            raise ValueError(f"{name} must be an int or a pair (rows, cols), got {value!r}")
        pair = (as_int(name, value[0]), as_int(name, value[1]))
    else:
        v = as_int(name, value)
        pair = (v, v)
    if min(pair) < minimum:
        what = "negative" if minimum == 0 else f"< {minimum}"
        raise ValueError(f"{name} must be >= {minimum}, got {value!r} ({what})")
    return pair


def int_single(name: str, value, minimum: int) -> int:
    if isinstance(value, (tuple, list)):
        if len(value) != 1:
            raise ValueError(f"{name} must be an int (or a 1-tuple) for a 1-D op, got {value!r}")
        value = value[0]
    v = as_int(name, value)
    if v < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value!r}")
    return v


def padding_pair(padding, kernel_hw, stride_hw, dilation_hw) -> tuple[int, int]:
    """Resolve padding given as int, pair, 'valid', 'same' or 'full' to (pad_rows, pad_cols).

    'same' keeps the spatial size, which symmetric zero padding can do only with
    stride 1 and an odd (dilated) kernel; elsewhere it is undefined and raises.
    """
    if isinstance(padding, str):
        mode = padding.lower()
        span = [d * (k - 1) for k, d in zip(kernel_hw, dilation_hw)]  # dilated kernel extent - 1
        if mode == "valid":
            return (0, 0)
        if mode == "full":
            return (span[0], span[1])
        if mode == "same":
            if max(stride_hw) != 1:
                raise ValueError(
                    f"padding='same' is undefined for stride={stride_hw}: with stride > 1 no padding keeps "
                    "the output the size of the input. Give the padding as a number instead."
                )
            if span[0] % 2 or span[1] % 2:
                raise ValueError(
                    f"padding='same' is undefined for kernel_size={tuple(kernel_hw)} with dilation="
                    f"{tuple(dilation_hw)}: it needs {span[0]} extra row(s) and {span[1]} extra column(s) of "
                    "zeros, which cannot be split equally between the two sides. Use an odd kernel or give the padding as a number."
                )
            return (span[0] // 2, span[1] // 2)
        raise ValueError(f"padding must be an int, a pair, 'valid', 'same' or 'full'; got {padding!r}")
    return int_pair("padding", padding, 0)


def check_fits(what: str, n: int, k: int, s: int, p: int, d: int, strict: bool, axis: str) -> int:
    """Output length along one axis; raise if the kernel does not fit, or (strict) does not tile evenly."""
    span = d * (k - 1) + 1
    if n + 2 * p < span:
        raise ValueError(
            f"{what}: the {axis} kernel extent {span} (kernel {k}, dilation {d}) is larger than the padded "
            f"input {n} + 2*{p} = {n + 2 * p}"
        )
    rest = (n + 2 * p - span) % s
    if strict and rest:
        exact = (n + 2 * p - span) / s + 1
        raise ValueError(
            f"{what}: along {axis}, (N - F + 2P)/S + 1 = ({n} - {span} + 2*{p})/{s} + 1 = {exact:.2f} is not "
            f"an integer, so the filter does not tile the input: the last {rest} {axis} of the padded input "
            "would never be visited (flooring drops them). Change the stride or the padding, or pass "
            "strict=False to floor."
        )
    return (n + 2 * p - span) // s + 1


def check_grad_out(grad_out: np.ndarray, expected: tuple, what: str) -> None:
    if tuple(grad_out.shape) != tuple(expected):
        raise ValueError(
            f"grad_out has shape {shape_str(grad_out)} but {what} produces shape "
            f"{shape_str(np.empty(expected, dtype=np.uint8))}"
        )
