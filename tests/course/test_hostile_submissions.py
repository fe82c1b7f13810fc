"""A class of hostile and broken submissions, graded in one batch beside correct ones, under
both isolation paths (bubblewrap, and resource limits alone).

tests/course/submissions/*.ipynb are real assignment-1 submissions (written by
make_submissions.py); expected.json gives, per submission and graded part, the points it
must at least get and may at most get.  Every case must: let the batch finish, leave the
correct students' grades untouched, give the hostile one no points its code did not earn,
and leave no process running.
"""
from __future__ import annotations

import csv
import json
import os
import re
import shutil
import time
from pathlib import Path

import pytest

from minicnn.grader import batch, locate
from minicnn.sandbox import isolation

pytestmark = pytest.mark.skipif(not os.path.isdir("/proc"), reason="needs Linux")

SUBMISSIONS = Path(__file__).parent / "submissions"
EXPECTED = json.loads((SUBMISSIONS / "expected.json").read_text(encoding="utf-8"))
ASSIGNMENT = "a1_convolution"
FULL = {"test_output_size": 2, "test_param_count": 2, "test_zero_pad": 2, "test_zero_pad_compiled": 1,
        "test_correlate2d": 4, "test_correlate2d_compiled": 1, "test_convolve2d": 2, "test_convolve2d_compiled": 1}
LIMITS = dict(wall=240.0, memory_mb=2048, tmp_mb=256)
CASE_TIMEOUT = 3.0
CELLS_TIMEOUT = 45.0


def _need(mode):
    if mode == "bwrap" and not isolation.bwrap_path():
        if os.environ.get("MINICNN_REQUIRE_BWRAP"):
            pytest.fail("MINICNN_REQUIRE_BWRAP is set but bubblewrap (bwrap) is not installed")
        pytest.skip("bubblewrap is not installed (apt-get install bubblewrap)")


def _matching(pattern=r"98765[34]|minicnn\.grader\.runner|minicnn\.grader\.batch worker") -> dict:
    """pid -> command line of every process whose command line matches: the hostile submissions'
    markers (98765x), the grader's sandboxed runner and its worker program."""
    found = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            cmd = Path(f"/proc/{entry}/cmdline").read_bytes().replace(b"\0", b" ").decode("utf-8", "replace")
        except OSError:
            continue
        if re.search(pattern, cmd):
            found[entry] = cmd
    return found


def _ppid(pid: int) -> int:
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
    except (OSError, ValueError, IndexError):
        return 0


def _another_workers(pid: int) -> bool:
    """True when pid descends from another process of this test run (a pytest-xdist sibling
    worker: a child of our own parent that is not us), so its graders are not ours to count.
    Our own survivors are our descendants, or orphans handed to init or a subreaper."""
    me, parent = os.getpid(), os.getppid()
    seen = set()
    while pid > 1 and pid not in seen:
        seen.add(pid)
        if pid == me:
            return False
        up = _ppid(pid)
        if up == parent and parent > 1:
            return True
        pid = up
    return False


OWNER = f"MINICNN_HOSTILE={os.getpid()}-{time.time_ns()}"   # in the environment of the graders we start


def _ours(pid: int, cmd: str, owner: str = OWNER) -> bool:
    """A hostile submission's own marker (only this module's submissions carry 98765x: inside the
    sandbox their environment is cleared), an orphan, our descendant, or a process that inherited OWNER
    (the Dask workers and their children).  Another grader on the machine (a helper's batch, a
    pytest-xdist sibling) is not counted."""
    if re.search(r"98765[34]", cmd) or _ppid(pid) == 1:   # an orphan (its environment is the runner's, cleared)
        return True
    if _another_workers(pid):
        return False
    me, up, seen = os.getpid(), pid, set()
    while up > 1 and up not in seen:
        seen.add(up)
        if up == me:
            return True
        up = _ppid(up)
    try:
        return owner.encode() in Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    except OSError:
        return False


def _survivors(before: dict) -> list[str]:
    """Processes of those kinds that appeared during the batch (not in `before`, so another
    grader running on the same machine is not counted) and are still alive after it; a few
    seconds' grace for the Dask workers' kept children, which die with their worker."""
    deadline = time.monotonic() + 10
    while True:
        left = {pid: cmd for pid, cmd in _matching().items() if pid not in before and _ours(int(pid), cmd)}
        if not left or time.monotonic() > deadline:
            return [f"{pid}: {cmd[:120]}" for pid, cmd in sorted(left.items())]
        time.sleep(0.5)


