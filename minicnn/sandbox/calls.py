"""Run one call of an untrusted function so that nothing it does can break the caller.

A notebook kernel is a poor place to run unknown code: an `@njit` loop that never ends
ignores Jupyter's interrupt (compiled code never returns to the interpreter), an
out-of-bounds write in compiled code can kill the kernel, and any text that reaches
stderr scores an nbgrader test cell 0.  So `call()`:

- compiles a Numba function first, in this process, for the argument types of the call
  (so a typing error is reported as such, and compilation happens once, not per case);
- runs the call in a forked child process (Linux), which writes the result back through
  a pipe; the parent waits at most `timeout` seconds, then kills the child.  A hang or a
  crash ends that one case, never the kernel;
- records, instead of printing, whatever the call writes to stdout or stderr (Python
  level and file-descriptor level) and every warning it raises (Numba's included);
- inside the child, runs the caller's `arm()` (which makes libraries the call must not
  use unusable: the course passes one that disables minicnn's kernels), refuses imports
  of torch/scipy/..., so a function that hands the work to a library is caught even when
  the call is hidden from static inspection, and forbids starting programs (noexec: a new
  Python would be one without the tripwires).

Where fork is not available (Windows, macOS), or for `@njit(parallel=True)` functions
(Numba's thread pool does not survive a fork), the call runs in-process with the same
capturing, but without the time limit.

This module imports nothing of minicnn.
"""
from __future__ import annotations

import contextlib
import io
import os
import pickle
import select
import signal
import sys
import tempfile
import time
import traceback
import warnings
from dataclasses import dataclass, field

from . import noexec

USE_FORK = sys.platform.startswith("linux") and hasattr(os, "fork")

# Packages a called function may not import (the caller may refine this per call).
BLOCKED_IMPORTS = ("torch", "scipy", "tensorflow", "jax", "keras", "cupy", "skimage", "cv2", "sklearn")
OUTPUT_KEPT = 4000    # the last characters of a call's output kept in its Outcome


@dataclass
class Outcome:
    """What one call did.  status: ok, error, timeout, crash, compile_error, forbidden."""

    status: str
    value: object = None
    error: str = ""
    output: str = ""
    warnings: list = field(default_factory=list)
    seconds: float = 0.0
    mutated: list = field(default_factory=list)   # positions of array arguments the call changed in place

    @property
    def ok(self) -> bool:
        return self.status == "ok"


class ForbiddenCall(Exception):
    """Raised inside the sandbox when the student's code reaches a forbidden library."""


HERE = os.path.dirname(os.path.abspath(__file__))


def _short_exception(exc: BaseException, limit: int = 3, hide=()) -> str:
    """'IndexError: index 7 is out of bounds ...' plus the last frames that are the caller's
    student's: frames in this package, or under one of the directories in `hide`, are left out."""
    name = type(exc).__name__
    msg = str(exc).strip()
    first = msg.splitlines()[0] if msg else ""
    text = f"{name}: {first}" if first else name
    hidden = (HERE,) + tuple(hide)
    frames = [f for f in traceback.extract_tb(exc.__traceback__)
              if not any(f.filename.startswith(h + os.sep) for h in hidden)]
    where = [f"line {f.lineno}: {f.line}" for f in frames[-limit:] if f.line]
    if where:
        text += " (at " + "; ".join(where) + ")"
    return text


def _compile_error_text(exc: BaseException) -> str:
    """The useful part of a Numba typing error: its first lines, without the long preamble."""
    lines = [ln.rstrip() for ln in str(exc).splitlines() if ln.strip()]
    keep = [ln for ln in lines if not ln.startswith(("During:", "File \"", "^"))][:6]
    return f"{type(exc).__name__}: " + " / ".join(keep)


def is_numba_dispatcher(fn) -> bool:
    try:
        from numba.core.dispatcher import Dispatcher
    except ImportError:  # pragma: no cover - numba is a hard dependency
        return False
    return isinstance(fn, Dispatcher)


@contextlib.contextmanager
def captured_python_streams():
    """Collect sys.stdout/sys.stderr writes and warnings; yields (buffer, warning list)."""
    buf = io.StringIO()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with contextlib.redirect_stdout(buf), contextlib.redirect_stderr(buf):
            yield buf, caught


def _warning_texts(caught) -> list:
    out = []
    for w in caught:
        text = f"{w.category.__name__}: {str(w.message).strip().splitlines()[0] if str(w.message).strip() else ''}"
        if text not in out:
            out.append(text)
    return out


def _is_parallel(fn) -> bool:
    """Numba's parallel runtime starts threads that a forked child cannot use: run those in-process."""
    return is_numba_dispatcher(fn) and bool(getattr(fn, "targetoptions", {}).get("parallel"))


