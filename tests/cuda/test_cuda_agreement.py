"""The CUDA kernels against minicnn's CPU kernels, on shapes small enough for the simulator.

Also: the naive and tiled conv kernels against each other, block shapes that do not
divide the output, and outputs one element past a whole number of blocks (the
threads of the last block that have nothing to do must do nothing).
"""
import numpy as np
import pytest

import minicnn
from cuda_testutil import SIMULATOR, assert_close, mc, needs_cuda

pytestmark = needs_cuda

DTYPES = [np.float32, np.float64]

# (N, C, H, W, K, kH, kW, stride, padding, dilation)
CONV_CASES = [
    (1, 1, 5, 5, 1, 3, 3, 1, 0, 1),
    (2, 3, 7, 6, 2, 3, 2, (2, 1), (1, 2), (1, 2)),
    (1, 2, 9, 8, 3, 3, 3, 1, "same", 1),
    (2, 2, 6, 7, 2, 2, 3, (1, 3), "full", (2, 1)),
    (1, 3, 8, 9, 2, 1, 1, 3, 0, 1),
    (1, 1, 4, 4, 1, 4, 4, 1, 0, 1),
    (2, 1, 9, 9, 2, 5, 5, 2, 2, 1),
]

# (N, C, H, W, kernel_size, stride, padding)
POOL_CASES = [
    (1, 1, 6, 6, 2, None, 0),
    (2, 3, 7, 9, 3, 2, 1),
    (1, 2, 9, 8, (3, 2), (1, 2), (1, 1)),
    (2, 1, 5, 7, (4, 3), (2, 3), (2, 1)),
    (1, 1, 8, 8, 3, 1, 1),
]


def conv_data(rng, case, dtype, bias=True):
    n, c, h, w, k, kh, kw, stride, padding, dilation = case
    x = rng.standard_normal((n, c, h, w)).astype(dtype)
    wt = rng.standard_normal((k, c, kh, kw)).astype(dtype)
    b = rng.standard_normal(k).astype(dtype) if bias else None
    return x, wt, b, dict(stride=stride, padding=padding, dilation=dilation)


def pool_kw(case):
    return dict(kernel_size=case[4], stride=case[5], padding=case[6])


# --------------------------------------------------------------------------- conv2d

@pytest.mark.parametrize("kernel", ["naive", "tiled"])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", CONV_CASES, ids=str)
def test_conv2d_matches_cpu(rng, case, dtype, kernel):
    x, w, b, kw = conv_data(rng, case, dtype, bias=case[0] == 1)
    want = minicnn.conv2d(x, w, b, **kw, impl="loop")
    assert_close(mc.conv2d(x, w, b, **kw, kernel=kernel), want, dtype, f"conv2d {kernel} {case}")


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", CONV_CASES, ids=str)
def test_conv2d_backward_matches_cpu(rng, case, dtype):
    x, w, _, kw = conv_data(rng, case, dtype, bias=False)
    g = rng.standard_normal(minicnn.conv2d(x, w, **kw).shape).astype(dtype)
    got = mc.conv2d_backward(g, x, w, **kw)
    want = minicnn.conv2d_backward(g, x, w, **kw, impl="loop")
    assert len(got) == 3
    for name, a, e in zip(("grad_x", "grad_weight", "grad_bias"), got, want):
        assert_close(a, e, dtype, f"conv2d_backward {name} {case}")


@pytest.mark.parametrize("dtype", DTYPES)
def test_naive_and_tiled_agree(rng, dtype):
    """Same products, added in the same order (the tiled kernel adds an exact 0 for each
    padding cell, which changes nothing), so on the simulator the two agree bit for bit."""
    x, w, b, kw = conv_data(rng, (2, 3, 9, 7, 2, 3, 3, (1, 2), (2, 1), (2, 1)), dtype)
    naive = mc.conv2d(x, w, b, **kw, kernel="naive")
    tiled = mc.conv2d(x, w, b, **kw, kernel="tiled")
    if SIMULATOR:
        np.testing.assert_array_equal(tiled, naive)
    else:  # a GPU compiler may contract the two loops into fused multiply-adds differently
        assert_close(tiled, naive, dtype, "tiled vs naive")


