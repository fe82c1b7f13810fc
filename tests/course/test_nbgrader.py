"""Real nbgrader 0.9.6 on a tiny assignment built from the course's checks: each way nbgrader goes
wrong on Numba code, and the setting or check that handles it (autograder/nbgrader_config.py).

One `nbgrader autograde` run grades several submissions at once to keep this short; the hang
at top level needs its own runs (a short cell timeout, and the default behaviour as a control).
"""
import json
import os
import re
import subprocess
import sys

import pytest

pytest.importorskip("nbgrader")

from course_helpers import (CORRELATE_SRC, HIDDEN_SEED, OUTPUT_SIZE_SRC, code_cell,  # noqa: E402
                            make_course_root, tiny_notebook)
from minicnn.course.notebook import read_notebook  # noqa: E402
from minicnn.grader import locate, nbg  # noqa: E402

A = "t1_tiny"

NOISY_OUTPUT_SIZE = """\
import sys, warnings
@njit(parallel=True)
def _helper(x):            # parallel=True with nothing to parallelise: a NumbaPerformanceWarning
    return x[0] + 1.0
def output_size(n, k, stride=1, padding=0):
    print("debug output on stderr", file=sys.stderr)
    warnings.warn("a warning raised while grading")
    _helper(np.zeros(3))
    return (n + 2 * padding - k) // stride + 1
"""

HANGING_CORRELATE = """\
@njit
def correlate2d(image, kernel, stride, padding):
    i = 0
    while image.shape[0] > 0:   # an endless compiled loop: Jupyter's interrupt cannot stop it
        i += 1
    return np.zeros((1, 1))
"""

OOB_CORRELATE = CORRELATE_SRC.replace("out[i, j] = total", "out[i + 1, j] = total")

SPIN_CELL = """\
@njit
def spin(x):
    i = 0
    while x[0] >= 0:
        i += 1
    return i
spin(np.ones(1))    # a student's own try-it cell that never finishes
"""

SCRIBBLE_CELL = """\
@njit
def scribble(x):
    for i in range(1000000):
        x[i] = 1.0      # far past the end of x
    return x
scribble(np.zeros(4))
"""


def _scores(course, student):
    return {k: (v.score, v.max_score) for k, v in course.scores(A, student).items()}


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    root = make_course_root(tmp_path_factory.mktemp("root"), {A: tiny_notebook()})
    course = nbg.CourseDir(tmp_path_factory.mktemp("course"), root)
    course.add_source(A)
    release = course.generate(A)
    submissions = {
        "good": tiny_notebook(),
        "release": read_notebook(release / f"{A}.ipynb"),
        "noisy": tiny_notebook(output_size_src=NOISY_OUTPUT_SIZE),
        "deleted": tiny_notebook(drop_tests=("test_output_size", "test_correlate2d_compiled")),
        "hang_in_check": tiny_notebook(correlate_src=HANGING_CORRELATE),
        "oob": tiny_notebook(correlate_src=OOB_CORRELATE, extra_cells=[code_cell(SCRIBBLE_CELL)]),
    }
    for student, nb in submissions.items():
        course.submit(A, student, nb)
    course.autograde(A)
    return course, root, release


def test_solution_full_marks_release_zero(graded):
    course, _, _ = graded
    assert _scores(course, "good") == {"test_correlate2d": (2.0, 2.0), "test_correlate2d_compiled": (1.0, 1.0),
                                       "test_output_size": (1.0, 1.0)}
    assert all(s == 0 for s, _ in _scores(course, "release").values())


def test_stderr_in_a_test_cell_scores_it_zero_in_nbgrader():
    """The nbgrader behaviour: one line on stderr and the cell gets nothing."""
    from nbgrader.utils import determine_grade
    from nbformat.v4 import new_code_cell, new_output

    meta = {"nbgrader": {"grade": True, "solution": False, "points": 2, "grade_id": "t", "locked": True,
                         "schema_version": 3}}
    cell = new_code_cell("check(...)", metadata=meta)
    cell.outputs = [new_output("stream", name="stdout", text="all good\n"),
                    new_output("stream", name="stderr", text="NumbaPerformanceWarning: ...\n")]
    assert determine_grade(cell) == (0, 2.0)
    cell.outputs = [new_output("stream", name="stdout", text="all good\n"),
                    new_output("execute_result", data={"text/plain": "1.5"}, execution_count=1)]
    assert determine_grade(cell) == (1.5, 2.0)


def test_warnings_and_stderr_from_student_code_do_not_cost_points(graded):
    course, _, _ = graded
    assert _scores(course, "noisy")["test_output_size"] == (1.0, 1.0)
    text = course.cell_output(A, "noisy", "test_output_size")
    assert "a warning raised while grading" in text
    nb = course.autograded_notebook(A, "noisy")
    for cell in nb["cells"]:
        if cell.get("metadata", {}).get("nbgrader", {}).get("grade"):
            assert not [o for o in cell.get("outputs", []) if o.get("name") == "stderr"]


def test_deleted_test_cells_come_back(graded):
    course, _, _ = graded
    scores = _scores(course, "deleted")
    assert scores["test_output_size"] == (1.0, 1.0)
    assert scores["test_correlate2d_compiled"] == (1.0, 1.0)


