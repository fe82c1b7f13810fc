"""Where the time of one batch-graded submission goes, phase by phase (issue 15).

    python benchmarks/grading_phases.py                      # a1, the solution notebook, 3 submissions
    python benchmarks/grading_phases.py --assignment a2_volumes_pooling --runs 2

One worker child (as a Dask task starts it: `python -m minicnn.grader.batch worker`) grades the
instructor's solution notebook --runs times, one after another, each in a sandbox of its own.
The first submission pays for the child's start (as every submission did when each task
started its own child); the next ones are what a kept child costs.  Each is timed, from outside:

  grader start     the worker child's interpreter and imports (numpy, numba, minicnn.grader)
  sandbox+imports  from starting the sandbox to the runner's first cell (bubblewrap, Python, IPython, minicnn)
  cells            the notebook's cells (the student's definitions; Numba compiles lazily, not here)
  calls            the calls of the student's functions in the runner (first-call compilation included)
  grader side      the rest: plan, reading, the reference answers and the comparison, stopping the runner

It wraps the grader's public pieces in its own process to read the clock (the worker child
is this script itself, started with --child), so nothing of the grader is changed to be measured.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

T_START = time.perf_counter()


def child(argv) -> int:
    """Grade one submission like `python -m minicnn.grader.batch worker`, timing its phases."""
    t_imports = time.perf_counter()
    from dataclasses import asdict  # noqa: F401

    from minicnn.course.notebook import read_notebook
    from minicnn.grader import grading, remote
    from minicnn.sandbox import isolation, wire
    t_imported = time.perf_counter()
    setup = json.loads(sys.stdin.readline())
    phases = {"grader start": t_imported - T_START, "sandbox+imports": 0.0, "cells": 0.0, "calls": 0.0}
    zero = {"first calls (compiling)": 0.0, "other calls": 0.0, "in the call's child": 0.0, "n calls": 0}
    marks = {}
    real_start, real_read, real_request = isolation.start, wire.read_frame, remote.Remote.request

    def start(*a, **k):
        marks["start"] = time.perf_counter()
        return real_start(*a, **k)

    def read_frame(fd, *a, **k):
        msg = real_read(fd, *a, **k)
        if isinstance(msg, dict) and msg.get("event") == "cell" and msg.get("index") == 0 and "start" in marks:
            now = time.perf_counter()
            phases["sandbox+imports"] += now - marks.pop("start")
            marks["cells"] = now
        elif isinstance(msg, dict) and msg.get("event") == "ready" and "cells" in marks:
            phases["cells"] += time.perf_counter() - marks.pop("cells")
        return msg

    def request(self, req, *a, **k):
        t0 = time.perf_counter()
        out = real_request(self, req, *a, **k)
        if req.get("op") == "call":
            took = time.perf_counter() - t0
            phases["calls"] += took
            first = req["name"] not in marks.setdefault("called", set())
            marks["called"].add(req["name"])
            phases["first calls (compiling)" if first else "other calls"] += took
            if isinstance(out, dict) and isinstance(out.get("seconds"), float):
                phases["in the call's child"] += out["seconds"]
            phases["n calls"] += 1
        return out

    isolation.start, wire.read_frame, remote.Remote.request = start, read_frame, request
    remote.wire.read_frame = read_frame
    settings = grading.Settings(setup["mode"], isolation.Limits(), Path(setup["scratch"]))
    source_nb = read_notebook(setup["source"])
    for run in range(setup["runs"]):
        marks.pop("called", None)
        phases.update(zero)
        if run:
            phases.update({"grader start": 0.0, "sandbox+imports": 0.0, "cells": 0.0, "calls": 0.0})
        t0 = time.perf_counter()
        rec = grading.grade("bench", setup["assignment"], source_nb, Path(setup["dir"]), settings)
        total = time.perf_counter() - t0
        phases["grader side"] = total - phases["sandbox+imports"] - phases["cells"] - phases["calls"]
        phases["total"] = phases["grader start"] + total
        phases["score"] = f"{rec.total:g}/{rec.most:g}"
        print(json.dumps(phases), flush=True)
    return 0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--assignment", default="a1_convolution")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--isolation", default="auto", choices=("auto", "bwrap", "rlimits"))
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        return child(argv)
    from minicnn.grader.locate import source_notebook
    from minicnn.sandbox import isolation

    mode, sentence = isolation.choose(args.isolation)
    print(sentence)
    print(f"load: {' '.join(f'{x:.2f}' for x in os.getloadavg())} on {os.cpu_count()} cores")
    source = source_notebook(args.assignment)
    rows = []
    with tempfile.TemporaryDirectory(prefix="minicnn-phases-") as tmp:
        folder, scratch = Path(tmp) / "submission", Path(tmp) / "work"
        folder.mkdir()
        scratch.mkdir()
        (folder / f"{args.assignment}.ipynb").write_bytes(source.read_bytes())
        setup = {"assignment": args.assignment, "source": str(source), "mode": mode, "scratch": str(scratch),
                 "dir": str(folder), "runs": args.runs}
        out = subprocess.run([sys.executable, __file__, "--child"], input=json.dumps(setup) + "\n",
                             capture_output=True, text=True, check=True)
    for i, line in enumerate(out.stdout.strip().splitlines()[-args.runs:]):
        row = json.loads(line)
        rows.append(row)
        print(f"submission {i + 1} ({'fresh child' if i == 0 else 'kept child'}): "
              + ", ".join(f"{k} {v:.2f} s" if isinstance(v, float) else f"{k} {v}" for k, v in row.items()))
    rows = rows[1:]   # the median below: a kept child's submissions
    if rows:
        keys = [k for k in rows[0] if isinstance(rows[0][k], (int, float))]
        print("median of the kept child's: " + ", ".join(f"{k} {sorted(r[k] for r in rows)[len(rows) // 2]:.2f} s" for k in keys))
    return 0


if __name__ == "__main__":
    sys.exit(main())
