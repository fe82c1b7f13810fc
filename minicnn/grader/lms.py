"""`minicnn course export --format canvas|moodle`: the gradebook as a file an LMS imports.

Scores come from nbgrader's gradebook (autograded parts, hand grades entered in formgrader, and
nbgrader's late penalty), so an export made after hand grading carries those grades.  Each score
is nbgrader's own `score - late_submission_penalty` (as `nbgrader export` writes it).  Rows: the
roster's students in the roster's order (a student without a submission has an empty cell, which
both LMSs read as "no grade"), then everyone else who handed something in, with a warning that
they are not on the roster (graded and exported, never dropped).  With --parts, each graded
cell gets a column too ("a1_convolution: test_correlate2d"), its points before any late penalty
(the penalty is nbgrader's, on the whole notebook).

Canvas (Grades > Import): columns Student ("Last, First"), ID, SIS User ID, SIS Login ID,
Section, then one column per assignment; the second row is "Points Possible" with each
assignment's maximum.  Canvas matches a row to a student by ID (its own user number, which the
roster does not know: left empty), SIS User ID (the roster's student_id) or SIS Login ID (the
roster's lms_id).  A column whose name matches no Canvas assignment becomes a new assignment.

Moodle (Grades > Import > CSV file): First name, Last name, ID number, Email address, Username,
then one column per assignment.  On import, map "Email address" to email (or "Username" to
username, "ID number" to idnumber) and each assignment column to its grade item.
"""
from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path

from . import roster

FORMATS = ("canvas", "moodle")
CANVAS_HEAD = ["Student", "ID", "SIS User ID", "SIS Login ID", "Section"]
MOODLE_HEAD = ["First name", "Last name", "ID number", "Email address", "Username"]


@dataclass
class Row:
    student_id: str
    first_name: str
    last_name: str
    email: str
    lms_id: str
    scores: dict = field(default_factory=dict)   # column -> points after the late penalty (absent: no submission)


def _num(x: float) -> str:
    return f"{round(float(x), 2):g}"


def gather(course: Path, assignments=None, parts: bool = False):
    """(columns, maxima {column: points}, rows, warnings) from COURSE/gradebook.db."""
    from nbgrader.api import Gradebook  # the course extra

    course = Path(course)
    db = course / "gradebook.db"
    if not db.is_file():
        raise FileNotFoundError(f"no gradebook in {course}: grade an assignment or import a roster first")
    warnings, columns, maxima = [], [], {}
    listed = roster.listed(course)
    order = [s.student_id for s in roster.read(course / roster.ROSTER)] if listed else []
    with Gradebook(f"sqlite:///{db}") as gb:
        known = sorted(a.name for a in gb.assignments)
        names = list(assignments or known)
        unknown = [a for a in names if a not in known]
        if unknown:
            raise ValueError(f"no assignment {', '.join(unknown)} in the gradebook (it has {', '.join(known) or 'none'})")
        students = {s.id: s for s in gb.students}
        rows = {}
        for sid in order + sorted(set(students) - set(order)):
            s = students.get(sid)
            rows[sid] = Row(sid, (s.first_name if s else "") or "", (s.last_name if s else "") or "",
                            (s.email if s else "") or "", (s.lms_user_id if s else "") or "")
        handed_in = set()
        for a in names:
            assignment = gb.find_assignment(a)
            columns.append(a)
            maxima[a] = float(assignment.max_score)
            part_cols = []
            if parts:
                for nb in assignment.notebooks:
                    for cell in nb.grade_cells:
                        col = f"{a}: {cell.name}"
                        part_cols.append(col)
                        maxima[col] = float(cell.max_score)
                columns.extend(part_cols)
            for sub in assignment.submissions:
                sid = sub.student.id
                handed_in.add(sid)
                rows[sid].scores[a] = max(float(sub.score) - float(sub.late_submission_penalty or 0.0), 0.0)
                if sub.needs_manual_grade:
                    warnings.append(f"{sid} {a}: parts still to be graded by hand (formgrader) count 0 here")
                if parts:
                    for nb in sub.notebooks:
                        for g in nb.grades:
                            rows[sid].scores[f"{a}: {g.name}"] = float(g.score)
    if listed:
        for sid in sorted(handed_in - listed):
            warnings.append(f"{sid}: handed in but not on the roster ({roster.ROSTER}): exported with no name")
    return columns, maxima, list(rows.values()), warnings


FORMULA_START = ("=", "+", "-", "@", "\t", "\r")   # what a spreadsheet may run as a formula


def formula_warnings(rows) -> list[str]:
    """A warning for every name, id or email that a spreadsheet opening the export could take for a
    formula (it starts with =, +, -, @, a tab or a carriage return).  Written as it is: the LMS
    matches rows on these values, so changing them (a leading quote, say) would break the import;
    the instructor is told not to open the file in a spreadsheet first, or to check those rows."""
    out = []
    for r in rows:
        for what in ("student_id", "first_name", "last_name", "email", "lms_id"):
            value = getattr(r, what)
            if value and value.startswith(FORMULA_START):
                out.append(f"{r.student_id!r}: {what} {value[:40]!r} starts like a spreadsheet formula; it is "
                           "exported as it is (the LMS matches on it): import the file directly, do not open "
                           "it in a spreadsheet first")
    return out


def write(course: Path, fmt: str, out: Path, assignments=None, parts: bool = False) -> list[str]:
    """Write the export; returns the warnings (students not on the roster, hand grading left, values
    that look like spreadsheet formulas)."""
    if fmt not in FORMATS:
        raise ValueError(f"format must be one of {', '.join(FORMATS)}, not {fmt!r}")
    columns, maxima, rows, warnings = gather(course, assignments, parts)
    warnings = warnings + formula_warnings(rows)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        if fmt == "canvas":
            w.writerow(CANVAS_HEAD + columns)
            w.writerow(["Points Possible", "", "", "", ""] + [_num(maxima[c]) for c in columns])
            for r in rows:
                name = ", ".join(x for x in (r.last_name, r.first_name) if x) or r.student_id
                w.writerow([name, "", r.student_id, r.lms_id, ""]
                           + [_num(r.scores[c]) if c in r.scores else "" for c in columns])
        else:
            w.writerow(MOODLE_HEAD + columns)
            for r in rows:
                w.writerow([r.first_name, r.last_name, r.student_id, r.email, r.lms_id]
                           + [_num(r.scores[c]) if c in r.scores else "" for c in columns])
    return warnings
