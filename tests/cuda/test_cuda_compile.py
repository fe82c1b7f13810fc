"""Every kernel compiles for a real GPU, and the machine code says what the docs claim.

The simulator runs the kernels as plain Python, so it accepts code that Numba's CUDA
compiler would reject (or would silently compile into float64 arithmetic).  This test
compiles each kernel, for float32 and float64, to PTX (the GPU's assembly) for
compute capability 7.5 with NVVM - no GPU needed, only the CUDA compiler libraries
(e.g. `pip install "numba-cuda[cu12]"`; skipped where they are missing) - and checks:
  * the float32 kernels contain no float64 instructions (no accidental promotion);
  * no kernel contains an atomic instruction (atom.* / red.*): the backward is atomics-free;
  * the tiled kernel has exactly its two barriers (bar.sync) and uses shared memory.
It runs in a fresh Python without NUMBA_ENABLE_CUDASIM (the simulator has no compiler).
"""
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from cuda_testutil import IMPORT_ERROR

if IMPORT_ERROR:
    pytest.skip(f"minicnn.cuda cannot be imported: {IMPORT_ERROR}", allow_module_level=True)

REPO = Path(__file__).resolve().parents[2]

SCRIPT = textwrap.dedent("""
    import json, sys
    import numpy as np
    import numba
    from numba import cuda, types as T

    def probe(a):
        a[0] = 1.0
    try:
        cuda.compile_ptx(probe, (T.float32[::1],), cc=(7, 5))
    except Exception as exc:   # no NVVM / CUDA toolkit libraries here
        print(json.dumps({"skip": f"cannot compile PTX here ({type(exc).__name__}: {exc})"}))
        raise SystemExit(0)

    # Device functions are compiled for "the current device"; there is none, so name one.
    import numba.cuda.dispatcher as dispatcher
    class FakeDevice:
        compute_capability = (7, 5)
    dispatcher.get_current_device = lambda: FakeDevice()

    from minicnn.cuda.kernels import kernels_for
    result = {}
    for dt in ("float32", "float64"):
        ns = kernels_for(np.dtype(dt))
        f = numba.from_dtype(np.dtype(dt))
        a4, a1 = T.Array(f, 4, "C"), T.Array(f, 1, "C")
        i4, i1, I, B = T.Array(T.int64, 4, "C"), T.Array(T.int32, 1, "C"), T.int64, T.boolean
        sigs = {
            "conv2d_naive": (a4, a4, a1, a4) + (I,) * 6,
            "conv2d_tiled": (a4, a4, a1, a4) + (I,) * 8,
            "conv2d_grad_input": (a4, a4, a4) + (I,) * 6,
            "conv2d_grad_weight": (a4, a4, a4) + (I,) * 6,
            "conv2d_grad_bias": (a4, a1),
            "max_pool_forward": (a4, a4, i4) + (I,) * 6 + (B,),
            "max_pool_grad_input": (a4, i4, a4) + (I,) * 6,
            "avg_pool_forward": (a4, a4) + (I,) * 6 + (B,),
            "avg_pool_grad_input": (a4, a4) + (I,) * 6 + (B,),
            "flag_nonfinite": (a1, i1),
        }
        for name, sig in sigs.items():
            ptx, _ = cuda.compile_ptx(getattr(ns, name).py_func, sig, cc=(7, 5))
            ops = [line.split()[0] for line in ptx.splitlines()
                   if line.strip() and not line.strip().startswith(("//", ".", "{", "}", "$"))]
            result[f"{name}[{dt}]"] = {
                "f64": sum(op.endswith(".f64") or ".f64." in op for op in ops),
                "atomics": [op for op in ops if op.startswith(("atom.", "red."))],
                "bar_sync": sum(op.startswith("bar.sync") or op.startswith("barrier.sync") for op in ops),
                "shared": ".shared" in ptx,
            }
    print(json.dumps(result))
""")


@pytest.fixture(scope="module")
def compiled():
    env = dict(os.environ)
    env.pop("NUMBA_ENABLE_CUDASIM", None)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    proc = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, env=env, cwd=REPO,
                          timeout=600)
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    if "skip" in result:
        pytest.skip(result["skip"])
    return result


def test_all_twenty_kernels_compile(compiled):
    assert len(compiled) == 20


def test_float32_kernels_do_no_float64_arithmetic(compiled):
    bad = {k: v["f64"] for k, v in compiled.items() if k.endswith("[float32]") and v["f64"]}
    assert not bad, f"float64 instructions in float32 kernels: {bad}"


def test_no_atomics(compiled):
    bad = {k: v["atomics"] for k, v in compiled.items() if v["atomics"]}
    assert not bad, bad


def test_barriers_and_shared_memory(compiled):
    for dt in ("float32", "float64"):
        tiled = compiled[f"conv2d_tiled[{dt}]"]
        assert tiled["bar_sync"] == 2 and tiled["shared"], tiled
    others = {k: v for k, v in compiled.items() if not k.startswith("conv2d_tiled")}
    assert not any(v["bar_sync"] or v["shared"] for v in others.values()), others
