"""Cold start: how long the first calls take when Numba's cache is empty, and after `minicnn precompile`.

Every measurement runs in a new Python process with NUMBA_CACHE_DIR pointing at a private
temporary directory, so nothing compiled by earlier runs (the worktree's __pycache__, the user's
cache) is reused.  Two columns:

    empty cache   the directory is emptied before the process starts: what a student sees on a
                  fresh JupyterHub or Colab image
    precompiled   the directory was filled once by `python -m minicnn precompile` (its time is
                  printed too): what a course image built with that command gives

Each figure is the wall time inside the process from before `import minicnn` to the end of the
scenario, the median of --repeat runs (the runs of one scenario interleave with the others).

    python benchmarks/cold_start.py [--repeat 1] [--only conv2d,lenet5_step] [--no-precompiled] [--src CHECKOUT]
"""
from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SRC = ROOT   # the checkout whose minicnn is measured (--src)

# Each scenario is code run after `import numpy as np; import minicnn`; rng is a seeded Generator.
SCENARIOS = {
    "import": "",
    "conv2d": "minicnn.conv2d(x, w, b)",
    "max_pool2d": "minicnn.max_pool2d(x, 2)",
    "dense": "minicnn.dense(x.reshape(8, -1), rng.standard_normal((6, 144)).astype(np.float32), b)",
    "conv2d+backward": "out = minicnn.conv2d(x, w, b); minicnn.conv2d_backward(out, x, w)",
    "lenet5_step": (
        "from minicnn import models, optim\n"
        "from minicnn.layers import SoftmaxCrossEntropy\n"
        "model = models.lenet5(seed=0); loss_fn = SoftmaxCrossEntropy()\n"
        "opt = optim.SGD(model.parameters(), lr=0.01)\n"
        "xb = rng.standard_normal((16, 1, 32, 32)).astype(np.float32); yb = rng.integers(0, 10, 16)\n"
        "loss = loss_fn.forward(model.forward(xb), yb)\n"
        "model.backward(loss_fn.backward(), input_grad=False); opt.step()"),   # as minicnn.train does
}

PRELUDE = (
    "import time; t0 = time.perf_counter()\n"
    "import numpy as np, minicnn\n"
    "rng = np.random.default_rng(0)\n"
    "x = rng.standard_normal((8, 1, 12, 12)).astype(np.float32)\n"
    "w = rng.standard_normal((6, 1, 5, 5)).astype(np.float32); b = np.zeros(6, np.float32)\n"
)


def _env(cache_dir: str) -> dict:
    return dict(os.environ, NUMBA_CACHE_DIR=cache_dir, PYTHONPATH=SRC + os.pathsep + os.environ.get("PYTHONPATH", ""))


def _empty_dir():
    """A new empty directory to run in (a context manager): `python -c` puts its working directory
    first on sys.path, so a stray bisect.py or numpy.py in a shared /tmp would be imported instead
    of the library."""
    return tempfile.TemporaryDirectory(prefix="minicnn-cold-cwd-")


def run_python(code: str, cache_dir: str) -> float:
    """Run code in a fresh interpreter with its own cache dir; the seconds it printed."""
    with _empty_dir() as cwd:
        proc = subprocess.run([sys.executable, "-c", code], env=_env(cache_dir), cwd=cwd, capture_output=True,
                              text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"the scenario failed (exit {proc.returncode}):\n{code}\n{proc.stderr[-4000:]}")
    return float(proc.stdout.strip().splitlines()[-1])


def scenario_code(name: str) -> str:
    return PRELUDE + SCENARIOS[name] + "\nprint(time.perf_counter() - t0)\n"


def precompile(cache_dir: str) -> float:
    t0 = time.perf_counter()
    with _empty_dir() as cwd:
        subprocess.run([sys.executable, "-m", "minicnn", "precompile"], env=_env(cache_dir), cwd=cwd,
                       check=True, capture_output=True)
    return time.perf_counter() - t0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--only", default=",".join(SCENARIOS), help="comma-separated scenarios")
    parser.add_argument("--no-precompiled", action="store_true", help="skip the precompiled column")
    parser.add_argument("--src", default=ROOT, help="measure the minicnn of another checkout (default: this one)")
    args = parser.parse_args(argv)
    global SRC
    SRC = os.path.abspath(args.src)
    names = [n for n in args.only.split(",") if n]
    for n in names:
        if n not in SCENARIOS:
            parser.error(f"unknown scenario {n!r}; choose from {sorted(SCENARIOS)}")

    import numba

    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import machine   # benchmarks/machine.py

    cpu_name, enabled = machine.numba_target()
    print(f"minicnn from {SRC}")
    print(f"cpu: {machine.cpu_model()}, {os.cpu_count()} cores; numba {numba.__version__} compiles for "
          f"'{cpu_name}' ({machine.simd_summary(enabled)})")
    if hasattr(os, "getloadavg"):
        print("load average at start: %.2f %.2f %.2f" % os.getloadavg())
    empty = {n: [] for n in names}
    warm = {n: [] for n in names}
    with tempfile.TemporaryDirectory(prefix="minicnn-cold-") as tmp:
        pre_dir = os.path.join(tmp, "precompiled")
        pre_s = None
        if not args.no_precompiled:
            pre_s = precompile(pre_dir)
            print(f"minicnn precompile into an empty cache: {pre_s:.1f} s")
        for _ in range(args.repeat):
            for n in names:
                cold_dir = os.path.join(tmp, "empty")
                shutil.rmtree(cold_dir, ignore_errors=True)
                empty[n].append(run_python(scenario_code(n), cold_dir))
                if pre_s is not None:
                    warm[n].append(run_python(scenario_code(n), pre_dir))
    print(f"{'scenario':<18} {'empty cache (s)':>16} {'precompiled (s)':>16}")
    for n in names:
        w = f"{statistics.median(warm[n]):16.2f}" if warm[n] else f"{'-':>16}"
        print(f"{n:<18} {statistics.median(empty[n]):16.2f} {w}")
    if hasattr(os, "getloadavg"):
        print("load average at end: %.2f %.2f %.2f" % os.getloadavg())
    return 0


if __name__ == "__main__":
    sys.exit(main())
