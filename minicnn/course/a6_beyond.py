"""Assignment 6 (beyond the 2-D convolution): the lectures' remaining topics.

1-D convolution (Ding), the transposed convolution and its relation to the convolution's
backward pass (Pitie), the receptive field of a stack of layers (Aksoy), and short concept
questions built from the worked examples no other assignment grades.

Expected values come from minicnn's reference kernels (impl="loop"), `shapes.receptive_field`,
and, for the concept questions, the catalogue's `expected` (which tests/test_catalogue.py
recomputes); nothing here is a hard-coded answer.
"""
from __future__ import annotations

import numpy as np

from .. import conv, examples, shapes
from ..sandbox.calls import is_numba_dispatcher
from .a6_counts import COUNTS
from .cases import REF, case_label, cite, first_that_computes, ints, out_size
from .inspection import LIBRARIES
from .part import AnyOf, Case, Part

PARTS: list[Part] = []   # this assignment's graded parts, in notebook order

DING = examples.lectures()["sjtu"]


def _ding(slide_settings: str) -> str:
    return (f'lecture: {DING["author"]}, "{DING["title"]}", slide "1-D Convolution" ({slide_settings}; random '
            "values: the slide's figure has no numbers)")


# ----------------------------------------------------------------------------- 1. conv1d

def _conv1d_alternatives(x, w, b, s, p):
    f = lambda *a: conv.conv1d(*a, impl=REF)  # noqa: E731
    alts = {
        "the bias is missing: add b[k] once to every output of filter k": lambda: f(x, w, None, s, p),
        "only channel 0 is used: a filter sums over *all* input channels c": lambda: f(x[:, :1], w[:, :1], b, s, p),
        "the kernel is flipped: CNN layers compute cross-correlation, out[i] reads x[i*stride + u] * w[u]":
            lambda: f(x, np.ascontiguousarray(w[:, :, ::-1]), b, s, p),
    }
    if s > 1:
        out_len = (x.shape[2] + 2 * p - w.shape[2]) // s + 1
        alts["the stride is ignored: output i reads the input from position i*stride (Ding: with stride 2 the "
             "filter jumps 2 positions at a time)"] = lambda: AnyOf([f(x, w, b, 1, p), f(x, w, b, 1, p)[:, :, :out_len]])
    if p > 0:
        alts["the padding is ignored: pad `padding` zeros at both ends"] = lambda: f(x, w, b, s, 0)
        alts["padding off by one"] = lambda: first_that_computes(lambda: f(x, w, b, s, p - 1),
                                                                 lambda: f(x, w, b, s, p + 1))
    return alts


def _conv1d_case(label, x, w, b, s, p, **kw):
    n, c, length = x.shape
    desc = f"x {n}x{c}x{length}, weight {w.shape[0]}x{w.shape[1]}x{w.shape[2]}, stride {s}, padding {p}"
    return Case(label, (x, w, b, s, p), conv.conv1d(x, w, b, s, p, impl=REF), desc,
                alternatives=_conv1d_alternatives(x, w, b, s, p), **kw)


CONV1D_KINDS = ("stride 2", "stride larger than the kernel", "padding", "kernel as long as the input", "ordinary")


def _conv1d_cases(rng, hidden):
    cases = []
    # Ding's slides: one filter of size 2 with stride 2, then 2 and 4 filters of size 2 with stride 1
    for filters, stride in ((1, 2), (4, 1)):
        x = ints(rng, (1, 1, 8))
        w, b = ints(rng, (filters, 1, 2), -2, 2), ints(rng, (filters,))
        cases.append(_conv1d_case(_ding(f"filters {filters}, size 2, stride {stride}"), x, w, b, stride, 0))
    for i, kind in enumerate(list(CONV1D_KINDS) * (2 if hidden else 1)):
        r = lambda lo, hi: int(rng.integers(lo, hi + 1))  # noqa: E731
        k, s, p = r(1, 4), 1, 0
        length = r(k + 2, 12)
        if kind == "stride 2":
            s = 2
        elif kind == "stride larger than the kernel":
            s = k + r(1, 2)
        elif kind == "padding":
            p, s = r(1, 2), r(1, 2)
        elif kind == "kernel as long as the input":
            length, p = k, r(0, 1)
        else:
            s, p = r(1, 3), r(0, 2)
        n, c, filters = r(1, 3), r(1, 3), r(1, 3)
        x, w, b = ints(rng, (n, c, length)), ints(rng, (filters, c, k), -2, 2), ints(rng, (filters,))
        cases.append(_conv1d_case(case_label(i, kind, hidden), x, w, b, s, p, hidden=hidden))
    return cases


