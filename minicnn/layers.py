"""Layers: a small network API over minicnn's functional kernels.

Every layer is an object with

    y = layer.forward(x)          # caches what the backward needs
    grad_x = layer.backward(grad_y)   # fills layer.parameters()[i].grad, returns dL/dx

and `Sequential` chains them.  The arithmetic is done by the functions of `minicnn`
(conv2d, max_pool2d, dense, relu, ...): a layer only keeps the parameters, the cache
and the bookkeeping.

    from minicnn.layers import Sequential, Conv2D, Tanh, AvgPool2D, Flatten, Dense, SoftmaxCrossEntropy
    net = Sequential(Conv2D(1, 6, 5, rng=0), Tanh(), AvgPool2D(2), Flatten(), Dense(6 * 14 * 14, 10, rng=1),
                     input_shape=(1, 32, 32))
    loss_fn = SoftmaxCrossEntropy()
    loss = loss_fn.forward(net.forward(x), labels)      # x (N, 1, 32, 32) float32
    net.backward(loss_fn.backward())                    # every Parameter now has .grad

Layers that call a convolution or pooling kernel take backend="cpu" (the functions of
`minicnn`) or backend="cuda" (the same-named functions of `minicnn.cuda`, imported only
then).  Parameters are float32 unless dtype=np.float64 is asked for (gradient checks).
Weights are saved as .npz holding plain arrays and a JSON description, read back with
np.load(allow_pickle=False).
"""
from __future__ import annotations

import functools
import importlib
import json
import os
from math import prod

import numpy as np

from . import activations as _act
from . import conv as _conv
from .dense import dense as _dense_forward, dense_backward as _dense_backward
from . import losses as _losses
from . import pool as _pool
from .shapes import conv_output_size, pool_output_size

BACKENDS = ("cpu", "cuda")
_CPU_OPS = {"conv2d": _conv.conv2d, "conv2d_backward": _conv.conv2d_backward,
            "max_pool2d": _pool.max_pool2d, "max_pool2d_backward": _pool.max_pool2d_backward,
            "avg_pool2d": _pool.avg_pool2d, "avg_pool2d_backward": _pool.avg_pool2d_backward}
_FORMAT = "minicnn.Sequential/1"


def _shape(a) -> str:
    return str(tuple(int(s) for s in np.shape(a)))


def _reraise(exc, prefix):
    """Raise `exc` again with `prefix` (which layer) before its message."""
    try:
        new = type(exc)(f"{prefix}{exc}")
    except Exception:
        raise exc from None
    raise new from None


def _rng(rng) -> np.random.Generator:
    if isinstance(rng, np.random.Generator):
        return rng
    if rng is None or (isinstance(rng, (int, np.integer)) and not isinstance(rng, bool)):
        return np.random.default_rng(rng)
    raise TypeError(f"rng must be None, an int seed or a numpy.random.Generator, got {rng!r}")


def _dtype(dtype) -> np.dtype:
    dt = np.dtype(dtype)
    if dt not in (np.dtype(np.float32), np.dtype(np.float64)):
        raise ValueError(f"dtype must be float32 or float64, got {dt}")
    return dt


def _pair(name, v):
    if isinstance(v, (list, tuple)):
        if len(v) != 2:
            raise ValueError(f"{name} must be an int or a pair, got {v!r}")
        a, b = v
    else:
        a = b = v
    for item in (a, b):
        if isinstance(item, bool) or not isinstance(item, (int, np.integer)):
            raise TypeError(f"{name} must be an int or a pair of ints, got {v!r}")
    return int(a), int(b)


def _fmt_pair(p):
    return str(p[0]) if p[0] == p[1] else f"{p[0]}x{p[1]}"


class Parameter:
    """A trainable array (`value`, updated in place by the optimizers) and `grad`, dL/d(value)
    from the latest backward (None before the first)."""

    __slots__ = ("name", "value", "grad")

    def __init__(self, name: str, value: np.ndarray):
        self.name, self.value, self.grad = name, value, None

    @property
    def shape(self):
        return self.value.shape

    @property
    def size(self):
        return self.value.size

    def __repr__(self):
        return f"Parameter({self.name!r}, shape={self.value.shape}, dtype={self.value.dtype})"


# --------------------------------------------------------------------------- base class

