"""`minicnn course grade ASSIGNMENT`: grade a whole class, in parallel, from outside the students' code.

The course directory follows nbgrader's layout:

    COURSE/submitted/<student>/<assignment>/<assignment>.ipynb    what students handed in
    COURSE/solutions/<assignment>/<assignment>.ipynb              the source (else minicnn's own)
    COURSE/gradebook.db                                           nbgrader's gradebook (created if absent)

and grading writes

    COURSE/gradebook.db                       one auto score per graded cell, per student (nbgrader's tables)
    COURSE/grades/<assignment>.csv            one row per student, one column per graded part, a reason
    COURSE/grades/<assignment>-report.json    everything: feedback lines, flags, output excerpts
    COURSE/feedback/<student>/<assignment>/<assignment>.html   feedback without any test source
    COURSE/autograded/<student>/<assignment>/<assignment>.ipynb  for nbgrader's formgrader (hand grading)

Worker processes (`python -m minicnn.course.batch worker`) grade one submission at a time
each (grading.py) and send back a JSON record; only this parent process writes files, and
only after every student process has ended.  Before any student code runs, each
submission folder is copied to a private staging area and the gradebook is read into
memory; if it changed by the end (only possible without bubblewrap), the change is
reported, set aside and undone before the grades are written.
"""
from __future__ import annotations

import csv
import html
import json
import os
import selectors
import shutil
import subprocess
import sys
import tempfile
import time
import warnings
from dataclasses import asdict
from pathlib import Path

from . import course_root, isolation


# ----------------------------------------------------------------------------- the worker process

def worker_main(argv) -> int:
    """Read jobs (JSON lines) on stdin, write one JSON record per job on the real stdout."""
    from . import grading

    out = os.fdopen(os.dup(1), "w", encoding="utf-8")
    os.dup2(os.open(os.devnull, os.O_WRONLY), 1)  # nothing else may write into the result stream
    isolation.become_subreaper()
    setup = json.loads(sys.stdin.readline())
    limits = isolation.Limits(**setup["limits"])
    source_nb = setup["source"]
    for line in sys.stdin:
        job = json.loads(line)
        try:
            rec = grading.grade(job["student"], setup["assignment"], source_nb, Path(job["dir"]), setup["mode"],
                                limits, Path(setup["scratch"]), setup.get("cells_timeout"), setup.get("case_timeout"))
        except Exception as exc:  # noqa: BLE001 - a grader bug must not take the batch down
            import traceback

            rec = {"student": job["student"], "assignment": setup["assignment"], "status": "grader-error",
                   "reason": f"the grader failed: {type(exc).__name__}: {exc}", "parts": [], "cell_errors": [],
                   "flags": [], "notes": [], "output": traceback.format_exc()[-4000:], "seconds": 0.0,
                   "killed": 0, "starts": 0}
        isolation.kill_descendants()
        out.write(json.dumps(rec) + "\n")
        out.flush()
    return 0


class Worker:
    def __init__(self, setup: dict, index: int):
        self.proc = subprocess.Popen([sys.executable, "-m", "minicnn.course.batch", "worker"],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1)
        self.proc.stdin.write(json.dumps(setup) + "\n")
        self.proc.stdin.flush()
        self.job = None
        self.index = index

    def give(self, job):
        self.job = job
        self.proc.stdin.write(json.dumps(job) + "\n")
        self.proc.stdin.flush()

    def close(self):
        try:
            self.proc.stdin.close()
        except OSError:
            pass
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


# ----------------------------------------------------------------------------- progress

class Progress:
    def __init__(self, total: int, stream=None, enabled=True):
        self.total, self.done, self.t0 = total, 0, time.perf_counter()
        self.stream = stream or sys.stderr
        self.enabled = enabled
        self.tty = self.enabled and hasattr(self.stream, "isatty") and self.stream.isatty()

    def update(self, rec, running):
        self.done += 1
        if not self.enabled:
            return
        minutes = (time.perf_counter() - self.t0) / 60
        rate = self.done / minutes if minutes > 0 else 0.0
        width = 30
        filled = int(width * self.done / max(self.total, 1))
        bar = "#" * filled + "." * (width - filled)
        got = sum(p["score"] for p in rec["parts"])
        most = sum(p["max"] for p in rec["parts"])
        line = (f"[{bar}] {self.done}/{self.total} graded, {running} running, {rate:.1f}/min   "
                f"last: {rec['student']} {got:g}/{most:g} ({rec['status']}, {rec['seconds']:.1f} s)")
        if self.tty:
            self.stream.write("\r" + line[:160].ljust(160))
            if self.done == self.total:
                self.stream.write("\n")
        else:
            self.stream.write(line + "\n")
        self.stream.flush()


