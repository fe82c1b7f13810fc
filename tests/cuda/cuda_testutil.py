"""Shared helpers for the CUDA tests (a plain module: test modules import it by name).

The kernels run on a real GPU or on Numba's CUDA simulator.  The simulator must be
switched on before numba is imported, so it gets its own pytest process:

    NUMBA_ENABLE_CUDASIM=1 python -m pytest tests/cuda

In a plain (CPU) run, with no GPU, the tests that launch kernels are skipped.
"""
from __future__ import annotations

import numpy as np
import pytest

try:
    import minicnn.cuda as mc
    from minicnn.cuda import _target
except ImportError as exc:  # e.g. numba-cuda installed without its cuda-bindings
    mc = _target = None
    IMPORT_ERROR = str(exc)
else:
    IMPORT_ERROR = None

SIMULATOR = bool(_target and _target.SIMULATOR)
RUNNABLE = bool(_target and _target.is_available())

if IMPORT_ERROR:
    _REASON = f"minicnn.cuda cannot be imported: {IMPORT_ERROR}"
else:
    _REASON = ("no CUDA GPU here and the CUDA simulator is off; to run these tests on the simulator, start a "
               "separate pytest with NUMBA_ENABLE_CUDASIM=1 set (it must be set before numba is imported)")

# `pytestmark = needs_cuda` in a module: skip its tests unless kernels can run.
needs_cuda = pytest.mark.skipif(not RUNNABLE, reason=_REASON)
# Checks that only mean something on the simulator (or only on a GPU).
simulator_only = pytest.mark.skipif(not SIMULATOR, reason="checks a property of the CUDA simulator's scheduling")
gpu_only = pytest.mark.skipif(SIMULATOR or not RUNNABLE, reason="needs a real CUDA GPU")


def tol(dtype):
    """(rtol, atol-per-unit-of-scale) for comparing GPU against CPU results: summation
    order (and on a GPU, fused multiply-adds) differ, so not bit-for-bit."""
    return (1e-4, 1e-4) if np.dtype(dtype) == np.float32 else (1e-10, 1e-10)


def assert_close(got, want, dtype, what=""):
    got, want = np.asarray(got), np.asarray(want)
    assert got.shape == want.shape, f"{what}: shape {got.shape}, expected {want.shape}"
    assert got.dtype == np.dtype(dtype), f"{what}: dtype {got.dtype}, expected {np.dtype(dtype)}"
    rtol, atol = tol(dtype)
    scale = max(1.0, float(np.abs(want).max(initial=0.0)))
    np.testing.assert_allclose(got, want, rtol=rtol, atol=atol * scale, err_msg=what)


def host(a):
    """A NumPy copy of a device or host array."""
    return a.copy_to_host() if hasattr(a, "copy_to_host") else np.array(a)