class Layer:
    """Base class.  Subclasses implement _forward(x) and _backward(grad_out); the public
    forward/backward add the layer's name to any argument error."""

    #: how summary() treats the layer: 'main' gets a row, 'activation' is folded into the
    #: row above, 'reshape' (Flatten, Dropout) is left out since the next row shows its effect
    role = "main"

    def __init__(self, label=None):
        self.training = True
        self._cache = None
        self.label = label if label is not None else self.default_label()

    def default_label(self) -> str:
        return type(self).__name__

    # parameters -----------------------------------------------------------------
    def parameters(self) -> list[Parameter]:
        return []

    def n_params(self) -> int:
        return sum(p.size for p in self.parameters())

    # running ----------------------------------------------------------------------
    def forward(self, x):
        """x (N, ...) -> y (N, ...); caches what backward needs."""
        try:
            return self._forward(x)
        except (ValueError, TypeError) as exc:
            _reraise(exc, f"{self!r}: ")

    def backward(self, grad_out):
        """grad_out = dL/dy with y's shape -> dL/dx with x's shape; sets each Parameter's grad."""
        if self._cache is None:
            raise RuntimeError(f"{self!r}: backward() called before forward()")
        try:
            return self._backward(grad_out)
        except (ValueError, TypeError) as exc:
            _reraise(exc, f"{self!r}: ")

    __call__ = forward

    def output_shape(self, input_shape: tuple) -> tuple:
        """Per-sample shape out of the layer for a per-sample input shape (no batch axis)."""
        return tuple(input_shape)

    def train(self, mode: bool = True):
        self.training = bool(mode)
        return self

    def eval(self):
        return self.train(False)

    def config(self) -> dict:
        """Constructor arguments as JSON data (saved beside the weights)."""
        return {"label": self.label} if self.label != self.default_label() else {}

    def __repr__(self):
        return f"{type(self).__name__}()"

    # helpers ------------------------------------------------------------------------
    def _check_grad(self, grad_out, expected_shape):
        g = np.asarray(grad_out)
        if g.shape != tuple(expected_shape):
            raise ValueError(f"grad_out has shape {_shape(g)} but the forward output had shape "
                             f"{tuple(expected_shape)}")
        return g


class _Backend:
    """Resolves op names to the CPU functions of minicnn or those of minicnn.cuda."""

    def __init__(self, backend, impl):
        if backend not in BACKENDS:
            raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
        if impl not in ("fast", "loop"):
            raise ValueError(f"impl must be 'fast' or 'loop', got {impl!r}")
        self.backend, self.impl = backend, impl
        if backend == "cuda":
            try:
                self._cuda = importlib.import_module("minicnn.cuda")
            except ImportError as exc:
                raise ImportError(f"backend='cuda' needs the minicnn.cuda module, which failed to import: {exc}") \
                    from exc

    def __call__(self, name):
        if self.backend == "cuda":
            return getattr(self._cuda, name)
        return functools.partial(_CPU_OPS[name], impl=self.impl)


def _as_input(x, ndim, layout, dtype=None):
    """x as an array of real numbers with `ndim` dimensions (any, if None), cast to `dtype` if given."""
    try:
        arr = np.asarray(x)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"input must be an array of numbers: {exc}") from None
    if arr.dtype == object or np.issubdtype(arr.dtype, np.complexfloating) or \
            not (np.issubdtype(arr.dtype, np.number) or arr.dtype == np.bool_):
        raise TypeError(f"input must hold real numbers, got dtype {arr.dtype}")
    if ndim is not None and arr.ndim != ndim:
        raise ValueError(f"expects input {layout}, got shape {_shape(arr)} ({arr.ndim}-D)")
    if dtype is not None:
        arr = arr.astype(dtype, copy=False)
    elif not np.issubdtype(arr.dtype, np.floating):
        arr = arr.astype(np.float64)
    return arr


# --------------------------------------------------------------------------- layers with weights

