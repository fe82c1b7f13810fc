"""Every slip in the catalogue of slips is found by the search when a key prints what that slip
computes (the slip's own numbers are used here: this tests the search and the key plumbing; the
slips' arithmetic is tested against the course's mutants and against hand-computed keys)."""
import numpy as np
import pytest

from minicnn import answers
from minicnn.answers import slips as S
from minicnn.answers.registry import OPS

IMAGE = (np.arange(36.0).reshape(6, 6) * 7 % 11 - 4).tolist()
KERNEL = [[-1, 1, 2], [1, 1, 0], [-1, -2, 0]]
IMAGE3 = [IMAGE, np.flipud(IMAGE).tolist(), np.transpose(IMAGE).tolist()]
KERNEL3 = [KERNEL, (-np.array(KERNEL)).tolist(), np.transpose(KERNEL).tolist()]
NEG = (-(np.arange(64.0).reshape(8, 8) % 5) - 1).tolist()

QUESTIONS = [
    {"op": "correlate", "image": IMAGE, "kernel": KERNEL, "stride": 2, "padding": 1, "bias": 1},
    {"op": "correlate", "image": IMAGE3, "kernel": KERNEL3, "stride": 2},
    {"op": "convolve", "image": IMAGE, "kernel": KERNEL, "stride": 2, "padding": 1, "bias": 1},
    {"op": "convolve", "image": IMAGE3, "kernel": KERNEL3},
    {"op": "max_pool", "image": (np.arange(64.0).reshape(8, 8) * 5 % 13).tolist(), "kernel_size": 2, "stride": 3},
    {"op": "max_pool", "image": NEG, "kernel_size": 2},
    {"op": "avg_pool", "image": (np.arange(64.0).reshape(8, 8) * 5 % 13).tolist(), "kernel_size": 2, "stride": 3},
    {"op": "output_size", "n": 32, "kernel_size": 5, "stride": 2, "padding": 2},
    {"op": "output_size", "n": 31, "kernel_size": 3, "layer": "pool"},
    {"op": "output_size", "n": 32, "kernel_size": 3, "dilation": 2},
    {"op": "transposed_output_size", "n": 10, "kernel_size": 3, "stride": 2, "padding": 1, "output_padding": 1},
    {"op": "conv_params", "in_channels": 3, "filters": 10, "kernel_size": 5},
    {"op": "dense_params", "layers": [[400, 100], [100, 10]]},
    {"op": "conv_layer", "input": [32, 32, 3], "filters": 10, "kernel_size": 5, "padding": 2},
    {"op": "network", "input": [32, 32, 3], "layers": [{"type": "conv", "filters": 6, "kernel_size": 5},
                                                       {"type": "max_pool", "kernel_size": 2},
                                                       {"type": "dense", "units": 10}]},
    {"op": "receptive_field", "layers": [[3, 2, 1], [3, 1, 2]]},
    {"op": "l1_distance", "a": [[1, 5], [2, 0]], "b": [[3, 1], [2, 4]]},
]
FORMULAS = {"formula-one-bias-per-layer": ("conv", "filters * filter_size + 1"),
            "formula-biases-left-out": ("conv", "filters * filter_size"),
            "formula-channels-forgotten": ("conv", "filters * (kernel_size ** 2 + 1)"),
            "formula-dense-biases-left-out": ("dense", "inputs * units"),
            "formula-dense-one-bias-per-layer": ("dense", "inputs * units + 1")}


def hwc(chw):
    return [chw[1], chw[2], chw[0]] if len(chw) == 3 else list(chw)


def printed_answer(op, right, slipped):
    """The answer a slide would print had it made the slip everywhere."""
    got = {**right, **slipped}
    if op in ("correlate", "convolve", "max_pool", "avg_pool"):
        shape = got["output shape"]
        return np.array([slipped.get("out[" + ", ".join(map(str, idx)) + "]", "?")
                         for idx in np.ndindex(shape)], dtype=object).reshape(shape).tolist()
    if op == "conv_layer":
        return {"shape": hwc(got["shape"]), "weights": got["weights"], "params": got["params"], "units": got["units"]}
    if op == "network":
        rows = sorted({int(c[5:c.index("]")]) for c in got if c.startswith("rows[")})
        return {"rows": [{"shape": hwc(got[f"rows[{r}].shape"]), "size": got[f"rows[{r}].size"],
                          "params": got[f"rows[{r}].params"]} for r in rows], "total": got["total"]}
    return got["answer"]


def found_by_search(slip):
    for question in QUESTIONS:
        if question["op"] not in slip.ops:
            continue
        q = answers.parse({"question": [{"id": "q", **question, "answer": 0}]}).questions[0]
        op = OPS[q.op]
        inp = op.read(q, {})
        right, slipped = op.compute(inp), slip.run(dict(inp))
        if not any(k in right and right[k] != v for k, v in slipped.items()):
            continue  # the slip changes nothing in this question
        q.answer = printed_answer(q.op, right, slipped)
        result = answers.check_question(q)
        assert result.wrong, (slip.id, question)
        return {d.slip for c in result.wrong for d in c.diagnoses}
    pytest.fail(f"no question here where slip {slip.id} changes a value")


@pytest.mark.parametrize("slip", [s for s in S.SLIPS if s.id not in FORMULAS], ids=lambda s: s.id)
def test_every_slip_is_found(slip):
    assert slip.id in found_by_search(slip)


@pytest.mark.parametrize("slip_id", sorted(FORMULAS))
def test_every_formula_slip_is_found(slip_id):
    layer, text = FORMULAS[slip_id]
    q = answers.parse({"question": [{"id": "q", "op": "param_formula", "layer": layer, "answer": text}]})
    [cell] = answers.check_key(q).questions[0].wrong
    assert slip_id in {d.slip for d in cell.diagnoses}
