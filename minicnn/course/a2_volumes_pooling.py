"""Assignment 2 (volumes and pooling): batched multi-channel convolution with bias, dilation,
1x1 convolution, max and average pooling, and a network's shape and parameter table.

Expected values come from minicnn's reference kernels (impl="loop") on catalogue or seeded inputs.
"""
from __future__ import annotations

import numpy as np

from .. import conv, examples, pool, shapes
from .cases import (NON_SQUARE, REF, STRIDE_GT_KERNEL, case_kinds, case_label, cite, conv_desc, first_match, geometry,
                    first_that_computes, ints, out_size, pad_of, window_error_hint)
from .part import Case, Part

PARTS: list[Part] = []   # this assignment's graded parts, in notebook order


def _conv_alternatives(x, w, b, s, p, d):
    f = lambda *a, **k: conv.conv2d(*a, impl=REF, **k)  # noqa: E731
    alts = {
        "the bias is missing: add b[k] once to every output of filter k": lambda: f(x, w, None, s, p, d),
        "the bias is added once per channel (or per kernel cell), not once per output": lambda: first_match(
            [f(x, w, b * x.shape[1], s, p, d), f(x, w, b * x.shape[1] * w.shape[2] * w.shape[3], s, p, d)]),
        "only channel 0 is used: a filter sums over *all* input channels c": lambda: f(
            x[:, :1], w[:, :1], b, s, p, d),
        "the kernel is flipped: CNN layers compute cross-correlation": lambda: f(
            x, np.ascontiguousarray(w[:, :, ::-1, ::-1]), b, s, p, d),
    }
    if s > 1:
        alts["the stride is ignored: output (i, j) reads input row i*stride + ..."] = lambda: f(x, w, b, 1, p, d)
    if p > 0:
        alts["the padding is ignored"] = lambda: f(x, w, b, s, 0, d)
        alts["padding off by one"] = lambda: first_that_computes(lambda: f(x, w, b, s, p - 1, d),
                                                                 lambda: f(x, w, b, s, p + 1, d))
    if d > 1:
        alts["the dilation is ignored: tap (u, v) of the kernel reads row i*stride + u*dilation"] = \
            lambda: f(x, w, b, s, p, 1)
        alts["the output size ignores the dilation: the dilated kernel spans d*(k-1)+1 pixels"] = lambda: None
    if x.shape[0] > 1:
        alts["every image of the batch got the first image's result: loop over n"] = lambda: np.repeat(
            f(x[:1], w, b, s, p, d), x.shape[0], axis=0)
    return alts


def _conv_case(label, x, w, b, s, p, d=1, **kw):
    return Case(label, (x, w, b, s, p, d), conv.conv2d(x, w, b, s, p, d, impl=REF), conv_desc(x, w, s, p, d),
                alternatives=_conv_alternatives(x, w, b, s, p, d), **kw)


def _conv_cases(rng, hidden):
    cases = []
    ex = examples.get("halmstad-rgb-with-bias")
    cases.append(_conv_case(cite(ex), ex.array("x")[None], ex.array("weight"), ex.array("bias"),
                            ex.params["stride"], ex.params["padding"], worked=True, example_id=ex.id,
                            note="the slide shows the first output, -25 = 308 - 498 + 164 + 1 (bias)"))
    for eid in ("halmstad-6x6x3-two-filters", "zju-uoe-6x6x3-volume", "sjtu-32x32x3-ten-5x5-pad-2"):
        ex = examples.get(eid)
        p = ex.params
        h, w, c = p["input_hwc"]
        k = p["kernel_size"]
        x = ints(rng, (1, c, h, w))
        wt = ints(rng, (p["filters"], c, k, k), -2, 2)
        cases.append(_conv_case(cite(ex) + " (its shapes, random values)", x, wt, ints(rng, (p["filters"],)),
                                p.get("stride", 1), pad_of(p.get("padding", 0), k), worked=True,
                                example_id=ex.id))
    for i, kind in enumerate(case_kinds(hidden) + ["batch of images", "1x1 kernel"]):
        h, w, kh, kw, s, p = geometry(rng, kind)
        if kind == "1x1 kernel":
            kh = kw = 1
        n = int(rng.integers(2, 4)) if kind == "batch of images" else int(rng.integers(1, 3))
        c, k = int(rng.integers(1, 4)), int(rng.integers(1, 4))
        x, wt, b = ints(rng, (n, c, h, w)), ints(rng, (k, c, kh, kw), -2, 2), ints(rng, (k,))
        cases.append(_conv_case(case_label(i, kind, hidden), x, wt, b, s, p, hidden=hidden))
    return cases


