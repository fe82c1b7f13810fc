"""The bundled course, run in-process (no nbgrader; `minicnn course verify` does the same through
nbgrader): every solution gets full marks on every test cell, hidden tests included; the release
gets zero; every known-wrong implementation loses points on the parts it breaks."""
import json
import re

import pytest

from course_helpers import REPO, graded_cells, notebook_code, run_graded
from minicnn import examples
from minicnn.course import checks
from minicnn.course import mutation as mutants
from minicnn.course.notebook import read_notebook, solution_cell_sources
from minicnn.grader import nbg

ASSIGNMENTS = nbg.assignments(REPO)
MUTANTS = mutants.load(REPO / "solutions" / "mutants.py")


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_solution_gets_full_marks(assignment, course_notebooks):
    nb = course_notebooks[assignment]
    tests = [(gid, src) for gid, points, src in graded_cells(nb)]
    points = {gid: p for gid, p, _ in graded_cells(nb)}
    for (gid, hidden), (score, out) in run_graded(assignment, notebook_code(nb), tests, (False, True)).items():
        assert score == points[gid], f"{gid} (hidden={hidden}): {score} of {points[gid]}\n{out}"


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_release_gets_zero(assignment):
    nb = read_notebook(REPO / nbg.RELEASE_DIR / assignment / f"{assignment}.ipynb")
    tests = [(gid, src) for gid, points, src in graded_cells(nb)]
    assert tests
    for (gid, _), (score, out) in run_graded(assignment, notebook_code(nb), tests, (False,)).items():
        assert score == 0, f"{gid}: {score}\n{out}"
    text = json.dumps(nb)
    assert "BEGIN SOLUTION" not in text and "BEGIN HIDDEN TESTS" not in text


@pytest.mark.parametrize("mutant", [m for m in MUTANTS if m.assignment in ASSIGNMENTS],
                         ids=lambda m: m.name)
def test_known_wrong_code_loses_points(mutant, course_notebooks):
    nb = course_notebooks[mutant.assignment]
    cell = solution_cell_sources(nb)[mutant.cell]
    deps = mutants.test_dependencies(nb)
    needed = set().union(*(deps[t] for t in mutant.breaks))  # only the cells these tests run (no training
    sources = notebook_code(nb, replace={mutant.cell: mutants.apply(mutant, cell)}, only=needed)  # unless needed)
    tests = [(gid, src) for gid, points, src in graded_cells(nb) if gid in mutant.breaks]
    points = {gid: p for gid, p, _ in graded_cells(nb)}
    for (gid, _), (score, out) in run_graded(mutant.assignment, sources, tests).items():
        assert score < points[gid], f"{mutant.name}: {gid} kept {score} of {points[gid]}\n{out}"


def test_every_part_is_graded_somewhere_and_every_test_cell_names_a_part(course_notebooks):
    used = set()
    for nb in course_notebooks.values():
        for gid, points, src in graded_cells(nb):
            found = re.findall(r'check(?:_compiled)?\("([\w.]+)"', src)
            assert found, gid
            for key in found:
                checks.get_part(key)  # raises for an unknown part
                used.add(key)
    assert set(checks.PARTS) == used


def test_hidden_seeds_are_not_the_public_seed(course_notebooks):
    for nb in course_notebooks.values():
        for gid, points, src in graded_cells(nb):
            if "BEGIN HIDDEN TESTS" in src:
                hidden = re.search(r"BEGIN HIDDEN TESTS\n(.*?)### END", src, re.S).group(1)
                assert re.search(r"seed = [1-9]\d*", hidden), gid


def test_worked_examples_are_never_retyped_in_notebooks():
    """The catalogue is the one source of the lectures' numbers: no notebook copies an example's arrays."""
    texts = [p.read_text(encoding="utf-8").replace(" ", "").replace("\\n", "")
             for p in list((REPO / "solutions").rglob("*.ipynb")) + list((REPO / "exercises").rglob("*.ipynb"))]
    assert texts
    for ex in examples.load():
        for name, value in ex.inputs.items():
            if isinstance(value, list) and len(json.dumps(value)) > 12:
                rows = value[0] if isinstance(value[0][0], list) else value
                needle = json.dumps(rows[:2]).replace(" ", "")[1:-1]
                for t in texts:
                    assert needle not in t, (ex.id, name)


def test_mutant_batches_never_mix_a_mutant_with_code_its_tests_run(course_notebooks):
    for a, nb in course_notebooks.items():
        deps = mutants.test_dependencies(nb)
        for group in mutants.batches(nb, mutants.for_assignment(a, MUTANTS)):
            cells = [m.cell for m in group]
            assert len(cells) == len(set(cells))
            for m in group:
                runs = set().union(*(deps[t] for t in m.breaks))
                assert not (runs & (set(cells) - {m.cell})), (m.name, cells)
