"""One Dask task: grade one submission on whichever worker runs it.

A Dask worker is multi-threaded, so it must never be the sandbox's parent (the
kill-all-descendants cleanup and `preexec_fn` assume a single-threaded parent).  The task
therefore only unpacks the submission's files into a private folder and runs the existing
single-threaded worker program (`python -m minicnn.grader.batch worker`) as a child, exactly
as isolated as a local batch; the child sends back one JSON record on its stdout.

The task returns {"record": Grade as a dict, "isolation": "bwrap" | "rlimits", "host": ...}:
the client (cluster.py) refuses records graded without bubblewrap unless the instructor asked
for resource limits only.  The task writes nothing outside its own temporary folder; only the
client writes the gradebook and the outputs.

This module must stay importable on every worker (Dask pickles `grade_submission` by name).
"""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
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


def grade_submission(setup: dict, job: dict) -> dict:
    """setup: assignment, source (notebook), isolation (requested), limits, timeouts;
    job: student, files ({relative path: bytes}).  Runs on a Dask worker."""
    mode, _ = isolation.choose(setup["isolation"])  # this worker's own isolation, reported back
    host = socket.gethostname()
    limits = setup["limits"]
    with tempfile.TemporaryDirectory(prefix="minicnn-task-") as private:
        os.chmod(private, 0o700)
        folder, scratch = Path(private) / "submission", Path(private) / "work"
        folder.mkdir()
        scratch.mkdir()
        unpack(job["files"], folder)
        child_setup = {"assignment": setup["assignment"], "source": setup["source"], "mode": mode,
                       "scratch": str(scratch), "limits": limits, "cells_timeout": setup.get("cells_timeout"),
                       "case_timeout": setup.get("case_timeout")}
        stdin = json.dumps(child_setup) + "\n" + json.dumps({"student": job["student"], "dir": str(folder), "seeds": job.get("seeds")}) + "\n"
        # a new session: on a timeout the whole group goes (the child kills its own descendants otherwise)
        proc = subprocess.Popen([sys.executable, "-m", "minicnn.grader.batch", "worker"], stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
        try:
            out, err = proc.communicate(stdin, timeout=float(limits.get("wall", 600.0)) + SLACK)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
            rec = Grade.failed(job["student"], setup["assignment"], "the grading process did not finish in time",
                               flags=["grading process timed out"])
            return {"record": rec.to_dict(), "isolation": mode, "host": host}
    lines = [ln for ln in out.splitlines() if ln.strip()]
    try:
        record = json.loads(lines[-1])
        Grade.from_dict(record)
    except (IndexError, json.JSONDecodeError, TypeError):
        record = Grade.failed(job["student"], setup["assignment"],
                              f"the grading process died (exit {proc.returncode}) while grading this submission",
                              output=err[-4000:], flags=["grading process died"]).to_dict()
    return {"record": record, "isolation": mode, "host": host}
