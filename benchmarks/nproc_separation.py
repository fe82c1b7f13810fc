"""Does a fork bomb in one sandbox take process slots from another graded beside it? (README,
"processes: a user namespace per submission + RLIMIT_NPROC")

    sudo python benchmarks/nproc_separation.py [--limit 50] [--bomb 500] [--careful 20]

A grader that is not root limits a submission's processes with RLIMIT_NPROC.  That limit counts
every process of the user, so two submissions graded side by side as one user share it: a fork
bomb in one leaves the other no slot.  Since Linux 5.14 the count is per (user namespace, user),
so a user namespace per submission gives each its own limit.  This script measures both: two
processes side by side as one non-root user, each with RLIMIT_NPROC = --limit; the "bomb" forks
up to --bomb children that stay alive, the "careful" one (started while the bomb's children hold
their slots) forks --careful.  It prints how many forks each got, with one user namespace per
process ("separate") and without ("shared").

Needs root, only to make that user: RLIMIT_NPROC does not bind root.  The script makes a system
user with no home (useradd), runs the two processes as it (setpriv), and removes it (userdel)
and any process of it at the end.  "separate" needs user namespaces to be allowed for users
(not `user.max_user_namespaces=0`, nor Ubuntu's `kernel.apparmor_restrict_unprivileged_userns=1`);
where they are not, it says so.  The figures depend on the kernel, not on the machine's load.
"""
from __future__ import annotations

import argparse
import ctypes
import json
import os
import resource
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time

CLONE_NEWUSER = 0x10000000


def own_user_namespace() -> None:
    """unshare(CLONE_NEWUSER) and map this uid and gid to themselves (as the grader's rlimits mode)."""
    uid, gid = os.getuid(), os.getgid()
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.unshare(CLONE_NEWUSER) != 0:
        raise OSError(ctypes.get_errno(), "unshare(CLONE_NEWUSER) failed: user namespaces are not allowed here")
    for name, text in (("setgroups", "deny"), ("uid_map", f"{uid} {uid} 1"), ("gid_map", f"{gid} {gid} 1")):
        with open(f"/proc/self/{name}", "w") as fh:
            fh.write(text)


def worker(role: str, separate: bool, limit: int, forks: int, hold: float, delay: float) -> None:
    """One side: (optionally) a user namespace of its own, RLIMIT_NPROC = limit, then `forks`
    children that each sleep `hold` seconds; prints {"role", "forked"} as JSON."""
    if separate:
        own_user_namespace()
    resource.setrlimit(resource.RLIMIT_NPROC, (limit, limit))
    time.sleep(delay)
    children = []
    for _ in range(forks):
        try:
            pid = os.fork()
        except OSError:   # EAGAIN: no process slot left under the limit
            continue
        if pid == 0:
            time.sleep(hold)
            os._exit(0)
        children.append(pid)
    print(json.dumps({"role": role, "forked": len(children)}), flush=True)
    for pid in children:
        os.waitpid(pid, 0)


def run_pair(user: str, separate: bool, script: str, args) -> dict:
    """The bomb and the careful process side by side as `user`; {role: forks it got}."""
    def start(role, forks, delay):
        cmd = ["setpriv", "--reuid", user, "--regid", user, "--init-groups", "--",
               args.python, script, "--worker", role, "--limit", str(args.limit),
               "--forks", str(forks), "--delay", str(delay), "--hold", "4"] + (["--separate"] if separate else [])
        return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd="/")
    bomb = start("bomb", args.bomb, 0.0)
    careful = start("careful", args.careful, 1.0)   # starts forking once the bomb holds its slots
    got = {}
    for role, proc in (("bomb", bomb), ("careful", careful)):
        out, err = proc.communicate(timeout=60)
        if proc.returncode != 0:
            got[role] = f"failed: {err.strip().splitlines()[-1] if err.strip() else proc.returncode}"
        else:
            got[role] = json.loads(out.strip().splitlines()[-1])["forked"]
    return got


def _kill_user(uid: int) -> None:
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if os.stat(f"/proc/{entry}").st_uid == uid:
                    os.kill(int(entry), signal.SIGKILL)
            except (FileNotFoundError, ProcessLookupError):
                pass


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--limit", type=int, default=50, help="RLIMIT_NPROC of each side (default 50)")
    ap.add_argument("--bomb", type=int, default=500, help="forks the bomb tries (default 500)")
    ap.add_argument("--careful", type=int, default=20, help="forks the careful side tries (default 20)")
    ap.add_argument("--python", default="/usr/bin/python3" if os.path.exists("/usr/bin/python3") else sys.executable,
                    help="the interpreter the two sides run (one the new user may run; default: /usr/bin/python3)")
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    ap.add_argument("--forks", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--delay", type=float, default=0.0, help=argparse.SUPPRESS)
    ap.add_argument("--hold", type=float, default=4.0, help=argparse.SUPPRESS)
    ap.add_argument("--separate", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.worker:
        worker(args.worker, args.separate, args.limit, args.forks, args.hold, args.delay)
        return 0
    missing = [t for t in ("useradd", "userdel", "setpriv") if shutil.which(t) is None]
    if os.geteuid() != 0 or missing:
        print("needs root (to make a user) and " + ", ".join(("useradd", "userdel", "setpriv")) +
              (f"; missing: {', '.join(missing)}" if missing else ""), file=sys.stderr)
        return 2
    user = "mcnnb" + secrets.token_hex(4)
    subprocess.run(["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", user],
                   check=True, capture_output=True)
    import pwd
    uid = pwd.getpwnam(user).pw_uid
    scratch = tempfile.mkdtemp(prefix="minicnn-nproc-")   # a copy of this script the new user may read
    os.chmod(scratch, 0o755)
    script = shutil.copy(os.path.abspath(__file__), scratch)
    os.chmod(script, 0o644)
    try:
        print(f"two processes side by side as user {user}, RLIMIT_NPROC {args.limit} each; "
              f"the bomb tries {args.bomb} forks, the careful one {args.careful}")
        for separate in (True, False):
            got = run_pair(user, separate, script, args)
            label = "separate (a user namespace each)" if separate else "shared (one user, no user namespace)"
            print(f"{label:40s} bomb got {got['bomb']} of {args.bomb}; careful got {got['careful']} of {args.careful}")
            _kill_user(uid)
            time.sleep(0.5)
    finally:
        _kill_user(uid)
        time.sleep(0.2)
        subprocess.run(["userdel", user], capture_output=True)
        shutil.rmtree(scratch, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