class Conv2D(Layer):
    """Convolution layer: K filters of C x kH x kW, one bias each.

    Input (N, C, H, W) -> output (N, K, H_out, W_out), H_out = floor((H + 2p - kH)/s) + 1.
    Parameters: weight (K, C, kH, kW), bias (K,); K * (C * kH * kW + 1) numbers.
    init: 'he' (normal, std sqrt(2 / fan_in), for ReLU) or 'glorot' (uniform, limit
    sqrt(6 / (fan_in + fan_out)), for tanh/sigmoid); fan_in = C kH kW, fan_out = K kH kW.
    """

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, *, init="he", rng=None,
                 dtype=np.float32, backend="cpu", impl="fast", label=None):
        self.in_channels, self.out_channels = int(in_channels), int(out_channels)
        if self.in_channels < 1 or self.out_channels < 1:
            raise ValueError(f"Conv2D: in_channels and out_channels must be >= 1, got {in_channels}, {out_channels}")
        self.kernel_size = _pair("kernel_size", kernel_size)
        self.stride = _pair("stride", stride)
        self.padding = padding if isinstance(padding, str) else _pair("padding", padding)
        if min(self.kernel_size) < 1 or min(self.stride) < 1:
            raise ValueError(f"Conv2D: kernel_size and stride must be >= 1, got {kernel_size}, {stride}")
        self._ops = _Backend(backend, impl)
        self.backend = backend
        kh, kw = self.kernel_size
        shape = (self.out_channels, self.in_channels, kh, kw)
        w = init_weights(shape, self.in_channels * kh * kw, self.out_channels * kh * kw, init, rng, dtype)
        self.weight = Parameter("weight", w)
        self.bias = Parameter("bias", np.zeros(self.out_channels, dtype=_dtype(dtype)))
        super().__init__(label)

    def default_label(self):
        p = self.padding if isinstance(self.padding, str) else _fmt_pair(self.padding)
        return (f"Convolution {self.out_channels} x (f={_fmt_pair(self.kernel_size)}, "
                f"s={_fmt_pair(self.stride)}, p={p})")

    def parameters(self):
        return [self.weight, self.bias]

    def _forward(self, x):
        x = _as_input(x, 4, f"(N, {self.in_channels}, H, W)", self.weight.value.dtype)
        if x.shape[1] != self.in_channels:
            raise ValueError(f"expects input (N, {self.in_channels}, H, W), got shape {_shape(x)}: "
                             f"{x.shape[1]} channels instead of {self.in_channels}")
        y = self._ops("conv2d")(x, self.weight.value, self.bias.value, self.stride, self.padding)
        self._cache = (x, y.shape)
        return y

    def _backward(self, grad_out):
        x, y_shape = self._cache
        g = self._check_grad(grad_out, y_shape)
        gx, gw, gb = self._ops("conv2d_backward")(g, x, self.weight.value, self.stride, self.padding)
        self.weight.grad, self.bias.grad = gw, gb
        return gx

    def output_shape(self, input_shape):
        if len(input_shape) != 3 or input_shape[0] != self.in_channels:
            raise ValueError(f"{self!r}: expects a ({self.in_channels}, H, W) input, got {tuple(input_shape)}")
        oh, ow = conv_output_size(tuple(input_shape[1:]), self.kernel_size, self.stride, self.padding)
        return (self.out_channels, oh, ow)

    def config(self):
        return {"in_channels": self.in_channels, "out_channels": self.out_channels,
                "kernel_size": list(self.kernel_size), "stride": list(self.stride),
                "padding": self.padding if isinstance(self.padding, str) else list(self.padding),
                "dtype": str(self.weight.value.dtype), **super().config()}

    def __repr__(self):
        p = repr(self.padding) if isinstance(self.padding, str) else _fmt_pair(self.padding)
        return (f"Conv2D({self.in_channels}, {self.out_channels}, kernel_size={_fmt_pair(self.kernel_size)}, "
                f"stride={_fmt_pair(self.stride)}, padding={p})")


