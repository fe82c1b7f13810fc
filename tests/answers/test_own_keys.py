"""Answer keys written here, one per kind of slip the issue names: the printed values are computed
in this file by plain NumPy slicing (not by minicnn's slips), and minicnn check must name the slip."""
import json

import numpy as np
import pytest

from minicnn import answers

IMAGE = np.array([[1, 2, 0, 3, 1, 2], [1, 0, 0, 2, 2, 1], [2, 1, 2, 1, 1, 0], [0, 0, 1, 0, 0, 3],
                  [1, 2, 1, 1, 1, 2], [3, 1, 0, 2, 1, 1]], dtype=float)
KERNEL = np.array([[-1, 1, 2], [1, 1, 0], [-1, -2, 0]], dtype=float)


def window(img, ker, r, c):
    """The sum of products of the kernel with the window whose top-left corner is (r, c)."""
    kh, kw = ker.shape
    return float((img[r:r + kh, c:c + kw] * ker).sum())


def correlate(img, ker, stride=1, move=None):
    move = move or (stride, stride)
    n_r = (img.shape[0] - ker.shape[0]) // stride + 1
    n_c = (img.shape[1] - ker.shape[1]) // stride + 1
    return [[window(img, ker, i * move[0], j * move[1]) for j in range(n_c)] for i in range(n_r)]


def key(**question):
    """A one-question key as TOML (JSON arrays and strings are TOML too)."""
    question.setdefault("id", "q")
    lines = ["[[question]]"] + [f"{k} = {json.dumps(v.tolist() if isinstance(v, np.ndarray) else v)}"
                                for k, v in question.items()]
    return answers.check_key(answers.loads("\n".join(lines)))


def slips(result, cell=None):
    """For each wrong cell, the set of slips that reproduce it."""
    return [set(s) for s in ordered(result, cell)]


def first(result):
    """The first slip reported for a one-cell question (known slips come before the searches)."""
    [found] = ordered(result)
    return found[0]


def ordered(result, cell=None):
    """For each wrong cell, the slips that reproduce it in the order reported (known slips first)."""
    q = result.questions[0]
    wrong = [c for c in q.wrong if cell is None or c.cell == cell]
    assert wrong, "nothing wrong"
    return [[d.slip for d in c.diagnoses] for c in wrong]


def test_right_keys_pass():
    assert key(op="correlate", image=IMAGE, kernel=KERNEL, stride=2, answer=correlate(IMAGE, KERNEL, 2)).ok
    assert key(op="output_size", n=32, kernel_size=5, padding=2, answer=32).ok
    assert key(op="conv_params", in_channels=3, filters=10, kernel_size=5, answer=760).ok
    assert key(op="max_pool", image=IMAGE, kernel_size=2, answer=[[2, 3, 2], [2, 2, 3], [3, 2, 2]]).ok
    assert key(op="receptive_field", layers=[[3, 1, 1], [3, 1, 2]], answer=7).ok
    assert key(op="transposed_output_size", n=10, kernel_size=3, stride=2, answer=21).ok


def test_stride_on_one_axis_only():
    printed = correlate(IMAGE, KERNEL, 2, move=(2, 1))  # down by 2, across by 1
    found = slips(key(op="correlate", image=IMAGE, kernel=KERNEL, stride=2, answer=printed))
    assert found and all("stride-rows-only" in f for f in found)


def test_window_moved_by_the_wrong_amount():
    printed = correlate(IMAGE, KERNEL, 2)
    printed[1][1] = window(IMAGE, KERNEL, 2, 3)  # one column too far
    [found] = slips(key(op="correlate", image=IMAGE, kernel=KERNEL, stride=2, answer=printed))
    assert "window-elsewhere" in found


