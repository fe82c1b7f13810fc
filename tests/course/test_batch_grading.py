"""`minicnn course grade` over whole classes: every assignment's solution gets full marks and its
release zero through the sandboxed batch grader, and the command line does what it says."""
from __future__ import annotations

import csv
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from minicnn.course.notebook import is_test_cell
from minicnn.grader import batch, plan
from minicnn.grader.locate import course_root
from minicnn.grader.nbg import assignments

SUBMISSIONS = Path(__file__).parent / "submissions"


def _class(course: Path, assignment: str, notebooks: dict):
    for student, path in notebooks.items():
        folder = course / "submitted" / student / assignment
        folder.mkdir(parents=True)
        shutil.copyfile(path, folder / f"{assignment}.ipynb")


def test_every_assignment_grades_its_solution_full_and_its_release_zero(tmp_path):
    root = course_root()
    for assignment in assignments():
        course = tmp_path / assignment
        _class(course, assignment, {"solution": root / "solutions" / assignment / f"{assignment}.ipynb",
                                    "release": root / "exercises" / assignment / f"{assignment}.ipynb"})
        report = batch.grade_batch(assignment, course, jobs=2, progress=False, log=lambda *a: None)
        recs = {r["student"]: r for r in report["records"]}
        specs = plan.test_specs(json.loads((root / "solutions" / assignment / f"{assignment}.ipynb").read_text()))
        full = sum(s.points for s in specs)
        sol = recs["solution"]
        assert sum(p["score"] for p in sol["parts"]) == full, (assignment, sol["reason"], sol["cell_errors"],
                                                               [(p["grade_id"], p["lines"][:4]) for p in sol["parts"]
                                                                if p["score"] < p["max"]])
        assert not sol["cell_errors"], sol["cell_errors"]
        assert sum(p["score"] for p in recs["release"]["parts"]) == 0, assignment


