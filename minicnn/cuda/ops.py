"""The host side: minicnn's conv2d / pooling API, computed by the CUDA kernels.

Every function checks its arguments exactly as the CPU function of the same name
does (the same argument checks and the same geometry, `minicnn.geometry`, so the error
messages are the same), then:

  1. copies NumPy inputs to the GPU (device-array inputs are used where they are),
  2. allocates the outputs on the GPU and launches the kernels,
  3. returns NumPy arrays if every array argument was a NumPy array (or list, ...),
     and device arrays, left on the GPU, if any argument was a device array.

So a network can keep its activations on the GPU between layers:

    from numba import cuda
    x = cuda.to_device(images)                       # one copy in
    h = minicnn.cuda.conv2d(x, w1, b1, padding=1)    # device array
    h = minicnn.cuda.max_pool2d(h, 2)                # still on the device
    out = h.copy_to_host()                           # one copy out

Device-array inputs must already have the dtype the op computes in (float32 if
every float input is float32, else float64) and be C-contiguous; any other device
array is converted through the host (correct, but it costs two copies).  Inputs
are never written to.  Launches are asynchronous: a returned device array is
ready once the host reads it (copy_to_host waits for the kernels).
"""
from __future__ import annotations

import math

import numpy as np

from ..argcheck import as_array, check_finite as _check_finite, check_grad_out, flag, float_dtype
from ..geometry import bias_vector, conv_geometry, pool_geometry
from . import kernels as _k
from ._target import as_numba_device_array, cuda, is_device_array, quiet_launch, require_device

__all__ = ["conv2d", "conv2d_backward", "max_pool2d", "max_pool2d_backward", "avg_pool2d",
           "avg_pool2d_backward"]

KERNELS = ("naive", "tiled")


# --------------------------------------------------------------------------- operands

def _adopt(a):
    """Device arrays of any library (CuPy, PyTorch, ...) as Numba device arrays; the rest as given."""
    return as_numba_device_array(a) if a is not None and is_device_array(a) else a


def _any_on_device(*arrays) -> bool:
    return any(a is not None and is_device_array(a) for a in arrays)


def _dtype_of(*arrays) -> np.dtype:
    """The dtype the op computes in, by the CPU rule (float32 only if all floats are float32)."""
    return float_dtype(*[a.dtype if is_device_array(a) else np.asarray(a).dtype for a in arrays if a is not None])


def _operand(name, value, ndim, layout, dtype):
    """A validated array: a device array kept as it is when it already has `ndim`
    dimensions, `dtype` and C order; otherwise a NumPy array from as_array (which
    converts, or raises the CPU's error).  An unsuitable device array goes through
    the host, so that conversions and error messages are the CPU's own."""
    if is_device_array(value):
        if value.ndim == ndim and value.dtype == dtype and value.is_c_contiguous():
            return value
        value = value.copy_to_host()
    return as_array(name, value, ndim, layout, dtype)


def _bias(bias, n_filters, dtype, check):
    """Bias (K,) as geometry.bias_vector makes it (zeros when None), possibly on the device."""
    if is_device_array(bias):
        if bias.ndim == 1 and bias.dtype == dtype and bias.is_c_contiguous() and bias.shape[0] == n_filters:
            if check:
                _finite("bias", bias)
            return bias
        bias = bias.copy_to_host()
    return bias_vector(bias, n_filters, dtype, check)


def _finite(name, arr) -> None:
    """check_finite for either kind of array.  On the device a kernel raises a flag; only
    if it is raised is the array copied back, to report the first bad index as the CPU does."""
    if not is_device_array(arr):
        _check_finite(name, arr)
        return
    require_device()
    with quiet_launch():
        flag = cuda.to_device(np.zeros(1, dtype=np.int32))
        _launch_flat(_k.kernels_for(arr.dtype).flag_nonfinite, arr.size, arr.reshape(arr.size), flag)
        bad = flag.copy_to_host()[0]
    if bad:
        _check_finite(name, arr.copy_to_host())