def test_pooling_window_moved_by_the_kernel_size():
    x = np.arange(64.0).reshape(8, 8) % 7
    k, s = 2, 3
    printed = [[float(x[i * k:i * k + k, j * k:j * k + k].max()) for j in range(3)] for i in range(3)]
    found = ordered(key(op="max_pool", image=x, kernel_size=k, stride=s, answer=printed))
    assert found and all(f[0] == "pool-window-at-i-times-k" for f in found)


def test_kernel_flipped_both_ways():
    flipped = KERNEL[::-1, ::-1]
    found = slips(key(op="correlate", image=IMAGE, kernel=KERNEL, answer=correlate(IMAGE, flipped)))
    assert all("kernel-flipped" in f for f in found)
    found = slips(key(op="convolve", image=IMAGE, kernel=KERNEL, answer=correlate(IMAGE, KERNEL)))
    assert all("kernel-not-flipped" in f for f in found)


def test_padding_missing():
    # padding 1 asked, the unpadded 4 x 4 output printed
    r = key(op="correlate", image=IMAGE, kernel=KERNEL, padding=1, answer=correlate(IMAGE, KERNEL))
    assert "padding-missing" in slips(r, "output shape")[0]
    assert key(op="output_size", n=6, kernel_size=3, padding=1, answer=4).questions[0].wrong[0].diagnoses[0].slip \
        == "size-padding-missing"


