"""Which vector registers Numba's code uses here: zmm (512-bit), ymm (256-bit), counted in the
machine code of a plain @njit axpy and of minicnn's convolution pass (`taps_pass`, the inner loop
of the forward; until 2026-12-02 this counted `correlate_part`, which then still held the pass's code:
since the shares call their tasks by address, see threads.py, it holds only the loop over tasks).

    python benchmarks/probes/vector_width.py                          # minicnn's choice (minicnn/simd.py)
    MINICNN_VECTOR_WIDTH=llvm python benchmarks/probes/vector_width.py   # LLVM's own choice

Use a fresh NUMBA_CACHE_DIR (a function loaded from the cache may have no assembly to show)."""
import re

import minicnn  # first: its vector-width choice must be made before Numba is imported
import numba
import numpy as np
from minicnn.kernels.fast import passes as fast_passes


def registers(asm: str) -> dict:
    return {"zmm": len(re.findall(r"zmm\d", asm)), "ymm": len(re.findall(r"ymm\d", asm))}


@numba.njit
def axpy(a, x, y):
    for i in range(x.size):
        y[i] += a * x[i]


def main():
    print("vector width:", minicnn.simd.status()["reason"])
    print("numba", numba.__version__, "CPU name:", numba.config.CPU_NAME or "(host)")
    x = np.ones(4096, np.float32)
    axpy(np.float32(2), x, x.copy())
    print("axpy", registers(next(iter(axpy.inspect_asm().values()))))
    rng = np.random.default_rng(0)
    minicnn.conv2d(rng.random((16, 6, 14, 14), dtype=np.float32), rng.random((16, 6, 5, 5), dtype=np.float32))
    for asm in fast_passes.taps_pass.inspect_asm().values():
        print("taps_pass", registers(asm))


if __name__ == "__main__":
    main()
