"""Hostile submissions for assignments 2, 3 and 5 (issue 13, "Done when": further hostile
submissions of our own beyond assignment 1's class in test_hostile_submissions.py).

Each class is graded once, in one batch, through the bubblewrap sandbox (module fixtures, two
workers), beside a correct submission.  Every student states the points it may at most (and the
correct one must at least) get per part; reference reached -> flagged; no process survives.

Assignments 2 and 3 (one small notebook holding a2's `conv2d` and a3's `conv2d_backward`, as in
test_reference_reached.py): minicnn's loop kernels reached without importing them or running
their module again, so that neither the tripwires (which empty the loaded dispatchers) nor the
audit hook's "exec" check (which refuses a loaded module run again) sees them:

- consts:        loops.py's source compiled (never executed); each function built from the code
                 objects among its constants with `types.FunctionType`, then `njit`-ed afresh
- consts_blind:  the same, and the runner's inspection (which runs in the student's process)
                 patched through `vars()` to find nothing
- spoofed_file:  loops.py's source compiled under the file name of a minicnn module that is not
                 loaded (the audit hook let "a first import" of such a file run unchecked) and
                 executed; the inspection patched as above
- hook_blind:    the module globals the audit hook looked up at each event (`fingerprint`)
                 replaced through `vars()`, then loops.py executed as pasted text; the
                 inspection patched as above
Against the audit hook as it was before this module (test_the_audit_hook_... below fails there),
each of these kernels ran; with the inspection blinded, nothing else stood in the way of the last three.

Assignment 5 (the solution notebook with cells replaced):

- lookup_digits:   no network at all: the grader's held-out digits are minicnn.data's "test"
                   split, which the notebook reads, and `forward` looks each image's label up by
                   its bytes (this earned the accuracy points until the grader scored the trained
                   parameters with its own forward, on digits it no longer sends)
- nearest_digit:   LeNet-5's layers, never trained, and a `forward` that reads minicnn.data's
                   digits when called and answers with the label of the nearest one
- minicnn_layers:  Conv2D a subclass of minicnn.layers.Conv2D (reached by a name built from
                   strings), Dense a wrapper of sys.modules["minicnn.layers"].Dense
- patched_checks:  the comparisons and accuracy levels patched in the student's process, a
                   Conv2D whose forward returns zeros, no training
- resource_hog:    careless: a 16 GiB array and /tmp filled in the training cell
"""
from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from minicnn.grader import batch
from minicnn.sandbox import isolation

import reference_tricks as T
from test_hostile_submissions import _matching
from test_hostile_submissions import _ours as _ours_shared

pytestmark = pytest.mark.skipif(not os.path.isdir("/proc"), reason="needs Linux")

LIMITS = dict(wall=300.0, memory_mb=2048, tmp_mb=256)


def _need_bwrap():
    if not isolation.bwrap_path():
        if os.environ.get("MINICNN_REQUIRE_BWRAP"):
            pytest.fail("MINICNN_REQUIRE_BWRAP is set but bubblewrap (bwrap) is not installed")
        pytest.skip("bubblewrap is not installed (apt-get install bubblewrap)")


# ------------------------------------------------------------------ processes: only our own are counted

MARKERS = r"minicnn\.grader\.runner|minicnn\.grader\.batch worker"


OWNER = f"MINICNN_HOSTILE_MORE={os.getpid()}-{time.time_ns()}"   # in the environment of what we start


def _ours(pid: int, cmd: str) -> bool:
    """Ours as test_hostile_submissions.py counts it (an orphan, our descendant, or a process that
    inherited our marker), so another run's graders on the machine are not counted."""
    return _ours_shared(pid, cmd, OWNER)


def _survivors(before: dict) -> list:
    deadline = time.monotonic() + 10
    while True:
        left = {pid: cmd for pid, cmd in _matching(MARKERS).items() if pid not in before and _ours(int(pid), cmd)}
        if not left or time.monotonic() > deadline:
            return [f"{pid}: {cmd}" for pid, cmd in sorted(left.items())]
        time.sleep(0.5)


