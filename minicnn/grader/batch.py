"""`minicnn course grade ASSIGNMENT`: grade a whole class, in parallel, from outside the students' code.

The course directory follows nbgrader's layout:

    COURSE/submitted/<student>/<assignment>/<assignment>.ipynb    what students handed in
    COURSE/solutions/<assignment>/<assignment>.ipynb              the source (else minicnn's own)
    COURSE/gradebook.db                                           nbgrader's gradebook (created if absent)

and grading writes the gradebook, a CSV, a report, feedback pages and autograded notebooks
(outputs.py).

The engine is Dask distributed (cluster.py): one task per submission, on an embedded
LocalCluster or an existing cluster; each task runs the single-threaded worker program
(`python -m minicnn.grader.batch worker`, below) as a child, which grades the submission
(grading.py) in the sandbox and sends back a JSON record.  Only this client process writes
files.  Before any student code runs, every submission folder is read into memory (the tasks
get the files, not a path) and the gradebook is read too; if it changed by the end (only
possible without bubblewrap), the change is reported, set aside and undone before the grades
are written.  Each record is journaled as it arrives, so a rerun after a crash grades only the
students without a current record (`force=True` regrades everyone).
"""
from __future__ import annotations

import ctypes
import hashlib
import json
import os
import signal
import sys
import tempfile
import time
import traceback
from dataclasses import asdict
from pathlib import Path

from ..course.notebook import read_notebook
from ..progress import Progress
from ..sandbox import isolation
from . import cluster, grading, late, outputs, pdf, roster, seeds, similarity
from .locate import source_notebook
from .plan import test_specs
from .record import Grade


# ----------------------------------------------------------------------------- the worker process

PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    """SIGKILL this process when the (Dask) thread that started it goes, e.g. its worker is killed;
    the sandbox below dies with us (bubblewrap's --die-with-parent)."""
    parent = os.getppid()
    try:
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    except (OSError, AttributeError):
        return
    if os.getppid() != parent:  # the parent went before the prctl took effect
        os._exit(1)


def worker_main(argv) -> int:
    """Read jobs (JSON lines) on stdin, write one JSON record per job on the real stdout."""
    out = os.fdopen(os.dup(1), "w", encoding="utf-8")
    os.dup2(os.open(os.devnull, os.O_WRONLY), 1)  # nothing else may write into the result stream
    isolation.become_subreaper()
    _die_with_parent()
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
        isolation.kill_descendants()   # a safety net: grade() ends its own runs, unless it failed midway
        out.write(json.dumps(rec.to_dict()) + "\n")
        out.flush()
    return 0


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
        # a symbolic link (the student's folder or its assignment folder) is listed too, and refused
        # with a reason by _stage: never followed, never silently left out
        if (sdir / assignment).is_dir():
            if only is None or sdir.name in only:
                out.append((sdir.name, sdir / assignment))
    return out


def student_name(folder_name: str) -> str:
    """The student's name as every output spells it: the folder's name, or, when that name is not
    valid UTF-8 (os gives it back with surrogates), its bytes with the bad ones as \\xNN."""
    return os.fsencode(folder_name).decode("utf-8", "backslashreplace")


MAX_DEPTH = 32      # folders nested deeper in a submission are not read (named in its flags)


def _read_plain(src: Path, rel: str, where: str, files: dict, skipped: list, depth: int = 0) -> None:
    """Read the folder `src` into `files` ({relative posix path: bytes, or None for a folder}) with
    regular files and folders only: a symlink is never followed and a FIFO, socket or device is
    never opened (either could block the grader or reach another student's work), and nothing
    below MAX_DEPTH folders is read; each one left out is named in `skipped`."""
    if depth >= MAX_DEPTH:
        skipped.append(f"folder {where} nested more than {MAX_DEPTH} deep not read")
        return
    with os.scandir(src) as it:
        entries = sorted(it, key=lambda e: e.name)
    for entry in entries:
        name, key = f"{where}/{student_name(entry.name)}", f"{rel}{entry.name}"
        if entry.is_symlink():
            skipped.append(f"symlink {name} -> {student_name(os.readlink(entry.path))} not followed")
        elif entry.is_dir(follow_symlinks=False):
            files[key] = None
            _read_plain(Path(entry.path), key + "/", name, files, skipped, depth + 1)
        elif entry.is_file(follow_symlinks=False):
            with open(entry.path, "rb", opener=lambda p, fl: os.open(p, fl | os.O_NOFOLLOW | os.O_NONBLOCK)) as fh:
                files[key] = fh.read()
        else:
            skipped.append(f"special file {name} (FIFO, socket or device) not opened")


