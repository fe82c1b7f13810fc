"""The batch grader's pieces, each on its own: the wire format, reading test cells, the
program a submission runs, the static flags, and the sandbox's limits."""
from __future__ import annotations

import json
import struct

import numpy as np
import pytest

from minicnn.course import checks, notebook
from minicnn.grader import outputs, plan, remote
from minicnn.grader.locate import course_root
from minicnn.grader.nbg import ASSIGNMENTS_DIR, assignments
from minicnn.grader.record import Grade, PartGrade
from minicnn.sandbox import isolation, wire


# ----------------------------------------------------------------------------- wire

def test_wire_round_trip_keeps_types_and_values():
    value = (1, -2.5, float("nan"), np.int64(3), np.float32(0.5), True, None, "text",
             [np.arange(6, dtype=np.int32).reshape(2, 3)], {"w": np.ones((2, 2), np.float32), 3: (1, 2)})
    back = wire.decode(wire.encode(value))
    assert isinstance(back, tuple) and len(back) == len(value)
    assert back[0] == 1 and back[1] == -2.5 and np.isnan(back[2])
    assert type(back[3]) is np.int64 and back[3] == 3 and type(back[4]) is np.float32
    assert back[5] is True and back[6] is None and back[7] == "text"
    assert back[8][0].dtype == np.int32 and np.array_equal(back[8][0], value[8][0])
    assert back[9]["w"].dtype == np.float32 and back[9][3] == (1, 2)


def test_wire_turns_objects_into_their_type_name_only():
    class Liar:
        def __eq__(self, other):
            return True

    class Sub(np.ndarray):
        def __eq__(self, other):
            return True

    got = wire.decode(wire.encode([Liar(), np.zeros(3).view(Sub), np.array([object()])]))
    assert isinstance(got[0], wire.Other) and got[0].type_name == "Liar"
    assert type(got[1]) is np.ndarray and got[1].tolist() == [0.0, 0.0, 0.0]  # plain data, no subclass
    assert isinstance(got[2], wire.Other)
    assert checks.compare_arrays(np.zeros(3), got[0])["kind"] == "type"
    assert checks.compare_exact(3, got[0])["kind"] == "type"


def _frame(header: dict, blobs=()) -> bytes:
    head = json.dumps(header).encode()
    out = struct.pack("<I", len(head)) + head + struct.pack("<I", len(blobs))
    for b in blobs:
        out += struct.pack("<Q", len(b)) + b
    return out


@pytest.mark.parametrize("frame, why", [
    (_frame({"t": "nd", "d": "|O", "s": [1], "b": 0}, [b"\0" * 8]), "object dtype"),
    (_frame({"t": "nd", "d": "<f8", "s": [3], "b": 0}, [b"\0" * 16]), "shape does not match the data"),
    (_frame({"t": "nd", "d": "<f8", "s": [-1], "b": 0}, [b""]), "negative shape"),
    (_frame({"t": "nd", "d": "<f8", "s": [1], "b": 5}, [b"\0" * 8]), "blob index out of range"),
    (_frame({"t": "pickle", "v": "gASVCgAAAAAAAACMBnBvc2l4lIwGc3lzdGVtlJOULg=="}), "unknown tag"),
    (_frame({"t": "float", "v": "1e999999999999999999999999999999999999999999999"}), "float text too long"),
    (_frame({"no": "tag"}), "dict without a tag"),
    (b"\x05\x00\x00\x00NaN\x00\x00\x00\x00\x00\x00", "bare NaN / truncated"),
    (_frame({"t": "list", "v": []}) + b"x", "bytes after the value"),
    (_frame({"t": "list", "v": []})[:-2], "truncated"),
])
def test_wire_rejects_malformed_frames(frame, why):
    with pytest.raises(wire.WireError):
        wire.decode(frame)


def test_wire_rejects_deep_nesting():
    node = []
    for _ in range(wire.MAX_DEPTH + 5):
        node = {"t": "list", "v": [node]}
    with pytest.raises(wire.WireError):
        wire.decode(_frame(node))


