"""Assignment 6, part `a6.counts`: parameters and FLOPs of a dense layer and of a convolution
that map the same input to the same output shape (Zese, "Edge Detection by Convolution").

The student's `layer_counts(in_shape_chw, out_channels, kernel_size, stride, padding, bias)`
returns a dict of four ints; the expected values come from `minicnn.shapes` (conv2d_param_count,
conv2d_flops, dense_param_count, dense_flops), which tests/test_shapes_flops.py checks against a
plain count and the slide's numbers.  FLOPs count multiplications and additions, as Zese does.
"""
from __future__ import annotations

import numpy as np

from .. import examples, shapes
from .cases import case_label, out_size
from .part import Case, Part

KEYS = ("conv_params", "conv_flops", "dense_params", "dense_flops")
ZESE = examples.lectures()["ferrara"]


def counts(in_shape_chw, out_channels, kernel_size, stride=1, padding=0, bias=True, *, mistake=None):
    """The four counts; `mistake` names one of the recognised mistakes (for the hints)."""
    c, h, w = in_shape_chw
    k = out_channels
    kh, kw = kernel_size
    s = 1 if mistake == "stride" else stride
    oh, ow = out_size(h, kh, s, padding), out_size(w, kw, s, padding)
    b = 0 if mistake == "bias" else int(bias)
    taps = c * kh * kw
    per_output = taps if mistake == "multiplies" else 2 * taps - 1 + b
    dense_out = k * oh * ow
    dense_in = c * h * w
    per_dense = dense_in if mistake == "multiplies" else 2 * dense_in - 1 + b
    dense_params = (dense_in + b) * (k if mistake == "dense-per-pixel" else dense_out)
    return {"conv_params": k * (taps + b), "conv_flops": dense_out * per_output,
            "dense_params": dense_params, "dense_flops": dense_out * per_dense}


def reference(in_shape_chw, out_channels, kernel_size, stride, padding, bias):
    oh, ow = shapes.conv_output_size(tuple(in_shape_chw[1:]), kernel_size, stride, padding)
    dense_in, dense_out = int(np.prod(in_shape_chw)), out_channels * oh * ow
    return {"conv_params": shapes.conv2d_param_count(in_shape_chw[0], out_channels, kernel_size, bias),
            "conv_flops": shapes.conv2d_flops(in_shape_chw, out_channels, kernel_size, stride, padding, bias),
            "dense_params": shapes.dense_param_count(dense_in, dense_out, bias),
            "dense_flops": shapes.dense_flops(dense_in, dense_out, bias)}


def compare_counts(expected, got):
    if not isinstance(got, dict):
        return {"kind": "type", "text": f"returned {type(got).__name__}, expected a dict with keys {', '.join(KEYS)}"}
    missing = [key for key in KEYS if key not in got]
    if missing:
        return {"kind": "type", "text": f"the dict has no {', '.join(missing)} (keys: {', '.join(KEYS)})"}
    wrong = []
    for key in KEYS:
        v = got[key]
        if isinstance(v, (bool, np.bool_)) or not isinstance(v, (int, float, np.integer, np.floating)):
            return {"kind": "type", "text": f"{key} is {v!r}, expected a number"}
        if float(v) != expected[key]:
            wrong.append(f"{key}: expected {expected[key]}, got {v!r}")
    if wrong:
        return {"kind": "values", "text": "; ".join(wrong)}
    return None


MISTAKES = {
    "multiplies": "FLOPs count the multiplications *and* the additions (Zese: two multiplications and one addition "
                  "per output pixel of a two-tap kernel): 2 * C*kh*kw - 1 per output, plus 1 for the bias",
    "bias": "the bias is missing: one bias per conv filter and per dense output, and one more addition per output",
    "dense-per-pixel": "the dense layer has one row of weights per output *value* (K * H_out * W_out of them), "
                       "not one per output channel: it shares nothing across positions",
    "stride": "the stride is ignored: H_out = floor((H + 2*padding - kh) / stride) + 1 (likewise W_out)",
}


def _alternatives(args):
    alts = {}
    expected = reference(*args)
    for mistake, text in MISTAKES.items():
        value = counts(*args, mistake=mistake)
        if value != expected:
            alts[text] = value
    return alts


def _case(label, args, **kw):
    (c, h, w), k, (kh, kw_), s, p, bias = args
    desc = (f"input {c}x{h}x{w}, {k} filters {kh}x{kw_}, stride {s}, padding {p}, "
            f"{'with' if bias else 'without'} bias")
    return Case(label, args, reference(*args), desc, alternatives=_alternatives(args), **kw)


KINDS = ("stride 2", "padding", "several channels", "no bias", "ordinary")


def _cases(rng, hidden):
    cases = []
    if not hidden:
        # Zese's edge detector: one 1x2 filter on a 320-column, 280-row grey image, no bias
        cases.append(_case(f'lecture: {ZESE["author"]}, "{ZESE["title"]}", slide "Edge Detection by Convolution" '
                           "(1x2 kernel [-1, 1] on a 320x280 image; no bias)",
                           ((1, 280, 320), 1, (1, 2), 1, 0, False), worked=True))
    for i, kind in enumerate(list(KINDS) * (2 if hidden else 1)):
        r = lambda lo, hi: int(rng.integers(lo, hi + 1))  # noqa: E731
        kh = kw = r(1, 5)
        s, p, bias = r(1, 3), r(0, 2), True
        c, k = r(1, 4), r(1, 8)
        if kind == "stride 2":
            s, kh, kw = 2, max(kh, 2), max(kw, 2)
        elif kind == "padding":
            p = r(1, 2)
        elif kind == "several channels":
            c = r(3, 16)
        elif kind == "no bias":
            bias = False
        h, w = r(kh + 2, 32), r(kw + 2, 32)
        cases.append(_case(case_label(i, kind, hidden), ((c, h, w), k, (kh, kw), s, p, bias), hidden=hidden))
    return cases


def _hint(case, got, m):
    return ("the conv layer has K * (C*kh*kw + bias) parameters and K*H_out*W_out outputs of 2*C*kh*kw - 1 + bias "
            "flops each; the dense layer maps all C*H*W inputs to all K*H_out*W_out outputs")


COUNTS = Part("a6.counts", "layer_counts", "Parameters and FLOPs: dense versus convolution", _cases,
              compare=compare_counts, hint=_hint)