def test_padding_on_one_side():
    r = key(op="output_size", n=10, kernel_size=5, padding=2, answer=(10 + 2 - 5) // 1 + 1)
    assert first(r) == "size-padding-once"
    padded = np.zeros((8, 8))
    padded[:6, :6] = IMAGE  # the image in the top-left corner, all the zeros after it
    r = key(op="correlate", image=IMAGE, kernel=KERNEL, padding=1, answer=correlate(padded, KERNEL))
    assert all("padding-one-side" in f for f in slips(r))


def test_off_by_one_window_and_floor_vs_ceil():
    # 27 is also right for n = 31 or a 6-wide window: the known slip comes first, those after it
    [found] = ordered(key(op="output_size", n=32, kernel_size=5, stride=1, answer=27))
    assert found[0] == "size-missing-plus-one" and set(found[1:]) == {"input-misprinted"}
    # (7 - 3)/3 + 1 = 2.33: floor gives 2, ceil 3
    assert first(key(op="output_size", n=7, kernel_size=3, stride=3, answer=3)) == "size-ceil"


def test_bias_counts():
    assert first(key(op="conv_params", in_channels=3, filters=10, kernel_size=5, answer=751)) == "one-bias-per-layer"
    assert first(key(op="conv_params", in_channels=3, filters=10, kernel_size=5, answer=750)) == "biases-left-out"
    assert first(key(op="dense_params", layers=[[400, 100]], answer=40000)) == "dense-biases-left-out"
    r = key(op="correlate", image=IMAGE, kernel=KERNEL, bias=1, stride=3, answer=correlate(IMAGE, KERNEL, 3))
    assert all("bias-dropped" in f for f in slips(r))


def test_channels_forgotten():
    assert first(key(op="conv_params", in_channels=3, filters=10, kernel_size=5, answer=260)) == "channels-forgotten"
    img3 = np.stack([IMAGE, IMAGE[::-1], IMAGE.T])
    ker3 = np.stack([KERNEL, -KERNEL, KERNEL.T])
    r = key(op="correlate", image=img3, kernel=ker3, stride=3, answer=correlate(IMAGE, KERNEL, 3))
    assert all("first-channel-only" in f for f in slips(r))


def test_one_product_wrong():
    printed = correlate(IMAGE, KERNEL)
    # out[0, 0]'s product image[0, 2] x kernel[0, 2] = 0 x 2 is zero; take image[1, 0] x kernel[1, 0] = 1 x 1
    printed[0][0] -= 2 * IMAGE[1, 0] * KERNEL[1, 0]  # its sign flipped
    [found] = slips(key(op="correlate", image=IMAGE, kernel=KERNEL, answer=printed))
    assert "product-sign" in found


def test_two_slips_report_both_cells():
    printed = correlate(IMAGE, KERNEL, 2)
    printed[0][1] = window(IMAGE, KERNEL, 1, 2)  # window one row too low
    assert printed[0][1] != correlate(IMAGE, KERNEL, 2)[0][1]
    printed[1][0] -= IMAGE[2, 0] * KERNEL[0, 0]  # one product left out
    q = key(op="correlate", image=IMAGE, kernel=KERNEL, stride=2, answer=printed).questions[0]
    assert [c.cell for c in q.wrong] == ["out[0, 1]", "out[1, 0]"]
    assert "window-elsewhere" in {d.slip for d in q.wrong[0].diagnoses}
    assert "product-dropped" in {d.slip for d in q.wrong[1].diagnoses}
    for c in q.wrong:  # each with its right value and its working, as explain writes it
        assert c.working.startswith("step ") and c.working_latex.startswith("$$")


def test_two_questions_wrong_in_one_key():
    text = """
[[question]]
id = "size"
op = "output_size"
n = 32
kernel_size = 5
answer = 27

[[question]]
id = "count"
op = "conv_params"
in_channels = 3
filters = 10
kernel_size = 5
answer = 751

[[question]]
id = "fine"
op = "product"
factors = [28, 28]
answer = 784
"""
    r = answers.check_key(answers.loads(text))
    assert [(q.id, q.ok) for q in r.questions] == [("size", False), ("count", False), ("fine", True)]


def test_a_value_no_slip_explains_says_so():
    [found] = slips(key(op="conv_params", in_channels=3, filters=10, kernel_size=5, answer=12345))
    assert found == set()


def test_blank_cells_are_not_checked():
    printed = correlate(IMAGE, KERNEL, 2)
    printed[1][1] = "?"
    assert key(op="correlate", image=IMAGE, kernel=KERNEL, stride=2, answer=printed).ok


def test_formulas():
    assert key(op="param_formula", answer="filters * (channels * kernel_size ** 2 + 1)").ok
    assert key(op="param_formula", layer="dense", answer="(inputs + 1) * units").ok
    assert first(key(op="param_formula", answer="filters * filter_size")) == "formula-biases-left-out"
    assert first(key(op="param_formula", answer="filters * (kernel_size * kernel_size + 1)")) == \
        "formula-channels-forgotten"
    assert first(key(op="param_formula", layer="dense", answer="inputs * units + 1")) == \
        "formula-dense-one-bias-per-layer"
    with pytest.raises(answers.KeyFileError, match="question 'q', field 'answer': width is not allowed"):
        key(op="param_formula", answer="filters * width")


def test_decimals_are_taken_as_rounded_to_the_digits_printed():
    x = [[1, 2], [2, 2]]  # mean 1.75
    assert key(op="avg_pool", image=x, kernel_size=2, answer=[[1.75]]).ok
    assert key(op="avg_pool", image=x, kernel_size=2, answer=[[1.8]]).ok
    assert key(op="avg_pool", image=x, kernel_size=2, answer=[["1.8"]]).ok
    assert key(op="avg_pool", image=x, kernel_size=2, answer=[[1.7]]).ok  # 1.75 rounded half down
    assert not key(op="avg_pool", image=x, kernel_size=2, answer=[[1.6]]).ok
    assert not key(op="avg_pool", image=x, kernel_size=2, answer=[[2]]).ok
    # the average divided by k instead of k*k: 7 / 2 = 3.5
    assert first(key(op="avg_pool", image=x, kernel_size=2, answer=[[3.5]])) == "avg-divides-by-k"


def test_formula_powers_are_bounded():
    with pytest.raises(answers.KeyFileError, match="field 'answer': the power 9 \\*\\* 9 is not allowed"):
        key(op="param_formula", answer="9 ** 9 ** 9")
