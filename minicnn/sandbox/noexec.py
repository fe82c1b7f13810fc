"""Forbid this process, and every process it forks, to start a program (Linux seccomp).

Tripwires live in a process's memory: a graded function that starts a new Python
(`subprocess.run([sys.executable, "-c", ...])`, `os.system`, `multiprocessing` with "spawn",
`os.execv` through ctypes) gets a library without them and could hand its work to the
reference it is checked against (found by the red-team run of 2026-12-02).  Forking stays
allowed (a forked copy keeps the tripwires, and Numba's threads are clones); starting a
program is refused by the kernel itself, so no rewriting of Python objects gets around it:

    forbid_exec()     -> "seccomp: execve and execveat refused" or why it could not be done

After it, `execve` and `execveat` fail with EPERM (Python: PermissionError), as does every
system call made through another architecture's entry (32-bit `int 0x80` on x86-64, the x32
ABI), which could otherwise reach execve under a different number.  It cannot be undone: a
seccomp filter stays for the life of the process and is inherited by its children.  The
process also gets no_new_privs (required for an unprivileged filter): a set-uid program could
not gain privileges anyway, as none can be started.

The filter is a classic BPF program of eight instructions, written out below with the
meaning of each; only x86-64 and AArch64 Linux are known (elsewhere nothing is installed and
the reason is returned).  This module imports nothing of minicnn.
"""
from __future__ import annotations

import ctypes
import platform
import struct
import sys

PR_SET_NO_NEW_PRIVS = 38
PR_SET_SECCOMP = 22
SECCOMP_MODE_FILTER = 2

# classic BPF opcodes (linux/filter.h)
BPF_LD_W_ABS = 0x20          # A <- 32-bit word at offset k of struct seccomp_data
BPF_JEQ_K = 0x15             # if A == k: skip jt instructions, else skip jf
BPF_JGE_K = 0x35             # if A >= k: skip jt, else skip jf
BPF_RET_K = 0x06             # return k
SECCOMP_RET_ALLOW = 0x7FFF0000
SECCOMP_RET_ERRNO = 0x00050000
EPERM = 1

OFFSET_NR, OFFSET_ARCH = 0, 4          # struct seccomp_data { int nr; __u32 arch; ... }

# machine -> (AUDIT_ARCH_*, execve, execveat, lowest number of a foreign ABI or None)
ARCHES = {
    "x86_64": (0xC000003E, 59, 322, 0x40000000),    # x32 syscalls are numbered from bit 30 up
    "aarch64": (0xC00000B7, 221, 281, None),
}


def _insn(code: int, jt: int, jf: int, k: int) -> bytes:
    return struct.pack("HBBI", code, jt, jf, k)   # struct sock_filter, native order


def program(machine: str) -> bytes:
    """The filter for `machine` (as platform.machine() names it), as the kernel reads it."""
    arch, execve, execveat, foreign = ARCHES[machine]
    deny = SECCOMP_RET_ERRNO | EPERM
    foreign = 0xFFFFFFFF if foreign is None else foreign   # (no number reaches it)
    return b"".join([
        # (a jump skips jt instructions when the test holds, jf when it does not)
        _insn(BPF_LD_W_ABS, 0, 0, OFFSET_ARCH),     # 0: A = the calling convention used
        _insn(BPF_JEQ_K, 0, 5, arch),               # 1: not this machine's own -> 7
        _insn(BPF_LD_W_ABS, 0, 0, OFFSET_NR),       # 2: A = the system call's number
        _insn(BPF_JGE_K, 3, 0, foreign),            # 3: x32 numbering -> 7
        _insn(BPF_JEQ_K, 2, 0, execve),             # 4: execve -> 7
        _insn(BPF_JEQ_K, 1, 0, execveat),           # 5: execveat -> 7
        _insn(BPF_RET_K, 0, 0, SECCOMP_RET_ALLOW),  # 6: anything else runs
        _insn(BPF_RET_K, 0, 0, deny),               # 7: fails with EPERM
    ])


class _Fprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]


def forbid_exec() -> str:
    """Install the filter in this process (see the module docstring); says what was done."""
    if not sys.platform.startswith("linux"):
        return f"not installed: seccomp is Linux only (this is {sys.platform})"
    machine = platform.machine()
    if machine not in ARCHES:
        return f"not installed: no filter written for {machine}"
    code = program(machine)
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        prctl = libc.prctl
        prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong]
        prctl.restype = ctypes.c_int
        buf = ctypes.create_string_buffer(code, len(code))
        prog = _Fprog(len(code) // 8, ctypes.cast(buf, ctypes.c_void_p))
        if prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
            return f"not installed: no_new_privs refused (errno {ctypes.get_errno()})"
        if prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, ctypes.addressof(prog), 0, 0) != 0:
            return f"not installed: the kernel refused the filter (errno {ctypes.get_errno()})"
    except (OSError, AttributeError) as exc:
        return f"not installed: {type(exc).__name__}: {exc}"
    return "seccomp: execve and execveat refused"


def installed() -> bool:
    """Whether this process runs under a seccomp filter (any filter: /proc/self/status)."""
    try:
        with open("/proc/self/status", encoding="ascii", errors="replace") as fh:
            for line in fh:
                if line.startswith("Seccomp:"):
                    return line.split()[1] == "2"
    except OSError:
        pass
    return False


_PROBE = ("import os, sys\n"
          "from minicnn.sandbox import noexec\n"
          "said = noexec.forbid_exec()\n"
          "if not said.startswith('seccomp'):\n"
          "    print(said); sys.exit(3)\n"
          "try:\n"
          "    os.execv(sys.executable, [sys.executable, '-c', 'import sys; sys.exit(4)'])\n"
          "except PermissionError:\n"
          "    sys.exit(0)\n")
_PROBED: dict = {}


def probe() -> tuple[bool, str]:
    """(True, how) when a process here can forbid itself to start programs, checked in a new
    process that installs the filter and then tries to start one; else (False, why not).
    Run once per grading process (the answer is kept)."""
    if "result" not in _PROBED:
        import subprocess

        try:
            proc = subprocess.run([sys.executable, "-c", _PROBE], capture_output=True, text=True, timeout=60)
        except (OSError, subprocess.TimeoutExpired) as exc:
            _PROBED["result"] = (False, f"could not be checked ({type(exc).__name__})")
        else:
            if proc.returncode == 0:
                _PROBED["result"] = (True, "graded code cannot start a program (seccomp refuses execve)")
            elif proc.returncode == 4:
                _PROBED["result"] = (False, "graded code CAN start programs: the filter did not hold")
            else:
                why = (proc.stdout.strip() or proc.stderr.strip().splitlines()[-1:] or [f"exit {proc.returncode}"])
                _PROBED["result"] = (False, f"graded code can start programs ({''.join(why)[:200]})")
    return _PROBED["result"]
