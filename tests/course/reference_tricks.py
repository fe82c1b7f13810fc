"""Submissions that reach minicnn's reference kernels another way (issue 13, finding 2).

Each trick is written as a dishonest student would, for assignment 2's `conv2d` and
assignment 3's `conv2d_backward`: the loop kernels of minicnn.kernels.loops do the work.
Before the fix, the first three got full marks on both assignments with no flag.

- renamed:       the kernels' `py_func.__module__` set to the notebook's, then called from @njit code
- default_arg:   the kernels held as default arguments of plain Python functions
- fresh_load:    minicnn/kernels/loops.py loaded afresh with importlib.util.spec_from_file_location
                 (every name built from strings), called from @njit code
- pasted:        minicnn/kernels/loops.py's source pasted into a cell
- at_call:       looked up at call time: sys.modules for conv2d, a fresh load for conv2d_backward
- held_by_object: the kernels kept as attributes of an object of the student's class, read at call
                 time (`box.fwd`); the static inspection did not follow objects until 2026-12-03
"""
from __future__ import annotations

import inspect
import json
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
HIDDEN_SEED = 4242
FULL = {"test_conv2d": 4.0, "test_conv2d_compiled": 1.0, "test_grad_input": 3.0, "test_conv2d_backward_compiled": 1.0}

SETUP = """\
import os
import numpy as np
from numba import njit
from minicnn.course.checks import check, check_compiled
"""

# ---------------------------------------------------------------- how each trick gets hold of the loops
IMPORT_LOOPS = '_L = __import__("minicnn.kern" + "els.loops", fromlist=["conv2d_forward"])\n'
FRESH_LOOPS = """\
_util = __import__("importlib" + ".util", fromlist=["spec_from_file_location"])
_pkg = __import__("mini" + "cnn")
_spec = _util.spec_from_file_location("my_loops", os.path.join(os.path.dirname(_pkg.__file__), "kernels", "loops.py"))
_L = _util.module_from_spec(_spec)
_spec.loader.exec_module(_L)
"""
NAMES = "fwd, bwd_in, bwd_w, bwd_b = _L.conv2d_forward, _L.conv2d_backward_input, _L.conv2d_backward_weight, " \
        "_L.bias_backward\n"
RENAME = "for _f in (fwd, bwd_in, bwd_w, bwd_b):\n    _f.py_func.__module__ = __name__\n"

# ---------------------------------------------------------------- the graded functions around them
FORWARD = """\
{decorator}def conv2d(x, w, b, stride, padding, dilation{extra}):
{prelude}    n, c, h, wd = x.shape
    xp = np.zeros((n, c, h + 2 * padding, wd + 2 * padding))
    xp[:, :, padding:padding + h, padding:padding + wd] = x
    kh, kw = w.shape[2], w.shape[3]
    oh = (h + 2 * padding - dilation * (kh - 1) - 1) // stride + 1
    ow = (wd + 2 * padding - dilation * (kw - 1) - 1) // stride + 1
    return fwd(xp, w, b, stride, stride, dilation, dilation, oh, ow)
"""
BACKWARD = """\
{decorator}def conv2d_backward(grad_out, x, w, stride, padding{extra}):
{prelude}    n, c, h, wd = x.shape
    xp = np.zeros((n, c, h + 2 * padding, wd + 2 * padding))
    xp[:, :, padding:padding + h, padding:padding + wd] = x
    gxp = bwd_in(grad_out, w, stride, stride, 1, 1, h + 2 * padding, wd + 2 * padding)
    gx = gxp[:, :, padding:padding + h, padding:padding + wd].copy()
    return gx, bwd_w(grad_out, xp, w.shape[2], w.shape[3], stride, stride, 1, 1), bwd_b(grad_out)
"""
DEFAULTS = ", fwd=_L.conv2d_forward", ", bwd_in=_L.conv2d_backward_input, bwd_w=_L.conv2d_backward_weight, " \
                                      "bwd_b=_L.bias_backward"
SYS_LOOKUP = '    _L = __import__("s" + "ys").modules["minicnn.kernels.loops"]\n    fwd = _L.conv2d_forward\n'
HELD_BY_OBJECT = ("class _Box:\n    pass\nbox = _Box()\n"
                  "box.fwd, box.bwd_in, box.bwd_w, box.bwd_b = fwd, bwd_in, bwd_w, bwd_b\n"
                  "del fwd, bwd_in, bwd_w, bwd_b\n")
