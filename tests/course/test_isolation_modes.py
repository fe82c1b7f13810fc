"""What limits a submission's processes, and that nothing of it survives, as root and not.

- the cgroup code (minicnn.sandbox.cgroups) on a fake cgroup2 tree in a temp dir, whose
  "kernel" is a stand-in for the one function that writes control files, and on the real
  cgroup2 hierarchy where this machine has one that root may use (membership, cgroup.kill);
- `minicnn course grade` run by a user that is not root (made here, removed at the end) on a
  fork bomb beside a correct submission, two at a time, in both isolation modes: the correct
  one gets full marks, the first output line says what limits processes, and no process of
  that user is left when the command has exited.

The non-root test needs root (to make the user) and, when the Python installation or this
checkout sits under a directory others may not enter (pyenv in /root), a private mount
namespace (`unshare --mount`) in which such a directory is covered by one that holds only
what is needed: nothing outside this test's own processes sees it.
"""
from __future__ import annotations

import csv
import os
import secrets
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from minicnn.sandbox import cgroups, isolation

SUBMISSIONS = Path(__file__).parent / "submissions"
ASSIGNMENT = "a1_convolution"
IN_CI = os.environ.get("CI") == "true"


# ----------------------------------------------------------------------------- a fake cgroup2 tree

V2_FILES = ("cgroup.procs", "cgroup.kill", "cgroup.controllers", "cgroup.subtree_control", "cgroup.events",
            "pids.max", "pids.current", "memory.max", "memory.current")


class FakeKernel:
    """Stands in for the kernel behind cgroups.write_control on a tree in a temp dir: a child
    directory gets the files of the controllers its parent passes down, subtree_control takes
    '+ctrl' writes, cgroup.procs takes a pid (0: the writer), cgroup.kill kills the members."""

    def __init__(self, root: Path, offered=("cpu", "memory", "pids")):
        self.root, self.writes = root, []
        (root / "cgroup.controllers").write_text(" ".join(offered) + "\n")
        (root / "cgroup.subtree_control").write_text("\n")
        (root / "cgroup.procs").write_text("")

    def mkdir_hook(self, d: Path):
        enabled = (d.parent / "cgroup.subtree_control").read_text().split()
        (d / "cgroup.controllers").write_text(" ".join(enabled) + "\n")
        for name in ("cgroup.procs", "cgroup.kill", "cgroup.subtree_control", "cgroup.events"):
            (d / name).write_text("")
        if "pids" in enabled:
            (d / "pids.max").write_text("max\n")
        if "memory" in enabled:
            (d / "memory.max").write_text("max\n")

    def write(self, directory, name, value):
        d, value = Path(directory), str(value)
        self.writes.append((d.name, name, value))
        path = d / name
        if not path.exists():
            raise PermissionError(13, "no such control file", str(path))
        if name == "cgroup.subtree_control":
            ctrl = value.lstrip("+")
            if ctrl not in (d / "cgroup.controllers").read_text().split():
                raise OSError(22, "controller not offered")
            path.write_text(" ".join(sorted(set(path.read_text().split()) | {ctrl})))
        elif name == "cgroup.procs":
            pid = int(value) or os.getpid()
            path.write_text(path.read_text() + f"{pid}\n")
        elif name == "cgroup.kill":
            for pid in (d / "cgroup.procs").read_text().split():
                os.kill(int(pid), signal.SIGKILL)
                os.waitpid(int(pid), 0)
            (d / "cgroup.procs").write_text("")
        else:
            path.write_text(value + "\n")


@pytest.fixture
def fake_v2(tmp_path, monkeypatch):
    kernel = FakeKernel(tmp_path)
    real_mkdir, real_rmdir = Path.mkdir, Path.rmdir

    def mkdir(self, *a, **k):
        real_mkdir(self, *a, **k)
        if tmp_path in self.parents:
            kernel.mkdir_hook(self)

    def rmdir(self):  # a real cgroup's files go with it (when it has no members)
        if tmp_path in self.parents and self.is_dir():
            if (self / "cgroup.procs").read_text().strip():
                raise OSError(16, "busy", str(self))
            for f in self.iterdir():
                f.unlink()
        real_rmdir(self)
    monkeypatch.setattr(Path, "mkdir", mkdir)
    monkeypatch.setattr(Path, "rmdir", rmdir)
    monkeypatch.setattr(cgroups, "write_control", kernel.write)
    return kernel


