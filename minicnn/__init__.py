"""minicnn: convolutional neural networks, one readable Numba loop at a time.

The functional API follows torch.nn.functional's conventions (NCHW arrays,
cross-correlation, weight (K, C, kH, kW)).  Every op has a plain teaching loop
(`impl="loop"`) and a faster kernel (`impl="fast"`, the default) that tests prove equal.
"""
from . import simd

simd.configure()        # before anything imports Numba: the vector width (minicnn/simd.py)

from . import unchecked

unchecked.install()     # minicnn's kernels compiled without bounds checks (minicnn/unchecked.py)

from .allocator import keep_freed_memory
from .activations import relu, relu_backward, sigmoid, sigmoid_backward, tanh, tanh_backward
from .conv import (conv1d, conv1d_backward, conv2d, conv2d_backward, conv_transpose2d,
                   conv_transpose2d_backward, convolve2d, correlate2d, pad2d)
from .dense import dense, dense_backward
from .gradcheck import GradcheckResult, gradcheck, numerical_gradient
from .losses import softmax, softmax_cross_entropy, softmax_cross_entropy_backward
from .pool import avg_pool2d, avg_pool2d_backward, max_pool2d, max_pool2d_backward
from .shapes import (conv2d_param_count, conv_output_size, conv_transpose_output_size, dense_param_count,
                     pool_output_size, receptive_field)

__version__ = "0.1.0"

__all__ = [
    "conv2d", "conv2d_backward", "conv1d", "conv1d_backward", "conv_transpose2d", "conv_transpose2d_backward",
    "correlate2d", "convolve2d", "pad2d",
    "max_pool2d", "max_pool2d_backward", "avg_pool2d", "avg_pool2d_backward",
    "dense", "dense_backward",
    "relu", "relu_backward", "tanh", "tanh_backward", "sigmoid", "sigmoid_backward",
    "softmax", "softmax_cross_entropy", "softmax_cross_entropy_backward",
    "conv_output_size", "pool_output_size", "conv_transpose_output_size", "conv2d_param_count",
    "dense_param_count", "receptive_field",
    "gradcheck", "numerical_gradient", "GradcheckResult",
    "keep_freed_memory",
]