def _stage(subs, assignment: str):
    """Read every submission folder into memory (regular files only, see _read_plain) before any
    student code runs: the Dask tasks get the files, not a path.  Returns (jobs, flags by student,
    grader-error records for the submissions that could not be read: each for its student alone)."""
    jobs, flags, failed = [], {}, []
    for student, folder in subs:
        name = student_name(student)
        if name != student:
            failed.append(Grade.failed(name, assignment, "the submission folder's name is not valid UTF-8: "
                                       "rename it (every output is named after the student)",
                                       flags=["folder name is not valid UTF-8"]))
            continue
        links = [p for p in (folder.parent, folder) if p.is_symlink()]
        if links:
            failed.append(Grade.failed(student, assignment, f"the submission folder {links[0].name} is a symbolic link "
                                       "(it could lead to another student's work): not followed, nothing graded",
                                       flags=["submission folder is a symlink"]))
            continue
        files, skipped = {}, []
        try:
            _read_plain(folder, "", assignment, files, skipped)
        except OSError as exc:
            failed.append(Grade.failed(student, assignment, f"the submission folder could not be copied: "
                                       f"{type(exc).__name__}: {exc}", flags=["submission folder unreadable"]))
            continue
        flags[student] = [f"{s} (the grader never reads it)" for s in skipped]
        jobs.append({"student": student, "files": files})
    return jobs, flags, failed


def _digest(files: dict, flags: list) -> str:
    """What a record is current for: every file's path and contents, every folder, and what was left out."""
    h = hashlib.sha256(seeds.submission_digest(files).encode("ascii"))
    for flag in flags:
        h.update(b"flag\0" + flag.encode("utf-8", "backslashreplace"))
    return h.hexdigest()


# ----------------------------------------------------------------------------- the journal (resuming)
#
# Every record is appended to grades/<assignment>-journal.jsonl (and flushed to disk) the moment
# it arrives, with the digest of the submission it grades.  A rerun reads the journal first and
# grades only the students without a current record (none yet, a changed submission, or a
# grader error); the gradebook and the other outputs are then written from every record.

def journal_path(course: Path, assignment: str) -> Path:
    return course / "grades" / f"{assignment}-journal.jsonl"


def read_journal(path: Path) -> dict:
    """{student: (digest, Grade)}: the last complete line per student (a torn last line is ignored)."""
    out = {}
    if not path.exists():
        return out
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            entry = json.loads(line)
            out[entry["student"]] = (entry["digest"], Grade.from_dict(entry["record"]))
        except (json.JSONDecodeError, KeyError, TypeError, ValueError, AttributeError):
            continue
    return out


def _current(entry, digest: str) -> bool:
    return entry is not None and entry[0] == digest and entry[1].status != "grader-error"