FROM_THE_BOX = ("    fwd = box.fwd\n", "    bwd_in, bwd_w, bwd_b = box.bwd_in, box.bwd_w, box.bwd_b\n")
FRESH_AT_CALL = "".join("    " + line + "\n" for line in FRESH_LOOPS.splitlines()) + "    " + NAMES


def _pair(decorator="", extra=("", ""), prelude=("", "")):
    return (FORWARD.format(decorator=decorator, extra=extra[0], prelude=prelude[0]),
            BACKWARD.format(decorator=decorator, extra=extra[1], prelude=prelude[1]))


def _loops_source() -> str:
    from minicnn.kernels import loops

    return inspect.getsource(loops)


def trick_cells() -> dict:
    """{student: (cell before the functions, conv2d cell, conv2d_backward cell)}"""
    return {
        "renamed": (IMPORT_LOOPS + NAMES + RENAME, *_pair("@njit\n")),
        "default_arg": (IMPORT_LOOPS, *_pair(extra=DEFAULTS)),
        "fresh_load": (FRESH_LOOPS + NAMES, *_pair("@njit\n")),
        "pasted": (_loops_source() + "fwd, bwd_in, bwd_w, bwd_b = conv2d_forward, conv2d_backward_input, "
                   "conv2d_backward_weight, bias_backward\n", *_pair("@njit\n")),
        "at_call": ("", *_pair(prelude=(SYS_LOOKUP, FRESH_AT_CALL))),
        "held_by_object": (IMPORT_LOOPS + NAMES + HELD_BY_OBJECT, *_pair(prelude=FROM_THE_BOX)),
    }


# ---------------------------------------------------------------- the notebooks
def _solution_cell(assignment: str, grade_id: str) -> str:
    nb = json.loads((REPO / "solutions" / assignment / f"{assignment}.ipynb").read_text(encoding="utf-8"))
    for cell in nb["cells"]:
        if cell.get("metadata", {}).get("nbgrader", {}).get("grade_id") == grade_id:
            return "".join(cell["source"])
    raise KeyError(grade_id)


def _cell(source, **meta):
    cell = {"cell_type": "code", "execution_count": None, "outputs": [], "metadata": {}, "source": source}
    if meta:
        nbg = {"grade": False, "locked": False, "schema_version": 3, "solution": False, "task": False}
        nbg.update(meta)
        cell["metadata"] = {"nbgrader": nbg}
    return cell


def _test(part, func, points, grade_id, compiled=False):
    if compiled:
        src = f'check_compiled("{part}", {func}, points={points})'
    else:
        src = (f"seed = 0\n### BEGIN HIDDEN TESTS\nseed = {HIDDEN_SEED}\n### END HIDDEN TESTS\n"
               f'check("{part}", {func}, points={points}, seed=seed)')
    return _cell(src, grade_id=grade_id, grade=True, locked=True, points=points)


def notebook(before: str = "", forward: str | None = None, backward: str | None = None) -> dict:
    """A small notebook with assignment 2's conv2d and assignment 3's conv2d_backward (the
    solutions' code unless given)."""
    forward = _solution_cell("a2_volumes_pooling", "conv2d") if forward is None else forward
    backward = _solution_cell("a3_backprop", "conv2d_backward") if backward is None else backward
    cells = [_cell(SETUP, grade_id="setup", locked=True)]
    if before:
        cells.append(_cell(before))
    cells += [
        _cell(forward, grade_id="conv2d", solution=True),
        _test("a2.conv2d", "conv2d", 4, "test_conv2d"),
        _test("a2.conv2d", "conv2d", 1, "test_conv2d_compiled", compiled=True),
        _cell(backward, grade_id="conv2d_backward", solution=True),
        _test("a3.grad_input", "conv2d_backward", 3, "test_grad_input"),
        _test("a3.grad_input", "conv2d_backward", 1, "test_conv2d_backward_compiled", compiled=True),
    ]
    return {"cells": cells, "nbformat": 4, "nbformat_minor": 4,
            "metadata": {"kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
                         "language_info": {"name": "python"}}}
