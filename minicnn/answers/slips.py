"""The known slips: each one a wrong way to compute an op, run on the question's own inputs.

A slip *reproduces* a printed cell when computing the question with that slip gives exactly the
printed value (and the right computation does not).  The diagnosis tries every slip of the op and
keeps those that reproduce the cell; it never reads a catalogue note.

Where a slip is one of the course's known-wrong implementations (solutions/mutants.py in the
course directory: the instructor's solution cell with one mistake put in), it names that mutant
in `mutants` (plain strings: the mutants are not shipped with the package), and
tests/answers/test_slips_are_mutants.py runs the mutated solution cell and this slip on random
inputs and requires the same numbers.  The slips without a mutant are those the course's
notebooks have no cell for (one axis's stride, floor vs ceil, ...); they say so.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import numpy as np

from .formula import counts
from .ops import output_size, transposed_size
from .tables import table_cells


@dataclass(frozen=True)
class Slip:
    id: str
    kind: str                      # the family the issue names: "kernel flipped", "bias per layer", ...
    says: str                      # what the slip does, in one sentence
    ops: tuple
    run: Callable                  # inputs -> {cell: value} computed with the slip
    mutants: tuple = ()            # names of the course's mutants (solutions/mutants.py) making this slip


# --------------------------------------------------------------------------- convolution with a slip

def correlate(image, kernel, bias, pad, stride, move=None, flip=(False, False), channels=None):
    """Single-filter cross-correlation written to be bent: image (C, H, W), kernel (C, kH, kW);
    pad = (top, bottom, left, right) zeros; the output size comes from `stride`, the window of
    output (i, j) starts at (i * move[0], j * move[1]) (move defaults to stride); flip reverses the
    kernel's rows and/or columns; channels limits the sum.  A window that falls outside the
    padded image gives NaN (it reproduces nothing)."""
    move = stride if move is None else move
    c, h, w = image.shape
    kh, kw = kernel.shape[1:]
    t, b, l, r = pad
    padded = np.zeros((c, h + t + b, w + l + r))
    padded[:, t:t + h, l:l + w] = image
    ker = kernel[:, ::-1, :] if flip[0] else kernel
    ker = ker[:, :, ::-1] if flip[1] else ker
    out_h = (padded.shape[1] - kh) // stride[0] + 1
    out_w = (padded.shape[2] - kw) // stride[1] + 1
    out = np.full((max(out_h, 0), max(out_w, 0)), np.nan)
    chans = range(c) if channels is None else channels
    for i in range(out.shape[0]):
        for j in range(out.shape[1]):
            r0, c0 = i * move[0], j * move[1]          # top-left corner of this output's window
            if r0 + kh <= padded.shape[1] and c0 + kw <= padded.shape[2]:
                out[i, j] = bias + sum(float((padded[ch, r0:r0 + kh, c0:c0 + kw] * ker[ch]).sum()) for ch in chans)
    return out


def _cells(out):
    cells = {"output shape": tuple(out.shape)}
    for i, j in np.ndindex(out.shape):
        if not np.isnan(out[i, j]):
            cells[f"out[{i}, {j}]"] = float(out[i, j])
    return cells


def _conv(**change):
    """A slip that calls `correlate` with the question's own arguments but for `change`: each
    changed argument a value, or a function of the question's inputs."""
    def run(inp):
        p, s = inp["padding"], inp["stride"]
        args = {"image": inp["image"], "kernel": inp["kernel"], "bias": inp["bias"], "pad": (p, p, p, p),
                "stride": (s, s), "flip": (inp["flip"], inp["flip"])}
        for name, value in change.items():
            args[name] = value(inp) if callable(value) else value
        return _cells(correlate(**args))
    return run


def _only_if(cond, run):
    """The slip only where it changes something (no stride slip at stride 1, ...)."""
    return lambda inp: run(inp) if cond(inp) else {}


def _s(inp):
    return inp["stride"]


def _p(inp):
    return inp["padding"]


CONV_OPS = ("correlate", "convolve")

