"""Copies caught (minicnn.grader.similarity): winnowed fingerprints of each graded function.

Pure Python, no grading: notebooks are built from the release (exercises/) with solution cells
filled in, then compared.  Submissions here:
- the instructor's solution (tests/course/submissions/correct.ipynb), and a copy of it with every
  name the student chose renamed, new comments and the lines reformatted (ast.unparse plus
  spacing changes): flagged against each other and against the solution;
- minicnn's teaching loops (kernels/loops.py) for max pooling and convolution, renamed the same
  way, pasted into an a2 notebook behind the graded functions: flagged as minicnn's code;
- two independently written a1/a2 solutions in a clearly different style (slices, whole-window
  reductions, while loops, helpers) from the instructor's: not flagged, with each other or with
  the solution.  They are meant to be correct but are not graded here (a batch grade of the a1
  one on a loaded machine gave output_size and param_count full marks; its @njit parts' process
  died, not investigated);
- two untouched templates: not flagged;
- 2000 synthetic students: timed and printed.
"""
from __future__ import annotations

import ast
import builtins
import copy
import csv
import json
import random
import time
from pathlib import Path

import pytest

from course_helpers import REPO
from minicnn import cli
from minicnn.course.notebook import cells_of, nbgrader_meta, read_notebook
from minicnn.grader import fingerprint as fp
from minicnn.grader import outputs
from minicnn.grader import similarity as sim
from minicnn.grader.record import Grade, PartGrade

A1, A2 = "a1_convolution", "a2_volumes_pooling"
SUBMISSIONS = Path(__file__).resolve().parent / "submissions"


def source(a):
    return read_notebook(REPO / "solutions" / a / f"{a}.ipynb")


def release(a):
    return read_notebook(REPO / "exercises" / a / f"{a}.ipynb")


def filled(a, answers: dict) -> dict:
    """The release of `a` with the answer cells named in `answers` ({grade_id: code}) replaced."""
    nb = copy.deepcopy(release(a))
    for cell in cells_of(nb):
        gid = nbgrader_meta(cell).get("grade_id")
        if gid in answers:
            cell["source"] = answers[gid]
    return nb


def answer_cells(nb) -> dict:
    return {nbgrader_meta(c)["grade_id"]: "".join(c["source"]) if isinstance(c["source"], list) else c["source"]
            for c in cells_of(nb) if nbgrader_meta(c).get("solution") and c.get("cell_type") == "code"}


# ----------------------------------------------------------------------------- a copier's disguise

class Renamer(ast.NodeTransformer):
    """Every name the code binds (parameters, locals, helper functions) becomes a new one; the
    graded functions keep their names (the grader calls them by name), numpy and builtins too."""

    def __init__(self, keep=()):
        self.keep, self.names = set(keep), {}

    def new(self, name):
        if name in self.keep or name in dir(builtins) or name in ("np", "njit", "numba", "cuda"):
            return name
        return self.names.setdefault(name, f"q{len(self.names)}_{name[::-1].strip('_')}x")

    def visit_FunctionDef(self, node):
        node.name = self.new(node.name)
        self.generic_visit(node)
        if ast.get_docstring(node):
            node.body[0] = ast.Expr(ast.Constant("a docstring of my own"))
        return node

    def visit_arg(self, node):
        node.arg = self.new(node.arg)
        return node

    def visit_Name(self, node):
        node.id = self.new(node.id)
        return node


def disguise(code: str, keep=()) -> str:
    """Renamed (every bound name), comments replaced, lines reformatted."""
    tree = ast.parse(code)
    renamer = Renamer(keep)
    for node in ast.walk(tree):  # bind the helpers' names first, so calls to them follow
        if isinstance(node, ast.FunctionDef):
            renamer.new(node.name)
    text = ast.unparse(renamer.visit(tree))
    out = []
    for line in text.splitlines():
        line = line.replace(" * ", "*").replace(" + ", "+").replace(", ", ",")
        indent = line[:len(line) - len(line.lstrip())]
        if line.lstrip().startswith(("for ", "def ")):
            out.append(f"{indent}# my own comment about the next line")
        out.append(line)
        out.append("")
    return "\n".join(out) + "\n"