def _conv1d_hint(case, got, m):
    x, w, b, s, p = case.args
    rule = "L_out = floor((L + 2p - k)/stride) + 1"
    if m["kind"] == "shape" and not case.hidden:
        return f"the output is (N, K, L_out) = ({x.shape[0]}, {w.shape[0]}, {(x.shape[2] + 2 * p - w.shape[2]) // s + 1}); {rule}"
    if m["kind"] == "shape":
        return f"the output is (N, K, L_out), {rule}"
    return "out[n, k, i] = b[k] + sum over c and u of xp[n, c, i*stride + u] * w[k, c, u]"


PARTS.append(Part("a6.conv1d", "conv1d", "1-D convolution of a batch of sequences", _conv1d_cases, njit=True,
                  hint=_conv1d_hint, numpy_functions=("correlate", "convolve")))


# ----------------------------------------------------------------------------- 2. conv_transpose2d

def _transpose_size(n, k, s, p, op):
    return (n - 1) * s - 2 * p + k + op


def _convt_alternatives(x, w, b, s, p, op):
    f = lambda *a: conv.conv_transpose2d(*a, impl=REF)  # noqa: E731
    alts = {
        "the bias is missing: add b[co] once to every output of channel co": lambda: f(x, w, None, s, p, op),
        "the kernel is flipped: the stamp of input pixel (i, j) puts w[ci, co, u, v] at output "
        "(i*stride + u - padding, j*stride + v - padding)":
            lambda: f(x, np.ascontiguousarray(w[:, :, ::-1, ::-1]), b, s, p, op),
    }
    if w.shape[0] == w.shape[1]:
        alts["the weight's first two axes are swapped: w is (C_in, C_out, kh, kw), the transpose of conv2d's "
             "(K, C, kh, kw)"] = lambda: f(x, np.ascontiguousarray(w.transpose(1, 0, 2, 3)), b, s, p, op)
    return alts


def _convt_case(label, x, w, b, s, p, op, **kw):
    n, c, h, wd = x.shape
    desc = (f"x {n}x{c}x{h}x{wd}, weight {w.shape[0]}x{w.shape[1]}x{w.shape[2]}x{w.shape[3]}, stride {s}, "
            f"padding {p}, output_padding {op}")
    return Case(label, (x, w, b, s, p, op), conv.conv_transpose2d(x, w, b, s, p, op, impl=REF), desc,
                alternatives=_convt_alternatives(x, w, b, s, p, op), **kw)


CONVT_KINDS = ("stride 2", "stride 3 with output_padding", "padding (cropped from the output)", "stride 1",
               "non-square input and kernel", "ordinary")


