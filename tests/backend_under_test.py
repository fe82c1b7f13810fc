"""Which functional API the backend-parametrised tests exercise.

The CPU run uses `minicnn`; the CUDA run (`MINICNN_TEST_BACKEND=cuda`, with
NUMBA_ENABLE_CUDASIM=1 where there is no GPU) re-runs the very same tests against
`minicnn.cuda`, skipping ops it does not have.  Kept out of conftest.py so that test
modules can import it by a name no other directory's conftest shadows.
"""
import os

import pytest

BACKEND = os.environ.get("MINICNN_TEST_BACKEND", "cpu")


def backend_module():
    if BACKEND == "cuda":
        import minicnn.cuda as module
    else:
        import minicnn as module
    return module


def need(F, *names):
    """Skip (visibly) when the backend under test lacks an op."""
    missing = [n for n in names if not hasattr(F, n)]
    if missing:
        pytest.skip(f"backend {BACKEND!r} has no {', '.join(missing)}")