# ----------------------------------------------------------------------------- the batch

def source_notebook(course: Path, assignment: str) -> Path:
    for root in (course, course_root()):
        path = root / "solutions" / assignment / f"{assignment}.ipynb"
        if path.is_file():
            return path
    raise FileNotFoundError(f"no source notebook solutions/{assignment}/{assignment}.ipynb in {course} "
                            f"or {course_root()}")


def submissions(course: Path, assignment: str, only=None) -> list[tuple[str, Path]]:
    base = course / "submitted"
    if not base.is_dir():
        raise FileNotFoundError(f"no submitted/ folder in {course} (nbgrader's layout: "
                                f"submitted/<student>/{assignment}/{assignment}.ipynb)")
    out = []
    for sdir in sorted(base.iterdir()):
        if sdir.is_dir() and not sdir.is_symlink() and (sdir / assignment).is_dir():
            if only is None or sdir.name in only:
                out.append((sdir.name, sdir / assignment))
    return out


def _stage(subs, staging: Path) -> list[dict]:
    """Copy every submission folder (no symlinks followed) before any student code runs."""
    jobs = []
    for student, folder in subs:
        dest = staging / student
        shutil.copytree(folder, dest, symlinks=True)
        jobs.append({"student": student, "dir": str(dest)})
    return jobs


def grade_batch(assignment: str, course: Path, jobs: int | None = None, isolation_mode: str = "auto",
                limits: isolation.Limits | None = None, only=None, progress: bool = True,
                cells_timeout: float | None = None, case_timeout: float | None = None, log=print) -> dict:
    """Grade every submission of `assignment` in `course`; write the outputs; return a summary."""
    course = Path(course).resolve()
    limits = limits or isolation.Limits()
    source_path = source_notebook(course, assignment)
    source_nb = json.loads(source_path.read_text(encoding="utf-8"))
    subs = submissions(course, assignment, only)
    mode, sentence = isolation.choose(isolation_mode)
    log(sentence)
    gradebook = course / "gradebook.db"
    before = gradebook.read_bytes() if gradebook.exists() else None
    jobs = max(1, min(jobs or os.cpu_count() or 1, len(subs) or 1))
    records = []
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="minicnn-grade-") as private:
        os.chmod(private, 0o700)
        staging, scratch = Path(private) / "staging", Path(private) / "work"
        staging.mkdir()
        scratch.mkdir()
        queue = _stage(subs, staging)
        submitted = {job["student"]: _read_notebook(Path(job["dir"]) / f"{assignment}.ipynb") for job in queue}
        log(f"grading {len(queue)} submission(s) of {assignment} with {jobs} worker process(es)")
        setup = {"assignment": assignment, "source": source_nb, "mode": mode, "scratch": str(scratch),
                 "limits": asdict(limits), "cells_timeout": cells_timeout, "case_timeout": case_timeout}
        bar = Progress(len(queue), enabled=progress)
        records = _run_workers(setup, queue, jobs, bar)
    seconds = time.perf_counter() - t0
    tampered = _check_gradebook(gradebook, before)  # a batch-wide finding: which student did it is unknown
    records.sort(key=lambda r: r["student"])
    _write_gradebook(course, assignment, source_nb, records)
    _write_autograded(course, assignment, source_nb, records, submitted)
    csv_path = _write_csv(course, assignment, records)
    _write_feedback(course, assignment, records)
    report = {"assignment": assignment, "isolation": mode, "isolation_note": sentence, "seconds": seconds,
              "workers": jobs, "per_minute": len(records) / (seconds / 60) if seconds > 0 else 0.0,
              "gradebook_tampering": tampered, "records": records}
    rep_path = course / "grades" / f"{assignment}-report.json"
    rep_path.write_text(json.dumps(report, indent=1), encoding="utf-8")
    report["csv"], report["report"] = str(csv_path), str(rep_path)
    return report


