"""Assignment 1 (convolution): output size, parameter count, zero padding, cross-correlation
and convolution of one image.

Every expected value is computed by minicnn's reference kernels (the teaching loops,
impl="loop") from inputs taken from the worked-example catalogue or drawn from a seeded
generator; nothing here is a hard-coded answer.
"""
from __future__ import annotations

import types

import numpy as np

from .. import conv, examples, shapes
from .cases import (KERNEL_AS_INPUT, ORDINARY, REF, SAME, STRIDE_GT_KERNEL, case_kinds, case_label, cite, first_match,
                    geometry, ints, out_size, pad_of)
from .part import AnyOf, Case, Part, compare_exact

PARTS: list[Part] = []   # this assignment's graded parts, in notebook order


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
        args = (p["n"], p["kernel_size"], p.get("stride", 1), pad_of(p.get("padding", 0), p["kernel_size"]))
        note = f"the slide printed: {ex.slide_printed}" if ex.slide_printed is not None else ""
        cases.append(Case(cite(ex), args, shapes.conv_output_size(*args),
                          f"n={args[0]}, k={args[1]}, stride={args[2]}, padding={args[3]}",
                          worked=True, example_id=ex.id, note=note))
    for ex in examples.load(op="conv_layer"):
        p = ex.params
        h, w, _ = p["input_hwc"]
        k, s = p["kernel_size"], p.get("stride", 1)
        pad = pad_of(p.get("padding", 0), k)
        for axis, n in (("rows", h), ("columns", w)):
            if axis == "columns" and w == h:
                continue
            args = (n, k, s, pad)
            cases.append(Case(cite(ex) + (f" ({axis})" if w != h else ""), args,
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
        cases.append(Case(case_label(i, kind, hidden), args, shapes.conv_output_size(*args),
                          f"n={n}, k={k}, stride={s}, padding={p}", hidden=hidden,
                          alternatives=_size_alternatives(*args)))
    return cases


PARTS.append(Part("a1.output_size", "output_size", "Output size of a convolution", _output_size_cases,
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
        cases.append(Case(cite(ex), args, shapes.conv2d_param_count(*args),
                          f"C={args[0]}, K={args[1]}, kernel {args[2]}, bias={args[3]}", worked=True,
                          example_id=ex.id, alternatives=_param_alternatives(*args)))
    for ex in examples.load(op="conv_layer"):
        p = ex.params
        c = p["input_hwc"][2]
        for key, bias in (("params", True), ("weights", False)):
            if key in ex.expected:
                args = (c, p["filters"], p["kernel_size"], bias)
                cases.append(Case(cite(ex) + f" ({key})", args, shapes.conv2d_param_count(*args),
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
        cases.append(Case(case_label(i, kind, hidden), args, shapes.conv2d_param_count(*args),
                          f"C={c}, K={k}, kernel {ks}, bias={bias}", hidden=hidden,
                          alternatives=_param_alternatives(*args)))
    return cases


PARTS.append(Part("a1.param_count", "param_count", "Parameters of a convolutional layer", _param_count_cases,
                  compare=compare_exact,
                  hint=lambda c, g, m: "K filters, each C x kh x kw weights, plus one bias per filter when bias=True"))


def _zero_pad_cases(rng, hidden):
    cases = []
    ex = examples.get("ferrara-5x5-padding-1")
    img = ex.array("image")
    cases.append(Case(cite(ex), (img, 1), conv.pad2d(img, 1), "image 5x5, p=1", worked=True,
                      example_id=ex.id))
    ex = examples.get("tcd-laplacian-padded-view")
    img = ex.array("image")
    cases.append(Case(cite(ex), (img, 1), conv.pad2d(img, 1), "image 5x5, p=1", worked=True,
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
        img = ints(rng, (h, w), 1, 9)
        cases.append(Case(case_label(i, kind, hidden), (img, p), conv.pad2d(img, p), f"image {h}x{w}, p={p}",
                          hidden=hidden))
    return cases


def _zero_pad_hint(case, got, m):
    if m["kind"] == "shape":
        return "the padded image has p extra rows on top *and* bottom, p extra columns left *and* right"
    return "start from np.zeros((H + 2p, W + 2p)) and copy the image into rows p..p+H-1, columns p..p+W-1"


PARTS.append(Part("a1.zero_pad", "zero_pad", "Zero padding", _zero_pad_cases, njit=True, hint=_zero_pad_hint,
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
             "rotation"] = lambda: first_match(
                 [conv.correlate2d(img, k[::-1, :], s, p, impl=REF), conv.correlate2d(img, k[:, ::-1], s, p, impl=REF)]
                 + ([conv.correlate2d(img, k.T, s, p, impl=REF)] if k.shape[0] == k.shape[1] else []))
    if s > 1:
        alts["the stride is ignored: window (i, j) starts at row i*stride, column j*stride"] = \
            lambda: fn(img, k, 1, p, impl=REF)
        alts["the output has the right size, but the window does not move by `stride`: read row i*stride + u, "
             "column j*stride + v"] = lambda: fn(img, k, 1, p, impl=REF)[:out_size(img.shape[0], k.shape[0], s, p),
                                                                         :out_size(img.shape[1], k.shape[1], s, p)]
    if p > 0:
        alts["the padding is ignored: pad the image with p zeros on every side first"] = \
            lambda: fn(img, k, s, 0, impl=REF)
        alts["padding off by one: pad with exactly `padding` zeros on each side"] = \
            lambda: first_match([fn(img, k, s, p - 1, impl=REF), fn(img, k, s, p + 1, impl=REF)])
    elif img.shape[0] + 2 >= k.shape[0]:
        alts["padding off by one: padding=0 means no zeros are added"] = lambda: fn(img, k, s, 1, impl=REF)
    if k.shape[0] == k.shape[1] and not np.array_equal(k, k.T):
        alts["rows and columns are swapped: kernel[u, v] multiplies image[i*s + u, j*s + v] (u down, v across)"] = \
            lambda: fn(img, k.T, s, p, impl=REF)
    return alts


def _corr_cases_factory(fn):
    def make(rng, hidden):
        cases = []
        for ex in examples.load(op="correlate2d"):
            img, k = ex.array("image"), ex.array("kernel")
            s = ex.params.get("stride", 1)
            p = pad_of(ex.params.get("padding", 0), k.shape[0])
            note = ""
            if ex.slide_printed is not None and fn is conv.correlate2d:
                note = f"the slide printed {ex.slide_printed}; the catalogue explains why that is wrong"
            cases.append(Case(cite(ex), (img, k, s, p), fn(img, k, s, p, impl=REF),
                              f"image {img.shape[0]}x{img.shape[1]}, kernel {k.shape[0]}x{k.shape[1]}, "
                              f"stride {s}, padding {p}", worked=True, note=note, example_id=ex.id,
                              alternatives=_corr_alternatives(img, k, s, p, fn)))
        for ex in examples.load(op="kernel_effect"):
            k = ex.array("kernel")
            img = np.arange(1.0, 43.0).reshape(6, 7)
            cases.append(Case(cite(ex), (img, k, 1, 1), fn(img, k, 1, 1, impl=REF),
                              "image 6x7 (1..42), kernel 3x3, stride 1, padding 1", worked=True,
                              example_id=ex.id, alternatives=_corr_alternatives(img, k, 1, 1, fn)))
        for i, kind in enumerate(case_kinds(hidden)):
            h, w, kh, kw, s, p = geometry(rng, kind)
            img, k = ints(rng, (h, w)), ints(rng, (kh, kw))
            cases.append(Case(case_label(i, kind, hidden), (img, k, s, p), fn(img, k, s, p, impl=REF),
                              f"image {h}x{w}, kernel {kh}x{kw}, stride {s}, padding {p}", hidden=hidden,
                              alternatives=_corr_alternatives(img, k, s, p, fn)))
        return cases
    return make


def _corr_hint(case, got, m):
    img, k, s, p = case.args
    if m["kind"] == "shape":
        rule = "per axis the output size is floor((n + 2p - k)/stride) + 1"
        if case.hidden:   # a hidden case's feedback names no shape
            return rule
        return (f"{rule}: here "
                f"({out_size(img.shape[0], k.shape[0], s, p)}, {out_size(img.shape[1], k.shape[1], s, p)})")
    return "check the indices: out[i, j] = sum over u, v of padded[i*stride + u, j*stride + v] * kernel[u, v]"


PARTS.append(Part("a1.correlate2d", "correlate2d", "Cross-correlation of one image",
                  _corr_cases_factory(conv.correlate2d),
                  njit=True, hint=_corr_hint, numpy_functions=("correlate", "convolve")))
# ----------------------------------------------------------------------------- convolve2d's own work
#
# The notebook's convolve2d flips the kernel and calls the student's correlate2d.  A stride or padding
# slip in correlate2d would then fail convolve2d's cases too: one mistake charged twice.  So while
# convolve2d is checked, the grader's own correlation stands in for the student's correlate2d (the
# name `correlate2d` in convolve2d's globals, in a copy of the function), and convolve2d is judged on
# what it does itself: the flip, and the call.  A convolve2d that is wrong on its own (no flip, or one
# that leans on a correlate2d that flips) still fails.  The stand-in is the grader's code, written
# here, not minicnn's kernels (which the tripwires empty while a student's function runs).

def _grader_correlate2d(image, kernel, stride=1, padding=0):
    """out[i, j] = sum over u, v of image[i*stride + u - padding, j*stride + v - padding] * kernel[u, v],
    where a row or column outside the image (the zero padding) adds nothing."""
    h, w = image.shape
    kh, kw = kernel.shape
    out = np.zeros(((h + 2 * padding - kh) // stride + 1, (w + 2 * padding - kw) // stride + 1))
    for i in range(out.shape[0]):
        for j in range(out.shape[1]):
            top, left = i * stride - padding, j * stride - padding   # the window's corner in the unpadded image
            for u in range(max(0, -top), min(kh, h - top)):            # only the window's rows inside the image
                for v in range(max(0, -left), min(kw, w - left)):
                    out[i, j] += image[top + u, left + v] * kernel[u, v]
    return out


_STAND_IN: list = []         # [the compiled stand-in], made on first use
_ADAPTED: dict = {}          # id(student's convolve2d) -> (it, the copy that calls the stand-in)


def _stand_in():
    if not _STAND_IN:
        from numba import njit

        _STAND_IN.append(njit(_grader_correlate2d))
    return _STAND_IN[0]


def with_grader_correlate2d(fn):
    """The student's convolve2d with the grader's correlate2d in place of theirs (see above); `fn`
    itself when it does not call a global named correlate2d (or is not a plain or @njit function)."""
    if id(fn) in _ADAPTED and _ADAPTED[id(fn)][0] is fn:
        return _ADAPTED[id(fn)][1]
    py = getattr(fn, "py_func", fn)
    code = getattr(py, "__code__", None)
    if not isinstance(py, types.FunctionType) or "correlate2d" not in code.co_names \
            or "correlate2d" not in py.__globals__:
        return fn
    # an @njit convolve2d gets the compiled stand-in (it is compiled with the copy, before the call's
    # child starts); a plain-Python one the same code uncompiled, as its own correlate2d would be
    # called: compiling it inside every case's child would cost a compile per case
    stand_in = _stand_in() if py is not fn else _grader_correlate2d
    copy = types.FunctionType(code, {**py.__globals__, "correlate2d": stand_in}, py.__name__,
                              py.__defaults__, py.__closure__)
    if py is not fn:   # an @njit function: compile the copy the same way
        from numba import njit

        copy = njit(copy)
    _ADAPTED[id(fn)] = (fn, copy)
    return copy


def _convolve_hint(case, got, m):
    return (_corr_hint(case, got, m) + "; convolve2d is checked with a correct correlate2d standing in for yours "
            "(when it calls correlate2d), so this is convolve2d's own mistake: the flip, or how it calls correlate2d")


PARTS.append(Part("a1.convolve2d", "convolve2d", "Convolution (flipped kernel) of one image",
                  _corr_cases_factory(conv.convolve2d), njit=True, hint=_convolve_hint,
                  numpy_functions=("correlate", "convolve"), adapter=with_grader_correlate2d))