def precompile(fn, args) -> Outcome | None:
    """Compile a Numba dispatcher for the types of `args`; an Outcome if that failed or warned."""
    if not is_numba_dispatcher(fn) or not hasattr(fn, "compile"):
        return None
    import numba

    t0 = time.perf_counter()
    with captured_python_streams() as (buf, caught):
        try:
            sig = tuple(numba.typeof(a) for a in args)
            fn.compile(sig)
        except Exception as exc:  # noqa: BLE001 - any compile failure is the student's to see
            return Outcome("compile_error", error=_compile_error_text(exc), output=buf.getvalue(),
                           warnings=_warning_texts(caught), seconds=time.perf_counter() - t0)
    w = _warning_texts(caught)
    if w or buf.getvalue():
        return Outcome("ok", output=buf.getvalue(), warnings=w, seconds=time.perf_counter() - t0)
    return None


def _importer_file() -> str:
    """The file of the code that asked for the import in progress: the first frame outside the
    import machinery (importlib, frozen or not, and this module)."""
    frame = sys._getframe(2)
    while frame is not None:
        name = frame.f_code.co_filename
        if not (name.startswith("<frozen importlib") or name == __file__
                or os.path.basename(os.path.dirname(name)) == "importlib"):
            return name
        frame = frame.f_back
    return ""


def _numba_dir() -> str | None:
    mod = sys.modules.get("numba")
    path = getattr(mod, "__file__", None)
    return os.path.dirname(os.path.abspath(path)) + os.sep if path else None


class _BlockImports:
    """A meta-path finder that refuses the blocked packages (used in the child only).

    Numba's own compiler imports SciPy when it first compiles anything in a process (its BLAS
    check, inside a try/except ImportError): a function compiled for the first time inside the
    child (a plain-Python function calling an @njit helper, say) would otherwise be reported as
    importing scipy.  To Numba's code a blocked package is simply missing (ModuleNotFoundError, as
    where it is not installed); the student's code gets ForbiddenCall.  Either way nothing is
    imported."""

    def __init__(self, names):
        self.names = tuple(names)

    def find_spec(self, fullname, path=None, target=None):
        top = fullname.split(".")[0]
        if top in self.names:
            numba_dir = _numba_dir()
            if numba_dir and os.path.abspath(_importer_file()).startswith(numba_dir):
                raise ModuleNotFoundError(f"No module named {fullname!r}", name=fullname)
            raise ForbiddenCall(f"the graded function imports {fullname}, which this exercise does not allow")
        return None


def block_imports(names):
    """Make the packages `names` unimportable in this process (used in the child only)."""
    for name in list(sys.modules):
        if name.split(".")[0] in names:
            sys.modules[name] = None  # a later `import` of it raises ImportError
    sys.meta_path.insert(0, _BlockImports(names))


def arm_child(arm, blocked_imports) -> None:
    """Make this (forked child) process unfit for handing the work elsewhere: the caller's arm()
    (best effort, as the static inspection comes first), the blocked imports refused, and no
    program started from here on (a new program would be a Python without the tripwires)."""
    try:
        arm()
    except Exception:  # noqa: BLE001
        pass
    block_imports(blocked_imports)
    noexec.forbid_exec()


def _run_here(fn, args, arm, blocked_imports, hide):
    """Call fn(*args) with every output captured; returns the payload tuple.

    arm: None, or a function run first that makes what the call must not use unusable;
    with it, the child is armed (arm_child: so only ever in a forked child)."""
    buf = io.StringIO()
    if arm is not None:
        arm_child(arm, blocked_imports)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with contextlib.redirect_stdout(buf), contextlib.redirect_stderr(buf):
            try:
                value = fn(*args)
                status, err = "ok", ""
            except ForbiddenCall as exc:
                value, status, err = None, "forbidden", str(exc)
            except BaseException as exc:  # noqa: BLE001 - SystemExit, KeyboardInterrupt: all reported
                value, status, err = None, "error", _short_exception(exc, hide=hide)
    return status, value, err, buf.getvalue(), _warning_texts(caught)


def _snapshot(args):
    import numpy as np

    return [np.array(a, copy=True) if isinstance(a, np.ndarray) else None for a in args]


def _changed(args, before) -> list:
    import numpy as np

    out = []
    for i, (a, b) in enumerate(zip(args, before)):
        try:
            if b is not None and not (a.shape == b.shape and np.array_equal(a, b, equal_nan=True)):
                out.append(i)
        except Exception:  # noqa: BLE001
            out.append(i)
    return out