def test_v2_child_gets_pids_and_memory_limits_through_write_control(fake_v2, tmp_path):
    group = cgroups.make_v2("run-1", 128, 4 << 30, tmp_path)
    assert group is not None and group.version == 2 and sorted(group.limits) == ["memory", "pids"]
    d = tmp_path / "run-1"
    assert (d / "pids.max").read_text().strip() == "128"
    assert (d / "memory.max").read_text().strip() == str(4 << 30)
    # the controllers were enabled in the parent before the child was made, one at a time
    assert fake_v2.writes[:2] == [(tmp_path.name, "cgroup.subtree_control", "+pids"),
                                  (tmp_path.name, "cgroup.subtree_control", "+memory")]
    assert group.describe(128) == "pids cgroup v2 (max 128 per submission)"


def test_v2_kill_goes_through_cgroup_kill_and_the_group_is_removed(fake_v2, tmp_path):
    group = cgroups.make_v2("run-2", 16, 1 << 30, tmp_path)
    sleeper = subprocess.Popen(["sleep", "60"])
    cgroups.write_control(tmp_path / "run-2", "cgroup.procs", sleeper.pid)
    assert group.members() == [sleeper.pid]
    assert group.kill_all() >= 1
    assert ("run-2", "cgroup.kill", "1") in fake_v2.writes
    assert sleeper.poll() is not None or not Path(f"/proc/{sleeper.pid}").exists()
    assert group.members() == []
    group.remove()
    assert not (tmp_path / "run-2").exists()


def test_v2_without_pids_is_a_fallback_for_membership_only(fake_v2, tmp_path):
    (tmp_path / "cgroup.controllers").write_text("hugetlb\n")  # as /sys/fs/cgroup/unified offers here
    group = cgroups.make_v2("run-3", 128, 1 << 30, tmp_path)
    assert group is not None and group.limits == []
    assert "without a pids limit" in group.describe(128)


def test_make_prefers_v2_with_pids_then_v1(fake_v2, tmp_path, monkeypatch):
    monkeypatch.setattr(cgroups, "v2_bases", lambda: [tmp_path])
    monkeypatch.setattr(cgroups, "make_v1", lambda *a, **k: pytest.fail("v1 tried though v2 limits pids"))
    group = cgroups.make("run-4", 64, 1 << 30)
    assert group.version == 2 and "pids" in group.limits

    (tmp_path / "cgroup.controllers").write_text("hugetlb\n")
    (tmp_path / "cgroup.subtree_control").write_text("\n")
    v1 = cgroups.Cgroup(1, [], ["pids"])
    monkeypatch.setattr(cgroups, "make_v1", lambda *a, **k: v1)
    assert cgroups.make("run-5", 64, 1 << 30) is v1
    assert not (tmp_path / "run-5").exists()  # the v2 group without pids was made, then removed


def test_v2_mount_and_own_cgroup_are_read_from_proc_files(tmp_path):
    mounts = tmp_path / "mounts"
    mounts.write_text("proc /proc proc rw 0 0\ncgroup2 /sys/fs/cgroup/unified cgroup2 rw,relatime 0 0\n"
                      "cgroup /sys/fs/cgroup/pids cgroup rw,pids 0 0\n")
    assert cgroups.v2_mounts(str(mounts)) == [Path("/sys/fs/cgroup/unified")]
    own = tmp_path / "cgroup"
    own.write_text("8:pids:/\n0::/user.slice/user-1000.slice/session-3.scope\n")
    assert cgroups.own_v2_cgroup(Path("/m"), str(own)) == Path("/m/user.slice/user-1000.slice/session-3.scope")


def test_delegated_directory_is_named_by_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv(cgroups.DELEGATED, str(tmp_path))
    assert cgroups.v2_bases() == [tmp_path]


# ----------------------------------------------------------------------------- the real cgroup2 hierarchy

def _real_v2_root() -> Path | None:
    for mount in cgroups.v2_mounts():
        if os.geteuid() == 0 and os.access(mount / "cgroup.procs", os.W_OK):
            return mount
    return None


