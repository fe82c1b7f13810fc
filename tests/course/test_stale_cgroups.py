"""Stale cgroups (issue 13's follow-up): a worker killed in the middle of a run leaves its empty
`minicnn-grade-<pid>-<n>` groups behind; the next worker process removes them before it makes
its first group.  Tested on a stand-in tree in a temp dir (v2 base and v1 pids/memory
hierarchies), whose rmdir behaves as the kernel's: a group's files go with it, a group with
members is refused."""
from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from minicnn.sandbox import cgroups


def _dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def _group(base: Path, name: str, members: str = "", age: float = 600.0) -> Path:
    d = base / name
    d.mkdir(parents=True)
    (d / "cgroup.procs").write_text(members)
    then = time.time() - age
    os.utime(d, (then, then))
    return d


@pytest.fixture
def kernel_rmdir(tmp_path, monkeypatch):
    real_rmdir = Path.rmdir

    def rmdir(self):
        if tmp_path in self.parents and self.is_dir():
            if (self / "cgroup.procs").read_text().strip():
                raise OSError(16, "Device or resource busy", str(self))
            for f in self.iterdir():
                f.unlink()
        real_rmdir(self)
    monkeypatch.setattr(Path, "rmdir", rmdir)


def test_only_empty_old_groups_of_gone_workers_are_removed(tmp_path, kernel_rmdir):
    dead, alive = _dead_pid(), os.getpid()
    v2, v1 = tmp_path / "v2", tmp_path / "v1"
    stale = [_group(v2, f"minicnn-grade-{dead}-1"), _group(v1 / "pids", f"minicnn-grade-{dead}-1"),
             _group(v1 / "memory", f"minicnn-grade-{dead}-1"), _group(v2, f"minicnn-probe-{dead}")]
    kept = [_group(v2, f"minicnn-grade-{dead}-2", members=f"{alive}\n"),   # still has a member
            _group(v2, f"minicnn-grade-{alive}-3"),                         # its worker still runs
            _group(v2, f"minicnn-grade-{dead}-4", age=1.0),                 # young: maybe being filled
            _group(v2, "minicnn-grade-notapid-5"),                          # not a name we give
            _group(v2, "user.slice")]
    removed = cgroups.remove_stale(bases=[v2], v1_root=v1)
    assert sorted(removed) == sorted(stale)
    assert not any(d.exists() for d in stale)
    assert all(d.exists() for d in kept)
    assert cgroups.remove_stale(bases=[v2], v1_root=v1) == []


def test_a_missing_hierarchy_is_skipped(tmp_path):
    assert cgroups.remove_stale(bases=[tmp_path / "none"], v1_root=tmp_path / "no-v1") == []


def test_make_sweeps_once_per_process_before_its_first_group(monkeypatch):
    calls = []
    monkeypatch.setattr(cgroups, "_swept", [])
    monkeypatch.setattr(cgroups, "remove_stale", lambda *a, **k: calls.append(1) or [])
    monkeypatch.setattr(cgroups, "v2_bases", lambda: [])
    monkeypatch.setattr(cgroups, "make_v1", lambda *a, **k: None)
    assert cgroups.make("minicnn-grade-1-1", 8, 1 << 20) is None
    assert cgroups.make("minicnn-grade-1-2", 8, 1 << 20) is None
    assert calls == [1]
