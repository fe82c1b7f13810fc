"""What makes a sandboxed runner cheaper to start (issue 15), and that nothing was given up for it:

- the registry imports an assignment's module only when one of its parts is asked for, so a
  runner grading assignment 1 never loads numba.cuda (through assignment 4's module);
- the reference-code guard (an audit hook) checks an AST's compilation once, not once per
  level of a recursion into its own compilation (about 1000 times for every cell IPython ran),
  and still refuses a copy of minicnn's reference compiled from an AST.

Each check that loads or guards runs in a fresh interpreter of its own (an audit hook cannot be
removed, and which modules are loaded is per process).
"""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

import layout_rules as rules
from minicnn.course import checks, registry

ROOT = Path(__file__).resolve().parents[2]


def _python(code: str) -> dict:
    out = subprocess.run([sys.executable, "-I", "-c", code], capture_output=True, text=True, timeout=300,
                         cwd=str(ROOT))
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_a_runner_for_assignment_1_loads_neither_numba_cuda_nor_other_assignments():
    got = _python(
        "import json, sys\n"
        "from minicnn.grader import runner\n"          # what the sandboxed runner imports
        "from minicnn.course import checks\n"
        "part = checks.get_part('a1.correlate2d')\n"
        "print(json.dumps({'func': part.func, 'cuda': 'numba.cuda' in sys.modules,\n"
        "                  'assignments': sorted(m for m in sys.modules if m.startswith('minicnn.course.a'))}))\n")
    assert got["func"] == "correlate2d"
    assert got["cuda"] is False
    assert got["assignments"] == ["minicnn.course.a1_convolution"]


def test_an_assignment_4_part_still_loads_its_module_and_the_table_lists_every_part():
    got = _python(
        "import json, sys\n"
        "from minicnn.course import checks\n"
        "kernel = [k for k in checks.PARTS if k.startswith('a4.')][0]\n"
        "print(json.dumps({'title': checks.get_part(kernel).title, 'cuda': 'numba.cuda' in sys.modules}))\n")
    assert got["title"] and got["cuda"] is True
    # every assignment's parts, each under its own prefix, none twice
    keys = list(checks.PARTS)
    assert len(keys) == len(set(keys)) == len(checks.PARTS)
    assert {k.split(".")[0] for k in keys} == {registry.prefix(a) for a in registry.ASSIGNMENTS}
    for assignment in registry.ASSIGNMENTS:
        assert registry.parts_of(assignment), assignment


def test_unknown_parts_and_assignments_are_named():
    with pytest.raises(KeyError, match="unknown part 'a1.no_such_part'.*a1.correlate2d"):
        checks.get_part("a1.no_such_part")
    with pytest.raises(KeyError, match="unknown part 'z9.x'"):
        checks.get_part("z9.x")
    with pytest.raises(KeyError, match="unknown assignment 'a0_nothing'"):
        registry.parts_of("a0_nothing")
    assert "a1.zero_pad" in checks.PARTS and "a1.nothing" not in checks.PARTS and 3 not in checks.PARTS


def test_the_lazy_imports_of_the_registry_make_no_cycle():
    # the registry imports its assignments by name (importlib), which the layout test's reader does
    # not see: the same rule is checked here with those edges added
    tree = rules.read_tree(ROOT / "minicnn")
    g = rules.graph(tree)
    lazy = [rules.Edge(f"minicnn.course.{a}", (), 0) for a in registry.ASSIGNMENTS]
    assert all(e.target in g for e in lazy)
    g["minicnn.course.registry"] = list(g["minicnn.course.registry"]) + lazy
    assert rules.cycles(g) == []
    # and the check itself sees a cycle through such an edge
    g["minicnn.course.a1_convolution"] = list(g["minicnn.course.a1_convolution"]) + [
        rules.Edge("minicnn.course.checks", (), 0)]
    assert rules.cycles(g) != []


GUARDED_AST = r"""
import ast, json, sys, time
from minicnn.course import fingerprints
events = []
def count(event, args):   # installed first: the guard refuses any later hook
    if event == "compile" and len(args) > 1 and args[1] is None:
        events.append(1)
sys.addaudithook(count)
fingerprints.guard_reference_code()
plain = ast.parse("def f(x):\n    return [x * i for i in range(3)]\n")
events.clear()
t0 = time.perf_counter()
for _ in range(20):
    compile(plain, "<cell>", "exec")
seconds = time.perf_counter() - t0
per_compile = len(events) / 20
# a copy of minicnn's own library, compiled from its AST under another name, is still refused
source = open([p for p in fingerprints.library_files() if p.endswith("shapes.py")][0]).read()
try:
    compile(ast.parse(source), "<copy>", "exec")
    refused = ""
except fingerprints.ReferenceCode as exc:
    refused = str(exc)
print(json.dumps({"per_compile": per_compile, "seconds": seconds, "refused": refused}))
"""


def test_the_guard_checks_an_ast_compilation_once_and_still_refuses_a_copy():
    got = _python(GUARDED_AST)
    # the compilation itself and the guard's own one: before, the guard re-entered itself until
    # Python's recursion limit (about 1000 events for each compile of an AST)
    assert got["per_compile"] <= 3, got
    assert "copy of minicnn's own" in got["refused"], got


# ------------------------------------------------------------------ the runner leaves at once after "bye"

PRINTS = ("print('printed by a cell, never flushed', end='')\n"
          "import atexit, os\n"
          "os.write(1, b' [written to fd 1]')\n"
          "atexit.register(os.write, 1, b' [the interpreter shut down]')\n")


@pytest.fixture(scope="module")
def left(tmp_path_factory):
    """A tiny assignment-1 submission graded through the sandbox, which prints from a cell without
    flushing and registers an exit handler that would print too."""
    from course_helpers import code_cell, tiny_notebook
    from minicnn.grader import grading
    from minicnn.sandbox import isolation

    mode, _ = isolation.choose("auto")
    tmp = tmp_path_factory.mktemp("leave")
    settings = grading.Settings(mode, isolation.Limits(wall=300), tmp)
    folder = tmp / "prints"
    folder.mkdir()
    (folder / "a1_convolution.ipynb").write_text(json.dumps(tiny_notebook(extra_cells=[code_cell(PRINTS)])))
    return grading.grade("prints", "a1_convolution", tiny_notebook(), folder, settings)


def test_the_runner_leaves_without_the_interpreters_shutdown_and_keeps_what_was_printed(left):
    assert left.total == left.most == 4, [p.lines for p in left.parts]
    assert "printed by a cell, never flushed" in left.output and "[written to fd 1]" in left.output
    # the interpreter's own shutdown (exit handlers, IPython's history, Numba's teardown) was skipped
    assert "[the interpreter shut down]" not in left.output
    assert left.starts == 1
