"""The shape and parameter-count formulas."""
import numpy as np
import pytest

import minicnn


@pytest.mark.parametrize("n, k, s, p, d", [(7, 3, 1, 0, 1), (7, 3, 2, 0, 1), (7, 3, 3, 0, 1), (28, 5, 1, 2, 1),
                                            (16, 3, 4, 0, 1), (9, 3, 2, 1, 2), (5, 5, 1, 0, 1), (1, 1, 3, 0, 1)])
def test_conv_output_size_matches_an_actual_convolution(n, k, s, p, d):
    out = minicnn.conv2d(np.zeros((1, 1, n, n + 1)), np.zeros((1, 1, k, k)), None, s, p, d)
    assert out.shape[2:] == minicnn.conv_output_size((n, n + 1), k, s, p, d)
    assert out.shape[2] == minicnn.conv_output_size(n, k, s, p, d)


def test_conv_output_size_forms():
    assert minicnn.conv_output_size(32, 5, padding=2) == 32
    assert minicnn.conv_output_size((32, 20), (5, 3), padding="same") == (32, 20)
    assert minicnn.conv_output_size(10, 3, padding="full") == 12
    assert minicnn.conv_output_size(10, 3, dilation=2) == 6
    assert minicnn.pool_output_size(28, 2) == 14
    assert minicnn.pool_output_size(7, 3, 2, 1) == 4
    assert minicnn.conv_output_size(8, 2, 2, strict=True) == 4  # tiles evenly: no error


def test_conv_transpose_output_size_matches_the_op():
    for n, k, s, p, op, d in [(10, 3, 2, 0, 0, 1), (8, 3, 2, 0, 0, 1), (5, 4, 3, 1, 2, 1), (4, 3, 1, 1, 0, 2)]:
        out = minicnn.conv_transpose2d(np.zeros((1, 1, n, n)), np.zeros((1, 1, k, k)), None, s, p, op, d)
        assert out.shape[2] == minicnn.conv_transpose_output_size(n, k, s, p, op, d)
    assert minicnn.conv_transpose_output_size((10, 8), 3, 2) == (21, 17)


def test_parameter_counts():
    assert minicnn.conv2d_param_count(3, 10, 5) == 760
    assert minicnn.conv2d_param_count(6, 16, 5) == 2416
    assert minicnn.conv2d_param_count(3, 6, 5, bias=False) == 450
    assert minicnn.conv2d_param_count(3, 2, (3, 1)) == 2 * (3 * 3 + 1)
    assert minicnn.dense_param_count(400, 100) == 40100
    assert minicnn.dense_param_count(50, 1, bias=False) == 50


def test_receptive_field():
    assert minicnn.receptive_field([(3, 1)] * 4) == 9
    assert minicnn.receptive_field([(3, 2), (3, 1)]) == 7
    assert minicnn.receptive_field([(3, 1, 1), (3, 1, 2), (3, 1, 4)]) == 15
    with pytest.raises(ValueError, match="layers\\[1\\]"):
        minicnn.receptive_field([(3, 1), (0, 1)])


def test_layer_table_rows():
    rows = minicnn.shapes.layer_table((1, 32, 32), [{"type": "conv", "filters": 6, "kernel_size": 5},
                                                    {"type": "max_pool", "kernel_size": 2},
                                                    {"type": "dense", "units": 10}])
    assert [r["shape"] for r in rows] == [(1, 32, 32), (6, 28, 28), (6, 14, 14), (10,)]
    assert [r["params"] for r in rows] == [0, 156, 0, 6 * 14 * 14 * 10 + 10]
    with pytest.raises(ValueError, match="unknown layer type 'lstm'"):
        minicnn.shapes.layer_table((1, 8, 8), [{"type": "lstm"}])
