"""The pooling layers, over minicnn.max_pool2d / avg_pool2d and their backwards (or minicnn.cuda's)."""
from __future__ import annotations

from ..argcheck import int_pair
from ..geometry import pool_geometry
from .base import (KernelOps, Layer, as_input, errors_prefixed, hold, pair_text, reuse_one_of,
                   reuse_or_new)


class Pool2D(Layer):
    """What max and average pooling share; a subclass names its op (`_op`) and its label (`_name`).

    kernel_size and stride: an int or a pair (rows, cols), >= 1 (stride defaults to the kernel
    size: windows side by side); padding: an int or a pair, >= 0.  No parameters.

    On the CPU the layer writes its output into one of its previous two outputs and its input
    gradient into the previous one (the functions' `out`) whenever nothing outside the layer
    refers to them any more (base.reuse_one_of, base.reuse_or_new), so a training loop allocates
    no new arrays for them.  The cost: up to two outputs and one input gradient stay alive
    between steps (for LeNet-5's first pooling at batch 64 in float32, 2 x 0.3 MB and 1.2 MB)."""
    _op = ""
    _name = ""

    def __init__(self, kernel_size, stride=None, padding=0, *, backend="cpu", impl="fast", label=None):
        with errors_prefixed(f"{type(self).__name__}: "):
            self.kernel_size = int_pair("kernel_size", kernel_size, 1)
            self.stride = self.kernel_size if stride is None else int_pair("stride", stride, 1)
            self.padding = int_pair("padding", padding, 0)
        self._ops = KernelOps(backend, impl)
        self.backend = backend
        self._ys = [None, None]    # the last two outputs, reused when free (backend "cpu")
        self._gx = None            # the last input gradient, likewise
        super().__init__(label)

    def default_label(self):
        pad = "" if self.padding == (0, 0) else f", p={pair_text(self.padding)}"
        return f"{self._name} (f={pair_text(self.kernel_size)}, s={pair_text(self.stride)}{pad})"

    def _forward(self, x):
        x = as_input(x, 4, "(N, C, H, W)")
        op = self._ops(self._op)
        if self.backend != "cpu":     # minicnn.cuda's ops take no `out`
            y = op(x, self.kernel_size, self.stride, self.padding)
        elif self._cache is not None and self._cache[0].shape == x.shape:
            out = reuse_one_of(self._ys, self._cache[1], x.dtype)     # the same input shape: the same output shape
            y = op(x, self.kernel_size, self.stride, self.padding, out=out)
        else:       # a first output (or a new shape): the op sizes it, and it takes the oldest entry's place
            y = op(x, self.kernel_size, self.stride, self.padding)
            hold(self._ys, y)
        self._cache = (x, y.shape)
        return y

    def _backward(self, grad_out):
        x, y_shape = self._cache
        g = self._check_grad(grad_out, y_shape)
        op = self._ops(self._op + "_backward")
        if self.backend != "cpu" or g.dtype != x.dtype:    # no `out` on CUDA; a mixed dtype: the op picks it
            return op(g, x, self.kernel_size, self.stride, self.padding)
        self._gx = gx = op(g, x, self.kernel_size, self.stride, self.padding,
                           out=reuse_or_new(self._gx, x.shape, x.dtype))
        return gx

    def output_shape(self, input_shape):
        if len(input_shape) != 3:
            raise ValueError(f"{self!r}: expects a (C, H, W) input, got {tuple(input_shape)}")
        g = pool_geometry(repr(self), (1, *input_shape), self.kernel_size, self.stride, self.padding)
        return (input_shape[0], g.out_h, g.out_w)

    def config(self):
        return {"kernel_size": list(self.kernel_size), "stride": list(self.stride), "padding": list(self.padding),
                **super().config()}

    def __repr__(self):
        return (f"{type(self).__name__}(kernel_size={pair_text(self.kernel_size)}, stride={pair_text(self.stride)}"
                + ("" if self.padding == (0, 0) else f", padding={pair_text(self.padding)}") + ")")


class MaxPool2D(Pool2D):
    """Max pooling: (N, C, H, W) -> (N, C, H_out, W_out); the gradient goes to each window's maximum."""
    _op, _name = "max_pool2d", "Max pooling"


class AvgPool2D(Pool2D):
    """Average pooling: (N, C, H, W) -> (N, C, H_out, W_out); each window cell gets grad / (kH kW)."""
    _op, _name = "avg_pool2d", "Average pooling"
