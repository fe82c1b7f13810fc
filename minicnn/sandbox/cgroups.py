"""A cgroup for one sandboxed run: a process (and memory) limit, and a list of its members to kill.

Two kinds of hierarchy exist, and a machine may have either or both:

v1  one hierarchy per controller, /sys/fs/cgroup/pids, /sys/fs/cgroup/memory, ...  Only root
    may make a cgroup there.  Limits: `pids.max`, `memory.limit_in_bytes`.
v2  one hierarchy for all controllers (mounted at /sys/fs/cgroup on current distributions,
    /sys/fs/cgroup/unified beside v1 on some).  A controller works in a child only when the
    parent lists it in `cgroup.subtree_control`.  Root may use the hierarchy's root; a user may
    use a subtree delegated to them (systemd: `systemd-run --user -p Delegate=yes ...`), named
    with $MINICNN_CGROUP2 or found as the grader's own cgroup when that one is writable.
    Limits: `pids.max`, `memory.max`; `cgroup.kill` kills every member at once (Linux 5.14+).

`make()` picks the first that works, in this order: v2 with a pids limit, v1 with a pids
limit, v2 without one (members listed and killed, nothing limited).  Every control file is
written by `write_control`, the one function that touches them (tested on a fake tree).

Imports nothing of minicnn.
"""
from __future__ import annotations

import os
import signal
import time
from pathlib import Path

V1_ROOT = Path("/sys/fs/cgroup")
DELEGATED = "MINICNN_CGROUP2"   # the environment variable naming a delegated v2 directory


def write_control(directory: Path, name: str, value) -> None:
    """Write `value` into the cgroup file `directory/name` (raises OSError as the kernel says)."""
    with open(Path(directory) / name, "w") as fh:
        fh.write(str(value))


def _read(path: Path) -> str:
    try:
        return path.read_text()
    except OSError:
        return ""


def kill_pids(pids, collect: bool = True) -> int:
    """SIGKILL each of `pids` (those already gone are skipped), then, if `collect`, collect those of
    them that are this process's dead children (never any other child's exit status); returns
    how many signals were sent."""
    killed = 0
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
            killed += 1
        except (ProcessLookupError, PermissionError):
            pass
    if collect:
        for pid in pids:
            try:
                os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:   # not our child (or already collected)
                pass
    return killed


def reap() -> None:
    """Collect every dead child of this process (never waits for a live one).  Only for a
    process that runs nothing but grading: it takes every child's exit status."""
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


class Cgroup:
    """One cgroup (v1: one directory per controller; v2: one directory).

    version: 1 or 2; limits: the controllers whose limit was set ("pids", "memory")."""

    def __init__(self, version: int, dirs: list, limits: list):
        self.version, self.dirs, self.limits = version, list(dirs), list(limits)

    def describe(self, processes: int) -> str:
        """The first output line's words for what limits processes (see isolation.choose)."""
        if "pids" in self.limits:
            return f"pids cgroup v{self.version} (max {processes} per submission)"
        return f"cgroup v{self.version} without a pids limit (members listed and killed)"

    def join_self(self) -> None:
        """In the child, before exec: move into the cgroup (errors ignored: nothing to report to)."""
        for d in self.dirs:
            try:
                write_control(d, "cgroup.procs", 0)
            except OSError:
                pass

    def members(self) -> list:
        out = set()
        for d in self.dirs:
            out.update(int(p) for p in _read(d / "cgroup.procs").split())
        return sorted(out)

    def kill_all(self) -> int:
        """SIGKILL every member until none is left; returns how many signals were sent
        (v2: `cgroup.kill` first, which the kernel applies to every member at once).

        v2 collects no exit status: a dead process is no member ("A zombie process does not appear
        in cgroup.procs", the kernel's cgroup-v2 documentation), so there is nothing to wait for,
        and a member that is this process's own child keeps its status for its owner (a Popen's
        wait() would otherwise find it gone and report 0, as if it had exited cleanly: the race
        tests/course/test_isolation_modes.py::test_real_cgroup2_members_listed_and_killed caught,
        where cgroup.kill's SIGKILL landed between the listing and the collecting)."""
        killed = 0
        for d in self.dirs:
            if self.version == 2 and (d / "cgroup.kill").exists():
                members = len(self.members())
                try:
                    write_control(d, "cgroup.kill", 1)
                    killed += members
                except OSError:
                    pass
        for _ in range(2000):
            pids = self.members()
            if not pids:
                break
            killed += kill_pids(pids, collect=self.version != 2)
            time.sleep(0.005)
        return killed

    def remove(self) -> None:
        """rmdir each directory (retried while the kernel still counts dying members)."""
        for d in self.dirs:
            for _ in range(200):
                try:
                    d.rmdir()
                    break
                except FileNotFoundError:
                    break
                except OSError:
                    time.sleep(0.01)


# ----------------------------------------------------------------------------- v1

