"""`minicnn explain`: the lectures' step-by-step slides, reproduced (minicnn.explain and the CLI)."""
import os
import re

import numpy as np
import pytest

import minicnn
from minicnn import cli, examples, explain

# Aksoy (Halmstad), "Convolutional Neural Networks", slide "Introduction: Image Convolution": the nine
# steps as the slide writes them (the products are image value x kernel value).
HALMSTAD_STEPS = [
    "(1x1) + (1x0) + (1x1) + (0x0) + (1x1) + (1x0) + (0x1) + (0x0) + (1x1) = 4",
    "(1x1) + (1x0) + (0x1) + (1x0) + (1x1) + (1x0) + (0x1) + (1x0) + (1x1) = 3",
    "(1x1) + (0x0) + (0x1) + (1x0) + (1x1) + (0x0) + (1x1) + (1x0) + (1x1) = 4",
    "(0x1) + (1x0) + (1x1) + (0x0) + (0x1) + (1x0) + (0x1) + (0x0) + (1x1) = 2",
    "(1x1) + (1x0) + (1x1) + (0x0) + (1x1) + (1x0) + (0x1) + (1x0) + (1x1) = 4",
    "(1x1) + (1x0) + (0x1) + (1x0) + (1x1) + (1x0) + (1x1) + (1x0) + (0x1) = 3",
    "(0x1) + (0x0) + (1x1) + (0x0) + (0x1) + (1x0) + (0x1) + (1x0) + (1x1) = 2",
    "(0x1) + (1x0) + (1x1) + (0x0) + (1x1) + (1x0) + (1x1) + (1x0) + (0x1) = 3",
    "(1x1) + (1x0) + (1x1) + (1x0) + (1x1) + (0x0) + (1x1) + (0x0) + (0x1) = 4",
]
HALMSTAD_LECTURE = "/work/shared/lectures/004_cbfbb5ef5ad573bb.txt"


def _conv(example_id, **kw):
    spec = explain.from_example(example_id)
    return explain.explain_conv(spec["image"], spec["kernel"], spec["stride"], spec["padding"], spec["bias"], **kw)


def test_halmstad_nine_steps_are_the_slides_lines():
    e = _conv("halmstad-x-kernel-nine-steps")
    lines = e.text().splitlines()
    assert len(lines) == 9
    for k, (line, want) in enumerate(zip(lines, HALMSTAD_STEPS)):
        assert line == f"step {k + 1}: out[{k // 3}, {k % 3}] = {want}"


def test_halmstad_latex_matches_the_slides_latex():
    e = _conv("halmstad-x-kernel-nine-steps")
    blocks = [line for line in e.latex().splitlines() if line.startswith("$$")]
    assert len(blocks) == 9
    for block, want in zip(blocks, HALMSTAD_STEPS):
        assert block.startswith(r"$$\begin{aligned} & ") and block.endswith(r" \end{aligned}$$")
        assert block.count(r" + \\ & ") == 2   # one kernel row per line, as on the slide
        body = block[len(r"$$\begin{aligned} & "):-len(r" \end{aligned}$$")]
        assert body.replace(r" \\ & ", " ").replace(r" \times ", "x") == want


@pytest.mark.skipif(not os.path.exists(HALMSTAD_LECTURE), reason="the lecture text is not on this machine")
def test_halmstad_latex_is_character_for_character_the_lecture_text():
    with open(HALMSTAD_LECTURE, encoding="utf-8") as fh:
        lecture = fh.read()
    slide_blocks = [re.sub(r"\s+", " ", b).strip() for b in re.findall(r"\$\$(\\begin\{aligned\}.*?\\end\{aligned\})\$\$",
                                                                       lecture, re.S)]
    ours = [re.sub(r"\s+", " ", b[2:-2]).strip() for b in _conv("halmstad-x-kernel-nine-steps").latex().splitlines()
            if b.startswith("$$")]
    assert slide_blocks == ours


def test_sobel_compact_form_is_the_ferrara_slide():
    e = _conv("ferrara-sobel-dot-product")
    assert e.text(compact=True) == "step 1: out[0, 0] = -3 + 1 - 2 + 6 - 1 + 1 = 2"
    assert e.text() == "step 1: out[0, 0] = (3x-1) + (2x0) + (1x1) + (1x-2) + (2x0) + (3x2) + (1x-1) + (1x0) + (1x1) = 2"
    assert e.text(times="·") .startswith("step 1: out[0, 0] = (3·-1) + (2·0)")
    assert e.latex(compact=True).splitlines()[1] == "$$-3 + 1 - 2 + 6 - 1 + 1 = 2$$"


def test_sjtu_steps_and_result():
    e = _conv("sjtu-single-channel-5x5-3x3")
    assert [s.value for s in e.steps[:4]] == [7, 10, 3, -1]     # "step 1" ... "step 4" on the slides
    np.testing.assert_array_equal(e.output, examples.get("sjtu-single-channel-5x5-3x3").expected)
    first = e.text().splitlines()[0]
    assert first == ("step 1: out[0, 0] = (1x-1) + (-1x1) + (0x2) + (-1x1) + (-2x-1) + (2x3) + (1x0) + (2x-1) + "
                     "(-2x-2) = 7")


