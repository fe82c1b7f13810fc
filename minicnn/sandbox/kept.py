"""Many calls of one untrusted function in one forked child, each call with its own time limit.

calls.call forks a child for every call: safe, but a fork of a process that has loaded IPython,
NumPy and Numba, the child's arming and its exit cost tens of milliseconds, and a part of an
assignment makes dozens of calls.  `KeptChild` forks once for a run of calls of the same
function (the cases of one part, one after another) and sends each call's arguments over a
pipe; the child answers them one by one, with the same capturing, arming, import blocking and
in-place-change check as calls.call.

What stays as it was:

- each call has its own deadline, measured here, in the parent;
- on a timeout, a crash, or a reply that cannot be read, the parent kills the child (and its
  process group: whatever it started) and reports that call; the next call forks a fresh child,
  so one bad call still costs only itself;
- a call whose argument types need a new compilation is compiled here first (as calls.call
  does: a typing error is reported as such, and Numba's compiler never runs where imports are
  blocked), and then gets a fresh child, which inherits the machine code.

What a kept child changes: a call runs after the earlier calls of the same run in the same
process, as it would in a notebook (a global the function changes stays changed); its
arguments are always fresh copies.

The messages between the two processes are length-prefixed pickles.  Both ends run the
student's code (the parent is itself the sandboxed runner), so nothing here is trusted by
the grader, which reads the parent's replies as data.
"""
from __future__ import annotations

import contextlib
import io
import os
import pickle
import signal
import struct
import sys
import tempfile
import time

from . import calls, wire
from .calls import Outcome

_HEADER = struct.Struct("<Q")   # a message: its length (8 bytes), then its pickle
MAX_REPLY = 1 << 30             # a child's reply above this is treated as a crash (never read)


def _send(fd: int, payload: bytes) -> None:
    view = memoryview(_HEADER.pack(len(payload)) + payload)
    while view:
        n = os.write(fd, view)
        view = view[n:]


def _receive(fd: int, deadline: float | None, limit: int) -> bytes | None:
    """One message, or None when the other end closed (or announced more than `limit` bytes);
    TimeoutError after `deadline`."""
    try:
        (size,) = _HEADER.unpack(wire._read_exact(fd, _HEADER.size, deadline))
        return wire._read_exact(fd, size, deadline) if size <= limit else None
    except EOFError:
        return None


def _compiled_count(fn) -> int:
    """How many machine-code versions a Numba dispatcher holds (0 for anything else)."""
    return len(getattr(fn, "overloads", None) or ()) if calls.is_numba_dispatcher(fn) else 0


def _serve(make_target, req_fd: int, rep_fd: int, arm, blocked_imports, hide) -> None:
    """Body of the kept child: answer calls until the parent closes the pipe; never returns."""
    code = 0
    try:
        with contextlib.suppress(OSError):
            os.setpgid(0, 0)  # its own process group: whatever it starts is killed with it
        with contextlib.suppress(Exception):
            import faulthandler
            faulthandler.disable()  # a crash must not print a traceback on the runner's stderr
        # everything written to fds 1 and 2 (C level, Numba's runtime) goes to a scratch file,
        # emptied before each call
        scratch = tempfile.TemporaryFile()
        os.dup2(scratch.fileno(), 1)
        os.dup2(scratch.fileno(), 2)
        sys.stdout, sys.stderr = io.StringIO(), io.StringIO()
        if arm is not None:   # once, for every call this child answers
            calls.arm_child(arm, blocked_imports)
        while True:
            message = _receive(req_fd, None, MAX_REPLY)
            if message is None:
                break
            args = pickle.loads(message)   # the parent's own pickle
            os.ftruncate(scratch.fileno(), 0)
            os.lseek(scratch.fileno(), 0, os.SEEK_SET)
            before = calls._snapshot(args)
            status, value, err, out, warns = calls._run_here(make_target(), args, None, blocked_imports, hide)
            mutated = calls._changed(args, before)
            with contextlib.suppress(Exception):
                os.lseek(scratch.fileno(), 0, os.SEEK_SET)
                out += os.read(scratch.fileno(), calls.OUTPUT_KEPT).decode("utf-8", "replace")
            _send(rep_fd, calls.reply_payload(status, value, err, out, warns, mutated))
    except BaseException:  # noqa: BLE001
        code = 3
    finally:
        os._exit(code)