def _convt_cases(rng, hidden):
    cases = []
    ex = examples.get("tcd-conv-transpose-shape")
    n, h, wd, c = ex.params["input_nhwc"]
    k = ex.params["kernel_size"]
    x = ints(rng, (n, c, h, wd))
    w, b = ints(rng, (c, ex.params["filters"], k, k), -2, 2), ints(rng, (ex.params["filters"],))
    cases.append(_convt_case(cite(ex) + " (its shapes, random values)", x, w, b, ex.params["stride"],
                             ex.params["padding"], 0, worked=True, example_id=ex.id, show_inputs=False,
                             note="Keras is NHWC: the slide's (4, 10, 8, 128) -> (4, 21, 17, 32) is "
                                  "(4, 128, 10, 8) -> (4, 32, 21, 17) here"))
    for i, kind in enumerate(list(CONVT_KINDS) * (2 if hidden else 1)):
        r = lambda lo, hi: int(rng.integers(lo, hi + 1))  # noqa: E731
        kh = kw = r(2, 4)
        s, p, op = r(1, 3), 0, 0
        if kind == "stride 2":
            s = 2
        elif kind == "stride 3 with output_padding":
            s, op = 3, r(1, 2)
        elif kind.startswith("padding"):
            s, p = r(1, 2), r(1, kh - 1)
        elif kind == "stride 1":
            s = 1
        elif kind.startswith("non-square"):
            kw = kh + 1
        else:
            p = r(0, kh - 1)
            op = r(0, s - 1)
        hi, wi = r(1, 4), r(1, 5)
        if kind.startswith("non-square") and wi == hi:
            wi = hi + 1
        while min(_transpose_size(hi, kh, s, p, op), _transpose_size(wi, kw, s, p, op)) < 1:
            hi, wi = hi + 1, wi + 1   # a padding that would crop everything: a larger input
        n, c, co = r(1, 2), r(1, 3), r(1, 3)
        x, w, b = ints(rng, (n, c, hi, wi)), ints(rng, (c, co, kh, kw), -2, 2), ints(rng, (co,))
        cases.append(_convt_case(case_label(i, kind, hidden), x, w, b, s, p, op, hidden=hidden))
    return cases


TRANSPOSE_RULE = "H_out = (H - 1)*stride - 2*padding + kh + output_padding (likewise W_out)"


def _convt_hint(case, got, m):
    x, w, b, s, p, op = case.args
    if m["kind"] == "shape":
        if case.hidden:
            return f"the output is (N, C_out, H_out, W_out), {TRANSPOSE_RULE}"
        h_out = _transpose_size(x.shape[2], w.shape[2], s, p, op)
        w_out = _transpose_size(x.shape[3], w.shape[3], s, p, op)
        fwd = (out_size(x.shape[2], w.shape[2], s, p), out_size(x.shape[3], w.shape[3], s, p))
        uncropped = (_transpose_size(x.shape[2], w.shape[2], s, 0, op), _transpose_size(x.shape[3], w.shape[3], s, 0, op))
        if p > 0 and tuple(m["got"].shape[2:]) == uncropped:
            return (f"that is the uncropped output: `padding` rows and columns are cropped from *each* side, "
                    f"{TRANSPOSE_RULE} = ({h_out}, {w_out})")
        if tuple(m["got"].shape[2:]) == fwd:
            return (f"that is the size of a forward convolution's output, which shrinks; a transposed convolution "
                    f"grows its input: {TRANSPOSE_RULE} = ({h_out}, {w_out})")
        return f"the output is ({x.shape[0]}, {w.shape[1]}, {h_out}, {w_out}): {TRANSPOSE_RULE}"
    return ("each input pixel x[n, ci, i, j] stamps x * w[ci, co, :, :] onto the output at rows i*stride + u and "
            "columns j*stride + v (stamps overlap and add up); then `padding` rows and columns are cropped from "
            "each side and b[co] is added")


def _convt_error_hint(case, error: str):
    """An index past the output (NUMBA_BOUNDSCHECK makes it an IndexError): the output was sized
    too small for the stamps, typically with the forward convolution's formula."""
    if "IndexError" in error.split(":", 1)[0]:
        return ("an index ran off an array: the stamp of input pixel (i, j) reaches row i*stride + kh - 1 of the "
                f"uncropped output, so the output must grow, not shrink: {TRANSPOSE_RULE}")
    return None


PARTS.append(Part("a6.conv_transpose2d", "conv_transpose2d", "Transposed convolution", _convt_cases, njit=True,
                  hint=_convt_hint, error_hint=_convt_error_hint))