def _conv_hint(case, got, m):
    x, w, b, s, p, d = case.args
    if m["kind"] == "shape" and case.hidden:   # a hidden case's feedback names no shape
        return "the output is (N, K, H_out, W_out); H_out = floor((H + 2p - d(kh-1) - 1)/stride) + 1"
    if m["kind"] == "shape":
        oh = (x.shape[2] + 2 * p - d * (w.shape[2] - 1) - 1) // s + 1
        ow = (x.shape[3] + 2 * p - d * (w.shape[3] - 1) - 1) // s + 1
        return (f"the output is (N, K, H_out, W_out) = ({x.shape[0]}, {w.shape[0]}, {oh}, {ow}); "
                "H_out = floor((H + 2p - d(kh-1) - 1)/stride) + 1")
    return ("out[n, k, i, j] = b[k] + sum over c, u, v of xp[n, c, i*stride + u*dilation, j*stride + v*dilation] "
            "* w[k, c, u, v]")


PARTS.append(Part("a2.conv2d", "conv2d", "Batched multi-channel convolution with bias", _conv_cases, njit=True,
                  hint=_conv_hint, numpy_functions=("correlate", "convolve")))


def _dilated_cases(rng, hidden):
    cases = []
    kinds = ["dilation 2", "dilation 3", "dilated kernel as wide as the input", "dilation with stride 2",
             NON_SQUARE] * (2 if hidden else 1)
    for i, kind in enumerate(kinds):
        d = 3 if kind == "dilation 3" else 2
        kh, kw = (2, 3) if kind == NON_SQUARE else (3, 3)
        s = 2 if kind == "dilation with stride 2" else 1
        p = int(rng.integers(0, 3))
        span_h, span_w = d * (kh - 1) + 1, d * (kw - 1) + 1
        if kind.startswith("dilated kernel as wide"):
            h, w, p = span_h, span_w, 0
        else:
            h = max(span_h - 2 * p, 0) + int(rng.integers(1, 5))
            w = max(span_w - 2 * p, 0) + int(rng.integers(1, 5))
        n, c, k = int(rng.integers(1, 3)), int(rng.integers(1, 3)), int(rng.integers(1, 3))
        x, wt, b = ints(rng, (n, c, h, w)), ints(rng, (k, c, kh, kw), -2, 2), ints(rng, (k,))
        cases.append(_conv_case(case_label(i, kind, hidden), x, wt, b, s, p, d, hidden=hidden))
    # Aksoy's dilated-convolution slide: a 3x3 kernel with dilation 2 sees a 5x5 window
    ex = examples.get("halmstad-receptive-field-dilated")
    x = np.zeros((1, 1, 5, 5))
    x[0, 0, ::2, ::2] = np.arange(1.0, 10.0).reshape(3, 3)
    wt = np.ones((1, 1, 3, 3))
    cases.append(_conv_case(cite(ex) + " (a 3x3 kernel, dilation 2, covers 5x5)", x, wt, np.zeros(1), 1, 0, 2,
                            worked=True, example_id=ex.id))
    return cases


PARTS.append(Part("a2.dilated", "conv2d", "Dilated convolution (conv2d with dilation > 1)", _dilated_cases, njit=True,
                  hint=_conv_hint, numpy_functions=("correlate", "convolve")))


