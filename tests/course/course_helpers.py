"""Helpers for the course tests: run notebook cells in-process, and build a tiny nbgrader course.

The in-process helpers exec a notebook's code cells (setup and solutions) into a fresh
module, which is what the checks see when a test cell runs in a Jupyter kernel; this keeps
most tests free of nbgrader and fast.  The nbgrader tests use a two-part assignment built
from the real checks, so one real autograde run stays short.
"""
from __future__ import annotations

import json
import linecache
import shutil
import sys
import types
from pathlib import Path


REPO = Path(__file__).resolve().parents[2]

SETUP_SRC = """\
import os
os.environ.setdefault("NUMBA_BOUNDSCHECK", "1")
import numpy as np
from numba import njit
from minicnn.course.checks import check, check_compiled
"""

CORRELATE_SRC = """\
@njit
def correlate2d(image, kernel, stride, padding):
    ### BEGIN SOLUTION
    h, w = image.shape
    kh, kw = kernel.shape
    padded = np.zeros((h + 2 * padding, w + 2 * padding))
    for i in range(h):
        for j in range(w):
            padded[i + padding, j + padding] = image[i, j]
    out_h = (h + 2 * padding - kh) // stride + 1
    out_w = (w + 2 * padding - kw) // stride + 1
    out = np.zeros((out_h, out_w))
    for i in range(out_h):
        for j in range(out_w):
            total = 0.0
            for u in range(kh):
                for v in range(kw):
                    total += padded[i * stride + u, j * stride + v] * kernel[u, v]
            out[i, j] = total
    return out
    ### END SOLUTION
"""

OUTPUT_SIZE_SRC = """\
def output_size(n, k, stride=1, padding=0):
    ### BEGIN SOLUTION
    return (n + 2 * padding - k) // stride + 1
    ### END SOLUTION
"""

HIDDEN_SEED = 31337


def check_src(part, func, points):
    return (f"seed = 0\n### BEGIN HIDDEN TESTS\nseed = {HIDDEN_SEED}\n### END HIDDEN TESTS\n"
            f'check("{part}", {func}, points={points}, seed=seed)')


def _cell(kind, source, **nbg_meta):
    cell = {"cell_type": kind, "metadata": {}, "source": source}
    if nbg_meta:
        meta = {"grade": False, "locked": False, "schema_version": 3, "solution": False, "task": False}
        meta.update(nbg_meta)
        cell["metadata"] = {"nbgrader": meta}
    if kind == "code":
        cell.update(execution_count=None, outputs=[])
    return cell


def code_cell(source, **nbg_meta):
    return _cell("code", source, **nbg_meta)


def tiny_notebook(correlate_src=CORRELATE_SRC, output_size_src=OUTPUT_SIZE_SRC, extra_cells=(), drop_tests=()):
    """The tiny assignment: correlate2d (2 points + 1 for compiled) and output_size (1 point)."""
    cells = [
        _cell("markdown", "# A tiny assignment for the tests"),
        code_cell(SETUP_SRC, grade_id="setup", locked=True),
        code_cell(correlate_src, grade_id="correlate2d", solution=True),
        *extra_cells,
        code_cell(check_src("a1.correlate2d", "correlate2d", 2), grade_id="test_correlate2d", grade=True,
                  locked=True, points=2),
        code_cell('check_compiled("a1.correlate2d", correlate2d, points=1)', grade_id="test_correlate2d_compiled",
                  grade=True, locked=True, points=1),
        code_cell(output_size_src, grade_id="output_size", solution=True),
        code_cell(check_src("a1.output_size", "output_size", 1), grade_id="test_output_size", grade=True,
                  locked=True, points=1),
    ]
    cells = [c for c in cells if c["metadata"].get("nbgrader", {}).get("grade_id") not in drop_tests]
    return {"cells": cells, "nbformat": 4, "nbformat_minor": 4,
            "metadata": {"kernelspec": {"display_name": "Python 3 (ipykernel)", "language": "python",
                                        "name": "python3"},
                         "language_info": {"name": "python"}}}


def make_course_root(tmp: Path, notebooks: dict) -> Path:
    """A course root (solutions/<a>/<a>.ipynb + autograder/nbgrader_config.py) holding `notebooks`."""
    (tmp / "autograder").mkdir(parents=True, exist_ok=True)
    shutil.copyfile(REPO / "autograder" / "nbgrader_config.py", tmp / "autograder" / "nbgrader_config.py")
    for name, nb in notebooks.items():
        d = tmp / "solutions" / name
        d.mkdir(parents=True, exist_ok=True)
        (d / f"{name}.ipynb").write_text(json.dumps(nb, indent=1), encoding="utf-8")
    return tmp


# ------------------------------------------------------------------ in-process execution of notebook code

_counter = [0]