def test_real_cgroup2_members_listed_and_killed():
    """Members are listed, all killed, and each of them that is our own child keeps its exit
    status for its Popen: -SIGKILL, not the 0 that Popen reports when something else collected
    the child first (kill_all once did, now and then: eight sleepers make that race likely)."""
    root = _real_v2_root()
    if root is None:
        pytest.skip("no cgroup2 hierarchy this process may make a cgroup in (needs root and a cgroup2 mount)")
    name = f"minicnn-test-{os.getpid()}-{secrets.token_hex(3)}"
    group = cgroups.make_v2(name, 128, 2 << 30, root)
    assert group is not None, f"could not make {root / name}"
    try:
        sleepers = [subprocess.Popen(["sleep", "300"], preexec_fn=group.join_self) for _ in range(8)]
        pids = sorted(s.pid for s in sleepers)
        deadline = time.monotonic() + 10
        while group.members() != pids and time.monotonic() < deadline:
            time.sleep(0.05)
        assert group.members() == pids
        assert group.kill_all() >= len(pids)
        for sleeper in sleepers:
            sleeper.wait(timeout=10)
        assert [s.returncode for s in sleepers] == [-signal.SIGKILL] * len(pids)
        assert group.members() == [] and not any(Path(f"/proc/{pid}/cmdline").exists() for pid in pids)
        if "pids" in group.limits:  # only where the hierarchy passes pids down (not /sys/fs/cgroup/unified here)
            assert (root / name / "pids.max").read_text().strip() == "128"
    finally:
        group.kill_all()
        group.remove()
    assert not (root / name).exists()


# ----------------------------------------------------------------------------- grading as a user that is not root

def _uid_processes(uid: int) -> list:
    """(pid, "name state ppid command line") of every process whose real uid is `uid` (a user
    made by this test: all of them are ours)."""
    out = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            status = dict(ln.split(":", 1) for ln in Path(f"/proc/{entry}/status").read_text().splitlines()
                          if ":" in ln)
            cmd = Path(f"/proc/{entry}/cmdline").read_bytes().replace(b"\0", b" ")[:100]
        except (OSError, ValueError):
            continue
        if status.get("Uid", "").split()[:1] == [str(uid)]:
            what = " ".join(status.get(k, "?").strip() for k in ("Name", "State", "PPid"))
            out.append((int(entry), f"{what} {cmd.decode('utf-8', 'replace')}"))
    return out


def _left_after(uid: int, grace: float = 5.0) -> list:
    """The processes of `uid` still there after `grace` seconds (a process that is exiting, or
    a zombie that init is about to reap, is given that long to go)."""
    deadline = time.monotonic() + grace
    while True:
        left = _uid_processes(uid)
        if not left or time.monotonic() > deadline:
            return left
        time.sleep(0.1)


@pytest.fixture(scope="module")
def student_user():
    """A system user with no home, made for this module and removed (with any process of it) at the end."""
    missing = [t for t in ("useradd", "userdel", "setpriv", "unshare", "mount") if shutil.which(t) is None]
    if os.geteuid() != 0 or missing:
        why = "needs root to make a user" if os.geteuid() != 0 else f"needs {', '.join(missing)}"
        if IN_CI:
            pytest.fail(f"the non-root grading test must run in CI: {why}")
        pytest.skip(why)
    name = "mcnn" + secrets.token_hex(5)
    subprocess.run(["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", name],
                   check=True, capture_output=True)
    import pwd
    entry = pwd.getpwnam(name)
    try:
        yield name, entry.pw_uid, entry.pw_gid
    finally:
        for pid, _ in _uid_processes(entry.pw_uid):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        time.sleep(0.2)
        subprocess.run(["userdel", name], capture_output=True)


def _shut(path: Path) -> bool:
    """Whether others (a user not owner nor in the group) cannot pass through the directory."""
    return not (path.stat().st_mode & stat.S_IXOTH)


