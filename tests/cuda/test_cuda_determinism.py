"""Two runs give the same bits.

The backward kernels are gathers: one thread owns each gradient element and adds its
terms in a fixed order, with no atomics (which would add in whatever order the
hardware schedules, changing the float rounding from run to run).  On a real GPU this
test is the real thing; on the simulator it is weaker (the simulator's threads
interleave too, but a racy kernel could still come out the same twice), so the source
is also checked for atomics here, and tests/cuda/test_cuda_compile.py checks the
compiled PTX for atomic instructions.
"""
import inspect

import numpy as np
import pytest

from cuda_testutil import mc, needs_cuda

pytestmark = needs_cuda


def same_bits(a, b):
    a, b = np.asarray(a), np.asarray(b)
    return a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes()


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_conv2d_backward_is_bitwise_reproducible(rng, dtype):
    # stride 1 with a 3x3 kernel: every input cell is read by up to 9 outputs per filter
    x = rng.standard_normal((2, 3, 8, 8)).astype(dtype)
    w = rng.standard_normal((4, 3, 3, 3)).astype(dtype)
    g = rng.standard_normal((2, 4, 8, 8)).astype(dtype)
    first = mc.conv2d_backward(g, x, w, padding=1)
    second = mc.conv2d_backward(g, x, w, padding=1)
    for name, a, b in zip(("grad_x", "grad_weight", "grad_bias"), first, second):
        assert same_bits(a, b), f"{name} differs between two runs"


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_pooling_backward_is_bitwise_reproducible(rng, dtype):
    x = rng.integers(0, 3, size=(2, 2, 9, 9)).astype(dtype)   # many ties, overlapping windows
    g = rng.standard_normal((2, 2, 9, 9)).astype(dtype)
    a = mc.max_pool2d_backward(g, x, 3, 1, 1)
    b = mc.max_pool2d_backward(g, x, 3, 1, 1)
    assert same_bits(a, b)
    a = mc.avg_pool2d_backward(g, x, 3, 1, 1, count_include_pad=False)
    b = mc.avg_pool2d_backward(g, x, 3, 1, 1, count_include_pad=False)
    assert same_bits(a, b)


@pytest.mark.parametrize("kernel", ["naive", "tiled"])
def test_conv2d_forward_is_bitwise_reproducible(rng, kernel):
    x = rng.standard_normal((1, 3, 9, 9)).astype(np.float32)
    w = rng.standard_normal((2, 3, 3, 3)).astype(np.float32)
    assert same_bits(mc.conv2d(x, w, padding=1, kernel=kernel), mc.conv2d(x, w, padding=1, kernel=kernel))


def test_kernels_use_no_atomics():
    from minicnn.cuda import kernels
    source = inspect.getsource(kernels)
    assert "cuda.atomic" not in source