def make_v1(name: str, processes: int, memory_bytes: int, root: Path = V1_ROOT) -> Cgroup | None:
    """A pids (and memory) cgroup v1 named `name`, or None when no pids limit can be set."""
    dirs, limits = [], []
    for ctrl, key, value in (("pids", "pids.max", processes),
                             ("memory", "memory.limit_in_bytes", memory_bytes)):
        base = root / ctrl
        if not (base / "cgroup.procs").exists() or (base / "cgroup.subtree_control").exists():
            continue  # not a v1 hierarchy of that controller
        d = base / name
        try:
            d.mkdir(exist_ok=True)
            write_control(d, key, value)
        except OSError:
            _rmdir(d)
            continue
        dirs.append(d)
        limits.append(ctrl)
    if "pids" not in limits:
        for d in dirs:
            _rmdir(d)
        return None
    return Cgroup(1, dirs, limits)


def _rmdir(d: Path) -> None:
    try:
        d.rmdir()
    except OSError:
        pass


# ----------------------------------------------------------------------------- v2

def v2_mounts(mounts: str = "/proc/self/mounts") -> list:
    """Where cgroup2 hierarchies are mounted (usually one)."""
    out = []
    for line in _read(Path(mounts)).splitlines():
        fields = line.split()
        if len(fields) >= 3 and fields[2] == "cgroup2":
            out.append(Path(fields[1].replace("\\040", " ")))
    return out


def own_v2_cgroup(mount: Path, cgroup_file: str = "/proc/self/cgroup") -> Path | None:
    """This process's v2 cgroup directory under `mount` (the "0::/path" line)."""
    for line in _read(Path(cgroup_file)).splitlines():
        if line.startswith("0::"):
            return mount / line[3:].strip().lstrip("/")
    return None


def v2_bases() -> list:
    """Candidate v2 directories to make run cgroups in: $MINICNN_CGROUP2 if set, else (root)
    each hierarchy's root, or (a user) their own cgroup when they may write it."""
    named = os.environ.get(DELEGATED)
    if named:
        return [Path(named)]
    out = []
    for mount in v2_mounts():
        if os.geteuid() == 0:
            out.append(mount)
        else:
            own = own_v2_cgroup(mount)
            if own is not None and os.access(own / "cgroup.procs", os.W_OK):
                out.append(own)
    return out


def make_v2(name: str, processes: int, memory_bytes: int, base: Path) -> Cgroup | None:
    """A child cgroup `base/name` with pids.max and memory.max where the base passes those
    controllers down (enabled here if the base offers them); None when it cannot be made."""
    offered = _read(base / "cgroup.controllers").split()
    enabled = _read(base / "cgroup.subtree_control").split()
    for ctrl in ("pids", "memory"):
        if ctrl in offered and ctrl not in enabled:
            try:
                write_control(base, "cgroup.subtree_control", f"+{ctrl}")
            except OSError:
                pass  # e.g. the base has processes of its own ("no internal processes")
    d = base / name
    try:
        d.mkdir(exist_ok=True)
    except OSError:
        return None
    limits = []
    for ctrl, key, value in (("pids", "pids.max", processes), ("memory", "memory.max", memory_bytes)):
        if (d / key).exists():
            try:
                write_control(d, key, value)
                limits.append(ctrl)
            except OSError:
                pass
    return Cgroup(2, [d], limits)


# ----------------------------------------------------------------------------- stale groups

STALE_PREFIXES = ("minicnn-grade-", "minicnn-probe-")   # names "<prefix><maker's pid>-...", made by make() callers
STALE_AGE = 60.0   # seconds: a younger group may be one that another worker is filling right now
_swept: list = []  # this process has swept once (make() sweeps before its first group)


def _maker_alive(name: str, prefix: str) -> bool:
    """Is the process that made the group `name` (its pid follows the prefix) still running?"""
    try:
        pid = int(name[len(prefix):].split("-")[0])
    except ValueError:
        return True   # not a name we gave: leave it alone
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    return True


def remove_stale(bases=None, v1_root: Path = V1_ROOT, now: float | None = None) -> list:
    """Remove the empty groups a killed worker left behind: those named with STALE_PREFIXES whose
    maker is gone, that have no member and are older than STALE_AGE, in the v2 `bases` (default:
    v2_bases()) and the v1 pids and memory hierarchies.  Returns the directories removed."""
    now = time.time() if now is None else now
    candidates = list(v2_bases() if bases is None else bases) + [v1_root / "pids", v1_root / "memory"]
    removed = []
    for base in candidates:
        try:
            entries = list(Path(base).iterdir())
        except OSError:
            continue
        for d in entries:
            prefix = next((p for p in STALE_PREFIXES if d.name.startswith(p)), None)
            if prefix is None or not d.is_dir() or _maker_alive(d.name, prefix):
                continue
            try:
                if now - d.stat().st_mtime < STALE_AGE or _read(d / "cgroup.procs").split():
                    continue
                d.rmdir()   # the kernel refuses a group that still has members or children
            except OSError:
                continue
            removed.append(d)
    return removed


def make(name: str, processes: int, memory_bytes: int) -> Cgroup | None:
    """The best cgroup this process may make (see the module docstring), or None.
    Before this process's first group, the stale groups of killed workers are removed."""
    if not _swept:
        _swept.append(True)
        remove_stale()
    fallback = None
    for base in v2_bases():
        group = make_v2(name, processes, memory_bytes, base)
        if group is None:
            continue
        if "pids" in group.limits:
            return group
        if fallback is None:
            fallback = group
        else:
            group.remove()
    v1 = make_v1(name, processes, memory_bytes)
    if v1 is not None:
        if fallback is not None:
            fallback.remove()
        return v1
    return fallback
