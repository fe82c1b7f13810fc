"""Throughput of `minicnn course grade` on Dask: submissions per minute for three set-ups.

    python benchmarks/grading_bench.py                       # a1, 8 submissions, the three set-ups, warm
    python benchmarks/grading_bench.py --assignment a3_backprop --students 8 --isolation rlimits --cold

A class of N submissions is made from the instructor's solution notebook (every one
correct, so every case runs) and graded with `minicnn course grade`'s own code, on
  local-1     an embedded LocalCluster of 1 worker process
  local-2     an embedded LocalCluster of 2 worker processes
  sched-2     a separate `dask scheduler` and 2 separate `dask worker` processes on 127.0.0.1
With --cold the Numba cache files of minicnn's kernels are deleted first (the grader's
reference answers then compile from scratch).  The students' own functions are compiled afresh in every submission in
both cases: nothing of one student's run is reused for another.  Writes JSON to
benchmarks/results/grading.json.

    python benchmarks/grading_bench.py --against /tmp/main/.venv/bin/python --students 6

compares this checkout with another (the interpreter of its environment, minicnn installed from
it): each set-up is run by both, one after the other, in turn (A B, then B A), each in a process
of its own, and the ratio of their submissions per minute is printed (it holds under load, where
the rates do not).
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
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


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_scheduler_and_workers(n: int):
    """A `dask scheduler` and n `dask worker` processes (1 thread each) on 127.0.0.1: (address, processes)."""
    port = _free_port()
    address = f"tcp://127.0.0.1:{port}"
    quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL, "start_new_session": True}
    procs = [subprocess.Popen([sys.executable, "-m", "distributed.cli.dask_scheduler", "--host", "127.0.0.1",
                               "--port", str(port), "--no-dashboard"], **quiet)]
    for _ in range(n):
        procs.append(subprocess.Popen([sys.executable, "-m", "distributed.cli.dask_worker", address, "--nthreads",
                                       "1", "--host", "127.0.0.1", "--no-dashboard", "--memory-limit", "0"], **quiet))
    from distributed import Client
    end = time.time() + 120
    while True:
        try:
            with Client(address, timeout="5s") as c:
                c.wait_for_workers(n, timeout=120)
            return address, procs
        except OSError:
            if time.time() > end:
                raise


def stop(procs):
    for p in procs:
        try:
            os.killpg(p.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        p.wait()


def compare(args) -> int:
    """Each set-up run by this checkout and by --against's, in turn; the ratio of their rates."""
    names, pythons = ("this checkout", "--against"), (sys.executable, args.against)
    results = {"assignment": args.assignment, "students": args.students, "setups": {}}
    with tempfile.TemporaryDirectory(prefix="minicnn-grading-compare-") as tmp:
        for n, label in enumerate(args.setups.split(",")):
            rates = {}
            for i in ((0, 1) if n % 2 == 0 else (1, 0)):
                out = Path(tmp) / f"{label}-{i}.json"
                cmd = [pythons[i], __file__, "--assignment", args.assignment, "--students", str(args.students),
                       "--setups", label, "--isolation", args.isolation, "--out", str(out)]
                run = subprocess.run(cmd, capture_output=True, text=True, cwd=tmp)
                if run.returncode != 0:
                    print(run.stdout + run.stderr, file=sys.stderr)
                    return 1
                print(f"{names[i]}: " + run.stdout.strip().splitlines()[-2], flush=True)
                rates[names[i]] = json.loads(out.read_text())["runs"][label]
            ratio = rates["this checkout"]["per_minute"] / rates["--against"]["per_minute"]
            results["setups"][label] = {**rates, "ratio": ratio}
            print(f"{label}: this checkout grades {ratio:.2f}x the submissions per minute of --against "
                  f"(load {' '.join(f'{x:.2f}' for x in os.getloadavg())})", flush=True)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=1))
    print(f"wrote {out}")
    return 0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--assignment", default="a1_convolution")
    ap.add_argument("--students", type=int, default=8)
    ap.add_argument("--setups", default="local-1,local-2,sched-2")
    ap.add_argument("--isolation", default="auto", choices=("auto", "bwrap", "rlimits"))
    ap.add_argument("--cold", action="store_true", help="delete the Numba cache of minicnn's kernels first")
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "grading.json"))
    ap.add_argument("--against", metavar="PYTHON", help="another checkout's interpreter: compare, in turn")
    args = ap.parse_args(argv)
    if args.against:
        return compare(args)
    mode, sentence = isolation.choose(args.isolation)
    print(sentence)
    print(f"load: {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f} {os.getloadavg()[2]:.2f} on {os.cpu_count()} cores")
    results = {"assignment": args.assignment, "students": args.students, "isolation": mode, "runs": {}}
    if args.cold:
        print(f"cold: removed {clear_numba_cache()} cached kernel files")
    for label in args.setups.split(","):
        procs, scheduler, jobs = [], None, int(label.split("-")[1])
        if label.startswith("sched"):
            scheduler, procs = start_scheduler_and_workers(jobs)
        try:
            with tempfile.TemporaryDirectory(prefix="minicnn-grading-bench-") as tmp:
                course = Path(tmp)
                make_class(course, args.assignment, args.students)
                t0 = time.perf_counter()
                report = batch.grade_batch(args.assignment, course, jobs=jobs, isolation_mode=mode,
                                           scheduler=scheduler, progress=False, log=lambda *a: None)
                seconds = time.perf_counter() - t0
        finally:
            stop(procs)
        full = sum(1 for r in report["records"] if all(p["score"] == p["max"] for p in r["parts"]))
        per_sub = sorted(r["seconds"] for r in report["records"])
        rate = args.students / seconds * 60
        load = os.getloadavg()
        results["runs"][label] = {"seconds": seconds, "per_minute": rate, "per_minute_per_worker": rate / jobs,
                                  "full_marks": full, "median_seconds_per_submission": per_sub[len(per_sub) // 2],
                                  "load_after": list(load)}
        print(f"{label}: {args.students} submissions in {seconds:.1f} s = {rate:.1f} per minute "
              f"({rate / jobs:.1f} per worker; median {per_sub[len(per_sub) // 2]:.1f} s per submission, "
              f"{full} of {args.students} at full marks; load {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} after)")
        if full != args.students:
            print("WARNING: a correct submission lost points", file=sys.stderr)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=1))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