# ----------------------------------------------------------------------------- 3. conv2d's input gradient

def _input_grad_cases(rng, hidden):
    """conv2d(x, w, stride, padding) has output y; the cases give dL/dy and ask for dL/dx.
    H and W are drawn so that both axes leave the same remainder (one output_padding fits both)."""
    cases = []
    kinds = ["stride 1", "stride 2, every row used", "stride 2, the last row skipped", "stride 3 with padding",
             "ordinary"] * (2 if hidden else 1)
    for i, kind in enumerate(kinds):
        r = lambda lo, hi: int(rng.integers(lo, hi + 1))  # noqa: E731
        k = r(1, 3)
        s = {"stride 1": 1, "stride 3 with padding": 3}.get(kind, 2 if kind.startswith("stride 2") else r(1, 3))
        p = r(1, 2) if kind == "stride 3 with padding" else r(0, k - 1)
        rem = {"stride 1": 0, "stride 2, every row used": 0, "stride 2, the last row skipped": 1}.get(kind, r(0, s - 1))
        # H + 2p - k = s*m + rem for some m >= 0
        h = s * r(1, 3) + rem + k - 2 * p
        wd = s * r(1, 3) + rem + k - 2 * p
        if h < 1 or wd < 1:
            h, wd = h + s * 2, wd + s * 2
        n, c, f = r(1, 2), r(1, 3), r(1, 3)
        x, w = ints(rng, (n, c, h, wd)), ints(rng, (f, c, k, k), -2, 2)
        oh, ow = out_size(h, k, s, p), out_size(wd, k, s, p)
        g = ints(rng, (n, f, oh, ow))
        grad_x = conv.conv2d_backward(g, x, w, s, p, impl=REF)[0]
        cases.append(Case(case_label(i, kind, hidden), (g, w, s, p, (h, wd)), grad_x,
                          f"grad_out {n}x{f}x{oh}x{ow}, weight {f}x{c}x{k}x{k}, stride {s}, padding {p}, x {h}x{wd}",
                          hidden=hidden))
    return cases


def _input_grad_hint(case, got, m):
    g, w, s, p, (h, wd) = case.args
    if m["kind"] == "shape":
        short = _transpose_size(g.shape[2], w.shape[2], s, p, 0)
        if not case.hidden and m["got"].shape[2] == short and short != h:
            return (f"the transposed convolution gives {short} rows, x has {h}: the last {h - short} row(s) of x "
                    "were never read by the forward pass (the stride skipped them); pass output_padding = "
                    "H - ((H_out - 1)*stride - 2*padding + kh) to add them")
        return "dL/dx has x's shape: (N, C, H, W), with H and W given by x_hw"
    return ("dL/dx is the transposed convolution of dL/dy with the same weight: conv2d's w (K, C, kh, kw) is "
            "read as conv_transpose2d's (C_in, C_out, kh, kw) with C_in = K, no bias")


# the types conv2d_input_grad passes on: float64 arrays made by the cases, np.zeros for the bias, ints
def _transpose_signature():
    from numba import types
    array4 = types.float64[:, :, :, ::1]
    return (array4, array4, types.float64[::1], types.int64, types.int64, types.int64)


def _compile_callees(fn):
    """conv2d_input_grad is plain Python calling the student's @njit conv_transpose2d: compile that
    here, once, for the types the call passes, so that each case's forked child does not compile it
    again (seconds per case on a busy machine).  Compiling runs none of the student's code; a
    function that does not compile is left alone (the call then reports the error)."""
    names = getattr(getattr(fn, "__code__", None), "co_names", ())
    for name in names:
        callee = getattr(fn, "__globals__", {}).get(name)
        if is_numba_dispatcher(callee) and not callee.signatures:
            try:
                callee.compile(_transpose_signature())
            except Exception:  # noqa: BLE001 - another signature, or a compile error the call will show
                pass
    return fn


