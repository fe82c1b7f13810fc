"""The student's side of a grading run, seen from the grader: a runner process in the sandbox.

`Remote` starts `python -I -m minicnn.grader.runner` inside minicnn.sandbox.isolation (binding
only the minicnn package, never the course around it), sends it the cells to run, and then asks
it to look up, inspect and call the student's functions.  Replies are read as data (wire
frames).  A runner that dies is restarted (its cells re-run) up to MAX_RESTARTS times.

To minicnn.course.checks.run_part, a Remote is where the student's function lives (the same
three methods as checks.InThisProcess): `fn` is a RemoteFunction naming it.
"""
from __future__ import annotations

import pickle
import subprocess
import time
from pathlib import Path

import numpy as np

from ..sandbox import isolation, wire
from ..sandbox.calls import Outcome
from .locate import PACKAGE_DIR

RUNNER_MODULE = "minicnn.grader.runner"
CALL_MARGIN = 30.0                      # a call's deadline: the part's own time limit plus this (compiling)
MAX_RESTARTS = 3
EVENT_FRAME = 4 << 20       # the most bytes of one message while the cells run (cell events, errors)
REPLY_FRAME = 4 << 20       # the most bytes of a reply that carries no result (lookups, inspections)


def result_bound(args) -> int:
    """The most bytes a call's reply may take: a part returns arrays of the size of its inputs
    (a convolution's output has F/C times its input's channels; a gradient, its input's shape),
    so 64 times the arguments' bytes plus 4 MiB is far above any legitimate result, and far
    below what would make the grader convert hundreds of megabytes before checking a shape."""
    total = 0
    for a in args:
        total += a.nbytes if isinstance(a, np.ndarray) else 64
    return (4 << 20) + 64 * total


def runner_binds() -> list[Path]:
    """What the runner needs to see beyond the Python installation: the minicnn package only."""
    return [PACKAGE_DIR]


# the texts of request() and _start() for a call cut off in time (before 2026-12-03 "no answer within ...
# (the process was killed)" was reported as a crash, for its word "killed")
TIMED_OUT = ("no answer within", "the submission used up", "not run: the submission used up",
             "the notebook's cells did not finish within")


def failed_call(text: str) -> Outcome:
    """The Outcome of a call that got no reply, from request()'s text: "timeout" when it was cut
    off in time (its own limit, or the submission's wall clock: the process is then killed, which
    the text says too), "crash" when the process died or went away by itself."""
    return Outcome("timeout" if text.startswith(TIMED_OUT) else "crash", error=text)


class RemoteFunction:
    """Stands for the student's function `name`, which exists only in the runner."""

    def __init__(self, name: str):
        self.__name__ = name

    def __repr__(self):
        return f"<student function {self.__name__}>"