def _clean_fill_files():
    for p in Path("/tmp").glob("minicnn-hostile-fill-*"):
        try:
            p.unlink()
        except OSError:
            pass


@pytest.fixture(scope="module", params=["bwrap", "rlimits"])
def graded(request, tmp_path_factory):
    mode = request.param
    _need(mode)
    course = tmp_path_factory.mktemp(f"class-{mode}")
    for nb in sorted(SUBMISSIONS.glob("*.ipynb")):
        folder = course / "submitted" / nb.stem / ASSIGNMENT
        folder.mkdir(parents=True)
        shutil.copyfile(nb, folder / f"{ASSIGNMENT}.ipynb")
    limits = isolation.Limits(**LIMITS)
    before = _matching()   # processes of these kinds that are not this test's
    owner, value = OWNER.split("=")
    os.environ[owner] = value
    # a first, small batch: the gradebook exists (for the hostile ones to find) and `correct` has a grade
    first = batch.grade_batch(ASSIGNMENT, course, jobs=1, isolation_mode=mode, limits=limits, only={"correct"},
                              progress=False, case_timeout=CASE_TIMEOUT, cells_timeout=CELLS_TIMEOUT,
                              log=lambda *a: None)
    gradebook_before = (course / "gradebook.db").read_bytes()
    lines = []
    try:
        # force: `correct` already has a current record (the journal), and is graded again on purpose
        report = batch.grade_batch(ASSIGNMENT, course, jobs=2, isolation_mode=mode, limits=limits, progress=False,
                                   case_timeout=CASE_TIMEOUT, cells_timeout=CELLS_TIMEOUT, log=lines.append,
                                   force=True)
        survivors = _survivors(before)
    finally:
        del os.environ[owner]
        _clean_fill_files()
    recs = {r["student"]: r for r in report["records"]}
    yield {"mode": mode, "course": course, "report": report, "recs": recs, "first": first, "log": lines,
           "survivors": survivors, "gradebook_before": gradebook_before}


def _scores(rec):
    return {p["grade_id"]: p["score"] for p in rec["parts"]}


def test_every_submission_is_graded_within_its_bounds(graded):
    recs = graded["recs"]
    assert set(recs) == set(EXPECTED), "every submission gets a record"
    problems = []
    for name, exp in EXPECTED.items():
        got = _scores(recs[name])
        for gid, most in exp["max"].items():
            least = exp["min"].get(gid, 0)
            score = got.get(gid, 0.0)
            if not least <= score <= most:
                problems.append(f"{name}.{gid}: {score:g} not in [{least:g}, {most:g}] "
                                f"({recs[name]['status']}: {recs[name]['reason']})")
    assert not problems, "\n".join(problems)


def test_correct_work_gets_full_marks_every_time(graded):
    recs = graded["recs"]
    assert _scores(recs["correct"]) == {k: float(v) for k, v in FULL.items()}
    assert _scores(recs["correct_again"]) == _scores(recs["correct"])
    first = {r["student"]: r for r in graded["first"]["records"]}["correct"]
    assert _scores(first) == _scores(recs["correct"]), "graded twice, the same score"
    assert not recs["correct"]["flags"] and not recs["correct"]["cell_errors"]


def test_no_process_survives_the_batch(graded):
    assert graded["survivors"] == []


def test_the_isolation_used_is_stated(graded):
    assert graded["report"]["isolation"] == graded["mode"]
    sentence = graded["log"][0]
    assert sentence.startswith("isolation:")
    if graded["mode"] == "rlimits":
        assert "resource limits only" in sentence and "your files and network" in sentence
    else:
        assert "bubblewrap" in sentence and "no network" in sentence