@pytest.mark.parametrize("tile", [(3, 5), (4, 4), (2, 7), (1, 4), (5, 3), (7, 10), (8, 16)])
@pytest.mark.parametrize("kernel", ["naive", "tiled"])
def test_block_shapes_that_do_not_divide_the_output(rng, tile, kernel):
    """Output 7 x 10: every block shape here leaves a partial block at the bottom or right
    (or, for (7, 10), exactly one block; for (8, 16), one block bigger than the output)."""
    from minicnn.cuda.ops import _conv2d
    x, w, b, kw = conv_data(rng, (1, 2, 9, 12, 2, 3, 3, 1, 1, 2), np.float64)
    want = minicnn.conv2d(x, w, b, **kw)
    assert want.shape[2:] == (7, 10)
    got = _conv2d(x, w, b, kw["stride"], kw["padding"], kw["dilation"], False, True, kernel, tile)
    assert_close(got, want, np.float64, f"{kernel} tile {tile}")


def test_strided_dilated_tile_that_does_not_divide(rng):
    from minicnn.cuda.ops import _conv2d
    x, w, b, kw = conv_data(rng, (1, 2, 13, 12, 1, 3, 2, (2, 3), (1, 2), (2, 1)), np.float32)
    want = minicnn.conv2d(x, w, b, **kw)
    got = _conv2d(x, w, b, kw["stride"], kw["padding"], kw["dilation"], False, True, "tiled", (3, 2))
    assert_close(got, want, np.float32, "strided dilated tiled (3, 2)")


def test_conv_grid_edge(rng):
    """A 17 x 17 output with the default 16 x 16 blocks: the last block row and column hold
    one live thread each; the others must neither write nor skip the shared loads."""
    x, w, b, kw = conv_data(rng, (1, 1, 19, 19, 2, 3, 3, 1, 0, 1), np.float32)
    want = minicnn.conv2d(x, w, b, **kw)
    assert want.shape[2:] == (17, 17)
    for kernel in ("naive", "tiled"):
        assert_close(mc.conv2d(x, w, b, **kw, kernel=kernel), want, np.float32, f"{kernel} 17x17")


def test_flat_kernels_grid_edge(rng):
    """129 = 128 + 1 elements: two blocks of 128 threads, the second with one live thread."""
    from minicnn.cuda.kernels import flat_config
    assert flat_config(129) == (2, 128)
    x = rng.standard_normal((1, 1, 3, 43))
    g = rng.standard_normal((1, 1, 3, 43))
    assert_close(mc.max_pool2d(x, 1), minicnn.max_pool2d(x, 1), np.float64, "max_pool2d 129")
    assert_close(mc.max_pool2d_backward(g, x, 1), minicnn.max_pool2d_backward(g, x, 1), np.float64, "max bwd 129")
    assert_close(mc.avg_pool2d_backward(g, x, 1), minicnn.avg_pool2d_backward(g, x, 1), np.float64, "avg bwd 129")
    # grad_weight with 43 * 3 * 1 * 1 = 129 elements, grad_x with 1 * 3 * 1 * 43 = 129
    xc, wc = rng.standard_normal((1, 3, 1, 43)), rng.standard_normal((43, 3, 1, 1))
    gc = rng.standard_normal((1, 43, 1, 43))
    for name, a, e in zip(("grad_x", "grad_weight", "grad_bias"), mc.conv2d_backward(gc, xc, wc),
                          minicnn.conv2d_backward(gc, xc, wc)):
        assert_close(a, e, np.float64, f"conv2d_backward {name} at 129 elements")


