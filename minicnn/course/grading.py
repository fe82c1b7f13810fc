"""Grade one submission from outside the student's process.

nbgrader runs a notebook's test cells in the student's own kernel, so the student's code
can rewrite them (an IPython input transformer), neuter what they call
(numpy.testing, np.allclose, minicnn's reference) or read the hidden tests.  Here the
test cells are never run where the student's code runs:

1. the instructor's source notebook says which parts are graded, with which points and
   hidden seed (its test cells, read as text with `ast`, never executed);
2. the submission's code cells (minus its test cells; read-only cells taken from the
   source) run in a runner process inside the sandbox (runner.py, isolation.py);
3. for every case the grader generates the inputs, asks the runner to call the student's
   function on them, reads the reply as data (wire.py: no pickle), and compares it with
   minicnn's reference answer computed here (checks.run_part).

What the student's code does to its own process changes nothing but its own replies.
Signs of tampering (patching libraries or builtins, input transformers, edited or deleted
test cells, malformed replies, processes left behind) are reported to the instructor.
"""
from __future__ import annotations

import ast
import json
import os
import pickle
import re
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from . import checks, isolation, sandbox, wire

HIDDEN_BLOCK = re.compile(r"^[ \t]*### BEGIN HIDDEN TESTS.*?^[ \t]*### END HIDDEN TESTS[^\n]*\n?", re.S | re.M)
CELLS_TIMEOUT = {"a5_lenet": 900.0}     # seconds for a submission's cells to run (training takes a while)
DEFAULT_CELLS_TIMEOUT = 120.0
CALL_MARGIN = 30.0                      # a call's deadline: the part's own time limit plus this (compiling)
MAX_RESTARTS = 3


# ----------------------------------------------------------------------------- reading notebooks

def cells_of(nb: dict) -> list:
    cells = nb.get("cells") if isinstance(nb, dict) else None
    if not isinstance(cells, list):
        raise ValueError("it has no list of cells")
    return [c for c in cells if isinstance(c, dict)]


def source_text(cell: dict) -> str:
    src = cell.get("source", "")
    if isinstance(src, list):
        return "".join(s for s in src if isinstance(s, str))
    return src if isinstance(src, str) else ""


def nbgrader_meta(cell: dict) -> dict:
    meta = cell.get("metadata", {})
    meta = meta.get("nbgrader", {}) if isinstance(meta, dict) else {}
    return meta if isinstance(meta, dict) else {}


def is_test_cell(cell) -> bool:
    m = nbgrader_meta(cell)
    return cell.get("cell_type") == "code" and bool(m.get("grade")) and not m.get("solution")


def is_manual_cell(cell) -> bool:
    m = nbgrader_meta(cell)
    return bool(m.get("grade")) and bool(m.get("solution"))


def release_text(source: str) -> str:
    """A test cell as students see it: without the hidden-tests block."""
    return HIDDEN_BLOCK.sub("", source)


@dataclass
class TestSpec:
    """One test cell of the source notebook: which part, which function, how many points, which seed."""

    grade_id: str
    kind: str             # "check" or "compiled"
    part: str
    func: str             # the name of the student's function (or class, or object)
    points: float
    seed: int = checks.PUBLIC_SEED
    kernel: str | None = None   # check_compiled(..., kernel=NAME): the name judged for compilation


def parse_test_cell(grade_id: str, source: str) -> TestSpec:
    """Read a test cell such as

        seed = 0
        ### BEGIN HIDDEN TESTS
        seed = 4127
        ### END HIDDEN TESTS
        check("a1.output_size", output_size, points=2, seed=seed)

    statically: constants assigned to names, then one check(...) or check_compiled(...) call."""
    env: dict = {}
    spec = None
    for node in ast.parse(source).body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            env[node.targets[0].id] = ast.literal_eval(node.value)
            continue
        call = node.value if isinstance(node, ast.Expr) else None
        if not (isinstance(call, ast.Call) and isinstance(call.func, ast.Name)
                and call.func.id in ("check", "check_compiled")):
            raise ValueError(f"test cell {grade_id}: unexpected statement `{ast.unparse(node)[:80]}`")

        def value(arg):
            if isinstance(arg, ast.Name) and arg.id in env:
                return env[arg.id]
            return ast.literal_eval(arg)
        part = value(call.args[0])
        if not isinstance(call.args[1], ast.Name):
            raise ValueError(f"test cell {grade_id}: the function must be a name")
        kw = {k.arg: k.value for k in call.keywords}
        kernel = kw.get("kernel")
        spec = TestSpec(grade_id, "check" if call.func.id == "check" else "compiled", part, call.args[1].id,
                        float(value(kw["points"])) if "points" in kw else 1.0,
                        int(value(kw["seed"])) if "seed" in kw else checks.PUBLIC_SEED,
                        kernel.id if isinstance(kernel, ast.Name) else None)
    if spec is None:
        raise ValueError(f"test cell {grade_id}: no check(...) call")
    return spec


