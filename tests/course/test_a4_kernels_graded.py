"""Assignment 4 through the batch grader: the kernels are tested as kernels (issue 13, finding 1).

One submission of a student who writes no GPU code, made from the instructor's solution: each host
function computes its answer with NumPy and then launches a kernel with one thread per output, and

- `max_pool2d_kernel` and `conv2d_tiled_kernel` do nothing (before the grader launched the kernels
  itself, a host function like this with a do-nothing kernel got full marks);
- `conv2d_kernel` is a Python object that answers `kernel[blocks, threads]` with a NumPy function
  writing the right values into `out`, and the notebook patches minicnn's "is it a kernel" test in
  its own process, where the grader's launch runs.

It must score 0 on every part.  (a4 runs on the CUDA simulator: about a minute and a half.)
"""
from __future__ import annotations

import json
import shutil
import textwrap

import pytest

from minicnn.grader import batch
from minicnn.grader.locate import course_root

ASSIGNMENT = "a4_gpu"

NUMPY_CONV = """
n, c, h, wd = x.shape
k, _, kh, kw = w.shape
xp = np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)))
out = np.zeros((n, k, (h + 2 * padding - kh) // stride + 1, (wd + 2 * padding - kw) // stride + 1))
for i in range(out.shape[2]):
    for j in range(out.shape[3]):
        window = xp[:, :, i * stride:i * stride + kh, j * stride:j * stride + kw]
        out[:, :, i, j] = np.tensordot(window, w, axes=([1, 2, 3], [1, 2, 3])) + b
"""

NUMPY_HOST_CONV = NUMPY_CONV + """
blocks = (out.size + THREADS_PER_BLOCK - 1) // THREADS_PER_BLOCK
conv2d_kernel[blocks, THREADS_PER_BLOCK](cuda.to_device(xp), cuda.to_device(w), cuda.to_device(b),
                                         cuda.device_array(out.shape), stride)
return out
"""

NUMPY_HOST_POOL = """
n, c, h, wd = x.shape
out = np.zeros((n, c, (h - k) // stride + 1, (wd - k) // stride + 1))
for i in range(out.shape[2]):
    for j in range(out.shape[3]):
        out[:, :, i, j] = x[:, :, i * stride:i * stride + k, j * stride:j * stride + k].max(axis=(2, 3))
blocks = (out.size + THREADS_PER_BLOCK - 1) // THREADS_PER_BLOCK
max_pool2d_kernel[blocks, THREADS_PER_BLOCK](cuda.to_device(x), cuda.device_array(out.shape), k, stride)
return out
"""

FAKE_KERNEL_CELL = '''
import minicnn.course.inspection as _inspection
_inspection.is_cuda_kernel = lambda f: True   # the adapter's own test, patched in this process


class _Launcher:
    """kernel[blocks, threads](xp, w, b, out, stride), computed with NumPy."""

    def __getitem__(self, config):
        def launch(xp, w, b, out, stride):
            xp, w, b = (np.asarray(getattr(a, "copy_to_host", lambda: a)()) for a in (xp, w, b))
            n, k, oh, ow = out.shape
            result = np.zeros((n, k, oh, ow))
            for i in range(oh):
                for j in range(ow):
                    window = xp[:, :, i * stride:i * stride + w.shape[2], j * stride:j * stride + w.shape[3]]
                    result[:, :, i, j] = np.tensordot(window, w, axes=([1, 2, 3], [1, 2, 3])) + b
            out.copy_to_device(result)
        return launch


conv2d_kernel = _Launcher()
'''


def _body(source: str, code: str) -> str:
    """`source` with the lines between the solution markers replaced by `code` (indented as they were)."""
    lines = source.splitlines(keepends=True)
    begin = next(i for i, ln in enumerate(lines) if "### BEGIN SOLUTION" in ln)
    end = next(i for i, ln in enumerate(lines) if "### END SOLUTION" in ln)
    indent = lines[begin][:len(lines[begin]) - len(lines[begin].lstrip())]
    return "".join(lines[:begin + 1]) + textwrap.indent(textwrap.dedent(code).strip("\n") + "\n", indent) \
        + "".join(lines[end:])


def _variant(solution: dict, cells: dict) -> dict:
    nb = json.loads(json.dumps(solution))
    for cell in nb["cells"]:
        gid = cell["metadata"].get("nbgrader", {}).get("grade_id")
        if gid in cells:
            src = "".join(cell["source"])
            cell["source"] = cells[gid](src)
    assert all(any(c["metadata"].get("nbgrader", {}).get("grade_id") == g for c in nb["cells"]) for g in cells)
    return nb


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    source = course_root() / "solutions" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb"
    solution = json.loads(source.read_text(encoding="utf-8"))
    noop = "t = cuda.grid(1)  # and nothing else\n"
    students = {"no_gpu_code": _variant(solution, {
        "conv2d_kernel": lambda s: FAKE_KERNEL_CELL, "max_pool2d_kernel": lambda s: _body(s, noop),
        "conv2d_tiled_kernel": lambda s: _body(s, "i = cuda.threadIdx.x  # and nothing else\n"),
        "conv2d_gpu": lambda s: _body(s, NUMPY_HOST_CONV), "max_pool2d_gpu": lambda s: _body(s, NUMPY_HOST_POOL)})}
    course = tmp_path_factory.mktemp("a4-class")
    for student, nb in students.items():
        folder = course / "submitted" / student / ASSIGNMENT
        folder.mkdir(parents=True)
        (folder / f"{ASSIGNMENT}.ipynb").write_text(json.dumps(nb, indent=1), encoding="utf-8")
    report = batch.grade_batch(ASSIGNMENT, course, jobs=2, progress=False, log=lambda *a: None)
    yield {r["student"]: r for r in report["records"]}
    shutil.rmtree(course, ignore_errors=True)


def _scores(rec) -> dict:
    return {p["grade_id"]: p["score"] for p in rec["parts"]}


def _why(rec) -> list:
    return [(p["grade_id"], p["score"], p["lines"][:3]) for p in rec["parts"]] + [rec["reason"], rec["cell_errors"]]


def test_a_submission_without_gpu_code_earns_nothing(graded):
    rec = graded["no_gpu_code"]
    assert not rec["cell_errors"], rec["cell_errors"]
    scores = _scores(rec)
    assert set(scores) == {"test_conv2d_kernel", "test_conv2d_kernel_is_cuda", "test_conv2d_gpu",
                           "test_max_pool2d_kernel", "test_max_pool2d_kernel_is_cuda", "test_max_pool2d_gpu",
                           "test_conv2d_tiled_kernel"}
    assert sum(scores.values()) == 0, _why(rec)
    lines = {p["grade_id"]: "\n".join(p["lines"]) for p in rec["parts"]}
    # the do-nothing kernels left the grader's NaN in place
    assert "never written" in lines["test_max_pool2d_kernel"], lines["test_max_pool2d_kernel"]
    assert "never written" in lines["test_conv2d_tiled_kernel"], lines["test_conv2d_tiled_kernel"]
    # the object posing as a kernel is refused from the source, whatever its process says
    assert "not a @cuda.jit kernel" in lines["test_conv2d_kernel"], lines["test_conv2d_kernel"]
    # the host functions' answers are right, but they are not what the (stand-in) kernel wrote
    assert "not what the kernel wrote" in lines["test_conv2d_gpu"], lines["test_conv2d_gpu"]
    assert "not what the kernel wrote" in lines["test_max_pool2d_gpu"], lines["test_max_pool2d_gpu"]