def test_wire_rejects_json_nested_past_pythons_own_limit():
    """A red-team notebook (2026-12-03) wrote to the runner's reply pipe a header of 100,000 nested
    lists: json.loads raised RecursionError, not a WireError, and `course grade` crashed."""
    head = ("[" * 100_000 + "]" * 100_000).encode()
    frame = struct.pack("<I", len(head)) + head + struct.pack("<I", 0)
    with pytest.raises(wire.WireError, match="nested too deeply"):
        wire.decode(frame)


# ----------------------------------------------------------------------------- test cells, programs

def _load(assignment, where=ASSIGNMENTS_DIR):
    path = course_root() / where / assignment / f"{assignment}.ipynb"
    return json.loads(path.read_text(encoding="utf-8"))


@pytest.mark.parametrize("assignment", assignments())
def test_every_test_cell_of_the_sources_is_read_statically(assignment):
    specs = plan.test_specs(_load(assignment))
    assert specs, assignment
    for spec in specs:
        part = checks.get_part(spec.part)  # a registered part
        assert spec.points > 0 and part.key == spec.part
        if spec.kind == "check":
            assert spec.seed != checks.PUBLIC_SEED, f"{spec.grade_id} grades with the public seed"
    release = _load(assignment, "exercises")
    for cell in notebook.cells_of(release):
        if notebook.is_test_cell(cell):
            assert "HIDDEN" not in notebook.source_text(cell)


def test_parse_test_cell_takes_the_hidden_seed_and_rejects_other_code():
    src = ("seed = 0\n### BEGIN HIDDEN TESTS\nseed = 4127\n### END HIDDEN TESTS\n"
           'check("a1.output_size", output_size, points=2, seed=seed)\n')
    spec = plan.parse_test_cell("t", src)
    assert (spec.part, spec.func, spec.points, spec.seed, spec.kind) == ("a1.output_size", "output_size", 2.0, 4127,
                                                                         "check")
    assert notebook.release_text(src).strip().splitlines() == ["seed = 0", src.strip().splitlines()[-1]]
    spec = plan.parse_test_cell("t", 'check_compiled("a4.conv2d_gpu", conv2d_gpu, points=1, kernel=k)')
    assert spec.kind == "compiled" and spec.kernel == "k"
    with pytest.raises(ValueError):
        plan.parse_test_cell("t", "import os\ncheck('a1.output_size', output_size, points=2)")


def test_program_drops_test_cells_restores_read_only_cells_and_notes_edits():
    source = _load("a1_convolution")
    student = _load("a1_convolution", "exercises")
    cells = student["cells"]
    setup = next(c for c in cells if notebook.nbgrader_meta(c).get("grade_id") == "setup")
    setup["source"] = "import os\nos.environ['X'] = '1'\n"
    test = next(c for c in cells if notebook.nbgrader_meta(c).get("grade_id") == "test_output_size")
    test["source"] = "print(2)"
    student["cells"] = [c for c in cells if notebook.nbgrader_meta(c).get("grade_id") != "test_param_count"]
    student["cells"].append({"cell_type": "code", "metadata": {}, "source": "helper = 1", "outputs": [],
                             "execution_count": None})
    run, notes = plan.program(source, student)
    ids = [c["id"] for c in run]
    assert not any(i.startswith("test_") for i in ids)
    setup_run = next(c for c in run if c["id"] == "setup")
    assert setup_run["trusted"] and "from minicnn.course.checks import" in setup_run["source"]
    assert any("read-only cell setup was edited" in n for n in notes)
    assert any("test cell test_output_size was edited" in n for n in notes)
    assert any("test cell test_param_count was deleted" in n for n in notes)
    assert run[-1]["source"] == "helper = 1" and not run[-1]["trusted"]
    assert not any("show_example(" in c["source"] for c in run)  # the instructor's demo cells are skipped


def test_static_flags_name_the_tampering():
    cells = [{"id": "x", "trusted": False, "source": (
        "import numpy as np, numpy.testing, builtins, ctypes\n"
        "np.allclose = lambda *a, **k: True\n"
        "numpy.testing.assert_allclose = print\n"
        "builtins.len = lambda x: 0\n"
        "get_ipython().input_transformers_cleanup.append(lambda lines: lines)\n"
        "import minicnn.kernels\nminicnn.kernels.KERNELS['loop']['conv2d_forward'] = None\n")},
        {"id": "setup", "trusted": True, "source": "import ctypes"}]
    flags = plan.static_flags(cells)
    text = "\n".join(flags)
    for needle in ("replaces np.allclose", "replaces numpy.testing.assert_allclose", "replaces builtins.len",
                   "input_transformers_cleanup", "imports ctypes (cell x)", "imports minicnn.kernels",
                   "replaces minicnn.kernels.KERNELS"):
        assert needle in text, needle
    assert "(cell setup)" not in text
    assert plan.static_flags([{"id": "y", "trusted": False, "source": "def f(x):\n    return x + 1\n"}]) == []