def _cover_script(needed, scratch: Path) -> str:
    """Shell lines (root, in a private mount namespace) that make each path in `needed`
    reachable for others: every directory on the way that others may not pass is covered
    (bind-mounted over) by a fresh 0755 directory holding bind mounts of just the entries the
    needed paths go through (made in `scratch`).  Deepest first, so an outer cover carries the
    inner ones."""
    covers: dict = {}
    for p in needed:
        p = Path(p).resolve()
        for anc in p.parents:
            if anc != Path("/") and _shut(anc):
                covers.setdefault(anc, set()).add(p.relative_to(anc).parts[0])
    lines = ["set -e", "mount --make-rprivate /"]
    for i, (d, entries) in enumerate(sorted(covers.items(), key=lambda kv: -len(kv[0].parts))):
        lines.append(f'C="{scratch}/cover-{i}"; mkdir "$C"; chmod 755 "$C"')
        for e in sorted(entries):
            src = d / e
            kind = "mkdir" if src.is_dir() else "touch"
            lines.append(f'{kind} "$C/{e}"; mount --rbind "{src}" "$C/{e}"')
        lines.append(f'mount --rbind "$C" "{d}"')
    return "\n".join(lines)


def _grade_as(user, course: Path, mode: str, home: Path) -> subprocess.CompletedProcess:
    name, uid, gid = user
    import minicnn
    needed = [Path(sys.executable).parent, Path(sys.prefix), Path(sys.base_prefix),
              Path(minicnn.__file__).resolve().parent, Path(os.path.realpath(sys.executable))]
    script = _cover_script(needed, home.parent) + (
        f'\nexec setpriv --reuid {uid} --regid {gid} --init-groups -- env -i PATH=/usr/bin:/bin HOME={home} '
        f'LANG=C.UTF-8 "$@"')
    cmd = ["unshare", "--mount", "--propagation", "private", "--", "/bin/sh", "-c", script, "sh",
           sys.executable, "-m", "minicnn.cli", "course", "grade", ASSIGNMENT, "--course", str(course),
           "--jobs", "2", "--isolation", mode, "--no-progress", "--case-timeout", "5", "--timeout", "240"]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=900)


def _userns_expected() -> bool:
    """Whether this kernel lets a user make user namespaces (then one per submission is used)."""
    try:
        if int(Path("/proc/sys/user/max_user_namespaces").read_text()) == 0:
            return False
        return Path("/proc/sys/kernel/apparmor_restrict_unprivileged_userns").read_text().strip() != "1"
    except FileNotFoundError:
        return True
    except (OSError, ValueError):
        return False


@pytest.mark.parametrize("mode", ["rlimits", "bwrap"])
def test_non_root_fork_bomb_beside_a_correct_submission(student_user, mode):
    if mode == "bwrap" and not isolation.bwrap_path():
        if os.environ.get("MINICNN_REQUIRE_BWRAP"):
            pytest.fail("MINICNN_REQUIRE_BWRAP is set but bubblewrap (bwrap) is not installed")
        pytest.skip("bubblewrap is not installed (apt-get install bubblewrap)")
    name, uid, gid = student_user
    work = Path(tempfile.mkdtemp(prefix="minicnn-nonroot-"))  # not pytest's tmp_path: that one is 0700
    try:
        course, home = work / "course", work / "home"
        for student, nb in (("bomber", "fork_bomb.ipynb"), ("careful", "correct.ipynb")):
            folder = course / "submitted" / student / ASSIGNMENT
            folder.mkdir(parents=True)
            shutil.copyfile(SUBMISSIONS / nb, folder / f"{ASSIGNMENT}.ipynb")
        home.mkdir()
        os.chmod(work, 0o755)
        for p in [work, *work.rglob("*")]:
            os.chown(p, uid, gid)
        proc = _grade_as(student_user, course, mode, home)
        left = _left_after(uid)
        assert proc.returncode == 0, (proc.stdout[-2000:], proc.stderr[-3000:])
        first = proc.stdout.splitlines()[0]
        assert first.startswith("isolation: ") and "; processes: " in first, first
        if _userns_expected():
            assert "a user namespace per submission + RLIMIT_NPROC (max 128 each)" in first, first
        else:
            assert "processes: none per submission" in first, first
        with open(course / "grades" / f"{ASSIGNMENT}.csv", newline="") as fh:
            rows = {r["student"]: r for r in csv.DictReader(fh)}
        assert rows["careful"]["total"] == "15", (rows["careful"], proc.stdout[-2000:])
        assert rows["bomber"]["test_param_count"] == "0", rows["bomber"]
        assert left == [], f"{len(left)} process(es) of {name} survived the batch: {left[:5]}"
    finally:
        for pid, _ in _uid_processes(uid):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        shutil.rmtree(work, ignore_errors=True)
