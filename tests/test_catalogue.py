"""Every worked example of the five lectures, through both kernel implementations."""
import dataclasses
import json

import numpy as np
import pytest

import minicnn
from minicnn import examples

ALL = examples.load()


def test_catalogue_covers_every_lecture_and_the_required_examples():
    assert {ex.lecture["author"] for ex in ALL} == {v["author"] for v in examples.lectures().values()}
    ids = {ex.id for ex in ALL}
    required = {
        "ferrara-sobel-dot-product", "halmstad-x-kernel-nine-steps", "halmstad-6x6-filter-1",
        "halmstad-6x6-filter-2", "sjtu-single-channel-5x5-3x3", "tcd-laplacian-valid", "tcd-laplacian-padded-view",
        "ferrara-5x5-no-padding", "ferrara-5x5-padding-1", "ferrara-5x5-stride-2", "ferrara-5x5-stride-2-padding-1",
        "halmstad-rgb-with-bias", "tcd-max-pooling-4x4", "sjtu-32x32x3-ten-5x5-pad-2",
        "tcd-443x592x3-six-5x5-valid", "tcd-16x16-stride-2", "tcd-16x16-stride-3", "tcd-16x16-stride-4",
        "tcd-conv-transpose-shape", "halmstad-quiz-150-conv", "halmstad-quiz-150-pool", "halmstad-quiz-1x1-filter",
        "zju-uoe-two-class-cnn", "sjtu-lenet5", "sjtu-output-size-stride-3-does-not-fit",
    }
    assert required <= ids
    assert len(ids) == len(ALL), "example ids must be unique"


@pytest.mark.parametrize("impl", ["fast", "loop"])
@pytest.mark.parametrize("ex", ALL, ids=[ex.id for ex in ALL])
def test_example_reproduces(ex, impl):
    result = examples.check(ex, impl)
    assert result.ok, f"{ex.citation}: {result.message}"


def _perturbed(ex):
    """The same example with one printed value changed."""
    expected = ex.expected
    if isinstance(expected, list):
        arr = np.array(expected, dtype=object)
        flat = arr.reshape(-1)
        i = next(j for j, v in enumerate(flat) if v is not None)
        flat[i] = flat[i] + 1
        expected = arr.tolist()
    elif isinstance(expected, dict):
        expected = json.loads(json.dumps(expected))
        key = sorted(expected)[0]
        if key == "rows":
            last = expected["rows"][-1]
            if "params" in last:
                last["params"] = -1
            else:
                last["shape_chw"] = [-1]
        elif isinstance(expected[key], list):
            expected[key] = [v for v in expected[key]][:-1] + [-1]
        else:
            expected[key] = expected[key] + 1
    elif isinstance(expected, str):
        expected = "other-" + expected
    else:
        expected = expected + 1
    return dataclasses.replace(ex, expected=expected)


@pytest.mark.parametrize("ex", ALL, ids=[ex.id for ex in ALL])
def test_a_wrong_expected_value_is_caught(ex):
    assert not examples.check(_perturbed(ex)).ok


@pytest.mark.parametrize("ex", [ex for ex in ALL if isinstance(ex.slide_printed, list)],
                         ids=lambda ex: ex.id)
def test_slide_errors_really_are_errors(ex):
    """Where a slide printed an array we corrected, the printed version must fail the check."""
    assert not examples.check(dataclasses.replace(ex, expected=ex.slide_printed)).ok


def test_every_corrected_example_explains_itself():
    corrected = [ex for ex in ALL if ex.slide_printed is not None]
    assert len(corrected) >= 6
    for ex in corrected:
        assert "Slide error" in ex.note, ex.id


def test_zju_table_errors_recorded():
    ex = examples.get("zju-uoe-two-class-cnn")
    assert ex.slide_printed == {"conv1_params": 150, "pool_stride": 0, "output_params": 50, "total_params": 47766}
    got = examples.run(ex)
    assert got["rows"][1]["params"] == (5 * 5 + 1) * 6 == 156
    assert got["rows"][-1]["params"] == 51
    assert got["total_params"] == 47773


def test_sjtu_non_integer_output_size_explained():
    assert minicnn.conv_output_size(7, 3, stride=3) == 2
    with pytest.raises(ValueError, match=r"\(7 - 3 \+ 2\*0\)/3 \+ 1 = 2\.33 is not an integer"):
        minicnn.conv_output_size(7, 3, stride=3, strict=True)
    with pytest.raises(ValueError, match="2.33"):
        minicnn.conv2d(np.zeros((1, 1, 7, 7)), np.zeros((1, 1, 3, 3)), stride=3, strict=True)


def test_convolution_versus_cross_correlation_on_sobel():
    """True convolution flips the kernel: on the Ferrara Sobel patch it flips the sign."""
    ex = examples.get("ferrara-sobel-dot-product")
    image, kernel = ex.array("image"), ex.array("kernel")
    assert minicnn.correlate2d(image, kernel)[0, 0] == 2
    assert minicnn.convolve2d(image, kernel)[0, 0] == -2


def test_examples_are_immutable_data():
    ex = examples.get("tcd-laplacian-valid")
    a = ex.array("image")
    a[0, 0] = 999
    assert examples.get("tcd-laplacian-valid").array("image")[0, 0] == 0
    with pytest.raises(KeyError, match="no worked example"):
        examples.get("no-such-example")
