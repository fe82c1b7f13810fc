"""Deadlines: when a submission was handed in, and the late penalty, with nbgrader's semantics.

nbgrader's exchange (`nbgrader submit`, then `collect`) leaves a file next to each submission:

    COURSE/submitted/<student>/<assignment>/timestamp.txt    e.g. "2026-11-30 09:15:02.123456 UTC"

`nbgrader autograde` parses it (nbgrader.utils.parse_utc), stores it in the gradebook as the
submission's timestamp (UTC), and its AssignLatePenalties preprocessor then asks the configured
plugin for a penalty when the submission is later than the assignment's due date:

    c.LateSubmissionPlugin.penalty_method = "zero"         # "none" (the default): no penalty
    c.AssignLatePenalties.plugin_class = "late.Halve"       # or a plugin class of your own

The due date lives in the gradebook (`nbgrader db assignment add ASSIGNMENT --duedate "..."`,
or formgrader's "Manage Assignments").  `minicnn course grade` does the same, step by step:
read_timestamp() before any student code runs, record() after the auto scores are in the
gradebook, running nbgrader's own AssignLatePenalties with the course's configuration.
"""
from __future__ import annotations

import contextlib
import logging
import os
import sys
from dataclasses import dataclass
from pathlib import Path

from .locate import CONFIG, course_root

TIMESTAMP = "timestamp.txt"
MAX_BYTES = 256   # nbgrader writes about 30; anything much longer is not a timestamp


@dataclass
class Stamp:
    """A submission's timestamp.txt: `utc` (naive UTC, as nbgrader stores it) or why there is none."""

    utc: object = None        # datetime.datetime or None
    problem: str = ""         # "" when utc is set
    missing: bool = False     # no timestamp.txt at all (reported only when there is a due date)


def read_timestamp(folder: Path) -> Stamp:
    """Read and parse `folder`/timestamp.txt as nbgrader does; never raises."""
    from nbgrader.utils import parse_utc  # the course extra

    path = Path(folder) / TIMESTAMP
    if not path.is_file() or path.is_symlink():
        return Stamp(problem=f"no {TIMESTAMP}: the submission time is unknown (not judged late)", missing=True)
    try:
        with open(path, "rb") as fh:
            data = fh.read(MAX_BYTES + 1)
    except OSError as exc:
        return Stamp(problem=f"{TIMESTAMP} could not be read ({type(exc).__name__}): not judged late")
    if len(data) > MAX_BYTES:
        return Stamp(problem=f"{TIMESTAMP} is longer than {MAX_BYTES} bytes: not a timestamp, not judged late")
    text = data.decode("utf-8", "replace").strip()
    if not text:
        return Stamp(problem=f"{TIMESTAMP} is empty: the submission time is unknown (not judged late)")
    try:
        utc = parse_utc(text)
    except (ValueError, OverflowError, TypeError, AttributeError) as exc:
        return Stamp(problem=f"{TIMESTAMP} holds {text[:60]!r}, which is not a date ({type(exc).__name__}): "
                             "not judged late")
    return Stamp(utc=utc)


def course_config(course: Path):
    """The course's nbgrader configuration (a traitlets Config): autograder/nbgrader_config.py and
    then nbgrader_config.py in `course` (the later one wins, as nbgrader merges them), or, when
    `course` has neither, the configuration of the course directory minicnn finds (locate.py).
    Running the files must not change this process: the environment is put back afterwards."""
    from traitlets.config import Config
    from traitlets.config.loader import PyFileConfigLoader

    files = [p for p in (Path(course) / CONFIG, Path(course) / "nbgrader_config.py") if p.is_file()]
    if not files:
        with contextlib.suppress(FileNotFoundError):
            files = [p for p in [course_root() / CONFIG] if p.is_file()]
    cfg = Config()
    saved = dict(os.environ)
    try:
        for path in files:
            cfg.merge(PyFileConfigLoader(path.name, path=str(path.parent)).load_config())
    finally:
        os.environ.clear()
        os.environ.update(saved)
    return cfg