class Dense(Layer):
    """Fully connected layer, y = x @ weight.T + bias.

    Input (N, in_features) -> output (N, out_features); put a Flatten() before it after a
    convolution or pooling layer.  Parameters: weight (out, in), bias (out,); out * (in + 1).
    init as for Conv2D, fan_in = in_features, fan_out = out_features.
    """

    def __init__(self, in_features, out_features, *, init="he", rng=None, dtype=np.float32, label=None):
        self.in_features, self.out_features = int(in_features), int(out_features)
        if self.in_features < 1 or self.out_features < 1:
            raise ValueError(f"Dense: in_features and out_features must be >= 1, got {in_features}, {out_features}")
        w = init_weights((self.out_features, self.in_features), self.in_features, self.out_features, init, rng,
                         dtype)
        self.weight = Parameter("weight", w)
        self.bias = Parameter("bias", np.zeros(self.out_features, dtype=_dtype(dtype)))
        super().__init__(label)

    def default_label(self):
        return "Fully connected"

    def parameters(self):
        return [self.weight, self.bias]

    def _forward(self, x):
        x = _as_input(x, None, "", self.weight.value.dtype)
        if x.ndim != 2 or x.shape[1] != self.in_features:
            hint = " (add a Flatten() layer before it)" if x.ndim > 2 else ""
            raise ValueError(f"expects input (N, {self.in_features}), got shape {_shape(x)}{hint}")
        self._cache = x
        return _dense_forward(x, self.weight.value, self.bias.value)

    def _backward(self, grad_out):
        x = self._cache
        g = self._check_grad(grad_out, (x.shape[0], self.out_features))
        gx, gw, gb = _dense_backward(g, x, self.weight.value)
        self.weight.grad, self.bias.grad = gw, gb
        return gx

    def output_shape(self, input_shape):
        if tuple(input_shape) != (self.in_features,):
            raise ValueError(f"{self!r}: expects a ({self.in_features},) input, got {tuple(input_shape)}")
        return (self.out_features,)

    def config(self):
        return {"in_features": self.in_features, "out_features": self.out_features,
                "dtype": str(self.weight.value.dtype), **super().config()}

    def __repr__(self):
        return f"Dense({self.in_features}, {self.out_features})"


def init_weights(shape, fan_in, fan_out, init="he", rng=None, dtype=np.float32) -> np.ndarray:
    """Initial weights of `shape`: 'he' ~ Normal(0, 2 / fan_in) (He et al. 2015, for ReLU) or
    'glorot' ~ Uniform(-a, a), a = sqrt(6 / (fan_in + fan_out)) (Glorot & Bengio 2010, for tanh).
    rng: an int seed or a numpy Generator (None: unseeded)."""
    dtype = _dtype(dtype)
    gen = _rng(rng)
    if init == "he":
        w = gen.standard_normal(shape) * np.sqrt(2.0 / fan_in)
    elif init == "glorot":
        limit = np.sqrt(6.0 / (fan_in + fan_out))
        w = gen.uniform(-limit, limit, shape)
    else:
        raise ValueError(f"init must be 'he' or 'glorot', got {init!r}")
    return w.astype(dtype)


# --------------------------------------------------------------------------- pooling

class _Pool(Layer):
    _op = ""
    _name = ""

    def __init__(self, kernel_size, stride=None, padding=0, *, backend="cpu", impl="fast", label=None):
        self.kernel_size = _pair("kernel_size", kernel_size)
        self.stride = self.kernel_size if stride is None else _pair("stride", stride)
        self.padding = _pair("padding", padding)
        if min(self.kernel_size) < 1 or min(self.stride) < 1 or min(self.padding) < 0:
            raise ValueError(f"{type(self).__name__}: kernel_size and stride must be >= 1 and padding >= 0, got "
                             f"{kernel_size}, {stride}, {padding}")
        self._ops = _Backend(backend, impl)
        self.backend = backend
        super().__init__(label)

    def default_label(self):
        pad = "" if self.padding == (0, 0) else f", p={_fmt_pair(self.padding)}"
        return f"{self._name} (f={_fmt_pair(self.kernel_size)}, s={_fmt_pair(self.stride)}{pad})"

    def _forward(self, x):
        x = _as_input(x, 4, "(N, C, H, W)")
        y = self._ops(self._op)(x, self.kernel_size, self.stride, self.padding)
        self._cache = (x, y.shape)
        return y

    def _backward(self, grad_out):
        x, y_shape = self._cache
        g = self._check_grad(grad_out, y_shape)
        return self._ops(self._op + "_backward")(g, x, self.kernel_size, self.stride, self.padding)

    def output_shape(self, input_shape):
        if len(input_shape) != 3:
            raise ValueError(f"{self!r}: expects a (C, H, W) input, got {tuple(input_shape)}")
        oh, ow = pool_output_size(tuple(input_shape[1:]), self.kernel_size, self.stride, self.padding)
        return (input_shape[0], oh, ow)

    def config(self):
        return {"kernel_size": list(self.kernel_size), "stride": list(self.stride), "padding": list(self.padding),
                **super().config()}

    def __repr__(self):
        return (f"{type(self).__name__}(kernel_size={_fmt_pair(self.kernel_size)}, stride={_fmt_pair(self.stride)}"
                + ("" if self.padding == (0, 0) else f", padding={_fmt_pair(self.padding)}") + ")")


