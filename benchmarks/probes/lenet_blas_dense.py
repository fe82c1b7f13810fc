"""The benchmark's LeNet-5 section with the dense layers put back on NumPy's matrix product
(OpenBLAS), as they were before fast_dense.py, to see what OpenBLAS's spinning workers cost.

    python benchmarks/probes/lenet_blas_dense.py          # dense layers through OpenBLAS
    python benchmarks/probes/lenet_blas_dense.py --numba  # the same run with minicnn's own kernels
"""
import runpy
import sys
from pathlib import Path

from minicnn.kernels import KERNELS

if "--numba" not in sys.argv:
    KERNELS["fast"]["dense_forward"] = lambda x, w, b: x @ w.T + b
    KERNELS["fast"]["dense_backward"] = lambda g, x, w: (g @ w, g.T @ x, g.sum(axis=0))
bench = Path(__file__).resolve().parents[1] / "cpu_bench.py"
sys.path.insert(0, str(bench.parent))
sys.argv = [str(bench), "--sections", "lenet", "--threads", "1,2", "--rounds", "21",
            "--json", str(bench.parent / "results" / "lenet_blas_dense.json")]
runpy.run_path(str(bench), run_name="__main__")