def test_disguise_changes_every_chosen_name():
    code = answer_cells(source(A1))["correlate2d"]
    new = disguise(code, keep={"correlate2d", "zero_pad"})
    names = {n.id for n in ast.walk(ast.parse(new)) if isinstance(n, ast.Name)}
    assert not names & {"padded", "kh", "kw", "out_h", "out_w", "total", "image", "kernel"}
    assert "### BEGIN SOLUTION" not in new and new.count("\n\n") > 5


# ----------------------------------------------------------------------------- independent solutions

# a1, written independently of the instructor's, in another style: slices, whole-window sums
A1_OTHER = {
    "output_size": '''def output_size(n, k, stride=1, padding=0):
    span = n - k + padding * 2
    return 1 + span // stride
''',
    "param_count": '''def param_count(in_channels, out_channels, kernel_size, bias=True):
    size = (kernel_size, kernel_size) if isinstance(kernel_size, int) else tuple(kernel_size)
    weights = size[0] * size[1] * in_channels * out_channels
    return weights + out_channels * int(bool(bias))
''',
    "zero_pad": '''@njit
def zero_pad(image, p):
    rows, cols = image.shape
    canvas = np.zeros((rows + p + p, cols + p + p))
    canvas[p:p + rows, p:p + cols] = image
    return canvas
''',
    "correlate2d": '''@njit
def correlate2d(image, kernel, stride, padding):
    src = zero_pad(image, padding)
    kr, kc = kernel.shape
    rows = 1 + (src.shape[0] - kr) // stride
    cols = 1 + (src.shape[1] - kc) // stride
    result = np.empty((rows, cols))
    r = 0
    while r < rows:
        c = 0
        while c < cols:
            window = src[r * stride:r * stride + kr, c * stride:c * stride + kc]
            result[r, c] = np.sum(window * kernel)
            c += 1
        r += 1
    return result
''',
    "convolve2d": '''@njit
def convolve2d(image, kernel, stride, padding):
    rotated = kernel[::-1, ::-1].copy()   # 180 degrees: both axes reversed
    return correlate2d(image, rotated, stride, padding)
''',
}

# a2, likewise
A2_OTHER = {
    "conv2d": '''@njit
def conv2d(x, w, b, stride, padding, dilation):
    N, C, H, W = x.shape
    K, _, R, S = w.shape
    big = np.zeros((N, C, H + 2 * padding, W + 2 * padding))
    big[:, :, padding:padding + H, padding:padding + W] = x
    reach_r = dilation * (R - 1) + 1      # the dilated kernel's extent
    reach_s = dilation * (S - 1) + 1
    Ho = (big.shape[2] - reach_r) // stride + 1
    Wo = (big.shape[3] - reach_s) // stride + 1
    y = np.empty((N, K, Ho, Wo))
    for img in range(N):
        for f in range(K):
            for r in range(Ho):
                top = r * stride
                for q in range(Wo):
                    left = q * stride
                    patch = big[img, :, top:top + reach_r:dilation, left:left + reach_s:dilation]
                    y[img, f, r, q] = np.sum(patch * w[f]) + b[f]
    return y
''',
    "conv1x1": '''def conv1x1(x, w, b):
    return np.einsum("kc,nchw->nkhw", w, x) + b.reshape(1, -1, 1, 1)
''',
    "max_pool2d": '''@njit
def max_pool2d(x, k, stride):
    N, C, H, W = x.shape
    rows, cols = 1 + (H - k) // stride, 1 + (W - k) // stride
    pooled = np.empty((N, C, rows, cols))
    for img in range(N):
        for ch in range(C):
            plane = x[img, ch]
            for r in range(rows):
                for q in range(cols):
                    pooled[img, ch, r, q] = plane[r * stride:r * stride + k, q * stride:q * stride + k].max()
    return pooled
''',
    "avg_pool2d": '''@njit
def avg_pool2d(x, k, stride):
    N, C, H, W = x.shape
    rows, cols = 1 + (H - k) // stride, 1 + (W - k) // stride
    pooled = np.empty((N, C, rows, cols))
    r = 0
    while r < rows:
        q = 0
        while q < cols:
            block = x[:, :, r * stride:r * stride + k, q * stride:q * stride + k]
            for img in range(N):
                for ch in range(C):
                    pooled[img, ch, r, q] = block[img, ch].mean()
            q += 1
        r += 1
    return pooled
''',
    "layer_table": '''def _slide(n, k, s, p):
    return (n + 2 * p - k) // s + 1


def _conv(shape, spec):
    c, h, w = shape
    k = spec["kernel_size"]
    pad = spec.get("padding", 0)
    pad = (k - 1) // 2 if pad == "same" else pad
    s = spec.get("stride", 1)
    return (spec["filters"], _slide(h, k, s, pad), _slide(w, k, s, pad)), spec["filters"] * (k * k * c + 1)


def _pool(shape, spec):
    k = spec["kernel_size"]
    s = spec.get("stride", k)
    return (shape[0], _slide(shape[1], k, s, 0), _slide(shape[2], k, s, 0)), 0


def _dense(shape, spec):
    fan_in = int(np.prod(shape))
    return (spec["units"],), (fan_in + 1) * spec["units"]


def layer_table(input_chw, layers):
    how = {"conv": _conv, "max_pool": _pool, "avg_pool": _pool}
    table, shape = [], tuple(input_chw)
    for spec in layers:
        shape, params = how.get(spec["type"], _dense)(shape, spec)
        table.append((shape, params))
    return table
''',
}