def test_conv2d_dtypes(rng):
    x = rng.integers(-3, 4, size=(1, 2, 5, 6))
    w = rng.integers(-2, 3, size=(3, 2, 3, 2))
    y = mc.conv2d(x, w)
    assert y.dtype == np.float64
    assert_close(y, minicnn.conv2d(x, w), np.float64, "int conv2d")
    x32 = x.astype(np.float32)
    assert mc.conv2d(x32, w.astype(np.float32)).dtype == np.float32
    assert mc.conv2d(x32, w.astype(np.float64)).dtype == np.float64
    assert mc.conv2d(x32, w.astype(np.float32), np.zeros(3)).dtype == np.float64


def test_big_dilated_kernel_falls_back_to_naive(rng):
    """A halo that does not fit in 48 KiB of shared memory even for a 1x1 block: conv_tile
    says so and kernel='tiled' quietly runs the naive kernel."""
    from minicnn.cuda.kernels import conv_tile
    (bh, bw), halo = conv_tile((1, 1), (3, 3), (1, 1), (60, 60), 8)
    assert halo is None and (bh, bw) == (1, 1)
    x, w, b, kw = conv_data(rng, (1, 1, 121, 121, 1, 3, 3, 1, 0, 60), np.float64)
    assert_close(mc.conv2d(x, w, b, **kw), minicnn.conv2d(x, w, b, **kw), np.float64, "fallback")


# --------------------------------------------------------------------------- pooling

@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", POOL_CASES, ids=str)
def test_max_pool2d_matches_cpu(rng, case, dtype):
    n, c, h, w = case[:4]
    x = rng.permutation(n * c * h * w).reshape(n, c, h, w).astype(dtype) * 0.5 - 7  # no ties
    y = mc.max_pool2d(x, **pool_kw(case))
    assert_close(y, minicnn.max_pool2d(x, **pool_kw(case), impl="loop"), dtype, f"max_pool2d {case}")
    g = rng.standard_normal(y.shape).astype(dtype)
    assert_close(mc.max_pool2d_backward(g, x, **pool_kw(case)),
                 minicnn.max_pool2d_backward(g, x, **pool_kw(case), impl="loop"), dtype, f"max bwd {case}")


@pytest.mark.parametrize("case", POOL_CASES, ids=str)
def test_max_pool2d_ties_go_to_the_first(rng, case):
    n, c, h, w = case[:4]
    x = rng.integers(0, 2, size=(n, c, h, w)).astype(np.float64)
    y = mc.max_pool2d(x, **pool_kw(case))
    g = rng.standard_normal(y.shape)
    np.testing.assert_array_equal(mc.max_pool2d_backward(g, x, **pool_kw(case)),
                                  minicnn.max_pool2d_backward(g, x, **pool_kw(case), impl="loop"))


def test_max_pool2d_padding_never_wins():
    x = -1.0 - np.arange(16.0).reshape(1, 1, 4, 4)      # all negative, padded with -inf
    np.testing.assert_array_equal(mc.max_pool2d(x, 3, 2, 1), minicnn.max_pool2d(x, 3, 2, 1))


@pytest.mark.parametrize("count_include_pad", [True, False])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", POOL_CASES, ids=str)
def test_avg_pool2d_matches_cpu(rng, case, dtype, count_include_pad):
    n, c, h, w = case[:4]
    x = rng.standard_normal((n, c, h, w)).astype(dtype)
    kw = dict(pool_kw(case), count_include_pad=count_include_pad)
    y = mc.avg_pool2d(x, **kw)
    assert_close(y, minicnn.avg_pool2d(x, **kw, impl="loop"), dtype, f"avg_pool2d {case}")
    g = rng.standard_normal(y.shape).astype(dtype)
    assert_close(mc.avg_pool2d_backward(g, x, **kw), minicnn.avg_pool2d_backward(g, x, **kw, impl="loop"), dtype,
                 f"avg bwd {case}")