class MaxPool2D(_Pool):
    """Max pooling: (N, C, H, W) -> (N, C, H_out, W_out); the gradient goes to each window's maximum."""
    _op, _name = "max_pool2d", "Max pooling"


class AvgPool2D(_Pool):
    """Average pooling: (N, C, H, W) -> (N, C, H_out, W_out); each window cell gets grad / (kH kW)."""
    _op, _name = "avg_pool2d", "Average pooling"


# --------------------------------------------------------------------------- element-wise

class _Activation(Layer):
    role = "activation"
    _f = _b = None
    _b_takes_output = False   # the backward accepts y = the forward's output (saves recomputing it)
    name = ""

    def default_label(self):
        return self.name

    def _forward(self, x):
        x = _as_input(x, None, "")
        y = type(self)._f(x)
        self._cache = (x, y if self._b_takes_output else None)
        return y

    def _backward(self, grad_out):
        x, y = self._cache
        g = self._check_grad(grad_out, x.shape)
        return type(self)._b(g, x, y=y) if y is not None else type(self)._b(g, x)


class ReLU(_Activation):
    """max(0, x) element-wise; gradient passes where x > 0."""
    _f, _b, name = staticmethod(_act.relu), staticmethod(_act.relu_backward), "relu"


class Tanh(_Activation):
    """tanh(x) element-wise; gradient times 1 - tanh(x)^2."""
    _f, _b, name = staticmethod(_act.tanh), staticmethod(_act.tanh_backward), "tanh"
    _b_takes_output = True


class Sigmoid(_Activation):
    """1 / (1 + exp(-x)) element-wise; gradient times s (1 - s)."""
    _f, _b, name = staticmethod(_act.sigmoid), staticmethod(_act.sigmoid_backward), "sigmoid"
    _b_takes_output = True


class Flatten(Layer):
    """(N, C, H, W) (or any (N, ...)) -> (N, C*H*W), row-major, as a new array; backward reshapes back."""
    role = "reshape"

    def _forward(self, x):
        x = _as_input(x, None, "")
        if x.ndim < 2:
            raise ValueError(f"expects input (N, ...) with a batch axis, got shape {_shape(x)}")
        self._cache = x.shape
        return x.reshape(x.shape[0], -1).copy()

    def _backward(self, grad_out):
        g = self._check_grad(grad_out, (self._cache[0], prod(self._cache[1:])))
        return g.reshape(self._cache).copy()

    def output_shape(self, input_shape):
        return (prod(input_shape),)


class Dropout(Layer):
    """Inverted dropout: in training, each value is zeroed with probability p and the rest are
    scaled by 1 / (1 - p), so eval mode (identity) needs no rescaling.  Any shape -> same shape."""
    role = "reshape"

    def __init__(self, p=0.5, *, rng=None, label=None):
        if not 0 <= p < 1:
            raise ValueError(f"Dropout: p must be in [0, 1), got {p}")
        self.p = float(p)
        self._gen = _rng(rng)
        super().__init__(label)

    def default_label(self):
        return f"Dropout (p={self.p:g})"

    def _forward(self, x):
        x = _as_input(x, None, "")
        if not self.training or self.p == 0:
            self._cache = None, x.shape
            return x.copy()
        keep = (self._gen.random(x.shape) >= self.p).astype(x.dtype) / x.dtype.type(1 - self.p)
        self._cache = keep, x.shape
        return x * keep

    def _backward(self, grad_out):
        keep, shape = self._cache
        g = self._check_grad(grad_out, shape)
        return g.copy() if keep is None else g * keep

    def config(self):
        return {"p": self.p, **super().config()}

    def __repr__(self):
        return f"Dropout(p={self.p:g})"


LAYER_TYPES = {cls.__name__: cls for cls in (Conv2D, Dense, MaxPool2D, AvgPool2D, ReLU, Tanh, Sigmoid, Flatten,
                                            Dropout)}


