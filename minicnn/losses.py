"""Softmax and the softmax cross-entropy loss for classification."""
from __future__ import annotations

import numpy as np

from .argcheck import as_array, check_finite as _check_finite, float_dtype, shape_str


def softmax(logits):
    """Row-wise softmax(z)_i = exp(z_i) / sum_j exp(z_j) (Aksoy, Halmstad).

    Inputs: logits (N, C).  Returns (N, C), rows summing to 1.  The row maximum is
    subtracted first, which changes nothing mathematically but keeps exp from overflowing."""
    z = as_array("logits", logits, 2, "(N, C)")
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def _check(logits, labels):
    z = as_array("logits", logits, 2, "(N, C)")
    _check_finite("logits", z)
    y = np.asarray(labels)
    if y.ndim != 1 or y.shape[0] != z.shape[0]:
        raise ValueError(f"labels must have shape ({z.shape[0]},), one class index per row of logits "
                         f"{shape_str(z)}; got {shape_str(y)}")
    if not np.issubdtype(y.dtype, np.integer):
        if np.issubdtype(y.dtype, np.floating) and np.all(y == np.round(y)):
            y = y.astype(np.int64)
        else:
            raise TypeError(f"labels must be integer class indices, got dtype {y.dtype}")
    if y.size and (y.min() < 0 or y.max() >= z.shape[1]):
        raise ValueError(f"labels must lie in [0, {z.shape[1]}) for {z.shape[1]} classes; "
                         f"got values from {y.min()} to {y.max()}")
    return z, y.astype(np.int64)


def softmax_cross_entropy(logits, labels):
    """Mean cross-entropy of softmax(logits) against integer labels.

    Inputs: logits (N, C), labels (N,) ints in [0, C).
    Returns: a float, mean over n of -log softmax(logits[n])[labels[n]], via log-sum-exp.
    """
    z, y = _check(logits, labels)
    shifted = z - z.max(axis=1, keepdims=True)
    log_probs = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    return float(-log_probs[np.arange(z.shape[0]), y].mean())


def softmax_cross_entropy_backward(logits, labels):
    """Gradient of the mean loss above w.r.t. logits: (softmax(logits) - one_hot(labels)) / N, shape (N, C)."""
    z, y = _check(logits, labels)
    grad = softmax(z)
    grad[np.arange(z.shape[0]), y] -= 1
    return (grad / z.shape[0]).astype(float_dtype(z.dtype), copy=False)
