"""sandbox.noexec: a process that forbade itself to start programs cannot, by any route, and
still forks, starts threads and runs Numba's parallel loops; the filter itself, read by a small
classic-BPF interpreter written here, refuses exactly execve, execveat and foreign calling
conventions on both machines it knows."""
from __future__ import annotations

import platform
import struct
import subprocess
import sys
import textwrap

import pytest

from minicnn.sandbox import noexec

LINUX_X86 = sys.platform.startswith("linux") and platform.machine() == "x86_64"


def run_filter(program: bytes, nr: int, arch: int) -> int:
    """What the kernel would return for a system call `nr` made through `arch` (classic BPF,
    only the instructions a seccomp filter of this kind may use)."""
    insns = [struct.unpack("HBBI", program[i:i + 8]) for i in range(0, len(program), 8)]
    data = struct.pack("iI", nr, arch) + bytes(56)     # struct seccomp_data: nr, arch, ip, args
    acc, pc = 0, 0
    for _ in range(len(insns) + 1):                      # jumps only go forward
        code, jt, jf, k = insns[pc]
        if code == 0x20:                                 # ld [k]
            acc = struct.unpack_from("I", data, k)[0]
            pc += 1
        elif code == 0x15:                               # jeq #k
            pc += 1 + (jt if acc == k else jf)
        elif code == 0x35:                               # jge #k
            pc += 1 + (jt if acc >= k else jf)
        elif code == 0x06:                               # ret #k
            return k
        else:
            raise AssertionError(f"unexpected opcode {code:#x} at {pc}")
    raise AssertionError("the program ran off its end")


ALLOW, DENY = 0x7FFF0000, 0x00050001


@pytest.mark.parametrize("machine,arch,execve,execveat,others", [
    ("x86_64", 0xC000003E, 59, 322, [0, 1, 2, 56, 57, 58, 60, 61, 62, 231, 321, 323, 435]),   # clone, fork, vfork, ...
    ("aarch64", 0xC00000B7, 221, 281, [63, 64, 93, 220, 222, 260, 280, 282, 435]),
])
def test_the_filter_refuses_exactly_the_exec_calls(machine, arch, execve, execveat, others):
    program = noexec.program(machine)
    assert len(program) % 8 == 0
    assert run_filter(program, execve, arch) == DENY
    assert run_filter(program, execveat, arch) == DENY
    for nr in others:
        assert run_filter(program, nr, arch) == ALLOW, nr
    assert run_filter(program, 11, 0x40000003) == DENY          # i386's execve through int 0x80
    assert run_filter(program, 3, 0x40000003) == DENY           # and anything else that way
    if machine == "x86_64":
        assert run_filter(program, 0x40000000 + 520, arch) == DENY   # x32's execve
        assert run_filter(program, 0x40000000 + 1, arch) == DENY


CHILD = textwrap.dedent(r'''
    import ctypes, os, subprocess, sys, threading
    import numpy as np
    from numba import njit, prange
    from minicnn.sandbox import noexec

    before = noexec.installed()
    said = noexec.forbid_exec()
    results = {"said": said}

    def refused(action):
        try:
            action()
        except PermissionError:
            return True
        return False

    results["subprocess"] = refused(lambda: subprocess.run([sys.executable, "-c", "pass"]))
    results["posix_spawn"] = refused(lambda: os.posix_spawn(sys.executable, [sys.executable, "-c", "pass"], {}))
    results["system"] = os.system("exit 0") != 0
    libc = ctypes.CDLL(None, use_errno=True)
    argv = (ctypes.c_char_p * 2)(b"/bin/true", None)
    results["raw_syscall"] = libc.syscall(59, b"/bin/true", argv, None) == -1 and ctypes.get_errno() == 1
    pid = os.fork()                     # a forked child keeps the filter
    if pid == 0:
        try:
            os.execv(sys.executable, [sys.executable, "-c", "import sys; sys.exit(9)"])
        except PermissionError:
            os._exit(0)
        os._exit(1)
    results["forked_child_refused"] = os.waitpid(pid, 0)[1] == 0
    box = []
    thread = threading.Thread(target=lambda: box.append(1))
    thread.start(); thread.join()
    results["thread"] = box == [1]

    @njit(parallel=True)
    def total(x):
        s = 0.0
        for i in prange(x.size):
            s += x[i]
        return s
    results["parallel_numba"] = total(np.ones(10000)) == 10000.0
    results["installed"] = noexec.installed()
    print(results)
''')


@pytest.mark.skipif(not LINUX_X86, reason="the filter is exercised on x86-64 Linux (CI's machines)")
def test_after_forbid_exec_no_route_starts_a_program_and_the_rest_works():
    proc = subprocess.run([sys.executable, "-c", CHILD], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = eval(proc.stdout.strip().splitlines()[-1])   # our own child's dict of booleans
    assert results.pop("said") == "seccomp: execve and execveat refused"
    assert all(results.values()), results


@pytest.mark.skipif(not LINUX_X86, reason="the filter is exercised on x86-64 Linux (CI's machines)")
def test_the_grader_process_probes_and_is_left_alone():
    ok, text = noexec.probe()
    assert ok and "cannot start a program" in text
    assert subprocess.run([sys.executable, "-c", "pass"]).returncode == 0    # the probe ran in a child
