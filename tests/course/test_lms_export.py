"""A small class graded once, end to end with the ordinary commands: roster imported, due date set,
nbgrader's timestamp.txt in each submission, `minicnn course grade` (penalty_method "zero" in the
course's nbgrader_config.py), then `minicnn course export` for Canvas and Moodle.

The class: ann (on the roster, assignment 1's solution, handed in a day late), ben (on the roster,
the untouched release, on time), zed (not on the roster, the solution, no timestamp.txt) and dan
(on the roster, nothing handed in)."""
from __future__ import annotations

import csv
import datetime as dt
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("nbgrader")

from nbgrader.api import Gradebook  # noqa: E402

from minicnn.grader import lms, roster  # noqa: E402

A = "a1_convolution"
SUBMISSIONS = Path(__file__).parent / "submissions"
ROSTER = """student_id,first_name,last_name,email,lms_id
ann,Ann,Lovelace,ann@example.org,alovelace
ben,Ben,Turing,ben@example.org,bturing
dan,Dan,Hopper,dan@example.org,dhopper
"""
HANDED_IN = {"ann": ("correct.ipynb", "2026-11-21 17:00:01.000000 UTC"),
             "ben": ("stub.ipynb", "2026-11-20 12:00:00.000000 UTC"),
             "zed": ("correct.ipynb", None)}
DUE = dt.datetime(2026, 11, 20, 17, 0, 0)


def _cli(*args, cwd):
    return subprocess.run([sys.executable, "-m", "minicnn", "course", *args], capture_output=True, text=True,
                          timeout=1200, cwd=cwd)


def _csv(path: Path) -> list[list[str]]:
    with open(path, newline="", encoding="utf-8") as fh:
        return list(csv.reader(fh))


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    course = tmp_path_factory.mktemp("lms") / "course"
    course.mkdir()
    (course / "class.csv").write_text(ROSTER)
    roster.import_roster(course, course / "class.csv")
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gb:
        gb.update_or_create_assignment(A, duedate=DUE)
    (course / "nbgrader_config.py").write_text('c = get_config()\nc.LateSubmissionPlugin.penalty_method = "zero"\n')
    for student, (notebook, stamp) in HANDED_IN.items():
        folder = course / "submitted" / student / A
        folder.mkdir(parents=True)
        shutil.copyfile(SUBMISSIONS / notebook, folder / f"{A}.ipynb")
        if stamp:
            (folder / "timestamp.txt").write_text(stamp + "\n")
    proc = _cli("grade", A, "--course", str(course), "--isolation", "rlimits", "--jobs", "2", "--no-progress",
                cwd=course)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    with open(course / "grades" / f"{A}.csv", newline="", encoding="utf-8") as fh:
        rows = {r["student"]: r for r in csv.DictReader(fh)}
    return course, rows, proc.stdout


def _points_possible() -> float:
    from minicnn.grader.locate import source_notebook

    nb = json.loads(source_notebook(A).read_text(encoding="utf-8"))
    return sum(float(c["metadata"]["nbgrader"].get("points", 0)) for c in nb["cells"]
               if c.get("metadata", {}).get("nbgrader", {}).get("grade"))


def test_grading_records_the_times_and_the_penalty(graded):
    course, rows, out = graded
    assert set(rows) == {"ann", "ben", "zed"}
    ann, ben, zed = rows["ann"], rows["ben"], rows["zed"]
    assert float(ann["total"]) > 0 and float(zed["total"]) == float(ann["total"])   # the same notebook
    assert ann["submitted_at"] == "2026-11-21 17:00:01 UTC" and ann["seconds_late"] == str(24 * 3600 + 1)
    assert ann["late_penalty"] == ann["total"] and ann["final"] == "0"      # "zero": the whole score
    assert ben["seconds_late"] == "0" and ben["late_penalty"] == "0" and ben["final"] == ben["total"]
    assert zed["submitted_at"] == "" and "no timestamp.txt" in zed["late_note"] and zed["late_penalty"] == "0"
    assert "not on the roster" in zed["flags"] and "not on the roster" not in ann["flags"] + ben["flags"]
    assert "late penalty " + ann["total"] in out
    page = (course / "feedback" / "ann" / A / f"{A}.html").read_text(encoding="utf-8")
    assert f"Late penalty: {ann['total']} points, so 0 of" in page
    assert "1 d 1 s after the due date" in page
    report = json.loads((course / "grades" / f"{A}-report.json").read_text(encoding="utf-8"))
    assert {r["student"]: r["late_penalty"] for r in report["records"]} == {"ann": float(ann["total"]), "ben": 0,
                                                                            "zed": 0}
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gb:
        assert gb.find_submission(A, "ann").timestamp == dt.datetime(2026, 11, 21, 17, 0, 1)
        assert gb.find_submission_notebook(A, A, "ann").late_submission_penalty == float(ann["total"])
        assert gb.find_student("ann").first_name == "Ann"        # the roster's names kept through grading


