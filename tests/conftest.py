"""Shared fixtures: `F`, the functional API under test (see backend_under_test.py), and a
per-test seeded `rng`."""
import zlib

import minicnn  # noqa: F401  (before anything imports Numba, so minicnn/simd.py's vector width holds suite-wide)
import numpy as np
import pytest

from backend_under_test import backend_module


@pytest.fixture
def F():
    return backend_module()


@pytest.fixture
def rng(request):
    # a seed per test, derived from its name, so failures reproduce
    return np.random.default_rng(zlib.crc32(request.node.nodeid.encode()))
