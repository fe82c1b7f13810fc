"""Optimizers: SGD with momentum, and Adam.

Both take a list of `minicnn.layers.Parameter` (or anything with .parameters(), such as a
Sequential) and, on step(), update every parameter's value in place from its .grad.
Updates keep each parameter's dtype (float32 stays float32: the hyperparameters are cast
to it first, since a Python float mixed into a float32 expression can promote it).
"""
from __future__ import annotations

import numpy as np


class Optimizer:
    def __init__(self, params, lr):
        if hasattr(params, "parameters"):
            params = params.parameters()
        self.params = list(params)
        if not self.params:
            raise ValueError(f"{type(self).__name__}: no parameters to optimise")
        if not lr > 0:
            raise ValueError(f"{type(self).__name__}: lr must be > 0, got {lr}")
        self.lr = float(lr)
        self.steps = 0

    def zero_grad(self):
        for p in self.params:
            p.grad = None

    def _grads(self):
        for i, p in enumerate(self.params):
            if p.grad is None:
                raise RuntimeError(f"{type(self).__name__}.step(): parameter {i} ({p.name}, shape {p.shape}) has no "
                                   "gradient; call backward() first")
            if p.grad.shape != p.value.shape:
                raise ValueError(f"parameter {i} ({p.name}) has shape {p.value.shape} but its grad {p.grad.shape}")
        return [(p, p.grad.astype(p.value.dtype, copy=False)) for p in self.params]

    def step(self):
        raise NotImplementedError


class SGD(Optimizer):
    """Stochastic gradient descent with (heavy-ball) momentum and optional L2 weight decay,
    in PyTorch's form:

        g <- grad + weight_decay * w
        v <- momentum * v + g            (v starts at 0; without momentum v = g)
        w <- w - lr * v
    """

    def __init__(self, params, lr=0.01, momentum=0.0, weight_decay=0.0):
        super().__init__(params, lr)
        if not 0 <= momentum < 1:
            raise ValueError(f"SGD: momentum must be in [0, 1), got {momentum}")
        if weight_decay < 0:
            raise ValueError(f"SGD: weight_decay must be >= 0, got {weight_decay}")
        self.momentum, self.weight_decay = float(momentum), float(weight_decay)
        self.velocity = [np.zeros_like(p.value) for p in self.params]

    def step(self):
        for (p, g), v in zip(self._grads(), self.velocity):
            t = p.value.dtype.type
            if self.weight_decay:
                g = g + t(self.weight_decay) * p.value
            if self.momentum:
                v *= t(self.momentum)
                v += g
                g = v
            p.value -= t(self.lr) * g
        self.steps += 1


class Adam(Optimizer):
    """Adam (Kingma & Ba 2015) with bias correction:

        m <- beta1 m + (1 - beta1) g          v <- beta2 v + (1 - beta2) g^2
        m_hat = m / (1 - beta1^t)             v_hat = v / (1 - beta2^t)
        w <- w - lr * m_hat / (sqrt(v_hat) + eps)
    """

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0):
        super().__init__(params, lr)
        b1, b2 = betas
        if not (0 <= b1 < 1 and 0 <= b2 < 1):
            raise ValueError(f"Adam: betas must be in [0, 1), got {betas}")
        if eps <= 0 or weight_decay < 0:
            raise ValueError(f"Adam: eps must be > 0 and weight_decay >= 0, got {eps}, {weight_decay}")
        self.betas, self.eps, self.weight_decay = (float(b1), float(b2)), float(eps), float(weight_decay)
        self.m = [np.zeros_like(p.value) for p in self.params]
        self.v = [np.zeros_like(p.value) for p in self.params]

    def step(self):
        self.steps += 1
        b1, b2 = self.betas
        c1, c2 = 1 - b1 ** self.steps, 1 - b2 ** self.steps
        for (p, g), m, v in zip(self._grads(), self.m, self.v):
            t = p.value.dtype.type
            if self.weight_decay:
                g = g + t(self.weight_decay) * p.value
            m *= t(b1)
            m += t(1 - b1) * g
            v *= t(b2)
            v += t(1 - b2) * g * g
            p.value -= t(self.lr / c1) * m / (np.sqrt(v / t(c2)) + t(self.eps))
