"""Start an untrusted program walled off from its caller, and make sure nothing of it survives.

This module knows nothing of minicnn: the caller names the Python module to run inside
(`start(..., module=...)`) and the directories that module needs to see (`binds`).

Two ways, chosen by `choose()` (or forced with --isolation):

bubblewrap  (`bwrap`, Debian/Ubuntu package `bubblewrap`): the runner sees a read-only
            system (/usr, the Python installation and the directories the caller binds,
            nothing else), its own working copy as home, an empty size-limited /tmp,
            its own process, network, IPC and host-name namespaces (no network at all,
            no view of other processes) and no capabilities.  When the runner ends, the
            kernel kills everything left in its process namespace.
rlimits     resource limits alone, for machines without bubblewrap.  The runner runs
            with the grader's user and sees the grader's files and network: it is
            contained in time, memory, CPU, file size, open files and processes, but
            not in what it can read or write.  State that to the instructor.

Both: a wall-clock limit enforced from outside (SIGKILL: compiled loops ignore
interrupts), RLIMIT_AS / CPU / FSIZE / NOFILE / NPROC / CORE, a new session, and at the
end every process of the run killed, and nothing else: the runner's own tree (stopped
first, so a fork bomb cannot outgrow the killing), its session (rlimits: the runner leads
one; bubblewrap: the pid namespace ends with the runner), the cgroup's members,
and, in a process that made itself the child subreaper (the batch's worker, which runs
nothing else), every orphan the run left behind.  A caller grading in its own process (a
notebook, a test) keeps its other children and their exit statuses.

What limits the number of processes (`process_limit()`, said in the first output line):

- a pids cgroup (cgroups.py: v2 where the hierarchy passes pids down, as root or in a
  delegated subtree, else v1 as root), with a memory limit beside it where available;
- for a grader that is not root, a user namespace per run: RLIMIT_NPROC counts the
  processes of one (user namespace, user) pair (Linux 5.14+), so a fork bomb in one
  submission never takes process slots from another graded beside it.  bubblewrap makes
  that namespace itself (unprivileged bubblewrap always does), and the limit is set
  inside it, after it was made; with rlimits the child makes one (unshare) before exec.
  The namespace's creator keeps the grader's own limit, so the user's total is capped
  by the grader's RLIMIT_NPROC as before;
- otherwise nothing per submission: root ignores RLIMIT_NPROC, and a non-root
  RLIMIT_NPROC without a namespace counts all of the user's processes together.
"""
from __future__ import annotations

import ctypes
import os
import resource
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from . import cgroups, noexec

PR_SET_CHILD_SUBREAPER = 36
PR_GET_CHILD_SUBREAPER = 37
CLONE_NEWUSER = 0x10000000
HOME_SOURCE = "/home/.workdir"      # the working folder, read-only, inside the sandbox (copied into the home)


@dataclass
class Limits:
    wall: float = 600.0              # seconds for the whole run (cells and calls)
    memory_mb: int = 2048            # address space per process (Numba needs about 1 GB)
    cpu_seconds: int = 1200          # CPU time per process
    file_mb: int = 64                # largest file a process may write
    open_files: int = 256
    processes: int = 128             # tasks (processes and threads) in the run
    tmp_mb: int = 256                # the private /tmp (bubblewrap)
    home_mb: int = 256               # the private home, a copy of the working folder (bubblewrap)
    output_kb: int = 256             # stdout/stderr kept for the report (the rest is counted, dropped)

    def __post_init__(self):
        if self.memory_mb < 1024:
            raise ValueError(f"memory_mb={self.memory_mb}: Numba needs at least 1024 MB")


def bwrap_path() -> str | None:
    return shutil.which("bwrap")


_BWRAP_USERNS: dict = {}   # bwrap path -> whether its sandbox gets a user namespace of its own