class KeptChild:
    """One forked child answering calls of `make_target()` (see the module docstring).

    arm, blocked_imports, hide: as for calls.call.  Use it only where calls.call would fork
    (`usable`); `close()` ends the child (also safe when there is none)."""

    def __init__(self, arm=None, blocked_imports=calls.BLOCKED_IMPORTS, hide=()):
        self.arm, self.blocked_imports, self.hide = arm, tuple(blocked_imports), tuple(hide)
        self.pid: int | None = None
        self.of = None   # what the child's make_target calls (see call)
        self.req_fd = self.rep_fd = -1
        self.forks = 0   # how many children it has started (for tests and benchmarks)

    @staticmethod
    def usable(target) -> bool:
        """Would calls.call fork for `target`? (Not on macOS/Windows; not for parallel Numba code.)"""
        return calls.USE_FORK and not calls._is_parallel(target)

    def _fork(self, make_target) -> None:
        req_r, req_w = os.pipe()
        rep_r, rep_w = os.pipe()
        if hasattr(sys.stdout, "flush"):
            sys.stdout.flush()
        pid = os.fork()
        if pid == 0:  # child
            os.close(req_w)
            os.close(rep_r)
            _serve(make_target, req_r, rep_w, self.arm, self.blocked_imports, self.hide)
        os.close(req_r)
        os.close(rep_w)
        self.pid, self.req_fd, self.rep_fd = pid, req_w, rep_r
        self.forks += 1

    def _alive(self) -> bool:
        if self.pid is None:
            return False
        try:
            done, _ = os.waitpid(self.pid, os.WNOHANG)
        except ChildProcessError:
            done = self.pid
        if done:                  # it ended between two calls (something it started went on)
            self._end(reaped=True)
            return False
        return True

    def _end(self, reaped: bool = False) -> int | None:
        """Kill the child and its group; its wait status (None when it was reaped already)."""
        pid, self.pid = self.pid, None
        for fd in (self.req_fd, self.rep_fd):
            with contextlib.suppress(OSError):
                os.close(fd)
        self.req_fd = self.rep_fd = -1
        if pid is None:
            return None
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        # the group goes before the child is reaped, so that its id cannot have been reused
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, signal.SIGKILL)
        if reaped:
            return None
        with contextlib.suppress(ChildProcessError):
            return os.waitpid(pid, 0)[1]
        return None

    def close(self) -> None:
        self._end()

    def call(self, make_target, args=(), timeout: float = 10.0, of=None) -> Outcome:
        """Run make_target()(*args) in the kept child (forked now if there is none); see calls.call.

        The child calls the `make_target` it was forked with: `of` names what that is (the
        student's function), and a call for something else (`is not`) gets a fresh child."""
        args = tuple(args)
        if of is not self.of:
            self._end()
            self.of = of
        target = make_target()
        versions = _compiled_count(target)
        pre = calls.precompile(target, args)
        if pre is not None and pre.status != "ok":
            return pre
        pre_warnings, pre_output = (pre.warnings, pre.output) if pre else ([], "")
        if _compiled_count(target) != versions:
            self._end()   # new machine code: a fresh child inherits it
        if not self._alive():
            self._fork(make_target)
        t0 = time.perf_counter()
        deadline = time.monotonic() + timeout
        timed_out, reply = False, None
        try:
            _send(self.req_fd, pickle.dumps(args))
            reply = _receive(self.rep_fd, deadline, MAX_REPLY)
        except TimeoutError:
            timed_out = True
        except OSError:   # it died before reading the call (a broken pipe)
            reply = None
        seconds = time.perf_counter() - t0
        if timed_out or reply is None:
            wstatus = self._end()
            if timed_out:
                return Outcome("timeout", error=f"did not finish within {timeout:g} s (an endless loop?)",
                               output=pre_output, warnings=pre_warnings, seconds=seconds)
            return Outcome("crash", error=calls.crash_text(wstatus), output=pre_output, warnings=pre_warnings,
                           seconds=seconds)
        try:
            status, value, err, out, warns, mutated = pickle.loads(reply)
        except Exception:  # noqa: BLE001 - something else wrote into the pipe
            self._end()
            return Outcome("crash", error="the process running your function sent back something unreadable",
                           output=pre_output, warnings=pre_warnings, seconds=seconds)
        return Outcome(status, value, err, pre_output + out, pre_warnings + warns, seconds, mutated)