CONV_SLIPS = [
    Slip("kernel-flipped", "kernel flipped (convolution vs cross-correlation)",
         "the kernel is rotated by 180 degrees: true convolution where CNNs cross-correlate", ("correlate",),
         _conv(flip=(True, True)), ("correlate-kernel-flipped",)),
    Slip("kernel-not-flipped", "kernel flipped (convolution vs cross-correlation)",
         "the kernel is not rotated: cross-correlation where the question asks for convolution", ("convolve",),
         _conv(flip=(False, False)), ("convolve-not-flipped",)),
    Slip("kernel-rows-only-flipped", "kernel flipped (convolution vs cross-correlation)",
         "only the kernel's rows are reversed, not its columns", ("convolve",),
         _conv(flip=(True, False)), ("convolve-flips-rows-only",)),
    Slip("stride-ignored", "window moved by the wrong amount",
         "right output size, but the window moves one pixel at a time", CONV_OPS,
         _only_if(lambda inp: _s(inp) > 1, _conv(move=(1, 1))), ("correlate-stride-ignored", "conv-stride-ignored")),
    Slip("stride-rows-only", "stride applied on one axis only",
         "the window moves by the stride down the rows but one pixel at a time across the columns", CONV_OPS,
         _only_if(lambda inp: _s(inp) > 1, _conv(move=lambda inp: (_s(inp), 1)))),
    Slip("stride-columns-only", "stride applied on one axis only",
         "the window moves by the stride across the columns but one pixel at a time down the rows", CONV_OPS,
         _only_if(lambda inp: _s(inp) > 1, _conv(move=lambda inp: (1, _s(inp))))),
    Slip("padding-missing", "padding missing", "the zero padding is left out", CONV_OPS,
         _only_if(lambda inp: _p(inp) > 0, _conv(pad=(0, 0, 0, 0)))),
    Slip("padding-one-side", "padding on one side", "all the padding goes below and right of the image "
         "(the image copied into the top-left corner)", CONV_OPS,
         _only_if(lambda inp: _p(inp) > 0, _conv(pad=lambda inp: (0, 2 * _p(inp), 0, 2 * _p(inp)))),
         ("zero-pad-top-left",)),
    Slip("padding-off-by-one", "off-by-one window", "one more ring of zero padding than asked for", CONV_OPS,
         _conv(pad=lambda inp: (_p(inp) + 1,) * 4), ("correlate-padding-off-by-one", "conv-padding-off-by-one")),
    Slip("bias-dropped", "biases left out", "the bias is not added", CONV_OPS,
         _only_if(lambda inp: inp["bias"] != 0, _conv(bias=0.0)), ("conv-bias-dropped",)),
    Slip("first-channel-only", "channels forgotten", "only the first channel is summed", CONV_OPS,
         _only_if(lambda inp: inp["image"].shape[0] > 1, _conv(channels=[0])), ("conv-first-channel-only",)),
]


# --------------------------------------------------------------------------- pooling with a slip

def pool(image, k, stride, mode, move=None, start=None, divisor=None):
    """Pooling written to be bent: image (C, H, W); window (i, j) starts at (i * move, j * move)
    (move defaults to stride); `start` is the running maximum's first value (None: the window's
    own first cell); `divisor` replaces k*k for the average."""
    move = stride if move is None else move
    c, h, w = image.shape
    out_h, out_w = (h - k) // stride + 1, (w - k) // stride + 1
    out = np.full((c, out_h, out_w), np.nan)
    for ch in range(c):
        for i in range(out_h):
            for j in range(out_w):
                r0, c0 = i * move, j * move
                if r0 + k > h or c0 + k > w:
                    continue
                window = image[ch, r0:r0 + k, c0:c0 + k]
                if mode == "max":
                    out[ch, i, j] = window.max() if start is None else max(window.max(), start)
                else:
                    out[ch, i, j] = window.sum() / (k * k if divisor is None else divisor)
    return out


def _pool(**change):
    def run(inp):
        if inp["padding"]:
            return {}
        args = {"image": inp["image"], "k": inp["kernel_size"], "stride": inp["stride"], "mode": inp["mode"]}
        args.update({n: (v(inp) if callable(v) else v) for n, v in change.items()})
        out = pool(**args)
        cells = {"output shape": tuple(out.shape if inp["channels"] else out.shape[1:])}
        for idx in np.ndindex(out.shape):
            if not np.isnan(out[idx]):
                cells["out[" + ", ".join(str(i) for i in (idx if inp["channels"] else idx[1:])) + "]"] = float(out[idx])
        return cells
    return run


