"""Every slip that names one of the course's mutants computes what that mutant computes.

The mutant is run for real: the instructor's solution cell from solutions/, with the mutant's edit
applied by minicnn.course.mutation.apply, executed as plain Python (njit replaced by the identity,
so no compilation), and compared with the slip on random inputs."""
import json
from pathlib import Path

import numpy as np
import pytest

from minicnn.answers import slips as S
from minicnn.answers.formula import CONV_SAMPLES
from minicnn.course import mutation as M

SOLUTIONS = Path(__file__).resolve().parents[2] / "solutions"
MUTANTS = M.load(SOLUTIONS / "mutants.py")
A1 = SOLUTIONS / "a1_convolution" / "a1_convolution.ipynb"
A2 = SOLUTIONS / "a2_volumes_pooling" / "a2_volumes_pooling.ipynb"
BY_ID = {s.id: s for s in S.SLIPS}


def cells(path):
    nb = json.loads(path.read_text())
    out = {}
    for c in nb["cells"]:
        gid = c.get("metadata", {}).get("nbgrader", {}).get("grade_id")
        if gid:
            out[gid] = "".join(c["source"]) if isinstance(c["source"], list) else c["source"]
    return out


def run_cells(path, names, mutant=None):
    """Execute solution cells in order (the mutant's cell mutated); returns the namespace."""
    src = cells(path)
    ns = {"np": np, "njit": lambda f: f}
    for name in names:
        code = src[name]
        if mutant is not None and mutant.cell == name:
            code = M.apply(mutant, code)
        exec(compile(code, f"<{name}>", "exec"), ns)
    return ns


def mutant(name):
    return {m.name: m for m in MUTANTS}[name]


def slip_for(name):
    found = [s for s in S.SLIPS if name in s.mutants]
    assert found, f"no slip names mutant {name}"
    return found


def as_array(cells_, shape):
    out = np.full(shape, np.nan)
    for i, j in np.ndindex(shape):
        out[i, j] = cells_.get(f"out[{i}, {j}]", np.nan)
    return out


rng = np.random.default_rng(18)

CONV_MUTANTS = ["zero-pad-top-left", "correlate-padding-off-by-one", "correlate-stride-ignored",
                "correlate-kernel-flipped"]


@pytest.mark.parametrize("name", CONV_MUTANTS)
def test_correlate_slips_are_the_mutants(name):
    m = mutant(name)
    ns = run_cells(A1, ["zero_pad", "correlate2d"], m)
    compared = 0
    for _ in range(20):
        image = rng.integers(-3, 4, (int(rng.integers(5, 9)), int(rng.integers(5, 9)))).astype(float)
        kernel = rng.integers(-2, 3, (3, 3)).astype(float)
        stride, padding = int(rng.integers(1, 4)), int(rng.integers(1, 3))
        want = ns["correlate2d"](image, kernel, stride, padding)
        inp = {"image": image[None], "kernel": kernel[None], "stride": stride, "padding": padding, "bias": 0.0,
               "flip": False}
        for slip in slip_for(name):
            got = slip.run(inp)
            if not got:  # the slip does not apply here (stride 1 for stride-ignored): nothing to compare
                continue
            compared += 1
            assert got["output shape"] == want.shape, slip.id
            np.testing.assert_allclose(as_array(got, want.shape), want, err_msg=slip.id)
    assert compared >= 5


@pytest.mark.parametrize("name", ["convolve-not-flipped", "convolve-flips-rows-only"])
def test_convolve_slips_are_the_mutants(name):
    ns = run_cells(A1, ["zero_pad", "correlate2d", "convolve2d"], mutant(name))
    for _ in range(20):
        image = rng.integers(-3, 4, (6, 7)).astype(float)
        kernel = rng.integers(-2, 3, (3, 2)).astype(float)
        stride, padding = int(rng.integers(1, 3)), int(rng.integers(0, 2))
        want = ns["convolve2d"](image, kernel, stride, padding)
        inp = {"image": image[None], "kernel": kernel[None], "stride": stride, "padding": padding, "bias": 0.0,
               "flip": True}
        for slip in slip_for(name):
            np.testing.assert_allclose(as_array(slip.run(inp), want.shape), want, err_msg=slip.id)


@pytest.mark.parametrize("name", ["conv-bias-dropped", "conv-first-channel-only", "conv-stride-ignored",
                                  "conv-padding-off-by-one"])
def test_conv2d_slips_are_the_mutants(name):
    ns = run_cells(A2, ["conv2d"], mutant(name))
    for _ in range(10):
        x = rng.integers(-3, 4, (3, 7, 6)).astype(float)
        w = rng.integers(-2, 3, (3, 3, 3)).astype(float)
        b = float(rng.integers(1, 5))
        stride, padding = int(rng.integers(2, 4)), int(rng.integers(1, 3))
        want = ns["conv2d"](x[None], w[None], np.array([b]), stride, padding, 1)[0, 0]
        inp = {"image": x, "kernel": w, "stride": stride, "padding": padding, "bias": b, "flip": False}
        for slip in slip_for(name):
            np.testing.assert_allclose(as_array(slip.run(inp), want.shape), want, err_msg=slip.id)