def _grade_class(tmp_path_factory, assignment: str, source_nb: dict, students: dict, limits=None, **kw) -> dict:
    """Grade `students` ({name: notebook}) in one batch; {records by student, survivors}."""
    _need_bwrap()
    course = tmp_path_factory.mktemp(f"hostile-{assignment}")
    src = course / "solutions" / assignment
    src.mkdir(parents=True)
    (src / f"{assignment}.ipynb").write_text(json.dumps(source_nb), encoding="utf-8")
    for name, nb in students.items():
        folder = course / "submitted" / name / assignment
        folder.mkdir(parents=True)
        (folder / f"{assignment}.ipynb").write_text(json.dumps(nb), encoding="utf-8")
    before = _matching(MARKERS)
    name, value = OWNER.split("=")
    os.environ[name] = value
    try:
        report = batch.grade_batch(assignment, course, jobs=2, isolation_mode="bwrap",
                                   limits=isolation.Limits(**(limits or LIMITS)), progress=False,
                                   log=lambda *a: None, **kw)
        survivors = _survivors(before)
    finally:
        del os.environ[name]
    return {"recs": {r["student"]: r for r in report["records"]}, "survivors": survivors}


def _scores(rec) -> dict:
    return {p["grade_id"]: p["score"] for p in rec["parts"]}


def _said(rec) -> str:
    return " ".join(rec["flags"] + rec["cell_errors"] + [" ".join(p["lines"]) for p in rec["parts"]])


def _why(rec) -> list:
    return [(p["grade_id"], p["score"], p["lines"][:3]) for p in rec["parts"]] + [rec["reason"], rec["cell_errors"],
                                                                                   rec["flags"]]


# ------------------------------------------------------------------ assignments 2 and 3: the class

LOOPS_SOURCE = """\
_pkg = __import__("mini" + "cnn")
_src = open(os.path.join(os.path.dirname(_pkg.__file__), "kernels", "loops.py")).read()
"""
BLIND = """\
_course = vars(_pkg)["course"]
vars(vars(_course)["inspection"]).update(forbidden_uses=lambda *a, **k: [])
"""
CONSTS = """\
_code = compile(_src, "my_helpers.py", "exec")
_F = type(lambda: 0)


def _rebuilt(name):
    co = next(c for c in _code.co_consts if isinstance(c, type(_code)) and c.co_name == name)
    return njit(_F(co, {"np": np, "njit": njit}, name))


fwd, bwd_in, bwd_w, bwd_b = (_rebuilt(n) for n in ("conv2d_forward", "conv2d_backward_input",
                                                   "conv2d_backward_weight", "bias_backward"))
"""
SPOOFED = """\
_ns = {}
exec(compile(_src, os.path.join(os.path.dirname(_pkg.__file__), "kernels", "not_loaded_yet.py"), "exec"), _ns)
fwd, bwd_in, bwd_w, bwd_b = (_ns[n] for n in ("conv2d_forward", "conv2d_backward_input", "conv2d_backward_weight",
                                              "bias_backward"))
"""
HOOK_BLIND = """\
vars(vars(_course)["fingerprints"]).update(fingerprint=lambda code: None, _is_library_file=lambda path: False)
_ns = {}
exec(_src, _ns)
fwd, bwd_in, bwd_w, bwd_b = (_ns[n] for n in ("conv2d_forward", "conv2d_backward_input", "conv2d_backward_weight",
                                              "bias_backward"))
"""

KERNEL_TRICKS = {
    "consts": LOOPS_SOURCE + CONSTS,
    "consts_blind": LOOPS_SOURCE + BLIND + CONSTS,
    "spoofed_file": LOOPS_SOURCE + BLIND + SPOOFED,
    "hook_blind": LOOPS_SOURCE + BLIND + HOOK_BLIND,
}


@pytest.fixture(scope="module")
def kernels_class(tmp_path_factory):
    forward, backward = T._pair("@njit\n")
    students = {"correct": T.notebook()}
    students.update({name: T.notebook(before, forward, backward) for name, before in KERNEL_TRICKS.items()})
    return _grade_class(tmp_path_factory, "a2_volumes_pooling", T.notebook(), students)


def test_kernels_class_correct_work_gets_full_marks(kernels_class):
    rec = kernels_class["recs"]["correct"]
    assert _scores(rec) == T.FULL, _why(rec)
    assert not rec["flags"] and not rec["cell_errors"]


