"""What grading a class writes, from the records (record.Grade), after every student process
has ended:

    COURSE/gradebook.db                       one auto score per graded cell, per student (nbgrader's tables)
    COURSE/grades/<assignment>.csv            one row per student, one column per graded part, a reason,
                                              the submission time and late penalty (late.py)
    COURSE/grades/<assignment>-report.json    everything: feedback lines, flags, output excerpts
    COURSE/feedback/<student>/<assignment>/<assignment>.html   feedback without any test source
    COURSE/autograded/<student>/<assignment>/<assignment>.ipynb  for nbgrader's formgrader (hand grading)
"""
from __future__ import annotations

import csv
import html
import json
import tempfile
import warnings
from pathlib import Path

from ..course.notebook import cells_of, grade_id, is_test_cell, read_notebook
from . import late, nbg
from .record import Grade


def write_gradebook(course: Path, assignment: str, source_nb: dict, records: list):
    """Record the auto scores in nbgrader's gradebook (the assignment's cells are entered by
    nbgrader's own generate_assignment, so `nbgrader export` and formgrader work on it)."""
    from nbgrader.api import Gradebook, MissingEntry  # the course extra, needed only here

    url = f"sqlite:///{course / 'gradebook.db'}"
    with tempfile.TemporaryDirectory(prefix="minicnn-gradebook-") as tmp:
        cdir = nbg.CourseDir(Path(tmp))
        cdir.add_source(assignment, {f"{assignment}.ipynb": source_nb})
        cdir.run("generate_assignment", assignment, "--force", f"--CourseDirectory.db_url={url}")
    with Gradebook(url) as gb, warnings.catch_warnings():
        warnings.simplefilter("ignore")  # SQLAlchemy's autoflush notes from nbgrader's add_submission
        for rec in records:
            student = rec.student
            gb.update_or_create_student(student)
            try:
                gb.find_submission(assignment, student)
            except MissingEntry:
                gb.add_submission(assignment, student)
            scores = rec.scores()
            nb = gb.find_submission_notebook(assignment, assignment, student)
            for grade in nb.grades:
                if grade.name in scores:
                    grade.auto_score = scores[grade.name]
                    grade.needs_manual_grade = False
                elif grade.cell.cell_type == "code" and not grade.needs_manual_grade:
                    grade.auto_score = 0.0
            gb.db.commit()


def read_submitted(path: Path):
    """The submitted notebook as it was before any student code ran (None if unreadable)."""
    try:
        nb = read_notebook(path)
    except (OSError, ValueError):
        return None
    return nb if isinstance(nb, dict) and isinstance(nb.get("cells"), list) else None


def write_autograded(course: Path, assignment: str, source_nb: dict, records: list, submitted: dict):
    """COURSE/autograded/<student>/<assignment>/<assignment>.ipynb, as nbgrader's autograde leaves it
    for formgrader (where the written answers are graded by hand): the submission with the
    instructor's test cells put back (hidden tests included: this folder is the instructor's), each
    showing the grader's feedback for its part as its output."""
    tests = {grade_id(c): c for c in cells_of(source_nb) if is_test_cell(c)}
    for rec in records:
        nb = submitted.get(rec.student)
        if nb is None:
            continue
        feedback = {p.grade_id: "\n".join(p.lines) + "\n" for p in rec.parts}
        cells, seen = [], set()
        for cell in cells_of(nb):
            gid = grade_id(cell)
            if isinstance(gid, str) and gid in tests:   # a student's metadata may hold anything (a list)
                if gid in seen:
                    continue
                seen.add(gid)
                cell = dict(tests[gid], execution_count=None,
                            outputs=[{"output_type": "stream", "name": "stdout", "text": feedback.get(gid, "")}])
            cells.append(cell)
        for gid, cell in tests.items():  # deleted test cells come back (as nbgrader's add_missing_cells does)
            if gid not in seen:
                cells.append(dict(cell, execution_count=None,
                                  outputs=[{"output_type": "stream", "name": "stdout", "text": feedback.get(gid, "")}]))
        out = dict(nb, cells=cells)
        d = course / "autograded" / rec.student / assignment
        d.mkdir(parents=True, exist_ok=True)
        (d / f"{assignment}.ipynb").write_text(json.dumps(out, indent=1), encoding="utf-8")