def _to_device(a):
    return a if is_device_array(a) else cuda.to_device(a)


def _result(arrays, on_device):
    """Device arrays as they are, or copied back to NumPy (copy_to_host waits for the kernels)."""
    if on_device:
        return arrays
    if isinstance(arrays, tuple):
        return tuple(a.copy_to_host() for a in arrays)
    return arrays.copy_to_host()


def _launch_flat(kernel, size, *args):
    """Launch a one-thread-per-element kernel over `size` elements (see kernels.flat_config)."""
    if size == 0:
        return
    blocks, threads = _k.flat_config(size)
    kernel[blocks, threads](*args)


# --------------------------------------------------------------------------- conv2d

def conv2d(x, weight, bias=None, stride=1, padding=0, dilation=1, *, strict=False, check_finite=True,
           kernel="tiled"):
    """2-D convolution (cross-correlation) on the GPU; same arguments and result as minicnn.conv2d.

    Inputs:
      x        (N, C, H, W) images, a NumPy array or a device array
      weight   (K, C, kH, kW), bias (K,) or None
      stride, dilation   int or (rows, cols), >= 1
      padding  int or (rows, cols) >= 0, or 'valid', 'same', 'full'
      strict   raise instead of flooring when the filter does not tile the input
      check_finite  refuse NaN / inf inputs (on the device: one extra tiny kernel each)
      kernel   'tiled' (shared-memory tiles, the default) or 'naive' (one thread per
               output reading straight from global memory; the version to read first)
    Returns: (N, K, H_out, W_out), H_out = floor((H + 2p - d(kH - 1) - 1)/s) + 1: a NumPy
    array, or a device array if any input was one.
    """
    return _conv2d(x, weight, bias, stride, padding, dilation, strict, check_finite, kernel, None)


def _conv2d(x, weight, bias, stride, padding, dilation, strict, check_finite, kernel, tile):
    """conv2d with an optional forced block shape `tile` = (rows, cols) (used by the tests)."""
    if kernel not in KERNELS:
        raise ValueError(f"kernel must be 'naive' or 'tiled', got {kernel!r}")
    x, weight, bias = _adopt(x), _adopt(weight), _adopt(bias)
    on_device = _any_on_device(x, weight, bias)
    dtype = _dtype_of(x, weight, bias)
    x = _operand("x", x, 4, "(N, C, H, W)", dtype)
    weight = _operand("weight", weight, 4, "(K, C, kH, kW)", dtype)
    g = conv_geometry("conv2d", x.shape, weight.shape, stride, padding, dilation, strict)
    b = _bias(bias, weight.shape[0], dtype, check_finite)
    if check_finite:
        _finite("x", x)
        _finite("weight", weight)
    require_device()
    n, k = x.shape[0], weight.shape[0]
    (block_h, block_w), halo = _k.conv_tile((g.out_h, g.out_w), (g.kh, g.kw), (g.sh, g.sw), (g.dh, g.dw),
                                            dtype.itemsize, tile)
    grid = (math.ceil(g.out_w / block_w), math.ceil(g.out_h / block_h), min(n * k, _k.MAX_GRID_Z))
    block = (block_w, block_h)       # CUDA's x axis first: x runs along the columns
    K = _k.kernels_for(dtype)
    with quiet_launch():
        xd, wd, bd = _to_device(x), _to_device(weight), _to_device(b)
        out = cuda.device_array((n, k, g.out_h, g.out_w), dtype=dtype)
        if kernel == "tiled" and halo is not None:
            shared_bytes = halo[0] * halo[1] * dtype.itemsize
            K.conv2d_tiled[grid, block, 0, shared_bytes](xd, wd, bd, out, g.sh, g.sw, g.ph, g.pw, g.dh, g.dw,
                                                          halo[0], halo[1])
        else:  # 'naive', or a halo too large for shared memory even with a 1x1 block
            K.conv2d_naive[grid, block](xd, wd, bd, out, g.sh, g.sw, g.ph, g.pw, g.dh, g.dw)
    return _result(out, on_device)