def test_tampering_is_reported_to_the_instructor(graded):
    recs = graded["recs"]

    def flagged(name, needle):
        return any(needle in f for f in recs[name]["flags"])
    assert flagged("patch_testing", "replaces numpy.testing.assert_allclose")
    assert flagged("patch_allclose", "replaces np.allclose")
    assert flagged("patch_builtins", "replaces builtins.")
    assert flagged("patch_minicnn", "replaces minicnn.") or flagged("patch_minicnn", "calls setattr()")
    assert flagged("patch_minicnn", "imports minicnn.kernels")
    assert flagged("input_transformer", "input_transformers")
    assert flagged("fork_bomb", "calls os.fork()")
    assert flagged("network", "imports socket")
    assert any("was deleted" in n for n in recs["deleted_tests"]["notes"])
    assert any("was edited" in n for n in recs["edited_tests"]["notes"])
    assert any("changed its input" in n for n in recs["mutate_input"]["notes"])


def test_broken_runs_have_a_reason(graded):
    recs = graded["recs"]
    assert recs["unreadable"]["status"] == "unreadable" and "could not be read" in recs["unreadable"]["reason"]
    assert "exited" in recs["os_exit"]["reason"] or "killed" in recs["os_exit"]["reason"]
    assert any("SystemExit" in e for e in recs["sys_exit"]["cell_errors"])
    lines = " ".join(" ".join(p["lines"]) for p in recs["loop_python"]["parts"] if p["grade_id"] == "test_output_size")
    assert "did not finish" in lines or "no answer" in lines
    lines = " ".join(" ".join(p["lines"]) for p in recs["kill_self"]["parts"] if p["grade_id"] == "test_output_size")
    assert "crash" in lines or "killed" in lines
    assert "more bytes of output not kept" in recs["print_flood_python"]["output"]


def test_outputs_gradebook_csv_and_feedback(graded):
    from nbgrader.api import Gradebook

    course, recs = graded["course"], graded["recs"]
    with open(course / "grades" / f"{ASSIGNMENT}.csv", newline="") as fh:
        rows = {r["student"]: r for r in csv.DictReader(fh)}
    assert set(rows) == set(recs)
    for name, rec in recs.items():
        row = rows[name]
        assert row["reason"], name
        for gid, score in _scores(rec).items():
            assert float(row[gid]) == score
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gb:
        for name, rec in recs.items():
            nb = gb.find_submission_notebook(ASSIGNMENT, ASSIGNMENT, name)
            auto = {g.name: g.auto_score for g in nb.grades if g.name in FULL}
            assert auto == _scores(rec) or rec["status"] in ("unreadable",) and all(v == 0 for v in auto.values())
    source = (Path(locate.source_notebook(ASSIGNMENT, course))).read_text()
    seeds = set(re.findall(r"seed = (\d+)", source)) - {"0"}
    assert seeds
    for name in recs:
        page = (course / "feedback" / name / ASSIGNMENT / f"{ASSIGNMENT}.html").read_text()
        assert "HIDDEN TESTS" not in page and "seed =" not in page and "check(" not in page


def test_the_gradebook_cannot_be_forged(graded):
    """Without bubblewrap the fake_gradebook submission can reach the real gradebook: the change
    is detected, reported and undone; with it, the gradebook is out of its sight."""
    report, recs = graded["report"], graded["recs"]
    out = recs["fake_gradebook"]["output"]
    if graded["mode"] == "bwrap":
        assert report["gradebook_tampering"] == ""
        assert f"OVERWROTE {graded['course']}" not in out
    elif "OVERWROTE" in out and str(graded["course"]) in out:
        assert "restored" in report["gradebook_tampering"]
    assert _scores(recs["correct"]) == {k: float(v) for k, v in FULL.items()}


def test_bubblewrap_hides_the_course_the_network_and_the_host_tmp(graded):
    recs = graded["recs"]
    if graded["mode"] != "bwrap":
        # the limitation the README states: without bubblewrap the sources are in reach (and yet
        # the submission earned nothing from reading them, see the bounds test)
        assert "READ-OK" in recs["read_sources"]["output"]
        return
    reads = recs["read_sources"]["output"]
    assert "READ-OK" not in reads and "READ-BLOCKED" in reads
    assert not re.search(r"seed = [1-9]", reads)
    others = recs["read_others"]["output"]
    assert str(graded["course"]) not in others and "READ-OK" not in others
    net = recs["network"]["output"]
    assert "NET-OK" not in net and net.count("NET-BLOCKED") >= 2
    assert not list(Path("/tmp").glob("minicnn-hostile-fill-*")), "the sandbox's /tmp is its own"
