"""`minicnn course grade ASSIGNMENT`: grade a whole class, in parallel, from outside the students' code.

The course directory follows nbgrader's layout:

    COURSE/submitted/<student>/<assignment>/<assignment>.ipynb    what students handed in
    COURSE/solutions/<assignment>/<assignment>.ipynb              the source (else minicnn's own)
    COURSE/gradebook.db                                           nbgrader's gradebook (created if absent)

and grading writes the gradebook, a CSV, a report, feedback pages and autograded notebooks
(outputs.py).

Worker processes (`python -m minicnn.grader.batch worker`) grade one submission at a time
each (grading.py) and send back a JSON record; only this parent process writes files, and
only after every student process has ended.  Before any student code runs, each
submission folder is copied to a private staging area and the gradebook is read into
memory; if it changed by the end (only possible without bubblewrap), the change is
reported, set aside and undone before the grades are written.
"""
from __future__ import annotations

import json
import os
import selectors
import shutil
import subprocess
import sys
import tempfile
import time
import traceback
from dataclasses import asdict
from pathlib import Path

from ..course.notebook import read_notebook
from ..progress import Progress
from ..sandbox import isolation
from . import grading, outputs, seeds, similarity
from .locate import source_notebook
from .plan import test_specs
from .record import Grade


# ----------------------------------------------------------------------------- the worker process

def worker_main(argv) -> int:
    """Read jobs (JSON lines) on stdin, write one JSON record per job on the real stdout."""
    out = os.fdopen(os.dup(1), "w", encoding="utf-8")
    os.dup2(os.open(os.devnull, os.O_WRONLY), 1)  # nothing else may write into the result stream
    isolation.become_subreaper()
    setup = json.loads(sys.stdin.readline())
    settings = grading.Settings(setup["mode"], isolation.Limits(**setup["limits"]), Path(setup["scratch"]),
                                setup.get("cells_timeout"), setup.get("case_timeout"))
    source_nb = setup["source"]
    for line in sys.stdin:
        job = json.loads(line)
        try:
            rec = grading.grade(job["student"], setup["assignment"], source_nb, Path(job["dir"]), settings,
                                job.get("seeds"))
        except Exception as exc:  # noqa: BLE001 - a grader bug must not take the batch down
            rec = Grade.failed(job["student"], setup["assignment"], f"the grader failed: {type(exc).__name__}: {exc}",
                               output=traceback.format_exc()[-4000:])
        isolation.kill_descendants()
        out.write(json.dumps(rec.to_dict()) + "\n")
        out.flush()
    return 0


