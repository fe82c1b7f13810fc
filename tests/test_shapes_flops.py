"""minicnn.shapes.conv2d_flops and dense_flops against a plain count written here (one loop over the
output values, counting each multiplication and addition) and against Zese's slide."""
import numpy as np
import pytest

from minicnn import shapes


def _plain_conv_flops(c, h, w, k, kh, kw, s, p, bias):
    """Walk every output value and count: each tap one multiplication, each product after the first
    one addition, the bias one addition."""
    ops = 0
    for _ in range(k):
        for i in range(0, h + 2 * p - kh + 1, s):
            for j in range(0, w + 2 * p - kw + 1, s):
                products = c * kh * kw
                ops += products + (products - 1) + (1 if bias else 0)
    return ops


def test_conv2d_flops_matches_a_plain_count_on_random_shapes():
    rng = np.random.default_rng(5)
    for _ in range(40):
        c, k, kh, kw = (int(v) for v in rng.integers(1, 5, size=4))
        s, p = int(rng.integers(1, 4)), int(rng.integers(0, 3))
        h, w = int(rng.integers(kh, 14)), int(rng.integers(kw, 14))
        bias = bool(rng.integers(0, 2))
        assert shapes.conv2d_flops((c, h, w), k, (kh, kw), s, p, bias) == \
            _plain_conv_flops(c, h, w, k, kh, kw, s, p, bias), (c, h, w, k, kh, kw, s, p, bias)


def test_dense_flops_matches_a_matrix_vector_product_counted_by_hand():
    rng = np.random.default_rng(6)
    for _ in range(20):
        n_in, n_out, bias = int(rng.integers(1, 50)), int(rng.integers(1, 50)), bool(rng.integers(0, 2))
        ops = 0
        for _ in range(n_out):          # one row of the matrix times the input vector
            ops += n_in + (n_in - 1) + (1 if bias else 0)
        assert shapes.dense_flops(n_in, n_out, bias) == ops


def test_zeses_edge_detection_numbers():
    """Zese, "Edge Detection by Convolution": 319 x 280 x 3 = 267,960 flops as a convolution (two
    multiplications and one addition per output pixel, no bias); 320 x 280 x 319 x 280 = 8,003,072,000
    dense-matrix entries and "> 16e9" multiplications and additions; the conv stores 2 floats."""
    assert shapes.conv2d_flops((1, 280, 320), 1, (1, 2), bias=False) == 267_960
    assert shapes.conv2d_param_count(1, 1, (1, 2), bias=False) == 2
    assert shapes.dense_param_count(320 * 280, 319 * 280, bias=False) == 8_003_072_000
    assert shapes.dense_flops(320 * 280, 319 * 280, bias=False) > 16e9


@pytest.mark.parametrize("call, name", [
    (lambda: shapes.conv2d_flops((1, 4), 1, 2), "in_shape_chw"),
    (lambda: shapes.conv2d_flops((1, 4, 4), 0, 2), "out_channels"),
    (lambda: shapes.conv2d_flops((1, 4, 4), 1, 5), "kernel"),
    (lambda: shapes.conv2d_flops((1, 4, 4), 1, 2.5), "kernel_size"),
    (lambda: shapes.dense_flops(0, 3), "in_features"),
])
def test_bad_arguments_are_named(call, name):
    with pytest.raises((ValueError, TypeError), match=name):
        call()