POOL_SLIPS = [
    Slip("pool-window-at-i-times-k", "window moved by the wrong amount",
         "window (i, j) starts at (i*k, j*k) instead of (i*stride, j*stride)", ("max_pool", "avg_pool"),
         _only_if(lambda inp: inp["stride"] != inp["kernel_size"], _pool(move=lambda inp: inp["kernel_size"])),
         ("max-pool-wrong-window",)),
    Slip("pool-stride-ignored", "window moved by the wrong amount",
         "right output size, but the window moves one pixel at a time", ("max_pool", "avg_pool"),
         _only_if(lambda inp: inp["stride"] > 1, _pool(move=1))),
    Slip("max-starts-at-zero", "off-by-one window", "the running maximum starts at 0, so a window of "
         "negative numbers gives 0", ("max_pool",), _pool(start=0.0), ("max-pool-starts-at-zero",)),
    Slip("avg-divides-by-k", "one product's arithmetic wrong", "the window's sum is divided by k instead of k*k",
         ("avg_pool",), _pool(divisor=lambda inp: inp["kernel_size"]), ("avg-pool-divides-by-k",)),
]


# --------------------------------------------------------------------------- sizes and counts

def _size(fn):
    return lambda inp: {"answer": fn(inp["n"], inp["kernel_size"], inp["stride"], inp["padding"], inp["dilation"])}


