"""Shared fixtures.

`F` is the functional API under test.  The CPU run uses `minicnn`; the CUDA run
(`MINICNN_TEST_BACKEND=cuda`, with NUMBA_ENABLE_CUDASIM=1 where there is no GPU)
re-runs the very same tests against `minicnn.cuda`, skipping ops it does not have.
"""
import os
import zlib

import numpy as np
import pytest

BACKEND = os.environ.get("MINICNN_TEST_BACKEND", "cpu")


def _backend_module():
    if BACKEND == "cuda":
        import minicnn.cuda as module
    else:
        import minicnn as module
    return module


@pytest.fixture
def F():
    return _backend_module()


def need(F, *names):
    """Skip (visibly) when the backend under test lacks an op."""
    missing = [n for n in names if not hasattr(F, n)]
    if missing:
        pytest.skip(f"backend {BACKEND!r} has no {', '.join(missing)}")


@pytest.fixture
def rng(request):
    # a seed per test, derived from its name, so failures reproduce
    seed = zlib.crc32(request.node.nodeid.encode())
    return np.random.default_rng(seed)
