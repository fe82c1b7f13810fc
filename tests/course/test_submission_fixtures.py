"""The hostile-submission fixtures follow the solution: tests/course/submissions/ holds exactly what
make_submissions.py writes from solutions/ and exercises/ now, every submission being the solution
cells plus named changes, and a change whose text no longer fits the solution is an error.
(Nothing here runs a submission: test_hostile_submissions.py grades them.)"""
from __future__ import annotations

import importlib.util
import json
import re
import sys
from pathlib import Path

import pytest

pytest.importorskip("nbformat")

SUBMISSIONS = Path(__file__).parent / "submissions"


@pytest.fixture(scope="module")
def gen():
    spec = importlib.util.spec_from_file_location("make_submissions", SUBMISSIONS / "make_submissions.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module           # its dataclasses look their module up
    try:
        spec.loader.exec_module(module)
    finally:
        del sys.modules[spec.name]
    return module


def test_the_committed_fixtures_are_what_the_generator_writes_now(gen):
    fresh = gen.generate()
    committed = {p.name for p in SUBMISSIONS.iterdir() if p.suffix in (".ipynb", ".json")}
    assert committed == set(fresh), "run python tests/course/submissions/make_submissions.py"
    stale = sorted(name for name, text in fresh.items()
                   if (SUBMISSIONS / name).read_text(encoding="utf-8") != text)
    assert not stale, f"stale fixtures, run python tests/course/submissions/make_submissions.py: {stale}"


def test_every_submission_is_listed_with_bounds_for_every_test_cell(gen):
    expected = json.loads((SUBMISSIONS / "expected.json").read_text(encoding="utf-8"))
    names = {p.stem for p in SUBMISSIONS.glob("*.ipynb")}
    assert set(expected) == names and len(names) == 40
    for name, exp in expected.items():
        assert set(exp["min"]) == set(exp["max"]) == set(gen.POINTS), name
        assert all(0 <= exp["min"][t] <= exp["max"][t] <= gen.POINTS[t] for t in gen.POINTS), name


def test_an_edit_whose_text_is_gone_from_the_solution_is_an_error(gen):
    sols = gen.solutions()
    sols["zero_pad"] = sols["zero_pad"].replace("for i in range(h):", "for row in range(h):")
    with pytest.raises(gen.StaleChange, match=r"'loop_njit'.*cell 'zero_pad'.*occurs 0 times"):
        gen.generate(sols)


def test_an_edit_whose_text_occurs_twice_is_an_error(gen):
    sols = gen.solutions()
    sols["correlate2d"] = sols["correlate2d"].replace("    return out\n", "    out = out + 0.0\n    return out\n"
                                                      "    return out\n")
    with pytest.raises(gen.StaleChange, match=r"cell 'correlate2d'.*occurs 2 times"):
        gen.generate(sols)


def test_a_solution_cell_without_its_markers_is_an_error(gen):
    sols = gen.solutions()
    sols["output_size"] = sols["output_size"].replace("### END SOLUTION", "")
    with pytest.raises(gen.StaleChange, match=r"cell 'output_size'.*no '### BEGIN SOLUTION'"):
        gen.generate(sols)


def test_standalone_copies_follow_the_solution(gen):
    """A fix in the solution reaches the standalone copies: they are read from it, not typed."""
    sols = gen.solutions()
    sols["zero_pad"] = sols["zero_pad"].replace("out = np.zeros(", "out = np.zeros( ")
    fresh = gen.generate(sols)
    assert "out = np.zeros( " in fresh["loop_njit.ipynb"]        # correlate2d's own _zero_pad
    assert "out = np.zeros( " in fresh["segfault.ipynb"]         # convolve2d's _zero_pad and _correlate2d


def test_the_generator_types_no_three_lines_of_the_solution(gen):
    """Solution code is read from solutions/: no run of three solution lines is written in the
    generator (the anchors of single-line edits are allowed)."""
    def lines(text):
        return [line.strip() for line in text.splitlines() if line.strip()]
    mine = "\n".join(lines((SUBMISSIONS / "make_submissions.py").read_text(encoding="utf-8")))
    copied = []
    for cell, source in gen.solutions().items():
        body = [line for line in lines(source) if not line.startswith(("###", '"""'))]
        for i in range(len(body) - 2):
            if re.search("^" + re.escape("\n".join(body[i:i + 3])) + "$", mine, re.M):
                copied.append(f"{cell}: {body[i:i + 3]}")
    assert not copied, copied