def _conv1x1_cases(rng, hidden):
    cases = []
    ex = examples.get("halmstad-quiz-1x1-filter")
    c = ex.params["in_channels"]
    x, w, b = ints(rng, (1, c, 4, 5)), ints(rng, (1, c), -2, 2), ints(rng, (1,))
    cases.append(Case(cite(ex) + " (one 1x1 filter on 16 channels, random values)", (x, w, b),
                      conv.conv2d(x, w[:, :, None, None], b, impl=REF), "x 1x16x4x5, w 1x16",
                      worked=True, example_id=ex.id))
    for i in range(8 if hidden else 4):
        n, c, k = int(rng.integers(1, 4)), int(rng.integers(1, 6)), int(rng.integers(1, 5))
        h, wd = int(rng.integers(1, 6)), int(rng.integers(1, 6))
        x, w, b = ints(rng, (n, c, h, wd)), ints(rng, (k, c), -2, 2), ints(rng, (k,))
        alts = {
            "the bias is missing": conv.conv2d(x, w[:, :, None, None], None, impl=REF),
            "the weight is used transposed: w[k, c] mixes input channel c into output channel k":
                (conv.conv2d(x, np.ascontiguousarray(w.T)[:, :, None, None], b, impl=REF) if k == c else None),
        }
        cases.append(Case(case_label(i, "ordinary" if i % 2 else "non-square image", hidden), (x, w, b),
                          conv.conv2d(x, w[:, :, None, None], b, impl=REF),
                          f"x {n}x{c}x{h}x{wd}, w {k}x{c}", hidden=hidden, alternatives=alts))
    return cases


PARTS.append(Part("a2.conv1x1", "conv1x1", "1x1 convolution as a per-pixel matrix product", _conv1x1_cases,
                  hint=lambda c, g, m: ("out[n, k, i, j] = b[k] + sum over c of w[k, c] * x[n, c, i, j]: one matrix "
                                        "product (K x C) @ (C x H*W) per image")))


def _pool_alternatives(x, k, s, fn):
    f = lambda *a: fn(*a, impl=REF)  # noqa: E731
    alts = {}
    if s != k:
        alts["the window of output (i, j) starts at row i*stride, not i*kernel_size"] = lambda: first_match(
            [f(x, k, k)[:, :, :out_size(x.shape[2], k, s, 0), :out_size(x.shape[3], k, s, 0)]])
        alts["the stride is ignored (windows must move by `stride`)"] = lambda: f(x, k, 1)
    if fn is pool.avg_pool2d:
        alts["divide each window's sum by kernel_size * kernel_size"] = lambda: first_match(
            [f(x, k, s) * k, f(x, k, s) * k * k])
        alts["that is max pooling; average pooling takes the mean of each window"] = lambda: pool.max_pool2d(
            x, k, s, impl=REF)
    else:
        alts["that is average pooling; max pooling keeps each window's largest value"] = lambda: pool.avg_pool2d(
            x, k, s, impl=REF)
        alts["the max starts at 0: windows of negative numbers must give their (negative) maximum; start from "
             "-inf or the window's first value"] = lambda: np.maximum(f(x, k, s), 0)
    return alts


SEVERAL_STRIDE_GT = "stride 3, kernel 2, several windows per row"
SEVERAL_OVERLAPPING = "stride 2, kernel 3, several overlapping windows per row"


def _pool_cases_factory(fn):
    def make(rng, hidden):
        cases = []
        ex = examples.get("tcd-max-pooling-4x4")
        x = ex.array("x")[None, None]
        k, s = ex.params["kernel_size"], ex.params["stride"]
        label = cite(ex) + ("" if fn is pool.max_pool2d else " (the same input, averaged)")
        cases.append(Case(label, (x, k, s), fn(x, k, s, impl=REF), "x 1x1x4x4, kernel 2, stride 2", worked=True,
                          example_id=ex.id, alternatives=_pool_alternatives(x, k, s, fn)))
        ex = examples.get("halmstad-quiz-150-pool")
        x = ints(rng, (1, 1, 150, 150))
        k = ex.params["kernel_size"]
        cases.append(Case(cite(ex) + " (150x150 input, random values)", (x, k, k), fn(x, k, k, impl=REF),
                          "x 1x1x150x150, kernel 2, stride 2", worked=True, example_id=ex.id, show_inputs=False,
                          alternatives=_pool_alternatives(x, k, k, fn)))
        kinds = ["overlapping windows (stride < kernel)", STRIDE_GT_KERNEL, "window as large as the input",
                 NON_SQUARE, "negative values only", "batch and channels"] * (2 if hidden else 1)
        if not hidden:   # public cases whose windows start at i*stride != i*kernel_size, several per axis
            kinds += [SEVERAL_STRIDE_GT, SEVERAL_OVERLAPPING]
        for i, kind in enumerate(kinds):
            r = lambda lo, hi: int(rng.integers(lo, hi + 1))  # noqa: E731
            n, c = (r(2, 3), r(2, 3)) if kind == "batch and channels" else (1, r(1, 2))
            k = r(2, 3)
            s = {"overlapping windows (stride < kernel)": 1, STRIDE_GT_KERNEL: k + 1}.get(kind, k)
            h, w = r(k, 8), r(k, 8)
            if kind == "window as large as the input":
                h = w = k
            elif kind in (SEVERAL_STRIDE_GT, SEVERAL_OVERLAPPING):
                k, s = (2, 3) if kind == SEVERAL_STRIDE_GT else (3, 2)
                h, w = 8, 9   # three or more windows along each axis
            elif kind == NON_SQUARE:
                w = h + r(1, 3)
            x = ints(rng, (n, c, h, w), -9, 9)
            if kind == "negative values only":
                x = -np.abs(x) - 1
            cases.append(Case(case_label(i, kind, hidden), (x, k, s), fn(x, k, s, impl=REF),
                              f"x {n}x{c}x{h}x{w}, kernel {k}, stride {s}", hidden=hidden,
                              alternatives=_pool_alternatives(x, k, s, fn)))
        return cases
    return make