def grade_batch(assignment: str, course: Path, jobs: int | None = None, isolation_mode: str = "auto",
                limits: isolation.Limits | None = None, only=None, progress: bool = True,
                cells_timeout: float | None = None, case_timeout: float | None = None, log=print,
                scheduler: str | None = None, allow_plain: bool = False, security=None, force: bool = False,
                dashboard: bool = False, secret=None, secret_course=None, pdf_browser: str | None = None) -> dict:
    """Grade every submission of `assignment` in `course` on Dask (cluster.py: an embedded
    LocalCluster of `jobs` processes, or the cluster at `scheduler`); write the outputs; return a
    summary (the report: its "records" are the grades in their JSON form).  Students with a
    current record in the journal are not graded again unless `force`.

    secret, secret_course: where the course secret is (seeds.find_secret: an explicit file, else
    $MINICNN_COURSE_SECRET_FILE, else `secret_course` or `course`'s .minicnn/secret); the hidden
    seeds are derived from it here, in this process, for each student and what they handed in
    (seeds.submission_digest), and each task gets its student's alone.

    pdf_browser: a Chromium executable (pdf.require_browser()) to print each feedback page to PDF
    beside its HTML as well; a page it cannot print is a flag on that record."""
    course = Path(course).resolve()
    limits = limits or isolation.Limits()
    source_nb = read_notebook(source_notebook(assignment, course))
    subs = submissions(course, assignment, only)
    key = seeds.load(secret_course or course, secret)
    seed_note = seeds.WITH_SECRET if key is not None else seeds.NO_SECRET
    if key is None:
        print(f"WARNING: {seed_note}", file=sys.stderr)
    mode, sentence = isolation.choose(isolation_mode, limits)
    log(sentence)
    if scheduler:
        cluster.check_address(scheduler, allow_plain)  # before any work
    gradebook = course / "gradebook.db"
    before = gradebook.read_bytes() if gradebook.exists() else None
    jobs = max(1, min(jobs or os.cpu_count() or 1, len(subs) or 1))
    journal = journal_path(course, assignment)
    journal.parent.mkdir(parents=True, exist_ok=True)
    done = {} if force else read_journal(journal)
    t0 = time.perf_counter()
    # every submission is read (copied into memory) before any student code runs
    staged, staged_flags, unstaged = _stage(subs, assignment)
    files = {job["student"]: job["files"] for job in staged}
    digests = {s: _digest(files[s], staged_flags[s]) for s in files}
    kept = {s: done[s][1] for s in files if _current(done.get(s), digests[s])}
    queue = [job for job in staged if job["student"] not in kept]
    submitted, stamps = {}, {}
    with tempfile.TemporaryDirectory(prefix="minicnn-grade-") as private:
        os.chmod(private, 0o700)
        name = f"{assignment}.ipynb"
        for student, fs in files.items():
            path = Path(private) / student / name
            path.parent.mkdir(parents=True)
            if isinstance(fs.get(name), bytes):
                path.write_bytes(fs[name])
            submitted[student] = outputs.read_submitted(path)
            if isinstance(fs.get(late.TIMESTAMP), bytes):  # read as it was handed in, no link followed
                (path.parent / late.TIMESTAMP).write_bytes(fs[late.TIMESTAMP])
            stamps[student] = late.read_timestamp(path.parent)
    specs = test_specs(source_nb)
    for job in queue:
        job["seeds"] = seeds.for_student(key, assignment, job["student"], specs,
                                         submission=seeds.submission_digest(job["files"]))
    log(f"grading {len(queue)} submission(s) of {assignment}"
        + (f" ({len(kept)} already graded, kept; --force regrades them)" if kept else "")
        + (f" on the Dask cluster at {scheduler}" if scheduler else f" with {jobs} local worker process(es)"))
    setup = {"assignment": assignment, "source": source_nb, "isolation": isolation_mode if scheduler else mode,
             "limits": asdict(limits), "cells_timeout": cells_timeout, "case_timeout": case_timeout}
    records = list(kept.values())
    if queue:
        bar = Progress(sys.stderr, width=30, every=None) if progress else None
        with open(journal, "a", encoding="utf-8") as jfh, \
                cluster.connect(jobs, scheduler, allow_plain, security, dashboard) as client:
            # a local cluster shares this machine: the same isolation as chosen here; a remote
            # worker must have bubblewrap unless resource limits only were asked for
            accept = {mode} if client.minicnn_local else ({"bwrap", "rlimits"} if isolation_mode == "rlimits"
                                                          else {"bwrap"})
            fresh = []

            def on_record(rec, info):
                rec.flags = staged_flags.get(rec.student, []) + rec.flags
                fresh.append(rec)
                jfh.write(json.dumps({"student": rec.student, "digest": digests[rec.student],
                                      "record": rec.to_dict()}) + "\n")
                jfh.flush()
                os.fsync(jfh.fileno())
                if bar is not None:
                    _show(bar, len(fresh), len(queue), rec, len(queue) - len(fresh), t0)
            cluster.run(client, setup, queue, accept, on_record)
        records += fresh
    records += unstaged  # never journaled: a grader error is graded again on the next run
    seconds = time.perf_counter() - t0
    graded_now = len(records) - len(kept) - len(unstaged)
    tampered = _check_gradebook(gradebook, before)  # a batch-wide finding: which student did it is unknown
    records.sort(key=lambda r: r.student)
    similar = similarity.flag_batch(course, assignment, source_nb, submitted, records)  # flags only, no score
    _write_each(records, "gradebook entry", lambda recs: outputs.write_gradebook(course, assignment, source_nb, recs))
    late.record(course, assignment, records, stamps, log)
    roster.flag_unlisted(course, records)
    _write_each(records, "autograded notebook",
                lambda recs: outputs.write_autograded(course, assignment, source_nb, recs, submitted))
    _write_each(records, "feedback page", lambda recs: outputs.write_feedback(course, assignment, recs))
    if pdf_browser:
        pdf.write_pdfs(course, assignment, records, pdf_browser, log=log)
    csv_path = outputs.write_csv(course, assignment, records)
    report = {"assignment": assignment, "isolation": mode, "isolation_note": sentence, "hidden_seeds": seed_note,
              "seconds": seconds,
              "workers": jobs, "scheduler": scheduler or "", "graded_now": graded_now, "kept": sorted(kept),
              "per_minute": graded_now / (seconds / 60) if seconds > 0 and graded_now else 0.0,
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