def write_csv(course: Path, assignment: str, records: list) -> Path:
    out = course / "grades" / f"{assignment}.csv"
    out.parent.mkdir(parents=True, exist_ok=True)
    parts = []
    for rec in records:
        for p in rec.parts:
            if p.grade_id not in parts:
                parts.append(p.grade_id)
    with out.open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["student", "status"] + parts + ["total", "max", "reason", "flags",
                                                   "submitted_at", "seconds_late", "late_penalty", "final", "late_note"])
        for rec in records:
            scores = rec.scores()
            reason = rec.reason or ("; ".join(rec.cell_errors[:3]) or "graded")
            w.writerow([rec.student, rec.status] + [f"{scores[g]:g}" if g in scores else "" for g in parts]
                       + [f"{rec.total:g}", f"{rec.most:g}", reason, " | ".join(rec.flags + rec.similar),
                          rec.submitted_at, f"{rec.seconds_late:.0f}", f"{rec.late_penalty:g}", f"{rec.final:g}",
                          rec.late_note])
    return out


def feedback_html(rec: Grade) -> str:
    """A student's feedback: per part, the score and the checks' lines.  No test source at all
    (the checks never print a hidden case's inputs)."""
    e = html.escape
    out = ["<!DOCTYPE html><html><head><meta charset='utf-8'>",
           f"<title>{e(rec.assignment)}: feedback for {e(rec.student)}</title>",
           "<style>body{font-family:sans-serif;max-width:60em;margin:2em auto}pre{background:#f4f4f4;padding:.5em;"
           "white-space:pre-wrap}h2{font-size:1.1em}.ok{color:#060}.short{color:#a00}</style></head><body>",
           f"<h1>{e(rec.assignment)}: {rec.total:g} of {rec.most:g} points (autograded)</h1>",
           f"<p>Student: {e(rec.student)}. Parts graded by hand are not included here.</p>"]
    if rec.reason:
        out.append(f"<p><b>Note:</b> {e(rec.reason)}</p>")
    late_line = late.feedback_line(rec)
    if late_line:
        out.append(f"<p class='late'><b>Deadline:</b> {e(late_line)}</p>")
    if rec.cell_errors:
        out.append("<h2>Cells that raised an error while your notebook ran</h2><pre>"
                   + e("\n".join(rec.cell_errors)) + "</pre>")
    for p in rec.parts:
        cls = "ok" if p.score >= p.max else "short"
        out.append(f"<h2 class='{cls}'>{e(p.title)} [{e(p.grade_id)}]: {p.score:g} of {p.max:g}</h2>")
        out.append("<pre>" + e("\n".join(p.lines)) + "</pre>")
    if rec.notes:
        out.append("<h2>Notes</h2><ul>" + "".join(f"<li>{e(n)}</li>" for n in rec.notes) + "</ul>")
    out.append("</body></html>")
    return "\n".join(out)


def write_feedback(course: Path, assignment: str, records: list):
    for rec in records:
        d = course / "feedback" / rec.student / assignment
        d.mkdir(parents=True, exist_ok=True)
        (d / f"{assignment}.html").write_text(feedback_html(rec), encoding="utf-8")


def summary_table(report: dict) -> str:
    """The class at a glance: one line per student (points, status, reason and flags)."""
    recs = [Grade.from_dict(r) for r in report["records"]]
    width = max([len(r.student) for r in recs] + [7])
    lines = [f"{'student'.ljust(width)}  {'points':>11}  {'status':<12} reason / flags"]
    for r in recs:
        why, flags = r.reason, r.flags + r.similar
        if r.late_penalty:
            why = f"late penalty {r.late_penalty:g}" + ("; " + why if why else "")
        if flags:
            why = (why + "; " if why else "") + f"{len(flags)} flag(s): " + "; ".join(flags[:2])
        lines.append(f"{r.student.ljust(width)}  {r.total:>5g} / {r.most:<4g}  {r.status:<12} {why[:110]}")
    lines.append(f"\n{len(recs)} submission(s) in {report['seconds']:.1f} s with {report['workers']} worker(s): "
                 f"{report['per_minute']:.1f} per minute")
    return "\n".join(lines)
