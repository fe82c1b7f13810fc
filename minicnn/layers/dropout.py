"""Inverted dropout."""
from __future__ import annotations

from .base import Layer, as_generator, as_input


class Dropout(Layer):
    """Inverted dropout: in training, each value is zeroed with probability p and the rest are
    scaled by 1 / (1 - p), so eval mode (identity) needs no rescaling.  Any shape -> same shape."""
    role = "reshape"

    def __init__(self, p=0.5, *, rng=None, label=None):
        if not 0 <= p < 1:
            raise ValueError(f"Dropout: p must be in [0, 1), got {p}")
        self.p = float(p)
        self._gen = as_generator(rng)
        super().__init__(label)

    def default_label(self):
        return f"Dropout (p={self.p:g})"

    def _forward(self, x):
        x = as_input(x)
        if not self.training or self.p == 0:
            self._cache = None, x.shape
            return x.copy()
        keep = (self._gen.random(x.shape) >= self.p).astype(x.dtype) / x.dtype.type(1 - self.p)
        self._cache = keep, x.shape
        return x * keep

    def _backward(self, grad_out):
        keep, shape = self._cache
        g = self._check_grad(grad_out, shape)
        return g.copy() if keep is None else g * keep

    def config(self):
        return {"p": self.p, **super().config()}

    def __repr__(self):
        return f"Dropout(p={self.p:g})"
