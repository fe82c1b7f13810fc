"""Deadlines (minicnn/grader/late.py): nbgrader's timestamp.txt read and recorded in the gradebook, and
the late penalty worked out by nbgrader's own AssignLatePenalties with the course's plugin settings
("none", "zero", a plugin class of the instructor's), shown in the CSV and the feedback.

These tests write records into a gradebook directly (no student code runs): one module-scoped
gradebook holding assignment 1, copied for each test."""
from __future__ import annotations

import csv
import datetime as dt
import os
import shutil
import sys
from pathlib import Path

import pytest

pytest.importorskip("nbgrader")

from nbgrader.api import Gradebook  # noqa: E402

from minicnn.course.notebook import read_notebook  # noqa: E402
from minicnn.grader import late, locate, outputs  # noqa: E402
from minicnn.grader.record import Grade, PartGrade  # noqa: E402

A = "a1_convolution"
DUE = dt.datetime(2026, 11, 20, 17, 0, 0)           # UTC
STAMPS = {"early": "2026-11-20 16:59:59.000000 UTC",   # one second before the due date
          "late": "2026-11-21 19:00:00.000000 UTC",    # 26 hours after it
          "berlin": "2026-11-20 18:30:00 Europe/Berlin"}  # 17:30 UTC: 30 minutes late


def _record(student: str, scores: dict) -> Grade:
    parts = [PartGrade(gid, gid, gid, float(s), float(m), [f"{gid}: {s} of {m}"]) for gid, (s, m) in scores.items()]
    return Grade(student, A, parts=parts)


SCORES = {"test_output_size": (2, 2), "test_param_count": (1, 2), "test_zero_pad": (2, 2)}   # 5 autograded points


@pytest.fixture(scope="module")
def template(tmp_path_factory) -> Path:
    """A course directory whose gradebook holds assignment 1 (due DUE) and a submission per student."""
    course = tmp_path_factory.mktemp("late") / "course"
    course.mkdir()
    source = read_notebook(locate.source_notebook(A))
    students = [*STAMPS, "nostamp", "garbage"]
    outputs.write_gradebook(course, A, source, [_record(s, SCORES) for s in students])
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gb:
        gb.update_or_create_assignment(A, duedate=DUE)
    for s in students:
        folder = course / "submitted" / s / A
        folder.mkdir(parents=True)
        if s in STAMPS:
            (folder / "timestamp.txt").write_text(STAMPS[s] + "\n")
    (course / "submitted" / "garbage" / A / "timestamp.txt").write_text("yesterday-ish, honestly\n")
    return course


def _graded(template: Path, tmp_path: Path, config: str | None, files=None):
    """Copy the template, write its nbgrader_config.py (and `files`), run late.record;
    (course, {student: record}, what it logged)."""
    course = tmp_path / "course"
    shutil.copytree(template, course)
    if config is not None:
        (course / "nbgrader_config.py").write_text("c = get_config()\n" + config)
    for name, text in (files or {}).items():
        (course / name).write_text(text)
    records = [_record(s.name, SCORES) for s in sorted((course / "submitted").iterdir())]
    stamps = {r.student: late.read_timestamp(course / "submitted" / r.student / A) for r in records}
    said = []
    late.record(course, A, records, stamps, log=said.append)
    return course, {r.student: r for r in records}, said


def _gradebook(course: Path, student: str):
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gb:
        sub = gb.find_submission(A, student)
        nb = gb.find_submission_notebook(A, A, student)
        return sub.timestamp, sub.total_seconds_late, nb.late_submission_penalty


# ----------------------------------------------------------------------------- timestamp.txt

def test_timestamps_are_read_as_nbgrader_reads_them(tmp_path):
    cases = {"2026-11-30 09:15:02.123456 UTC": dt.datetime(2026, 11, 30, 9, 15, 2, 123456),
             "2026-11-30 10:15:02 Europe/Berlin": dt.datetime(2026, 11, 30, 9, 15, 2),
             "2026-11-30T04:15:02-05:00": dt.datetime(2026, 11, 30, 9, 15, 2)}
    for text, utc in cases.items():
        (tmp_path / "timestamp.txt").write_text(text + "\n")
        stamp = late.read_timestamp(tmp_path)
        assert (stamp.utc, stamp.problem) == (utc, ""), text


def test_a_missing_or_unparseable_timestamp_is_reported_never_raised(tmp_path):
    assert late.read_timestamp(tmp_path).missing
    assert "no timestamp.txt" in late.read_timestamp(tmp_path).problem
    for text, words in [("", "empty"), ("   \n", "empty"), ("not a date at all", "not a date"),
                        ("2026-13-45 99:99:99 UTC", "not a date"), ("9" * 400, "longer than"),
                        ("\xff\xfe\x00 2026", "not a date")]:
        (tmp_path / "timestamp.txt").write_text(text, encoding="latin-1")
        stamp = late.read_timestamp(tmp_path)
        assert stamp.utc is None and words in stamp.problem and not stamp.missing, (text[:20], stamp)
    (tmp_path / "timestamp.txt").unlink()
    os.symlink("/etc/hostname", tmp_path / "timestamp.txt")   # a link is never followed
    assert late.read_timestamp(tmp_path).utc is None
    (tmp_path / "timestamp.txt").unlink()
    (tmp_path / "timestamp.txt").mkdir()
    assert late.read_timestamp(tmp_path).utc is None


