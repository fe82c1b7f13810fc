"""Assignment 6's `a6.counts` part: the expected counts against minicnn.shapes, each recognised
mistake named, and check() giving full marks to a right function and fewer to careless ones."""
import pytest

from minicnn.course import a6_counts
from minicnn.course.checks import check
from minicnn.course.part import case_rng, matches


def _cases(hidden=False, seed=0):
    return a6_counts.COUNTS.cases(case_rng("a6.counts", seed), hidden)


def right(in_shape_chw, out_channels, kernel_size, stride, padding, bias, only_multiplies=False):
    """A student's answer, written out (check() gives no points to code that calls minicnn)."""
    c, h, w = in_shape_chw
    kh, kw = kernel_size
    outputs = out_channels * ((h + 2 * padding - kh) // stride + 1) * ((w + 2 * padding - kw) // stride + 1)
    b = 1 if bias else 0
    if only_multiplies:
        return {"conv_params": out_channels * (c * kh * kw + b), "conv_flops": outputs * c * kh * kw,
                "dense_params": outputs * (c * h * w + b), "dense_flops": outputs * c * h * w}
    return {"conv_params": out_channels * (c * kh * kw + b), "conv_flops": outputs * (2 * c * kh * kw - 1 + b),
            "dense_params": outputs * (c * h * w + b), "dense_flops": outputs * (2 * c * h * w - 1 + b)}


def test_the_worked_case_is_zeses_slide():
    case = _cases()[0]
    assert case.worked and case.expected == {"conv_params": 2, "conv_flops": 319 * 280 * 3,
                                             "dense_params": 320 * 280 * 319 * 280,
                                             "dense_flops": (319 * 280) * (2 * 320 * 280 - 1)}


@pytest.mark.parametrize("hidden", [False, True])
def test_the_plain_count_agrees_with_minicnn_shapes(hidden):
    for case in _cases(hidden, seed=3):
        assert a6_counts.counts(*case.args) == case.expected


@pytest.mark.parametrize("mistake", sorted(a6_counts.MISTAKES))
def test_each_mistake_is_named_somewhere(mistake):
    named = [case for case in _cases() + _cases(True, 7)
             if matches(a6_counts.counts(*case.args, mistake=mistake), case.alternatives.get(a6_counts.MISTAKES[mistake]))]
    assert named, mistake


def test_compare_rejects_wrong_types_and_names_the_wrong_key():
    expected = _cases()[1].expected
    assert a6_counts.compare_counts(expected, dict(expected)) is None
    assert a6_counts.compare_counts(expected, list(expected.values()))["kind"] == "type"
    assert "dense_flops" in a6_counts.compare_counts(expected, {**expected, "dense_flops": None})["text"]
    assert "conv_params" in a6_counts.compare_counts(expected, {**expected, "conv_params": -1})["text"]
    assert a6_counts.compare_counts(expected, {k: True for k in expected})["kind"] == "type"


def multiplies_only(in_shape_chw, out_channels, kernel_size, stride, padding, bias):
    return right(in_shape_chw, out_channels, kernel_size, stride, padding, bias, only_multiplies=True)


def copies_the_slide(*args):
    return {"conv_params": 2, "conv_flops": 267960, "dense_params": 8003072000, "dense_flops": 16 * 10**9}


def test_check_gives_full_marks_only_to_the_right_counts(capsys):
    assert check("a6.counts", right, points=2) == 2
    capsys.readouterr()
    assert check("a6.counts", multiplies_only, points=2) == 0
    assert "FLOPs count the multiplications *and* the additions" in capsys.readouterr().out
    assert check("a6.counts", copies_the_slide, points=2) == 0
