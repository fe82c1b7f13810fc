"""Assignment 3 (backpropagation): conv2d backward (input, weight, bias gradients), max and
average pooling backward, and the activations' backward passes.

Expected values come from minicnn's reference kernels (impl="loop") on catalogue or seeded inputs.
"""
from __future__ import annotations

import itertools

import numpy as np

from .. import activations, conv, examples, pool
from .cases import (NON_SQUARE, ORDINARY, REF, STRIDE_GT_KERNEL, case_kinds, case_label, cite, conv_desc, first_match,
                    floats, geometry, window_error_hint)
from .part import AnyOf, Case, Part

PARTS: list[Part] = []   # this assignment's graded parts, in notebook order


def _overwritten_grad_x(g, x, w, s, p):
    """What grad_x is when the scatter writes `=` instead of `+=`: in a cell that several products
    reach, the last write wins.  Which one is last depends on the loop order, so this gives the
    result of each order of the loops over k, c, (i, j) and (u, v) (n outermost, as usual)."""
    n_img, n_chan, h, wd = x.shape
    n_filt, _, kh, kw = w.shape
    out_h, out_w = g.shape[2], g.shape[3]
    ranges = {"k": [(k,) for k in range(n_filt)], "c": [(c,) for c in range(n_chan)],
              "ij": list(itertools.product(range(out_h), range(out_w))),
              "uv": list(itertools.product(range(kh), range(kw)))}
    results = AnyOf()
    for order in itertools.permutations(("k", "c", "ij", "uv")):
        gxp = np.zeros((n_img, n_chan, h + 2 * p, wd + 2 * p))
        for n in range(n_img):
            for combo in itertools.product(*(ranges[b] for b in order)):
                at = dict(zip(order, combo))
                (k,), (c,), (i, j), (u, v) = at["k"], at["c"], at["ij"], at["uv"]
                gxp[n, c, i * s + u, j * s + v] = g[n, k, i, j] * w[k, c, u, v]
        results.append(gxp[:, :, p:p + h, p:p + wd])
    return results


def _conv_back_alternatives(g, x, w, s, p, which):
    ref = lambda gg, xx, ww, ss, pp: conv.conv2d_backward(gg, xx, ww, ss, pp, impl=REF)  # noqa: E731
    gx, gw, gb = ref(g, x, w, s, p)
    alts = {}
    if which == 1 and x.shape[0] > 1:
        alts["grad_weight must sum over the whole batch (+= for every n), not keep one image's share"] = \
            lambda: first_match([ref(g[:1], x[:1], w, s, p)[1], ref(g[-1:], x[-1:], w, s, p)[1]])
        alts["grad_weight is the sum over the batch, not the mean"] = lambda: gw / x.shape[0]
    if which == 2:
        alts["grad_bias sums grad_out over the batch *and* every position (i, j)"] = lambda: first_match(
            [g[0].sum(axis=(1, 2)), g.sum(axis=(0,))[:, 0, 0], g.mean(axis=(0, 2, 3)), g.sum(axis=(2, 3))[0]])
        alts["grad_bias is missing (zeros)"] = lambda: np.zeros_like(gb)
    if which == 0:
        if p > 0:
            alts["grad_x has the padded shape: crop the p padding rows and columns off the gradient"] = \
                lambda: conv.pad2d(gx, p)
        alts["the kernel is flipped twice (or not at all): x[i*s+u, j*s+v] receives g[i, j] * w[u, v]"] = lambda: ref(
            g, x, np.ascontiguousarray(w[:, :, ::-1, ::-1]), s, p)[0]
        alts["`=` overwrites: an input cell under several windows (or filters) receives the sum of all their "
             "products, so accumulate with grad_x[...] += g * w[...]"] = lambda: _overwritten_grad_x(g, x, w, s, p)
    if s > 1:
        alts["the stride is ignored in the backward pass"] = lambda: first_match([
            ref(g, x, w, 1, p)[which] if g.shape == conv.conv2d(x, w, None, 1, p, impl=REF).shape else None])
    return alts