def _child(fn, args, wfd, arm, blocked_imports, hide):
    """Body of the forked child: never returns."""
    code = 0
    try:
        try:
            os.setpgid(0, 0)  # its own process group: whatever it starts is killed with it
        except OSError:
            pass
        try:
            import faulthandler
            faulthandler.disable()  # a crash must not print a traceback on the kernel's stderr
        except Exception:  # noqa: BLE001
            pass
        # everything written to fds 1 and 2 (C level, Numba's runtime) goes to a scratch file
        scratch = tempfile.TemporaryFile()
        os.dup2(scratch.fileno(), 1)
        os.dup2(scratch.fileno(), 2)
        sys.stdout = io.StringIO()
        sys.stderr = io.StringIO()
        before = _snapshot(args)
        status, value, err, out, warns = _run_here(fn, args, arm, blocked_imports, hide)
        mutated = _changed(args, before)
        try:
            scratch.seek(0)
            out += scratch.read(OUTPUT_KEPT).decode("utf-8", "replace")
        except Exception:  # noqa: BLE001
            pass
        view = memoryview(reply_payload(status, value, err, out, warns, mutated))
        while view:
            n = os.write(wfd, view)
            view = view[n:]
    except BaseException:  # noqa: BLE001
        code = 3
    finally:
        os._exit(code)


def reply_payload(status, value, err, out, warns, mutated) -> bytes:
    """A forked child's answer to its parent: the outcome pickled, output cut to OUTPUT_KEPT."""
    try:
        return pickle.dumps((status, value, err, out[-OUTPUT_KEPT:], warns, mutated))
    except Exception as exc:  # noqa: BLE001 - e.g. it returned a generator
        return pickle.dumps(("error", None, f"returned a {type(value).__name__}, which cannot be checked "
                             f"({type(exc).__name__})", out[-OUTPUT_KEPT:], warns, mutated))


def crash_text(wstatus) -> str:
    """What a crashed call is reported as (a wait status, or None when it is not known)."""
    sig = os.WTERMSIG(wstatus) if wstatus is not None and os.WIFSIGNALED(wstatus) else None
    if sig:
        name = signal.Signals(sig).name
    elif wstatus is not None and os.WIFEXITED(wstatus):
        name = f"exit status {os.WEXITSTATUS(wstatus)}"
    else:
        name = "it ended early"
    hint = (" - typically an index outside the array in compiled code (run with NUMBA_BOUNDSCHECK=1 "
            "to get an IndexError instead)" if sig in (signal.SIGSEGV, signal.SIGBUS) else "")
    return f"the process running your function crashed ({name}){hint}"


def call(fn, args=(), timeout: float = 10.0, arm=None, blocked_imports=BLOCKED_IMPORTS, fork: bool = True,
         hide=()) -> Outcome:
    """Run fn(*args) safely; see the module docstring.  `args` are not modified in the caller.

    arm: a function the forked child runs before the call (e.g. one that replaces a library's
    entry points by tripwires raising ForbiddenCall); the blocked imports are refused there too.
    fork=False runs in-process (no time limit, nothing armed).  hide: directories whose frames
    are left out of an error's text (the caller's own wrappers)."""
    args = tuple(args)
    pre = precompile(fn, args)
    if pre is not None and pre.status != "ok":
        return pre
    pre_warnings = pre.warnings if pre else []
    pre_output = pre.output if pre else ""
    t0 = time.perf_counter()
    if not (USE_FORK and fork) or _is_parallel(fn):
        before = _snapshot(args)
        status, value, err, out, warns = _run_here(fn, args, None, blocked_imports, hide)
        return Outcome(status, value, err, pre_output + out, pre_warnings + warns, time.perf_counter() - t0,
                       _changed(args, before))

    rfd, wfd = os.pipe()
    sys.stdout.flush() if hasattr(sys.stdout, "flush") else None
    pid = os.fork()
    if pid == 0:  # child
        os.close(rfd)
        _child(fn, args, wfd, arm, blocked_imports, hide)
    os.close(wfd)
    chunks, deadline, timed_out = [], time.monotonic() + timeout, False
    try:
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                timed_out = True
                break
            ready, _, _ = select.select([rfd], [], [], remaining)
            if not ready:
                continue
            data = os.read(rfd, 1 << 20)
            if not data:
                break
            chunks.append(data)
    finally:
        os.close(rfd)
        if timed_out:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        # anything the call started (a fork bomb's children, a stray thread pool) dies with it;
        # done before reaping the child, so that its pid, the group's id, cannot have been reused
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, signal.SIGKILL)
        _, wstatus = os.waitpid(pid, 0)
    seconds = time.perf_counter() - t0
    if timed_out:
        return Outcome("timeout", error=f"did not finish within {timeout:g} s (an endless loop?)",
                       output=pre_output, warnings=pre_warnings, seconds=seconds)
    if os.WIFSIGNALED(wstatus) or not chunks:
        return Outcome("crash", error=crash_text(wstatus), output=pre_output, warnings=pre_warnings,
                       seconds=seconds)
    status, value, err, out, warns, mutated = pickle.loads(b"".join(chunks))
    return Outcome(status, value, err, pre_output + out, pre_warnings + warns, seconds, mutated)