def _probe_bwrap(path: str) -> str | None:
    """None when bubblewrap can start a sandbox here; else why not.  Notes whether the sandbox
    is in a user namespace of its own (_BWRAP_USERNS)."""
    try:
        proc = subprocess.run([path, "--unshare-all", "--die-with-parent", "--ro-bind", "/", "/", "--proc", "/proc",
                               "readlink", "/proc/self/ns/user"], capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"{type(exc).__name__}: {exc}"
    if proc.returncode != 0:
        return proc.stderr.strip() or f"exit {proc.returncode}"
    _BWRAP_USERNS[path] = proc.stdout.strip() != os.readlink("/proc/self/ns/user")
    return None


def choose(requested: str = "auto", limits: "Limits | None" = None) -> tuple[str, str]:
    """("bwrap" | "rlimits", a sentence for the instructor: the isolation, then "; processes: "
    and what limits the processes of one submission (see process_limit), then "; programs: " and
    whether the submission's process can forbid itself to start programs (noexec.probe))."""
    mode, sentence = _choose(requested)
    return mode, (f"{sentence}; processes: {process_limit(mode, limits or Limits())[1]}; "
                  f"programs: {noexec.probe()[1]}")


def _choose(requested: str) -> tuple[str, str]:
    if requested not in ("auto", "bwrap", "rlimits"):
        raise ValueError(f"isolation={requested!r}: expected 'auto', 'bwrap' or 'rlimits'")
    path = bwrap_path()
    if requested == "rlimits" or (requested == "auto" and path is None):
        why = "asked for" if requested == "rlimits" else "bubblewrap (bwrap) is not installed"
        return "rlimits", (f"isolation: resource limits only ({why}): student code is limited in time, memory, "
                           "CPU, file size and processes, but runs as your user with your files and network in "
                           "reach; install bubblewrap (apt-get install bubblewrap) to wall those off")
    if path is None:
        raise RuntimeError("isolation='bwrap' but bwrap is not installed (apt-get install bubblewrap)")
    problem = _probe_bwrap(path)
    if problem:
        if requested == "bwrap":
            raise RuntimeError(f"bubblewrap cannot start a sandbox here: {problem}")
        return "rlimits", (f"isolation: resource limits only (bubblewrap is installed but cannot start a sandbox "
                           f"here: {problem[:200]}): student code runs as your user with your files and network "
                           "in reach")
    version = subprocess.run([path, "--version"], capture_output=True, text=True).stdout.strip()
    return "bwrap", (f"isolation: {version or 'bubblewrap'} - read-only system, private working copy and /tmp, "
                     "no network, own process namespace, plus resource limits")


# ----------------------------------------------------------------------------- what limits processes

_USERNS_OK: list = []     # [bool] once probed: may this process give a child a user namespace?


def _libc():
    return ctypes.CDLL(None, use_errno=True)


def _enter_user_namespace(unshare) -> None:
    """In the child before exec: a user namespace of its own, our uid and gid mapped to
    themselves (files, permissions and /proc look the same), so that RLIMIT_NPROC counts this
    run's processes apart from the user's others.  Raises OSError when it cannot."""
    uid, gid = os.getuid(), os.getgid()
    if unshare(CLONE_NEWUSER) != 0:
        raise OSError(ctypes.get_errno(), "unshare(CLONE_NEWUSER) failed")
    for name, text in (("setgroups", "deny"), ("uid_map", f"{uid} {uid} 1"), ("gid_map", f"{gid} {gid} 1")):
        with open(f"/proc/self/{name}", "w") as fh:
            fh.write(text)


def user_namespaces() -> bool:
    """Whether a child of this process can have a user namespace of its own (probed once:
    disabled, or restricted as by Ubuntu's AppArmor policy, the probe fails)."""
    if not _USERNS_OK:
        unshare = _libc().unshare

        def enter():
            _enter_user_namespace(unshare)
        try:
            ok = subprocess.run([sys.executable, "-I", "-S", "-c", "pass"], preexec_fn=enter,
                                capture_output=True, timeout=30).returncode == 0
        except (OSError, subprocess.SubprocessError, AttributeError):
            ok = False
        _USERNS_OK.append(ok)
    return _USERNS_OK[0]


def _own_user_namespace(mode: str) -> bool:
    """Whether a run in `mode` gets a user namespace of its own (never for root: root's
    processes are not counted against RLIMIT_NPROC in any namespace)."""
    if os.getuid() == 0:
        return False
    if mode == "bwrap":
        path = bwrap_path()
        if path not in _BWRAP_USERNS:
            _probe_bwrap(path)
        return _BWRAP_USERNS.get(path, False)
    return user_namespaces()


def process_limit(mode: str, limits: "Limits") -> tuple[str, str]:
    """("cgroup" | "userns" | "none", what limits the processes of one run, in words).
    Found out by making (and removing) a cgroup as a run would, and probing user namespaces."""
    n = limits.processes
    group = cgroups.make(f"minicnn-probe-{os.getpid()}", n, limits.memory_mb * 2 << 20)
    userns = _own_user_namespace(mode)
    if group is not None:
        group.remove()
        if "pids" in group.limits:
            return "cgroup", group.describe(n) + (" and a user namespace each" if userns else "")
    if userns:
        return "userns", f"a user namespace per submission + RLIMIT_NPROC (max {n} each)"
    if os.getuid() == 0:
        return "none", ("none per submission: root ignores RLIMIT_NPROC and no pids cgroup could be made "
                        "(cgroup v1 pids, or v2 with pids enabled); a fork bomb is stopped only by the "
                        "wall-clock limit")
    return "none", ("none per submission: no pids cgroup and no user namespaces here, so RLIMIT_NPROC counts "
                    "all of your user's processes together and one submission's fork bomb can make another "
                    "fail; grade as root, in a delegated cgroup v2 (MINICNN_CGROUP2), or enable user namespaces")


# ----------------------------------------------------------------------------- process bookkeeping

def become_subreaper() -> bool:
    """Orphans of our children become our children (so that none escapes the final kill)."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def is_subreaper() -> bool:
    """Whether orphans of this process's descendants become its children (become_subreaper)."""
    flag = ctypes.c_int(0)
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(PR_GET_CHILD_SUBREAPER, ctypes.byref(flag), 0, 0, 0) == 0 and flag.value != 0
    except (OSError, AttributeError):
        return False


def children_of(pid: int) -> set:
    """The processes whose parent is `pid` now."""
    return set(descendants_of(pid, depth=1))


def processes():
    """One pass over /proc: (pid, state, ppid, session) of every process now (those that end
    while we read are left out)."""
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as fh:
                stat = fh.read().decode("ascii", "replace")
        except OSError:
            continue
        fields = stat[stat.rfind(")") + 2:].split()   # the name, in (...), may hold spaces; then state ppid pgrp session
        yield int(entry), fields[0], int(fields[1]), int(fields[3])


def descendants_of(pid: int, keep=(), depth: int | None = None) -> list[int]:
    """Every process below `pid` (children, their children, ...; `depth` levels at most), those
    in `keep` and below them left out; one pass over /proc."""
    children: dict = {}
    for kid, _, ppid, _ in processes():
        children.setdefault(ppid, []).append(kid)
    out, todo = [], [(pid, 0)]
    while todo:
        parent, level = todo.pop()
        if depth is not None and level >= depth:
            continue
        for kid in children.get(parent, ()):
            if kid not in keep:
                out.append(kid)
                todo.append((kid, level + 1))
    return out


def kill_tree(root: int) -> int:
    """SIGKILL `root` and every process below it; returns how many were signalled.

    The tree is stopped first (SIGSTOP), round after round until a round finds no new process:
    a stopped process cannot fork, and while its parent lives a child stays below it, so nothing
    escapes by forking or by its parent dying while we look.  Then all of it is killed at once.
    Nothing is reaped here (the caller waits for its own child, `root`; see Run.end)."""
    seen: set = set()
    for _ in range(2000):
        found = [p for p in [root] + descendants_of(root) if p not in seen]
        if not found:
            break
        for pid in found:
            try:
                os.kill(pid, signal.SIGSTOP)
            except (ProcessLookupError, PermissionError):
                pass
        seen.update(found)
    return cgroups.kill_pids(seen, collect=False)


def kill_session(sid: int) -> int:
    """SIGKILL every process of session `sid` (never our own session), round after round until
    none is left; returns how many were signalled."""
    if sid == os.getsid(0):
        return 0
    killed = 0
    for _ in range(2000):
        members = [pid for pid, state, _, session in processes()
                   if session == sid and state not in ("Z", "X")]   # a zombie does nothing more
        if not members:
            break
        killed += cgroups.kill_pids(members, collect=False)
        time.sleep(0.005)
    return killed


def kill_descendants(keep=()) -> int:
    """SIGKILL every descendant of this process (orphans included, as we are their subreaper),
    the whole tree at once, reap them, repeat until none is left; returns how many were killed.
    Only for a process that runs nothing but grading (the batch's worker): `keep` (pids) and
    everything below them are left alone."""
    killed, quiet_rounds = 0, 0
    me = os.getpid()
    for _ in range(2000):
        kids = descendants_of(me, keep)
        if not kids:
            quiet_rounds += 1
            if quiet_rounds >= 3:
                break
            time.sleep(0.01)
            continue
        quiet_rounds = 0
        killed += cgroups.kill_pids(kids)
    cgroups.reap()
    return killed


# ----------------------------------------------------------------------------- the sandbox command line

def python_roots(binds=()) -> list[Path]:
    """What the runner's interpreter needs to see: the installation, the venv, site-packages,
    plus the caller's `binds` (e.g. one package directory, never the folder around it)."""
    roots = {Path(sys.base_prefix).resolve(), Path(sys.prefix).resolve(), Path(sys.executable).resolve().parent}
    for p in sys.path:
        if p and "site-packages" in p and Path(p).is_dir():
            roots.add(Path(p).resolve())
    roots.update(Path(b).resolve() for b in binds)
    # keep the outermost of nested paths
    out = []
    for r in sorted(roots, key=lambda p: len(p.parts)):
        if not any(r == o or o in r.parents for o in out):
            out.append(r)
    return out


def bwrap_command(path: str, workdir: Path, argv: list[str], env: dict, limits: Limits, binds=()) -> list[str]:
    """The bwrap command line running `argv` with `workdir` as its home; `binds`: see python_roots."""
    cmd = [path, "--unshare-all", "--die-with-parent", "--new-session", "--cap-drop", "ALL",
           "--uid", "65534", "--gid", "65534", "--hostname", "sandbox", "--clearenv"]
    for name in ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32"):
        if os.path.islink(name):
            cmd += ["--symlink", os.readlink(name), name]
        elif os.path.isdir(name):
            cmd += ["--ro-bind", name, name]
    for name in ("/etc/ld.so.cache", "/etc/fonts", "/etc/localtime"):
        if os.path.exists(name):
            cmd += ["--ro-bind", name, name]
    cmd += ["--proc", "/proc", "--dev", "/dev", "--size", str(limits.tmp_mb << 20), "--tmpfs", "/tmp"]
    for root in python_roots(binds):
        cmd += ["--ro-bind", str(root), str(root)]
    # the home is a size-capped tmpfs (like /tmp) holding a copy of `workdir`, made by the first
    # command inside, before anything of the run starts: writing into it cannot fill the disk
    cmd += ["--ro-bind", str(workdir), HOME_SOURCE, "--size", str(limits.home_mb << 20), "--tmpfs", "/home/student",
            "--chdir", "/home/student"]
    for key, value in env.items():
        cmd += ["--setenv", key, str(value)]
    copy = f'cp -R {HOME_SOURCE}/. /home/student/ 2>/dev/null; exec "$@"'
    return cmd + ["--", "/bin/sh", "-c", copy, "sh"] + argv


def runner_env(workdir_inside: str, extra: dict | None = None) -> dict:
    env = {
        "PATH": os.path.dirname(sys.executable) + ":/usr/local/bin:/usr/bin:/bin",
        "HOME": workdir_inside,
        "TMPDIR": "/tmp",
        "LANG": "C.UTF-8",
        "PYTHONDONTWRITEBYTECODE": "1",
        "PYTHONHASHSEED": "0",
        "MPLBACKEND": "Agg",
        "MPLCONFIGDIR": workdir_inside + "/.matplotlib",
        "NUMBA_CACHE_DIR": workdir_inside + "/.numba_cache",
        "NUMBA_BOUNDSCHECK": "1",
        "NUMBA_NUM_THREADS": "2",
        "OMP_NUM_THREADS": "1",
        "OMP_WAIT_POLICY": "PASSIVE",
    }
    env.update(extra or {})
    return env


def _limit_self(limits: Limits, nproc: str):
    """In the child before exec: the resource limits (inherited by everything it starts).
    nproc: "user" (RLIMIT_NPROC over all of the user's tasks), "here" (this user namespace's
    own count: set after entering it) or "" (not here: root, or set inside bubblewrap)."""
    def cap(which, value):
        try:
            resource.setrlimit(which, (value, value))
        except (ValueError, OSError):
            pass
    cap(resource.RLIMIT_AS, limits.memory_mb << 20)
    cap(resource.RLIMIT_CPU, limits.cpu_seconds)
    cap(resource.RLIMIT_FSIZE, limits.file_mb << 20)
    cap(resource.RLIMIT_NOFILE, limits.open_files)
    cap(resource.RLIMIT_CORE, 0)
    if nproc == "user":
        cap(resource.RLIMIT_NPROC, _user_tasks() + limits.processes)
    elif nproc == "here":
        cap(resource.RLIMIT_NPROC, limits.processes)


# Run first inside bubblewrap's user namespace (made by bwrap, so the limit must be set after):
# RLIMIT_NPROC for this namespace's count alone, then exec the real command.
NPROC_THEN_EXEC = ("import os, resource, sys; n = int(sys.argv[1]); "
                   "resource.setrlimit(resource.RLIMIT_NPROC, (n, n)); os.execv(sys.argv[2], sys.argv[2:])")


def _user_tasks() -> int:
    uid, n = os.getuid(), 0
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if os.stat(f"/proc/{entry}").st_uid == uid:
                    n += len(os.listdir(f"/proc/{entry}/task"))
            except OSError:
                pass
    return n


@dataclass
class Run:
    """A started runner: its process, the pipes, and how to end it."""

    proc: subprocess.Popen
    request_fd: int
    reply_fd: int
    output_fd: int
    cgroup: cgroups.Cgroup | None
    mode: str
    output: bytearray = field(default_factory=bytearray)
    output_bytes: int = 0
    output_cap: int = 256 * 1024
    neighbours: frozenset = frozenset()   # this process's children before the run: never ours to kill

    def __post_init__(self):
        import threading

        self._drainer = threading.Thread(target=self._drain, daemon=True)
        self._drainer.start()

    def _drain(self):
        """Keep the first output_cap bytes of what the student's code printed; count the rest.
        (Reading all the time, so that a print flood never blocks the runner on a full pipe.)"""
        while True:
            try:
                data = os.read(self.output_fd, 1 << 20)
            except OSError:
                return
            if not data:
                return
            self.output_bytes += len(data)
            room = self.output_cap - len(self.output)
            if room > 0:
                self.output += data[:room]

    def output_text(self) -> str:
        text = bytes(self.output).decode("utf-8", "replace")
        if self.output_bytes > len(self.output):
            text += f"\n[... {self.output_bytes - len(self.output):,} more bytes of output not kept]"
        return text

    def alive(self) -> bool:
        return self.proc.poll() is None

    def end(self) -> int:
        """Kill the runner and everything it started, and nothing else of this process's
        (its other children live on, and their exit statuses stay theirs to collect); returns
        how many processes were killed."""
        killed = 0
        if self.proc.returncode is None:   # not reaped yet, so its pid is still its own
            killed += kill_tree(self.proc.pid)
        if self.mode != "bwrap":   # rlimits: the runner leads a session of its own; what left its tree
            killed += kill_session(self.proc.pid)   # (orphans) is still in it (bwrap: its pid namespace)
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass
        if self.cgroup is not None:
            killed += self.cgroup.kill_all()
            self.cgroup.remove()
        if is_subreaper():   # orphans of the run were handed to us: every descendant but what was here before
            killed += kill_descendants(keep=self.neighbours)
        self._drainer.join(timeout=5)
        for fd in (self.request_fd, self.reply_fd, self.output_fd):
            try:
                os.close(fd)
            except OSError:
                pass
        return killed


_counter = [0]


def start(mode: str, workdir: Path, limits: Limits, module: str, binds=(), extra_env: dict | None = None) -> Run:
    """Start `python -I -m MODULE REQUEST_FD REPLY_FD` in the chosen sandbox, working in `workdir`.

    `binds`: the directories (read-only) the module needs beyond the Python installation."""
    req_r, req_w = os.pipe()
    rep_r, rep_w = os.pipe()
    out_r, out_w = os.pipe()
    _counter[0] += 1
    cgroup = cgroups.make(f"minicnn-grade-{os.getpid()}-{_counter[0]}", limits.processes, limits.memory_mb * 2 << 20)
    userns = _own_user_namespace(mode)
    # RLIMIT_NPROC: root is not counted; in a user namespace of the run's own it counts this run
    # alone (set inside bwrap's, or after making ours); else it counts all the user's tasks
    nproc = "" if os.getuid() == 0 else "here" if userns else "user"
    unshare = _libc().unshare if userns and mode != "bwrap" else None
    argv = [sys.executable, "-I", "-m", module, str(req_r), str(rep_w)]
    if mode == "bwrap":
        inside = "/home/student"
        env = runner_env(inside, extra_env)
        if nproc == "here":
            argv = [sys.executable, "-I", "-S", "-c", NPROC_THEN_EXEC, str(limits.processes)] + argv
            nproc = ""
        cmd = bwrap_command(bwrap_path(), workdir, argv, env, limits, binds)
        popen_env, cwd = {"PATH": os.environ.get("PATH", "/usr/bin:/bin")}, None
    else:
        inside = str(workdir)
        (workdir / "tmp").mkdir(exist_ok=True)
        env = runner_env(inside, {"TMPDIR": inside + "/tmp", **(extra_env or {})})
        cmd, popen_env, cwd = argv, env, str(workdir)

    def preexec():
        if mode != "bwrap":
            os.setsid()
        if cgroup is not None:
            cgroup.join_self()
        if unshare is not None:
            _enter_user_namespace(unshare)
        _limit_self(limits, nproc)
        signal.signal(signal.SIGPIPE, signal.SIG_DFL)

    # as subreaper, Run.end kills every descendant but these (what else runs here, not ours)
    neighbours = frozenset(children_of(os.getpid())) if is_subreaper() else frozenset()
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=out_w, stderr=out_w, pass_fds=(req_r, rep_w),
                            env=popen_env, cwd=cwd, preexec_fn=preexec, close_fds=True)
    for fd in (req_r, rep_w, out_w):
        os.close(fd)
    return Run(proc, req_w, rep_r, out_r, cgroup, mode, output_cap=limits.output_kb * 1024, neighbours=neighbours)