PARTS.append(Part("a6.input_grad", "conv2d_input_grad", "conv2d's input gradient is a transposed convolution",
                  _input_grad_cases, hint=_input_grad_hint, adapter=_compile_callees))


# ----------------------------------------------------------------------------- 4. receptive field

def compare_rf(expected, got):
    if isinstance(got, (bool, np.bool_)) or not isinstance(got, (int, np.integer)):
        return {"kind": "type", "text": f"returned {got!r}, expected an int (a number of pixels)"}
    if int(got) != expected:
        return {"kind": "values", "text": f"expected {expected}, got {int(got)}"}
    return None


def _rf_alternatives(layers):
    plain = [(k, 1, d) for k, s, d in layers]
    undilated = [(k, s, 1) for k, s, d in layers]
    alts = {}
    # adding k (not k - 1) per layer: counts the shared pixel of two neighbouring windows twice
    alts["each layer adds (k - 1) pixels, times the dilation and the stride product of the layers before it "
         "(adding k counts the overlap twice)"] = AnyOf([
             1 + sum(_jumps(layers)[i] * d * k for i, (k, s, d) in enumerate(layers)),
             sum(_jumps(layers)[i] * d * k for i, (k, s, d) in enumerate(layers))])
    if any(s > 1 for _, s, _ in layers[:-1]):
        alts["the stride is ignored: after a layer of stride s, one step of the next layer spans s input "
             "pixels"] = shapes.receptive_field(plain)
        alts["a layer's own stride is applied to its own kernel: the jump grows *after* the layer"] = \
            1 + sum(_jumps(layers)[i] * s * d * (k - 1) for i, (k, s, d) in enumerate(layers))
    if any(d > 1 for _, _, d in layers):
        alts["the dilation is ignored: a dilated kernel spans d*(k - 1) + 1 pixels"] = shapes.receptive_field(undilated)
    return alts


def _jumps(layers):
    """The distance in input pixels between neighbouring positions seen by each layer."""
    out, jump = [], 1
    for _, s, _ in layers:
        out.append(jump)
        jump *= s
    return out


def _n_layers(layers):
    return f"{len(layers)} layer" + ("s" if len(layers) != 1 else "")


RF_KINDS = ("strided layers", "dilated layers", "strides and dilation", "a pooling layer (k = s = 2)", "ordinary")


def _rf_cases(rng, hidden):
    cases = []
    for eid in ("halmstad-receptive-field-vanilla", "halmstad-receptive-field-dilated"):
        ex = examples.get(eid)
        for j, stack in enumerate(ex.params["stacks"]):
            layers = [tuple(int(v) for v in layer) for layer in stack]
            cases.append(Case(cite(ex) + f" (stack {j + 1})", (layers,), shapes.receptive_field(layers),
                              _n_layers(layers), worked=True, example_id=ex.id,
                              alternatives=_rf_alternatives(layers)))
    for i, kind in enumerate(list(RF_KINDS) * (2 if hidden else 1)):
        r = lambda lo, hi: int(rng.integers(lo, hi + 1))  # noqa: E731
        layers = []
        for j in range(r(2, 5)):
            k, s, d = int(rng.choice([1, 3, 5])), 1, 1
            if kind in ("strided layers", "strides and dilation") or (kind == "ordinary" and rng.random() < 0.4):
                s = r(1, 3)
            if kind in ("dilated layers", "strides and dilation"):
                d = r(1, 3)
            layers.append((max(k, 2) if s > 1 or d > 1 else k, s, d))
        if kind.startswith("a pooling"):
            layers.insert(1, (2, 2, 1))
        if kind in ("strided layers", "strides and dilation"):
            layers[0] = (layers[0][0] if layers[0][0] > 1 else 3, 2, layers[0][2])
        if kind in ("dilated layers", "strides and dilation"):
            layers[-1] = (layers[-1][0] if layers[-1][0] > 1 else 3, layers[-1][1], 2)
        cases.append(Case(case_label(i, kind, hidden), (layers,), shapes.receptive_field(layers),
                          _n_layers(layers), hidden=hidden, alternatives=_rf_alternatives(layers)))
    return cases