def conv2d_backward(grad_out, x, weight, stride=1, padding=0, dilation=1, *, input_grad=True):
    """Gradients of conv2d on the GPU; same arguments and results as minicnn.conv2d_backward.

    Inputs: grad_out (N, K, H_out, W_out) = dL/d(output); x, weight and settings as given to conv2d;
    input_grad False: grad_x is not computed, None in its place (a network's first layer).
    Returns: (grad_x (N, C, H, W), grad_weight (K, C, kH, kW), grad_bias (K,)).

    Three kernels, each with one thread per element of the gradient it computes and no
    atomics, so two runs give bit-identical results:
      grad_x       each input cell gathers w * grad_out from the outputs that read it
      grad_weight  each weight sums grad_out * x over the batch and all output positions
      grad_bias    each filter sums its grad_out plane
    """
    input_grad = flag("conv2d_backward: input_grad", input_grad)
    grad_out, x, weight = _adopt(grad_out), _adopt(x), _adopt(weight)
    on_device = _any_on_device(grad_out, x, weight)
    dtype = _dtype_of(grad_out, x, weight)
    x = _operand("x", x, 4, "(N, C, H, W)", dtype)
    weight = _operand("weight", weight, 4, "(K, C, kH, kW)", dtype)
    grad_out = _operand("grad_out", grad_out, 4, "(N, K, H_out, W_out)", dtype)
    g = conv_geometry("conv2d_backward", x.shape, weight.shape, stride, padding, dilation, False)
    check_grad_out(grad_out, (x.shape[0], weight.shape[0], g.out_h, g.out_w), "conv2d")
    require_device()
    K = _k.kernels_for(dtype)
    with quiet_launch():
        gd, xd, wd = _to_device(grad_out), _to_device(x), _to_device(weight)
        grad_w = cuda.device_array(weight.shape, dtype=dtype)
        grad_b = cuda.device_array((weight.shape[0],), dtype=dtype)
        if input_grad:
            grad_x = cuda.device_array(x.shape, dtype=dtype)
            _launch_flat(K.conv2d_grad_input, grad_x.size, gd, wd, grad_x, g.sh, g.sw, g.ph, g.pw, g.dh, g.dw)
        _launch_flat(K.conv2d_grad_weight, grad_w.size, gd, xd, grad_w, g.sh, g.sw, g.ph, g.pw, g.dh, g.dw)
        _launch_flat(K.conv2d_grad_bias, grad_b.size, gd, grad_b)
    if not input_grad:
        return (None,) + _result((grad_w, grad_b), on_device)
    return _result((grad_x, grad_w, grad_b), on_device)


# --------------------------------------------------------------------------- pooling

def _pool_inputs(x, grad_out=None):
    """x (and grad_out) validated as the CPU's pool._inputs does; plus 'any on the device?'."""
    x, grad_out = _adopt(x), _adopt(grad_out)
    on_device = _any_on_device(x, grad_out)
    dtype = _dtype_of(x, grad_out)
    x = _operand("x", x, 4, "(N, C, H, W)", dtype)
    if grad_out is not None:
        grad_out = _operand("grad_out", grad_out, 4, "(N, C, H_out, W_out)", dtype)
    return x, grad_out, dtype, on_device


def _max_pool_launch(xd, dtype, g, want_arg):
    """Max pooling of xd with the PoolGeometry g; with want_arg, also each window's argmax."""
    n, c = xd.shape[0], xd.shape[1]
    out = cuda.device_array((n, c, g.out_h, g.out_w), dtype=dtype)
    arg = cuda.device_array((n, c, g.out_h, g.out_w) if want_arg else (1, 1, 1, 1), dtype=np.int64)
    _launch_flat(_k.kernels_for(dtype).max_pool_forward, out.size, xd, out, arg, g.kh, g.kw, g.sh, g.sw, g.ph,
                 g.pw, want_arg)
    return out, arg