class Remote:
    """The student's side: a runner started on demand, restarted (cells re-run) after it dies."""

    def __init__(self, job: dict, mode: str, workdir: Path, limits: isolation.Limits, cells_timeout: float,
                 extra_env: dict):
        self.job, self.mode, self.workdir, self.limits = job, mode, workdir, limits
        self.cells_timeout, self.extra_env = cells_timeout, extra_env
        self.run: isolation.Run | None = None
        self.starts, self.killed, self.flags = 0, 0, []
        self.cell_errors: list = []
        self.fatal = ""         # set when the cells themselves cannot run: nothing more is tried
        self.outputs: list = []
        self.deadline = time.monotonic() + limits.wall
        self.lookups: dict = {}
        self.inputs_mutated = False   # a call changed its array arguments in place

    def flag(self, text):
        if text not in self.flags:
            self.flags.append(text)

    # -- lifecycle
    def _start(self) -> bool:
        if self.fatal:
            return False
        if self.starts > MAX_RESTARTS:
            self.fatal = f"not run: the submission's process died {self.starts} times"
            return False
        if time.monotonic() > self.deadline:
            self.fatal = f"not run: the submission used up its {self.limits.wall:g} s"
            return False
        self.starts += 1
        self.run = isolation.start(self.mode, self.workdir, self.limits, RUNNER_MODULE, runner_binds(), self.extra_env)
        wire.write_frame(self.run.request_fd, self.job)
        cells_deadline = min(time.monotonic() + self.cells_timeout, self.deadline)
        current = None
        errors = []
        while True:
            try:
                msg = wire.read_frame(self.run.reply_fd, cells_deadline, EVENT_FRAME)
            except TimeoutError:
                where = f" (in cell {current})" if current else ""
                self.fatal = f"the notebook's cells did not finish within {self.cells_timeout:g} s{where}"
                break
            except (EOFError, OSError):
                self.fatal = self._died_text(current)
                break
            except wire.WireError as exc:
                self.fatal = f"the submission's process sent something unreadable ({exc})"
                self.flag("malformed data from the submission's process while its cells ran")
                break
            if not isinstance(msg, dict):
                self.fatal = "the submission's process sent something unexpected"
                self.flag("malformed data from the submission's process while its cells ran")
                break
            if msg.get("event") == "cell":
                current = msg.get("id")
            elif msg.get("event") == "cell_error":
                errors.append(f"cell {msg.get('id')}: {str(msg.get('error'))[:300]}")
            elif msg.get("event") == "ready":
                if self.starts == 1:
                    self.cell_errors = errors
                return True
            else:
                self.fatal = "the submission's process sent something unexpected"
                self.flag("malformed data from the submission's process while its cells ran")
                break
        if self.starts == 1:
            self.cell_errors = errors
        self.stop()
        return False

    def _exit_code(self):
        """The runner's exit status, or None if it closed its pipe but is still running."""
        try:
            return self.run.proc.wait(timeout=5) if self.run is not None else None
        except subprocess.TimeoutExpired:
            return None

    def _died_text(self, current) -> str:
        code = self._exit_code()
        where = f" in cell {current}" if current else ""
        how = ("closed its connection to the grader" if code is None
               else f"was killed by signal {-code}" if code < 0 else f"exited (status {code})")
        return f"the notebook's process {how}{where} before its cells finished"

    def stop(self):
        if self.run is None:
            return
        try:
            if self.run.alive():
                wire.write_frame(self.run.request_fd, {"op": "bye"})
                self.run.proc.wait(timeout=2)
        except Exception:  # noqa: BLE001 - it is killed below anyway
            pass
        self.killed += self.run.end()
        self.outputs.append(self.run.output_text())
        self.run = None

    # -- requests
    def request(self, req: dict, timeout: float, max_reply: int = REPLY_FRAME):
        """The reply (a dict), or an error text when the runner failed to give one (a reply
        announcing more than `max_reply` bytes is refused unread, and the runner stopped)."""
        if self.run is None and not self._start():
            return self.fatal
        deadline = min(time.monotonic() + timeout, self.deadline)
        try:
            wire.write_frame(self.run.request_fd, req)
            reply = wire.read_frame(self.run.reply_fd, deadline, max_reply)
        except TimeoutError:
            self.stop()
            if time.monotonic() >= self.deadline:
                return f"the submission used up its {self.limits.wall:g} s"
            return f"no answer within {timeout:g} s (the process was killed)"
        except (EOFError, OSError):
            code = self._exit_code()
            self.stop()
            if code is None:
                return "the process running your code closed its connection to the grader (it was killed)"
            return (f"the process running your code was killed by signal {-code}" if code < 0
                    else f"the process running your code exited ({code})")
        except wire.WireError as exc:
            self.flag(f"the submission's process sent a malformed reply ({exc})")
            self.stop()
            return "the reply could not be read"
        if not isinstance(reply, dict):
            self.flag("the submission's process sent a reply that is not a record")
            self.stop()
            return "the reply could not be read"
        return reply

    def missing(self, part, fn) -> str | None:
        """A feedback line when the function cannot be checked at all, else None."""
        text = self._missing(part, fn)
        return f"  {text}" if text else None

    def _missing(self, part, fn) -> str | None:
        name = fn.__name__
        if name not in self.lookups:
            reply = self.request({"op": "lookup", "name": name}, 30.0)
            self.lookups[name] = reply
        reply = self.lookups[name]
        if isinstance(reply, str):
            return f"`{name}` could not be checked: {reply}"
        if not reply.get("found"):
            return str(reply.get("why"))[:300] or f"`{name}` is not defined"
        if part.adapter is None and not reply.get("callable"):
            return f"`{name}` is {str(reply.get('type'))[:60]}, not a function"
        return None

    def forbidden_uses(self, part, fn) -> list:
        reply = self.request({"op": "inspect", "name": fn.__name__, "part": part.key}, 60.0)
        if isinstance(reply, str) or not isinstance(reply.get("reasons"), list):
            return []
        return [str(r)[:300] for r in reply["reasons"]]

    def compiled(self, name: str, kind: str) -> tuple[bool, str]:
        reply = self.request({"op": "compiled", "name": name, "kind": kind}, 60.0)
        if isinstance(reply, str):
            return False, reply
        return bool(reply.get("ok") is True), str(reply.get("why", ""))[:300]

    def call(self, part, fn, args, timeout) -> Outcome:
        reply = self.request({"op": "call", "name": fn.__name__, "part": part.key, "args": pickle.dumps(tuple(args)),
                              "timeout": float(timeout)}, timeout + CALL_MARGIN, result_bound(args))
        if isinstance(reply, str):
            return failed_call(reply)
        status = reply.get("status")
        if status not in ("ok", "error", "timeout", "crash", "compile_error", "forbidden"):
            self.flag("the submission's process sent a reply with an unknown status")
            return Outcome("error", error="the reply could not be read")
        if reply.get("mutated"):
            self.inputs_mutated = True
        value = reply.get("value")
        return Outcome(status, value=value, error=str(reply.get("error", ""))[:2000],
                               output=str(reply.get("output", ""))[-4000:],
                               warnings=[str(w)[:300] for w in reply.get("warnings", [])][:20]
                               if isinstance(reply.get("warnings"), list) else [],
                               seconds=float(reply.get("seconds", 0.0)) if isinstance(reply.get("seconds"),
                                                                                      (int, float)) else 0.0)