def _pairs(result, who):
    return [m for m in result.matches if who in (m.a, m.b)]


@pytest.fixture(scope="module")
def a1_class():
    correct = read_notebook(SUBMISSIONS / "correct.ipynb")
    answers = answer_cells(correct)
    funcs = sim.graded_functions(source(A1))
    renamed = {gid: disguise(code, keep=funcs) for gid, code in answers.items()}
    notebooks = {"ann": correct, "bob": filled(A1, renamed), "cay": filled(A1, A1_OTHER),
                 "dan": release(A1), "eve": copy.deepcopy(release(A1))}
    return sim.class_similarity(A1, source(A1), notebooks, release(A1))


def test_renamed_reformatted_copy_is_flagged(a1_class):
    pair = {m.part: m for m in a1_class.matches if {m.a, m.b} == {"ann", "bob"}}
    # the parts with enough code to judge (zero_pad's and output_size's bodies are one or two lines)
    assert {"a1.correlate2d", "a1.convolve2d"} <= set(pair), a1_class.matches
    for m in pair.values():
        assert m.score >= sim.THRESHOLD and m.shared >= sim.MIN_SHARED
        assert m.evidence and m.excerpt_a and m.excerpt_b
    # the disguised copy is also the instructor's solution
    assert any(m.a == "bob" and m.b == "solution" and m.part == "a1.correlate2d" for m in a1_class.matches)
    flags = sim.flags(a1_class)
    assert any("similar to bob's" in f for f in flags["ann"]) and any("similar to ann's" in f for f in flags["bob"])


def test_independent_solution_and_templates_not_flagged(a1_class):
    assert not _pairs(a1_class, "cay"), _pairs(a1_class, "cay")
    assert not _pairs(a1_class, "dan") and not _pairs(a1_class, "eve"), a1_class.matches


def test_independent_a2_solutions_not_flagged():
    notebooks = {"cay": filled(A2, A2_OTHER), "sol": filled(A2, answer_cells(source(A2)))}
    res = sim.class_similarity(A2, source(A2), notebooks, release(A2))
    assert not _pairs(res, "cay"), [(m.a, m.b, m.part, m.score) for m in _pairs(res, "cay")]
    # the instructor's own solution, handed in, is caught as the solution (not as minicnn's kernels)
    hits = {(m.b, m.part) for m in res.matches if m.a == "sol"}
    assert ("solution", "a2.conv2d") in hits and not any(b.startswith("minicnn:") for b, _ in hits), hits