def test_halmstad_rgb_with_bias_sums_the_channels_as_the_slide():
    e = _conv("halmstad-rgb-with-bias", at=(0, 0))
    lines = e.text(compact=True).splitlines()
    assert lines[0] == "step 1: out[0, 0]"
    assert [line.split(" = ")[-1] for line in lines[1:4]] == ["308", "-498", "164"]
    assert lines[-1] == "  308 - 498 + 164 + 1 = -25"
    assert "(0x-1) + (0x-1) + (0x1) + (0x0) + (156x1)" in e.text()   # padded zeros are shown


@pytest.mark.parametrize("ex", [e for e in examples.load() if e.op in ("correlate2d", "conv2d", "max_pool2d")],
                         ids=lambda e: e.id)
def test_every_conv_and_pool_example_explains_to_what_the_kernels_compute(ex):
    spec = explain.from_example(ex.id)
    if spec["kind"] == "conv":
        e = explain.explain_conv(spec["image"], spec["kernel"], spec["stride"], spec["padding"], spec["bias"])
    else:
        e = explain.explain_pool(spec["image"], spec["kernel_size"], spec["stride"], spec["padding"])
    got = examples.run(ex)
    want, printed = ex.expected_array()
    got, want, printed = (a.reshape(e.output.shape) for a in (got, want, printed))  # conv2d keeps (1, H, W)
    np.testing.assert_allclose(e.output, got, rtol=0, atol=1e-9)
    assert np.all(e.output[printed] == want[printed])
    assert len(e.steps) == e.output.size
    for s in e.steps:   # each printed line ends with the value it explains
        line = e.step_text(s) if spec["kind"] == "pool" else e.step_text(s)[-1]
        assert line.endswith(f"= {explain.fmt(s.value)}")


