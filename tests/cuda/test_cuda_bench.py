"""benchmarks/cuda_bench.py runs: without a GPU it says so and exits 0; on the simulator
(forced, tiny sizes) its whole timing loop runs and prints every op."""
import os
import subprocess
import sys
from pathlib import Path

import pytest

from cuda_testutil import IMPORT_ERROR, RUNNABLE, SIMULATOR

if IMPORT_ERROR:
    pytest.skip(f"minicnn.cuda cannot be imported: {IMPORT_ERROR}", allow_module_level=True)

REPO = Path(__file__).resolve().parents[2]
BENCH = REPO / "benchmarks" / "cuda_bench.py"


def bench(*args, simulator):
    env = dict(os.environ)
    env.pop("NUMBA_ENABLE_CUDASIM", None)
    if simulator:
        env["NUMBA_ENABLE_CUDASIM"] = "1"
    return subprocess.run([sys.executable, str(BENCH), *args], capture_output=True, text=True, env=env,
                          cwd=REPO, timeout=300)


@pytest.mark.skipif(RUNNABLE and not SIMULATOR, reason="this machine has a GPU: the benchmark would really run")
def test_without_a_gpu_it_says_so_and_exits_0():
    proc = bench(simulator=False)
    assert proc.returncode == 0 and proc.stderr == ""
    assert "No CUDA GPU found" in proc.stdout


def test_on_the_simulator_it_refuses_unless_forced():
    proc = bench(simulator=True)
    assert proc.returncode == 0 and proc.stderr == ""
    assert "simulator" in proc.stdout and "ms" not in proc.stdout


def test_the_timing_loop_runs_on_the_simulator():
    proc = bench("--allow-simulator", "--batch", "1", "--channels", "1", "--size", "4", "--repeats", "1",
                 simulator=True)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
    for op in ("conv2d naive", "conv2d tiled", "conv2d_backward", "max_pool2d_backward", "avg_pool2d_backward"):
        assert op in proc.stdout
