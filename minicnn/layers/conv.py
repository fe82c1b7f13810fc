"""The convolution layer, over minicnn.conv2d / conv2d_backward (or minicnn.cuda's)."""
from __future__ import annotations

import numpy as np

from ..argcheck import int_pair, shape_str
from ..geometry import conv_geometry
from .base import (KernelOps, Layer, Parameter, as_input, errors_prefixed, init_weights, pair_text, param_dtype,
                   hold, reuse_one_of, reuse_or_new)


class Conv2D(Layer):
    """Convolution layer: K filters of C x kH x kW, one bias each.

    Input (N, C, H, W) -> output (N, K, H_out, W_out), H_out = floor((H + 2p - kH)/s) + 1.
    Parameters: weight (K, C, kH, kW), bias (K,); K * (C * kH * kW + 1) numbers.
    init: 'he' (normal, std sqrt(2 / fan_in), for ReLU) or 'glorot' (uniform, limit
    sqrt(6 / (fan_in + fan_out)), for tanh/sigmoid); fan_in = C kH kW, fan_out = K kH kW.

    On the CPU the layer writes its input gradient and its parameters' gradients into the arrays
    of the previous backward (conv2d_backward's `out`), and its output into one of its previous
    two outputs (the next layer still holds the last one), whenever nothing outside the layer
    still refers to them (base.reuse_or_new, base.reuse_one_of): a training loop then allocates
    no new megabyte arrays for them, and pays no page faults for fresh memory.  The cost: the
    layer keeps up to two outputs and one input gradient alive between steps (for LeNet-5's
    first convolution at batch 64 in float32, 2 x 1.2 MB and 0.2 MB).
    """

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, *, init="he", rng=None,
                 dtype=np.float32, backend="cpu", impl="fast", label=None):
        self.in_channels, self.out_channels = int(in_channels), int(out_channels)
        if self.in_channels < 1 or self.out_channels < 1:
            raise ValueError(f"Conv2D: in_channels and out_channels must be >= 1, got {in_channels}, {out_channels}")
        with errors_prefixed("Conv2D: "):
            self.kernel_size = int_pair("kernel_size", kernel_size, 1)
            self.stride = int_pair("stride", stride, 1)
            # 'valid', 'same' or 'full' stays a word: conv2d resolves it for each input
            self.padding = padding if isinstance(padding, str) else int_pair("padding", padding, 0)
        self._ops = KernelOps(backend, impl)
        self.backend = backend
        kh, kw = self.kernel_size
        shape = (self.out_channels, self.in_channels, kh, kw)
        w = init_weights(shape, self.in_channels * kh * kw, self.out_channels * kh * kw, init, rng, dtype)
        self.weight = Parameter("weight", w)
        self.bias = Parameter("bias", np.zeros(self.out_channels, dtype=param_dtype(dtype)))
        self._ys = [None, None]       # the last two outputs, reused when free
        self._gx = None               # the last input gradient, likewise
        super().__init__(label)

    def default_label(self):
        p = self.padding if isinstance(self.padding, str) else pair_text(self.padding)
        return (f"Convolution {self.out_channels} x (f={pair_text(self.kernel_size)}, "
                f"s={pair_text(self.stride)}, p={p})")

    def parameters(self):
        return [self.weight, self.bias]

    def _forward(self, x):
        x = as_input(x, 4, f"(N, {self.in_channels}, H, W)", self.weight.value.dtype)
        if x.shape[1] != self.in_channels:
            raise ValueError(f"expects input (N, {self.in_channels}, H, W), got shape {shape_str(x)}: "
                             f"{x.shape[1]} channels instead of {self.in_channels}")
        conv, out = self._ops("conv2d"), None
        if self.backend == "cpu" and self._cache is not None and self._cache[0].shape == x.shape:
            out = reuse_one_of(self._ys, self._cache[1], x.dtype)     # the same input shape: the same output shape
        if out is not None:
            y = conv(x, self.weight.value, self.bias.value, self.stride, self.padding, out=out)
        else:
            y = conv(x, self.weight.value, self.bias.value, self.stride, self.padding)
            if self.backend == "cpu":    # a first output (or a new shape): the oldest entry makes room
                hold(self._ys, y)
        self._cache = (x, y.shape)
        return y

    skips_input_grad = True     # backward(g, input_grad=False) computes no input gradient

    def _backward(self, grad_out, input_grad=True):
        x, y_shape = self._cache
        g = self._check_grad(grad_out, y_shape)
        w = self.weight.value
        backward = self._ops("conv2d_backward")
        if self.backend == "cpu":
            out = (reuse_or_new(self._gx, x.shape, x.dtype) if input_grad else None,
                   reuse_or_new(self.weight.grad, w.shape, w.dtype),
                   reuse_or_new(self.bias.grad, self.bias.value.shape, w.dtype))
            gx, gw, gb = backward(g, x, w, self.stride, self.padding, out=out, input_grad=input_grad)
            if input_grad:
                self._gx = gx
        else:
            gx, gw, gb = backward(g, x, w, self.stride, self.padding, input_grad=input_grad)
        self.weight.grad, self.bias.grad = gw, gb
        return gx

    def output_shape(self, input_shape):
        if len(input_shape) != 3 or input_shape[0] != self.in_channels:
            raise ValueError(f"{self!r}: expects a ({self.in_channels}, H, W) input, got {tuple(input_shape)}")
        g = conv_geometry(repr(self), (1, *input_shape), (self.out_channels, self.in_channels, *self.kernel_size),
                          self.stride, self.padding, 1)
        return (self.out_channels, g.out_h, g.out_w)

    def config(self):
        return {"in_channels": self.in_channels, "out_channels": self.out_channels,
                "kernel_size": list(self.kernel_size), "stride": list(self.stride),
                "padding": self.padding if isinstance(self.padding, str) else list(self.padding),
                "dtype": str(self.weight.value.dtype), **super().config()}

    def __repr__(self):
        p = repr(self.padding) if isinstance(self.padding, str) else pair_text(self.padding)
        return (f"Conv2D({self.in_channels}, {self.out_channels}, kernel_size={pair_text(self.kernel_size)}, "
                f"stride={pair_text(self.stride)}, padding={p})")