def test_specs(source_nb: dict) -> list[TestSpec]:
    return [parse_test_cell(nbgrader_meta(c)["grade_id"], source_text(c)) for c in cells_of(source_nb)
            if is_test_cell(c)]


def program(source_nb: dict, student_nb: dict) -> tuple[list, list]:
    """The cells the runner executes, in order, and notes on what the student changed.

    The student's cells run as submitted, except: test cells never run (the grader checks
    from outside), manually graded cells are skipped, and read-only cells run as in the
    source (a deleted one is put back where the source has it)."""
    src_cells = cells_of(source_nb)
    order = {nbgrader_meta(c).get("grade_id"): i for i, c in enumerate(src_cells) if nbgrader_meta(c).get("grade_id")}
    locked = {nbgrader_meta(c)["grade_id"]: c for c in src_cells
              if nbgrader_meta(c).get("locked") and not is_test_cell(c) and nbgrader_meta(c).get("grade_id")
              and c.get("cell_type") == "code"}
    tests = {nbgrader_meta(c)["grade_id"]: c for c in src_cells if is_test_cell(c)}
    # the instructor's demo cells (no grade id, unchanged from the source): not needed to grade
    demos = {source_text(c).strip() for c in src_cells if c.get("cell_type") == "code" and not nbgrader_meta(c)}
    notes, run, seen = [], [], set()
    for i, cell in enumerate(cells_of(student_nb)):
        if cell.get("cell_type") != "code":
            continue
        gid = nbgrader_meta(cell).get("grade_id")
        text = source_text(cell)
        if gid in tests:
            seen.add(gid)
            if text.strip() != release_text(source_text(tests[gid])).strip():
                notes.append(f"test cell {gid} was edited (the grader ignores test cells in submissions)")
            continue
        if is_manual_cell(cell):
            continue
        if gid in locked:
            seen.add(gid)
            if text.strip() != source_text(locked[gid]).strip():
                notes.append(f"read-only cell {gid} was edited (the grader ran the original)")
            run.append({"id": gid, "source": source_text(locked[gid]), "pos": order[gid], "trusted": True})
            continue
        if not gid and text.strip() in demos:
            continue
        run.append({"id": gid or f"{i + 1}", "source": text, "pos": order.get(gid), "trusted": False})
    for gid in tests:
        if gid not in seen:
            notes.append(f"test cell {gid} was deleted (the grader ignores test cells in submissions)")
    for gid, cell in locked.items():
        if gid not in seen:
            notes.append(f"read-only cell {gid} was deleted (the grader ran the original)")
            at = next((k for k, c in enumerate(run) if c["pos"] is not None and c["pos"] > order[gid]), len(run))
            run.insert(at, {"id": gid, "source": source_text(cell), "pos": order[gid], "trusted": True})
    return [{"id": c["id"], "source": c["source"], "trusted": c["trusted"]} for c in run], notes


# ----------------------------------------------------------------------------- static signs of tampering

SUSPECT_MODULES = {"ctypes", "subprocess", "socket", "signal", "multiprocessing", "importlib", "gc", "inspect",
                   "builtins", "pickle", "sqlite3", "urllib", "http", "requests", "shutil", "pty", "resource"}
SUSPECT_CALLS = {"exec", "eval", "compile", "__import__", "open", "setattr", "delattr", "globals", "get_ipython",
                 "fork", "kill", "killpg", "_exit", "exit", "system", "setsid", "popen", "execv", "execve"}
PATCHED_ROOTS = {"np", "numpy", "builtins", "minicnn", "numba", "sys", "os", "math", "checks", "__builtins__"}


def parsed_cells(cells: list) -> list:
    """[(cell, syntax tree)] for the cells that parse, magics turned into Python as IPython does."""
    from IPython.core.inputtransformer2 import TransformerManager

    tm = TransformerManager()
    out = []
    for cell in cells:
        try:
            out.append((cell, ast.parse(tm.transform_cell(cell["source"]))))
        except (SyntaxError, ValueError):
            continue
    return out