PARTS.append(Part("a6.receptive_field", "receptive_field", "Receptive field of a stack of layers", _rf_cases,
                  compare=compare_rf,
                  hint=lambda c, g, m: ("rf starts at 1 and jump at 1; each layer (k, s, d) adds d*(k - 1)*jump, then "
                                        "jump *= s")))


# ----------------------------------------------------------------------------- 5. activation maximisation

PITIE = examples.lectures()["tcd"]
ASCENT_ALLOWED = ("minicnn", "minicnn.conv", "minicnn.activations")


def filter_activation(x, w, b, f):
    """The loss of Pitie's "Visualisation" slide: the mean of filter f's ReLU output, over the batch
    and every position, for the one-layer network relu(conv2d(x, w, b))."""
    return float(conv.conv2d(x, w, b, impl=REF)[:, f].clip(min=0).mean())


def _ascent_reference(x, w, b, f, lr, sign=1.0, scale=1.0):
    y = conv.conv2d(x, w, b, impl=REF)
    grad_r = np.zeros_like(y)
    grad_r[:, f] = scale / (y.shape[0] * y.shape[2] * y.shape[3])   # d mean / d each of its terms
    grad_y = np.where(y > 0, grad_r, 0.0)
    grad_x = conv.conv2d_backward(grad_y, x, w, impl=REF)[0]
    return x + sign * lr * grad_x


def _ascent_cases(rng, hidden):
    cases = []
    kinds = ["one image", "a batch of two", "the last filter", "a larger step"] * (2 if hidden else 1)
    for i, kind in enumerate(kinds):
        n = 2 if kind == "a batch of two" else 1
        k, size = int(rng.integers(2, 5)), int(rng.integers(6, 10))
        x = rng.standard_normal((n, 1, size, size))
        w, b = rng.standard_normal((k, 1, 3, 3)), 0.1 * rng.standard_normal(k)
        f = k - 1 if kind == "the last filter" else int(rng.integers(0, k))
        lr = 5.0 if kind == "a larger step" else 1.0
        count = n * (size - 2) ** 2
        label = (f'lecture: {PITIE["author"]}, "{PITIE["title"]}", slide "Visualisation" ({kind}; a one-layer '
                 "network the grader builds)") if not hidden else case_label(i, kind, hidden)
        cases.append(Case(label, (x, w, b, f, lr), _ascent_reference(x, w, b, f, lr),
                          f"x {n}x1x{size}x{size}, {k} filters 3x3, filter {f}, lr {lr}", hidden=hidden,
                          show_inputs=False, alternatives={
                              "the step goes *down* the gradient (descent): ascent adds lr * dL/dx to the image, "
                              "to make the activation larger": lambda x=x, w=w, b=b, f=f, lr=lr:
                                  _ascent_reference(x, w, b, f, lr, sign=-1.0),
                              "the loss is the *mean* of the filter's activation (Pitie, step 1): each output's "
                              "gradient is 1 / (N * H_out * W_out), not 1": lambda x=x, w=w, b=b, f=f, lr=lr, c=count:
                                  _ascent_reference(x, w, b, f, lr, scale=c),
                              "only filter f's outputs are in the loss: the other channels of dL/dy are 0":
                                  lambda x=x, w=w, b=b, f=f, lr=lr: _ascent_all_filters(x, w, b, lr)}))
    return cases


def _ascent_all_filters(x, w, b, lr):
    y = conv.conv2d(x, w, b, impl=REF)
    grad_y = np.where(y > 0, 1.0 / (y.shape[0] * y.shape[2] * y.shape[3]), 0.0)
    return x + lr * conv.conv2d_backward(grad_y, x, w, impl=REF)[0]