def _pool_hint(case, got, m):
    x, k, s = case.args
    if m["kind"] == "shape" and case.hidden:   # a hidden case's feedback names no shape
        return "pooling keeps N and C; H_out = floor((H - k)/stride) + 1, and the same for W_out"
    if m["kind"] == "shape":
        return (f"pooling keeps N and C; H_out = floor((H - k)/stride) + 1 = {out_size(x.shape[2], k, s, 0)}, "
                f"W_out = {out_size(x.shape[3], k, s, 0)}")
    return "window (i, j) covers rows i*stride .. i*stride + k - 1 and columns j*stride .. j*stride + k - 1"


PARTS.append(Part("a2.max_pool2d", "max_pool2d", "Max pooling", _pool_cases_factory(pool.max_pool2d), njit=True,
                  hint=_pool_hint, error_hint=window_error_hint))
PARTS.append(Part("a2.avg_pool2d", "avg_pool2d", "Average pooling", _pool_cases_factory(pool.avg_pool2d), njit=True,
                  hint=_pool_hint, error_hint=window_error_hint))


def _table_reference(input_chw, layers):
    rows = shapes.layer_table(input_chw, layers)[1:]
    return [(tuple(int(v) for v in r["shape"]), int(r["params"])) for r in rows]


def compare_table(expected, got):
    if got is None:
        return {"kind": "none", "text": "returned None (is there a `return rows` at the end?)"}
    try:
        rows = [(tuple(int(v) for v in shape), int(params)) for shape, params in got]
    except (TypeError, ValueError):
        return {"kind": "type", "text": "expected a list of (shape, params) pairs, one per layer, e.g. "
                                        "[((6, 28, 28), 156), ((6, 14, 14), 0), ...]"}
    if len(rows) != len(expected):
        return {"kind": "shape", "text": f"expected {len(expected)} rows (one per layer, no input row), "
                                         f"got {len(rows)}"}
    for i, (want, have) in enumerate(zip(expected, rows)):
        if want[0] != have[0]:
            return {"kind": "values", "row": i, "what": "shape",
                    "text": f"layer {i + 1}: expected shape {want[0]}, got {have[0]}"}
        if want[1] != have[1]:
            return {"kind": "values", "row": i, "what": "params",
                    "text": f"layer {i + 1}: expected {want[1]} parameters, got {have[1]}"}
    return None


def _table_hint(case, got, m):
    if "row" not in m:
        return None
    layer = case.args[1][m["row"]]
    t = layer["type"]
    if m["what"] == "params":
        if t == "conv":
            return "a conv layer has filters * (C_in * k * k + 1) parameters (one bias per filter)"
        if t == "dense":
            return ("a dense layer has units * (inputs + 1) parameters; the first dense layer's inputs are the "
                    "flattened C * H * W values")
        return "pooling layers have no parameters"
    if t in ("max_pool", "avg_pool"):
        return "pooling keeps the channels; stride defaults to kernel_size when the layer gives none"
    if t == "conv":
        return ("a conv layer's output has `filters` channels and floor((n + 2p - k)/s) + 1 rows and columns; "
                "padding 'same' keeps n")
    return "a dense layer's output is (units,)"