# --------------------------------------------------------------------------- the loss

class SoftmaxCrossEntropy:
    """Mean cross-entropy of softmax(logits) against integer labels.

    forward(logits (N, C), labels (N,)) -> float; backward() -> dL/dlogits (N, C) =
    (softmax(logits) - one_hot(labels)) / N, in the logits' dtype.
    """

    def __init__(self):
        self._cache = None

    def forward(self, logits, labels):
        self._cache = (logits, labels)
        return _losses.softmax_cross_entropy(logits, labels)

    __call__ = forward

    def backward(self):
        if self._cache is None:
            raise RuntimeError("SoftmaxCrossEntropy: backward() called before forward()")
        return _losses.softmax_cross_entropy_backward(*self._cache)


def accuracy(logits, labels) -> float:
    """Fraction of rows of logits (N, C) whose largest entry is at labels (N,)."""
    logits, labels = np.asarray(logits), np.asarray(labels)
    return float(np.mean(np.argmax(logits, axis=1) == labels)) if labels.size else float("nan")


# --------------------------------------------------------------------------- Sequential

class Sequential:
    """Layers applied in order.

    Sequential(layer, layer, ..., input_shape=(C, H, W), output="softmax")
      input_shape  per-sample input shape, used by summary() (optional)
      output       the function that turns the last layer's output (logits) into
                   probabilities: 'softmax', 'sigmoid' or None; it lives in the loss, so
                   forward() returns logits; summary() shows it on the last row.
    forward(x (N, ...)) -> logits; backward(dL/dlogits) -> dL/dx, filling every parameter's grad.
    model[i] is a layer, model[a:b] a Sequential sharing the same layer objects.
    """

    def __init__(self, *layers, input_shape=None, output=None):
        if len(layers) == 1 and isinstance(layers[0], (list, tuple)):
            layers = tuple(layers[0])
        for i, layer in enumerate(layers):
            if not isinstance(layer, Layer):
                raise TypeError(f"Sequential: item {i} is {type(layer).__name__}, not a minicnn.layers.Layer")
        if output not in (None, "softmax", "sigmoid"):
            raise ValueError(f"output must be None, 'softmax' or 'sigmoid', got {output!r}")
        self.layers = list(layers)
        self.input_shape = None if input_shape is None else tuple(int(v) for v in input_shape)
        self.output = output

    # containers ---------------------------------------------------------------------
    def __len__(self):
        return len(self.layers)

    def __iter__(self):
        return iter(self.layers)

    def __getitem__(self, index):
        if isinstance(index, slice):
            start = index.start or 0
            shape = self.input_shape if start == 0 else None
            return Sequential(*self.layers[index], input_shape=shape)
        return self.layers[index]

    def __repr__(self):
        inner = ",\n  ".join(repr(layer) for layer in self.layers)
        return f"Sequential(\n  {inner}\n)"

    # running --------------------------------------------------------------------------
    def forward(self, x):
        """x (N, ...) -> output of the last layer (logits); every layer caches for backward."""
        for i, layer in enumerate(self.layers):
            try:
                x = layer.forward(x)
            except (ValueError, TypeError) as exc:
                _reraise(exc, f"layer {i} ")
        return x

    __call__ = forward

    def backward(self, grad_out):
        """dL/d(output) -> dL/d(input); sets .grad of every parameter."""
        for i in range(len(self.layers) - 1, -1, -1):
            try:
                grad_out = self.layers[i].backward(grad_out)
            except (ValueError, TypeError, RuntimeError) as exc:
                _reraise(exc, f"layer {i} ")
        return grad_out

    def predict(self, x, batch_size=500):
        """Logits for x (N, ...) in eval mode, batch by batch; the mode is restored afterwards."""
        modes = [layer.training for layer in self.layers]
        self.eval()
        try:
            x = np.asarray(x)
            outs = [self.forward(x[i:i + batch_size]) for i in range(0, len(x), batch_size)]
        finally:
            for layer, mode in zip(self.layers, modes):
                layer.training = mode
        return np.concatenate(outs) if outs else np.empty((0,))

    def predict_proba(self, x, batch_size=500):
        """Probabilities: softmax or sigmoid (per `output`) of predict(x)."""
        z = self.predict(x, batch_size)
        if self.output == "softmax":
            return _losses.softmax(z)
        if self.output == "sigmoid":
            return _act.sigmoid(z)
        raise ValueError("this model has output=None; set output='softmax' or 'sigmoid' to get probabilities")

    def train(self, mode=True):
        for layer in self.layers:
            layer.train(mode)
        return self

    def eval(self):
        return self.train(False)

    # parameters ---------------------------------------------------------------------
    def parameters(self) -> list[Parameter]:
        return [p for layer in self.layers for p in layer.parameters()]

    def named_parameters(self) -> list[tuple[str, Parameter]]:
        return [(f"{i}.{p.name}", p) for i, layer in enumerate(self.layers) for p in layer.parameters()]

    def n_params(self) -> int:
        return sum(p.size for p in self.parameters())

    def zero_grad(self):
        for p in self.parameters():
            p.grad = None

    def astype(self, dtype):
        """Convert every parameter to float32 or float64, in place; returns self."""
        dt = _dtype(dtype)
        for p in self.parameters():
            p.value = p.value.astype(dt)
            p.grad = None
        return self

    # description --------------------------------------------------------------------
    def summary(self, input_shape=None, fold=True) -> "Summary":
        """The lecture-style table (ZJU-UoE, Romanò, "Summary of our CNN"): per layer its
        activation shape, activation size and number of parameters, and the total.

        fold=True gives one row per convolution / pooling / fully connected layer, with the
        activation function that follows it noted on the row (as the lectures draw them);
        fold=False gives one row per layer object."""
        shape = input_shape if input_shape is not None else self.input_shape
        if shape is None:
            raise ValueError("summary() needs the input shape: pass input_shape=(C, H, W) here or to Sequential")
        shape = tuple(int(v) for v in shape)
        rows = [{"layer": "Input", "type": "Input", "shape": shape, "size": prod(shape), "params": 0,
                 "activation": None}]
        for i, layer in enumerate(self.layers):
            try:
                shape = tuple(int(v) for v in layer.output_shape(shape))
            except ValueError as exc:
                raise ValueError(f"layer {i} {exc}") from None
            row = {"layer": layer.label, "type": type(layer).__name__, "shape": shape, "size": prod(shape),
                   "params": layer.n_params(), "activation": None}
            if fold and layer.role == "activation" and len(rows) > 1:
                prev = rows[-1]
                prev["activation"] = layer.label if prev["activation"] is None else \
                    f"{prev['activation']}, {layer.label}"
            elif fold and layer.role == "reshape":
                continue
            else:
                rows.append(row)
        if self.output is not None:
            last = rows[-1]
            last["activation"] = self.output if last["activation"] is None else f"{last['activation']}, {self.output}"
        return Summary(rows)

    # saving ---------------------------------------------------------------------------
    def architecture(self) -> dict:
        return {"format": _FORMAT, "input_shape": None if self.input_shape is None else list(self.input_shape),
                "output": self.output,
                "layers": [{"type": type(layer).__name__, "config": layer.config()} for layer in self.layers]}

    def state_dict(self) -> dict:
        """{'<layer index>.<name>': a copy of the parameter}."""
        return {name: p.value.copy() for name, p in self.named_parameters()}

    def load_state_dict(self, state: dict):
        """Copy arrays from `state` into the parameters (same names and shapes; cast to each
        parameter's dtype).  The arrays given are not kept or modified."""
        named = dict(self.named_parameters())
        missing = sorted(set(named) - set(state))
        extra = sorted(k for k in set(state) - set(named) if not k.startswith("__"))
        if missing or extra:
            raise ValueError(f"weights do not match the model: missing {missing}, unexpected {extra}")
        for name, p in named.items():
            arr = np.asarray(state[name])
            if arr.shape != p.value.shape:
                raise ValueError(f"weights do not match the model: {name} has shape {arr.shape} in the file, "
                                 f"{p.value.shape} in the model")
            p.value = np.array(arr, dtype=p.value.dtype, copy=True)
            p.grad = None
        return self

    def save(self, path, meta=None) -> str:
        """Write the weights and a JSON description of the layers (and `meta`, any JSON data)
        to an .npz file (no pickles).  Returns the path written."""
        path = os.fspath(path)
        if not path.endswith(".npz"):
            path += ".npz"
        arrays = self.state_dict()
        arrays["__architecture__"] = np.array(json.dumps(self.architecture()))
        arrays["__meta__"] = np.array(json.dumps(meta if meta is not None else {}))
        with open(path, "wb") as fh:
            np.savez(fh, **arrays)
        return path

    def load(self, path):
        """Read weights saved by save() into this model (its layers must match); returns self."""
        with np.load(os.fspath(path), allow_pickle=False) as data:
            state = {k: data[k] for k in data.files}
        if "__architecture__" in state:
            saved = json.loads(str(state["__architecture__"]))
            mine = [layer["type"] for layer in self.architecture()["layers"]]
            theirs = [layer["type"] for layer in saved.get("layers", [])]
            if mine != theirs:
                raise ValueError(f"{os.fspath(path)} holds a different network: {theirs}, this model is {mine}")
        return self.load_state_dict(state)