def _loops_function(name: str) -> str:
    path = Path(fp.PACKAGE_DIR) / "kernels" / "loops.py"
    text = path.read_text(encoding="utf-8")
    for node in ast.parse(text).body:
        if isinstance(node, ast.FunctionDef) and node.name == name:
            return ast.get_source_segment(text, node)
    raise LookupError(name)


def test_minicnn_loops_pasted_and_renamed_are_flagged():
    pool = disguise(_loops_function("max_pool2d_forward"))
    conv = disguise(_loops_function("conv2d_forward"))
    helper_pool = next(n.name for n in ast.parse(pool).body if isinstance(n, ast.FunctionDef))
    helper_conv = next(n.name for n in ast.parse(conv).body if isinstance(n, ast.FunctionDef))
    answers = {
        "max_pool2d": f"""@njit
{pool}
@njit
def max_pool2d(x, k, stride):
    out_h = (x.shape[2] - k) // stride + 1
    out_w = (x.shape[3] - k) // stride + 1
    return {helper_pool}(x, k, k, stride, stride, out_h, out_w)
""",
        "conv2d": f"""{conv}
@njit
def conv2d(x, w, b, stride, padding, dilation):
    xp = np.zeros((x.shape[0], x.shape[1], x.shape[2] + 2 * padding, x.shape[3] + 2 * padding))
    xp[:, :, padding:padding + x.shape[2], padding:padding + x.shape[3]] = x
    oh = (xp.shape[2] - dilation * (w.shape[2] - 1) - 1) // stride + 1
    ow = (xp.shape[3] - dilation * (w.shape[3] - 1) - 1) // stride + 1
    return {helper_conv}(xp, w, b, stride, stride, dilation, dilation, oh, ow)
""",
    }
    notebooks = {"fay": filled(A2, answers), "cay": filled(A2, A2_OTHER)}
    res = sim.class_similarity(A2, source(A2), notebooks, release(A2))
    hits = {m.part: m for m in res.matches if m.a == "fay" and m.b == "minicnn:kernels/loops.py"}
    assert {"a2.max_pool2d", "a2.conv2d"} <= set(hits), [(m.a, m.b, m.part, m.score) for m in res.matches]
    assert "kernels/loops.py" in hits["a2.max_pool2d"].evidence
    flags = sim.flags(res)["fay"]
    assert any("copied from minicnn's reference code (kernels/loops.py)" in f for f in flags)
    assert not _pairs(res, "cay")


def test_normalise_ignores_names_comments_docstrings_layout():
    one = "def f(a, b):\n    '''doc'''\n    # note\n    return a * (b + 1)\n"
    two = "def g(x,\n      y):\n    return x*(y+\n             7)  # other\n\n\n"
    assert [s for s, _ in fp.normalise(one)] == [s for s, _ in fp.normalise(two)]
    assert [s for s, _ in fp.normalise("x = 'a'\n")] == ["V", "=", "S"]


def test_csv_written(tmp_path, a1_class):
    path = sim.write_csv(sim.csv_path(tmp_path, A1), a1_class)
    rows = list(csv.DictReader(path.open(encoding="utf-8")))
    assert rows and set(rows[0]) == {"student_a", "student_b", "part", "score", "jaccard", "shared", "evidence"}
    assert any(r["student_b"] == "solution" for r in rows)
    assert all(float(r["score"]) >= sim.THRESHOLD for r in rows)


# ----------------------------------------------------------------------------- a class of thousands