def _run_workers(setup, queue, jobs, bar) -> list[dict]:
    sel = selectors.DefaultSelector()
    workers, records, pending = [], [], list(queue)

    def launch(i):
        w = Worker(setup, i)
        sel.register(w.proc.stdout, selectors.EVENT_READ, w)
        return w

    def feed(w):
        if pending:
            w.give(pending.pop(0))
        else:
            w.job = None
    for i in range(jobs):
        w = launch(i)
        workers.append(w)
        feed(w)
    while any(w.job is not None for w in workers):
        for key, _ in sel.select(timeout=1.0):
            w = key.data
            line = w.proc.stdout.readline()
            if line:
                try:
                    rec = json.loads(line)
                except json.JSONDecodeError:
                    continue
                records.append(rec)
            else:  # the worker died (killed from outside, or a grader crash): record it and replace it
                sel.unregister(w.proc.stdout)
                w.proc.wait()
                if w.job is not None:
                    records.append({"student": w.job["student"], "assignment": setup["assignment"],
                                    "status": "grader-error", "reason": f"the grading process died "
                                    f"(exit {w.proc.returncode}) while grading this submission",
                                    "parts": [], "cell_errors": [], "flags": ["grading process died"], "notes": [],
                                    "output": "", "seconds": 0.0, "killed": 0, "starts": 0})
                isolation.kill_descendants()
                nw = launch(w.index)
                workers[workers.index(w)] = nw
                w = nw
            running = sum(1 for x in workers if x.job is not None) - 1
            bar.update(records[-1], max(running, 0))
            feed(w)
    for w in workers:
        sel.unregister(w.proc.stdout)
        w.close()
    return records


def _check_gradebook(path: Path, before) -> str:
    """'' if the gradebook is as it was before any student code ran; else what happened (undone)."""
    now = path.read_bytes() if path.exists() else None
    if now == before:
        return ""
    aside = path.with_name(f"gradebook.db.changed-during-grading-{int(time.time())}")
    if path.exists():
        path.replace(aside)
    if before is not None:
        path.write_bytes(before)
    return (f"gradebook.db was {'created' if before is None else 'changed'} while student code ran (tampering?): "
            f"set aside as {aside.name} and restored")


# ----------------------------------------------------------------------------- outputs

def _write_gradebook(course: Path, assignment: str, source_nb: dict, records: list):
    """Record the auto scores in nbgrader's gradebook (the assignment's cells are entered by
    nbgrader's own generate_assignment, so `nbgrader export` and formgrader work on it)."""
    from nbgrader.api import Gradebook, MissingEntry

    from . import nbg

    url = f"sqlite:///{course / 'gradebook.db'}"
    with tempfile.TemporaryDirectory(prefix="minicnn-gradebook-") as tmp:
        cdir = nbg.CourseDir(Path(tmp))
        cdir.add_source(assignment, {f"{assignment}.ipynb": source_nb})
        cdir.run("generate_assignment", assignment, "--force", f"--CourseDirectory.db_url={url}")
    with Gradebook(url) as gb, warnings.catch_warnings():
        warnings.simplefilter("ignore")  # SQLAlchemy's autoflush notes from nbgrader's add_submission
        for rec in records:
            student = rec["student"]
            gb.update_or_create_student(student)
            try:
                gb.find_submission(assignment, student)
            except MissingEntry:
                gb.add_submission(assignment, student)
            scores = {p["grade_id"]: p["score"] for p in rec["parts"]}
            nb = gb.find_submission_notebook(assignment, assignment, student)
            for grade in nb.grades:
                if grade.name in scores:
                    grade.auto_score = scores[grade.name]
                    grade.needs_manual_grade = False
                elif grade.cell.cell_type == "code" and not grade.needs_manual_grade:
                    grade.auto_score = 0.0
            gb.db.commit()


def _read_notebook(path: Path):
    """The submitted notebook as it was before any student code ran (None if unreadable)."""
    try:
        nb = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return nb if isinstance(nb, dict) and isinstance(nb.get("cells"), list) else None


def _write_autograded(course: Path, assignment: str, source_nb: dict, records: list, submitted: dict):
    """COURSE/autograded/<student>/<assignment>/<assignment>.ipynb, as nbgrader's autograde leaves it
    for formgrader (where the written answers are graded by hand): the submission with the
    instructor's test cells put back (hidden tests included: this folder is the instructor's), each
    showing the grader's feedback for its part as its output."""
    from . import grading

    tests = {grading.nbgrader_meta(c)["grade_id"]: c for c in grading.cells_of(source_nb) if grading.is_test_cell(c)}
    for rec in records:
        nb = submitted.get(rec["student"])
        if nb is None:
            continue
        feedback = {p["grade_id"]: "\n".join(p["lines"]) + "\n" for p in rec["parts"]}
        cells, seen = [], set()
        for cell in grading.cells_of(nb):
            gid = grading.nbgrader_meta(cell).get("grade_id")
            if gid in tests:
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
        d = course / "autograded" / rec["student"] / assignment
        d.mkdir(parents=True, exist_ok=True)
        (d / f"{assignment}.ipynb").write_text(json.dumps(out, indent=1), encoding="utf-8")


