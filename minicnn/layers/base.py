"""What every layer shares: `Parameter`, the `Layer` base class, weight initialisation, and the
small helpers the layer classes use (input conversion, the backend's op table, labels).

Argument checks come from `minicnn.argcheck`, the same ones the functional ops use, so a layer
and the function it calls convert and refuse inputs by the same rules.
"""
from __future__ import annotations

import functools
import importlib
import sys
from contextlib import contextmanager

import numpy as np

from .. import conv, pool
from ..argcheck import as_array, check_grad_out, flag

BACKENDS = ("cpu", "cuda")

# The CPU functions a layer may call by name; backend="cuda" looks the same names up in minicnn.cuda.
CPU_OPS = {"conv2d": conv.conv2d, "conv2d_backward": conv.conv2d_backward,
           "max_pool2d": pool.max_pool2d, "max_pool2d_backward": pool.max_pool2d_backward,
           "avg_pool2d": pool.avg_pool2d, "avg_pool2d_backward": pool.avg_pool2d_backward}


# --------------------------------------------------------------------------- small helpers

def reraise(exc, prefix):
    """Raise `exc` again with `prefix` (which layer) before its message."""
    try:
        new = type(exc)(f"{prefix}{exc}")
    except Exception:
        raise exc from None
    raise new from None


@contextmanager
def errors_prefixed(prefix):
    """Inside the block, a ValueError/TypeError gets `prefix` (the layer's class) before its message."""
    try:
        yield
    except (ValueError, TypeError) as exc:
        reraise(exc, prefix)


def as_generator(rng) -> np.random.Generator:
    """rng as a numpy Generator: None (unseeded), an int seed, or a Generator (used as it is)."""
    if isinstance(rng, np.random.Generator):
        return rng
    if rng is None or (isinstance(rng, (int, np.integer)) and not isinstance(rng, bool)):
        return np.random.default_rng(rng)
    raise TypeError(f"rng must be None, an int seed or a numpy.random.Generator, got {rng!r}")


def param_dtype(dtype) -> np.dtype:
    """The dtype of a layer's parameters: float32 (the default) or float64 (gradient checks)."""
    dt = np.dtype(dtype)
    if dt not in (np.dtype(np.float32), np.dtype(np.float64)):
        raise ValueError(f"dtype must be float32 or float64, got {dt}")
    return dt


def pair_text(p) -> str:
    """(5, 5) -> '5', (3, 1) -> '3x1': how labels and reprs write a kernel size or stride."""
    return str(p[0]) if p[0] == p[1] else f"{p[0]}x{p[1]}"


def as_input(x, ndim=None, layout="", dtype=None) -> np.ndarray:
    """x as the array a layer computes on, by argcheck.as_array's rules (a C-contiguous float
    array; integers and booleans become float64, float16 becomes float32), cast to `dtype` if
    given (the parameters' dtype, for the layers that have parameters).  `ndim` (None: any) and
    `layout`, e.g. "(N, C, H, W)", go into the error message for a wrong number of dimensions."""
    try:
        complex_input = np.iscomplexobj(x)
    except Exception:  # a ragged list and the like: as_array says what is wrong with it
        complex_input = False
    if complex_input:
        raise TypeError(f"input must hold real numbers, got complex dtype {np.asarray(x).dtype}")
    return as_array("input", x, ndim, layout, dtype)


class KernelOps:
    """The functions a layer calls, by name: those of minicnn (backend='cpu', with impl='fast'
    or 'loop') or the same-named ones of minicnn.cuda (backend='cuda', imported only then)."""

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
        return functools.partial(CPU_OPS[name], impl=self.impl)


