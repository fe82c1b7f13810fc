"""One bad submission never takes the class down, and the grader never follows a link out of a
student's folder (issue 13, findings 6, 11, 12 and 13), in one batch of assignment 1:

    ann   the correct notebook                                   full marks
    ben   his notebook is a symlink to ann's                     nothing read through it: 0, flagged
    cat   the correct notebook beside a FIFO                     full marks, the FIFO flagged, never opened
    dan   the correct notebook plus a cell whose grade_id is a JSON list   full marks, every output written
    \\xff  a folder name that is not valid UTF-8                   a grader-error record for it alone
    eve   plain Python under a no-op `njit` of her own, and `compiled_status` patched in the runner
          (finding 3): every case point, no compiled point, flagged
    fay   her assignment folder is a symlink to ann's                 not followed: a record saying so, 0
    gus   his whole student folder is a symlink to ann's              the same (was left out without a word)
    hal   the correct notebook beside folders nested 40 deep          full marks, the depth flagged (1200
          levels once stopped the whole class's grading with a RecursionError, 2026-12-02)
"""
from __future__ import annotations

import csv
import json
import os
import shutil
from pathlib import Path

import pytest

from minicnn.grader import batch

SUBMISSIONS = Path(__file__).parent / "submissions"
A1 = "a1_convolution"


def _folder(course: Path, student) -> Path:
    base = os.fsencode(course / "submitted") + b"/" + (student if isinstance(student, bytes) else student.encode())
    folder = Path(os.fsdecode(base)) / A1
    folder.mkdir(parents=True)
    return folder


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    course = tmp_path_factory.mktemp("robust")
    correct = SUBMISSIONS / "correct.ipynb"
    ann = _folder(course, "ann")
    shutil.copyfile(correct, ann / f"{A1}.ipynb")
    (_folder(course, "ben") / f"{A1}.ipynb").symlink_to(ann / f"{A1}.ipynb")
    cat = _folder(course, "cat")
    shutil.copyfile(correct, cat / f"{A1}.ipynb")
    os.mkfifo(cat / "pipe")
    nb = json.loads(correct.read_text())
    nb["cells"].append({"cell_type": "code", "execution_count": None, "outputs": [], "source": "odd = 1\n",
                        "metadata": {"nbgrader": {"grade_id": ["a", "list"], "grade": False, "solution": True}}})
    (_folder(course, "dan") / f"{A1}.ipynb").write_text(json.dumps(nb))
    shutil.copyfile(correct, _folder(course, b"\xff\xfe") / f"{A1}.ipynb")
    nb = json.loads(correct.read_text())
    nb["cells"].insert(1, {"cell_type": "code", "execution_count": None, "outputs": [], "metadata": {},
                           "source": "def njit(f):\n    return f\n\nimport minicnn.course.inspection as ins\n"
                                     "ins.compiled_status = lambda fn, kind='njit': (True, '')\n"})
    (_folder(course, "eve") / f"{A1}.ipynb").write_text(json.dumps(nb))
    (course / "submitted" / "fay").mkdir()
    (course / "submitted" / "fay" / A1).symlink_to(ann)
    (course / "submitted" / "gus").symlink_to(ann.parent)
    hal = _folder(course, "hal")
    shutil.copyfile(correct, hal / f"{A1}.ipynb")
    deep = hal
    for _ in range(batch.MAX_DEPTH + 8):      # (not 1200: pytest's own clean-up of tmp_path recurses)
        deep = deep / "d"
        os.mkdir(deep)
    report = batch.grade_batch(A1, course, jobs=2, progress=False, log=lambda *a: None)
    with open(course / "grades" / f"{A1}.csv", newline="", encoding="utf-8") as fh:
        rows = {r["student"]: r for r in csv.DictReader(fh)}
    return course, {r["student"]: r for r in report["records"]}, rows


def test_a_symlinked_notebook_is_not_followed_and_is_flagged(graded):
    _, recs, rows = graded
    assert rows["ann"]["total"] == "15", recs["ann"]["reason"]
    assert rows["ben"]["total"] == "0" and recs["ben"]["status"] == "missing"
    assert any("symlink" in f and "not followed" in f for f in recs["ben"]["flags"]), recs["ben"]["flags"]
    assert "symlink" in rows["ben"]["flags"]


def test_a_fifo_is_flagged_never_opened_and_the_rest_is_graded(graded):
    _, recs, rows = graded
    assert rows["cat"]["total"] == "15", recs["cat"]["reason"]
    assert any("special file" in f and "pipe" in f for f in recs["cat"]["flags"]), recs["cat"]["flags"]


def test_a_list_as_grade_id_costs_nothing_and_every_output_is_written(graded):
    course, recs, rows = graded
    assert rows["dan"]["total"] == "15", (recs["dan"]["reason"], recs["dan"]["flags"])
    assert recs["dan"]["status"] == "graded"
    for student in ("ann", "cat", "dan"):
        assert (course / "feedback" / student / A1 / f"{A1}.html").is_file()
        assert (course / "autograded" / student / A1 / f"{A1}.ipynb").is_file()
    assert (course / "grades" / f"{A1}-report.json").is_file()


def test_an_undecodable_folder_name_is_a_grader_error_for_that_student_alone(graded):
    _, recs, rows = graded
    name = "\\xff\\xfe"
    assert set(rows) == {"ann", "ben", "cat", "dan", "eve", "fay", "gus", "hal", name}
    assert recs[name]["status"] == "grader-error" and "not valid UTF-8" in recs[name]["reason"]
    assert rows[name]["total"] == "0"


def test_a_noop_njit_and_a_patched_compiled_status_earn_no_compiled_point(graded):
    _, recs, rows = graded
    compiled = [p for p in recs["eve"]["parts"] if p["grade_id"].endswith("_compiled")]
    assert len(compiled) == 3 and all(p["score"] == 0 for p in compiled), compiled
    assert rows["eve"]["total"] == "12", recs["eve"]["reason"]
    assert any("reported itself compiled" in f for f in recs["eve"]["flags"]), recs["eve"]["flags"]


def test_a_symlinked_submission_folder_is_refused_with_a_reason_not_graded_as_the_targets(graded):
    _, recs, rows = graded
    for student in ("fay", "gus"):
        assert rows[student]["total"] == "0", (student, recs[student]["reason"])
        assert "symbolic link" in recs[student]["reason"] and "not followed" in recs[student]["reason"]
        assert "symlink" in rows[student]["flags"]
    assert rows["ann"]["total"] == "15"


def test_a_folder_nested_too_deep_is_flagged_and_the_rest_graded(graded):
    _, recs, rows = graded
    assert rows["hal"]["total"] == "15", recs["hal"]["reason"]
    assert any(f"more than {batch.MAX_DEPTH} deep" in f for f in recs["hal"]["flags"]), recs["hal"]["flags"]