def read_meta(path) -> dict:
    """The `meta` dictionary saved with a model."""
    with np.load(os.fspath(path), allow_pickle=False) as data:
        return json.loads(str(data["__meta__"])) if "__meta__" in data.files else {}


def load_model(path, backend="cpu") -> Sequential:
    """Rebuild a Sequential from an .npz written by Sequential.save: layers from the saved
    description, then the weights."""
    with np.load(os.fspath(path), allow_pickle=False) as data:
        if "__architecture__" not in data.files:
            raise ValueError(f"{os.fspath(path)} has no __architecture__ entry; was it written by Sequential.save?")
        arch = json.loads(str(data["__architecture__"]))
        state = {k: data[k] for k in data.files}
    if arch.get("format") != _FORMAT:
        raise ValueError(f"{os.fspath(path)}: unknown format {arch.get('format')!r}, expected {_FORMAT!r}")
    layers = []
    for spec in arch["layers"]:
        cls = LAYER_TYPES.get(spec["type"])
        if cls is None:
            raise ValueError(f"{os.fspath(path)}: unknown layer type {spec['type']!r}")
        cfg = dict(spec["config"])
        if cls in (Conv2D, MaxPool2D, AvgPool2D):
            cfg["backend"] = backend
        layers.append(cls(**cfg))
    model = Sequential(*layers, input_shape=arch.get("input_shape"), output=arch.get("output"))
    return model.load_state_dict(state)


