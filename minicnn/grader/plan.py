"""Building the plan for grading one submission, from text only (nothing here runs any code).

- the instructor's source notebook says which parts are graded, with which points and hidden
  seed: its test cells, read with `ast`, never executed (`test_specs`);
- the submission's code cells become the program its sandboxed runner executes (`program`):
  test cells and hand-graded answers left out, read-only cells taken from the source;
- what in the student's code deserves an instructor's look (`static_flags`) and which functions
  carry a jit decorator (`jit_decorated`).
"""
from __future__ import annotations

import ast
import copy
import re
from dataclasses import dataclass

from ..course.checks import PUBLIC_SEED, get_part
from ..course.notebook import (HIDDEN_BLOCK, cells_of, is_manual_cell, is_test_cell, nbgrader_meta, release_text,
                               source_text)
from ..sandbox.calls import BLOCKED_IMPORTS


@dataclass
class TestSpec:
    """One test cell of the source notebook: which part, which function, how many points, which seed."""

    grade_id: str
    kind: str             # "check" or "compiled"
    part: str
    func: str             # the name of the student's function (or class, or object)
    points: float
    seed: int = PUBLIC_SEED
    kernel: str | None = None   # check_compiled(..., kernel=NAME): the name judged for compilation


def parse_test_cell(grade_id: str, source: str) -> TestSpec:
    """Read a test cell such as

        seed = 0
        ### BEGIN HIDDEN TESTS
        seed = 1234          (an example: the real hidden seeds live only in the instructor's notebooks)
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
                        int(value(kw["seed"])) if "seed" in kw else PUBLIC_SEED,
                        kernel.id if isinstance(kernel, ast.Name) else None)
    if spec is None:
        raise ValueError(f"test cell {grade_id}: no check(...) call")
    return spec


def test_specs(source_nb: dict) -> list[TestSpec]:
    return [parse_test_cell(nbgrader_meta(c)["grade_id"], source_text(c)) for c in cells_of(source_nb)
            if is_test_cell(c)]


_SEED_LINE = re.compile(r"^([ \t]*seed[ \t]*=[ \t]*)\d+", re.M)


def with_hidden_seeds(source_nb: dict, seeds: dict) -> dict:
    """A copy of the source notebook whose test cells set `seed = seeds[grade_id]` inside their
    hidden-tests block (the one place the notebook's own hidden seed is written), for grading
    with nbgrader itself (`course verify`) with the seeds a course secret gives (seeds.py).
    Cells not in `seeds` and everything outside the hidden blocks stay as they are, so the
    release made from the copy is the same."""
    nb = copy.deepcopy(source_nb)
    for cell in cells_of(nb):
        gid = nbgrader_meta(cell).get("grade_id")
        if is_test_cell(cell) and gid in seeds:
            text = HIDDEN_BLOCK.sub(lambda m: _SEED_LINE.sub(lambda s: f"{s.group(1)}{int(seeds[gid])}", m.group(0)),
                                    source_text(cell))
            cell["source"] = text
    return nb


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
        if not isinstance(gid, str):   # a submission's metadata may hold anything (a list, a number)
            gid = None
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


def tripwire_mode(specs) -> str:
    """What the runner disables for the whole submission: minicnn's layers when any part asks
    for them to be the student's own, else its kernels."""
    modes = {get_part(s.part).tripwires for s in specs}
    return "layers" if "layers" in modes else "kernels"


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
                    if top in SUSPECT_MODULES or top in BLOCKED_IMPORTS:
                        add(f"imports {name}{where}")
                    if name.startswith(("minicnn.kernels", "minicnn.course", "minicnn.grader", "minicnn.sandbox")):
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


# ----------------------------------------------------------------------------- compiled, decided here

def _bindings(cells: list) -> dict:
    """{name: [what bound it]} over every cell, at any depth: ('numba', module) for an import
    from numba, ('other', '') for anything else (an assignment, a def, a class, a loop, an
    import from elsewhere, a `global`)."""
    out: dict = {}

    def bind(name, how=("other", "")):
        out.setdefault(name, []).append(how)
    for _, tree in parsed_cells(cells):
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                for a in node.names:
                    top = a.name.split(".")[0]
                    if a.asname:
                        bind(a.asname, ("numba", a.name) if a.name.split(".")[0] == "numba" else ("other", ""))
                    else:
                        bind(top, ("numba", "numba") if top == "numba" else ("other", ""))
            elif isinstance(node, ast.ImportFrom):
                for a in node.names:
                    mod = node.module or ""
                    how = ("numba", f"{mod}.{a.name}") if mod.split(".")[0] == "numba" and not node.level \
                        else ("other", "")
                    bind(a.asname or a.name, how)
            elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                bind(node.name)
            elif isinstance(node, (ast.Global, ast.Nonlocal)):
                for n in node.names:
                    bind(n)
            elif isinstance(node, ast.Name) and isinstance(node.ctx, (ast.Store, ast.Del)):
                bind(node.id)
            elif isinstance(node, ast.ExceptHandler) and node.name:
                bind(node.name)
    return out


def _numba_path(expr, bindings: dict) -> str:
    """The dotted numba name `expr` certainly denotes ('numba.njit', 'numba.cuda.jit'), or ''
    when any name in it is bound by anything but an import from numba."""
    parts = []
    while isinstance(expr, ast.Attribute):
        parts.append(expr.attr)
        expr = expr.value
    if not isinstance(expr, ast.Name):
        return ""
    hows = bindings.get(expr.id, [])
    if not hows or any(kind != "numba" for kind, _ in hows) or len({m for _, m in hows}) != 1:
        return ""
    return ".".join([hows[0][1]] + parts[::-1])


# What can make the names the source shows differ from what runs: a function's name rebound without
# an assignment the parser can see (globals()["f"] = f.py_func, exec, setattr on __main__), or numba's
# own decorator replaced (`import numba as nb; nb.njit = lambda f: f`).  Seen in a batch (2026-12-02):
# both, with the runner's own report patched as well, earned every compiled point for plain Python.
# attrgetter and objmode count under any name they are imported as (`from numba import objmode as om`)
DYNAMIC_IMPORTS = {"attrgetter", "objmode"}
DYNAMIC_NAMES = {"globals", "vars", "locals", "setattr", "delattr", "exec", "eval", "compile", "__import__"} \
    | DYNAMIC_IMPORTS
DYNAMIC_ATTRS = {"__dict__", "__setattr__", "__delattr__", "__code__", "__globals__", "__builtins__",
                 "import_module", "reload", "modules", "f_globals", "f_locals", "py_func",
                 "__getattribute__"} | DYNAMIC_IMPORTS
JIT_ROOTS = {"numba", "__main__", "sys", "builtins", "importlib", "types", "minicnn"}


def run_time_rebinding(cells: list) -> list[str]:
    """Why the source cannot be trusted to show which functions are compiled (empty when it can):
    a use of globals/vars/locals/setattr/delattr/exec/eval/compile/__import__, of an attribute such
    as __dict__, import_module or py_func, getattr with a name built at run time or a __dunder__
    one, numba's objmode (Python run from inside compiled code), or an assignment into numba,
    __main__, sys, builtins, importlib, types or minicnn (under any alias), or into anything a call
    returned."""
    reasons: list = []

    def add(text):
        if text not in reasons:
            reasons.append(text)
    mine = [c for c in cells if not c.get("trusted")]
    roots = {name for name, hows in _bindings(mine).items()
             if any(kind == "numba" for kind, _ in hows)} | _imported(mine, JIT_ROOTS)
    for cell, tree in parsed_cells(mine):
        where = f" (cell {cell['id']})"
        for node in ast.walk(tree):
            if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load) and node.id in DYNAMIC_NAMES:
                add(f"uses {node.id}{where}")
            elif isinstance(node, ast.Attribute) and node.attr in DYNAMIC_ATTRS:
                add(f"uses .{node.attr}{where}")
            elif isinstance(node, ast.ImportFrom):
                for alias in node.names:
                    if alias.name in DYNAMIC_IMPORTS:
                        add(f"uses {alias.name}{where}")
            elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "getattr":
                # getattr(f, "__glo" + "bals__").update(...) rebinds what the parser cannot see
                # (a red-team notebook, 2026-12-03): a name built at run time, or a double-underscore one
                name = node.args[1] if len(node.args) > 1 else None
                literal = isinstance(name, ast.Constant) and isinstance(name.value, str)
                if not literal or name.value.startswith("__") or name.value in DYNAMIC_ATTRS:
                    add(f"uses getattr with {ast.unparse(name) if name is not None else 'no name'}{where}")
            elif isinstance(node, (ast.Assign, ast.AugAssign, ast.AnnAssign, ast.Delete)):
                targets = node.targets if isinstance(node, (ast.Assign, ast.Delete)) else [node.target]
                for t in targets:
                    root = t
                    while isinstance(root, (ast.Attribute, ast.Subscript, ast.Starred)):
                        root = root.value
                    if root is not t and (not isinstance(root, ast.Name) or root.id in roots):
                        add(f"assigns to {ast.unparse(t)}{where}")
    return reasons


