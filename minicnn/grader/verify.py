"""`minicnn course verify`: prove, with the real nbgrader, that the course grades what it should.

For every assignment, in a scratch nbgrader course directory:

(a) the instructor's solution notebook, submitted as is, autogrades to full marks;
(b) the released notebook (exercises/, untouched) autogrades to zero;
(d) every known-wrong implementation (solutions/mutants.py) loses points on each part it breaks,
    so a check that cannot fail is caught;

and once for the course:

(c) every worked example of the catalogue reproduces with both kernel implementations;
(e) exercises/ is exactly what `nbgrader generate_assignment` makes from solutions/ now.

Mutants that cannot disturb each other's verdicts share one submitted notebook (see
mutation.batches), which keeps the number of notebook executions small.

With a course secret (seeds.py) the hidden cases are derived for the student id "verify" and no
submission digest (nbgrader runs one set of test cells for every notebook it grades, so one set
for all of them); `minicnn course grade`, which adds the digest of what was handed in, draws
other cases.  Without a secret, the notebooks' own hidden seeds.
"""
from __future__ import annotations

import concurrent.futures as cf
import filecmp
import json
import os
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from .. import examples
from ..course import mutation
from ..course.notebook import read_notebook
from . import nbg, seeds
from .locate import course_root, mutants_file, source_notebook
from .plan import test_specs, with_hidden_seeds

VERIFY_STUDENT = "verify"   # the student id verify's hidden seeds are derived for


@dataclass
class Row:
    check: str
    item: str
    ok: bool
    detail: str


def _fmt(x: float) -> str:
    return f"{x:g}"


def check_catalogue() -> list:
    rows = []
    exs = examples.load()
    def fails(ex, impl):
        try:
            return not examples.check(ex, impl=impl).ok
        except Exception as exc:  # noqa: BLE001 - a kernel that does not even run is a failure too
            return f"{type(exc).__name__}"

    for impl in ("loop", "fast"):
        bad = [ex.id for ex in exs if fails(ex, impl)]
        rows.append(Row("(c) worked examples reproduce", f"catalogue, impl={impl!r}", not bad,
                        f"{len(exs) - len(bad)} of {len(exs)}" + (f"; failing: {', '.join(bad)}" if bad else "")))
    return rows


def release_differences(ours: Path, fresh: Path) -> list:
    """Files that differ between the committed release folder and a fresh one ([] when identical)."""
    if not ours.is_dir():
        return ["(missing)"]
    cmp = filecmp.dircmp(ours, fresh)
    differ = cmp.left_only + cmp.right_only
    differ += [f for f in cmp.common_files if not filecmp.cmp(ours / f, fresh / f, shallow=False)]
    return sorted(set(d for d in differ if not d.startswith(".")))


def check_release_fresh(root: Path, assignment: str, fresh: Path) -> Row:
    differ = release_differences(root / nbg.RELEASE_DIR / assignment, fresh)
    return Row("(e) exercises/ is nbgrader's release", assignment, not differ,
               "up to date" if not differ else f"stale ({', '.join(differ)}): run `minicnn course release`")


def _auto_totals(scores: dict):
    auto = [s for s in scores.values() if s.auto]
    manual = [s for s in scores.values() if not s.auto]
    return (sum(s.score or 0.0 for s in auto), sum(s.max_score for s in auto),
            sum(s.max_score for s in manual), manual)


