"""Throughput of `minicnn course grade`: submissions per minute, cold and warm Numba cache.

    python benchmarks/grading_bench.py                       # a1, 16 submissions, 2 workers, both caches
    python benchmarks/grading_bench.py --assignment a3_backprop --students 8 --isolation rlimits

A class of N submissions is made from the instructor's solution notebook (every one
correct, so every case runs) and graded with `minicnn course grade`'s own code.  "cold"
first deletes the Numba cache files of minicnn's kernels (the grader's reference answers
then compile from scratch in every worker); "warm" grades the same class again with the
cache filled.  The students' own functions are compiled afresh in every submission in
both cases: nothing of one student's run is reused for another.  Writes JSON to
benchmarks/results/grading.json.
"""
from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

import minicnn
from minicnn.grader import batch
from minicnn.grader.locate import source_notebook
from minicnn.sandbox import isolation


def clear_numba_cache() -> int:
    n = 0
    for path in Path(minicnn.__file__).parent.rglob("__pycache__"):
        for f in list(path.glob("*.nbi")) + list(path.glob("*.nbc")):
            f.unlink()
            n += 1
    return n


def make_class(course: Path, assignment: str, students: int):
    source = source_notebook(assignment)
    for i in range(students):
        folder = course / "submitted" / f"student{i:03d}" / assignment
        folder.mkdir(parents=True)
        shutil.copyfile(source, folder / f"{assignment}.ipynb")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--assignment", default="a1_convolution")
    ap.add_argument("--students", type=int, default=16)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--isolation", default="auto", choices=("auto", "bwrap", "rlimits"))
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "grading.json"))
    args = ap.parse_args(argv)
    mode, sentence = isolation.choose(args.isolation)
    print(sentence)
    results = {"assignment": args.assignment, "students": args.students, "jobs": args.jobs, "isolation": mode,
               "runs": {}}
    for label in ("cold", "warm"):
        if label == "cold":
            print(f"cold: removed {clear_numba_cache()} cached kernel files")
        with tempfile.TemporaryDirectory(prefix="minicnn-grading-bench-") as tmp:
            course = Path(tmp)
            make_class(course, args.assignment, args.students)
            t0 = time.perf_counter()
            report = batch.grade_batch(args.assignment, course, jobs=args.jobs, isolation_mode=mode,
                                       progress=False, log=lambda *a: None)
            seconds = time.perf_counter() - t0
        full = sum(1 for r in report["records"] if all(p["score"] == p["max"] for p in r["parts"]))
        per_sub = sorted(r["seconds"] for r in report["records"])
        results["runs"][label] = {"seconds": seconds, "per_minute": args.students / seconds * 60,
                                  "full_marks": full, "median_seconds_per_submission": per_sub[len(per_sub) // 2]}
        print(f"{label}: {args.students} submissions in {seconds:.1f} s = {args.students / seconds * 60:.1f} per "
              f"minute with {args.jobs} workers (median {per_sub[len(per_sub) // 2]:.1f} s per submission, "
              f"{full} of {args.students} at full marks)")
        if full != args.students:
            print("WARNING: a correct submission lost points", file=sys.stderr)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=1))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
