"""minicnn.cuda: conv2d and pooling, forward and backward, as Numba @cuda.jit kernels.

The functions have the names, arguments and results of minicnn's CPU API
(minicnn.conv2d, minicnn.max_pool2d, ...); they accept NumPy arrays (copied to the
GPU and back) or device arrays (kept on the GPU, so layers chain without copies).

    import minicnn.cuda as mc
    y = mc.conv2d(x, w, b, padding=1)                 # kernel="tiled" (default) or "naive"
    gx, gw, gb = mc.conv2d_backward(g, x, w, padding=1)

Importing needs no GPU.  Launching a kernel needs an NVIDIA GPU, or Numba's CUDA
simulator (NUMBA_ENABLE_CUDASIM=1 set before numba is imported: every CUDA thread
becomes a Python thread, so keep the arrays tiny).  Kernels: minicnn/cuda/kernels.py;
design notes, launch configurations and what the simulator can and cannot check:
docs/cuda.md.
"""
from ._target import CudaUnavailableError, is_available, simulator_enabled, target_name
from .ops import avg_pool2d, avg_pool2d_backward, conv2d, conv2d_backward, max_pool2d, max_pool2d_backward

__all__ = [
    "conv2d", "conv2d_backward", "max_pool2d", "max_pool2d_backward", "avg_pool2d", "avg_pool2d_backward",
    "is_available", "simulator_enabled", "target_name", "CudaUnavailableError",
]
