"""minicnn's reference kernels reached another way (issue 13, finding 2): renamed, held as a
default argument, loaded afresh from minicnn's file, pasted, or looked up at call time.

One class (a correct student and one per trick, tests/course/reference_tricks.py) is graded
once through the sandbox; the unit tests below check each layer of the defence on its own:
the fingerprints (a function recognised by its code), the static inspection that uses them,
the runtime tripwires (the kernels' dispatcher objects themselves refuse), and the audit hook
(minicnn's loaded code never runs again), the last two in fresh processes.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import types
from pathlib import Path

import pytest

from minicnn.course import checks, fingerprints, inspection
from minicnn.grader import batch
from minicnn.sandbox import isolation

import reference_tricks as T

pytestmark = pytest.mark.skipif(not os.path.isdir("/proc"), reason="needs Linux")

ASSIGNMENT = "a2_volumes_pooling"   # the small notebook holds a2's conv2d and a3's conv2d_backward


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    course = tmp_path_factory.mktemp("reference-class")
    src = course / "solutions" / ASSIGNMENT
    src.mkdir(parents=True)
    (src / f"{ASSIGNMENT}.ipynb").write_text(json.dumps(T.notebook()), encoding="utf-8")
    students = {"correct": T.notebook()}
    for name, (before, forward, backward) in T.trick_cells().items():
        students[name] = T.notebook(before, forward, backward)
    # a module of code beside the notebook (a red-team course, 2026-12-03): the cells import it
    students["code_beside"] = T.notebook(CODE_BESIDE_CELL, *T._pair(prelude=("", "")))
    for name, nb in students.items():
        folder = course / "submitted" / name / ASSIGNMENT
        folder.mkdir(parents=True)
        (folder / f"{ASSIGNMENT}.ipynb").write_text(json.dumps(nb), encoding="utf-8")
    (course / "submitted" / "code_beside" / ASSIGNMENT / "helper.py").write_text(CODE_BESIDE_MODULE, encoding="utf-8")
    report = batch.grade_batch(ASSIGNMENT, course, jobs=2, limits=isolation.Limits(wall=300.0, memory_mb=2048),
                               progress=False, log=lambda *a: None)
    return {r["student"]: r for r in report["records"]}


CODE_BESIDE_MODULE = T.IMPORT_LOOPS + T.NAMES
CODE_BESIDE_CELL = "import os, sys\nsys.path.insert(0, os.getcwd())\nfrom helper import fwd, bwd_in, bwd_w, bwd_b\n"


def test_a_module_of_code_beside_the_notebook_is_not_given_to_it(graded, tmp_path):
    rec = graded["code_beside"]
    assert all(v == 0 for v in _scores(rec).values()), _scores(rec)
    assert any("files of code beside the notebook" in f and "helper.py" in f for f in rec["flags"]), rec["flags"]
    # what is copied: the notebook and data, not code, in the top folder or below it
    from minicnn.grader import grading
    sub = tmp_path / "sub"
    (sub / "pkg").mkdir(parents=True)
    for name in ("a.ipynb", "weights.npz", "helper.py", "pkg/__init__.py", "pkg/data.csv", "ext.so", "x.pth"):
        (sub / name).write_text("1", encoding="utf-8")
    work, left_out = grading.workdir_for("s", sub, tmp_path)
    copied = sorted(str(p.relative_to(work)) for p in work.rglob("*") if p.is_file())
    assert copied == ["a.ipynb", "pkg/data.csv", "weights.npz"]
    assert left_out == ["ext.so", "helper.py", "pkg/__init__.py", "x.pth"]


def _scores(rec):
    return {p["grade_id"]: p["score"] for p in rec["parts"]}


def test_correct_work_still_gets_full_marks(graded):
    rec = graded["correct"]
    assert _scores(rec) == T.FULL, [p["lines"][:3] for p in rec["parts"]]
    assert not rec["flags"] and not rec["cell_errors"]


@pytest.mark.parametrize("student", sorted(T.trick_cells()))
def test_every_trick_earns_nothing_and_is_flagged(graded, student):
    rec = graded[student]
    assert set(_scores(rec)) == set(T.FULL)
    assert all(v == 0 for v in _scores(rec).values()), (_scores(rec), [p["lines"][:3] for p in rec["parts"]])
    said = " ".join(rec["flags"] + [" ".join(p["lines"]) for p in rec["parts"]])
    assert "minicnn" in said and ("own" in said or "again" in said), said
    assert rec["flags"], "what was detected is on the record, for the instructor"


def test_what_was_detected_is_named(graded):
    def said(name):
        rec = graded[name]
        return " ".join(rec["flags"] + rec["cell_errors"] + [" ".join(p["lines"]) for p in rec["parts"]])
    # the loaded module's file is refused as a second execution; the pasted one as a copy
    assert "kernels/loops.py is already loaded" in said("fresh_load")
    assert "copy of minicnn's own minicnn.kernels.loops." in said("pasted")
    # at call time: the module attribute is a tripwire, and so is a second load of the file
    assert "minicnn.kernels.loops.conv2d_forward" in said("at_call")
    assert "already loaded" in said("at_call")


# ------------------------------------------------------------------ the fingerprints

def test_a_reference_is_recognised_by_its_code_not_its_name():
    from minicnn.kernels import loops

    assert fingerprints.reference_name(loops.conv2d_forward) == "minicnn.kernels.loops.conv2d_forward"
    copy = types.FunctionType(loops.conv2d_forward.py_func.__code__, {}, "renamed")
    copy.__module__ = "__main__"
    assert fingerprints.reference_name(copy) == "minicnn.kernels.loops.conv2d_forward"
    fresh = compile(T._loops_source(), "/elsewhere/not_minicnn.py", "exec")
    assert "minicnn.kernels.loops.conv2d_backward_weight" in fingerprints.copies_in(fresh)
    assert fingerprints.module_of_reference("minicnn.kernels.loops.conv2d_forward") == "minicnn.kernels.loops"


def test_no_solution_or_exercise_code_looks_like_a_reference():
    """Honest code must not be mistaken for a copy: every code cell of every solution and
    exercise notebook is compared with every reference function."""
    hits = []
    for folder in ("solutions", "exercises"):
        for path in sorted((T.REPO / folder).glob("*/*.ipynb")):
            for cell in json.loads(path.read_text(encoding="utf-8"))["cells"]:
                if cell["cell_type"] != "code":
                    continue
                try:
                    code = compile("".join(cell["source"]), "<cell>", "exec")
                except SyntaxError:
                    continue
                hits += [(path.name, h) for h in fingerprints.copies_in(code)]
    assert hits == []
    assert len(fingerprints.reference_index()) > 100


def _namespace(source: str) -> dict:
    ns = {"__name__": "__main__"}
    exec(compile(source, "<cell>", "exec"), ns)
    return ns


@pytest.mark.parametrize("student", ["renamed", "default_arg", "fresh_load", "held_by_object"])
def test_the_inspection_finds_the_reference_however_it_is_held(student):
    before, forward, backward = T.trick_cells()[student]
    ns = _namespace(T.SETUP + before + forward + backward)
    for part, func in (("a2.conv2d", "conv2d"), ("a3.grad_input", "conv2d_backward")):
        reasons = checks.IN_THIS_PROCESS.forbidden_uses(checks.get_part(part), ns[func])
        assert any("minicnn's own minicnn.kernels.loops." in r for r in reasons), (student, reasons)


HOLDERS = {
    "instance": "class Box:\n    pass\nbox = Box()\nbox.f = _L.conv2d_forward\n",
    "slots": "class Box:\n    __slots__ = ('f',)\nbox = Box()\nbox.f = _L.conv2d_forward\n",
    "namespace": "import types as _t\nbox = _t.SimpleNamespace(f=_L.conv2d_forward)\n",
    "nested": "class Box:\n    pass\nbox = Box()\nbox.inner = Box()\nbox.inner.f = _L.conv2d_forward\n",
    "in_a_list": "class Box:\n    pass\nbox = Box()\nbox.fs = [_L.conv2d_forward]\n",
    # a red-team notebook (2026-12-03) kept library functions in a NumPy object array
    "object_array": "box = np.empty(2, dtype=object)\nbox[0] = _L.conv2d_forward\n",
    # the class hides its dict behind code of its own: the inspection must not run it
    "guarded": ("class Box:\n    def __getattribute__(self, name):\n"
                "        if name == '__dict__':\n            raise RuntimeError('inspected')\n"
                "        return object.__getattribute__(self, name)\n"
                "box = Box()\nbox.f = _L.conv2d_forward\n"),
}
CALLS = {"instance": "box.f", "slots": "box.f", "namespace": "box.f", "nested": "box.inner.f",
         "in_a_list": "box.fs[0]", "guarded": "box.f", "object_array": "box[0]"}


@pytest.mark.parametrize("holder", sorted(HOLDERS))
def test_a_reference_held_in_an_object_of_the_students_is_found(holder):
    """Before 2026-12-03 the inspection followed globals, closures, defaults and containers but
    not the attributes of a student's own object, so `box.f(...)` with `box.f` minicnn's kernel
    was not seen (the runtime tripwires still stopped it in the kernels' assignments)."""
    source = T.SETUP + T.IMPORT_LOOPS + HOLDERS[holder] + (
        "def conv2d(x, w, b, stride=1, padding=0):\n"
        f"    return {CALLS[holder]}(x, w, b, stride, stride, padding, padding)\n")
    ns = _namespace(source)
    reasons = checks.IN_THIS_PROCESS.forbidden_uses(checks.get_part("a2.conv2d"), ns["conv2d"])
    assert any("minicnn.kernels.loops.conv2d_forward" in r for r in reasons), (holder, reasons)


def test_a_copy_of_a_graders_own_stand_in_is_found():
    """A red-team notebook (2026-12-03) rebuilt the a1 grader's own correlation from its __code__
    with fresh globals, wrapped it in njit, and earned 8 points unflagged: the course's functions
    were not fingerprinted.  Now they are, for the inspection."""
    ns = _namespace(T.SETUP + (
        "from minicnn.course import a1_convolution as _g\n"
        "_code = getattr(_g, '_grader_' + 'correlate2d').__code__\n"
        "correlate2d = njit(type(lambda: 0)(_code, {'np': np}))\n"
        "def held(image, kernel, stride=1, padding=0):\n    return _g._grader_correlate2d(image, kernel, stride, padding)\n"))
    for func in ("correlate2d", "held"):
        reasons = checks.IN_THIS_PROCESS.forbidden_uses(checks.get_part("a1.correlate2d"), ns[func])
        assert any("minicnn.course.a1_convolution._grader_correlate2d" in r for r in reasons), (func, reasons)
    assert fingerprints.reference_name(ns["correlate2d"]) == "minicnn.course.a1_convolution._grader_correlate2d"


def test_an_honest_object_is_not_mistaken_for_a_reference():
    """The control: the same shapes of code holding the student's own function are clean."""
    source = T.SETUP + ("class Box:\n    pass\nbox = Box()\nbox.inner = Box()\n"
                        "def mine(x, w, b):\n    return x\n"
                        "box.inner.f = mine\nbox.data = np.zeros(3)\n"
                        "def conv2d(x, w, b, stride=1, padding=0):\n    return box.inner.f(x, w, b)\n")
    ns = _namespace(source)
    assert checks.IN_THIS_PROCESS.forbidden_uses(checks.get_part("a2.conv2d"), ns["conv2d"]) == []


REBOUND_SCRIPT = r"""
import sys
sys.path.insert(0, sys.argv[1])
import numpy as np
import reference_tricks as T
from minicnn.course import inspection

def namespace(source):
    ns = {"__name__": "__main__"}
    exec(compile(source, "<cell>", "exec"), ns)
    return ns

before, _, _ = T.trick_cells()["fresh_load"]
ns = namespace(T.SETUP + before + "@njit\ndef grad_bias(g):\n    return bwd_b(g)\n")
assert ns["grad_bias"](np.ones((1, 2, 3, 3))).tolist() == [9.0, 9.0]
ns["bwd_b"] = namespace(T.SETUP + "@njit\ndef f(g):\n    return g[0, :, 0, 0]\n")["f"]
for reason in inspection.forbidden_uses(ns["grad_bias"]):
    print(reason)
"""


def test_a_compiled_call_is_found_after_its_global_is_rebound(tmp_path):
    """Numba resolved the global when it compiled: rebinding it afterwards hides nothing.

    In a fresh process with a private Numba cache: compiling minicnn's loops loaded afresh under
    another module name writes cache entries for that name beside the real module's, and the
    checkout's own cache (read by every other test and by the graders) must not get them."""
    env = dict(os.environ, NUMBA_CACHE_DIR=str(tmp_path / "numba-cache"))
    proc = subprocess.run([sys.executable, "-c", REBOUND_SCRIPT, str(Path(__file__).resolve().parent)],
                          capture_output=True, text=True, timeout=600, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    reasons = proc.stdout.splitlines()
    assert any("minicnn.kernels.loops.bias_backward (as `(called by its compiled code)`" in r for r in reasons), \
        reasons


def test_the_solutions_are_their_own_work():
    ns = _namespace(T.SETUP + T._solution_cell("a2_volumes_pooling", "conv2d") + "\n"
                    + T._solution_cell("a3_backprop", "conv2d_backward"))
    assert checks.IN_THIS_PROCESS.forbidden_uses(checks.get_part("a2.conv2d"), ns["conv2d"]) == []
    assert checks.IN_THIS_PROCESS.forbidden_uses(checks.get_part("a3.grad_input"), ns["conv2d_backward"]) == []


# ------------------------------------------------------------------ the runtime layers, in fresh processes

RUNTIME_SCRIPT = r"""
import importlib, importlib.util, os, sys
import numpy as np
import minicnn
from minicnn.kernels import loops
from minicnn.course import tripwires
from minicnn.sandbox.calls import ForbiddenCall

held = loops.conv2d_forward                      # a reference held from before the arming
x, w, b = np.ones((1, 1, 4, 4)), np.ones((1, 1, 3, 3)), np.zeros(1)
assert held(x, w, b, 1, 1, 1, 1, 2, 2).shape == (1, 1, 2, 2)
tripwires.arm("kernels")

def refused(fn):
    try:
        fn()
    except ForbiddenCall as exc:
        return str(exc)
    return ""

print("HELD", refused(lambda: held(x, w, b, 1, 1, 1, 1, 2, 2)))
print("BYNAME", refused(lambda: sys.modules["minicnn.kernels.loops"].conv2d_forward(x, w, b, 1, 1, 1, 1, 2, 2)))
path = os.path.join(os.path.dirname(minicnn.__file__), "kernels", "loops.py")
spec = importlib.util.spec_from_file_location("again", path)
print("FRESH", refused(lambda: spec.loader.exec_module(importlib.util.module_from_spec(spec))))
print("RELOAD", refused(lambda: importlib.reload(sys.modules["minicnn.kernels.loops"])))
src = open(path).read()
print("PASTED", refused(lambda: exec(compile(src, "<cell>", "exec"), {})))
ns = {}
exec(compile("def mine(a):\n    return a + 1\n", "<cell>", "exec"), ns)
print("OWN", ns["mine"](1))
import minicnn.explain                            # a module of minicnn not loaded yet: its first import
print("IMPORT ok")
"""


def test_the_runtime_layers_refuse_the_reference_however_it_is_reached():
    proc = subprocess.run([sys.executable, "-c", RUNTIME_SCRIPT], capture_output=True, text=True, timeout=600,
                          cwd=str(T.REPO))
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = dict(line.split(" ", 1) for line in proc.stdout.splitlines() if " " in line)
    assert "conv2d_forward" in out["HELD"]
    assert "minicnn.kernels.loops.conv2d_forward" in out["BYNAME"]
    assert "already loaded" in out["FRESH"] and "already loaded" in out["RELOAD"]
    assert "copy of minicnn's own minicnn.kernels.loops." in out["PASTED"]
    assert out["OWN"] == "2" and out["IMPORT"] == "ok"