class Worker:
    def __init__(self, setup: dict, index: int):
        self.proc = subprocess.Popen([sys.executable, "-m", "minicnn.grader.batch", "worker"],
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


def _show(bar: Progress, done: int, total: int, rec: Grade, running: int, t0: float) -> None:
    minutes = (time.perf_counter() - t0) / 60
    rate = done / minutes if minutes > 0 else 0.0
    bar.show(done, total, f"graded, {running} running, {rate:.1f}/min   last: {rec.student} "
                          f"{rec.total:g}/{rec.most:g} ({rec.status}, {rec.seconds:.1f} s)", final=done == total)


# ----------------------------------------------------------------------------- the batch

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


def student_name(folder_name: str) -> str:
    """The student's name as every output spells it: the folder's name, or, when that name is not
    valid UTF-8 (os gives it back with surrogates), its bytes with the bad ones as \\xNN."""
    return os.fsencode(folder_name).decode("utf-8", "backslashreplace")


def _copy_plain(src: Path, dest: Path, where: str, skipped: list) -> None:
    """Copy the folder `src` to `dest` with regular files and folders only: a symlink is never
    followed and a FIFO, socket or device is never opened (either could block the grader or
    reach another student's work); each one left out is named in `skipped`."""
    dest.mkdir()
    with os.scandir(src) as it:
        entries = sorted(it, key=lambda e: e.name)
    for entry in entries:
        name = f"{where}/{student_name(entry.name)}"
        if entry.is_symlink():
            skipped.append(f"symlink {name} -> {student_name(os.readlink(entry.path))} not followed")
        elif entry.is_dir(follow_symlinks=False):
            _copy_plain(Path(entry.path), dest / entry.name, name, skipped)
        elif entry.is_file(follow_symlinks=False):
            shutil.copyfile(entry.path, dest / entry.name, follow_symlinks=False)
        else:
            skipped.append(f"special file {name} (FIFO, socket or device) not opened")


def _stage(subs, staging: Path, assignment: str):
    """Copy every submission folder (regular files only, see _copy_plain) before any student
    code runs.  Returns (jobs, flags by student, grader-error records for the submissions that
    could not be staged: each for its student alone)."""
    jobs, flags, failed = [], {}, []
    for student, folder in subs:
        name = student_name(student)
        if name != student:
            failed.append(Grade.failed(name, assignment, "the submission folder's name is not valid UTF-8: "
                                       "rename it (every output is named after the student)",
                                       flags=["folder name is not valid UTF-8"]))
            continue
        dest, skipped = staging / student, []
        try:
            _copy_plain(folder, dest, assignment, skipped)
        except OSError as exc:
            shutil.rmtree(dest, ignore_errors=True)
            failed.append(Grade.failed(student, assignment, f"the submission folder could not be copied: "
                                       f"{type(exc).__name__}: {exc}", flags=["submission folder unreadable"]))
            continue
        flags[student] = [f"{s} (the grader never reads it)" for s in skipped]
        jobs.append({"student": student, "dir": str(dest)})
    return jobs, flags, failed


def grade_batch(assignment: str, course: Path, jobs: int | None = None, isolation_mode: str = "auto",
                limits: isolation.Limits | None = None, only=None, progress: bool = True,
                cells_timeout: float | None = None, case_timeout: float | None = None, log=print,
                secret=None, secret_course=None) -> dict:
    """Grade every submission of `assignment` in `course`; write the outputs; return a summary
    (the report: its "records" are the grades in their JSON form).

    secret, secret_course: where the course secret is (seeds.find_secret: an explicit file, else
    $MINICNN_COURSE_SECRET_FILE, else `secret_course` or `course`'s .minicnn/secret); the hidden
    seeds are derived from it here, in this process, and each worker gets its student's alone."""
    course = Path(course).resolve()
    limits = limits or isolation.Limits()
    source_nb = read_notebook(source_notebook(assignment, course))
    subs = submissions(course, assignment, only)
    key = seeds.load(secret_course or course, secret)
    seed_note = seeds.WITH_SECRET if key is not None else seeds.NO_SECRET
    if key is None:
        print(f"WARNING: {seed_note}", file=sys.stderr)
    mode, sentence = isolation.choose(isolation_mode)
    log(sentence)
    gradebook = course / "gradebook.db"
    before = gradebook.read_bytes() if gradebook.exists() else None
    jobs = max(1, min(jobs or os.cpu_count() or 1, len(subs) or 1))
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="minicnn-grade-") as private:
        os.chmod(private, 0o700)
        staging, scratch = Path(private) / "staging", Path(private) / "work"
        staging.mkdir()
        scratch.mkdir()
        queue, staged_flags, unstaged = _stage(subs, staging, assignment)
        specs = test_specs(source_nb)
        for job in queue:
            job["seeds"] = seeds.for_student(key, assignment, job["student"], specs)
        submitted = {job["student"]: outputs.read_submitted(Path(job["dir"]) / f"{assignment}.ipynb")
                     for job in queue}
        log(f"grading {len(queue)} submission(s) of {assignment} with {jobs} worker process(es)")
        setup = {"assignment": assignment, "source": source_nb, "mode": mode, "scratch": str(scratch),
                 "limits": asdict(limits), "cells_timeout": cells_timeout, "case_timeout": case_timeout}
        bar = Progress(sys.stderr, width=30, every=None) if progress else None
        records = _run_workers(setup, queue, jobs, bar) + unstaged
    for rec in records:
        rec.flags = staged_flags.get(rec.student, []) + rec.flags
    seconds = time.perf_counter() - t0
    tampered = _check_gradebook(gradebook, before)  # a batch-wide finding: which student did it is unknown
    records.sort(key=lambda r: r.student)
    similar = similarity.flag_batch(course, assignment, source_nb, submitted, records)  # flags only, no score
    _write_each(records, "gradebook entry", lambda recs: outputs.write_gradebook(course, assignment, source_nb, recs))
    _write_each(records, "autograded notebook",
                lambda recs: outputs.write_autograded(course, assignment, source_nb, recs, submitted))
    _write_each(records, "feedback page", lambda recs: outputs.write_feedback(course, assignment, recs))
    csv_path = outputs.write_csv(course, assignment, records)
    report = {"assignment": assignment, "isolation": mode, "isolation_note": sentence, "hidden_seeds": seed_note,
              "seconds": seconds,
              "workers": jobs, "per_minute": len(records) / (seconds / 60) if seconds > 0 else 0.0,
              "gradebook_tampering": tampered, "similarity": similar, "records": [r.to_dict() for r in records]}
    rep_path = course / "grades" / f"{assignment}-report.json"
    rep_path.write_text(json.dumps(report, indent=1), encoding="utf-8")
    report["csv"], report["report"] = str(csv_path), str(rep_path)
    return report


def _write_each(records, what: str, write) -> None:
    """write(records); if that fails, write(one record) for each, so that one student's odd
    notebook or name costs that student's output alone (named in the record's flags, which the
    CSV and the report, written last, carry)."""
    try:
        write(records)
        return
    except Exception:  # noqa: BLE001 - found out student by student below
        pass
    for rec in records:
        try:
            write([rec])
        except Exception as exc:  # noqa: BLE001
            rec.flags.append(f"the {what} could not be written: {type(exc).__name__}: {str(exc)[:200]}")


def _run_workers(setup, queue, jobs, bar) -> list[Grade]:
    sel = selectors.DefaultSelector()
    workers, records, pending = [], [], list(queue)
    t0 = time.perf_counter()

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
                    rec = Grade.from_dict(json.loads(line))
                except (json.JSONDecodeError, TypeError):
                    continue
                records.append(rec)
            else:  # the worker died (killed from outside, or a grader crash): record it and replace it
                sel.unregister(w.proc.stdout)
                w.proc.wait()
                if w.job is not None:
                    records.append(Grade.failed(w.job["student"], setup["assignment"],
                                                f"the grading process died (exit {w.proc.returncode}) while "
                                                "grading this submission", flags=["grading process died"]))
                isolation.kill_descendants()
                nw = launch(w.index)
                workers[workers.index(w)] = nw
                w = nw
            running = sum(1 for x in workers if x.job is not None) - 1
            if bar is not None:
                _show(bar, len(records), len(queue), records[-1], max(running, 0), t0)
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


if __name__ == "__main__":
    if sys.argv[1:2] == ["worker"]:
        sys.exit(worker_main(sys.argv[2:]))
    sys.exit("usage: python -m minicnn.grader.batch worker (started by `minicnn course grade`)")
