"""Hidden cases that stay hidden (issue 13, finding 4).

The hidden seed of a part is derived from the course secret, the assignment, the part and the
student (minicnn.grader.seeds), and a failed hidden case's feedback names its kind of case and
mistake but no shape, setting, value or text of the student's own making.  The batch test
grades one class of assignment 1 with a secret:

    ann, bob   the correct notebook                                   the same full marks
    cal        correlate2d an @njit lookup table of the public cases' answers and of cal's own
               hidden cases (as derived from the secret: what a regrade reproduces)   full marks there
    mal        the same kind of table, holding the public answers, the answers of the notebook's
               hidden seed (finding 4: replayed from one old feedback page) and of bob's hidden
               cases (a classmate's, copied in full)          no hidden case passes
"""
from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest

from minicnn.course import checks
from minicnn.course.notebook import read_notebook, release_text, source_text
from minicnn.grader import batch, plan, seeds
from minicnn.grader.locate import source_notebook

SUBMISSIONS = Path(__file__).parent / "submissions"
A1 = "a1_convolution"
CORR = "a1.correlate2d"
SECRET = "5f" * 32


def _secret_file(folder: Path, mode=0o600, text=SECRET) -> Path:
    path = folder / ".minicnn" / "secret"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text + "\n")
    path.chmod(mode)
    return path


def _notebook_seed(grade_id: str) -> int:
    specs = plan.test_specs(read_notebook(source_notebook(A1)))
    return next(s.seed for s in specs if s.grade_id == grade_id)


# ----------------------------------------------------------------------------- the derivation

def test_the_derivation_is_deterministic_64_bit_and_differs_per_student_part_assignment_and_secret():
    key = SECRET.encode()
    seed = seeds.derive(key, A1, CORR, "ann", 7877)
    assert seed == seeds.derive(key, A1, CORR, "ann", 7877)
    assert 0 < seed < 2 ** 64
    others = {seeds.derive(key, A1, CORR, "bob", 7877), seeds.derive(key, A1, "a1.convolve2d", "ann", 7877),
              seeds.derive(key, "a2_volumes_pooling", CORR, "ann", 7877), seeds.derive(key, A1, CORR, "ann", 7878),
              seeds.derive(b"another secret", A1, CORR, "ann", 7877)}
    assert seed not in others and len(others) == 5
    # far beyond anything one could replay (the notebook's seeds are 4-digit)
    assert max(seeds.derive(key, A1, CORR, f"s{i}", 7877) for i in range(20)) > 2 ** 48
    # the cases' generator takes every 64-bit seed, and different seeds give different cases
    part = checks.get_part(CORR)
    a = [c for c in part.cases(checks.case_rng(CORR, 2 ** 64 - 1), True) if c.hidden]
    b = [c for c in part.cases(checks.case_rng(CORR, seed), True) if c.hidden]
    assert a and any(x.args[0].shape != y.args[0].shape or not np.array_equal(x.args[0], y.args[0])
                     for x, y in zip(a, b))


def test_for_student_derives_the_hidden_cells_only_and_nothing_without_a_secret():
    specs = plan.test_specs(read_notebook(source_notebook(A1)))
    got = seeds.for_student(SECRET.encode(), A1, "ann", specs)
    hidden = [s for s in specs if s.kind == "check" and s.seed != checks.PUBLIC_SEED]
    assert hidden and set(got) == {s.grade_id for s in hidden}
    assert got["test_correlate2d"] == seeds.derive(SECRET.encode(), A1, CORR, "ann", _notebook_seed("test_correlate2d"))
    assert seeds.for_student(None, A1, "ann", specs) == {}


def test_a_secret_others_can_read_is_refused_and_the_lookup_order_holds(tmp_path, monkeypatch):
    monkeypatch.delenv(seeds.ENV, raising=False)
    course = tmp_path / "course"
    path = _secret_file(course)
    assert seeds.find_secret(course) == path and seeds.load(course) == SECRET.encode()
    assert seeds.find_secret(tmp_path / "bare") is None and seeds.load(tmp_path / "bare") is None
    for mode in (0o644, 0o640, 0o604, 0o620):
        path.chmod(mode)
        with pytest.raises(seeds.SecretError, match="chmod 600"):
            seeds.load(course)
    path.chmod(0o600)
    other = _secret_file(tmp_path / "elsewhere", text="ab" * 32)
    monkeypatch.setenv(seeds.ENV, str(other))
    assert seeds.load(course) == ("ab" * 32).encode()              # the environment before the course's file
    explicit = _secret_file(tmp_path / "given", text="cd" * 32)
    assert seeds.load(course, explicit) == ("cd" * 32).encode()    # an explicit file before both
    with pytest.raises(FileNotFoundError, match="--secret"):
        seeds.find_secret(course, tmp_path / "no-such-file")
    _secret_file(tmp_path / "empty", text="")
    with pytest.raises(seeds.SecretError, match="empty"):
        seeds.read_secret(tmp_path / "empty" / ".minicnn" / "secret")