def test_jit_decorator_is_read_from_the_source():
    cells = [{"id": "a", "source": "@njit\ndef f(x):\n    return x\n\ndef g(x):\n    return x\n"},
             {"id": "b", "source": "@numba.njit(cache=True)\ndef h(x):\n    return x\n%time h(1)\n"}]
    assert plan.decorated_with_jit(cells, "f") and plan.decorated_with_jit(cells, "h")
    assert not plan.decorated_with_jit(cells, "g") and not plan.decorated_with_jit(cells, "missing")


# ----------------------------------------------------------------------------- isolation settings

def test_limits_refuse_less_memory_than_numba_needs():
    with pytest.raises(ValueError, match="memory_mb=512"):
        isolation.Limits(memory_mb=512)


def test_choose_reports_which_isolation_it_uses():
    mode, sentence = isolation.choose("rlimits")
    assert mode == "rlimits" and "resource limits only" in sentence and "your files and network" in sentence
    with pytest.raises(ValueError, match="isolation='docker'"):
        isolation.choose("docker")
    if isolation.bwrap_path():
        mode, sentence = isolation.choose("auto")
        assert mode == "bwrap" and "no network" in sentence


def test_bwrap_command_shows_only_the_package_not_the_course():
    if not isolation.bwrap_path():
        pytest.skip("bubblewrap is not installed")
    from pathlib import Path

    cmd = isolation.bwrap_command("bwrap", Path("/tmp/x"), ["python"], {"A": "1"}, isolation.Limits(),
                                  remote.runner_binds())
    bound = {cmd[i + 1] for i, a in enumerate(cmd) if a in ("--ro-bind", "--bind")}
    root = str(course_root())
    assert str(course_root() / "minicnn") in bound
    assert root not in bound and not any(b.startswith(root + "/solutions") for b in bound)
    assert "--unshare-all" in cmd and "--die-with-parent" in cmd and "--tmpfs" in cmd


def test_feedback_html_escapes_and_carries_no_test_source():
    rec = Grade("<eve>", "a1_convolution", reason="", cell_errors=["cell 3: <b>"], notes=[],
                parts=[PartGrade(grade_id="test_x", part="", title="T", score=1.0, max=2.0,
                                 lines=["  FAIL <script>alert(1)</script>"])])
    page = outputs.feedback_html(rec)
    assert "<script>" not in page and "&lt;script&gt;" in page and "&lt;eve&gt;" in page
    assert "1 of 2" in page


def test_a_call_cut_off_in_time_is_a_timeout_and_a_dead_process_a_crash():
    """"no answer within 12 s (the process was killed)" was reported as a crash, for its word
    "killed" (found 2026-12-02); the kind decides the feedback's hint."""
    for text in ("no answer within 12 s (the process was killed)", "the submission used up its 600 s",
                 "not run: the submission used up its 600 s", "the notebook's cells did not finish within 300 s"):
        assert remote.failed_call(text).status == "timeout", text
    for text in ("the process running your code was killed by signal 9", "the process running your code exited (3)",
                 "the process running your code closed its connection to the grader (it was killed)",
                 "not run: the submission's process died 3 times", "the reply could not be read"):
        out = remote.failed_call(text)
        assert out.status == "crash" and out.error == text, text


def test_an_old_format_notebook_is_named_as_such_with_the_fix():
    v3 = {"nbformat": 3, "nbformat_minor": 0, "metadata": {},
          "worksheets": [{"cells": [{"cell_type": "code", "input": "x = 1", "metadata": {}}]}]}
    with pytest.raises(ValueError, match=r"old notebook format 3 .*nbformat 4"):
        notebook.cells_of(v3)
    with pytest.raises(ValueError, match="no list of cells"):
        notebook.cells_of({"nbformat": 4, "metadata": {}})