def reuse_or_new(held, shape, dtype) -> np.ndarray:
    """An array to write a layer's next result into: `held` (the layer's result from last time,
    passed straight from the attribute that holds it, e.g. `self.weight.grad`) when it has this
    shape and dtype and nothing else refers to it any more, else a new, uninitialised array.

    "Nothing else" is read from the reference count: the holder, this function's argument and
    getrefcount's own make 3; any other name, list entry or NumPy view (a view refers to its
    base) of the array makes more, and then the caller may still be using the old result, so it
    is left alone.  Reusing the array saves the page faults of a fresh one (minicnn/outarg.py)."""
    if (held is not None and held.shape == tuple(shape) and held.dtype == dtype
            and sys.getrefcount(held) <= 3):
        return held
    return np.empty(shape, dtype)


def reuse_one_of(held: list, shape, dtype) -> np.ndarray:
    """An array to write a layer's next output into, from `held`, the layer's list of its last
    few outputs (e.g. two: [None, None] at first); the list is updated in place.

    Why more than one: in a Sequential the next layer keeps this layer's output (its input) in
    its cache until its own next forward, which comes after this layer's.  So last step's
    output is never free when this layer runs again, but the one from the step before is.

    Returns a held array of this shape and dtype that nothing else refers to (the list, the
    loop's name and getrefcount's argument make 3: see reuse_or_new), and moves it to the end
    of the list (the most recently used); else a new, uninitialised array, which takes the place
    of the entry used longest ago (that one is left to whoever still refers to it)."""
    shape = tuple(shape)
    for i in range(len(held)):        # an index loop: enumerate's tuple would add a reference
        a = held[i]
        if a is not None and a.shape == shape and a.dtype == dtype and sys.getrefcount(a) <= 3:
            held.append(held.pop(i))
            return a
    hold(held, np.empty(shape, dtype))
    return held[-1]


def hold(held: list, y: np.ndarray) -> None:
    """A new output `y` (allocated here or by the op itself) takes the place of the entry of `held`
    used longest ago (see reuse_one_of)."""
    held.pop(0)
    held.append(y)


# --------------------------------------------------------------------------- parameters

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


def init_weights(shape, fan_in, fan_out, init="he", rng=None, dtype=np.float32) -> np.ndarray:
    """Initial weights of `shape`: 'he' ~ Normal(0, 2 / fan_in) (He et al. 2015, for ReLU) or
    'glorot' ~ Uniform(-a, a), a = sqrt(6 / (fan_in + fan_out)) (Glorot & Bengio 2010, for tanh).
    rng: an int seed or a numpy Generator (None: unseeded)."""
    dtype = param_dtype(dtype)
    gen = as_generator(rng)
    if init == "he":
        w = gen.standard_normal(shape) * np.sqrt(2.0 / fan_in)
    elif init == "glorot":
        limit = np.sqrt(6.0 / (fan_in + fan_out))
        w = gen.uniform(-limit, limit, shape)
    else:
        raise ValueError(f"init must be 'he' or 'glorot', got {init!r}")
    return w.astype(dtype)


# --------------------------------------------------------------------------- the base class

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
            reraise(exc, f"{self!r}: ")

    #: True for layers whose _backward takes input_grad and can skip computing dL/dx (Conv2D, Dense)
    skips_input_grad = False

    def backward(self, grad_out, *, input_grad=True):
        """grad_out = dL/dy with y's shape -> dL/dx with x's shape; sets each Parameter's grad.
        input_grad=False returns None instead of dL/dx, and does not compute it where the layer
        can skip it (a network's first layer: Sequential.backward(..., input_grad=False))."""
        if self._cache is None:
            raise RuntimeError(f"{self!r}: backward() called before forward()")
        try:
            if not flag("input_grad", input_grad):
                if self.skips_input_grad:
                    return self._backward(grad_out, input_grad=False)
                self._backward(grad_out)
                return None
            return self._backward(grad_out)
        except (ValueError, TypeError) as exc:
            reraise(exc, f"{self!r}: ")

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
        """grad_out as an array, if it has the shape the forward produced."""
        g = np.asarray(grad_out)
        check_grad_out(g, tuple(expected_shape), "the forward")
        return g