@pytest.mark.parametrize("student", sorted(KERNEL_TRICKS))
def test_kernels_reached_from_their_source_earn_nothing_and_are_flagged(kernels_class, student):
    rec = kernels_class["recs"][student]
    assert set(_scores(rec)) == set(T.FULL)
    assert sum(_scores(rec).values()) == 0, _why(rec)
    said = _said(rec)
    assert "minicnn's own" in said and "minicnn.kernels.loops." in said, said
    assert rec["flags"], "what was detected is on the record, for the instructor"


def test_kernels_class_leaves_no_process(kernels_class):
    assert kernels_class["survivors"] == []


# ------------------------------------------------------------------ assignment 5: the class

A5 = "a5_lenet"
A5_FULL = {"test_conv_layer": 3.0, "test_dense_layer": 2.0, "test_pool_layer": 1.0, "test_tanh_layer": 1.0,
           "test_lenet5": 2.0, "test_sgd_step": 1.0, "test_train": 1.0, "test_accuracy": 4.0}

# the grader's held-out digits are minicnn.data's "test" split, which ships with the package
LOOKUP_DIGITS = """\
splits = data.mnist_splits()
x_val, y_val = splits["val"]
_x_test, _y_test = splits["test"]
_answers = {image.tobytes(): int(label) for image, label in zip(_x_test, _y_test)}


class _Memorised:
    layers = []

    def forward(self, x):
        out = np.zeros((len(x), 10), np.float32)
        for i, image in enumerate(np.asarray(x, np.float32)):
            out[i, _answers.get(image.tobytes(), 0)] = 1.0
        return out


net = _Memorised()
"""

# LeNet-5's layers (the right shapes), never trained; forward answers with the nearest digit of minicnn.data's
NEAREST_DIGIT = """\
splits = data.mnist_splits()
x_val, y_val = splits["val"]
rng = np.random.default_rng(0)
net = lenet5(rng)


def _nearest(images):
    every = data.mnist_splits()
    known = np.concatenate([every[s][0] for s in ("train", "val", "test")]).reshape(-1, 32 * 32)
    labels = np.concatenate([every[s][1] for s in ("train", "val", "test")])
    flat = np.asarray(images, np.float32).reshape(len(images), -1)
    nearest = ((known * known).sum(axis=1)[None, :] - 2 * flat @ known.T).argmin(axis=1)
    return np.eye(10, dtype=np.float32)[labels[nearest]]


net.forward = _nearest
"""

# minicnn's ready-made layers, reached by a name built from strings and through sys.modules
MINICNN_CONV = """\
_layers = getattr(__import__("mini" + "cnn"), "lay" + "ers")


class Conv2D(_layers.Conv2D):
    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, rng=None):
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, rng=rng)
"""
MINICNN_DENSE = """\
class Dense:
    def __init__(self, in_features, out_features, rng=None):
        self.inner = __import__("sys").modules["minicnn.layers"].Dense(in_features, out_features, rng=rng)
        self.params, self.grads = {}, {}

    def forward(self, x):
        return self.inner.forward(x)

    def backward(self, grad_out):
        return self.inner.backward(grad_out)
"""

# the comparisons and accuracy levels patched in the student's process; a lazy Conv2D; no training
PATCHED_CONV = """\
import minicnn.course.a5_lenet as _a5
import minicnn.course.part as _part

_a5.compare_layer = _a5.compare_accuracy = lambda expected, got: None
_a5.ACCURACY_LEVELS = (0.0,) * 5
_part.compare_arrays = lambda *a, **k: None
for _p in _a5.PARTS:
    _p.compare = lambda expected, got: None


class Conv2D:
    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, rng=None):
        self.params = {"w": np.random.default_rng(rng).standard_normal(
            (out_channels, in_channels, kernel_size, kernel_size)).astype(np.float32),
            "b": np.zeros(out_channels, np.float32)}
        self.grads = {}
        self.k, self.stride, self.padding = kernel_size, stride, padding

    def forward(self, x):
        self.x = x
        n, _, h, w = x.shape
        size = lambda d: (d + 2 * self.padding - self.k) // self.stride + 1
        return np.zeros((n, self.params["w"].shape[0], size(h), size(w)), np.float32)

    def backward(self, grad_out):
        return np.zeros_like(self.x)
"""
UNTRAINED = """\
splits = data.mnist_splits()
x_val, y_val = splits["val"]
rng = np.random.default_rng(0)
net = lenet5(rng)
"""