def static_flags(cells: list) -> list[str]:
    """What in the student's code deserves an instructor's look (it does not change scores)."""
    flags = []

    def add(text):
        if text not in flags:
            flags.append(text)
    for cell, tree in parsed_cells([c for c in cells if not c.get("trusted")]):
        where = f" (cell {cell['id']})"
        for node in ast.walk(tree):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                names = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
                for name in names:
                    top = name.split(".")[0]
                    if top in SUSPECT_MODULES or top in sandbox.BLOCKED_IMPORTS:
                        add(f"imports {name}{where}")
                    if name.startswith(("minicnn.kernels", "minicnn.course")):
                        add(f"imports {name}{where}")
            elif isinstance(node, ast.Call):
                f = node.func
                name = f.id if isinstance(f, ast.Name) else f.attr if isinstance(f, ast.Attribute) else ""
                if name in SUSPECT_CALLS:
                    add(f"calls {ast.unparse(f)}(){where}")
            elif isinstance(node, (ast.Assign, ast.AugAssign, ast.Delete)):
                targets = node.targets if isinstance(node, (ast.Assign, ast.Delete)) else [node.target]
                for t in targets:
                    if isinstance(t, (ast.Attribute, ast.Subscript)):
                        root = t
                        while isinstance(root, (ast.Attribute, ast.Subscript)):
                            root = root.value
                        if isinstance(root, ast.Name) and root.id in PATCHED_ROOTS:
                            add(f"replaces {ast.unparse(t)}{where}")
            elif isinstance(node, ast.Attribute) and node.attr in (
                    "input_transformers_cleanup", "input_transformers_post", "modules", "__globals__", "__code__",
                    "__builtins__", "f_back", "f_globals"):
                add(f"touches .{node.attr}{where}")
    return flags


def jit_decorated(cells: list) -> set:
    """The function names whose last top-level definition carries a decorator mentioning jit."""
    names = set()
    for _, tree in parsed_cells(cells):
        for node in tree.body:
            if isinstance(node, ast.FunctionDef):
                if any("jit" in ast.unparse(d) for d in node.decorator_list):
                    names.add(node.name)
                else:
                    names.discard(node.name)
    return names


def decorated_with_jit(cells: list, name: str) -> bool:
    """Does the student's source define `name` under a decorator that mentions jit?"""
    return name in jit_decorated(cells)


# ----------------------------------------------------------------------------- talking to the runner

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
        self.run = isolation.start(self.mode, self.workdir, self.limits, self.extra_env)
        wire.write_frame(self.run.request_fd, self.job)
        cells_deadline = min(time.monotonic() + self.cells_timeout, self.deadline)
        current = None
        errors = []
        while True:
            try:
                msg = wire.read_frame(self.run.reply_fd, cells_deadline)
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
        import subprocess

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
    def request(self, req: dict, timeout: float):
        """The reply (a dict), or an error text when the runner failed to give one."""
        if self.run is None and not self._start():
            return self.fatal
        deadline = min(time.monotonic() + timeout, self.deadline)
        try:
            wire.write_frame(self.run.request_fd, req)
            reply = wire.read_frame(self.run.reply_fd, deadline)
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

    def call(self, part, fn, args, timeout) -> sandbox.Outcome:
        reply = self.request({"op": "call", "name": fn.__name__, "part": part.key, "args": pickle.dumps(tuple(args)),
                              "timeout": float(timeout)}, timeout + CALL_MARGIN)
        if isinstance(reply, str):
            return sandbox.Outcome("crash" if "killed" in reply or "exited" in reply else "timeout", error=reply)
        status = reply.get("status")
        if status not in ("ok", "error", "timeout", "crash", "compile_error", "forbidden"):
            self.flag("the submission's process sent a reply with an unknown status")
            return sandbox.Outcome("error", error="the reply could not be read")
        if reply.get("mutated"):
            self.inputs_mutated = True
        value = reply.get("value")
        return sandbox.Outcome(status, value=value, error=str(reply.get("error", ""))[:2000],
                               output=str(reply.get("output", ""))[-4000:],
                               warnings=[str(w)[:300] for w in reply.get("warnings", [])][:20]
                               if isinstance(reply.get("warnings"), list) else [],
                               seconds=float(reply.get("seconds", 0.0)) if isinstance(reply.get("seconds"),
                                                                                      (int, float)) else 0.0)


# ----------------------------------------------------------------------------- one submission

def tripwire_mode(specs) -> str:
    modes = {checks.get_part(s.part).tripwires for s in specs}
    return "layers" if "layers" in modes else "kernels"


