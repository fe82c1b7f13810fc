"""a2.layer_table's cases (issue 13, finding 5): every seed has convolutions with strides 2 and 3
(and padding) and poolings other than 2x2 stride 2, so a table that ignores the convolution's
stride, or halves H and W at every pooling, cannot get 3 of 3."""
from __future__ import annotations

import pytest

from minicnn.course import checks
from minicnn.course import mutation as mutants
from minicnn.course.part import case_rng

from reference_tricks import REPO, _solution_cell

SEEDS = (checks.PUBLIC_SEED, 1, 77, 5167)
MUTANTS = mutants.load(REPO / "solutions" / "mutants.py")


def _solution(mutant=None):
    src = _solution_cell("a2_volumes_pooling", "layer_table")
    if mutant is not None:
        src = mutants.apply(mutant, src)
    ns = {"__name__": "__main__"}
    exec(compile(src, "<layer_table>", "exec"), ns)
    return ns["layer_table"]


def _careless(input_chw, layers):
    """Ignores a convolution's stride; every pooling halves H and W."""
    shape, rows = tuple(input_chw), []
    for layer in layers:
        if layer["type"] == "conv":
            c, h, w = shape
            k, p = layer["kernel_size"], layer.get("padding", 0)
            p = (k - 1) // 2 if p == "same" else p
            shape, params = (layer["filters"], h + 2 * p - k + 1, w + 2 * p - k + 1), \
                layer["filters"] * (c * k * k + 1)
        elif layer["type"] in ("max_pool", "avg_pool"):
            shape, params = (shape[0], shape[1] // 2, shape[2] // 2), 0
        else:
            n = 1
            for v in shape:
                n *= v
            shape, params = (layer["units"],), layer["units"] * (n + 1)
        rows.append((shape, params))
    return rows


def test_every_seed_has_strided_convolutions_and_other_poolings():
    part = checks.get_part("a2.layer_table")
    for seed in SEEDS:
        layers = [layer for case in part.cases(case_rng(part.key, seed), seed != checks.PUBLIC_SEED)
                  for layer in case.args[1]]
        convs = [(layer.get("stride", 1), layer.get("padding", 0)) for layer in layers if layer["type"] == "conv"]
        pools = [(layer["kernel_size"], layer.get("stride", layer["kernel_size"]))
                 for layer in layers if layer["type"] != "conv" and layer["type"] != "dense"]
        assert any(s == 2 and isinstance(p, int) and p > 0 for s, p in convs), seed
        assert any(s == 3 for s, _ in convs), seed
        assert (3, 3) in pools and (2, 1) in pools, seed


@pytest.mark.parametrize("seed", SEEDS)
def test_the_solution_gets_3_and_a_careless_table_less(seed):
    assert checks.check("a2.layer_table", _solution(), points=3, seed=seed, quiet=True) == 3.0
    assert checks.check("a2.layer_table", _careless, points=3, seed=seed, quiet=True) < 3.0


@pytest.mark.parametrize("name", ["table-conv-stride-ignored", "table-pool-always-halves"])
def test_the_new_mutants_lose_points(name):
    mutant = next(m for m in MUTANTS if m.name == name)
    for seed in SEEDS:
        assert checks.check("a2.layer_table", _solution(mutant), points=3, seed=seed, quiet=True) < 3.0