def _ascent_hint(case, got, m):
    x, w, b, f, lr = case.args
    if m["kind"] != "values":
        return "return the updated image, the shape of x: x + lr * d(activation)/dx"
    before, after = filter_activation(x, w, b, f), filter_activation(m["got"], w, b, f)
    went = "rose" if after > before else "did not rise"
    values = "" if case.hidden else f" ({before:.4g} -> {after:.4g})"   # a hidden case shows no values
    return (f"the filter's mean activation {went}{values}; the step is x + lr * dL/dx with "
            "L = mean(relu(conv2d(x, w, b))[:, f]): dL/dy = 1/(N*H_out*W_out) on channel f where y > 0, then "
            "conv2d_backward gives dL/dx")


# minicnn's fast kernels run on Numba's thread pool, which does not survive a fork: as in
# assignment 5, these calls run in-process (fork=False, without the sandbox's per-call time limit)
PARTS.append(Part("a6.ascent_step", "ascent_step", "One step of activation maximisation (gradient ascent)",
                  _ascent_cases, hint=_ascent_hint, forbidden=LIBRARIES, allowed_modules=ASCENT_ALLOWED,
                  tripwires="layers", fork=False, timeout=120.0))


# ----------------------------------------------------------------------------- 6. dense vs conv counts (a6_counts)

PARTS.append(COUNTS)


# ----------------------------------------------------------------------------- 7. concept questions

# The worked examples no other part grades, each asked as one question; the answer is compared
# with the catalogue's `expected` (tests/test_catalogue.py recomputes every one of them).
QUESTIONS = ("ferrara-edge-detection-flops", "ferrara-edge-detection-dense-matrix", "ferrara-rgb-224-inputs",
             "ferrara-rgb-224-dense-weights", "zju-uoe-256x256x3-inputs", "sjtu-256x256-pixels",
             "sjtu-linear-classifier", "halmstad-fully-connected-params", "sjtu-l1-distance",
             "halmstad-quiz-sigmoid-relu")


def compare_number(expected, got):
    if isinstance(got, (bool, np.bool_)) or not isinstance(got, (int, float, np.integer, np.floating)):
        return {"kind": "type", "text": f"returned {got!r}, expected a number"}
    if isinstance(expected, int) and float(got) != expected:
        return {"kind": "values", "text": f"expected {expected}, got {got!r}"}
    if not np.isclose(float(got), float(expected), rtol=1e-9, atol=1e-12):
        return {"kind": "values", "text": f"expected {expected!r}, got {got!r}"}
    return None


def _concept_alternatives(ex):
    alts = {}
    if ex.slide_printed is not None:
        alts[f"that is what the slide printed ({ex.slide_printed}); the slide is wrong: {ex.note}"] = \
            AnyOf([ex.slide_printed, _digits(ex.slide_printed)])
    if ex.op == "dense_param_count":
        alts["the biases are missing: a dense layer has out * (in + 1) parameters"] = sum(
            i * o for i, o in ex.params["layers"])
    if ex.id == "ferrara-edge-detection-flops":
        alts["a two-tap difference costs 3 flops per output: 2 multiplications and 1 addition"] = AnyOf(
            [319 * 280 * 2, 320 * 280 * 3, 319 * 280])
    return alts


def _digits(printed):
    try:
        return int(str(printed).replace(",", ""))
    except ValueError:
        return None


def _concept_cases(rng, hidden):
    cases = []
    for eid in QUESTIONS:
        ex = examples.get(eid)
        cases.append(Case(cite(ex), (eid,), ex.expected, f"question {eid!r}", worked=True, example_id=eid,
                          alternatives=_concept_alternatives(ex)))
    return cases


PARTS.append(Part("a6.concepts", "concept_answer", "Concept questions from the lectures' worked examples",
                  _concept_cases, compare=compare_number,
                  hint=lambda c, g, m: "read the cited slide again and count every factor (channels, biases, both dimensions)"))