SIZE_SLIPS = [
    Slip("size-missing-plus-one", "off-by-one window", "the output size forgets the + 1: floor((n + 2p - k)/s)",
         ("output_size",), _size(lambda n, k, s, p, d: (n + 2 * p - d * (k - 1) - 1) // s),
         ("output-size-missing-plus-one",)),
    Slip("size-padding-once", "padding on one side", "the padding is added once, not on both sides: "
         "floor((n + p - k)/s) + 1", ("output_size",),
         lambda inp: _size(lambda n, k, s, p, d: (n + p - d * (k - 1) - 1) // s + 1)(inp) if inp["padding"] else {},
         ("output-size-padding-once",)),
    Slip("size-padding-missing", "padding missing", "the padding is left out: floor((n - k)/s) + 1",
         ("output_size",), lambda inp: _size(lambda n, k, s, p, d: output_size(n, k, s, 0, d))(inp)
         if inp["padding"] else {}),
    Slip("size-ceil", "floor vs ceil", "ceil instead of floor: ceil((n + 2p - k)/s) + 1", ("output_size",),
         _size(lambda n, k, s, p, d: math.ceil((n + 2 * p - d * (k - 1) - 1) / s) + 1)),
    Slip("size-pool-stride-one", "window moved by the wrong amount", "a pooling layer's stride taken as 1 "
         "(it defaults to the window size)", ("output_size",),
         lambda inp: _size(lambda n, k, s, p, d: output_size(n, k, 1, p, d))(inp)
         if inp["layer"] == "pool" and not inp["stride_given"] else {}),
    Slip("size-dilation-ignored", "off-by-one window", "the dilation is ignored: the window is k wide, not "
         "d(k - 1) + 1", ("output_size",),
         lambda inp: _size(lambda n, k, s, p, d: output_size(n, k, s, p, 1))(inp) if inp["dilation"] > 1 else {}),
]


def _tsize(fn):
    return lambda inp: {"answer": fn(inp["n"], inp["kernel_size"], inp["stride"], inp["padding"],
                                     inp["output_padding"], inp["dilation"])}


TRANSPOSED_SLIPS = [
    Slip("transposed-n-not-minus-one", "off-by-one window", "n * s instead of (n - 1) * s",
         ("transposed_output_size",), _tsize(lambda n, k, s, p, op, d: transposed_size(n + 1, k, s, p, op, d))),
    Slip("transposed-padding-once", "padding on one side", "the padding is taken off once, not on both sides",
         ("transposed_output_size",),
         lambda inp: _tsize(lambda n, k, s, p, op, d: transposed_size(n, k, s, 0, op, d) - p)(inp)
         if inp["padding"] else {}),
    Slip("transposed-forward-formula", "window moved by the wrong amount",
         "the forward convolution's formula floor((n + 2p - k)/s) + 1 used for a transposed one",
         ("transposed_output_size",),
         _tsize(lambda n, k, s, p, op, d: output_size(n, k, s, p, d) if n + 2 * p >= d * (k - 1) + 1 else -1)),
    Slip("transposed-output-padding-left-out", "padding missing", "the output padding is left out",
         ("transposed_output_size",),
         lambda inp: _tsize(lambda n, k, s, p, op, d: transposed_size(n, k, s, p, 0, d))(inp)
         if inp["output_padding"] else {}),
]


def _params(fn):
    return lambda inp: {"answer": fn(inp["in_channels"], inp["filters"], inp["kernel_size"])} if inp["bias"] else {}


PARAM_SLIPS = [
    Slip("one-bias-per-layer", "bias counted once per layer", "one bias for the whole layer instead of one per "
         "filter: filters x C x k x k + 1", ("conv_params",), _params(lambda c, f, k: f * c * k * k + 1),
         ("param-count-one-bias-per-layer",)),
    Slip("biases-left-out", "biases left out", "the biases are not counted: filters x C x k x k",
         ("conv_params",), _params(lambda c, f, k: f * c * k * k)),
    Slip("channels-forgotten", "channels forgotten", "each filter spans one channel: filters x (k x k + 1)",
         ("conv_params",), lambda inp: {"answer": inp["filters"] * (inp["kernel_size"] ** 2 + int(inp["bias"]))}
         if inp["in_channels"] > 1 else {}, ("param-count-ignores-channels",)),
    Slip("dense-biases-left-out", "biases left out", "the biases are not counted: inputs x units",
         ("dense_params",), lambda inp: {"answer": sum(i * o for i, o in inp["layers"])} if inp["bias"] else {}),
    Slip("dense-one-bias-per-layer", "bias counted once per layer", "one bias per layer instead of one per unit",
         ("dense_params",), lambda inp: {"answer": sum(i * o + 1 for i, o in inp["layers"])} if inp["bias"] else {}),
]


def _conv_layer(bias_slip):
    def run(inp):
        c, h, w = inp["input"]
        f, k = inp["filters"], inp["kernel_size"]
        return {"params": bias_slip(c, f, k)}
    return run


CONV_LAYER_SLIPS = [
    Slip("layer-one-bias-per-layer", "bias counted once per layer", "one bias for the whole layer",
         ("conv_layer",), _conv_layer(lambda c, f, k: f * c * k * k + 1), ("param-count-one-bias-per-layer",)),
    Slip("layer-biases-left-out", "biases left out", "the biases are not counted", ("conv_layer",),
         _conv_layer(lambda c, f, k: f * c * k * k)),
    Slip("layer-channels-forgotten", "channels forgotten", "each filter spans one channel", ("conv_layer",),
         lambda inp: {"params": inp["filters"] * (inp["kernel_size"] ** 2 + 1),
                      "weights": inp["filters"] * inp["kernel_size"] ** 2} if inp["input"][0] > 1 else {},
         ("param-count-ignores-channels",)),
    Slip("layer-padding-missing", "padding missing", "the padding is left out of the output size", ("conv_layer",),
         lambda inp: _layer_shape(inp, padding=0) if inp["padding"] else {}),
    Slip("layer-size-missing-plus-one", "off-by-one window", "the output size forgets the + 1", ("conv_layer",),
         lambda inp: _layer_shape(inp, plus=0)),
]


def _layer_shape(inp, padding=None, plus=1):
    c, h, w = inp["input"]
    f, k, s = inp["filters"], inp["kernel_size"], inp["stride"]
    p = inp["padding"] if padding is None else padding
    oh, ow = (h + 2 * p - k) // s + plus, (w + 2 * p - k) // s + plus
    return {"shape": (f, oh, ow), "units": oh * ow * f} if min(oh, ow) >= 1 else {}


def layer_table(input_chw, layers, one_bias_per_layer=False, no_bias=False, dense_not_flattened=False,
                pool_stride_one=False, channels_forgotten=False):
    """shapes.layer_table with one slip switched on (rows as layer_table gives them, input row first)."""
    c, h, w = input_chw
    shape = (c, h, w)
    rows = [{"shape": shape, "size": c * h * w, "params": 0}]
    for layer in layers:
        kind = layer["type"]
        if kind == "conv":
            k, s, p, f = layer["kernel_size"], layer.get("stride", 1), layer.get("padding", 0), layer["filters"]
            cin = 1 if channels_forgotten else shape[0]
            weights = f * cin * k * k
            params = weights + (0 if no_bias else 1 if one_bias_per_layer else f)
            shape = (f, (shape[1] + 2 * p - k) // s + 1, (shape[2] + 2 * p - k) // s + 1)
        elif kind in ("max_pool", "avg_pool"):
            k = layer["kernel_size"]
            s = 1 if pool_stride_one and "stride_printed" not in layer else layer.get("stride", k)
            shape, params = (shape[0], (shape[1] - k) // s + 1, (shape[2] - k) // s + 1), 0
        else:
            fan_in = shape[0] if dense_not_flattened else math.prod(shape)
            params = layer["units"] * fan_in + (0 if no_bias else layer["units"])
            shape = (layer["units"],)
        if min(shape) < 1:
            return None
        rows.append({"shape": shape, "size": math.prod(shape), "params": params})
    return rows


def _table(**flag):
    def run(inp):
        layers = [dict(layer, stride_printed=True) if "stride" in layer and layer["type"] != "conv" else layer
                  for layer in inp["layers"]]
        rows = layer_table(inp["input"], layers, **flag)
        return table_cells(inp["input"], rows, inp["has_input_row"]) if rows else {}
    return run


NETWORK_SLIPS = [
    Slip("table-one-bias-per-layer", "bias counted once per layer", "one bias per conv layer instead of one per "
         "filter", ("network",), _table(one_bias_per_layer=True), ("table-one-bias-per-layer",)),
    Slip("table-biases-left-out", "biases left out", "the biases are not counted", ("network",),
         _table(no_bias=True)),
    Slip("table-channels-forgotten", "channels forgotten", "each conv filter spans one channel", ("network",),
         _table(channels_forgotten=True)),
    Slip("table-dense-not-flattened", "channels forgotten", "the first dense layer counts only the channels as "
         "its inputs, not C x H x W", ("network",), _table(dense_not_flattened=True), ("table-dense-not-flattened",)),
    Slip("table-pool-stride-one", "window moved by the wrong amount", "a pooling layer's stride taken as 1 "
         "where the table gives none", ("network",), _table(pool_stride_one=True), ("table-pool-stride-one",)),
]


def _rf(fn):
    return lambda inp: {"answer": fn(inp["layers"])}


RF_SLIPS = [
    Slip("rf-stride-ignored", "window moved by the wrong amount", "the strides of earlier layers are ignored",
         ("receptive_field",), _rf(lambda ls: 1 + sum(d * (k - 1) for k, s, d in ls))),
    Slip("rf-dilation-ignored", "off-by-one window", "the dilation is ignored", ("receptive_field",),
         _rf(lambda ls: 1 + sum((k - 1) * math.prod(x[1] for x in ls[:i]) for i, (k, s, d) in enumerate(ls)))),
    Slip("rf-adds-k", "off-by-one window", "each layer adds k instead of k - 1", ("receptive_field",),
         _rf(lambda ls: 1 + sum(d * k * math.prod(x[1] for x in ls[:i]) for i, (k, s, d) in enumerate(ls)))),
]


def _formula(fn):
    return lambda inp: {"formula": counts("conv", fn)} if inp["layer"] == "conv" else {}


FORMULA_SLIPS = [
    Slip("formula-one-bias-per-layer", "bias counted once per layer", "one bias for the whole layer instead of "
         "one per filter: filters x filter size + 1", ("param_formula",),
         _formula(lambda channels, filters, kernel_size, filter_size: filters * filter_size + 1),
         ("param-count-one-bias-per-layer",)),
    Slip("formula-biases-left-out", "biases left out", "the biases are not counted", ("param_formula",),
         _formula(lambda channels, filters, kernel_size, filter_size: filters * filter_size)),
    Slip("formula-channels-forgotten", "channels forgotten", "each filter spans one channel: "
         "filters x (k x k + 1)", ("param_formula",),
         _formula(lambda channels, filters, kernel_size, filter_size: filters * (kernel_size ** 2 + 1)),
         ("param-count-ignores-channels",)),
    Slip("formula-dense-biases-left-out", "biases left out", "the biases are not counted: inputs x units",
         ("param_formula",), lambda inp: {"formula": counts("dense", lambda inputs, units: inputs * units)}
         if inp["layer"] == "dense" else {}),
    Slip("formula-dense-one-bias-per-layer", "bias counted once per layer", "one bias per layer: inputs x units + 1",
         ("param_formula",), lambda inp: {"formula": counts("dense", lambda inputs, units: inputs * units + 1)}
         if inp["layer"] == "dense" else {}),
]

OTHER_SLIPS = [
    Slip("l1-signed", "one product's arithmetic wrong", "the differences are summed with their signs, not their "
         "absolute values", ("l1_distance",), lambda inp: {"answer": float((inp["a"] - inp["b"]).sum())}),
]

SLIPS = CONV_SLIPS + POOL_SLIPS + SIZE_SLIPS + TRANSPOSED_SLIPS + PARAM_SLIPS + CONV_LAYER_SLIPS + \
    NETWORK_SLIPS + FORMULA_SLIPS + RF_SLIPS + OTHER_SLIPS

def for_op(op: str) -> list:
    return [s for s in SLIPS if op in s.ops]