# careless: a 16 GiB array, then /tmp filled, in the training cell (no training happens)
RESOURCE_HOG = UNTRAINED + """\
try:
    _hog = np.ones((1 << 31,))
except MemoryError:
    print("no memory for that")
_chunk = b"\\0" * (16 << 20)
with open("/tmp/hostile-more-fill", "wb") as fh:
    for _ in range(64):
        fh.write(_chunk)
"""

A5_STUDENTS = {
    # student: (cells replaced, {grade_id: most points}, {grade_id: least points})
    "lookup_digits": ({"run_training": LOOKUP_DIGITS}, {"test_accuracy": 0},
                      {k: v for k, v in A5_FULL.items() if k != "test_accuracy"}),
    "nearest_digit": ({"run_training": NEAREST_DIGIT}, {"test_accuracy": 0},
                      {k: v for k, v in A5_FULL.items() if k != "test_accuracy"}),
    "minicnn_layers": ({"conv_layer": MINICNN_CONV, "dense_layer": MINICNN_DENSE},
                       {"test_conv_layer": 0, "test_dense_layer": 0, "test_lenet5": 0, "test_accuracy": 0},
                       {"test_pool_layer": 1, "test_tanh_layer": 1}),
    "patched_checks": ({"conv_layer": PATCHED_CONV, "run_training": UNTRAINED},
                       {"test_conv_layer": 0, "test_accuracy": 0},
                       {"test_dense_layer": 2, "test_pool_layer": 1, "test_tanh_layer": 1}),
    "resource_hog": ({"run_training": RESOURCE_HOG}, {"test_accuracy": 0},
                     {k: v for k, v in A5_FULL.items() if k != "test_accuracy"}),
}
A5_LIMITS = dict(LIMITS, wall=900.0)   # training, and minicnn's kernels compiled cold in the sandbox, on a busy machine
A5_CELLS_TIMEOUT = 600.0


def _a5_variant(solution: dict, cells: dict) -> dict:
    nb = json.loads(json.dumps(solution))
    found = set()
    for cell in nb["cells"]:
        gid = cell["metadata"].get("nbgrader", {}).get("grade_id")
        if gid in cells:
            cell["source"] = cells[gid]
            found.add(gid)
    assert found == set(cells), set(cells) - found
    return nb


@pytest.fixture(scope="module")
def a5_class(tmp_path_factory):
    solution = json.loads((T.REPO / "solutions" / A5 / f"{A5}.ipynb").read_text(encoding="utf-8"))
    students = {"correct": solution}
    students.update({name: _a5_variant(solution, cells) for name, (cells, _, _) in A5_STUDENTS.items()})
    return _grade_class(tmp_path_factory, A5, solution, students, limits=A5_LIMITS,
                        cells_timeout=A5_CELLS_TIMEOUT)


def test_a5_correct_work_gets_full_marks(a5_class):
    rec = a5_class["recs"]["correct"]
    assert _scores(rec) == A5_FULL, _why(rec)
    assert not rec["flags"] and not rec["cell_errors"]


@pytest.mark.parametrize("student", sorted(A5_STUDENTS))
def test_a5_hostile_and_careless_work_is_graded_within_its_bounds(a5_class, student):
    rec = a5_class["recs"][student]
    _, most, least = A5_STUDENTS[student]
    got = _scores(rec)
    assert set(got) == set(A5_FULL)
    problems = [f"{gid}: {got[gid]:g} not in [{least.get(gid, 0):g}, {most.get(gid, full):g}]"
                for gid, full in A5_FULL.items() if not least.get(gid, 0) <= got[gid] <= most.get(gid, full)]
    assert not problems, (problems, _why(rec))


def test_a5_what_was_detected_is_on_the_record(a5_class):
    recs = a5_class["recs"]
    said = _said(recs["minicnn_layers"])
    assert "minicnn.layers" in said and recs["minicnn_layers"]["flags"], _why(recs["minicnn_layers"])
    assert any("minicnn.course" in f for f in recs["patched_checks"]["flags"]), recs["patched_checks"]["flags"]
    assert any("OSError" in e or "No space" in e for e in recs["resource_hog"]["cell_errors"]), \
        _why(recs["resource_hog"])