def max_pool2d(x, kernel_size, stride=None, padding=0, *, strict=False, check_finite=True):
    """Max pooling on the GPU; same arguments and result as minicnn.max_pool2d.

    Inputs: x (N, C, H, W); kernel_size, stride (default: kernel_size), padding int or pair
    (at most half the kernel; padding cells hold -inf).
    Returns: (N, C, H_out, W_out).  One thread per output value.
    """
    x, _, dtype, on_device = _pool_inputs(x)
    g = pool_geometry("max_pool2d", x.shape, kernel_size, stride, padding, strict)
    if check_finite:
        _finite("x", x)
    require_device()
    with quiet_launch():
        out, _ = _max_pool_launch(_to_device(x), dtype, g, False)
    return _result(out, on_device)


def max_pool2d_backward(grad_out, x, kernel_size, stride=None, padding=0):
    """Gradient of max pooling on the GPU; same arguments and result as minicnn.max_pool2d_backward.

    Each window's gradient goes to the first (row-major) cell holding its maximum, and a
    cell collects the gradients of all the windows it wins.  Two kernels, no atomics:
    one thread per window finds its argmax, then one thread per input cell adds up
    grad_out over the windows that contain it and chose it.
    """
    x, grad_out, dtype, on_device = _pool_inputs(x, grad_out)
    g = pool_geometry("max_pool2d_backward", x.shape, kernel_size, stride, padding, False)
    check_grad_out(grad_out, (x.shape[0], x.shape[1], g.out_h, g.out_w), "max_pool2d")
    require_device()
    with quiet_launch():
        xd, gd = _to_device(x), _to_device(grad_out)
        _, arg = _max_pool_launch(xd, dtype, g, True)
        grad_x = cuda.device_array(x.shape, dtype=dtype)
        _launch_flat(_k.kernels_for(dtype).max_pool_grad_input, grad_x.size, gd, arg, grad_x, g.kh, g.kw, g.sh,
                     g.sw, g.ph, g.pw)
    return _result(grad_x, on_device)


def avg_pool2d(x, kernel_size, stride=None, padding=0, count_include_pad=True, *, strict=False,
               check_finite=True):
    """Average pooling on the GPU; same arguments and result as minicnn.avg_pool2d.

    Padding cells hold 0; count_include_pad=True divides every window by kH*kW, False by
    the number of its cells inside the image.  One thread per output value.
    """
    x, _, dtype, on_device = _pool_inputs(x)
    g = pool_geometry("avg_pool2d", x.shape, kernel_size, stride, padding, strict)
    if check_finite:
        _finite("x", x)
    require_device()
    with quiet_launch():
        xd = _to_device(x)
        out = cuda.device_array((x.shape[0], x.shape[1], g.out_h, g.out_w), dtype=dtype)
        _launch_flat(_k.kernels_for(dtype).avg_pool_forward, out.size, xd, out, g.kh, g.kw, g.sh, g.sw, g.ph, g.pw,
                     bool(count_include_pad))
    return _result(out, on_device)


def avg_pool2d_backward(grad_out, x, kernel_size, stride=None, padding=0, count_include_pad=True):
    """Gradient of average pooling on the GPU; same arguments and result as
    minicnn.avg_pool2d_backward: every cell of a window gets grad / divisor.
    One thread per input cell gathers from the windows containing it (no atomics)."""
    x, grad_out, dtype, on_device = _pool_inputs(x, grad_out)
    g = pool_geometry("avg_pool2d_backward", x.shape, kernel_size, stride, padding, False)
    check_grad_out(grad_out, (x.shape[0], x.shape[1], g.out_h, g.out_w), "avg_pool2d")
    require_device()
    with quiet_launch():
        gd = _to_device(grad_out)
        grad_x = cuda.device_array(x.shape, dtype=dtype)
        _launch_flat(_k.kernels_for(dtype).avg_pool_grad_input, grad_x.size, gd, grad_x, g.kh, g.kw, g.sh, g.sw,
                     g.ph, g.pw, bool(count_include_pad))
    return _result(grad_x, on_device)