def test_a_hang_inside_a_check_costs_only_that_part(graded):
    course, _, _ = graded
    scores = _scores(course, "hang_in_check")
    assert scores["test_correlate2d"][0] == 0 and scores["test_correlate2d_compiled"][0] == 0
    assert scores["test_output_size"] == (1.0, 1.0)
    assert "did not finish within" in course.cell_output(A, "hang_in_check", "test_correlate2d")


def test_out_of_bounds_writes_raise_index_error_instead_of_killing_the_kernel(graded):
    course, _, _ = graded
    scores = _scores(course, "oob")
    assert scores["test_correlate2d"][0] < 2
    assert scores["test_output_size"] == (1.0, 1.0)  # the kernel survived the top-level scribble
    assert "IndexError" in course.cell_output(A, "oob", "test_correlate2d")
    nb = course.autograded_notebook(A, "oob")
    errors = [o for c in nb["cells"] for o in c.get("outputs", []) if o.get("output_type") == "error"]
    assert any(o["ename"] == "IndexError" for o in errors)


def test_feedback_hides_the_hidden_tests(graded):
    course, _, _ = graded
    html = (course.feedback(A, "good") / "good" / A / f"{A}.html").read_text(encoding="utf-8")
    assert "checks pass" in html  # the checks' output is there
    assert "HIDDEN TESTS" not in html and str(HIDDEN_SEED) not in html


def test_a_hang_at_top_level_no_longer_sinks_the_submission(graded, tmp_path):
    course, root, _ = graded
    cells = [code_cell(SPIN_CELL)]
    nb = tiny_notebook(extra_cells=())
    nb["cells"].insert(len(nb["cells"]) - 2, cells[0])  # before output_size's cells
    short = ["--Execute.timeout=10"]
    course.submit(A, "hang_top", nb)
    course.run("autograde", A, "--force", "--create", "--student=hang_top", *short)
    scores = _scores(course, "hang_top")
    assert scores["test_correlate2d"] == (2.0, 2.0)   # graded before the hang
    assert scores["test_output_size"][0] == 0          # not run after it, but the submission has a score
    assert "KernelStuckError" in course.cell_output(A, "hang_top", "test_output_size")
    # the control: nbgrader's default (raise_on_iopub_timeout=True) gives up on the whole submission
    course.submit(A, "hang_top_default", nb)
    proc = course.run("autograde", A, "--force", "--create", "--student=hang_top_default", *short,
                      "--Execute.raise_on_iopub_timeout=True", check=False)
    assert proc.returncode != 0
    assert all(score is None for score, _ in _scores(course, "hang_top_default").values())  # no score at all
    assert not (course.path / "autograded" / "hang_top_default" / A / f"{A}.ipynb").exists()


def test_validate_exits_zero_on_failure_but_minicnn_course_validate_does_not(graded, tmp_path):
    course, root, release = graded
    nb = tmp_path / f"{A}.ipynb"
    nb.write_text((release / f"{A}.ipynb").read_text(encoding="utf-8"), encoding="utf-8")
    env = nbg.nbgrader_env()
    proc = subprocess.run([sys.executable, "-m", "nbgrader", "validate", str(nb)], capture_output=True, text=True,
                          env=env, cwd=tmp_path, timeout=600)
    assert proc.returncode == 0 and "VALIDATION FAILED" in proc.stdout
    proc = subprocess.run([sys.executable, "-m", "minicnn", "course", "validate", str(nb)], capture_output=True,
                          text=True, env=env, cwd=tmp_path, timeout=600)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "fall short" in proc.stdout


def test_a_new_gradebook_finds_alembic_without_the_venv_on_path(tmp_path):
    env = {"HOME": os.environ.get("HOME", str(tmp_path)), "PATH": "/usr/bin:/bin"}
    plain = tmp_path / "plain"
    plain.mkdir()
    (plain / "nbgrader_config.py").write_text("c = get_config()\n")
    proc = subprocess.run([sys.executable, "-m", "nbgrader", "db", "student", "list"], cwd=plain, env=env,
                          capture_output=True, text=True, timeout=300)
    if proc.returncode == 0:
        pytest.skip("alembic is on the system PATH here; the failure cannot be shown")
    assert "alembic" in proc.stderr
    ours = tmp_path / "ours"
    ours.mkdir()
    (ours / "nbgrader_config.py").write_text(nbg.config_file(locate.course_root()).read_text())
    proc = subprocess.run([sys.executable, "-m", "nbgrader", "db", "student", "list"], cwd=ours, env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr


def test_grade_command_prints_the_table_and_writes_feedback(graded, tmp_path):
    course, root, release = graded
    nb = tmp_path / f"{A}.ipynb"
    nb.write_text(json.dumps(tiny_notebook(output_size_src=OUTPUT_SIZE_SRC.replace("+ 1", "+ 2"))))
    env = {**nbg.nbgrader_env(), "MINICNN_COURSE_DIR": str(root)}
    proc = subprocess.run([sys.executable, "-m", "minicnn", "course", "grade", str(nb), "--details"],
                          capture_output=True, text=True, env=env, cwd=tmp_path, timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert re.search(r"test_correlate2d\s+2 / 2", proc.stdout), proc.stdout
    assert "test_output_size" in proc.stdout and "autograded: 3 of 4 points" in proc.stdout
    assert "hint:" in proc.stdout
    assert (tmp_path / f"{A}-feedback.html").exists()
