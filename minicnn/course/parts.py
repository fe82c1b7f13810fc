"""The graded parts of assignments 1-3, each with its cases and hints.

Every expected value is computed by minicnn's reference kernels (the teaching loops,
impl="loop") from inputs taken from the worked-example catalogue or drawn from a seeded
generator; nothing here is a hard-coded answer.  The student-facing signature of each
function is in its Part's docstring-like title and in the notebook.
"""
from __future__ import annotations

import numpy as np

from .. import activations, conv, examples, pool, shapes
from .checks import AnyOf, Case, Part, compare_exact, register

REF = "loop"  # the teaching kernels are the reference

ORDINARY = "ordinary"
KERNEL_AS_INPUT = "kernel as large as the input"
STRIDE_GT_KERNEL = "stride larger than the kernel"
SAME = "'same' padding"
NON_SQUARE = "non-square input and kernel"
EDGE_KINDS = (KERNEL_AS_INPUT, STRIDE_GT_KERNEL, SAME, NON_SQUARE)


def _kinds(hidden: bool):
    """The mix of random cases: every edge, plus ordinary ones (more of everything when hidden)."""
    if hidden:
        return list(EDGE_KINDS) * 2 + [ORDINARY] * 4
    return list(EDGE_KINDS) + [ORDINARY] * 2


def _ints(rng, shape, lo=-4, hi=4):
    return rng.integers(lo, hi + 1, size=shape).astype(np.float64)


def _geometry(rng, kind):
    """(H, W, kh, kw, stride, padding) for one kind of case; always a valid convolution."""
    r = lambda lo, hi: int(rng.integers(lo, hi + 1))  # noqa: E731
    if kind == KERNEL_AS_INPUT:
        h, w = r(2, 5), r(2, 5)
        p = r(0, 1)
        return h, w, h + 2 * p, w + 2 * p, r(1, 2), p
    if kind == STRIDE_GT_KERNEL:
        k = r(1, 2)
        return r(5, 9), r(5, 9), k, k, k + r(1, 2), r(0, 1)
    if kind == SAME:
        k = 3 if rng.random() < 0.6 else 5
        return r(k, 7), r(k, 8), k, k, 1, (k - 1) // 2
    if kind == NON_SQUARE:
        h = r(4, 8)
        w = h + r(1, 3)
        kh = r(1, 3)
        kw = kh + 1 if kh < 3 else 2
        return h, w, kh, kw, r(1, 2), r(0, 1)
    k = r(2, 4)
    return r(max(k, 4), 8), r(max(k, 4), 8), k, k, r(1, 3), r(0, 2)


def _label(i, kind, hidden):
    return f"{'hidden' if hidden else 'public'} case {i} ({kind})"


def _cite(ex):
    return "worked example: " + ex.citation


def _pad_of(p, k):
    """Catalogue padding ('valid', 'same', int) as the int the exercises take."""
    if p == "valid":
        return 0
    if p == "same":
        return (k - 1) // 2
    return int(p)


def _out_size(n, k, s, p):
    return (n + 2 * p - k) // s + 1


# ============================================================================ assignment 1

