"""Where the time of one batch-graded submission goes, phase by phase (issue 15).

    python benchmarks/grading_phases.py                      # a1, the solution notebook, 3 submissions
    python benchmarks/grading_phases.py --assignment a2_volumes_pooling --runs 2
    python benchmarks/grading_phases.py --against /tmp/main/.venv/bin/python --runs 4   # before/after

--against PYTHON compares this checkout with another one (its own environment's interpreter, with
minicnn installed from that checkout: the sandboxed runner imports minicnn through it): one worker
child of each grades one submission in turn, A B B A A B ..., so both see the same load, and the
medians of the kept children's submissions are compared (the ratio holds under load where the
seconds do not).

One worker child (as a Dask task starts it: `python -m minicnn.grader.batch worker`) grades the
instructor's solution notebook --runs times, one after another, each in a sandbox of its own
(with --against, so does a worker child of the other checkout, in turn).
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
    for run, _ in enumerate(sys.stdin):   # one line: grade one more submission
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


def _median(values):
    values = sorted(values)
    return values[len(values) // 2] if len(values) % 2 else (values[len(values) // 2 - 1] + values[len(values) // 2]) / 2


def _show(row) -> str:
    return ", ".join(f"{k} {v:g}" if k == "n calls" else f"{k} {v:.2f} s" if isinstance(v, float) else f"{k} {v}"
                     for k, v in row.items())


class Child:
    """A worker child (this script with --child) run by `python`: one submission per request."""

    def __init__(self, python: str, setup: dict, scratch: Path):
        scratch.mkdir()
        self.proc = subprocess.Popen([python, __file__, "--child"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     text=True, cwd=str(scratch))
        self.proc.stdin.write(json.dumps({**setup, "scratch": str(scratch)}) + "\n")
        self.rows: list = []

    def grade_one(self) -> dict:
        self.proc.stdin.write("\n")
        self.proc.stdin.flush()
        for line in self.proc.stdout:     # anything else the grader printed is passed over
            if line.startswith("{"):
                self.rows.append(json.loads(line))
                return self.rows[-1]
        raise RuntimeError(f"the worker child ended (exit {self.proc.wait()})")

    def close(self):
        self.proc.stdin.close()
        self.proc.wait()


def kept_medians(rows) -> dict:
    """The median of every timed phase over a child's submissions after its first (a kept child's)."""
    kept = rows[1:]
    return {k: _median([r[k] for r in kept]) for k in kept[0] if isinstance(kept[0][k], (int, float))} if kept else {}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--assignment", default="a1_convolution")
    ap.add_argument("--runs", type=int, default=3, help="submissions per checkout (the first starts the child)")
    ap.add_argument("--isolation", default="auto", choices=("auto", "bwrap", "rlimits"))
    ap.add_argument("--against", metavar="PYTHON", help="the interpreter of another checkout's environment: "
                                                        "compare, interleaved")
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
    names = ["this checkout"] + (["--against"] if args.against else [])
    pythons = [sys.executable] + ([args.against] if args.against else [])
    with tempfile.TemporaryDirectory(prefix="minicnn-phases-") as tmp:
        folder = Path(tmp) / "submission"
        folder.mkdir()
        (folder / f"{args.assignment}.ipynb").write_bytes(source.read_bytes())
        setup = {"assignment": args.assignment, "source": str(source), "mode": mode, "dir": str(folder)}
        children = [Child(py, setup, Path(tmp) / f"work{i}") for i, py in enumerate(pythons)]
        try:
            for run in range(args.runs):
                # A B, then B A: neither checkout always goes first into a change of the load
                for i in (range(len(children)) if run % 2 == 0 else reversed(range(len(children)))):
                    row = children[i].grade_one()
                    print(f"{names[i]}, submission {run + 1} ({'fresh child' if run == 0 else 'kept child'}): "
                          + _show(row), flush=True)
        finally:
            for c in children:
                c.close()
    medians = [kept_medians(c.rows) for c in children]
    for name, med in zip(names, medians):
        if med:
            print(f"median of the kept child's ({name}): " + _show(med))
    if len(medians) == 2 and medians[0] and medians[1]:
        ratio = medians[1]["total"] / medians[0]["total"]
        print(f"ratio (--against / this checkout), a kept child's submission: {ratio:.2f}x "
              f"({medians[1]['total']:.2f} s / {medians[0]['total']:.2f} s, medians of {args.runs - 1} each, "
              f"interleaved; load now {' '.join(f'{x:.2f}' for x in os.getloadavg())})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
