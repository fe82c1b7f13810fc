"""One Dask task: grade one submission on whichever worker runs it.

A Dask worker is multi-threaded, so it must never be the sandbox's parent (the
kill-all-descendants cleanup and `preexec_fn` assume a single-threaded parent).  The task
therefore only unpacks the submission's files into a private folder and hands that folder to
the existing single-threaded worker program (`python -m minicnn.grader.batch worker`), a
child of this thread, exactly as isolated as a local batch; the child sends back one JSON
record on its stdout.  The child is kept for the thread's next submission of the same batch
(same assignment, isolation and limits), as the old pool kept its workers: the grader's
imports and reference kernels load once per worker, not once per submission (about a
third of an assignment-1 submission's time).  It is trusted code only: every submission
still runs in a sandbox of its own, started for it and killed (with everything it left)
before its record is sent.  A child that died, hung or answered nonsense is replaced.

The task returns {"record": Grade as a dict, "isolation": "bwrap" | "rlimits", "host": ...}:
the client (cluster.py) refuses records graded without bubblewrap unless the instructor asked
for resource limits only.  The task writes nothing outside its own temporary folder; only the
client writes the gradebook and the outputs.

This module must stay importable on every worker (Dask pickles `grade_submission` by name).
"""
from __future__ import annotations

import atexit
import hashlib
import json
import os
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path, PurePosixPath

from ..sandbox import isolation
from .record import Grade

SLACK = 300.0  # seconds the grader itself may take beyond the student's wall limit (reference, comparison)


def unpack(files: dict, dest: Path) -> None:
    """Write {relative posix path: bytes, or None for a folder} under dest, refusing paths that
    would leave it (the client sends only what it read, but a task checks what it is given)."""
    for rel, data in files.items():
        parts = PurePosixPath(rel).parts
        if not parts or PurePosixPath(rel).is_absolute() or ".." in parts:
            raise ValueError(f"submission file {rel!r}: not a relative path inside the submission")
        path = dest.joinpath(*parts)
        if data is None:
            path.mkdir(parents=True, exist_ok=True)
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)


class _Child:
    """The worker program, kept for the next submissions of the same batch on this thread (the
    grader's own imports and reference kernels then load once, as in the old pool, not once per
    submission).  Every submission still gets a fresh sandbox: the child starts one per job
    and kills whatever it left before answering."""

    def __init__(self, key: str, child_setup: dict):
        self.key = key
        self.scratch = tempfile.mkdtemp(prefix="minicnn-task-work-")
        os.chmod(self.scratch, 0o700)
        self.err = tempfile.TemporaryFile()
        # a new session: on a timeout the whole group goes (the child kills its own descendants otherwise)
        self.proc = subprocess.Popen([sys.executable, "-m", "minicnn.grader.batch", "worker"], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=self.err, start_new_session=True)
        self.buf = b""
        self.send({**child_setup, "scratch": self.scratch})

    def send(self, obj) -> None:
        self.proc.stdin.write(json.dumps(obj).encode() + b"\n")
        self.proc.stdin.flush()

    def answer(self, timeout: float) -> str | None:
        """The child's next line, or None when it ended first; TimeoutError after `timeout` s."""
        fd, deadline = self.proc.stdout.fileno(), time.monotonic() + timeout
        while b"\n" not in self.buf:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([fd], [], [], left)[0]:
                raise TimeoutError
            chunk = os.read(fd, 1 << 16)
            if not chunk:
                return None
            self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        return line.decode("utf-8", "replace")

    def stderr_tail(self) -> str:
        self.err.seek(0, os.SEEK_END)
        self.err.seek(max(0, self.err.tell() - 4000))
        return self.err.read().decode("utf-8", "replace")

    def close(self) -> None:
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.proc.wait()
        for f in (self.proc.stdin, self.proc.stdout, self.err):
            try:
                f.close()
            except OSError:
                pass
        shutil.rmtree(self.scratch, ignore_errors=True)


_mine = threading.local()   # this thread's _Child: a Dask worker's threads never share one


def close_children() -> None:
    """Stop every worker child of this process (at exit; a Dask worker killed outright takes
    its children along through PR_SET_PDEATHSIG)."""
    for child in list(_ALL):
        child.close()
    _ALL.clear()
    _mine.child = None


def worker_child_pid() -> int | None:
    """The process id of this thread's kept worker child, if any."""
    child = getattr(_mine, "child", None)
    return child.proc.pid if child is not None else None


_ALL: list = []
atexit.register(close_children)


def _drop(child: _Child) -> None:
    child.close()
    if child in _ALL:
        _ALL.remove(child)
    if getattr(_mine, "child", None) is child:
        _mine.child = None


def _child_for(child_setup: dict) -> _Child:
    key = hashlib.sha256(json.dumps(child_setup, sort_keys=True).encode()).hexdigest()
    child = getattr(_mine, "child", None)
    if child is not None and (child.key != key or child.proc.poll() is not None):
        _drop(child)
        child = None
    if child is None:
        child = _mine.child = _Child(key, child_setup)
        _ALL.append(child)
    return child


_CHOSEN: dict = {}      # requested isolation -> (when, what this worker can do)
CHOICE_SECONDS = 300.0  # how long a probe of bubblewrap stands (it starts a sandbox: ~0.1 s a submission otherwise)


def _isolation(requested: str) -> str:
    when, mode = _CHOSEN.get(requested, (-CHOICE_SECONDS, ""))
    if time.monotonic() - when >= CHOICE_SECONDS:
        mode, _ = isolation.choose(requested)
        _CHOSEN[requested] = (time.monotonic(), mode)
    return mode


def grade_submission(setup: dict, job: dict) -> dict:
    """setup: assignment, source (notebook), isolation (requested), limits, timeouts;
    job: student, files ({relative path: bytes, or None for a folder}).  Runs on a Dask worker."""
    mode = _isolation(setup["isolation"])  # this worker's own isolation, reported back
    host = socket.gethostname()
    limits = setup["limits"]
    child_setup = {"assignment": setup["assignment"], "source": setup["source"], "mode": mode, "limits": limits,
                   "cells_timeout": setup.get("cells_timeout"), "case_timeout": setup.get("case_timeout")}
    with tempfile.TemporaryDirectory(prefix="minicnn-task-") as private:
        os.chmod(private, 0o700)
        folder = Path(private) / "submission"
        folder.mkdir()
        unpack(job["files"], folder)
        child = _child_for(child_setup)
        failure = None
        try:
            child.send({"student": job["student"], "dir": str(folder), "seeds": job.get("seeds")})
            line = child.answer(float(limits.get("wall", 600.0)) + SLACK)
        except TimeoutError:
            line, failure = None, ("the grading process did not finish in time", "grading process timed out")
        except OSError:  # it died between two submissions (a broken pipe): nothing of this one ran
            line = None
        record = None
        if line is not None:
            try:
                record = json.loads(line)
                Grade.from_dict(record)
            except (json.JSONDecodeError, TypeError, AttributeError, KeyError):
                record = None
        if record is None:   # the child is replaced: a fresh one for the next submission
            tail = child.stderr_tail()
            _drop(child)
            if failure is None:
                failure = (f"the grading process died (exit {child.proc.returncode}) while grading this submission",
                           "grading process died")
            record = Grade.failed(job["student"], setup["assignment"], failure[0], output=tail,
                                  flags=[failure[1]]).to_dict()
    return {"record": record, "isolation": mode, "host": host}