def _size_alternatives(n, k, s, p):
    return {
        "the +1 is missing: the first window fits at position 0, before any stride": (n + 2 * p - k) // s,
        "padding adds p on *each* side: n + 2p": (n + p - k) // s + 1,
        "padding is ignored: add 2p to n": (n - k) // s + 1,
        "round down (floor): a window that does not fit is not computed": -(-(n + 2 * p - k) // s) + 1,
    }


def _output_size_cases(rng, hidden):
    cases = []
    for ex in examples.load(op="conv_output_size"):
        p = ex.params
        args = (p["n"], p["kernel_size"], p.get("stride", 1), _pad_of(p.get("padding", 0), p["kernel_size"]))
        note = f"the slide printed: {ex.slide_printed}" if ex.slide_printed is not None else ""
        cases.append(Case(_cite(ex), args, shapes.conv_output_size(*args),
                          f"n={args[0]}, k={args[1]}, stride={args[2]}, padding={args[3]}",
                          worked=True, example_id=ex.id, note=note))
    for ex in examples.load(op="conv_layer"):
        p = ex.params
        h, w, _ = p["input_hwc"]
        k, s = p["kernel_size"], p.get("stride", 1)
        pad = _pad_of(p.get("padding", 0), k)
        for axis, n in (("rows", h), ("columns", w)):
            if axis == "columns" and w == h:
                continue
            args = (n, k, s, pad)
            cases.append(Case(_cite(ex) + (f" ({axis})" if w != h else ""), args,
                              shapes.conv_output_size(*args), f"n={n}, k={k}, stride={s}, padding={pad}",
                              worked=True, example_id=ex.id, alternatives=_size_alternatives(*args)))
    n_random = 16 if hidden else 8
    for i in range(n_random):
        kind = [KERNEL_AS_INPUT, STRIDE_GT_KERNEL, SAME, "does not tile evenly (floor)", ORDINARY][i % 5]
        n = int(rng.integers(1, 300))
        p = int(rng.integers(0, 4))
        if kind == KERNEL_AS_INPUT:
            k, s = n + 2 * p, int(rng.integers(1, 4))
        elif kind == STRIDE_GT_KERNEL:
            k = int(rng.integers(1, 4))
            s = k + int(rng.integers(1, 4))
            k = min(k, n + 2 * p)
        elif kind == SAME:
            k = int(rng.choice([1, 3, 5, 7]))
            n = max(n, k)
            p, s = (k - 1) // 2, 1
        else:
            k = int(rng.integers(1, min(n + 2 * p, 11) + 1))
            s = int(rng.integers(2, 6))
            if kind == "does not tile evenly (floor)":
                for _ in range(50):
                    if (n + 2 * p - k) % s:
                        break
                    n += 1
        args = (n, k, s, p)
        cases.append(Case(_label(i, kind, hidden), args, shapes.conv_output_size(*args),
                          f"n={n}, k={k}, stride={s}, padding={p}", hidden=hidden,
                          alternatives=_size_alternatives(*args)))
    return cases


register(Part("a1.output_size", "output_size", "Output size of a convolution", _output_size_cases,
              compare=compare_exact,
              hint=lambda c, g, m: "output = floor((n + 2p - k) / stride) + 1, as an int"))


def _param_alternatives(c, k, ks, bias):
    kh, kw = (ks, ks) if isinstance(ks, int) else ks
    alts = {}
    if bias:
        alts["one bias per *filter*: K * (C*kh*kw + 1); the ZJU-UoE slide 'Convolutional layer' makes the same "
             "slip (num filters x filter size + 1)"] = k * c * kh * kw + 1
        alts["bias=True adds one bias per filter"] = k * c * kh * kw
    else:
        alts["bias=False means no bias terms at all"] = AnyOf([k * (c * kh * kw + 1), k * c * kh * kw + 1])
    alts["each filter spans all C input channels: C*kh*kw weights per filter"] = k * (kh * kw + (1 if bias else 0))
    return alts


def _param_count_cases(rng, hidden):
    cases = []
    for ex in examples.load(op="conv2d_param_count"):
        p = ex.params
        args = (p["in_channels"], p["out_channels"], p["kernel_size"], p["bias"])
        cases.append(Case(_cite(ex), args, shapes.conv2d_param_count(*args),
                          f"C={args[0]}, K={args[1]}, kernel {args[2]}, bias={args[3]}", worked=True,
                          example_id=ex.id, alternatives=_param_alternatives(*args)))
    for ex in examples.load(op="conv_layer"):
        p = ex.params
        c = p["input_hwc"][2]
        for key, bias in (("params", True), ("weights", False)):
            if key in ex.expected:
                args = (c, p["filters"], p["kernel_size"], bias)
                cases.append(Case(_cite(ex) + f" ({key})", args, shapes.conv2d_param_count(*args),
                                  f"C={c}, K={p['filters']}, kernel {p['kernel_size']}, bias={bias}",
                                  worked=True, example_id=ex.id, alternatives=_param_alternatives(*args)))
    for i in range(12 if hidden else 6):
        kind = ["non-square kernel (a (kh, kw) pair)", "1x1 kernel", "no bias", ORDINARY][i % 4]
        c, k = int(rng.integers(1, 65)), int(rng.integers(1, 129))
        ks = int(rng.choice([3, 5, 7]))
        bias = kind != "no bias"
        if kind.startswith("non-square"):
            ks = (int(rng.integers(1, 6)), int(rng.integers(1, 6)))
            if ks[0] == ks[1]:
                ks = (ks[0], ks[1] + 1)
        elif kind == "1x1 kernel":
            ks = 1
        args = (c, k, ks, bias)
        cases.append(Case(_label(i, kind, hidden), args, shapes.conv2d_param_count(*args),
                          f"C={c}, K={k}, kernel {ks}, bias={bias}", hidden=hidden,
                          alternatives=_param_alternatives(*args)))
    return cases


register(Part("a1.param_count", "param_count", "Parameters of a convolutional layer", _param_count_cases,
              compare=compare_exact,
              hint=lambda c, g, m: "K filters, each C x kh x kw weights, plus one bias per filter when bias=True"))


def _zero_pad_cases(rng, hidden):
    cases = []
    ex = examples.get("ferrara-5x5-padding-1")
    img = ex.array("image")
    cases.append(Case(_cite(ex), (img, 1), conv.pad2d(img, 1), "image 5x5, p=1", worked=True,
                      example_id=ex.id))
    ex = examples.get("tcd-laplacian-padded-view")
    img = ex.array("image")
    cases.append(Case(_cite(ex), (img, 1), conv.pad2d(img, 1), "image 5x5, p=1", worked=True,
                      example_id=ex.id))
    for i, kind in enumerate(["no padding (p=0)", "non-square image", "padding wider than the image", ORDINARY]
                             * (2 if hidden else 1)):
        h, w = int(rng.integers(1, 6)), int(rng.integers(1, 6))
        p = int(rng.integers(1, 3))
        if kind.startswith("no padding"):
            p = 0
        elif kind == "non-square image":
            w = h + int(rng.integers(1, 3))
        elif kind.startswith("padding wider"):
            h, w, p = 2, 1, 3
        img = _ints(rng, (h, w), 1, 9)
        cases.append(Case(_label(i, kind, hidden), (img, p), conv.pad2d(img, p), f"image {h}x{w}, p={p}",
                          hidden=hidden))
    return cases


def _zero_pad_hint(case, got, m):
    if m["kind"] == "shape":
        return "the padded image has p extra rows on top *and* bottom, p extra columns left *and* right"
    return "start from np.zeros((H + 2p, W + 2p)) and copy the image into rows p..p+H-1, columns p..p+W-1"


register(Part("a1.zero_pad", "zero_pad", "Zero padding", _zero_pad_cases, njit=True, hint=_zero_pad_hint,
              numpy_functions=("pad",)))


def _corr_alternatives(img, k, s, p, fn):
    """What common mistakes would return for a single-image cross-correlation/convolution."""
    other = conv.convolve2d if fn is conv.correlate2d else conv.correlate2d
    flip_msg = ("the kernel is flipped: that is convolution; cross-correlation uses kernel[u, v] as it is"
                if fn is conv.correlate2d else
                "the kernel is not flipped: convolution uses kernel[kh-1-u, kw-1-v] (rotate it by 180 degrees)")
    alts = {flip_msg: lambda: other(img, k, s, p, impl=REF)}
    if fn is conv.convolve2d:
        alts["flip both axes: flipping the rows only (or the columns only, or transposing) is not a 180-degree "
             "rotation"] = lambda: _first_match(
                 [conv.correlate2d(img, k[::-1, :], s, p, impl=REF), conv.correlate2d(img, k[:, ::-1], s, p, impl=REF)]
                 + ([conv.correlate2d(img, k.T, s, p, impl=REF)] if k.shape[0] == k.shape[1] else []))
    if s > 1:
        alts["the stride is ignored: window (i, j) starts at row i*stride, column j*stride"] = \
            lambda: fn(img, k, 1, p, impl=REF)
        alts["the output has the right size, but the window does not move by `stride`: read row i*stride + u, "
             "column j*stride + v"] = lambda: fn(img, k, 1, p, impl=REF)[:_out_size(img.shape[0], k.shape[0], s, p),
                                                                         :_out_size(img.shape[1], k.shape[1], s, p)]
    if p > 0:
        alts["the padding is ignored: pad the image with p zeros on every side first"] = \
            lambda: fn(img, k, s, 0, impl=REF)
        alts["padding off by one: pad with exactly `padding` zeros on each side"] = \
            lambda: _first_match([fn(img, k, s, p - 1, impl=REF), fn(img, k, s, p + 1, impl=REF)])
    elif img.shape[0] + 2 >= k.shape[0]:
        alts["padding off by one: padding=0 means no zeros are added"] = lambda: fn(img, k, s, 1, impl=REF)
    if k.shape[0] == k.shape[1] and not np.array_equal(k, k.T):
        alts["rows and columns are swapped: kernel[u, v] multiplies image[i*s + u, j*s + v] (u down, v across)"] = \
            lambda: fn(img, k.T, s, p, impl=REF)
    return alts


def _first_match(candidates):
    """Several results one mistake can produce: the hint applies when any of them matches."""
    return AnyOf(candidates)


def _corr_cases_factory(fn):
    def make(rng, hidden):
        cases = []
        for ex in examples.load(op="correlate2d"):
            img, k = ex.array("image"), ex.array("kernel")
            s = ex.params.get("stride", 1)
            p = _pad_of(ex.params.get("padding", 0), k.shape[0])
            note = ""
            if ex.slide_printed is not None and fn is conv.correlate2d:
                note = f"the slide printed {ex.slide_printed}; the catalogue explains why that is wrong"
            cases.append(Case(_cite(ex), (img, k, s, p), fn(img, k, s, p, impl=REF),
                              f"image {img.shape[0]}x{img.shape[1]}, kernel {k.shape[0]}x{k.shape[1]}, "
                              f"stride {s}, padding {p}", worked=True, note=note, example_id=ex.id,
                              alternatives=_corr_alternatives(img, k, s, p, fn)))
        for ex in examples.load(op="kernel_effect"):
            k = ex.array("kernel")
            img = np.arange(1.0, 43.0).reshape(6, 7)
            cases.append(Case(_cite(ex), (img, k, 1, 1), fn(img, k, 1, 1, impl=REF),
                              "image 6x7 (1..42), kernel 3x3, stride 1, padding 1", worked=True,
                              example_id=ex.id, alternatives=_corr_alternatives(img, k, 1, 1, fn)))
        for i, kind in enumerate(_kinds(hidden)):
            h, w, kh, kw, s, p = _geometry(rng, kind)
            img, k = _ints(rng, (h, w)), _ints(rng, (kh, kw))
            cases.append(Case(_label(i, kind, hidden), (img, k, s, p), fn(img, k, s, p, impl=REF),
                              f"image {h}x{w}, kernel {kh}x{kw}, stride {s}, padding {p}", hidden=hidden,
                              alternatives=_corr_alternatives(img, k, s, p, fn)))
        return cases
    return make


def _corr_hint(case, got, m):
    img, k, s, p = case.args
    if m["kind"] == "shape":
        return (f"per axis the output size is floor((n + 2p - k)/stride) + 1: here "
                f"({_out_size(img.shape[0], k.shape[0], s, p)}, {_out_size(img.shape[1], k.shape[1], s, p)})")
    return "check the indices: out[i, j] = sum over u, v of padded[i*stride + u, j*stride + v] * kernel[u, v]"


register(Part("a1.correlate2d", "correlate2d", "Cross-correlation of one image", _corr_cases_factory(conv.correlate2d),
              njit=True, hint=_corr_hint, numpy_functions=("correlate", "convolve")))
register(Part("a1.convolve2d", "convolve2d", "Convolution (flipped kernel) of one image",
              _corr_cases_factory(conv.convolve2d), njit=True, hint=_corr_hint,
              numpy_functions=("correlate", "convolve")))


# ============================================================================ assignment 2

def _conv_alternatives(x, w, b, s, p, d):
    f = lambda *a, **k: conv.conv2d(*a, impl=REF, **k)  # noqa: E731
    alts = {
        "the bias is missing: add b[k] once to every output of filter k": lambda: f(x, w, None, s, p, d),
        "the bias is added once per channel (or per kernel cell), not once per output": lambda: _first_match(
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
        alts["padding off by one"] = lambda: _first_match([f(x, w, b, s, p - 1, d), f(x, w, b, s, p + 1, d)])
    if d > 1:
        alts["the dilation is ignored: tap (u, v) of the kernel reads row i*stride + u*dilation"] = \
            lambda: f(x, w, b, s, p, 1)
        alts["the output size ignores the dilation: the dilated kernel spans d*(k-1)+1 pixels"] = lambda: None
    if x.shape[0] > 1:
        alts["every image of the batch got the first image's result: loop over n"] = lambda: np.repeat(
            f(x[:1], w, b, s, p, d), x.shape[0], axis=0)
    return alts


def _conv_desc(x, w, s, p, d=1):
    n, c, h, ww = x.shape
    text = f"x {n}x{c}x{h}x{ww}, weight {w.shape[0]}x{w.shape[1]}x{w.shape[2]}x{w.shape[3]}, stride {s}, padding {p}"
    return text + (f", dilation {d}" if d != 1 else "")


def _conv_case(label, x, w, b, s, p, d=1, **kw):
    return Case(label, (x, w, b, s, p, d), conv.conv2d(x, w, b, s, p, d, impl=REF), _conv_desc(x, w, s, p, d),
                alternatives=_conv_alternatives(x, w, b, s, p, d), **kw)


def _conv_cases(rng, hidden):
    cases = []
    ex = examples.get("halmstad-rgb-with-bias")
    cases.append(_conv_case(_cite(ex), ex.array("x")[None], ex.array("weight"), ex.array("bias"),
                            ex.params["stride"], ex.params["padding"], worked=True, example_id=ex.id,
                            note="the slide shows the first output, -25 = 308 - 498 + 164 + 1 (bias)"))
    for eid in ("halmstad-6x6x3-two-filters", "zju-uoe-6x6x3-volume", "sjtu-32x32x3-ten-5x5-pad-2"):
        ex = examples.get(eid)
        p = ex.params
        h, w, c = p["input_hwc"]
        k = p["kernel_size"]
        x = _ints(rng, (1, c, h, w))
        wt = _ints(rng, (p["filters"], c, k, k), -2, 2)
        cases.append(_conv_case(_cite(ex) + " (its shapes, random values)", x, wt, _ints(rng, (p["filters"],)),
                                p.get("stride", 1), _pad_of(p.get("padding", 0), k), worked=True,
                                example_id=ex.id))
    for i, kind in enumerate(_kinds(hidden) + ["batch of images", "1x1 kernel"]):
        h, w, kh, kw, s, p = _geometry(rng, kind)
        if kind == "1x1 kernel":
            kh = kw = 1
        n = int(rng.integers(2, 4)) if kind == "batch of images" else int(rng.integers(1, 3))
        c, k = int(rng.integers(1, 4)), int(rng.integers(1, 4))
        x, wt, b = _ints(rng, (n, c, h, w)), _ints(rng, (k, c, kh, kw), -2, 2), _ints(rng, (k,))
        cases.append(_conv_case(_label(i, kind, hidden), x, wt, b, s, p, hidden=hidden))
    return cases


def _conv_hint(case, got, m):
    x, w, b, s, p, d = case.args
    if m["kind"] == "shape":
        oh = (x.shape[2] + 2 * p - d * (w.shape[2] - 1) - 1) // s + 1
        ow = (x.shape[3] + 2 * p - d * (w.shape[3] - 1) - 1) // s + 1
        return (f"the output is (N, K, H_out, W_out) = ({x.shape[0]}, {w.shape[0]}, {oh}, {ow}); "
                "H_out = floor((H + 2p - d(kh-1) - 1)/stride) + 1")
    return ("out[n, k, i, j] = b[k] + sum over c, u, v of xp[n, c, i*stride + u*dilation, j*stride + v*dilation] "
            "* w[k, c, u, v]")


register(Part("a2.conv2d", "conv2d", "Batched multi-channel convolution with bias", _conv_cases, njit=True,
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
        x, wt, b = _ints(rng, (n, c, h, w)), _ints(rng, (k, c, kh, kw), -2, 2), _ints(rng, (k,))
        cases.append(_conv_case(_label(i, kind, hidden), x, wt, b, s, p, d, hidden=hidden))
    # Aksoy's dilated-convolution slide: a 3x3 kernel with dilation 2 sees a 5x5 window
    ex = examples.get("halmstad-receptive-field-dilated")
    x = np.zeros((1, 1, 5, 5))
    x[0, 0, ::2, ::2] = np.arange(1.0, 10.0).reshape(3, 3)
    wt = np.ones((1, 1, 3, 3))
    cases.append(_conv_case(_cite(ex) + " (a 3x3 kernel, dilation 2, covers 5x5)", x, wt, np.zeros(1), 1, 0, 2,
                            worked=True, example_id=ex.id))
    return cases


register(Part("a2.dilated", "conv2d", "Dilated convolution (conv2d with dilation > 1)", _dilated_cases, njit=True,
              hint=_conv_hint, numpy_functions=("correlate", "convolve")))


def _conv1x1_cases(rng, hidden):
    cases = []
    ex = examples.get("halmstad-quiz-1x1-filter")
    c = ex.params["in_channels"]
    x, w, b = _ints(rng, (1, c, 4, 5)), _ints(rng, (1, c), -2, 2), _ints(rng, (1,))
    cases.append(Case(_cite(ex) + " (one 1x1 filter on 16 channels, random values)", (x, w, b),
                      conv.conv2d(x, w[:, :, None, None], b, impl=REF), "x 1x16x4x5, w 1x16",
                      worked=True, example_id=ex.id))
    for i in range(8 if hidden else 4):
        n, c, k = int(rng.integers(1, 4)), int(rng.integers(1, 6)), int(rng.integers(1, 5))
        h, wd = int(rng.integers(1, 6)), int(rng.integers(1, 6))
        x, w, b = _ints(rng, (n, c, h, wd)), _ints(rng, (k, c), -2, 2), _ints(rng, (k,))
        alts = {
            "the bias is missing": conv.conv2d(x, w[:, :, None, None], None, impl=REF),
            "the weight is used transposed: w[k, c] mixes input channel c into output channel k":
                (conv.conv2d(x, np.ascontiguousarray(w.T)[:, :, None, None], b, impl=REF) if k == c else None),
        }
        cases.append(Case(_label(i, "ordinary" if i % 2 else "non-square image", hidden), (x, w, b),
                          conv.conv2d(x, w[:, :, None, None], b, impl=REF),
                          f"x {n}x{c}x{h}x{wd}, w {k}x{c}", hidden=hidden, alternatives=alts))
    return cases


register(Part("a2.conv1x1", "conv1x1", "1x1 convolution as a per-pixel matrix product", _conv1x1_cases,
              hint=lambda c, g, m: ("out[n, k, i, j] = b[k] + sum over c of w[k, c] * x[n, c, i, j]: one matrix "
                                    "product (K x C) @ (C x H*W) per image")))


def _pool_alternatives(x, k, s, fn):
    f = lambda *a: fn(*a, impl=REF)  # noqa: E731
    alts = {}
    if s != k:
        alts["the window of output (i, j) starts at row i*stride, not i*kernel_size"] = lambda: _first_match(
            [f(x, k, k)[:, :, :_out_size(x.shape[2], k, s, 0), :_out_size(x.shape[3], k, s, 0)]])
        alts["the stride is ignored (windows must move by `stride`)"] = lambda: f(x, k, 1)
    if fn is pool.avg_pool2d:
        alts["divide each window's sum by kernel_size * kernel_size"] = lambda: _first_match(
            [f(x, k, s) * k, f(x, k, s) * k * k])
        alts["that is max pooling; average pooling takes the mean of each window"] = lambda: pool.max_pool2d(
            x, k, s, impl=REF)
    else:
        alts["that is average pooling; max pooling keeps each window's largest value"] = lambda: pool.avg_pool2d(
            x, k, s, impl=REF)
        alts["the max starts at 0: windows of negative numbers must give their (negative) maximum; start from "
             "-inf or the window's first value"] = lambda: np.maximum(f(x, k, s), 0)
    return alts


def _pool_cases_factory(fn):
    def make(rng, hidden):
        cases = []
        ex = examples.get("tcd-max-pooling-4x4")
        x = ex.array("x")[None, None]
        k, s = ex.params["kernel_size"], ex.params["stride"]
        label = _cite(ex) + ("" if fn is pool.max_pool2d else " (the same input, averaged)")
        cases.append(Case(label, (x, k, s), fn(x, k, s, impl=REF), "x 1x1x4x4, kernel 2, stride 2", worked=True,
                          example_id=ex.id, alternatives=_pool_alternatives(x, k, s, fn)))
        ex = examples.get("halmstad-quiz-150-pool")
        x = _ints(rng, (1, 1, 150, 150))
        k = ex.params["kernel_size"]
        cases.append(Case(_cite(ex) + " (150x150 input, random values)", (x, k, k), fn(x, k, k, impl=REF),
                          "x 1x1x150x150, kernel 2, stride 2", worked=True, example_id=ex.id, show_inputs=False,
                          alternatives=_pool_alternatives(x, k, k, fn)))
        kinds = ["overlapping windows (stride < kernel)", STRIDE_GT_KERNEL, "window as large as the input",
                 NON_SQUARE, "negative values only", "batch and channels"] * (2 if hidden else 1)
        for i, kind in enumerate(kinds):
            r = lambda lo, hi: int(rng.integers(lo, hi + 1))  # noqa: E731
            n, c = (r(2, 3), r(2, 3)) if kind == "batch and channels" else (1, r(1, 2))
            k = r(2, 3)
            s = {"overlapping windows (stride < kernel)": 1, STRIDE_GT_KERNEL: k + 1}.get(kind, k)
            h, w = r(k, 8), r(k, 8)
            if kind == "window as large as the input":
                h = w = k
            elif kind == NON_SQUARE:
                w = h + r(1, 3)
            x = _ints(rng, (n, c, h, w), -9, 9)
            if kind == "negative values only":
                x = -np.abs(x) - 1
            cases.append(Case(_label(i, kind, hidden), (x, k, s), fn(x, k, s, impl=REF),
                              f"x {n}x{c}x{h}x{w}, kernel {k}, stride {s}", hidden=hidden,
                              alternatives=_pool_alternatives(x, k, s, fn)))
        return cases
    return make


def _pool_hint(case, got, m):
    x, k, s = case.args
    if m["kind"] == "shape":
        return (f"pooling keeps N and C; H_out = floor((H - k)/stride) + 1 = {_out_size(x.shape[2], k, s, 0)}, "
                f"W_out = {_out_size(x.shape[3], k, s, 0)}")
    return "window (i, j) covers rows i*stride .. i*stride + k - 1 and columns j*stride .. j*stride + k - 1"


register(Part("a2.max_pool2d", "max_pool2d", "Max pooling", _pool_cases_factory(pool.max_pool2d), njit=True,
              hint=_pool_hint))
register(Part("a2.avg_pool2d", "avg_pool2d", "Average pooling", _pool_cases_factory(pool.avg_pool2d), njit=True,
              hint=_pool_hint))


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


def _random_network(rng):
    c, h = int(rng.integers(1, 4)), int(rng.integers(12, 40))
    layers = []
    for _ in range(int(rng.integers(1, 3))):
        k = int(rng.choice([1, 3, 5]))
        pad = "same" if rng.random() < 0.3 else int(rng.integers(0, 2))
        layers.append({"type": "conv", "filters": int(rng.integers(2, 17)), "kernel_size": k,
                       "stride": 1, "padding": pad})
        pl = {"type": str(rng.choice(["max_pool", "avg_pool"])), "kernel_size": 2}
        if rng.random() < 0.5:
            pl["stride"] = 2
        layers.append(pl)
    layers.append({"type": "dense", "units": int(rng.integers(5, 50))})
    layers.append({"type": "dense", "units": int(rng.integers(1, 11))})
    return (c, h, h + int(rng.integers(0, 5))), layers


def _table_cases(rng, hidden):
    cases = []
    for eid in ("zju-uoe-two-class-cnn", "sjtu-lenet5"):
        ex = examples.get(eid)
        chw = tuple(ex.params["input_chw"])
        note = ""
        if ex.slide_printed is not None:
            note = (f"the slide printed {ex.slide_printed}; those numbers are wrong "
                    "(see minicnn.examples.get('zju-uoe-two-class-cnn').note)")
        cases.append(Case(_cite(ex), (chw, ex.params["layers"]), _table_reference(chw, ex.params["layers"]),
                          f"input {chw}, {len(ex.params['layers'])} layers", worked=True, note=note,
                          example_id=ex.id, show_inputs=False))
    ex = examples.get("tcd-32x32x3-conv16-then-pool")
    h, w, c = ex.params["input_hwc"]
    cases.append(Case(_cite(ex), ((c, h, w), ex.params["layers"]), _table_reference((c, h, w), ex.params["layers"]),
                      "input (3, 32, 32), conv 'same' then pool", worked=True, example_id=ex.id,
                      show_inputs=False))
    for i in range(8 if hidden else 3):
        chw, layers = _random_network(rng)
        cases.append(Case(_label(i, "random network", hidden), (chw, layers), _table_reference(chw, layers),
                          f"input {chw}, {len(layers)} layers", hidden=hidden, show_inputs=False))
    return cases


register(Part("a2.layer_table", "layer_table", "A network's shape and parameter table", _table_cases,
              compare=compare_table, hint=_table_hint))


# ============================================================================ assignment 3

def _floats(rng, shape):
    return rng.standard_normal(shape)


def _conv_back_alternatives(g, x, w, s, p, which):
    ref = lambda gg, xx, ww, ss, pp: conv.conv2d_backward(gg, xx, ww, ss, pp, impl=REF)  # noqa: E731
    gx, gw, gb = ref(g, x, w, s, p)
    alts = {}
    if which == 1 and x.shape[0] > 1:
        alts["grad_weight must sum over the whole batch (+= for every n), not keep one image's share"] = \
            lambda: _first_match([ref(g[:1], x[:1], w, s, p)[1], ref(g[-1:], x[-1:], w, s, p)[1]])
        alts["grad_weight is the sum over the batch, not the mean"] = lambda: gw / x.shape[0]
    if which == 2:
        alts["grad_bias sums grad_out over the batch *and* every position (i, j)"] = lambda: _first_match(
            [g[0].sum(axis=(1, 2)), g.sum(axis=(0,))[:, 0, 0], g.mean(axis=(0, 2, 3)), g.sum(axis=(2, 3))[0]])
        alts["grad_bias is missing (zeros)"] = lambda: np.zeros_like(gb)
    if which == 0:
        if p > 0:
            alts["grad_x has the padded shape: crop the p padding rows and columns off the gradient"] = \
                lambda: conv.pad2d(gx, p)
        alts["the kernel is flipped twice (or not at all): x[i*s+u, j*s+v] receives g[i, j] * w[u, v]"] = lambda: ref(
            g, x, np.ascontiguousarray(w[:, :, ::-1, ::-1]), s, p)[0]
    if s > 1:
        alts["the stride is ignored in the backward pass"] = lambda: _first_match([
            ref(g, x, w, 1, p)[which] if g.shape == conv.conv2d(x, w, None, 1, p, impl=REF).shape else None])
    return alts


def _conv_back_cases_factory(which):
    name = ("grad_x", "grad_weight", "grad_bias")[which]

    def make(rng, hidden):
        cases = []

        def add(label, x, w, s, p, **kw):
            out_shape = conv.conv2d(x, w, None, s, p, impl=REF).shape
            g = _floats(rng, out_shape)
            ref = conv.conv2d_backward(g, x, w, s, p, impl=REF)[which]
            cases.append(Case(label, (g, x, w, s, p), ref, _conv_desc(x, w, s, p),
                              pick=lambda r, i=which: r[i], pick_name=name,
                              alternatives=_conv_back_alternatives(g, x, w, s, p, which), **kw))

        ex = examples.get("halmstad-rgb-with-bias")
        add(_cite(ex) + " (its input and filter, random grad_out)", ex.array("x")[None], ex.array("weight"),
            ex.params["stride"], ex.params["padding"], worked=True, example_id=ex.id, show_inputs=False)
        ex = examples.get("ferrara-5x5-stride-2")
        add(_cite(ex) + " (its image and kernel, random grad_out)", ex.array("image")[None, None],
            ex.array("kernel")[None, None], ex.params["stride"], ex.params["padding"], worked=True,
            example_id=ex.id)
        for i, kind in enumerate(_kinds(hidden) + ["batch of images"]):
            h, w, kh, kw, s, p = _geometry(rng, kind)
            n = int(rng.integers(2, 4)) if kind in ("batch of images", ORDINARY) else int(rng.integers(1, 3))
            c, k = int(rng.integers(1, 3)), int(rng.integers(1, 3))
            add(_label(i, kind, hidden), _floats(rng, (n, c, h, w)), _floats(rng, (k, c, kh, kw)), s, p,
                hidden=hidden)
        return cases
    return make


def _conv_back_hint(case, got, m):
    g, x, w, s, p = case.args
    if m["kind"] == "shape":
        return "grad_x has x's shape, grad_weight has w's shape, grad_bias has shape (K,)"
    return ("every product xp[n, c, i*s+u, j*s+v] * w[k, c, u, v] in the forward sends g[n, k, i, j] * w[...] to "
            "the input and g[n, k, i, j] * xp[...] to the weight; use minicnn.gradcheck to find which is off")


for _which, _key in enumerate(("grad_input", "grad_weight", "grad_bias")):
    register(Part(f"a3.{_key}", "conv2d_backward",
                  f"conv2d backward: {('grad_x', 'grad_weight', 'grad_bias')[_which]}",
                  _conv_back_cases_factory(_which), njit=True, hint=_conv_back_hint))


def _pool_back_alternatives(g, x, k, s, fn):
    f = lambda *a: fn(*a, impl=REF)  # noqa: E731
    alts = {}
    if fn is pool.max_pool2d_backward:
        alts["the gradient goes to every cell of the window; it belongs to the window's maximum only"] = lambda: \
            pool.avg_pool2d_backward(g, x, k, s, impl=REF) * k * k
        alts["the gradient goes to the maximum of each window, but `=` overwrites: a cell that is the maximum "
             "of several overlapping windows collects the sum (+=)"] = lambda: _overwrite_max(g, x, k, s)
        alts["on a tie, send the gradient to the *first* maximum (row-major order), as minicnn and PyTorch do"] = \
            lambda: _last_max(g, x, k, s)
    else:
        alts["each cell of a window gets grad / (k*k), not the whole grad"] = lambda: _first_match(
            [f(g, x, k, s) * k * k, f(g, x, k, s) * k])
        alts["overlapping windows: a cell collects (+=) the share of every window it is in"] = lambda: \
            _overwrite_avg(g, x, k, s)
    if s != k:
        alts["window (i, j) starts at row i*stride, not i*kernel_size"] = lambda: _first_match(
            [_pool_back_window_k(g, x, k, s, fn)])
    return alts


def _windows(x, k, s):
    n, c, h, w = x.shape
    for i in range((h - k) // s + 1):
        for j in range((w - k) // s + 1):
            yield i, j, slice(i * s, i * s + k), slice(j * s, j * s + k)


def _overwrite_max(g, x, k, s):
    out = np.zeros_like(x)
    for i, j, rs, cs in _windows(x, k, s):
        win = x[:, :, rs, cs].reshape(x.shape[0], x.shape[1], -1)
        idx = win.argmax(axis=2)
        for n in range(x.shape[0]):
            for c in range(x.shape[1]):
                u, v = divmod(int(idx[n, c]), k)
                out[n, c, i * s + u, j * s + v] = g[n, c, i, j]
    return out


def _last_max(g, x, k, s):
    out = np.zeros_like(x)
    for i, j, rs, cs in _windows(x, k, s):
        win = x[:, :, rs, cs].reshape(x.shape[0], x.shape[1], -1)
        idx = k * k - 1 - win[:, :, ::-1].argmax(axis=2)
        for n in range(x.shape[0]):
            for c in range(x.shape[1]):
                u, v = divmod(int(idx[n, c]), k)
                out[n, c, i * s + u, j * s + v] += g[n, c, i, j]
    return out


def _overwrite_avg(g, x, k, s):
    out = np.zeros_like(x)
    for i, j, rs, cs in _windows(x, k, s):
        out[:, :, rs, cs] = g[:, :, i:i + 1, j:j + 1] / (k * k)
    return out


def _pool_back_window_k(g, x, k, s, fn):
    """The mistake of placing window (i, j) at i*k instead of i*s (only where it fits)."""
    h = (g.shape[2] - 1) * k + k
    w = (g.shape[3] - 1) * k + k
    if h > x.shape[2] or w > x.shape[3]:
        return None
    out = np.zeros_like(x)
    out[:, :, :h, :w] = fn(g, np.ascontiguousarray(x[:, :, :h, :w]), k, k, impl=REF)
    return out


def _pool_back_cases_factory(fn):
    forward = pool.max_pool2d if fn is pool.max_pool2d_backward else pool.avg_pool2d

    def make(rng, hidden):
        cases = []

        def add(label, x, k, s, **kw):
            g = _floats(rng, forward(x, k, s, impl=REF).shape)
            cases.append(Case(label, (g, x, k, s), fn(g, x, k, s, impl=REF), f"x {'x'.join(map(str, x.shape))}, "
                              f"kernel {k}, stride {s}", alternatives=_pool_back_alternatives(g, x, k, s, fn), **kw))

        ex = examples.get("tcd-max-pooling-4x4")
        add(_cite(ex) + " (its input, random grad_out)", ex.array("x")[None, None], 2, 2, worked=True,
            example_id=ex.id)
        if fn is pool.max_pool2d_backward:
            x = np.array([[[[1.0, 3.0, 3.0], [3.0, 2.0, 0.0], [0.0, 3.0, 1.0]]]])
            add("case with ties (several cells hold the window's maximum)", x, 2, 1)
        kinds = ["overlapping windows (stride < kernel)", STRIDE_GT_KERNEL, "window as large as the input",
                 NON_SQUARE, "batch and channels"] * (2 if hidden else 1)
        for i, kind in enumerate(kinds):
            r = lambda lo, hi: int(rng.integers(lo, hi + 1))  # noqa: E731
            n, c = (r(2, 3), r(2, 3)) if kind == "batch and channels" else (1, r(1, 2))
            k = r(2, 3)
            s = {"overlapping windows (stride < kernel)": 1, STRIDE_GT_KERNEL: k + 1}.get(kind, k)
            h, w = r(k, 7), r(k, 7)
            if kind == "window as large as the input":
                h = w = k
            elif kind == NON_SQUARE:
                w = h + r(1, 3)
            add(_label(i, kind, hidden), _floats(rng, (n, c, h, w)), k, s, hidden=hidden)
        return cases
    return make


register(Part("a3.max_pool2d_backward", "max_pool2d_backward", "Max pooling backward",
              _pool_back_cases_factory(pool.max_pool2d_backward), njit=True,
              hint=lambda c, g, m: "grad_x has x's shape; each window's grad goes to the position of its maximum"))
register(Part("a3.avg_pool2d_backward", "avg_pool2d_backward", "Average pooling backward",
              _pool_back_cases_factory(pool.avg_pool2d_backward), njit=True,
              hint=lambda c, g, m: "grad_x has x's shape; each window's grad is shared equally by its k*k cells"))


def _activation_cases_factory(ref, forward, name):
    def make(rng, hidden):
        cases = []
        shapes_ = [(7,), (3, 4), (2, 3, 4, 5), (1,)] * (2 if hidden else 1)
        for i, shp in enumerate(shapes_):
            x = _floats(rng, shp) * 3
            if name == "relu" and x.size > 2:
                x.reshape(-1)[:2] = 0.0  # the derivative at 0 is taken as 0
            if name in ("tanh", "sigmoid") and x.size > 3:
                x.reshape(-1)[:2] = (40.0, -40.0)  # saturated: the gradient is ~0
            g = _floats(rng, shp)
            alts = {
                f"that is the forward {name}(x) times grad_out; the derivative is needed": lambda g=g, x=x: g * forward(x),
                "the upstream gradient grad_out is not multiplied in": lambda x=x: ref(np.ones_like(x), x),
            }
            if name == "relu":
                alts["x = 0 counts as inactive: use x > 0, not x >= 0"] = lambda g=g, x=x: np.where(x >= 0, g, 0.0)
            if name == "tanh":
                alts["the derivative is 1 - tanh(x)^2, not 1 - x^2"] = lambda g=g, x=x: g * (1 - x * x)
            if name == "sigmoid":
                alts["the derivative is s(1 - s) with s = sigmoid(x), not s or x(1 - x)"] = lambda g=g, x=x: _first_match(
                    [g * forward(x), g * x * (1 - x)])
            cases.append(Case(_label(i, f"shape {shp}", hidden), (g, x), ref(g, x),
                              f"grad_out and x of shape {shp}", hidden=hidden, alternatives=alts))
        return cases
    return make


for _name, _ref, _fwd in (("relu", activations.relu_backward, activations.relu),
                          ("tanh", activations.tanh_backward, activations.tanh),
                          ("sigmoid", activations.sigmoid_backward, activations.sigmoid)):
    register(Part(f"a3.{_name}_backward", f"{_name}_backward", f"{_name} backward",
                  _activation_cases_factory(_ref, _fwd, _name),
                  hint=lambda c, g, m: "grad_x = grad_out * f'(x), element by element, for any shape"))

from . import parts_gpu  # noqa: E402,F401 - assignment 4 (registers its parts)
from . import parts_train  # noqa: E402,F401 - assignment 5 (registers its parts)