def describe_seconds(seconds: float) -> str:
    """3725 -> '1 h 2 min 5 s'"""
    s = int(round(seconds))
    d, s = divmod(s, 86400)
    h, s = divmod(s, 3600)
    m, s = divmod(s, 60)
    out = [f"{d} d" if d else "", f"{h} h" if h else "", f"{m} min" if m else "", f"{s} s" if s or not (d or h or m)
           else ""]
    return " ".join(x for x in out if x)


def record(course: Path, assignment: str, records: list, stamps: dict, log=print) -> None:
    """Store each graded submission's timestamp in the gradebook, run nbgrader's AssignLatePenalties
    (the course's plugin settings) on it, and copy the outcome into the record (`submitted_at`,
    `seconds_late`, `late_penalty`, `late_note`) for the CSV, the report and the feedback."""
    from nbformat.v4 import new_notebook
    from nbgrader.api import Gradebook, MissingEntry
    from nbgrader.preprocessors import AssignLatePenalties

    course = Path(course)
    url = f"sqlite:///{course / 'gradebook.db'}"
    quiet = logging.getLogger("minicnn.late")
    quiet.setLevel(logging.ERROR)
    try:
        cfg = course_config(course)
        with Gradebook(url) as gb:
            due = gb.find_assignment(assignment).duedate
    except Exception as exc:  # noqa: BLE001 - a broken configuration costs the penalties, not the grades
        for rec in records:
            rec.flags.append(f"no late penalty worked out: {type(exc).__name__}: {str(exc)[:200]}")
        log(f"late penalties not worked out: {type(exc).__name__}: {exc}")
        return
    sys.path.insert(0, str(course))   # a plugin module kept in the course directory is found, as nbgrader run there
    try:
        for rec in records:
            stamp = stamps.get(rec.student)
            if stamp is None:
                continue
            if stamp.problem and (due is not None or not stamp.missing):
                rec.late_note = stamp.problem
            try:
                with Gradebook(url) as gb:
                    try:
                        sub = gb.find_submission(assignment, rec.student)
                    except MissingEntry:
                        continue     # nothing was written for this student (see the record's flags)
                    if stamp.utc is not None:
                        sub.timestamp = stamp.utc
                        gb.db.commit()
                    rec.submitted_at = sub.timestamp.isoformat(sep=" ") + " UTC" if sub.timestamp else ""
                    rec.seconds_late = float(sub.total_seconds_late)
                pre = AssignLatePenalties(config=cfg, log=quiet)
                resources = {"nbgrader": {"notebook": assignment, "assignment": assignment, "student": rec.student,
                                          "db_url": url}}
                pre.preprocess(new_notebook(), resources)
                with Gradebook(url) as gb:
                    nb = gb.find_submission_notebook(assignment, assignment, rec.student)
                    rec.late_penalty = float(nb.late_submission_penalty or 0.0)
            except Exception as exc:  # noqa: BLE001 - an instructor's plugin may raise anything
                rec.flags.append(f"the late penalty could not be worked out: {type(exc).__name__}: {str(exc)[:200]}")
    finally:
        sys.path.remove(str(course))
    late = [r for r in records if r.seconds_late > 0]
    if due is not None:
        log(f"due {due.isoformat(sep=' ')} UTC: {len(late)} late submission(s)"
            + (f", penalties {', '.join(f'{r.student} {r.late_penalty:g}' for r in late)}" if late else ""))


def feedback_line(rec) -> str:
    """The sentence a student's feedback shows about lateness ('' when on time and nothing to say)."""
    if rec.seconds_late > 0:
        line = f"Submitted {rec.submitted_at}, {describe_seconds(rec.seconds_late)} after the due date."
        if rec.late_penalty:
            line += (f" Late penalty: {rec.late_penalty:g} points, so {max(rec.total - rec.late_penalty, 0):g} "
                     f"of {rec.most:g} points count.")
        return line
    return rec.late_note
