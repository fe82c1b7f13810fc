"""What an answer key can ask.  For each op: its fields, the right value of every cell, how the
printed answer reads into cells, and the working of one cell (text and LaTeX).

A *cell* is one printed number (or shape), named as the report names it: `out[1, 0]` for an
output matrix, `answer` for a single number, `rows[2].params` in a network table.  The right
values come from minicnn itself: `minicnn.explain` for convolution and pooling (plain Python, the
step-by-step text the slides write, tested against minicnn.correlate2d), `minicnn.shapes` for
sizes and parameter counts.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import numpy as np

from .. import explain, shapes
from .values import KeyFileError, fmt, printed


@dataclass(frozen=True)
class Exact:
    """A printed value compared for equality (an output's dimensions, a formula's values)."""
    value: tuple
    text: str

    def matches(self, x) -> bool:
        return tuple(x) == self.value

    def __str__(self):
        return self.text


@dataclass(frozen=True)
class Op:
    name: str
    title: str
    fields: tuple                  # every field the question may have (besides id, op, answer, note)
    required: tuple
    read: Callable                 # (question, refs) -> inputs: dict
    compute: Callable              # inputs -> {cell: value}
    answer: Callable               # (question, inputs) -> {cell: Printed | Shape | Exact | None}
    working: Callable              # (inputs, cell) -> (text, latex)
    tunable: tuple = ()            # int inputs the misprinted-input search may vary
    show: Callable = None          # (inputs, cell) -> how the right value is written, when not a number


# --------------------------------------------------------------------------- reading fields

def _int(q, inp, name, default=None, minimum=0):
    v = q.fields.get(name, default)
    if v is None:
        raise KeyFileError(f"{q.where(name)}: missing")
    if isinstance(v, bool) or not isinstance(v, int) or v < minimum:
        raise KeyFileError(f"{q.where(name)}: must be an int >= {minimum}, got {v!r}")
    inp[name] = v
    return v


def _padding(q, inp, name="padding"):
    v = q.fields.get(name, 0)
    if v in ("same", "valid"):
        inp[name] = v
        return v
    if isinstance(v, bool) or not isinstance(v, int) or v < 0:
        raise KeyFileError(f"{q.where(name)}: must be an int >= 0, 'same' or 'valid', got {v!r}")
    inp[name] = v
    return v


def _matrix(q, name, ndims=(2, 3)):
    v = q.fields.get(name)
    try:
        arr = np.array(v, dtype=np.float64)
    except (ValueError, TypeError):
        raise KeyFileError(f"{q.where(name)}: must be a matrix of numbers (rows of equal length)") from None
    if arr.ndim not in ndims or arr.size == 0:
        want = " or ".join(f"{d}-D" for d in ndims)
        raise KeyFileError(f"{q.where(name)}: must be a {want} matrix, got shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise KeyFileError(f"{q.where(name)}: holds a non-finite number")
    return arr


def _number(q, name, v, refs):
    if isinstance(v, str) and v.startswith("@"):
        if v[1:] not in refs:
            raise KeyFileError(f"{q.where(name)}: {v!r} must name an earlier question with a single-number answer")
        return refs[v[1:]]
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise KeyFileError(f"{q.where(name)}: {v!r} is not a number (or '@id' of an earlier answer)")
    return v


def _matrix_answer(q, ndim):
    """{'output shape': Exact, 'out[i, j]': Printed | None} from a printed matrix."""
    raw = q.answer
    arr = np.array(raw, dtype=object) if isinstance(raw, list) else None
    if arr is None or arr.ndim != ndim or arr.size == 0:
        raise KeyFileError(f"{q.where('answer')}: must be a {ndim}-D matrix (rows of equal length) "
                           "of numbers and '?'")
    cells = {"output shape": Exact(arr.shape, " x ".join(str(d) for d in arr.shape))}
    for idx in np.ndindex(arr.shape):
        cells[_cell(idx)] = printed(arr[idx], q.where("answer") + f" cell {list(idx)}")
    return cells


def _cell(idx) -> str:
    return "out[" + ", ".join(str(int(i)) for i in idx) + "]"


def _scalar_answer(q, inp):
    return {"answer": printed(q.answer, q.where("answer"))}


def _output_cells(out) -> dict:
    cells = {"output shape": tuple(out.shape)}
    for idx in np.ndindex(out.shape):
        cells[_cell(idx)] = float(out[idx])
    return cells


def _index(cell):
    return tuple(int(v) for v in cell[4:-1].split(","))


def _size_working(n, k, s, p, d=1):
    keff = d * (k - 1) + 1
    num = n + 2 * p - keff
    kt = str(k) if d == 1 else f"{d}x({k} - 1) + 1"
    text = f"floor(({n} + 2x{p} - {kt}) / {s}) + 1 = floor({num}/{s}) + 1 = {num // s + 1}"
    latex = (rf"$$\left\lfloor \frac{{{n} + 2 \times {p} - {keff}}}{{{s}}} \right\rfloor + 1 = "
             rf"\left\lfloor \frac{{{num}}}{{{s}}} \right\rfloor + 1 = {num // s + 1}$$")
    return text, latex


# --------------------------------------------------------------------------- convolution and pooling

def _read_conv(q, refs):
    image, kernel = _matrix(q, "image"), _matrix(q, "kernel")
    img3 = image if image.ndim == 3 else image[None]
    ker3 = kernel if kernel.ndim == 3 else kernel[None]
    if img3.shape[0] != ker3.shape[0]:
        raise KeyFileError(f"{q.where('kernel')}: {ker3.shape[0]} channel(s), the image has {img3.shape[0]} "
                           f"(image {image.shape}, kernel {kernel.shape})")
    inp = {"image": img3, "kernel": ker3, "flip": q.op == "convolve"}
    _int(q, inp, "stride", 1, 1)
    pad = _padding(q, inp)
    b = q.fields.get("bias", 0)
    if isinstance(b, bool) or not isinstance(b, (int, float)):
        raise KeyFileError(f"{q.where('bias')}: must be a number, got {b!r}")
    inp["bias"] = float(b)
    if isinstance(pad, str):  # resolve 'same'/'valid' so that every slip sees numbers
        inp["padding"] = 0 if pad == "valid" else (ker3.shape[1] - 1) // 2
    for axis, n, k in (("rows", img3.shape[1], ker3.shape[1]), ("columns", img3.shape[2], ker3.shape[2])):
        if k > n + 2 * inp["padding"]:
            raise KeyFileError(f"{q.where('kernel')}: the kernel ({k} {axis}) is larger than the padded image "
                               f"({n} + 2x{inp['padding']} {axis}); image {image.shape}, kernel {kernel.shape}")
    return inp


def conv_explanation(inp, at=None):
    ker = inp["kernel"][:, ::-1, ::-1] if inp["flip"] else inp["kernel"]
    image = inp["image"]
    if image.shape[0] == 1:  # one channel: explain writes it as a plain 2-D sum
        image, ker = image[0], ker[0]
    return explain.explain_conv(image, ker, inp["stride"], inp["padding"], inp["bias"], at=at)


def _conv_compute(inp):
    return _output_cells(conv_explanation(inp).output)


def _conv_working(inp, cell):
    if cell == "output shape":
        n, k = inp["image"].shape[1], inp["kernel"].shape[1]
        return _size_working(n, k, inp["stride"], inp["padding"])
    e = conv_explanation(inp, at=_index(cell))
    head = "kernel rotated by 180 degrees (true convolution); " if inp["flip"] else ""
    lines = e.step_text(e.steps[0])
    return head + "\n".join(lines), e.step_latex(e.steps[0])


def _read_pool(q, refs):
    image = _matrix(q, "image")
    inp = {"image": image if image.ndim == 3 else image[None], "mode": q.op[:3], "channels": image.ndim == 3}
    k = _int(q, inp, "kernel_size", None, 1)
    _int(q, inp, "stride", k, 1)
    p = _int(q, inp, "padding", 0, 0)
    if 2 * p > k:
        raise KeyFileError(f"{q.where('padding')}: {p} is more than half the window ({k})")
    if k > image.shape[-1] + 2 * p or k > image.shape[-2] + 2 * p:
        raise KeyFileError(f"{q.where('kernel_size')}: a {k}x{k} window does not fit the image {image.shape[-2:]}")
    return inp


def pool_explanation(inp, at=None):
    return explain.explain_pool(inp["image"], inp["kernel_size"], inp["stride"], inp["padding"], inp["mode"], at=at)


def _pool_compute(inp):
    out = pool_explanation(inp).output
    return _output_cells(out if inp["channels"] else out[0])


def _pool_working(inp, cell):
    if cell == "output shape":
        return _size_working(inp["image"].shape[1], inp["kernel_size"], inp["stride"], inp["padding"])
    idx = _index(cell)
    img = inp["image"] if inp["channels"] else inp["image"][0]
    e = explain.explain_pool(img, inp["kernel_size"], inp["stride"], inp["padding"], inp["mode"], at=idx[-2:])
    step = [s for s in e.steps if not inp["channels"] or s.channel == idx[0]][0]
    return e.step_text(step), e.step_latex(step)


# --------------------------------------------------------------------------- sizes and counts

def _read_size(q, refs):
    inp = {}
    _int(q, inp, "n", None, 1)
    k = _int(q, inp, "kernel_size", None, 1)
    layer = q.fields.get("layer", "conv")
    if layer not in ("conv", "pool"):
        raise KeyFileError(f"{q.where('layer')}: must be 'conv' or 'pool', got {layer!r}")
    inp["layer"] = layer
    _int(q, inp, "stride", k if layer == "pool" else 1, 1)
    inp["stride_given"] = "stride" in q.fields
    pad = _padding(q, inp)
    _int(q, inp, "dilation", 1, 1)
    if isinstance(pad, str):
        inp["padding"] = 0 if pad == "valid" else (inp["dilation"] * (k - 1)) // 2
    if inp["n"] + 2 * inp["padding"] < inp["dilation"] * (k - 1) + 1:
        raise KeyFileError(f"{q.where('kernel_size')}: a {k}-wide window does not fit n = {inp['n']} "
                           f"with padding {inp['padding']}")
    return inp


def output_size(n, k, s, p, d=1):
    return (n + 2 * p - d * (k - 1) - 1) // s + 1


def _size_compute(inp):
    return {"answer": shapes.conv_output_size(inp["n"], inp["kernel_size"], inp["stride"], inp["padding"],
                                              inp["dilation"])}


def _size_working_cell(inp, cell):
    return _size_working(inp["n"], inp["kernel_size"], inp["stride"], inp["padding"], inp["dilation"])


def _read_transposed(q, refs):
    inp = {}
    _int(q, inp, "n", None, 1)
    _int(q, inp, "kernel_size", None, 1)
    s = _int(q, inp, "stride", 1, 1)
    _int(q, inp, "padding", 0, 0)
    d = _int(q, inp, "dilation", 1, 1)
    op = _int(q, inp, "output_padding", 0, 0)
    if op >= max(s, d):
        raise KeyFileError(f"{q.where('output_padding')}: {op} must be smaller than the stride ({s})")
    return inp


def transposed_size(n, k, s, p, op=0, d=1):
    return (n - 1) * s - 2 * p + d * (k - 1) + op + 1


def _transposed_compute(inp):
    return {"answer": shapes.conv_transpose_output_size(inp["n"], inp["kernel_size"], inp["stride"],
                                                        inp["padding"], inp["output_padding"], inp["dilation"])}


def _transposed_working(inp, cell):
    n, k, s, p, op, d = (inp[f] for f in ("n", "kernel_size", "stride", "padding", "output_padding", "dilation"))
    v = transposed_size(n, k, s, p, op, d)
    text = f"({n} - 1) x {s} - 2x{p} + {d}x({k} - 1) + {op} + 1 = {v}"
    latex = rf"$$({n} - 1) \times {s} - 2 \times {p} + {d} \times ({k} - 1) + {op} + 1 = {v}$$"
    return text, latex


def _read_conv_params(q, refs):
    inp = {}
    _int(q, inp, "in_channels", None, 1)
    _int(q, inp, "filters", None, 1)
    _int(q, inp, "kernel_size", None, 1)
    bias = q.fields.get("bias", True)
    if not isinstance(bias, bool):
        raise KeyFileError(f"{q.where('bias')}: must be true or false, got {bias!r}")
    inp["bias"] = bias
    return inp


def _conv_params_compute(inp):
    return {"answer": shapes.conv2d_param_count(inp["in_channels"], inp["filters"], inp["kernel_size"], inp["bias"])}


def conv_params_working(c, f, k, bias=True):
    v = f * (c * k * k + (1 if bias else 0))
    b = " + 1" if bias else ""
    return (f"{f} x ({c} x {k} x {k}{b}) = {v}",
            rf"$${f} \times ({c} \times {k} \times {k}{b}) = {v}$$")


def _conv_params_working(inp, cell):
    return conv_params_working(inp["in_channels"], inp["filters"], inp["kernel_size"], inp["bias"])


def _read_dense(q, refs):
    layers = q.fields.get("layers")
    if (not isinstance(layers, list) or not layers or
            any(not isinstance(p, list) or len(p) != 2 or any(isinstance(v, bool) or not isinstance(v, int) or v < 1
                                                                  for v in p) for p in layers)):
        raise KeyFileError(f"{q.where('layers')}: must be a list of [inputs, units] pairs of positive ints, "
                           f"got {layers!r}")
    bias = q.fields.get("bias", True)
    if not isinstance(bias, bool):
        raise KeyFileError(f"{q.where('bias')}: must be true or false, got {bias!r}")
    return {"layers": [tuple(p) for p in layers], "bias": bias}


def _dense_compute(inp):
    return {"answer": sum(shapes.dense_param_count(i, o, inp["bias"]) for i, o in inp["layers"])}


def _dense_working(inp, cell):
    b = " + 1" if inp["bias"] else ""
    terms = [f"{o} x ({i}{b})" for i, o in inp["layers"]]
    v = _dense_compute(inp)["answer"]
    return " + ".join(terms) + f" = {v}", "$$" + " + ".join(t.replace(" x ", r" \times ") for t in terms) + f" = {v}$$"


def _read_rf(q, refs):
    layers = q.fields.get("layers")
    ok = isinstance(layers, list) and layers and all(
        isinstance(l, list) and 1 <= len(l) <= 3 and all(isinstance(v, int) and not isinstance(v, bool) and v >= 1
                                                         for v in l) for l in layers)
    if not ok:
        raise KeyFileError(f"{q.where('layers')}: must be a list of [kernel_size, stride, dilation] lists "
                           f"(stride and dilation optional, every value >= 1), got {layers!r}")
    return {"layers": [tuple(l) + (1,) * (3 - len(l)) for l in layers]}


def _rf_compute(inp):
    return {"answer": shapes.receptive_field(inp["layers"])}


def _rf_working(inp, cell):
    terms, jump = ["1"], 1
    for k, s, d in inp["layers"]:
        terms.append(f"{d}x({k} - 1)x{jump}")
        jump *= s
    v = shapes.receptive_field(inp["layers"])
    return " + ".join(terms) + f" = {v}", "$$" + " + ".join(terms).replace("x", r" \times ") + f" = {v}$$"


def _read_product(q, refs):
    factors = q.fields.get("factors")
    if not isinstance(factors, list) or not factors:
        raise KeyFileError(f"{q.where('factors')}: must be a list of numbers")
    return {"factors": [_number(q, "factors", f, refs) for f in factors], "raw": list(factors)}


def _product_compute(inp):
    return {"answer": math.prod(inp["factors"])}


def _product_working(inp, cell):
    v = math.prod(inp["factors"])
    return (" x ".join(fmt(f) for f in inp["factors"]) + f" = {fmt(v)}",
            "$$" + r" \times ".join(fmt(f) for f in inp["factors"]) + f" = {fmt(v)}$$")


def _read_l1(q, refs):
    a, b = _matrix(q, "a", (1, 2, 3)), _matrix(q, "b", (1, 2, 3))
    if a.shape != b.shape:
        raise KeyFileError(f"{q.where('b')}: shape {b.shape} differs from a's {a.shape}")
    return {"a": a, "b": b}


def _l1_compute(inp):
    return {"answer": float(np.abs(inp["a"] - inp["b"]).sum())}


def _l1_working(inp, cell):
    d = np.abs(inp["a"] - inp["b"]).ravel()
    v = fmt(d.sum())
    return " + ".join(fmt(x) for x in d) + f" = {v}", "$$" + " + ".join(fmt(x) for x in d) + f" = {v}$$"


BASIC = [
    Op("correlate", "cross-correlation (what CNNs compute)", ("image", "kernel", "stride", "padding", "bias"),
       ("image", "kernel"), _read_conv, _conv_compute, lambda q, inp: _matrix_answer(q, 2), _conv_working,
       ("stride", "padding")),
    Op("convolve", "true convolution (kernel rotated by 180 degrees)", ("image", "kernel", "stride", "padding", "bias"),
       ("image", "kernel"), _read_conv, _conv_compute, lambda q, inp: _matrix_answer(q, 2), _conv_working,
       ("stride", "padding")),
    Op("max_pool", "max pooling", ("image", "kernel_size", "stride", "padding"), ("image", "kernel_size"),
       _read_pool, _pool_compute, lambda q, inp: _matrix_answer(q, 3 if inp["channels"] else 2), _pool_working,
       ("kernel_size", "stride")),
    Op("avg_pool", "average pooling", ("image", "kernel_size", "stride", "padding"), ("image", "kernel_size"),
       _read_pool, _pool_compute, lambda q, inp: _matrix_answer(q, 3 if inp["channels"] else 2), _pool_working,
       ("kernel_size", "stride")),
    Op("output_size", "output size of a convolution or pooling",
       ("n", "kernel_size", "stride", "padding", "dilation", "layer"), ("n", "kernel_size"),
       _read_size, _size_compute, _scalar_answer, _size_working_cell, ("n", "kernel_size", "stride", "padding")),
    Op("transposed_output_size", "output size of a transposed convolution",
       ("n", "kernel_size", "stride", "padding", "output_padding", "dilation"), ("n", "kernel_size"),
       _read_transposed, _transposed_compute, _scalar_answer, _transposed_working,
       ("n", "kernel_size", "stride", "padding")),
    Op("conv_params", "parameter count of a conv layer", ("in_channels", "filters", "kernel_size", "bias"),
       ("in_channels", "filters", "kernel_size"), _read_conv_params, _conv_params_compute, _scalar_answer,
       _conv_params_working, ("in_channels", "filters", "kernel_size")),
    Op("dense_params", "parameter count of fully connected layers", ("layers", "bias"), ("layers",),
       _read_dense, _dense_compute, _scalar_answer, _dense_working),
    Op("receptive_field", "receptive field of a stack of layers", ("layers",), ("layers",),
       _read_rf, _rf_compute, _scalar_answer, _rf_working),
    Op("product", "a product of printed numbers (sizes, counts)", ("factors",), ("factors",),
       _read_product, _product_compute, _scalar_answer, _product_working),
    Op("l1_distance", "L1 distance of two images", ("a", "b"), ("a", "b"), _read_l1, _l1_compute,
       _scalar_answer, _l1_working),
]


def evaluate(op: Op, inp: dict) -> dict:
    """The right value of every cell, or {} when these inputs do not compute (a slip's search may
    try sizes that do not fit)."""
    try:
        return op.compute(inp)
    except (ValueError, IndexError, ZeroDivisionError):
        return {}