# ----------------------------------------------------------------------------- penalties

def test_no_penalty_method_records_the_time_and_takes_nothing(template, tmp_path):
    course, recs, said = _graded(template, tmp_path, "")   # nbgrader's default: penalty_method = "none"
    ts, seconds, penalty = _gradebook(course, "late")
    assert ts == dt.datetime(2026, 11, 21, 19, 0) and seconds == 26 * 3600 and penalty is None
    assert recs["late"].seconds_late == 26 * 3600 and recs["late"].late_penalty == 0
    assert recs["late"].submitted_at == "2026-11-21 19:00:00 UTC"
    assert recs["berlin"].seconds_late == 30 * 60
    assert recs["early"].seconds_late == 0 and _gradebook(course, "early")[1] == 0
    assert "3 late submission(s)" not in said[0] and "2 late submission(s)" in said[0]


def test_penalty_zero_takes_the_whole_score_of_late_submissions_only(template, tmp_path):
    course, recs, _ = _graded(template, tmp_path, 'c.LateSubmissionPlugin.penalty_method = "zero"\n')
    for student, expected in [("late", 5.0), ("berlin", 5.0), ("early", None), ("nostamp", None), ("garbage", None)]:
        assert _gradebook(course, student)[2] == expected, student
        assert recs[student].late_penalty == (expected or 0.0), student
    assert recs["late"].final == 0 and recs["early"].final == 5
    assert "no timestamp.txt" in recs["nostamp"].late_note          # reported: there is a due date
    assert "not a date" in recs["garbage"].late_note and _gradebook(course, "garbage")[0] is None
    page = outputs.feedback_html(recs["late"])
    assert "1 d 2 h after the due date" in page and "Late penalty: 5 points, so 0 of 6 points count" in page
    assert "Deadline" not in outputs.feedback_html(recs["early"])
    csv_path = outputs.write_csv(course, A, list(recs.values()))
    with open(csv_path, newline="", encoding="utf-8") as fh:
        rows = {r["student"]: r for r in csv.DictReader(fh)}
    assert (rows["late"]["total"], rows["late"]["late_penalty"], rows["late"]["final"]) == ("5", "5", "0")
    assert rows["late"]["seconds_late"] == str(26 * 3600) and rows["late"]["submitted_at"].startswith("2026-11-21 19")
    assert (rows["early"]["late_penalty"], rows["early"]["final"]) == ("0", "5")
    assert "not a date" in rows["garbage"]["late_note"]


PLUGIN = '''
from nbgrader.plugins import BasePlugin


class TenthPerHour(BasePlugin):
    """A tenth of the score for each started hour late, nbgrader's plugin interface."""

    def late_submission_penalty(self, student_id, score, total_seconds_late):
        hours = -(-total_seconds_late // 3600)
        return score * hours / 10
'''


def test_a_plugin_class_of_the_instructors_own_sets_the_penalty(template, tmp_path):
    course, recs, _ = _graded(template, tmp_path, 'c.AssignLatePenalties.plugin_class = "tenth_late.TenthPerHour"\n',
                              {"tenth_late.py": PLUGIN})
    got = {s: r.late_penalty for s, r in recs.items()}
    # 26 hours late: 2.6 times the score, and nbgrader caps a penalty at the score
    assert got == {"late": 5.0, "berlin": 0.5, "early": 0.0, "nostamp": 0.0, "garbage": 0.0}
    assert _gradebook(course, "berlin")[2] == 0.5 and recs["berlin"].final == 4.5
    assert str(course) not in sys.path
    assert all(not r.flags for r in recs.values())


BROKEN = """from nbgrader.plugins import BasePlugin


class Broken(BasePlugin):
    def late_submission_penalty(self, *args):
        raise KeyError("x")
"""


def test_a_plugin_that_raises_costs_the_penalty_not_the_grades(template, tmp_path):
    _, recs, _ = _graded(template, tmp_path, 'c.AssignLatePenalties.plugin_class = "broken_late.Broken"\n',
                         {"broken_late.py": BROKEN})
    assert any("late penalty could not be worked out: KeyError" in f for f in recs["late"].flags)
    assert recs["early"].flags == [] and recs["late"].total == 5 and recs["late"].late_penalty == 0


def test_a_broken_configuration_costs_the_penalties_not_the_grades(template, tmp_path):
    _, recs, said = _graded(template, tmp_path, "c.AssignLatePenalties.plugin_class = \n")
    assert all(any("no late penalty worked out: SyntaxError" in f for f in r.flags) for r in recs.values())
    assert "SyntaxError" in said[0] and recs["late"].total == 5


def test_the_config_file_does_not_change_the_graders_environment(template, tmp_path):
    before = dict(os.environ)
    _graded(template, tmp_path, 'import os\nos.environ["MINICNN_LATE_TEST"] = "1"\n')
    assert dict(os.environ) == before