def _imported(cells: list, modules: set) -> set:
    """Names bound by an import of (or from) one of `modules`, in any cell."""
    out = set()
    for _, tree in parsed_cells(cells):
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                out.update(a.asname or a.name.split(".")[0] for a in node.names
                           if a.name.split(".")[0] in modules)
            elif isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] in modules:
                out.update(a.asname or a.name for a in node.names)
    return out


def numba_compiled(cells: list, kind: str = "njit") -> set:
    """The function names the grader itself holds compiled, from the source alone: the name's
    last top-level binding is a `def` under numba's own decorator (@njit / @numba.njit / @jit
    without forceobj or nopython=False for kind "njit"; @cuda.jit without device=True for kind
    "cuda"), where every name in the decorator is bound only by an import from numba, in any
    cell.  Nothing the student's process does afterwards (patching the runner's inspection,
    a no-op `njit` of its own) can change this verdict; the runner's own report and the public
    cases are required as well."""
    bindings = _bindings(cells)
    wanted = {"numba.njit", "numba.jit"} if kind == "njit" else {"numba.cuda.jit"}
    names: set = set()
    for _, tree in parsed_cells(cells):
        for node in tree.body:
            bound = _top_level_names(node)
            if isinstance(node, ast.FunctionDef):
                ok = False
                for d in node.decorator_list:
                    call = d if isinstance(d, ast.Call) else None
                    path = _numba_path(call.func if call else d, bindings)
                    if path not in wanted:
                        continue
                    kw = {k.arg: k.value for k in (call.keywords if call else [])}
                    bad = [k for k in ("forceobj", "device") if isinstance(kw.get(k), ast.Constant) and kw[k].value]
                    if isinstance(kw.get("nopython"), ast.Constant) and kw["nopython"].value is False:
                        bad.append("nopython")
                    ok = not bad and not any(k is None for k in kw)   # no **options hiding them
                (names.add if ok else names.discard)(node.name)
            else:
                names -= bound
    for _, tree in parsed_cells(cells):     # a name a function rebinds (`global f; f = ...`) is not sure
        for node in ast.walk(tree):
            if isinstance(node, (ast.Global, ast.Nonlocal)):
                names.difference_update(node.names)
    return names


def _top_level_names(node) -> set:
    """Names a top-level statement binds (other than a def's own name)."""
    out = set()
    for sub in ast.walk(node):
        if isinstance(sub, ast.Name) and isinstance(sub.ctx, (ast.Store, ast.Del)):
            out.add(sub.id)
        elif isinstance(sub, (ast.Import, ast.ImportFrom)):
            out.update((a.asname or a.name).split(".")[0] for a in sub.names)
        elif isinstance(sub, (ast.FunctionDef, ast.ClassDef)) and sub is not node:
            out.add(sub.name)
    if isinstance(node, ast.ClassDef):
        out.add(node.name)
    return out