@pytest.mark.parametrize("name,cell,mode", [("max-pool-wrong-window", "max_pool2d", "max"),
                                            ("max-pool-starts-at-zero", "max_pool2d", "max"),
                                            ("avg-pool-divides-by-k", "avg_pool2d", "avg")])
def test_pool_slips_are_the_mutants(name, cell, mode):
    ns = run_cells(A2, [cell], mutant(name))
    for _ in range(10):
        x = rng.integers(-9, 3, (9, 8)).astype(float)
        k, stride = 2, 3  # stride > k keeps i*k windows inside the image
        want = ns[cell](x[None, None], k, stride)[0, 0]
        inp = {"image": x[None], "kernel_size": k, "stride": stride, "padding": 0, "mode": mode, "channels": False}
        for slip in slip_for(name):
            got = as_array(slip.run(inp), want.shape)
            if name == "max-pool-wrong-window":
                # the mutated solution still starts its running maximum at x[i*stride, j*stride], a cell
                # outside the moved window; the slip (the window moved, nothing else) agrees wherever
                # that cell does not exceed the moved window's maximum, and only there is compared
                seed = x[::stride, ::stride][:want.shape[0], :want.shape[1]]
                keep = seed <= got
                assert keep.sum() >= want.size // 2
                got, want = got[keep], want[keep]
            np.testing.assert_allclose(got, want, err_msg=slip.id)


@pytest.mark.parametrize("name", ["output-size-missing-plus-one", "output-size-padding-once"])
def test_size_slips_are_the_mutants(name):
    ns = run_cells(A1, ["output_size"], mutant(name))
    for _ in range(50):
        n, k, s, p = int(rng.integers(5, 40)), int(rng.integers(1, 6)), int(rng.integers(1, 5)), int(rng.integers(1, 4))
        inp = {"n": n, "kernel_size": k, "stride": s, "padding": p, "dilation": 1, "layer": "conv",
               "stride_given": True}
        for slip in slip_for(name):
            assert slip.run(inp)["answer"] == ns["output_size"](n, k, s, p), slip.id


@pytest.mark.parametrize("name", ["param-count-one-bias-per-layer", "param-count-ignores-channels"])
def test_param_slips_are_the_mutants(name):
    ns = run_cells(A1, ["param_count"], mutant(name))
    for _ in range(50):
        c, f, k = int(rng.integers(2, 10)), int(rng.integers(1, 20)), int(rng.integers(1, 6))
        want = ns["param_count"](c, f, k)
        for slip in slip_for(name):
            if slip.ops == ("conv_params",):
                assert slip.run({"in_channels": c, "filters": f, "kernel_size": k, "bias": True})["answer"] == want
            elif slip.ops == ("param_formula",):  # the formula's counts on its sample layers
                ns_counts = tuple(ns["param_count"](c_, f_, k_) for c_, f_, k_ in CONV_SAMPLES)
                assert slip.run({"layer": "conv"})["formula"] == ns_counts
            else:  # the conv_layer question's parameter count
                assert slip.run({"input": (c, 12, 12), "filters": f, "kernel_size": k, "stride": 1,
                                 "padding": 0})["params"] == want


@pytest.mark.parametrize("name", ["table-one-bias-per-layer", "table-dense-not-flattened", "table-pool-stride-one"])
def test_table_slips_are_the_mutants(name):
    ns = run_cells(A2, ["layer_table"], mutant(name))
    layers = [{"type": "conv", "filters": 6, "kernel_size": 5}, {"type": "max_pool", "kernel_size": 2},
              {"type": "conv", "filters": 16, "kernel_size": 3, "padding": 1}, {"type": "avg_pool", "kernel_size": 2},
              {"type": "dense", "units": 30}, {"type": "dense", "units": 10}]
    for chw in [(1, 32, 32), (3, 28, 30)]:
        want = ns["layer_table"](chw, layers)
        for slip in slip_for(name):
            got = slip.run({"input": chw, "layers": layers, "has_input_row": False})
            assert [(got[f"rows[{r}].shape"], got[f"rows[{r}].params"]) for r in range(len(want))] == \
                [(tuple(s), p) for s, p in want], slip.id


def test_every_named_mutant_is_compared():
    tested = set(CONV_MUTANTS) | {"convolve-not-flipped", "convolve-flips-rows-only", "conv-bias-dropped",
                                  "conv-first-channel-only", "conv-stride-ignored", "conv-padding-off-by-one",
                                  "max-pool-wrong-window", "max-pool-starts-at-zero", "avg-pool-divides-by-k",
                                  "output-size-missing-plus-one", "output-size-padding-once",
                                  "param-count-one-bias-per-layer", "param-count-ignores-channels",
                                  "table-one-bias-per-layer", "table-dense-not-flattened", "table-pool-stride-one"}
    named = {m for s in S.SLIPS for m in s.mutants}
    assert named == tested


def test_every_mutant_a_slip_names_is_one_of_the_course():
    """The slips name mutants as plain strings (the package does not ship the mutants): each name
    must still be one of solutions/mutants.py."""
    known = {m.name for m in MUTANTS}
    assert [(s.id, name) for s in S.SLIPS for name in s.mutants if name not in known] == []