def test_the_command_refuses_a_world_readable_secret(tmp_path):
    course = tmp_path / "course"
    (course / "submitted" / "ann" / A1).mkdir(parents=True)
    shutil.copyfile(SUBMISSIONS / "correct.ipynb", course / "submitted" / "ann" / A1 / f"{A1}.ipynb")
    secret = _secret_file(course, 0o644)
    env = {k: v for k, v in os.environ.items() if k != seeds.ENV}
    proc = subprocess.run([sys.executable, "-m", "minicnn.cli", "course", "grade", A1, "--course", str(course),
                           "--no-progress"], capture_output=True, text=True, timeout=300, env=env)
    assert proc.returncode == 2
    assert str(secret) in proc.stderr and "chmod 600" in proc.stderr and "-rw-r--r--" in proc.stderr
    assert not (course / "grades").exists()   # nothing graded with a secret others may hold


def test_with_hidden_seeds_rewrites_the_hidden_block_only():
    source = read_notebook(source_notebook(A1))
    new = plan.with_hidden_seeds(source, {"test_correlate2d": 2 ** 64 - 5})
    specs = {s.grade_id: s.seed for s in plan.test_specs(new)}
    old = {s.grade_id: s.seed for s in plan.test_specs(source)}
    assert specs["test_correlate2d"] == 2 ** 64 - 5
    assert {k: v for k, v in specs.items() if k != "test_correlate2d"} == \
        {k: v for k, v in old.items() if k != "test_correlate2d"}
    for a, b in zip(source["cells"], new["cells"]):   # the release made from it is the same
        assert release_text(source_text(a)) == release_text(source_text(b))


# ----------------------------------------------------------------------------- what a failed hidden case shows

def _hidden_blocks(lines) -> list:
    """Each failed hidden case's feedback: its FAIL line and the detail lines under it."""
    blocks, current = [], None
    for line in lines:
        if line.startswith("  FAIL hidden case"):
            current = [line]
            blocks.append(current)
        elif current is not None and line.startswith("       "):
            current.append(line)
        else:
            current = None
    return ["\n".join(b) for b in blocks]


