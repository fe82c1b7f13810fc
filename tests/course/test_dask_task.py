"""The pieces of the Dask engine that need no cluster: the submission read into memory (only
regular files and folders, what was left out flagged and part of the digest), the task's
unpacking (no path leaves the folder), and the worker child a task keeps for the next
submission of the same batch (replaced when it died, never shared by two set-ups).

The task tests grade submissions without a notebook: the worker child is real, but no
sandbox starts, so each takes the child's start-up only."""
from __future__ import annotations

import os
import signal
import time

import pytest

from minicnn.course.notebook import read_notebook
from minicnn.grader import batch, task
from minicnn.grader.locate import source_notebook

A1 = "a1_convolution"


def _submission(tmp_path):
    folder = tmp_path / "submitted" / "ann" / A1
    (folder / "data" / "empty").mkdir(parents=True)
    (folder / f"{A1}.ipynb").write_text("{}")
    (folder / "data" / "x.txt").write_bytes(b"\x00\x01")
    return folder


def test_a_submission_is_read_with_its_folders_and_without_links_or_fifos(tmp_path):
    folder = _submission(tmp_path)
    (tmp_path / "secret").write_text("another student's work")
    (folder / "link").symlink_to(tmp_path / "secret")
    os.mkfifo(folder / "pipe")   # opening it would block the grader forever
    jobs, flags, failed = batch._stage([("ann", folder)], A1)
    assert failed == []
    files = jobs[0]["files"]
    assert files == {f"{A1}.ipynb": b"{}", "data": None, "data/empty": None, "data/x.txt": b"\x00\x01"}
    assert any("symlink" in f and "link" in f for f in flags["ann"]), flags
    assert any("special file" in f and "pipe" in f for f in flags["ann"]), flags


def test_what_was_left_out_is_part_of_the_digest(tmp_path):
    folder = _submission(tmp_path)
    jobs, flags, _ = batch._stage([("ann", folder)], A1)
    plain = batch._digest(jobs[0]["files"], flags["ann"])
    (folder / "link").symlink_to(folder / f"{A1}.ipynb")
    jobs, flags, _ = batch._stage([("ann", folder)], A1)
    assert batch._digest(jobs[0]["files"], flags["ann"]) != plain, "a record for the folder without the link is stale"
    (folder / "link").unlink()
    (folder / "data" / "empty").rmdir()
    jobs, flags, _ = batch._stage([("ann", folder)], A1)
    assert batch._digest(jobs[0]["files"], flags["ann"]) != plain, "a folder removed changes the digest"


@pytest.mark.parametrize("bad", ["../escape", "/etc/passwd", "a/../../b", ""])
def test_unpack_refuses_a_path_leaving_the_folder(tmp_path, bad):
    with pytest.raises(ValueError, match="not a relative path"):
        task.unpack({bad: b"x"}, tmp_path / "dest")
    assert not (tmp_path / "escape").exists()


def test_unpack_writes_files_and_empty_folders(tmp_path):
    task.unpack({"a/b.txt": b"1", "c": None, "a": None}, tmp_path)
    assert (tmp_path / "a" / "b.txt").read_bytes() == b"1" and (tmp_path / "c").is_dir()


def test_the_worker_child_is_kept_and_replaced_when_it_died(tmp_path):
    setup = {"assignment": A1, "source": read_notebook(source_notebook(A1)), "isolation": "rlimits",
             "limits": {"wall": 60.0}, "cells_timeout": None, "case_timeout": None}
    try:
        first = task.grade_submission(setup, {"student": "ann", "files": {}})
        assert first["record"]["status"] == "missing" and first["isolation"] == "rlimits"
        pid = task.worker_child_pid()
        assert pid is not None
        second = task.grade_submission(setup, {"student": "ben", "files": {}})
        assert second["record"]["student"] == "ben" and second["record"]["status"] == "missing"
        assert task.worker_child_pid() == pid, "the same batch's next submission reuses the child"
        os.kill(pid, signal.SIGKILL)
        end = time.time() + 120   # a loaded machine can take seconds to let the killed child exit
        while time.time() < end and open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[0] != "Z":
            time.sleep(0.05)
        third = task.grade_submission(setup, {"student": "cal", "files": {}})
        assert third["record"]["status"] == "missing", third["record"]["reason"]
        assert task.worker_child_pid() not in (None, pid), "a dead child is replaced before the next submission"
        replaced = task.worker_child_pid()
        task.grade_submission({**setup, "limits": {"wall": 61.0}}, {"student": "dan", "files": {}})
        assert task.worker_child_pid() != replaced, "another set-up (limits) gets a child of its own"
    finally:
        task.close_children()
    assert task.worker_child_pid() is None