def grade(student: str, assignment: str, source_nb: dict, submission_dir: Path, mode: str,
          limits: isolation.Limits, scratch: Path, cells_timeout: float | None = None,
          case_timeout: float | None = None) -> dict:
    """Grade `submission_dir/<assignment>.ipynb`; returns a JSON-ready record (see batch.py)."""
    t0 = time.perf_counter()
    specs = test_specs(source_nb)
    record = {"student": student, "assignment": assignment, "status": "graded", "reason": "", "parts": [],
              "cell_errors": [], "flags": [], "notes": [], "output": "", "seconds": 0.0, "killed": 0, "starts": 0}

    def zero_all(status, reason):
        record["status"], record["reason"] = status, reason
        for s in specs:
            title = checks.get_part(s.part).title
            record["parts"].append({"grade_id": s.grade_id, "part": s.part, "title": title, "score": 0.0,
                                    "max": s.points, "lines": [reason]})
        record["seconds"] = time.perf_counter() - t0
        return record

    path = Path(submission_dir) / f"{assignment}.ipynb"
    if not path.is_file():
        return zero_all("missing", f"no {assignment}.ipynb in the submission")
    try:
        student_nb = json.loads(path.read_text(encoding="utf-8"))
        cells, notes = program(source_nb, student_nb)
    except (ValueError, UnicodeDecodeError) as exc:
        return zero_all("unreadable", f"the notebook could not be read: {type(exc).__name__}: {str(exc)[:200]}")
    record["notes"] = notes
    record["flags"] = static_flags(cells)

    workdir = Path(tempfile.mkdtemp(prefix=f"{re.sub(r'[^A-Za-z0-9_.-]', '_', student)[:40]}-", dir=scratch))
    for item in Path(submission_dir).iterdir():  # the student's own folder, nothing else of the course
        if item.is_symlink():
            continue
        if item.is_dir():
            shutil.copytree(item, workdir / item.name, symlinks=True)
        else:
            shutil.copyfile(item, workdir / item.name)
    extra_env = {"NUMBA_ENABLE_CUDASIM": "1"} if assignment.startswith("a4") else {}
    job = {"cells": cells, "tripwires": tripwire_mode(specs), "blocked": list(sandbox.BLOCKED_IMPORTS),
           "env": extra_env}
    remote = Remote(job, mode, workdir, limits, cells_timeout or CELLS_TIMEOUT.get(assignment, DEFAULT_CELLS_TIMEOUT),
                    extra_env)
    public_results: dict = {}
    jitted = jit_decorated(cells)
    try:
        for spec in specs:
            part = checks.get_part(spec.part)
            if case_timeout is not None:
                part = _with_timeout(part, case_timeout)
            fn = RemoteFunction(spec.func)
            if spec.kind == "check":
                res = checks.run_part(part, fn, spec.seed, spec.points, remote=remote)
                lines = [_headline(part, res, spec)] + res.lines
                score = res.score
            else:
                name = spec.kernel or spec.func
                ok, why = remote.compiled(name, part.compiled_kind)
                if ok and name not in jitted:
                    ok, why = False, "its definition in the notebook carries no jit decorator"
                    remote.flag(f"`{name}` reported itself compiled, but its source has no jit decorator")
                if ok:
                    if spec.part not in public_results:
                        public_results[spec.part] = checks.run_part(part, fn, checks.PUBLIC_SEED, 1.0, remote=remote)
                    ok, why = checks.compiled_point(public_results[spec.part])
                score = spec.points if ok else 0.0
                lines = checks.compiled_feedback(part, name, ok, why, spec.points)
            record["parts"].append({"grade_id": spec.grade_id, "part": spec.part, "title": part.title,
                                    "score": float(score), "max": float(spec.points), "lines": lines[:60]})
    finally:
        remote.stop()
        record["killed"] = remote.killed
        shutil.rmtree(workdir, ignore_errors=True)
    if remote.fatal:
        record["reason"] = remote.fatal
    record["cell_errors"] = remote.cell_errors
    record["flags"] += remote.flags
    if remote.inputs_mutated:
        record["notes"].append("a graded function changed its input arrays in place (no points are lost for it, "
                               "but a library function must not do that)")
    record["starts"] = remote.starts
    record["output"] = "\n".join(o for o in remote.outputs if o)[-20000:]
    record["seconds"] = time.perf_counter() - t0
    return record


def _headline(part, res, spec) -> str:
    if res.forbidden:
        return f"{part.title} (`{part.func}`): not your own code -> 0 of {res.points:g} points"
    return (f"{part.title} (`{part.func}`): {res.passed} of {res.total} checks pass (hidden cases) -> "
            f"{res.score:g} of {res.points:g} points")


def _with_timeout(part, seconds):
    import dataclasses

    return dataclasses.replace(part, timeout=min(part.timeout, seconds))