def test_canvas_export_headers_points_possible_and_values(graded, tmp_path):
    course, rows, _ = graded
    proc = _cli("export", "--format", "canvas", "-o", str(tmp_path / "canvas.csv"), cwd=course)
    assert proc.returncode == 0, proc.stderr
    assert "zed: handed in but not on the roster" in proc.stderr
    assert "parts still to be graded by hand" in proc.stderr                # assignment 1's written answer
    got = _csv(tmp_path / "canvas.csv")
    assert got[0] == ["Student", "ID", "SIS User ID", "SIS Login ID", "Section", A]
    assert got[1] == ["Points Possible", "", "", "", "", f"{_points_possible():g}"]
    assert got[2:] == [["Lovelace, Ann", "", "ann", "alovelace", "", "0"],
                       ["Turing, Ben", "", "ben", "bturing", "", rows["ben"]["final"]],
                       ["Hopper, Dan", "", "dan", "dhopper", "", ""],                  # on the roster, no submission
                       ["zed", "", "zed", "", "", rows["zed"]["final"]]]               # not on the roster, kept


def test_moodle_export_headers_and_values(graded, tmp_path):
    course, rows, _ = graded
    warnings = lms.write(course, "moodle", tmp_path / "moodle.csv")
    assert any(w.startswith("zed:") for w in warnings)
    got = _csv(tmp_path / "moodle.csv")
    assert got == [["First name", "Last name", "ID number", "Email address", "Username", A],
                   ["Ann", "Lovelace", "ann", "ann@example.org", "alovelace", "0"],
                   ["Ben", "Turing", "ben", "ben@example.org", "bturing", rows["ben"]["final"]],
                   ["Dan", "Hopper", "dan", "dan@example.org", "dhopper", ""],
                   ["", "", "zed", "", "", rows["zed"]["final"]]]


def test_per_part_columns_and_a_wrong_assignment(graded, tmp_path):
    course, rows, _ = graded
    lms.write(course, "canvas", tmp_path / "parts.csv", assignments=[A], parts=True)
    got = _csv(tmp_path / "parts.csv")
    parts = [c for c in rows["ann"] if c.startswith("test_")]
    assert got[0][:6] == ["Student", "ID", "SIS User ID", "SIS Login ID", "Section", A]
    assert sorted(got[0][6:]) == sorted(f"{A}: {p}" for p in parts + ["answer_flip"])
    by_student = {r[2]: dict(zip(got[0], r)) for r in got[2:]}
    for p in parts:    # each part's points before any penalty, as the grading CSV has them
        assert by_student["ann"][f"{A}: {p}"] == rows["ann"][p] and by_student["zed"][f"{A}: {p}"] == rows["zed"][p]
    assert by_student["ann"][A] == "0" and by_student["dan"][f"{A}: {parts[0]}"] == ""
    assert dict(zip(got[0], got[1]))[f"{A}: answer_flip"] == "2"
    with pytest.raises(ValueError, match="no assignment a9_nothing"):
        lms.write(course, "canvas", tmp_path / "x.csv", assignments=["a9_nothing"])
    with pytest.raises(ValueError, match="format must be one of canvas, moodle"):
        lms.write(course, "blackboard", tmp_path / "x.csv")


def test_a_value_that_looks_like_a_formula_is_exported_unchanged_with_a_warning(tmp_path, monkeypatch):
    """A roster name such as '=HYPERLINK(...)' would run as a formula in a spreadsheet; it is what the
    LMS matches on, so it is written as it is, and the export says so."""
    course = tmp_path / "course"
    course.mkdir()
    monkeypatch.setenv("PATH", os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", ""))  # alembic
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gb:
        gb.update_or_create_assignment(A)
        gb.add_student("eve", first_name="Eve", last_name='=HYPERLINK("http://x","y")', email="@eve",
                       lms_user_id="eve1")
        gb.add_student("fay", first_name="Fay", last_name="Ada", email="fay@example.org", lms_user_id="fay1")
    out = tmp_path / "moodle.csv"
    warnings = lms.write(course, "moodle", out)
    rows = _csv(out)
    eve = next(r for r in rows if r[2] == "eve")
    assert eve[1] == '=HYPERLINK("http://x","y")' and eve[3] == "@eve"
    flagged = [w for w in warnings if "spreadsheet formula" in w]
    assert len(flagged) == 2 and all("'eve'" in w for w in flagged)
    assert not any("'fay'" in w for w in warnings)
