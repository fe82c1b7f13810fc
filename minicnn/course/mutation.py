"""How known-wrong implementations are made, for `minicnn course verify`.

A *mutant* is the instructor's solution with one typical student mistake put in: a text
replacement inside one solution cell (found by its nbgrader grade_id).  Verify autogrades the
mutated notebook with real nbgrader and requires every test cell named in `breaks` to lose
points, so a check that cannot fail (a hidden test that accepts anything) is caught.  A
replacement whose `old` text no longer occurs exactly once in the solution is an error: the
mutants must follow the solutions.

The mutants themselves quote the solutions, so they are the instructor's material and do not
ship with the package: they live in the course directory, `solutions/mutants.py` (a list
`MUTANTS` of `M(...)` entries), and `load(path)` reads them.  This module is only the machinery.
"""
from __future__ import annotations

import ast
import json
import symtable
from dataclasses import dataclass
from pathlib import Path

from .notebook import cells_of, grade_id, nbgrader_meta, source_text


@dataclass(frozen=True)
class Mutant:
    name: str
    assignment: str
    cell: str                 # grade_id of the solution cell to change
    breaks: tuple             # grade_ids of the test cells that must lose points
    description: str
    edits: tuple              # ((old, new), ...) applied to the cell's source, each old exactly once


def M(assignment, name, cell, breaks, description, *edits):
    """One mutant, written as the mutants file writes them: M(A1, "name", "cell", ["test"], "says", (old, new))."""
    return Mutant(name, assignment, cell, tuple(breaks), description, tuple(edits))


A1, A2, A3, A4, A5 = "a1_convolution", "a2_volumes_pooling", "a3_backprop", "a4_gpu", "a5_lenet"
A6 = "a6_beyond"


class StaleMutant(ValueError):
    pass


def load(path) -> list:
    """The mutants of the course: the list `MUTANTS` defined by the Python file `path`
    (the course directory's solutions/mutants.py).  The file is run as plain Python in a
    namespace of its own (nothing is imported into sys.modules, nothing written beside it)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no mutants file {path}: the known-wrong implementations are the instructor's, "
                                "in solutions/mutants.py of the course directory (a clone, or one `course init` made)")
    namespace = {"__name__": "minicnn_course_mutants", "__file__": str(path)}
    exec(compile(path.read_text(encoding="utf-8"), str(path), "exec"), namespace)
    found = namespace.get("MUTANTS")
    if not isinstance(found, list) or not all(isinstance(m, Mutant) for m in found):
        raise ValueError(f"{path} must define MUTANTS, a list of M(...) entries (minicnn.course.mutation.M)")
    seen = set()
    for m in found:
        if m.name in seen:
            raise ValueError(f"{path}: two mutants are named {m.name!r}")
        seen.add(m.name)
    return found


def apply(mutant: Mutant, source: str) -> str:
    """The cell source with the mutant's edits applied; StaleMutant if an edit does not fit."""
    for old, new in mutant.edits:
        count = source.count(old)
        if count != 1:
            raise StaleMutant(f"mutant {mutant.name!r}: {old!r} occurs {count} times in cell {mutant.cell!r} "
                              "(expected exactly once); update solutions/mutants.py to follow the solution")
        source = source.replace(old, new)
    return source


def for_assignment(assignment: str, mutants) -> list:
    """The mutants (of the list `mutants`) that change `assignment`'s notebook."""
    return [m for m in mutants if m.assignment == assignment]


def mutate_notebook(notebook: dict, mutants) -> dict:
    """A copy of the source notebook with every given mutant applied (to distinct cells)."""
    nb = json.loads(json.dumps(notebook))
    by_cell = {}
    for m in mutants:
        if m.cell in by_cell:
            raise ValueError(f"mutants {by_cell[m.cell].name!r} and {m.name!r} change the same cell")
        by_cell[m.cell] = m
    found = set()
    for cell in cells_of(nb):
        gid = grade_id(cell)
        if gid in by_cell:
            cell["source"] = apply(by_cell[gid], source_text(cell))
            found.add(gid)
    missing = set(by_cell) - found
    if missing:
        raise StaleMutant(f"no solution cell with grade_id {sorted(missing)} in the notebook")
    return nb


# ------------------------------------------------------------------ which cells each test depends on

def _global_uses(src: str) -> set:
    """Names a cell reads from the notebook's global namespace (a function's locals do not count)."""
    def walk(table):
        out = set()
        for sym in table.get_symbols():
            if not sym.is_referenced():
                continue
            if table.get_type() == "module" or sym.is_global() or (table.get_type() == "class"
                                                                    and not sym.is_assigned()):
                out.add(sym.get_name())
        for child in table.get_children():
            out |= walk(child)
        return out
    return walk(symtable.symtable(src, "<cell>", "exec"))


def _cell_info(notebook: dict):
    """(defines, uses) per solution cell, and the function each test cell checks."""
    defines, uses, tests = {}, {}, {}
    for cell in cells_of(notebook):
        meta = nbgrader_meta(cell)
        src = source_text(cell)
        if cell.get("cell_type") != "code":
            continue
        try:
            tree = ast.parse(src)
        except SyntaxError:
            continue
        if meta.get("solution"):
            names = set()
            for node in tree.body:
                if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
                    names.add(node.name)
                elif isinstance(node, (ast.Assign, ast.AnnAssign, ast.AugAssign)):
                    targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                    for t in targets:
                        names |= {n.id for n in ast.walk(t) if isinstance(n, ast.Name)}
            defines[meta["grade_id"]] = names
            uses[meta["grade_id"]] = _global_uses(src)
        elif meta.get("grade"):
            called = set()
            for node in ast.walk(tree):
                if isinstance(node, ast.Call) and getattr(node.func, "id", "") in ("check", "check_compiled"):
                    called |= {a.id for a in node.args if isinstance(a, ast.Name)}
            tests[meta["grade_id"]] = called
    return defines, uses, tests


def test_dependencies(notebook: dict) -> dict:
    """{test grade_id: set of solution-cell grade_ids whose code that test runs}."""
    defines, uses, tests = _cell_info(notebook)
    owner = {fn: cell for cell, fns in defines.items() for fn in fns}
    deps = {}
    for test, funcs in tests.items():
        todo = [owner[f] for f in funcs if f in owner]
        seen = set()
        while todo:
            cell = todo.pop()
            if cell in seen:
                continue
            seen.add(cell)
            todo.extend(owner[n] for n in uses.get(cell, ()) if n in owner and owner[n] not in seen)
        deps[test] = seen
    return deps


def batches(notebook: dict, mutants) -> list:
    """Group mutants into submissions that cannot disturb each other's verdicts.

    Two mutants share a submission only when they change different cells and neither one's
    cell is run by a test the other must break."""
    deps = test_dependencies(notebook)
    groups = []
    for m in mutants:
        mine = set().union(*(deps.get(t, set()) for t in m.breaks))
        for g in groups:
            clash = any(o.cell == m.cell or o.cell in mine or
                        m.cell in set().union(*(deps.get(t, set()) for t in o.breaks)) for o in g)
            if not clash:
                g.append(m)
                break
        else:
            groups.append([m])
    return groups