def test_random_inputs_agree_with_correlate2d_conv2d_and_pooling(rng):
    for _ in range(15):
        h, w = rng.integers(3, 9, 2)
        kh, kw = rng.integers(1, 4, 2)
        stride = tuple(int(v) for v in rng.integers(1, 3, 2))
        pad = tuple(int(v) for v in rng.integers(0, 2, 2))
        img = rng.integers(-5, 6, (h, w)).astype(float)
        ker = rng.integers(-3, 4, (kh, kw)).astype(float)
        np.testing.assert_allclose(explain.explain_conv(img, ker, stride, pad).output,
                                   minicnn.correlate2d(img, ker, stride, pad), atol=1e-9)
        x3 = rng.standard_normal((2, h, w))
        k3 = rng.standard_normal((2, kh, kw))
        np.testing.assert_allclose(explain.explain_conv(x3, k3, stride, pad, bias=0.5).output,
                                   minicnn.conv2d(x3[None], k3[None], [0.5], stride, pad)[0, 0], atol=1e-9)
        size = (int(min(kh + 1, h)), int(min(kw + 1, w)))
        ppad = (min(pad[0], size[0] // 2), min(pad[1], size[1] // 2))
        for mode, fn in (("max", minicnn.max_pool2d), ("avg", minicnn.avg_pool2d)):
            np.testing.assert_allclose(explain.explain_pool(x3, size, stride, ppad, mode).output,
                                       fn(x3[None], size, stride, ppad)[0], atol=1e-9)


def test_pool_lines():
    e = explain.explain_pool([[1, 3], [5, 2]], 2)
    assert e.text() == "step 1: out[0, 0] = max(1, 3, 5, 2) = 5"
    assert explain.explain_pool([[1, 3], [5, 2]], 2, mode="avg").text() == "step 1: out[0, 0] = (1 + 3 + 5 + 2) / 4 = 2.75"
    assert explain.explain_pool([[1, 3], [5, 2]], 2, mode="avg").latex().splitlines()[1] == \
        r"$$\frac{1 + 3 + 5 + 2}{4} = 2.75$$"


def test_bad_arguments_are_explained():
    with pytest.raises(ValueError, match="larger than the padded input"):
        explain.explain_conv([[1, 2]], [[1, 2, 3]])
    with pytest.raises(ValueError, match="channel"):
        explain.explain_conv(np.zeros((2, 3, 3)), np.zeros((3, 2, 2)))
    with pytest.raises(ValueError, match="outside the output"):
        explain.explain_conv(np.zeros((3, 3)), np.zeros((2, 2)), at=(5, 0))
    with pytest.raises(ValueError, match="stride"):
        explain.explain_conv(np.zeros((3, 3)), np.zeros((2, 2)), stride=0)
    with pytest.raises(ValueError, match="same"):
        explain.explain_conv(np.zeros((3, 3)), np.zeros((2, 2)), padding="same")
    with pytest.raises(ValueError, match="not a convolution or pooling"):
        explain.from_example("zju-uoe-two-class-cnn")


def test_parse_matrix_reads_inline_files_and_kernel_names(tmp_path):
    np.testing.assert_array_equal(explain.parse_matrix("1,2;3 4"), [[1, 2], [3, 4]])
    assert explain.parse_matrix("1,2;3,4|5,6;7,8").shape == (2, 2, 2)
    np.testing.assert_array_equal(explain.parse_matrix("sobel_x"), examples.kernels()["sobel_x"]["values"])
    txt = tmp_path / "k.txt"
    txt.write_text("# a kernel\n1 0\n0 1\n\n2 2\n2 2\n")
    np.testing.assert_array_equal(explain.parse_matrix(str(txt)), [[[1, 0], [0, 1]], [[2, 2], [2, 2]]])
    npy = tmp_path / "x.npy"
    np.save(npy, np.arange(6.0).reshape(2, 3))
    np.testing.assert_array_equal(explain.parse_matrix(str(npy)), np.arange(6.0).reshape(2, 3))
    with pytest.raises(ValueError, match="different lengths"):
        explain.parse_matrix("1,2;3")
    with pytest.raises(ValueError, match="cannot read"):
        explain.parse_matrix("1,a;3,4")
    with pytest.raises(ValueError, match="kernel name"):
        explain.parse_matrix("sobel_z")


# --------------------------------------------------------------------------- the CLI

def test_cli_explain_example_prints_the_steps_and_checks_the_slide(capsys):
    assert cli.main(["explain", "conv", "--example", "halmstad-x-kernel-nine-steps"]) == 0
    out = capsys.readouterr().out
    for want in HALMSTAD_STEPS:
        assert want in out
    assert "Aksoy" in out and out.rstrip().endswith("matches the slide")


def test_cli_explain_inline_latex_and_compact(capsys):
    assert cli.main(["explain", "conv", "--input", "3,2,1;1,2,3;1,1,1", "--kernel", "sobel_x", "--compact"]) == 0
    assert "step 1: out[0, 0] = -3 + 1 - 2 + 6 - 1 + 1 = 2" in capsys.readouterr().out
    assert cli.main(["explain", "conv", "--input", "1,1,1,0,0;0,1,1,1,0;0,0,1,1,1;0,0,1,1,0;0,1,1,0,0",
                     "--kernel", "x_shape", "--latex", "--at", "0,0"]) == 0
    out = capsys.readouterr().out
    assert (r"$$\begin{aligned} & (1 \times 1) + (1 \times 0) + (1 \times 1) + \\ & (0 \times 0) + (1 \times 1) + "
            r"(1 \times 0) + \\ & (0 \times 1) + (0 \times 0) + (1 \times 1) = 4 \end{aligned}$$") in out
    assert r"\begin{bmatrix} 4 & 3 & 4 \\ 2 & 4 & 3 \\ 2 & 3 & 4 \end{bmatrix}" in out


def test_cli_explain_pool_and_stride_padding(capsys):
    assert cli.main(["explain", "pool", "--example", "tcd-max-pooling-4x4"]) == 0
    out = capsys.readouterr().out
    assert "step 1: out[0, 0] = max(0, 10, 4, 3) = 10" in out and "matches the slide" in out
    assert cli.main(["explain", "conv", "--example", "ferrara-5x5-stride-2-padding-1"]) == 0
    out = capsys.readouterr().out
    assert "stride 2, padding 1" in out and "matches the slide" in out


def test_cli_explain_bad_input_is_a_clear_error(capsys):
    assert cli.main(["explain", "conv", "--input", "1,2;3", "--kernel", "1"]) == 2
    err = capsys.readouterr().err
    assert "minicnn explain: --input: rows have different lengths" in err
    assert cli.main(["explain", "conv", "--example", "no-such-example"]) == 2
    assert "no worked example 'no-such-example'" in capsys.readouterr().err
    assert cli.main(["explain", "pool", "--example", "halmstad-x-kernel-nine-steps"]) == 2
    assert "use `minicnn explain conv`" in capsys.readouterr().err
    assert cli.main(["explain", "conv", "--example", "halmstad-rgb-with-bias"]) == 0
    out = capsys.readouterr().out
    assert "\n  308 - 498 + 164 + 1 = -25\n" in out and out.rstrip().endswith("matches the slide")


def test_cli_explain_figure(tmp_path, capsys):
    png = tmp_path / "step.png"
    assert cli.main(["explain", "conv", "--example", "halmstad-x-kernel-nine-steps", "--at", "1,1",
                     "--figure", str(png)]) == 0
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_cli_summary_prints_the_lecture_tables(capsys):
    assert cli.main(["summary", "zju-two-class", "--notation", "hwc"]) == 0
    out = capsys.readouterr().out
    assert "Convolution 6 x (f=5, s=1, p=0) + relu" in out and "(28,28,6)" in out
    assert "TOTAL  47773 parameters" in out and "Output + sigmoid" in out
    assert cli.main(["summary"]) == 0
    out = capsys.readouterr().out
    assert "(120, 1, 1)" in out and "TOTAL  61706 parameters" in out and "Ding" in out