def _write_csv(course: Path, assignment: str, records: list) -> Path:
    out = course / "grades" / f"{assignment}.csv"
    out.parent.mkdir(parents=True, exist_ok=True)
    parts = []
    for rec in records:
        for p in rec["parts"]:
            if p["grade_id"] not in parts:
                parts.append(p["grade_id"])
    with out.open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["student", "status"] + parts + ["total", "max", "reason", "flags"])
        for rec in records:
            scores = {p["grade_id"]: p["score"] for p in rec["parts"]}
            most = {p["grade_id"]: p["max"] for p in rec["parts"]}
            reason = rec.get("reason") or ("; ".join(rec.get("cell_errors", [])[:3]) or "graded")
            w.writerow([rec["student"], rec["status"]] + [f"{scores[g]:g}" if g in scores else "" for g in parts]
                       + [f"{sum(scores.values()):g}", f"{sum(most.values()):g}", reason,
                          " | ".join(rec.get("flags", []))])
    return out


def feedback_html(rec: dict) -> str:
    """A student's feedback: per part, the score and the checks' lines.  No test source at all
    (the checks never print a hidden case's inputs)."""
    e = html.escape
    got = sum(p["score"] for p in rec["parts"])
    most = sum(p["max"] for p in rec["parts"])
    out = ["<!DOCTYPE html><html><head><meta charset='utf-8'>",
           f"<title>{e(rec['assignment'])}: feedback for {e(rec['student'])}</title>",
           "<style>body{font-family:sans-serif;max-width:60em;margin:2em auto}pre{background:#f4f4f4;padding:.5em;"
           "white-space:pre-wrap}h2{font-size:1.1em}.ok{color:#060}.short{color:#a00}</style></head><body>",
           f"<h1>{e(rec['assignment'])}: {got:g} of {most:g} points (autograded)</h1>",
           f"<p>Student: {e(rec['student'])}. Parts graded by hand are not included here.</p>"]
    if rec.get("reason"):
        out.append(f"<p><b>Note:</b> {e(rec['reason'])}</p>")
    if rec.get("cell_errors"):
        out.append("<h2>Cells that raised an error while your notebook ran</h2><pre>"
                   + e("\n".join(rec["cell_errors"])) + "</pre>")
    for p in rec["parts"]:
        cls = "ok" if p["score"] >= p["max"] else "short"
        out.append(f"<h2 class='{cls}'>{e(p['title'])} [{e(p['grade_id'])}]: {p['score']:g} of {p['max']:g}</h2>")
        out.append("<pre>" + e("\n".join(p["lines"])) + "</pre>")
    if rec.get("notes"):
        out.append("<h2>Notes</h2><ul>" + "".join(f"<li>{e(n)}</li>" for n in rec["notes"]) + "</ul>")
    out.append("</body></html>")
    return "\n".join(out)


def _write_feedback(course: Path, assignment: str, records: list):
    for rec in records:
        d = course / "feedback" / rec["student"] / assignment
        d.mkdir(parents=True, exist_ok=True)
        (d / f"{assignment}.html").write_text(feedback_html(rec), encoding="utf-8")


def summary_table(report: dict) -> str:
    recs = report["records"]
    width = max([len(r["student"]) for r in recs] + [7])
    lines = [f"{'student'.ljust(width)}  {'points':>11}  {'status':<12} reason / flags"]
    for r in recs:
        got = sum(p["score"] for p in r["parts"])
        most = sum(p["max"] for p in r["parts"])
        why = r.get("reason") or ""
        if r.get("flags"):
            why = (why + "; " if why else "") + f"{len(r['flags'])} flag(s): " + "; ".join(r["flags"][:2])
        lines.append(f"{r['student'].ljust(width)}  {got:>5g} / {most:<4g}  {r['status']:<12} {why[:110]}")
    lines.append(f"\n{len(recs)} submission(s) in {report['seconds']:.1f} s with {report['workers']} worker(s): "
                 f"{report['per_minute']:.1f} per minute")
    return "\n".join(lines)


if __name__ == "__main__":
    if sys.argv[1:2] == ["worker"]:
        sys.exit(worker_main(sys.argv[2:]))
    sys.exit("usage: python -m minicnn.course.batch worker (started by `minicnn course grade`)")