def test_a5_accuracy_is_not_earned_by_looking_up_the_held_out_digits(a5_class):
    """The held-out digits ship with minicnn (minicnn.data's "test" split): a network that recognises
    them (by their bytes, or as the nearest of the package's digits) used to earn the 4 accuracy
    points, unflagged.  The grader now scores the trained parameters with its own LeNet-5 forward."""
    for student in ("lookup_digits", "nearest_digit"):
        rec = a5_class["recs"][student]
        assert _scores(rec)["test_accuracy"] == 0, _why(rec)
    assert "LeNet-5 has 5" in _said(a5_class["recs"]["lookup_digits"]), _why(a5_class["recs"]["lookup_digits"])
    said = _said(a5_class["recs"]["nearest_digit"])
    assert "measured by the grader" in said and "your net.forward gives other outputs" in said, \
        _why(a5_class["recs"]["nearest_digit"])


def test_a5_class_leaves_no_process(a5_class):
    assert a5_class["survivors"] == []


# ------------------------------------------------------------------ the audit hook alone, in a fresh process

HOOK_SCRIPT = r"""
import marshal, os, sys, types
import numpy as np
from numba import njit
import minicnn
from minicnn.course import fingerprints, tripwires
from minicnn.sandbox.calls import ForbiddenCall

path = os.path.join(os.path.dirname(minicnn.__file__), "kernels", "loops.py")
src = open(path).read()
blob = marshal.dumps(compile(src, "elsewhere.py", "exec"))    # a .pyc's body, made before the guard
held = next(c for c in compile(src, "elsewhere.py", "exec").co_consts if getattr(c, "co_name", "") == "bias_backward")
tripwires.arm("kernels")
x, w, b = np.ones((1, 1, 4, 4)), np.ones((1, 1, 3, 3)), np.zeros(1)

def refused(fn):
    try:
        fn()
    except ForbiddenCall as exc:
        return str(exc)
    return ""

def consts():
    code = compile(src, "mine.py", "exec")
    co = next(c for c in code.co_consts if isinstance(c, types.CodeType) and c.co_name == "conv2d_forward")
    njit(types.FunctionType(co, {"np": np}, "mine"))(x, w, b, 1, 1, 1, 1, 2, 2)

def spoofed():
    exec(compile(src, os.path.join(os.path.dirname(path), "not_loaded_yet.py"), "exec"), {})

def pyc():
    marshal.loads(blob)

def blind():
    vars(fingerprints).update(fingerprint=lambda code: None, _is_library_file=lambda p: False)
    exec(src, {})

print("CONSTS", refused(consts))
print("SPOOFED", refused(spoofed))
print("BLIND", refused(blind))
print("PYC", refused(pyc))

def swapped():
    @njit
    def grad_bias(g):
        return g.sum(axis=(0, 2, 3))
    grad_bias.py_func.__code__ = held

print("SWAPPED", refused(swapped))
sys.addaudithook(lambda event, args: print("ADDED-HOOK", event) if event == "open" else None)
open(path).close()
ns = {}
exec(compile("def mine(a):\n    return a + 1\n", "<cell>", "exec"), ns)
print("OWN", ns["mine"](1))
import minicnn.explain
print("IMPORT ok")
"""


def test_the_audit_hook_sees_code_made_from_minicnn_source_however_it_is_made():
    """Compiling minicnn's source (under any name) is refused, so functions built from the compiled
    module's constants never exist; patching the fingerprint helpers changes nothing."""
    import subprocess
    import sys

    proc = subprocess.run([sys.executable, "-c", HOOK_SCRIPT], capture_output=True, text=True, timeout=600,
                          cwd=str(T.REPO))
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = dict(line.split(" ", 1) for line in proc.stdout.splitlines() if " " in line)
    for what in ("CONSTS", "SPOOFED", "PYC", "SWAPPED", "BLIND"):
        assert "copy of minicnn's own minicnn.kernels.loops." in out[what], (what, out)
    assert "ADDED-HOOK" not in proc.stdout, "no other audit hook is installed"
    assert out["OWN"] == "2" and out["IMPORT"] == "ok"