def _conv_back_cases_factory(which):
    name = ("grad_x", "grad_weight", "grad_bias")[which]

    def make(rng, hidden):
        cases = []

        def add(label, x, w, s, p, **kw):
            out_shape = conv.conv2d(x, w, None, s, p, impl=REF).shape
            g = floats(rng, out_shape)
            ref = conv.conv2d_backward(g, x, w, s, p, impl=REF)[which]
            cases.append(Case(label, (g, x, w, s, p), ref, conv_desc(x, w, s, p),
                              pick=lambda r, i=which: r[i], pick_name=name,
                              alternatives=_conv_back_alternatives(g, x, w, s, p, which), **kw))

        ex = examples.get("halmstad-rgb-with-bias")
        add(cite(ex) + " (its input and filter, random grad_out)", ex.array("x")[None], ex.array("weight"),
            ex.params["stride"], ex.params["padding"], worked=True, example_id=ex.id, show_inputs=False)
        ex = examples.get("ferrara-5x5-stride-2")
        add(cite(ex) + " (its image and kernel, random grad_out)", ex.array("image")[None, None],
            ex.array("kernel")[None, None], ex.params["stride"], ex.params["padding"], worked=True,
            example_id=ex.id)
        for i, kind in enumerate(case_kinds(hidden) + ["batch of images"]):
            h, w, kh, kw, s, p = geometry(rng, kind)
            n = int(rng.integers(2, 4)) if kind in ("batch of images", ORDINARY) else int(rng.integers(1, 3))
            c, k = int(rng.integers(1, 3)), int(rng.integers(1, 3))
            add(case_label(i, kind, hidden), floats(rng, (n, c, h, w)), floats(rng, (k, c, kh, kw)), s, p,
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
    PARTS.append(Part(f"a3.{_key}", "conv2d_backward",
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
        alts["each cell of a window gets grad / (k*k), not the whole grad"] = lambda: first_match(
            [f(g, x, k, s) * k * k, f(g, x, k, s) * k])
        alts["overlapping windows: a cell collects (+=) the share of every window it is in"] = lambda: \
            _overwrite_avg(g, x, k, s)
    if s != k:
        alts["window (i, j) starts at row i*stride, not i*kernel_size"] = lambda: first_match(
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
            g = floats(rng, forward(x, k, s, impl=REF).shape)
            cases.append(Case(label, (g, x, k, s), fn(g, x, k, s, impl=REF), f"x {'x'.join(map(str, x.shape))}, "
                              f"kernel {k}, stride {s}", alternatives=_pool_back_alternatives(g, x, k, s, fn), **kw))

        ex = examples.get("tcd-max-pooling-4x4")
        add(cite(ex) + " (its input, random grad_out)", ex.array("x")[None, None], 2, 2, worked=True,
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
            add(case_label(i, kind, hidden), floats(rng, (n, c, h, w)), k, s, hidden=hidden)
        return cases
    return make


PARTS.append(Part("a3.max_pool2d_backward", "max_pool2d_backward", "Max pooling backward",
                  _pool_back_cases_factory(pool.max_pool2d_backward), njit=True,
                  hint=lambda c, g, m: "grad_x has x's shape; each window's grad goes to the position of its maximum"))
PARTS.append(Part("a3.avg_pool2d_backward", "avg_pool2d_backward", "Average pooling backward",
                  _pool_back_cases_factory(pool.avg_pool2d_backward), njit=True, error_hint=window_error_hint,
                  hint=lambda c, g, m: "grad_x has x's shape; each window's grad is shared equally by its k*k cells"))


def _activation_cases_factory(ref, forward, name):
    def make(rng, hidden):
        cases = []
        shapes_ = [(7,), (3, 4), (2, 3, 4, 5), (1,)] * (2 if hidden else 1)
        for i, shp in enumerate(shapes_):
            x = floats(rng, shp) * 3
            if name == "relu" and x.size > 2:
                x.reshape(-1)[:2] = 0.0  # the derivative at 0 is taken as 0
            if name in ("tanh", "sigmoid") and x.size > 3:
                x.reshape(-1)[:2] = (40.0, -40.0)  # saturated: the gradient is ~0
            g = floats(rng, shp)
            alts = {
                f"that is the forward {name}(x) times grad_out; the derivative is needed": lambda g=g, x=x: g * forward(x),
                "the upstream gradient grad_out is not multiplied in": lambda x=x: ref(np.ones_like(x), x),
            }
            if name == "relu":
                alts["x = 0 counts as inactive: use x > 0, not x >= 0"] = lambda g=g, x=x: np.where(x >= 0, g, 0.0)
            if name == "tanh":
                alts["the derivative is 1 - tanh(x)^2, not 1 - x^2"] = lambda g=g, x=x: g * (1 - x * x)
            if name == "sigmoid":
                alts["the derivative is s(1 - s) with s = sigmoid(x), not s or x(1 - x)"] = lambda g=g, x=x: first_match(
                    [g * forward(x), g * x * (1 - x)])
            cases.append(Case(case_label(i, f"shape {shp}", hidden), (g, x), ref(g, x),
                              f"grad_out and x of shape {shp}", hidden=hidden, alternatives=alts))
        return cases
    return make


for _name, _ref, _fwd in (("relu", activations.relu_backward, activations.relu),
                          ("tanh", activations.tanh_backward, activations.tanh),
                          ("sigmoid", activations.sigmoid_backward, activations.sigmoid)):
    PARTS.append(Part(f"a3.{_name}_backward", f"{_name}_backward", f"{_name} backward",
                      _activation_cases_factory(_ref, _fwd, _name),
                      hint=lambda c, g, m: "grad_x = grad_out * f'(x), element by element, for any shape"))
