"""The class list: a roster CSV read into nbgrader's gradebook, so that formgrader, the exports and
the grading report know each student's name.

    student_id,first_name,last_name,email,lms_id
    s001,Ada,Lovelace,ada@example.org,alovelace

student_id is the name of the student's folder under submitted/ (nbgrader's student id);
lms_id is the student's login in the learning management system (Canvas's "SIS Login ID",
Moodle's username), stored as nbgrader's `lms_user_id`.  `minicnn course roster import FILE`
checks every row, and imports nothing when any row is wrong (each bad row is named by its line
number); on success the file is kept as COURSE/.minicnn/roster.csv, the roster grading and the
exports compare submissions with.
"""
from __future__ import annotations

import csv
import io
import os
import re
from dataclasses import dataclass
from pathlib import Path

from .nbg import nbgrader_env

COLUMNS = ("student_id", "first_name", "last_name", "email", "lms_id")
ROSTER = Path(".minicnn") / "roster.csv"
# a student id names a folder under submitted/: no path separators, no leading dot, no spaces at the ends
_ID = re.compile(r"^[^/\\\x00-\x1f.][^/\\\x00-\x1f]{0,127}$")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


@dataclass
class Student:
    student_id: str
    first_name: str
    last_name: str
    email: str
    lms_id: str


class RosterError(ValueError):
    """A roster that cannot be imported; `problems` lists 'line N: what is wrong'."""

    def __init__(self, path, problems):
        self.problems = list(problems)
        super().__init__(f"{path}: {len(self.problems)} problem(s), nothing imported:\n  "
                         + "\n  ".join(self.problems))


def parse(text: str, path="roster") -> list[Student]:
    """The students of a roster CSV's text; RosterError naming every bad line."""
    rows = list(csv.reader(io.StringIO(text.lstrip("\ufeff"))))
    if not rows:
        raise RosterError(path, [f"line 1: empty file; the header must be {','.join(COLUMNS)}"])
    header = [h.strip().lower() for h in rows[0]]
    missing = [c for c in COLUMNS if c not in header]
    unknown = [h for h in header if h not in COLUMNS]
    if missing or unknown or len(set(header)) != len(header):
        what = []
        if missing:
            what.append(f"missing column(s) {', '.join(missing)}")
        if unknown:
            what.append(f"unknown column(s) {', '.join(repr(h) for h in unknown)}")
        if len(set(header)) != len(header):
            what.append("a column appears twice")
        raise RosterError(path, [f"line 1 (the header): {'; '.join(what)}; expected {','.join(COLUMNS)}"])
    students, problems, seen = [], [], {}
    for line, row in enumerate(rows[1:], start=2):
        if not any(cell.strip() for cell in row):
            continue   # a blank line
        if len(row) != len(header):
            problems.append(f"line {line}: {len(row)} field(s), expected {len(header)} ({','.join(header)})")
            continue
        rec = {h: cell.strip() for h, cell in zip(header, row)}
        sid = rec["student_id"]
        bad = []
        if not sid:
            bad.append("student_id is empty")
        elif not _ID.match(sid) or sid != row[header.index("student_id")]:
            bad.append(f"student_id {sid!r} cannot be a folder name (no /, \\, control characters, leading dot "
                       "or surrounding spaces; at most 128 characters)")
        elif sid in seen:
            bad.append(f"student_id {sid!r} already on line {seen[sid]}")
        if rec["email"] and not _EMAIL.match(rec["email"]):
            bad.append(f"email {rec['email']!r} is not an address")
        if not (rec["first_name"] or rec["last_name"]):
            bad.append("no first_name or last_name")
        if any(len(v) > 128 for v in rec.values()):
            bad.append("a field longer than 128 characters")
        if bad:
            problems.append(f"line {line}: " + "; ".join(bad))
            continue
        seen[sid] = line
        students.append(Student(**{c: rec[c] for c in COLUMNS}))
    if problems:
        raise RosterError(path, problems)
    return students


def read(path: Path) -> list[Student]:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise RosterError(path, [f"not UTF-8 text ({exc.reason} at byte {exc.start}): save it as UTF-8 CSV"]) from None
    return parse(text, path)


def import_roster(course: Path, path: Path) -> list[Student]:
    """Check the roster at `path`, put its students into COURSE/gradebook.db (names, email and LMS
    login; grades untouched) and keep it as COURSE/.minicnn/roster.csv.  RosterError when any row
    is wrong (nothing imported then)."""
    from nbgrader.api import Gradebook  # the course extra

    course = Path(course).resolve()
    students = read(path)
    saved = os.environ.get("PATH")
    os.environ["PATH"] = nbgrader_env()["PATH"]   # a new gradebook runs `alembic` from PATH: this Python's
    try:
        with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gb:
            for s in students:
                gb.update_or_create_student(s.student_id, first_name=s.first_name, last_name=s.last_name,
                                            email=s.email or None, lms_user_id=s.lms_id or None)
    finally:
        if saved is None:
            os.environ.pop("PATH", None)
        else:
            os.environ["PATH"] = saved
    kept = course / ROSTER
    kept.parent.mkdir(mode=0o700, exist_ok=True)
    if Path(path).resolve() != kept.resolve():
        with kept.open("w", newline="", encoding="utf-8") as fh:
            w = csv.writer(fh)
            w.writerow(COLUMNS)
            for s in students:
                w.writerow([getattr(s, c) for c in COLUMNS])
    return students


def listed(course: Path):
    """The student ids on the course's roster (COURSE/.minicnn/roster.csv), or None when the
    course has no roster with anyone on it (or an unreadable one: `roster import` reports that)."""
    path = Path(course) / ROSTER
    if not path.is_file():
        return None
    try:
        ids = {s.student_id for s in read(path)}
    except (RosterError, OSError):
        return None
    return ids or None


def flag_unlisted(course: Path, records: list) -> None:
    """Flag each graded submission whose student is not on the roster (graded all the same)."""
    ids = listed(course)
    if ids is None:
        return
    for rec in records:
        if rec.student not in ids:
            rec.flags.append(f"not on the roster ({ROSTER}): graded, but no name; add the student and "
                             "run `minicnn course roster import` again")
