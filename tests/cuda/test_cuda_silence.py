"""Importing minicnn.cuda and running its kernels prints nothing (stderr output fails an
nbgrader cell), and with no GPU and no simulator the import still works and a launch
raises a clear error.

Each check runs in a fresh Python, because NUMBA_ENABLE_CUDASIM only counts if it is
set before numba is imported; so these tests run in every pytest session, simulator or
not.
"""
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from cuda_testutil import IMPORT_ERROR, RUNNABLE, SIMULATOR

if IMPORT_ERROR:
    pytest.skip(f"minicnn.cuda cannot be imported: {IMPORT_ERROR}", allow_module_level=True)

REPO = Path(__file__).resolve().parents[2]

EVERY_OP = textwrap.dedent("""
    import warnings
    warnings.simplefilter("always")        # show every warning, even those hidden by default
    import numpy as np
    import minicnn.cuda as mc
    from numba import cuda
    rng = np.random.default_rng(0)
    for dt in (np.float32, np.float64):
        x = rng.standard_normal((1, 2, 5, 6)).astype(dt)
        w = rng.standard_normal((2, 2, 3, 3)).astype(dt)
        for xs in (x, cuda.to_device(x)):                  # NumPy in, and device arrays in
            for kernel in ("naive", "tiled"):
                y = mc.conv2d(xs, w, np.ones(2, dt), 1, 1, kernel=kernel)
            mc.conv2d_backward(y, xs, w, 1, 1)
            p = mc.max_pool2d(xs, 2)
            mc.max_pool2d_backward(p, xs, 2)
            p = mc.avg_pool2d(xs, 3, 2, 1, count_include_pad=False)
            mc.avg_pool2d_backward(p, xs, 3, 2, 1, count_include_pad=False)
        try:
            mc.conv2d(cuda.to_device(np.full_like(x, np.nan)), w)
        except ValueError:
            pass
""")


def run(script, simulator):
    env = dict(os.environ)
    env.pop("NUMBA_ENABLE_CUDASIM", None)
    if simulator:
        env["NUMBA_ENABLE_CUDASIM"] = "1"
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    return subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, cwd=REPO,
                          timeout=300)


def test_every_op_prints_nothing_on_the_simulator():
    proc = run(EVERY_OP, simulator=True)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == "", f"stderr was not empty:\n{proc.stderr}"
    assert proc.stdout == ""


@pytest.mark.skipif(SIMULATOR or not RUNNABLE, reason="needs a real CUDA GPU")
def test_every_op_prints_nothing_on_a_gpu():
    proc = run(EVERY_OP, simulator=False)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == "", f"stderr was not empty:\n{proc.stderr}"


NO_GPU = textwrap.dedent("""
    import warnings
    warnings.simplefilter("always")
    import numpy as np
    import minicnn.cuda as mc
    if mc.is_available():
        print("HAS-GPU")
        raise SystemExit(0)
    try:
        mc.conv2d(np.ones((1, 1, 3, 3)), np.ones((1, 1, 2, 2)))
    except mc.CudaUnavailableError as exc:
        print(exc)
    try:
        mc.conv2d(np.ones((1, 1, 3, 3)), np.ones((1, 1, 5, 5)))      # bad arguments: still the CPU's error
    except ValueError as exc:
        print("ValueError")
""")


def test_without_gpu_or_simulator_import_is_silent_and_launch_explains():
    proc = run(NO_GPU, simulator=False)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == "", f"stderr was not empty:\n{proc.stderr}"
    if proc.stdout.startswith("HAS-GPU"):
        pytest.skip("this machine has a CUDA GPU")
    assert "no usable CUDA GPU" in proc.stdout and "NUMBA_ENABLE_CUDASIM=1" in proc.stdout, proc.stdout
    assert proc.stdout.rstrip().endswith("ValueError")


def test_quiet_launch_silences_only_the_launch_warnings():
    """What quiet_launch hides on a real GPU (the simulator never emits these), and that
    it hides nothing else."""
    import warnings
    from minicnn.cuda._target import quiet_launch
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with quiet_launch():
            warnings.warn("Grid size 1 will likely result in GPU under-utilization due to low occupancy.")
            warnings.warn("Host array used in CUDA kernel will incur copy overhead to/from device.")
            # as Numba prints them where colorama is installed (bold, then reset)
            warnings.warn("\x1b[1mGrid size 2 will likely result in GPU under-utilization due to low occupancy.\x1b[0m")
            warnings.warn("\x1b[1mHost array used in CUDA kernel will incur copy overhead to/from device.\x1b[0m")
            warnings.warn("\x1b[1msomething else, in bold\x1b[0m")
            warnings.warn("something else")
            warnings.warn("a deprecation", DeprecationWarning)
    assert [str(w.message) for w in caught] == ["\x1b[1msomething else, in bold\x1b[0m", "something else",
                                                "a deprecation"]
