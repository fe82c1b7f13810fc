"""Assignment 1's convolve2d is graded on its own work (issue 16): a stride or padding slip in
correlate2d, which the notebook's convolve2d calls, is charged once, in correlate2d's part.

The submissions are the solution notebook with solutions/mutants.py's known-wrong edits applied
to its cells, checked in this process as the notebook's test cells do."""
from __future__ import annotations

import contextlib
import io
import json

import pytest

from course_helpers import exec_cells
from minicnn.course import a1_convolution, mutation
from minicnn.course.checks import check
import reference_tricks as T

A1 = "a1_convolution"
CELLS = ("setup", "zero_pad", "correlate2d", "convolve2d")


def _cells() -> dict:
    nb = json.loads((T.REPO / "solutions" / A1 / f"{A1}.ipynb").read_text(encoding="utf-8"))
    return {c["metadata"]["nbgrader"]["grade_id"]: "".join(c["source"]) for c in nb["cells"]
            if c.get("metadata", {}).get("nbgrader", {}).get("grade_id") in CELLS}


MUTANTS = {m.name: m for m in mutation.load(T.REPO / "solutions" / "mutants.py")}


def _notebook(*names, edits=()):
    """The solution's cells with the named mutants (and any (cell, old, new) edits) applied."""
    cells = _cells()
    for name in names:
        cells[MUTANTS[name].cell] = mutation.apply(MUTANTS[name], cells[MUTANTS[name].cell])
    for cell, old, new in edits:
        assert cells[cell].count(old) == 1, old
        cells[cell] = cells[cell].replace(old, new)
    with contextlib.redirect_stdout(io.StringIO()):
        return exec_cells([cells[c] for c in CELLS])


@pytest.mark.parametrize("mutant", ["correlate-stride-ignored", "correlate-padding-off-by-one"])
def test_a_correlate2d_slip_costs_correlate2d_points_only(mutant, capsys):
    ns = _notebook(mutant)
    assert not ns["__cell_errors__"]
    if mutant == "correlate-stride-ignored":   # still charged where it is made
        assert check("a1.correlate2d", ns["correlate2d"], points=4) < 4.0
    for seed in (0, 8369):
        assert check("a1.convolve2d", ns["convolve2d"], points=2, seed=seed) == 2.0, capsys.readouterr().out


def test_a_convolve2d_that_leans_on_a_flipping_correlate2d_earns_nothing_for_it(capsys):
    """correlate2d flips the kernel (it computes convolution) and convolve2d does not: together
    convolve2d's results are right, but not by its own work: it scores as a convolve2d that forgets
    the flip beside a correct correlate2d (the cases with a symmetric kernel pass either way)."""
    ns = _notebook("correlate-kernel-flipped", "convolve-not-flipped")
    alone = _notebook("convolve-not-flipped")
    score = check("a1.convolve2d", ns["convolve2d"], points=2)
    out = capsys.readouterr().out
    assert score < 2.0 and "the kernel is not flipped" in out, out
    assert score == check("a1.convolve2d", alone["convolve2d"], points=2)


def test_convolve2ds_own_mistakes_still_cost_its_points(capsys):
    ns = _notebook("convolve-flips-rows-only")   # (convolve-not-flipped: in the test above)
    assert check("a1.convolve2d", ns["convolve2d"], points=2, seed=8369) < 2.0


def test_a_correct_convolve2d_that_does_its_own_loops_is_left_alone(capsys):
    ns = _notebook(edits=[("convolve2d", "    return correlate2d(image, flipped, stride, padding)\n",
                           "    padded = zero_pad(image, padding)\n"
                           "    out = np.zeros(((padded.shape[0] - kh) // stride + 1, (padded.shape[1] - kw) // stride + 1))\n"
                           "    for i in range(out.shape[0]):\n"
                           "        for j in range(out.shape[1]):\n"
                           "            out[i, j] = (padded[i * stride:i * stride + kh, j * stride:j * stride + kw]"
                           " * flipped).sum()\n"
                           "    return out\n")])
    assert a1_convolution.with_grader_correlate2d(ns["convolve2d"]) is ns["convolve2d"]
    assert check("a1.convolve2d", ns["convolve2d"], points=2) == 2.0, capsys.readouterr().out
    # and the solution's, which calls correlate2d, gets a copy that calls the grader's
    sol = _notebook()
    adapted = a1_convolution.with_grader_correlate2d(sol["convolve2d"])
    assert adapted is not sol["convolve2d"] and adapted.py_func.__globals__["correlate2d"] is not sol["correlate2d"]
    assert check("a1.convolve2d", sol["convolve2d"], points=2, seed=8369) == 2.0, capsys.readouterr().out


def test_a_plain_python_correlate2d_no_longer_sinks_an_njit_convolve2d(capsys):
    """correlate2d without @njit: charged in correlate2d's compiled point; convolve2d (@njit, calling
    it) could not compile and lost its points too."""
    ns = _notebook("correlate-not-compiled")
    assert check("a1.convolve2d", ns["convolve2d"], points=2) == 2.0, capsys.readouterr().out