def test_a_failed_hidden_case_shows_no_shape_value_or_text_of_the_students_code():
    """A function that is wrong on every random case, and whose errors, warnings and results carry
    its inputs out: the public cases show everything, the hidden ones none of it."""
    part = checks.get_part(CORR)
    seed = 2 ** 63 + 12345
    cases = part.cases(checks.case_rng(CORR, seed), True)
    hidden = [c for c in cases if c.hidden]
    assert hidden

    def leak(image):
        return "LEAK" + ",".join(f"{v:g}" for v in image.ravel()) + f"/{image.shape}"

    def leaky(image, kernel, stride, padding):
        warnings.warn(leak(image))
        if stride == 1:
            raise ValueError(leak(image))
        if padding == 0:
            return np.zeros((image.shape[0] + 7, 1))       # a shape (the hint would name the right one)
        shape = ((image.shape[0] + 2 * padding - kernel.shape[0]) // stride + 1,
                 (image.shape[1] + 2 * padding - kernel.shape[1]) // stride + 1)
        return np.full(shape, 1000.0 + image.sum())      # the right shape, wrong values (its inputs' sum)

    res = checks.run_part(part, leaky, seed, 4, cases=cases)
    text = "\n".join(res.lines)
    blocks = _hidden_blocks(res.lines)
    assert len(blocks) == len(hidden)                 # every hidden case failed, each named by its kind
    for block in blocks:
        assert "LEAK" not in block and "expected" not in block and "got" not in block and "first at" not in block
    for c in hidden:
        assert leak(c.args[0]) not in text            # nor in an error, a warning or a returned value
        assert c.describe and c.describe not in text
        assert f"({c.expected.shape[0]}, {c.expected.shape[1]})" not in "\n".join(blocks)
    assert "the shape is right, but some values are wrong" in text and "wrong shape" in text
    assert "not shown for hidden cases" in text and "ValueError" in text   # the kind of error is named
    # the public cases keep their full detail
    pub = checks.run_part(part, leaky, checks.PUBLIC_SEED, 4)
    assert "LEAK" in "\n".join(pub.lines) and "argument 1:" in "\n".join(pub.lines)


def test_a_hidden_cases_label_keeps_its_kind_and_loses_its_shape():
    """a3's activation cases are labelled by their shape ('public case 2 (shape (3, 4))'): the
    public label keeps it, the hidden one does not."""
    part = checks.get_part("a3.relu_backward")

    def wrong(grad_out, x):
        return np.zeros((1,))

    pub = checks.run_part(part, wrong, checks.PUBLIC_SEED, 1)
    assert any(ln.startswith("  FAIL public case") and "(shape (" in ln for ln in pub.lines)
    res = checks.run_part(part, wrong, 2 ** 64 - 3, 1)
    fails = [ln for ln in res.lines if ln.startswith("  FAIL hidden case")]
    assert fails and not any("(" in ln or "shape" in ln for ln in fails), fails
    hidden = [c for c in part.cases(checks.case_rng(part.key, 2 ** 64 - 3), True) if c.hidden]
    assert all(c.describe not in "\n".join(res.lines) for c in hidden)


# ----------------------------------------------------------------------------- a class graded with a secret

def _cases(seed):
    part = checks.get_part(CORR)
    return [c for c in part.cases(checks.case_rng(CORR, seed), seed != checks.PUBLIC_SEED)]


def _lookup_table_cell(cases) -> str:
    """An @njit correlate2d that answers from a table: a fingerprint of the inputs -> the answer."""
    keys, outs, offs, shapes = [], [], [0], []
    for c in cases:
        img, k, s, p = c.args
        keys.append(_fingerprint(img, k, s, p))
        outs.extend(np.asarray(c.expected, dtype=np.float64).ravel().tolist())
        offs.append(len(outs))
        shapes.append(list(c.expected.shape))
    return f"""\
KEYS = np.array({json.dumps(keys)})
OUTS = np.array({json.dumps(outs)})
OFFS = np.array({json.dumps(offs)})
SHAPES = np.array({json.dumps(shapes)})
WEIGHTS = np.random.default_rng(1).random({WEIGHTS})


@njit
def correlate2d(image, kernel, stride, padding):
    a, b = image.ravel(), kernel.ravel()
    f = np.array([image.shape[0], image.shape[1], kernel.shape[0], kernel.shape[1], stride, padding,
                  (a * WEIGHTS[:a.size]).sum(), (b * WEIGHTS[:b.size]).sum()], dtype=np.float64)
    for t in range(KEYS.shape[0]):
        if np.abs(KEYS[t] - f).max() < 1e-9:
            return OUTS[OFFS[t]:OFFS[t + 1]].copy().reshape((SHAPES[t, 0], SHAPES[t, 1]))
    return np.zeros((1, 1))
"""


WEIGHTS = 4096


def _fingerprint(img, k, s, p) -> list:
    """The table's key of one case: shapes, settings and two random-weighted sums (no two cases collide)."""
    w = np.random.default_rng(1).random(WEIGHTS)
    a, b = np.ravel(img).astype(np.float64), np.ravel(k).astype(np.float64)
    return [float(v) for v in (*np.shape(img), *np.shape(k), s, p, (a * w[:a.size]).sum(), (b * w[:b.size]).sum())]


def _memoriser(cases) -> dict:
    nb = json.loads((SUBMISSIONS / "correct.ipynb").read_text())
    for cell in nb["cells"]:
        if cell.get("metadata", {}).get("nbgrader", {}).get("grade_id") == "correlate2d":
            cell["source"] = _lookup_table_cell(cases)
    return nb


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    course = tmp_path_factory.mktemp("hidden-seeds")
    _secret_file(course)
    key, nb_seed = SECRET.encode(), _notebook_seed("test_correlate2d")
    own = {s: seeds.derive(key, A1, CORR, s, nb_seed) for s in ("ann", "bob", "cal", "mal")}
    notebooks = {"ann": json.loads((SUBMISSIONS / "correct.ipynb").read_text()),
                 "bob": json.loads((SUBMISSIONS / "correct.ipynb").read_text()),
                 "cal": _memoriser(_cases(0) + _cases(own["cal"])),
                 "mal": _memoriser(_cases(0) + _cases(nb_seed) + _cases(own["bob"]))}
    for student, nb in notebooks.items():
        folder = course / "submitted" / student / A1
        folder.mkdir(parents=True)
        (folder / f"{A1}.ipynb").write_text(json.dumps(nb))
    old = os.environ.pop(seeds.ENV, None)
    try:
        report = batch.grade_batch(A1, course, jobs=2, progress=False, log=lambda *a: None)
    finally:
        if old is not None:
            os.environ[seeds.ENV] = old
    recs = {r["student"]: r for r in report["records"]}
    return course, report, recs, own


def _part(rec, gid="test_correlate2d"):
    return next(p for p in rec["parts"] if p["grade_id"] == gid)


def test_correct_work_scores_the_same_for_every_student(graded):
    _, report, recs, _ = graded
    assert report["hidden_seeds"] == seeds.WITH_SECRET
    full = sum(p["max"] for p in recs["ann"]["parts"])
    assert sum(p["score"] for p in recs["ann"]["parts"]) == sum(p["score"] for p in recs["bob"]["parts"]) == full


def test_each_student_gets_their_own_hidden_cases_reproducible_from_the_secret(graded):
    _, _, recs, _ = graded
    cal, mal = _part(recs["cal"]), _part(recs["mal"])
    # cal's table holds cal's own derived hidden cases: every one of them passes
    assert cal["score"] == cal["max"] == 4, cal["lines"][:12]
    # mal's table holds the notebook seed's hidden cases and bob's: none is mal's
    assert mal["score"] < mal["max"]
    # the compiled point is judged on the part's own cell, hidden cases included: a table of
    # memorised answers compiles, but earns it only where it also answers the student's own cases
    compiled = "test_correlate2d_compiled"
    assert _part(recs["cal"], compiled)["score"] == 1
    assert _part(recs["mal"], compiled)["score"] == 0, _part(recs["mal"], compiled)["lines"]
    assert _part(recs["ann"], compiled)["score"] == 1


def test_a_memoriser_earns_no_hidden_case_points(graded):
    _, _, recs, _ = graded
    mal = _part(recs["mal"])
    worked = len([c for c in _cases(1) if c.worked])
    hidden = len([c for c in _cases(1) if c.hidden])
    head = mal["lines"][0]
    assert f"{worked} of {worked + hidden} checks pass" in head, head      # the worked examples, nothing more
    assert sum(ln.strip().startswith("FAIL hidden case") for ln in mal["lines"]) == hidden
    assert mal["score"] == pytest.approx(np.floor(400 * worked / (worked + hidden)) / 100)


def test_the_feedback_and_the_outputs_reveal_no_hidden_case_or_seed(graded):
    course, _, _, own = graded
    html = (course / "feedback" / "mal" / A1 / f"{A1}.html").read_text(encoding="utf-8")
    assert "FAIL hidden case" in html and "hidden cases show which kind of case failed" in html
    for c in _cases(own["mal"]):
        if c.hidden:
            assert c.describe not in html, c.describe
    blocks = _hidden_blocks(html.splitlines())
    assert blocks and not any("first at" in b or "expected" in b or "got" in b for b in blocks)
    texts = [html, (course / "grades" / f"{A1}-report.json").read_text(encoding="utf-8")]
    with open(course / "grades" / f"{A1}.csv", newline="", encoding="utf-8") as fh:
        texts.append(fh.read())
    for student in ("ann", "bob", "cal", "mal"):
        texts.append((course / "feedback" / student / A1 / f"{A1}.html").read_text(encoding="utf-8"))
    specs = plan.test_specs(read_notebook(source_notebook(A1)))
    every_seed = [s for student in own for s in seeds.for_student(SECRET.encode(), A1, student, specs).values()]
    assert len(every_seed) == 4 * len(seeds.for_student(SECRET.encode(), A1, "ann", specs)) > 0
    for text in texts:
        assert SECRET not in text
        for seed in every_seed:
            assert str(seed) not in text


def test_one_notebook_graded_alone_reproduces_the_students_hidden_cases(graded, tmp_path):
    """`minicnn course grade NOTEBOOK --student cal --secret FILE` derives cal's seeds as the batch
    did: cal's table of cal's own hidden cases passes them all again, and as another student it does not."""
    course, _, _, own = graded
    nb = tmp_path / f"{A1}.ipynb"
    nb.write_text((course / "submitted" / "cal" / A1 / f"{A1}.ipynb").read_text())
    env = {k: v for k, v in os.environ.items() if k != seeds.ENV}
    exe = [sys.executable, "-m", "minicnn.cli", "course", "grade", str(nb), "--secret",
           str(course / ".minicnn" / "secret"), "--case-timeout", "10"]
    proc = subprocess.run(exe + ["--student", "cal"], capture_output=True, text=True, timeout=600, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "grading a1_convolution.ipynb as 'cal'" in proc.stdout
    assert "test_correlate2d           4 / 4" in proc.stdout, proc.stdout
    assert "no course secret" not in proc.stderr