def test_the_command_grades_a_class_and_one_notebook(tmp_path):
    course = tmp_path / "course"
    _class(course, "a1_convolution", {"ann": SUBMISSIONS / "correct.ipynb", "ben": SUBMISSIONS / "stub.ipynb",
                                      "cat": SUBMISSIONS / "unreadable.ipynb"})
    exe = [sys.executable, "-m", "minicnn.cli"]
    proc = subprocess.run(exe + ["course", "grade", "a1_convolution", "--course", str(course), "--jobs", "2",
                                 "--no-progress"], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = proc.stdout
    assert out.startswith("isolation: ")
    lines = {ln.split()[0]: ln for ln in out.splitlines() if ln[:3] in ("ann", "ben", "cat")}
    assert "15 / 15" in lines["ann"] and " 0 / 15" in lines["ben"] and "unreadable" in lines["cat"]
    assert "3 submission(s) in" in out and "per minute" in out
    with open(course / "grades" / "a1_convolution.csv", newline="") as fh:
        rows = {r["student"]: r for r in csv.DictReader(fh)}
    assert rows["ann"]["total"] == "15" and rows["ann"]["test_correlate2d"] == "4"
    assert rows["cat"]["total"] == "0" and "could not be read" in rows["cat"]["reason"]
    assert (course / "feedback" / "ann" / "a1_convolution" / "a1_convolution.html").is_file()

    nb = tmp_path / "a1_convolution.ipynb"
    shutil.copyfile(SUBMISSIONS / "loop_python.ipynb", nb)
    proc = subprocess.run(exe + ["course", "grade", str(nb), "--details", "--case-timeout", "3"],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "test_output_size           0 / 2" in proc.stdout
    assert "autograded: 13 of 15 points" in proc.stdout
    assert (tmp_path / "a1_convolution-feedback.html").is_file()


def test_bad_arguments_are_refused_clearly(tmp_path):
    exe = [sys.executable, "-m", "minicnn.cli", "course", "grade"]
    proc = subprocess.run(exe + ["a1_convolution", "--course", str(tmp_path)], capture_output=True, text=True)
    assert proc.returncode == 2 and "no submitted/ folder" in proc.stderr
    proc = subprocess.run(exe + ["a1_convolution", "--course", str(tmp_path), "--memory", "256"],
                          capture_output=True, text=True)
    assert proc.returncode == 2 and "memory_mb=256" in proc.stderr
    (tmp_path / "submitted").mkdir()
    proc = subprocess.run(exe + ["a9_nothing", "--course", str(tmp_path)], capture_output=True, text=True)
    assert proc.returncode == 2 and "no source notebook" in proc.stderr
    # one notebook: a student id that would name another folder, a directory named like a notebook, a
    # feedback file that cannot be written (each refused before any grading, in one line, no traceback;
    # the first once wrote the notebook outside the scratch course, 2026-12-02)
    nb = tmp_path / "a1_convolution.ipynb"
    shutil.copyfile(SUBMISSIONS / "correct.ipynb", nb)
    outside = tmp_path / "outside"
    for student in (f"../../../../../../..{outside}", "", ".."):
        proc = subprocess.run(exe + [str(nb), "--student", student], capture_output=True, text=True, timeout=120)
        assert proc.returncode == 2 and "--student must be a student id" in proc.stderr, proc.stderr
        assert "Traceback" not in proc.stderr
    assert not outside.exists()
    (tmp_path / "dir.ipynb").mkdir()
    for extra, said in (([str(tmp_path / "dir.ipynb")], "is not a notebook file"),
                        ([str(nb), "--feedback", str(tmp_path / "nope" / "f.html")], "does not exist"),
                        ([str(nb), "--feedback", str(tmp_path)], "that is a directory")):
        proc = subprocess.run(exe + extra, capture_output=True, text=True, timeout=120)
        assert proc.returncode == 2 and said in proc.stderr and "Traceback" not in proc.stderr, proc.stderr


@pytest.mark.parametrize("name", ["correct", "stub"])
def test_a_submission_is_graded_the_same_by_nbgrader_and_by_the_batch_grader(name, tmp_path):
    """The honest path agrees with nbgrader's own autograde (which runs the test cells in the kernel)."""
    from minicnn.grader import nbg

    course = nbg.CourseDir(tmp_path / "nbg")
    course.add_source("a1_convolution")
    course.generate("a1_convolution")
    course.submit("a1_convolution", name, SUBMISSIONS / f"{name}.ipynb")
    course.autograde("a1_convolution", name)
    by_nbgrader = {k: v.score for k, v in course.scores("a1_convolution", name).items() if v.auto}
    batch_course = tmp_path / "batch"
    _class(batch_course, "a1_convolution", {name: SUBMISSIONS / f"{name}.ipynb"})
    rec = batch.grade_batch("a1_convolution", batch_course, jobs=1, progress=False, log=lambda *a: None)["records"][0]
    assert {p["grade_id"]: p["score"] for p in rec["parts"]} == by_nbgrader


def test_autograded_notebooks_work_with_nbgrader_feedback(tmp_path):
    """The batch grader leaves autograded/ notebooks and gradebook entries that nbgrader's own tools
    read: generate_feedback renders them with the batch grader's scores and no hidden tests."""
    from minicnn.grader import nbg

    course = tmp_path / "course"
    _class(course, "a1_convolution", {"ann": SUBMISSIONS / "correct.ipynb",
                                      "dan": SUBMISSIONS / "deleted_tests.ipynb"})
    report = batch.grade_batch("a1_convolution", course, jobs=2, progress=False, log=lambda *a: None)
    nb = json.loads((course / "autograded" / "dan" / "a1_convolution" / "a1_convolution.ipynb").read_text())
    tests = [c for c in nb["cells"] if is_test_cell(c)]
    assert len(tests) == 8, "the deleted test cells are back"
    assert all("points" in "".join(c["outputs"][0]["text"]) for c in tests)
    shutil.copyfile(nbg.config_file(), course / "nbgrader_config.py")
    shutil.copytree(course_root() / "solutions" / "a1_convolution", course / "solutions" / "a1_convolution")
    proc = subprocess.run([sys.executable, "-m", "nbgrader", "generate_feedback", "a1_convolution", "--force"],
                          cwd=course, env=nbg.nbgrader_env(), capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    page = (course / "feedback" / "ann" / "a1_convolution" / "a1_convolution.html").read_text()
    assert "Score: 15.0 / 17.0" in page and "HIDDEN TESTS" not in page and "seed = 4127" not in page
    assert {r["student"]: sum(p["score"] for p in r["parts"]) for r in report["records"]} == {"ann": 15.0, "dan": 15.0}
