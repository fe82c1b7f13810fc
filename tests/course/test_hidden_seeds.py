"""Hidden cases that stay hidden (issue 13, finding 4).

The hidden seed of a part is derived from the course secret, the assignment, the part, the
student and a digest of what they handed in (minicnn.grader.seeds), and a failed hidden case's
feedback names its kind of case and mistake but no shape, setting, value or text of the
student's own making.  The batch test grades one class of assignment 1 with a secret:

    ann, bob   the correct notebook                                   the same full marks
    cal        correlate2d an @njit lookup table of the public cases' answers and of the hidden
               cases cal's earlier submission (the correct notebook) was graded with: what a
               student who carried them out of one run would hand in next   no hidden case passes
    mal        the same kind of table, holding the public answers, the answers of the notebook's
               hidden seed (finding 4: replayed from one old feedback page) and of bob's hidden
               cases (a classmate's, copied in full)          no hidden case passes
    dan        correlate2d wrong on images whose height plus width is odd: about half the hidden
               cases pass, in a pattern a regrade of the same notebook must reproduce
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
    # the submission's digest, when given, is part of it
    handed = seeds.submission_digest({f"{A1}.ipynb": b"{}"})
    assert seeds.derive(key, A1, CORR, "ann", 7877, handed) == seeds.derive(key, A1, CORR, "ann", 7877, handed)
    assert len({seed, seeds.derive(key, A1, CORR, "ann", 7877, handed),
                seeds.derive(key, A1, CORR, "ann", 7877, seeds.submission_digest({f"{A1}.ipynb": b"{ }"}))}) == 3
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
    handed = seeds.submission_digest({f"{A1}.ipynb": b"{}"})
    bound = seeds.for_student(SECRET.encode(), A1, "ann", specs, submission=handed)
    assert set(bound) == set(got) and not set(bound.values()) & set(got.values())
    assert bound["test_correlate2d"] == seeds.derive(SECRET.encode(), A1, CORR, "ann",
                                                     _notebook_seed("test_correlate2d"), handed)


def test_the_submission_digest_covers_every_path_and_byte_and_not_the_order():
    nb = f"{A1}.ipynb"
    base = {nb: b'{"cells": []}', "data": None, "data/cases.txt": b"1 2 3"}
    digest = seeds.submission_digest(base)
    assert digest == seeds.submission_digest(dict(reversed(list(base.items()))))
    assert len(digest) == 64 and int(digest, 16) >= 0
    changed = [
        {**base, nb: b'{"cells": [] }'},                        # one byte of the notebook
        {**base, "data/cases.txt": b"1 2 4"},                   # a file beside it
        {k: v for k, v in base.items() if k != "data/cases.txt"},   # a file removed
        {**base, "notes.md": b""},                              # an empty file added
        {**base, "more": None},                                 # an empty folder added
        {nb: base[nb], "data": None, "data/cases.TXT": b"1 2 3"},   # a file renamed
        {nb: base[nb], "data": b"", "data/cases.txt": b"1 2 3"},    # a folder that is now a file
    ]
    assert len({digest} | {seeds.submission_digest(c) for c in changed}) == len(changed) + 1


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


def _with_cell(source: str) -> dict:
    """The correct notebook with its correlate2d cell replaced by `source`."""
    nb = json.loads((SUBMISSIONS / "correct.ipynb").read_text())
    for cell in nb["cells"]:
        if cell.get("metadata", {}).get("nbgrader", {}).get("grade_id") == "correlate2d":
            cell["source"] = source
    return nb


def _memoriser(cases) -> dict:
    return _with_cell(_lookup_table_cell(cases))


HALF_WRONG = """\
@njit
def correlate2d(image, kernel, stride, padding):
    padded = zero_pad(image, padding)
    kh, kw = kernel.shape
    out = np.zeros(((padded.shape[0] - kh) // stride + 1, (padded.shape[1] - kw) // stride + 1))
    for i in range(out.shape[0]):
        for j in range(out.shape[1]):
            out[i, j] = (padded[i * stride:i * stride + kh, j * stride:j * stride + kw] * kernel).sum()
    if (image.shape[0] + image.shape[1]) % 2 == 1:
        out[0, 0] += 1.0
    return out
"""


def _handed_in(nb: dict) -> bytes:
    return json.dumps(nb).encode("utf-8")


def test_a_table_of_the_cases_it_is_graded_with_passes_them():
    """The control for cal and mal below: the lookup table works, in-process, on the very cases it
    holds (so a table that fails in the batch fails because its cases were not the ones drawn)."""
    seed = 2 ** 63 + 77
    namespace = {"np": np, "njit": __import__("numba").njit}
    exec(_lookup_table_cell(_cases(checks.PUBLIC_SEED) + _cases(seed)), namespace)
    part = checks.get_part(CORR)
    res = checks.run_part(part, namespace["correlate2d"], seed, 4)
    assert res.score == 4, res.lines[:10]
    assert checks.run_part(part, namespace["correlate2d"], seed + 1, 4).score < 4


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    course = tmp_path_factory.mktemp("hidden-seeds")
    _secret_file(course)
    key, nb_seed = SECRET.encode(), _notebook_seed("test_correlate2d")
    correct = json.loads((SUBMISSIONS / "correct.ipynb").read_text())
    earlier = seeds.submission_digest({f"{A1}.ipynb": _handed_in(correct)})   # what cal handed in first
    notebooks = {"ann": correct, "bob": correct,
                 "cal": _memoriser(_cases(0) + _cases(seeds.derive(key, A1, CORR, "cal", nb_seed, earlier))),
                 "mal": _memoriser(_cases(0) + _cases(nb_seed) + _cases(seeds.derive(key, A1, CORR, "bob", nb_seed,
                                                                                       earlier))),
                 "dan": _with_cell(HALF_WRONG)}
    own = {}
    for student, nb in notebooks.items():
        folder = course / "submitted" / student / A1
        folder.mkdir(parents=True)
        (folder / f"{A1}.ipynb").write_bytes(_handed_in(nb))
        own[student] = seeds.derive(key, A1, CORR, student, nb_seed,
                                    seeds.submission_digest({f"{A1}.ipynb": _handed_in(nb)}))
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


def test_each_submission_gets_its_own_hidden_cases(graded):
    _, _, recs, own = graded
    assert own["ann"] != own["bob"]    # the same notebook, two students
    hidden = len([c for c in _cases(1) if c.hidden])
    for student in ("cal", "mal"):
        # cal's table holds the hidden cases of cal's earlier submission; mal's the notebook seed's
        # and bob's: none is drawn for the notebook that holds the table
        part = _part(recs[student])
        assert part["score"] < part["max"]
        assert sum(ln.strip().startswith("FAIL hidden case") for ln in part["lines"]) == hidden, part["lines"]
        # the compiled point is judged on the part's own cell, hidden cases included: a table of
        # memorised answers compiles, but earns it only where it also answers the student's own cases
        assert _part(recs[student], "test_correlate2d_compiled")["score"] == 0
    assert _part(recs["ann"], "test_correlate2d_compiled")["score"] == 1
    # dan: the pattern of passed hidden cases is the one dan's own derived cases give
    dan = [ln.strip() for ln in _part(recs["dan"])["lines"] if ln.strip().startswith(("FAIL hidden", "ok hidden"))]
    drawn = [c for c in _cases(own["dan"]) if c.hidden]
    odd = [(c.args[0].shape[0] + c.args[0].shape[1]) % 2 == 1 for c in drawn]
    assert 0 < sum(odd) < len(odd)
    assert sum(ln.startswith("FAIL hidden") for ln in dan) == sum(odd), dan


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
    for student in own:
        texts.append((course / "feedback" / student / A1 / f"{A1}.html").read_text(encoding="utf-8"))
    specs = plan.test_specs(read_notebook(source_notebook(A1)))
    every_seed = []
    for student in own:
        handed = (course / "submitted" / student / A1 / f"{A1}.ipynb").read_bytes()
        got = seeds.for_student(SECRET.encode(), A1, student, specs,
                                submission=seeds.submission_digest({f"{A1}.ipynb": handed}))
        assert got["test_correlate2d"] == own[student]     # the seeds the batch graded with
        every_seed += got.values()
    assert len(every_seed) == len(own) * len(seeds.for_student(SECRET.encode(), A1, "ann", specs)) > 0
    for text in texts:
        assert SECRET not in text
        for seed in every_seed:
            assert str(seed) not in text


def test_one_notebook_graded_alone_reproduces_the_students_hidden_cases(graded, tmp_path):
    """`minicnn course grade NOTEBOOK --student dan --secret FILE` derives dan's seeds as the batch
    did (dan handed in the notebook alone): the same hidden cases pass and fail. Graded as another
    student, or as dan with one comment added to the notebook (a new submission), others do."""
    course, _, recs, _ = graded
    nb = tmp_path / f"{A1}.ipynb"
    nb.write_bytes((course / "submitted" / "dan" / A1 / f"{A1}.ipynb").read_bytes())
    env = {k: v for k, v in os.environ.items() if k != seeds.ENV}
    secret = str(course / ".minicnn" / "secret")

    def hidden_lines(text):
        return [ln.strip() for ln in text.splitlines() if ln.strip().startswith("FAIL hidden")]

    batch_lines = [ln.strip() for ln in _part(recs["dan"])["lines"] if ln.strip().startswith("FAIL hidden")]
    assert batch_lines
    changed = tmp_path / "changed" / f"{A1}.ipynb"
    changed.parent.mkdir()
    changed.write_bytes(_handed_in(_with_cell(HALF_WRONG + "# checked once more\n")))
    outs = {}
    for student, path in (("dan", nb), ("ann", nb), ("dan", changed)):
        proc = subprocess.run([sys.executable, "-m", "minicnn.cli", "course", "grade", str(path), "--secret", secret,
                               "--case-timeout", "10", "--details", "--student", student],
                              capture_output=True, text=True, timeout=600, env=env)
        assert proc.returncode == 0, proc.stderr[-3000:]
        assert f"grading a1_convolution.ipynb as '{student}'" in proc.stdout
        assert "no course secret" not in proc.stderr
        outs[student, path] = hidden_lines(proc.stdout)
    assert outs["dan", nb] == batch_lines, (outs["dan", nb], batch_lines)
    assert outs["ann", nb] != batch_lines
    assert outs["dan", changed] != batch_lines and outs["dan", changed], outs["dan", changed]