def verify_assignment(root: Path, assignment: str, work: Path, with_mutants: bool = True, log=None,
                      secret: bytes | None = None) -> list:
    """Rows (a), (b) and (d) for one assignment, from one `nbgrader autograde` run (with the
    hidden seeds derived from `secret` for VERIFY_STUDENT, when given)."""
    course = nbg.CourseDir(work / assignment, root)
    source = read_notebook(source_notebook(assignment, root))
    course.add_source(assignment)
    hidden = seeds.for_student(secret, assignment, VERIFY_STUDENT, test_specs(source))
    if hidden:   # nbgrader takes every test cell from this copy (and the release is the same)
        (course.path / nbg.ASSIGNMENTS_DIR / assignment / f"{assignment}.ipynb").write_text(
            json.dumps(with_hidden_seeds(source, hidden), indent=1), encoding="utf-8")
    fresh = course.generate(assignment)
    rows = [check_release_fresh(root, assignment, fresh)]
    course.submit(assignment, "solution", source_notebook(assignment, root))
    release_nb = root / nbg.RELEASE_DIR / assignment / f"{assignment}.ipynb"
    if release_nb.exists():
        course.submit(assignment, "release", release_nb)
    groups = []
    if with_mutants:
        try:
            known = mutation.for_assignment(assignment, mutation.load(mutants_file(root)))
            groups = mutation.batches(source, known)
            for i, group in enumerate(groups):
                course.submit(assignment, f"mutants-{i + 1}", mutation.mutate_notebook(source, group))
        except (mutation.StaleMutant, FileNotFoundError) as exc:
            rows.append(Row("(d) known-wrong code loses points", assignment, False, str(exc)))
            groups = []
    t0 = time.perf_counter()
    course.autograde(assignment)
    if log:
        log(f"  {assignment}: autograded {1 + release_nb.exists() + len(groups)} notebooks "
            f"in {time.perf_counter() - t0:.0f} s")

    got, full, by_hand, _ = _auto_totals(course.scores(assignment, "solution"))
    short = [f"{s.grade_id} {_fmt(s.score or 0)}/{_fmt(s.max_score)}"
             for s in course.scores(assignment, "solution").values() if s.auto and (s.score or 0) < s.max_score]
    rows.append(Row("(a) solution gets full marks", assignment, not short and full > 0,
                    f"{_fmt(got)}/{_fmt(full)} autograded" + (f" (+{_fmt(by_hand)} by hand)" if by_hand else "")
                    + (f"; short: {', '.join(short)}" if short else "")))
    if release_nb.exists():
        scores = course.scores(assignment, "release")
        got, full, by_hand, manual = _auto_totals(scores)
        manual_pts = sum(s.score or 0.0 for s in manual)
        nonzero = [f"{s.grade_id} {_fmt(s.score or 0)}" for s in scores.values() if (s.score or 0) > 0]
        rows.append(Row("(b) untouched release gets zero", assignment, not nonzero,
                        f"{_fmt(got + manual_pts)}/{_fmt(full + by_hand)}"
                        + (f"; scored: {', '.join(nonzero)}" if nonzero else "")))
    else:
        rows.append(Row("(b) untouched release gets zero", assignment, False,
                        f"no {release_nb.relative_to(root)}: run `minicnn course release`"))
    for i, group in enumerate(groups):
        scores = course.scores(assignment, f"mutants-{i + 1}")
        for m in group:
            details, ok = [], True
            for test in m.breaks:
                s = scores.get(test)
                if s is None:
                    ok = False
                    details.append(f"{test}: no such test cell")
                    continue
                lost = (s.score or 0.0) < s.max_score
                ok &= lost
                details.append(f"{test} {_fmt(s.score or 0)}/{_fmt(s.max_score)}" + ("" if lost else " NOT LOST"))
            rows.append(Row("(d) known-wrong code loses points", f"{assignment}: {m.name}", ok,
                            f"{m.description}: " + ", ".join(details)))
    return rows


def print_table(rows, out=print):
    w1 = max(len(r.check) for r in rows)
    w2 = max(len(r.item) for r in rows)
    out(f"{'check'.ljust(w1)}  {'item'.ljust(w2)}  result  detail")
    out(f"{'-' * w1}  {'-' * w2}  ------  ------")
    for r in rows:
        out(f"{r.check.ljust(w1)}  {r.item.ljust(w2)}  {'PASS' if r.ok else 'FAIL'}    {r.detail}")


def verify(root: Path | None = None, only=None, with_mutants: bool = True, jobs: int | None = None,
           keep: Path | None = None, out=print, secret=None) -> int:
    """Run every check; print the table; 0 when everything passes, 1 otherwise.

    secret: the course secret's file (default: found as seeds.find_secret does, in `root`)."""
    root = course_root(root)
    key = seeds.load(root, secret)
    out(seeds.WITH_SECRET + f' (verify grades as student "{VERIFY_STUDENT}")' if key is not None
        else f"WARNING: {seeds.NO_SECRET}")
    t0 = time.perf_counter()
    names = list(only or nbg.assignments(root))
    unknown = set(names) - set(nbg.assignments(root))
    if unknown:
        out(f"unknown assignment(s): {', '.join(sorted(unknown))}; known: {', '.join(nbg.assignments(root))}")
        return 2
    work = Path(keep) if keep else Path(tempfile.mkdtemp(prefix="minicnn-verify-"))
    work.mkdir(parents=True, exist_ok=True)
    jobs = jobs or min(len(names), os.cpu_count() or 1)
    out(f"verifying {len(names)} assignment(s) with nbgrader in {work} ({jobs} at a time) ...")
    rows = check_catalogue()
    try:
        results = {}
        with cf.ThreadPoolExecutor(max_workers=jobs) as pool:
            futures = {pool.submit(verify_assignment, root, a, work, with_mutants, out, key): a for a in names}
            for fut in cf.as_completed(futures):
                a = futures[fut]
                try:
                    results[a] = fut.result()
                except Exception as exc:  # noqa: BLE001 - reported as a failed row
                    results[a] = [Row("(a) solution gets full marks", a, False, f"nbgrader failed: {exc}"[:2000])]
        for a in names:
            rows += results[a]
    finally:
        if not keep:
            shutil.rmtree(work, ignore_errors=True)
    order = {"(a)": 0, "(b)": 1, "(c)": 2, "(d)": 3, "(e)": 4}
    rows.sort(key=lambda r: order.get(r.check[:3], 9))
    out("")
    print_table(rows, out)
    failed = sum(not r.ok for r in rows)
    out("")
    out(f"{len(rows) - failed} of {len(rows)} checks pass in {time.perf_counter() - t0:.0f} s"
        + ("" if not failed else f"; {failed} FAILED"))
    return 1 if failed else 0
