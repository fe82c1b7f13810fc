"""The CUDA target: where `numba.cuda` comes from, whether kernels can run, and the
few Numba warnings that a launch would otherwise print.

`from numba import cuda` gives the NVIDIA-maintained `numba-cuda` package when it
is installed (it redirects the import) and Numba's deprecated built-in target
otherwise; minicnn uses only the API the two share, so either works.  Nothing
here talks to a GPU at import time: a machine without one can import
minicnn.cuda, and only launching a kernel raises CudaUnavailableError.
"""
from __future__ import annotations

import contextlib
import importlib
import warnings

try:
    from numba import cuda
except ImportError as exc:  # a future Numba without the built-in target, and no numba-cuda
    raise ImportError(
        "minicnn.cuda needs Numba's CUDA target. Install it with  pip install 'numba-cuda>=0.30'  "
        f"(the import of numba.cuda failed: {exc})"
    ) from exc


class CudaUnavailableError(RuntimeError):
    """A kernel was launched on a machine with no usable CUDA GPU and the simulator off."""


def simulator_enabled() -> bool:
    """True when Numba's CUDA simulator is on (NUMBA_ENABLE_CUDASIM=1 before Numba was imported).

    numba-cuda keeps its settings in numba.cuda.core.config, the built-in target in
    numba.core.config; both read the same environment variable at import."""
    for name in ("numba.cuda.core.config", "numba.core.config"):
        try:
            config = importlib.import_module(name)
        except ImportError:
            continue
        if hasattr(config, "ENABLE_CUDASIM"):
            return bool(config.ENABLE_CUDASIM)
    return False


SIMULATOR = simulator_enabled()


def target_name() -> str:
    """'numba-cuda' or 'built-in' (Numba's own, deprecated, numba.cuda), plus ' (simulator)'."""
    name = "numba-cuda" if getattr(cuda, "implementation", "") == "NVIDIA" else "built-in"
    return name + (" (simulator)" if SIMULATOR else "")


def is_available() -> bool:
    """True if kernels can run: a working CUDA GPU and driver, or the simulator."""
    if SIMULATOR:
        return True
    try:
        return bool(cuda.is_available())
    except Exception:  # a broken driver install counts as "no GPU"
        return False


def require_device() -> None:
    """Raise CudaUnavailableError, saying what to do, unless kernels can run."""
    if not is_available():
        raise CudaUnavailableError(
            f"minicnn.cuda found no usable CUDA GPU (numba.cuda.is_available() is False; target: "
            f"{target_name()}). Run on a machine with an NVIDIA GPU and driver, or use the CUDA simulator: "
            "set NUMBA_ENABLE_CUDASIM=1 in the environment *before* Python imports numba. The CPU functions "
            "minicnn.conv2d, minicnn.max_pool2d, ... compute the same results."
        )


def is_device_array(a) -> bool:
    """True for arrays that live on the GPU: Numba device arrays (real or simulated) and,
    on a real GPU, anything exporting __cuda_array_interface__ (CuPy, PyTorch CUDA tensors)."""
    if getattr(a, "__cuda_ndarray__", False):
        return True
    return not SIMULATOR and hasattr(a, "__cuda_array_interface__")


def as_numba_device_array(a):
    """A Numba device array viewing the same GPU memory as `a` (no copy)."""
    if getattr(a, "__cuda_ndarray__", False):
        return a
    return cuda.as_cuda_array(a)


# The two messages Numba prints at launch that a library should not pass on to its users:
#  * "Grid size N will likely result in GPU under-utilization due to low occupancy." is
#    emitted for every launch with fewer than 128 blocks.  Small layers (and every test
#    shape) launch few blocks by nature; the benchmark reports speed instead.
#  * "Host array used in CUDA kernel will incur copy overhead to/from device." is emitted
#    when a NumPy array is passed straight to a kernel.  minicnn always copies explicitly
#    (cuda.to_device), so it should never fire; it is listed in case a future Numba warns
#    on a path we did not foresee.
# Both are NumbaPerformanceWarnings; we match them by message, not by class, because
# numba-cuda and the built-in target define that class in different modules.  Nothing
# else is silenced.  Numba wraps the message in terminal colour codes when colorama is
# installed ("\x1b[1mGrid size 1 ...\x1b[0m", seen on an H200 machine), and a warnings
# filter matches from the message's first character, so the codes may come first.
_COLOUR_CODES = r"(?:\x1b\[[0-9;]*m)*"
_QUIET_MESSAGES = (
    _COLOUR_CODES + r"Grid size \d+ will likely result in GPU under-utilization due to low occupancy",
    _COLOUR_CODES + r"Host array used in CUDA kernel will incur copy overhead",
)


@contextlib.contextmanager
def quiet_launch():
    """Silence exactly the launch warnings above for the duration of the block.

    (warnings.catch_warnings is process-wide, so this is not thread-safe; neither is
    launching kernels from several Python threads on one stream.)"""
    with warnings.catch_warnings():
        for message in _QUIET_MESSAGES:
            warnings.filterwarnings("ignore", message=message)
        yield
