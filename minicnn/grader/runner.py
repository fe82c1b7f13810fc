"""The student's side of batch grading: run a submission's cells, then answer calls.

    python -I -m minicnn.grader.runner REQUEST_FD REPLY_FD

runs inside the sandbox (minicnn.sandbox.isolation) as an untrusted process: everything in it,
this module included, may be rewritten by the student's code, so it decides nothing.
It receives a job (the cells to run, in order) on REQUEST_FD, runs the cells in an
IPython shell as a notebook kernel would, reports "ready", and then serves requests:

    {"op": "lookup", "name": ...}                        is the name defined, callable?
    {"op": "inspect", "name": ..., "part": ...}          library uses found in its bytecode
    {"op": "compiled", "name": ..., "kind": "njit"|"cuda"}
    {"op": "call", "name": ..., "part": ..., "args": pickled, "timeout": s}
    {"op": "bye"}

Replies go to REPLY_FD as wire frames, never pickles (the arguments of a call come in as
the grader's pickle: that direction only carries what the grader made).  A call runs through
minicnn.course.checks.call_part, as in a notebook: with its own time limit, output captured,
the part's adapter applied (e.g. a layer class turned into forward/backward), in a forked
child that answers all of one part's calls one after another (forked afresh after a call that
crashed or timed out: minicnn.sandbox.kept).  The grader compares what comes back with its
own reference answers, in its own process.
"""
from __future__ import annotations

import os
import pickle
import sys
import time

from ..course import checks, fingerprints, inspection, tripwires
from ..sandbox import noexec, wire


def _reply(fd, value):
    wire.write_frame(fd, value)


def _run_cells(shell, cells, reply_fd):
    """Run each cell as Jupyter would; a failing cell is reported and the next one runs."""
    for index, cell in enumerate(cells):
        started = time.perf_counter()
        _reply(reply_fd, {"event": "cell", "index": index, "id": cell["id"]})
        result = shell.run_cell(cell["source"], store_history=False, silent=False)
        error = result.error_before_exec or result.error_in_exec
        if error is not None:
            text = f"{type(error).__name__}: {str(error).strip().splitlines()[0] if str(error).strip() else ''}"
            _reply(reply_fd, {"event": "cell_error", "index": index, "id": cell["id"], "error": text[:500],
                              "seconds": time.perf_counter() - started})


def _function(shell, name):
    if name not in shell.user_ns:
        return None, f"`{name}` is not defined (did its cell run? is it spelled as in the exercise?)"
    return shell.user_ns[name], None


def _serve(shell, request_fd, reply_fd):
    kept = {}   # (part, name) -> the child answering that part's calls (one at a time)
    try:
        _answer(shell, request_fd, reply_fd, kept)
    finally:
        for child in kept.values():
            child.close()


def _kept_for(kept: dict, part, name: str):
    """The kept child for the calls of `part` on `name`: the previous part's child is ended first."""
    child = kept.get((part.key, name))
    if child is None:
        for other in kept.values():
            other.close()
        kept.clear()
        child = kept[(part.key, name)] = checks.kept_child(part)
    return child


def _answer(shell, request_fd, reply_fd, kept):
    while True:
        try:
            req = wire.read_frame(request_fd)
        except EOFError:
            return
        op = req.get("op")
        if op == "bye":
            return
        fn, missing = _function(shell, req.get("name", ""))
        if op == "lookup":
            _reply(reply_fd, {"found": missing is None, "callable": callable(fn), "type": type(fn).__name__,
                              "why": missing or ""})
        elif op == "inspect":
            part = checks.get_part(req["part"])
            try:
                reasons = checks.IN_THIS_PROCESS.forbidden_uses(part, fn)
            except Exception as exc:  # noqa: BLE001 - reported, decided by the grader
                reasons = [f"could not be inspected ({type(exc).__name__})"]
            _reply(reply_fd, {"reasons": [str(r) for r in reasons]})
        elif op == "compiled":
            try:
                ok, why = inspection.compiled_status(fn, req.get("kind", "njit"))
            except Exception as exc:  # noqa: BLE001
                ok, why = False, f"could not be inspected ({type(exc).__name__})"
            _reply(reply_fd, {"ok": bool(ok), "why": str(why)})
        elif op == "call":
            part = checks.get_part(req["part"])
            args = tuple(pickle.loads(req["args"]))  # the grader's pickle, read on the untrusted side only
            out = checks.call_part(part, fn, args, timeout=float(req["timeout"]),
                                   kept=_kept_for(kept, part, req.get("name", "")))
            reply = {"status": out.status, "error": out.error[:2000], "output": out.output[-4000:],
                     "warnings": [str(w)[:300] for w in out.warnings[:20]], "seconds": out.seconds,
                     "mutated": list(out.mutated), "value": out.value}
            try:
                _reply(reply_fd, reply)
            except Exception as exc:  # noqa: BLE001 - e.g. a value whose conversion raises
                reply["value"] = None
                reply["status"], reply["error"] = "error", f"the result could not be sent back ({type(exc).__name__})"
                _reply(reply_fd, reply)
        else:
            _reply(reply_fd, {"error": f"unknown op {op!r}"})


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    request_fd, reply_fd = int(argv[0]), int(argv[1])
    job = wire.read_frame(request_fd, max_str=None)   # the grader's own frame: a code cell may be long
    os.environ.update({k: str(v) for k, v in job.get("env", {}).items()})
    from IPython.core.interactiveshell import InteractiveShell

    shell = InteractiveShell.instance()
    # minicnn's kernels (or layers) are unusable from here on: a submission cannot hand the work
    # to the reference it is checked against.  (The blocked libraries are refused only inside
    # each call's child: Numba's compiler imports scipy.)
    tripwires.arm(job.get("tripwires", "kernels"))
    # and no program started from here on (a new Python would hold a minicnn without tripwires):
    # the kernel refuses execve to this process and all it forks (seccomp; sandbox.noexec)
    noexec.forbid_exec()
    # nor reach it another way: from here on, minicnn's library code already loaded never runs
    # again (a fresh load of its file, a reload) and a copy of a reference function is refused
    # (an audit hook: the student's code cannot remove it; fingerprints.py)
    fingerprints.guard_reference_code()
    _run_cells(shell, job["cells"], reply_fd)
    _reply(reply_fd, {"event": "ready"})
    _serve(shell, request_fd, reply_fd)
    _leave()


def _leave():
    """End the runner now that the grader said bye (or went away): what was printed is flushed,
    and the interpreter's own shutdown (IPython's history, Numba's and LLVM's teardown: over a
    second of the grader's waiting, under load) is skipped, as nothing of it is used."""
    for stream in (sys.stdout, sys.stderr, sys.__stdout__, sys.__stderr__):
        try:
            stream.flush()
        except Exception:  # noqa: BLE001 - a stream the student's code replaced or closed
            pass
    os._exit(0)


if __name__ == "__main__":
    sys.exit(main())
