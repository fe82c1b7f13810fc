"""The loss a network is trained with, over minicnn.softmax_cross_entropy and its backward, and
the accuracy it is judged by."""
from __future__ import annotations

import numpy as np

from .. import losses


class SoftmaxCrossEntropy:
    """Mean cross-entropy of softmax(logits) against integer labels.

    forward(logits (N, C), labels (N,)) -> float; backward() -> dL/dlogits (N, C) =
    (softmax(logits) - one_hot(labels)) / N, in the logits' dtype.
    """

    def __init__(self):
        self._cache = None

    def forward(self, logits, labels):
        self._cache = (logits, labels)
        return losses.softmax_cross_entropy(logits, labels)

    __call__ = forward

    def backward(self):
        if self._cache is None:
            raise RuntimeError("SoftmaxCrossEntropy: backward() called before forward()")
        return losses.softmax_cross_entropy_backward(*self._cache)


def accuracy(logits, labels) -> float:
    """Fraction of rows of logits (N, C) whose largest entry is at labels (N,)."""
    logits, labels = np.asarray(logits), np.asarray(labels)
    return float(np.mean(np.argmax(logits, axis=1) == labels)) if labels.size else float("nan")