# the kinds of random network every seed has (a wrong table that ignores a convolution's stride,
# or assumes every pooling halves H and W, fails some of them)
NET_CONV_STRIDE_2 = "a convolution with stride 2 and padding"
NET_CONV_STRIDE_3 = "a convolution with stride 3"
NET_POOL_3 = "3x3 pooling with stride 3"
NET_POOL_2_STRIDE_1 = "2x2 pooling with stride 1"
NET_RANDOM = "random network"
NET_KINDS = (NET_CONV_STRIDE_2, NET_CONV_STRIDE_3, NET_POOL_3, NET_POOL_2_STRIDE_1, NET_RANDOM)


def _random_conv(rng, kind):
    k = int(rng.choice([1, 3, 5]))
    layer = {"type": "conv", "filters": int(rng.integers(2, 17)), "kernel_size": k, "stride": 1,
             "padding": "same" if rng.random() < 0.3 else int(rng.integers(0, 2))}
    if kind == NET_CONV_STRIDE_2:
        layer.update(kernel_size=int(rng.choice([3, 5])), stride=2, padding=int(rng.integers(1, 3)))
    elif kind == NET_CONV_STRIDE_3:
        layer.update(stride=3, padding=int(rng.integers(0, 2)))
    return layer


def _random_pool(rng, kind):
    layer = {"type": str(rng.choice(["max_pool", "avg_pool"])), "kernel_size": 2}
    if kind == NET_POOL_3:
        layer.update(kernel_size=3, stride=3)
    elif kind == NET_POOL_2_STRIDE_1:
        layer["stride"] = 1
    elif rng.random() < 0.5:
        layer["stride"] = 2
    return layer


def _random_network(rng, kind=NET_RANDOM):
    """((C, H, W), layers): one or two conv + pool blocks, then two dense layers.  The first
    block is of `kind` (a strided convolution, a 3x3/3 or 2x2/1 pooling); H and W are large
    enough for every layer to have an output."""
    while True:   # drawn again (rarely) when a layer would have no output left
        c, h = int(rng.integers(1, 4)), int(rng.integers(24, 48))
        layers = []
        for block in range(int(rng.integers(1, 3))):
            this = kind if block == 0 else NET_RANDOM
            layers.append(_random_conv(rng, this))
            layers.append(_random_pool(rng, this))
        layers.append({"type": "dense", "units": int(rng.integers(5, 50))})
        layers.append({"type": "dense", "units": int(rng.integers(1, 11))})
        chw = (c, h, h + int(rng.integers(0, 5)))
        try:
            rows = shapes.layer_table(chw, layers)
        except ValueError:
            continue
        if all(v >= 1 for r in rows for v in r["shape"]):
            return chw, layers


def _table_cases(rng, hidden):
    cases = []
    for eid in ("zju-uoe-two-class-cnn", "sjtu-lenet5"):
        ex = examples.get(eid)
        chw = tuple(ex.params["input_chw"])
        note = ""
        if ex.slide_printed is not None:
            note = (f"the slide printed {ex.slide_printed}; those numbers are wrong "
                    "(see minicnn.examples.get('zju-uoe-two-class-cnn').note)")
        cases.append(Case(cite(ex), (chw, ex.params["layers"]), _table_reference(chw, ex.params["layers"]),
                          f"input {chw}, {len(ex.params['layers'])} layers", worked=True, note=note,
                          example_id=ex.id, show_inputs=False))
    ex = examples.get("tcd-32x32x3-conv16-then-pool")
    h, w, c = ex.params["input_hwc"]
    cases.append(Case(cite(ex), ((c, h, w), ex.params["layers"]), _table_reference((c, h, w), ex.params["layers"]),
                      "input (3, 32, 32), conv 'same' then pool", worked=True, example_id=ex.id,
                      show_inputs=False))
    kinds = list(NET_KINDS) * 2 if hidden else list(NET_KINDS)
    for i, kind in enumerate(kinds):
        chw, layers = _random_network(rng, kind)
        cases.append(Case(case_label(i, kind, hidden), (chw, layers), _table_reference(chw, layers),
                          f"input {chw}, {len(layers)} layers", hidden=hidden, show_inputs=False))
    return cases


PARTS.append(Part("a2.layer_table", "layer_table", "A network's shape and parameter table", _table_cases,
                  compare=compare_table, hint=_table_hint))
