"""Grading in a process that does other things (a notebook, a test, a script of the instructor's)
kills what the submission started, and nothing else.

Before this was fixed, the end of every sandboxed run SIGKILLed every descendant of the grading
process and reaped every dead child: a caller's own subprocesses died with the submission
(multiprocessing's resource tracker in the pytest worker, whose death showed as "resource_tracker:
process died unexpectedly" in CI), and a finished child's exit status was taken from its
`Popen` (which then reported 0).  And with rlimits and no cgroup, a process the submission left
behind as an orphan survived the grading.

Each case runs in a fresh interpreter, so that the children checked are that interpreter's own.
"""
from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from minicnn.sandbox import cgroups, isolation

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]

SCRIPT = r"""
import json, os, subprocess, sys, time
from pathlib import Path
sys.path.insert(0, sys.argv[1])
from multiprocessing import resource_tracker
from course_helpers import code_cell, tiny_notebook
from minicnn.grader import grading
from minicnn.sandbox import cgroups, isolation

mode, tmp, no_cgroup = sys.argv[2], Path(sys.argv[3]), sys.argv[4] == "1"
marker = os.environ["NEIGHBOURS_MARKER"]   # not on our own command line: only the submission's processes carry it
if no_cgroup:   # as on a machine where no cgroup can be made (not root, nothing delegated)
    cgroups.make = lambda *args, **kwargs: None
def children():
    me = os.getpid()
    return {int(k) for t in os.listdir(f"/proc/{me}/task")
            for k in open(f"/proc/{me}/task/{t}/children").read().split()}

before = children()                                   # the caller's own children, before grading:
resource_tracker.ensure_running()                     # one multiprocessing started,
(tracker,) = children() - before
sleeper = subprocess.Popen(["sleep", "300"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # one running
finished = subprocess.Popen(["sh", "-c", "exit 7"])   # and one that ended, its status not yet collected
time.sleep(0.3)
cell = ("import subprocess\n"
        f"subprocess.Popen(['sleep', '{marker}1'])\n"                          # a child of the runner
        f"subprocess.Popen(['sh', '-c', 'sleep {marker}2 & exit 0']).wait()\n")  # an orphan
folder = tmp / "student"
folder.mkdir()
(folder / "a1_convolution.ipynb").write_text(json.dumps(tiny_notebook(extra_cells=[code_cell(cell)])))
record = grading.grade("student", "a1_convolution", tiny_notebook(), folder,
                       grading.Settings(mode, isolation.Limits(wall=300), tmp))

def alive(pid):
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except OSError:
        return False

def left_behind():
    found = []
    for entry in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as fh:
                if marker.encode() in fh.read():
                    found.append(int(entry))
        except OSError:
            pass
    return found

print(json.dumps({"score": [record.total, record.most], "output": record.output[-500:],
                  "tracker": alive(tracker), "sleeper": alive(sleeper.pid), "status": finished.wait(),
                  "left": left_behind()}))
sleeper.kill()
"""


def _modes():
    # no cgroup: the runner's tree and session are all there is; then what this machine grades
    # with (bubblewrap and its pid namespace where installed), with a cgroup where one can be made
    return [("rlimits", True), (isolation.choose("auto")[0], False)]


@pytest.mark.parametrize("mode,no_cgroup", _modes(), ids=lambda v: str(v))
def test_grading_in_process_kills_the_submissions_processes_and_spares_the_callers(tmp_path, mode, no_cgroup):
    marker = str(random.randrange(10**7, 10**8))   # names the submission's processes: ours alone
    try:
        out = subprocess.run([sys.executable, "-c", SCRIPT, str(HERE), mode, str(tmp_path), "1" if no_cgroup else "0"],
                             capture_output=True, text=True, timeout=600, cwd=str(ROOT),
                             env={**os.environ, "PYTHONPATH": str(ROOT), "NEIGHBOURS_MARKER": marker})
        assert out.returncode == 0, out.stderr[-3000:]
        got = json.loads(out.stdout.strip().splitlines()[-1])
        assert got["score"] == [4.0, 4.0], got
        assert got["tracker"], "the caller's multiprocessing resource tracker was killed by the grading"
        assert got["sleeper"], "the caller's own running child was killed by the grading"
        assert got["status"] == 7, f"the caller's finished child's exit status was taken: {got['status']}"
        assert got["left"] == [], f"the submission's processes outlived its grading: {got['left']}"
    finally:   # whatever happened above, none of the marked processes stays
        for entry in filter(str.isdigit, os.listdir("/proc")):
            try:
                with open(f"/proc/{entry}/cmdline", "rb") as fh:
                    if marker.encode() in fh.read():
                        os.kill(int(entry), signal.SIGKILL)
            except OSError:
                pass


def test_kill_tree_stops_and_kills_a_forking_tree_and_nothing_beside_it():
    """A tree that keeps forking (each process starts another and then sleeps) is killed whole;
    a sibling started by the same caller lives on and keeps its exit status."""
    code = ("import os, time\n"
            "for _ in range(30):\n"
            "    if os.fork() == 0:\n"
            "        continue\n"        # the child goes on forking; the parent sleeps
            "    time.sleep(300)\n"
            "time.sleep(300)\n")
    tree = subprocess.Popen([sys.executable, "-c", code])
    sibling = subprocess.Popen(["sleep", "300"])
    finished = subprocess.Popen(["sh", "-c", "exit 5"])
    try:
        time.sleep(0.5)
        assert len(isolation.descendants_of(tree.pid)) >= 1
        killed = isolation.kill_tree(tree.pid)
        assert killed >= 2
        assert tree.wait(timeout=10) == -signal.SIGKILL
        deadline = time.monotonic() + 10
        while isolation.descendants_of(tree.pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert isolation.descendants_of(tree.pid) == []
        assert sibling.poll() is None
        assert finished.wait(timeout=10) == 5
    finally:
        for p in (tree, sibling):
            if p.poll() is None:
                p.kill()
                p.wait()


def test_kill_pids_collects_only_the_statuses_of_what_it_killed():
    victim = subprocess.Popen(["sleep", "300"])
    finished = subprocess.Popen(["sh", "-c", "exit 3"])
    time.sleep(0.3)
    assert cgroups.kill_pids([victim.pid]) == 1
    assert finished.wait(timeout=10) == 3       # its status was not collected by kill_pids
    assert victim.wait(timeout=10) in (-signal.SIGKILL, 0)   # 0: kill_pids already collected it


def test_only_a_process_that_asked_is_a_subreaper():
    got = subprocess.run([sys.executable, "-c",
                          "from minicnn.sandbox import isolation as i\n"
                          "a = i.is_subreaper(); i.become_subreaper(); print(a, i.is_subreaper())"],
                         capture_output=True, text=True, timeout=120, cwd=str(ROOT),
                         env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert got.stdout.split() == ["False", "True"], got.stderr[-2000:]