# --------------------------------------------------------------------------- the table

def _shape_text(shape, notation, is_input=False):
    if notation == "chw":
        return "(" + ", ".join(str(v) for v in shape) + ("," if len(shape) == 1 else "") + ")"
    if len(shape) == 1:  # the ZJU-UoE table writes vectors as (n,1) and images as (H,W,C)
        return f"({shape[0]},1)"
    c, h, w = shape
    return f"({h},{w})" if (is_input and c == 1) else f"({h},{w},{c})"


class Summary:
    """The rows of Sequential.summary(): each a dict with layer (label), type, shape (per
    sample, (C, H, W) or (n,)), size, params, activation (the function that follows, or None).
    str() lays them out as the lecture table; format(notation='hwc') writes shapes as the
    ZJU-UoE slide does ((28,28,6), vectors (100,1))."""

    def __init__(self, rows):
        self.rows = rows

    @property
    def total_params(self) -> int:
        return sum(r["params"] for r in self.rows)

    def format(self, notation="chw") -> str:
        if notation not in ("chw", "hwc"):
            raise ValueError(f"notation must be 'chw' or 'hwc', got {notation!r}")
        header = ("", "Activation shape", "Activation size", "Number of params")
        body = []
        for i, r in enumerate(self.rows):
            name = r["layer"] + (f" + {r['activation']}" if r["activation"] else "")
            body.append((name, _shape_text(r["shape"], notation, i == 0), str(r["size"]),
                         "-" if i == 0 else str(r["params"])))
        total = ("", "", "TOTAL", f"{self.total_params} parameters")
        widths = [max(len(row[k]) for row in [header, *body, total]) for k in range(4)]
        def line(cells):
            return "  ".join([cells[0].ljust(widths[0])] + [c.rjust(w) for c, w in zip(cells[1:], widths[1:])]).rstrip()
        rule = "-" * (sum(widths) + 6)
        return "\n".join([line(header), rule, *[line(b) for b in body], rule, line(total)])

    def __str__(self):
        return self.format()

    def __repr__(self):
        return self.format()