def _synthetic(rng: random.Random, variant: int) -> str:
    """A correlate2d of one of several shapes, with the student's own names and extra lines."""
    names = [f"{rng.choice('abcdefgh')}{rng.randrange(10**6)}" for _ in range(8)]
    a, b, c, d, e, f, g, h = names
    body = [
        f"    {a} = zero_pad(image, padding)",
        f"    {b}, {c} = kernel.shape",
        f"    {d} = ({a}.shape[0] - {b}) // stride + 1",
        f"    {e} = ({a}.shape[1] - {c}) // stride + 1",
        f"    {f} = np.zeros(({d}, {e}))",
    ]
    loops = [
        [f"    for {g} in range({d}):", f"        for {h} in range({e}):",
         f"            {f}[{g}, {h}] = np.sum({a}[{g} * stride:{g} * stride + {b}, {h} * stride:{h} * stride + {c}]"
         f" * kernel)"],
        [f"    {g} = 0", f"    while {g} < {d}:", f"        for {h} in range({e}):",
         f"            {f}[{g}, {h}] = ({a}[{g}*stride:{g}*stride+{b}, {h}*stride:{h}*stride+{c}] * kernel).sum()",
         f"        {g} += 1"],
    ][variant % 2]
    def expression():   # a random formula: its operators and shape differ from student to student
        terms = [rng.choice(names + ["stride", "padding", "1", "2"]) for _ in range(rng.randrange(3, 7))]
        text = terms[0]
        for term in terms[1:]:
            text = f"{text} {rng.choice('+-*%')} {term}" if rng.random() < 0.6 else f"({text}) // {term}"
        return text
    extra = [f"    {rng.choice(names)}_{i} = {expression()}" for i in range(rng.randrange(4, 9))]
    return "@njit\ndef correlate2d(image, kernel, stride, padding):\n" + "\n".join(body + extra + loops) + \
        f"\n    return {f}\n"


def test_two_thousand_students_in_seconds(capsys):
    rng = random.Random(12)
    notebooks = {f"s{i:04d}": filled(A1, {"correlate2d": _synthetic(rng, i)}) for i in range(2000)}
    notebooks["s0001"] = notebooks["s0000"]   # one real copy among them
    t0 = time.perf_counter()
    res = sim.class_similarity(A1, source(A1), notebooks, release(A1))
    seconds = time.perf_counter() - t0
    with capsys.disabled():
        print(f"\nsimilarity of 2000 students (a1, one part with code each): {seconds:.1f} s, "
              f"{len(res.matches)} match(es)")
    assert any({m.a, m.b} == {"s0000", "s0001"} for m in res.matches)


# ----------------------------------------------------------------------------- the command and the batch

def _course(tmp_path, notebooks: dict) -> Path:
    """A course directory with solutions/ (for the source) and submitted/<student>/a1/..."""
    course = tmp_path / "course"
    (course / "solutions" / A1).mkdir(parents=True)
    (course / "solutions" / A1 / f"{A1}.ipynb").write_text(json.dumps(source(A1)), encoding="utf-8")
    for student, nb in notebooks.items():
        folder = course / "submitted" / student / A1
        folder.mkdir(parents=True)
        if nb is not None:
            (folder / f"{A1}.ipynb").write_text(json.dumps(nb), encoding="utf-8")
    return course


def test_command_on_a_submitted_class(tmp_path, capsys):
    correct = read_notebook(SUBMISSIONS / "correct.ipynb")
    renamed = {g: disguise(c, keep=sim.graded_functions(source(A1))) for g, c in answer_cells(correct).items()}
    course = _course(tmp_path, {"ann": correct, "bob": filled(A1, renamed), "cay": filled(A1, A1_OTHER)})
    # a student whose notebook is a link to another's: never read (it would be a perfect copy)
    (course / "submitted" / "mal" / A1).mkdir(parents=True)
    (course / "submitted" / "mal" / A1 / f"{A1}.ipynb").symlink_to(course / "submitted" / "ann" / A1 / f"{A1}.ipynb")
    assert cli.main(["course", "similarity", A1, "--course", str(course)]) == 0
    out = capsys.readouterr().out
    rows = list(csv.DictReader((course / "grades" / f"{A1}-similarity.csv").open(encoding="utf-8")))
    pairs = {(r["student_a"], r["student_b"], r["part"]) for r in rows}
    assert ("ann", "bob", "a1.correlate2d") in pairs and ("bob", "solution", "a1.convolve2d") in pairs, rows
    assert not any("cay" in (r["student_a"], r["student_b"]) or "mal" in (r["student_a"], r["student_b"])
                   for r in rows), rows
    assert "ann ~ bob" in out and "4 submission(s)" in out
    # a threshold above every score: nothing
    assert cli.main(["course", "similarity", A1, "--course", str(course), "--threshold", "1.01"]) == 0
    assert len((course / "grades" / f"{A1}-similarity.csv").read_text(encoding="utf-8").splitlines()) == 1


