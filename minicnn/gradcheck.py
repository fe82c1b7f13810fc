"""Finite-difference gradient checking, the tool students use to test a backward pass.

For an op y = f(x1, x2, ...) and an upstream gradient G (same shape as y), the
backward must return dL/dxi for the scalar L = sum(f(...) * G).  Central
differences estimate each element of that gradient independently:

    dL/dx[i] ~ (L(x + eps e_i) - L(x - eps e_i)) / (2 eps)

which is accurate to O(eps^2), so it needs float64 inputs and a smooth op.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


def numerical_gradient(f, inputs, index=0, grad_out=None, eps=1e-6):
    """Central-difference gradient of sum(f(*inputs) * grad_out) w.r.t. inputs[index].

    Inputs: f a function of arrays returning an array; inputs a sequence of arrays
    (or a single array); grad_out the upstream gradient, shape of f's output
    (default: ones).  Every input is copied to float64 first; nothing passed in is modified.
    Returns: float64 array with the shape of inputs[index].
    """
    if isinstance(inputs, np.ndarray):
        inputs = [inputs]
    xs = [np.array(a, dtype=np.float64, copy=True) if a is not None else None for a in inputs]
    x = xs[index]
    y = np.asarray(f(*xs), dtype=np.float64)
    g = np.ones_like(y) if grad_out is None else np.asarray(grad_out, dtype=np.float64)
    if g.shape != y.shape:
        raise ValueError(f"grad_out has shape {g.shape} but f returns shape {y.shape}")
    grad = np.zeros_like(x)
    flat_x, flat_grad = x.reshape(-1), grad.reshape(-1)  # views: perturbing flat_x perturbs x
    for i in range(flat_x.size):
        saved = flat_x[i]
        flat_x[i] = saved + eps
        up = float(np.sum(np.asarray(f(*xs), dtype=np.float64) * g))
        flat_x[i] = saved - eps
        down = float(np.sum(np.asarray(f(*xs), dtype=np.float64) * g))
        flat_x[i] = saved
        flat_grad[i] = (up - down) / (2.0 * eps)
    return grad


@dataclass
class GradcheckResult:
    """Outcome of gradcheck; truthy when every checked gradient matched."""

    ok: bool
    max_abs_error: float
    max_rel_error: float
    failures: list = field(default_factory=list)

    def __bool__(self):
        return self.ok

    def __str__(self):
        if self.ok:
            return (f"gradcheck passed: max abs error {self.max_abs_error:.3g}, "
                    f"max rel error {self.max_rel_error:.3g}")
        return "gradcheck FAILED:\n  " + "\n  ".join(self.failures)


def gradcheck(f, inputs, grads, grad_out=None, eps=1e-6, rtol=1e-4, atol=1e-6, seed=0):
    """Compare analytic gradients with central differences.

    Inputs:
      f        function of the arrays in `inputs`, returning an array y
      inputs   sequence of arrays (float64 recommended; they are copied, never modified)
      grads    sequence, one entry per input: the analytic dL/d(input) computed with the
               same grad_out, or None to skip that input
      grad_out upstream gradient G with y's shape; default: a seeded standard-normal array
               (random rather than ones, so a gradient summed over the wrong axis still fails)
    Returns a GradcheckResult: `ok` is True when |analytic - numeric| <= atol + rtol*|numeric|
    for every element of every checked input.
    """
    inputs = list(inputs)
    grads = list(grads)
    if len(grads) != len(inputs):
        raise ValueError(f"gradcheck: {len(inputs)} inputs but {len(grads)} grads (use None to skip one)")
    y = np.asarray(f(*[np.array(a, dtype=np.float64) if a is not None else None for a in inputs]))
    if grad_out is None:
        grad_out = np.random.default_rng(seed).standard_normal(y.shape)
    failures, max_abs, max_rel = [], 0.0, 0.0
    for i, (x, analytic) in enumerate(zip(inputs, grads)):
        if analytic is None:
            continue
        numeric = numerical_gradient(f, inputs, i, grad_out, eps)
        analytic = np.asarray(analytic, dtype=np.float64)
        if analytic.shape != numeric.shape:
            failures.append(f"input {i}: analytic gradient has shape {analytic.shape}, expected {numeric.shape}")
            continue
        err = np.abs(analytic - numeric)
        max_abs = max(max_abs, float(err.max(initial=0.0)))
        max_rel = max(max_rel, float((err / np.maximum(np.abs(numeric), 1e-12)).max(initial=0.0)))
        bad = err > atol + rtol * np.abs(numeric)
        if bad.any():
            j = tuple(int(v) for v in np.argwhere(bad)[0])
            failures.append(f"input {i}: {int(bad.sum())} of {bad.size} elements differ; first at {list(j)}: "
                            f"analytic {analytic[j]:.6g} vs numeric {numeric[j]:.6g}")
    return GradcheckResult(not failures, max_abs, max_rel, failures)