def exec_cells(sources, name="student_notebook"):
    """Run code cell sources, in order, in a fresh module; returns its namespace (like a kernel's).

    A cell that raises is reported in ns['__cell_errors__'] and the next cells still run, as in Jupyter."""
    _counter[0] += 1
    mod = types.ModuleType(f"{name}_{_counter[0]}")
    sys.modules[mod.__name__] = mod
    mod.__dict__["__cell_errors__"] = []
    for i, src in enumerate(sources):
        filename = f"<{mod.__name__} cell {i}>"
        linecache.cache[filename] = (len(src), None, src.splitlines(True), filename)
        try:
            exec(compile(src, filename, "exec"), mod.__dict__)
        except Exception as exc:  # noqa: BLE001 - a notebook goes on after a failing cell
            mod.__dict__["__cell_errors__"].append((i, repr(exc)))
    return mod.__dict__


def notebook_code(nb, replace=None, skip_tests=True, skip_free=True, only=None):
    """Code sources of a notebook: read-only and solution cells (not the test cells, not the free ones).

    only: if given, the grade_ids of the solution cells to keep (read-only cells are always kept)."""
    out = []
    for cell in nb["cells"]:
        if cell["cell_type"] != "code":
            continue
        meta = cell.get("metadata", {}).get("nbgrader", {})
        if skip_tests and meta.get("grade") and not meta.get("solution"):
            continue
        if meta.get("solution") and only is not None and meta.get("grade_id") not in only:
            continue
        if skip_free and not meta:
            continue
        src = cell["source"]
        src = "".join(src) if isinstance(src, list) else src
        if replace and meta.get("grade_id") in replace:
            src = replace[meta["grade_id"]]
        out.append(src)
    return out


def graded_cells(nb):
    """[(grade_id, points, source)] of the notebook's test cells."""
    out = []
    for cell in nb["cells"]:
        meta = cell.get("metadata", {}).get("nbgrader", {})
        if meta.get("grade") and not meta.get("solution") and cell["cell_type"] == "code":
            src = cell["source"]
            out.append((meta["grade_id"], float(meta["points"]), "".join(src) if isinstance(src, list) else src))
    return out


def run_graded_cell(ns, source, hidden=True):
    """Evaluate a test cell in namespace ns like the autograder does; returns (score, printed text)."""
    import contextlib
    import io

    lines = source.splitlines()
    if not hidden:
        keep, skipping = [], False
        for ln in lines:
            if "BEGIN HIDDEN TESTS" in ln:
                skipping = True
            elif "END HIDDEN TESTS" in ln:
                skipping = False
            elif not skipping:
                keep.append(ln)
        lines = keep
    body, last = "\n".join(lines[:-1]), lines[-1]
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        try:
            exec(body, ns)
            score = eval(last, ns)
        except Exception as exc:  # noqa: BLE001 - an error output: nbgrader gives the cell 0
            return 0.0, buf.getvalue() + f"\n{type(exc).__name__}: {exc}"
    return score, buf.getvalue()


RUNNER = """
import json, sys
sys.path.insert(0, sys.argv[1])
from course_helpers import exec_cells, run_graded_cell
spec = json.load(sys.stdin)
ns = exec_cells(spec["sources"])
out = []
for hidden in spec["hiddens"]:
    for gid, src in spec["tests"]:
        score, text = run_graded_cell(ns, src, hidden=hidden)
        out.append([gid, hidden, score, text])
print("@@RESULT@@" + json.dumps(out))
"""


def run_graded_in_subprocess(sources, tests, hiddens=(True,), env=None, timeout=900):
    """Like exec_cells + run_graded_cell, in a fresh Python (e.g. with NUMBA_ENABLE_CUDASIM=1 set
    before Numba is imported).  tests: [(grade_id, source)]; returns {(grade_id, hidden): (score, text)}."""
    import os
    import subprocess

    full_env = {**os.environ, **(env or {})}
    proc = subprocess.run([sys.executable, "-c", RUNNER, str(Path(__file__).parent)],
                          input=json.dumps({"sources": sources, "tests": tests, "hiddens": list(hiddens)}),
                          capture_output=True, text=True, env=full_env, timeout=timeout)
    marker = proc.stdout.rfind("@@RESULT@@")
    if proc.returncode != 0 or marker < 0:
        raise RuntimeError(f"runner failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    rows = json.loads(proc.stdout[marker + len("@@RESULT@@"):])
    return {(gid, hidden): (score, text) for gid, hidden, score, text in rows}


NEEDS_SIMULATOR = {"a4_gpu"}


def run_graded(assignment, sources, tests, hiddens=(True,)):
    """Run a notebook's code once, then its graded cells (with and/or without the hidden tests):
    in-process, or in a subprocess with the CUDA simulator for the GPU assignment.
    Returns {(grade_id, hidden): (score, printed text)}."""
    if assignment in NEEDS_SIMULATOR:
        return run_graded_in_subprocess(sources, tests, hiddens, env={"NUMBA_ENABLE_CUDASIM": "1"})
    ns = exec_cells(sources)
    return {(gid, hidden): run_graded_cell(ns, src, hidden=hidden) for hidden in hiddens for gid, src in tests}