def test_command_defaults_are_the_measured_ones():
    args = cli.build_parser().parse_args(["course", "similarity", A1])
    assert (args.threshold, args.min_shared) == (sim.THRESHOLD, sim.MIN_SHARED)


def test_batch_flags_the_records_and_changes_no_score(tmp_path):
    correct = read_notebook(SUBMISSIONS / "correct.ipynb")
    records = [Grade("ann", A1, parts=[PartGrade("test_correlate2d", "a1.correlate2d", "", 4.0, 4.0, [])]),
               Grade("cay", A1, parts=[PartGrade("test_correlate2d", "a1.correlate2d", "", 3.0, 4.0, [])]),
               Grade("zed", A1)]
    submitted = {"ann": correct, "cay": filled(A1, A1_OTHER), "zed": None}   # zed's notebook was unreadable
    entry = sim.flag_batch(tmp_path, A1, source(A1), submitted, records)
    assert Path(entry["csv"]).is_file() and entry["matches"]
    ann, cay, zed = records
    assert any("matches the instructor's solution" in f for f in ann.similar), ann.similar
    assert not cay.similar and not zed.similar
    assert not ann.flags, "the signs of tampering stay apart"
    assert (ann.total, cay.total) == (4.0, 3.0)
    # the CSV's flags column and the summary carry the line
    rows = {r["student"]: r for r in csv.DictReader(outputs.write_csv(tmp_path, A1, records).open(encoding="utf-8"))}
    assert "matches the instructor's solution" in rows["ann"]["flags"] and rows["cay"]["flags"] == ""
    assert Grade.from_dict(ann.to_dict()).similar == ann.similar
    # the side-by-side excerpt travels in the report
    assert all(m["excerpt_a"] and m["excerpt_b"] for m in entry["matches"])
    # a failure inside similarity is reported, and nobody's record is touched
    before = [list(r.similar) for r in records]
    broken = sim.flag_batch(tmp_path, A1, {"cells": "not a list"}, submitted, records)
    assert "not computed" in broken["error"] and [r.similar for r in records] == before


def test_hostile_and_careless_notebooks_cost_only_their_own_comparison(capsys):
    """Pathological code (the parser's own limits), 1.2 MB of pasted data behind a graded function,
    magics, malformed cells and metadata, an unreadable notebook: the class is still compared."""
    correct = read_notebook(SUBMISSIONS / "correct.ipynb")

    def plus(*sources):
        nb = copy.deepcopy(correct)
        nb["cells"] += [{"cell_type": "code", "metadata": {}, "outputs": [], "source": s} for s in sources]
        return nb
    data = "TABLE = [" + "0.5, " * 240_000 + "]\n"
    notebooks = {
        "ann": correct, "bob": copy.deepcopy(correct),
        "deep": plus("x = " + "-" * 100_000 + "1\n", "y = " + "1+" * 200_000 + "1\n"),
        "big": plus(data, "def correlate2d(image, kernel, stride, padding):\n    return TABLE\n"),
        "magic": plus("%time z = 1\n", "!ls /\n"),
        "odd": {"cells": [{"cell_type": "code", "source": ["x = 1", 3], "metadata": {"nbgrader": {"grade_id": ["a"]}}},
                          "not a cell", {"cell_type": "code", "source": None, "metadata": []}]},
        "gone": None,
    }
    t0 = time.perf_counter()
    res = sim.class_similarity(A1, source(A1), notebooks, release(A1))
    with capsys.disabled():
        print(f"\nhostile class of {len(notebooks)}: {time.perf_counter() - t0:.1f} s")
    pairs = {(m.a, m.b, m.part) for m in res.matches}
    assert ("ann", "bob", "a1.correlate2d") in pairs, pairs
    assert ("deep", "solution", "a1.correlate2d") in pairs and ("magic", "solution", "a1.correlate2d") in pairs
    assert "gone" in res.unread
    assert not any(m.part == "a1.correlate2d" and "big" in (m.a, m.b) for m in res.matches)
