"""Assignment 5's accuracy part (issue 13): the grader scores the student's trained parameters
with its own LeNet-5 forward on the held-out digits, which never reach the student's process.

In-process (check(), as in the notebook); the batch grader's path, through the sandbox, is
test_hostile_more.py's a5 class (a lookup by the images' bytes, a nearest neighbour among
minicnn.data's digits, labels read from the data module)."""
from __future__ import annotations

import contextlib
import io
import json

import numpy as np
import pytest

from minicnn import models
from minicnn.course import a5_lenet, checks
from minicnn.course.checks import check
from course_helpers import exec_cells
import reference_tricks as T


@pytest.fixture(scope="module")
def notebook():
    """The solution's code cells up to lenet5 (its layers and network), nothing trained."""
    nb = json.loads((T.REPO / "solutions" / "a5_lenet" / "a5_lenet.ipynb").read_text(encoding="utf-8"))
    sources = []
    for cell in nb["cells"]:
        meta = cell["metadata"].get("nbgrader", {})
        src = "".join(cell["source"])
        if cell["cell_type"] == "code" and not meta.get("grade") and meta.get("grade_id") in (
                "setup", "conv_layer", "dense_layer", "small_layers", "network"):
            sources.append(src)
            if meta.get("grade_id") == "network":
                break
    with contextlib.redirect_stdout(io.StringIO()):
        return exec_cells(sources)


def test_the_graders_lenet5_is_the_course_lenet5():
    ref = models.lenet5(seed=3)
    params = [{"w": layer.weight.value, "b": layer.bias.value} for layer in ref.layers if hasattr(layer, "weight")]
    x = np.random.default_rng(0).random((3, 1, 32, 32)).astype(np.float32)
    np.testing.assert_allclose(a5_lenet.lenet5_logits(params, x), ref.forward(x), rtol=1e-5, atol=1e-5)
    assert [{k: v.shape for k, v in p.items()} for p in params] == list(a5_lenet.LENET_SHAPES)


@pytest.mark.parametrize("seed", [0, 2351, 77])
def test_the_held_out_digits_are_not_sent_to_the_students_process(seed):
    x, _ = a5_lenet.held_out_digits()
    held_out = {image.tobytes() for image in np.asarray(x, np.float32)}
    part = checks.get_part("a5.accuracy")
    for case in part.cases(np.random.default_rng(seed), seed != 0):
        arrays = [a for a in case.args if isinstance(a, np.ndarray)]
        assert len(arrays) == len(case.args) == 1 and arrays[0].shape == a5_lenet.PROBE_SHAPE
        assert not held_out & {image.tobytes() for image in arrays[0]}


def test_a_network_that_looks_the_held_out_digits_up_earns_nothing(notebook, capsys):
    """Untrained LeNet-5 layers (the shapes are right) and a forward that reads each image's label
    from minicnn.data: before, its predictions were what the grader scored (4/4)."""
    x, y = a5_lenet.held_out_digits()
    answers = {image.tobytes(): int(label) for image, label in zip(np.asarray(x, np.float32), y)}
    net = notebook["lenet5"](np.random.default_rng(0))

    def forward(images):
        out = np.zeros((len(images), 10), np.float32)
        for i, image in enumerate(np.asarray(images, np.float32)):
            out[i, answers.get(image.tobytes(), 0)] = 1.0
        return out
    net.forward = forward
    assert check("a5.accuracy", net, points=4) == 0.0
    out = capsys.readouterr().out
    assert "measured by the grader" in out and "with your trained parameters" in out, out
    assert "your net.forward gives other outputs than LeNet-5's forward" in out, out


def test_a_network_without_lenet5s_parameters_is_told_what_is_read(notebook, capsys):
    class Memorised:
        layers = []

        def forward(self, images):
            return np.zeros((len(images), 10), np.float32)
    assert check("a5.accuracy", Memorised(), points=4) == 0.0
    out = capsys.readouterr().out
    assert "net.layers holds 0 layers with parameters, LeNet-5 has 5" in out, out
    net = notebook["lenet5"](np.random.default_rng(0))
    net.layers[-1] = notebook["Dense"](84, 2, rng=np.random.default_rng(1))   # two classes, not ten
    assert check("a5.accuracy", net, points=4) == 0.0
    out = capsys.readouterr().out
    assert "layer 5's params['w'] has shape (2, 84), expected (10, 84)" in out, out

