"""The fast kernels (minicnn/kernels/fast/) against the teaching loops, path by path.

The fast convolution picks a memory layout (a "wide" plane per image, or the batch
innermost for small planes), splits strided inputs into stride phases, pads while it lays
the input out, groups taps three at a time and filters four at a time (zero filters and a
remainder tap past the end), rounds every run up to a whole number of vectors and cuts long
runs into pieces.  Each case below is chosen to land on one of those paths, and the path is
asserted, so that a change in the heuristics cannot silently leave a path untested.
Results must also be bitwise identical for 1 and 2 threads.
"""
import os
import subprocess
import sys
import textwrap

import numba
import numpy as np
import pytest

import minicnn
import reference
from minicnn.geometry import ConvGeometry
from minicnn.kernels import KERNELS, fast
from minicnn.kernels.fast import conv as fast_conv
from minicnn.kernels.fast import dense as fast_dense
from minicnn.kernels.fast import layout as fast_layout
from minicnn.kernels.fast import passes as fast_passes

FAST, LOOP = KERNELS["fast"], KERNELS["loop"]
DTYPES = [np.float32, np.float64]


def close(got, want, dtype, what):
    assert got.shape == want.shape, f"{what}: shape {got.shape}, expected {want.shape}"
    assert got.dtype == want.dtype, f"{what}: dtype {got.dtype}, expected {want.dtype}"
    tol = 1e-4 if dtype == np.float32 else 1e-10
    scale = max(1.0, float(np.abs(want).max(initial=0)))
    np.testing.assert_allclose(got, want, rtol=tol, atol=tol * scale, err_msg=what)


def layout(n, h, w, kh, kw, stride, padding, dilation):
    """'inner' or 'wide': the layout the fast kernels choose for this conv2d."""
    (sh, sw), (ph, pw), (dh, dw) = (np.broadcast_to(a, 2) for a in (stride, padding, dilation))
    out_h = (h + 2 * ph - dh * (kh - 1) - 1) // sh + 1
    out_w = (w + 2 * pw - dw * (kw - 1) - 1) // sw + 1
    row = -(-(w + 2 * pw) // sw)
    return "inner" if fast_layout.wants_batch_inner(n, out_h, out_w, row) else "wide"


# (N, C, H, W, K, kh, kw, stride, padding, dilation, expected layout, why)
CASES = [
    (1, 3, 12, 11, 5, 3, 3, 1, 1, 1, "wide", "one image, odd width, K % 4 = 1"),
    (2, 1, 28, 28, 6, 5, 5, 1, 0, 1, "wide", "LeNet conv1 shape: C = 1, 25 taps = 8 groups of 3 + 1"),
    (2, 6, 14, 14, 16, 5, 5, 1, 0, 1, "inner", "LeNet conv2: batch innermost"),
    (3, 16, 5, 5, 7, 5, 5, 1, 0, 1, "inner", "LeNet conv3: 1x1 output"),
    (2, 4, 17, 18, 8, 3, 3, 2, 1, 1, "wide", "stride 2: four stride phases"),
    (1, 3, 19, 16, 4, 3, 2, (3, 2), (2, 1), 1, "wide", "strides 3 and 2, uneven phases"),
    (2, 2, 15, 15, 3, 3, 3, 1, 2, 2, "wide", "dilation 2, padding 2"),
    (1, 3, 14, 13, 5, 3, 3, 2, 1, (2, 3), "wide", "stride 2 and dilation: taps on other phases"),
    (2, 5, 16, 16, 2, 2, 2, 2, 0, 1, "wide", "2x2 stride 2: 4 taps = one group + 1"),
    (3, 2, 9, 9, 9, 4, 4, 1, 1, 1, "inner", "4x4: 16 taps = 5 groups + 1"),
    (2, 3, 10, 10, 3, 1, 1, 1, 0, 1, "wide", "1x1 filters"),
    (1, 2, 12, 9, 5, 1, 5, 1, (0, 2), 1, "wide", "a 1x5 row filter"),
    (5, 3, 6, 7, 6, 2, 3, (1, 2), 1, 1, "inner", "batch-inner with stride phases"),
    (1, 2, 70, 66, 5, 3, 3, 1, 1, 1, "wide", "a plane longer than one piece (cut into pieces)"),
    (700, 1, 5, 5, 4, 3, 3, 1, 0, 1, "inner", "a batch-inner row longer than one piece"),
]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", CASES, ids=[c[-1] for c in CASES])
def test_conv2d_paths_match_the_loops(case, dtype, rng):
    n, c, h, w, k, kh, kw, stride, padding, dilation, expected, _ = case
    assert layout(n, h, w, kh, kw, stride, padding, dilation) == expected
    x = rng.standard_normal((n, c, h, w)).astype(dtype)
    wt = rng.standard_normal((k, c, kh, kw)).astype(dtype)
    b = rng.standard_normal(k).astype(dtype)
    kw_ = dict(stride=stride, padding=padding, dilation=dilation)
    y = minicnn.conv2d(x, wt, b, **kw_)
    close(y, minicnn.conv2d(x, wt, b, **kw_, impl="loop"), dtype, "forward")
    g = rng.standard_normal(y.shape).astype(dtype)
    for name, got, want in zip(("grad_x", "grad_w", "grad_b"), minicnn.conv2d_backward(g, x, wt, **kw_),
                               minicnn.conv2d_backward(g, x, wt, **kw_, impl="loop")):
        close(got, want, dtype, name)


WIDE = [c for c in CASES if c[10] == "wide"]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", WIDE, ids=[c[-1] for c in WIDE])
def test_per_image_layout_gives_the_same_bits(case, dtype, rng):
    """The PER_IMAGE layout (correlate_per_image: each task lays out its own image) against WIDE
    (split_phases + correlate: the whole batch laid out first): the same arithmetic, so the
    same bits, for 1 to 5 images."""
    _, c, h, w, k, kh, kw, stride, padding, dilation, _, _ = case
    (sh, sw), (ph, pw), (dh, dw) = (v if isinstance(v, tuple) else (v, v) for v in (stride, padding, dilation))
    out_h = (h + 2 * ph - dh * (kh - 1) - 1) // sh + 1
    out_w = (w + 2 * pw - dw * (kw - 1) - 1) // sw + 1
    for n in (1, 2, 5):
        x = rng.standard_normal((n, c, h, w)).astype(dtype)
        wt = rng.standard_normal((k, c, kh, kw)).astype(dtype)
        b = rng.standard_normal(k).astype(dtype)
        g = ConvGeometry(kh, kw, sh, sw, ph, pw, dh, dw, out_h, out_w)
        by_image = fast.conv2d_forward(x, wt, b, g, layout=fast_layout.PER_IMAGE)
        np.testing.assert_array_equal(by_image, fast.conv2d_forward(x, wt, b, g, layout=fast_layout.WIDE))
        close(by_image, minicnn.conv2d(x, wt, b, stride, padding, dilation, impl="loop"), dtype, "per image")


# WIDE's cases have at most 8 filters (a task takes one filter block); these take several
SPANS = WIDE + [(9, 3, 12, 12, 18, 3, 3, 2, 1, 1, "wide", "18 filters, stride 2: tasks of 2 of 5 blocks"),
                (9, 2, 10, 11, 64, 3, 3, 1, 1, 1, "wide", "64 filters: tasks of 8 of 16 blocks")]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", SPANS, ids=[c[-1] for c in SPANS])
def test_weight_gradient_own_images_give_the_same_bits(case, dtype, rng):
    """conv.weight_grad with each task laying out its own images (src None, what the WIDE layout
    uses) against the whole batch laid out first (split_phases): the same values in the same order,
    so the same bits; for 1 to 9 images (groups of one image and of two, tasks of several filter
    blocks, and a filter count that is not a multiple of four)."""
    _, c, h, w, k, kh, kw, stride, padding, dilation, _, _ = case
    (sh, sw), (ph, pw), (dh, dw) = (v if isinstance(v, tuple) else (v, v) for v in (stride, padding, dilation))
    out_h = (h + 2 * ph - dh * (kh - 1) - 1) // sh + 1
    out_w = (w + 2 * pw - dw * (kw - 1) - 1) // sw + 1
    geom = ConvGeometry(kh, kw, sh, sw, ph, pw, dh, dw, out_h, out_w)
    for n in (1, 2, 9):
        x = rng.standard_normal((n, c, h, w)).astype(dtype)
        g = rng.standard_normal((n, k, out_h, out_w)).astype(dtype)
        plan = fast_layout.make_plan(x.shape, geom, (out_h, out_w), x.dtype, layout=fast_layout.WIDE)
        tplane, toff = fast_layout.plan_taps(plan, kh, kw, c)
        rows = fast.rows_of(g, plan).copy()
        whole = fast_conv.weight_grad(rows, fast.laid_out(x, plan).copy(), x, tplane, toff, plan, min(n, 8))
        own = fast_conv.weight_grad(rows, None, x, tplane, toff, plan, min(n, 8))
        n_kb = -(-k // fast_layout.KBW)
        if n == 9 and k > 8:   # the two cases above: a task takes several blocks
            assert fast_conv.weight_span(8, n_kb) > 1
        np.testing.assert_array_equal(own, whole)
        want = reference.conv2d_backward(g, x, np.zeros((k, c, kh, kw)), stride, padding, dilation)[1]
        close(own.reshape(k, c, kh, kw), want.astype(dtype), dtype, f"grad_w, {n} images")


@pytest.mark.parametrize("dtype", DTYPES)
def test_op_table_entries_directly(dtype, rng):
    """The op-table kernels themselves, called with the table's signatures (unpadded input and
    a ConvGeometry), fast row against loop row, with and without padding."""
    for n, stride, dil, pad in ((2, (1, 1), (1, 1), (0, 0)), (3, (2, 1), (1, 2), (1, 0)), (40, (1, 1), (1, 1), (1, 2))):
        x = rng.standard_normal((n, 3, 9, 8)).astype(dtype)
        w = rng.standard_normal((5, 3, 3, 2)).astype(dtype)
        b = rng.standard_normal(5).astype(dtype)
        (sh, sw), (dh, dw), (ph, pw) = stride, dil, pad
        oh, ow = (9 + 2 * ph - dh * 2 - 1) // sh + 1, (8 + 2 * pw - dw - 1) // sw + 1
        geom = ConvGeometry(3, 2, sh, sw, ph, pw, dh, dw, oh, ow)
        close(FAST["conv2d_forward"](x, w, b, geom), LOOP["conv2d_forward"](x, w, b, geom), dtype, "conv2d_forward")
        g = rng.standard_normal((n, 5, oh, ow)).astype(dtype)
        close(FAST["conv2d_backward_input"](g, w, geom, (9, 8)), LOOP["conv2d_backward_input"](g, w, geom, (9, 8)),
              dtype, "conv2d_backward_input")
        close(FAST["conv2d_backward_weight"](g, x, geom), LOOP["conv2d_backward_weight"](g, x, geom),
              dtype, "conv2d_backward_weight")
        close(FAST["bias_backward"](g), LOOP["bias_backward"](g), dtype, "bias_backward")


# (N, C, H, W, K, kh, kw, padding, dilation, the form chosen by default, the layout of the gather's
#  forward ("-": no gather form), why)
INPUT_GRAD_CASES = [
    (2, 32, 12, 12, 9, 3, 3, 1, 1, "gather", "wide", "'same' padding: the planes are the same size"),
    (3, 1, 24, 24, 6, 5, 5, 0, 1, "gather", "wide", "24x24 against 20x20: 1.44 times the scatter's work"),
    (3, 1, 20, 20, 6, 5, 5, 0, 1, "scatter", "wide", "20x20 against 16x16: 1.56 times"),
    (2, 6, 14, 14, 16, 5, 5, 0, 1, "scatter", "inner", "LeNet conv2: 1.96 times"),
    (3, 16, 5, 5, 7, 5, 5, 0, 1, "scatter", "inner", "LeNet conv3: a 1x1 output, 25 times"),
    (2, 3, 15, 13, 5, 3, 3, 2, 2, "gather", "inner", "dilation 2, padding 2: the gather pads by 2"),
    (1, 2, 12, 9, 5, 1, 5, (0, 2), 1, "gather", "wide", "a 1x5 row filter, padding on one axis only"),
    (2, 3, 20, 20, 4, 3, 2, (1, 0), (2, 3), "gather", "wide", "different dilations per axis"),
    (2, 3, 10, 10, 3, 1, 1, 1, 1, "scatter", "-", "1x1 filter, padding 1: no gather form"),
    (2, 4, 9, 8, 5, 3, 3, 3, 1, "scatter", "-", "padding past the filter's reach: no gather form"),
    (40, 3, 6, 6, 5, 3, 3, 1, 1, "gather", "inner", "a batch the forward lays out batch-inner"),
]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", INPUT_GRAD_CASES, ids=[c[-1] for c in INPUT_GRAD_CASES])
def test_input_gradient_forms_against_numpy(case, dtype, rng):
    """conv2d_backward_input's two forms at stride 1 (the scatter, and the gather: the forward
    kernel on grad_out with the filters turned) against the NumPy oracle in tests/reference.py,
    the default form asserted, every form written into a caller's `out` full of NaN."""
    n, c, h, w, k, kh, kw, padding, dilation, expected, gather_layout, _ = case
    (ph, pw), (dh, dw) = (v if isinstance(v, tuple) else (v, v) for v in (padding, dilation))
    oh, ow = h + 2 * ph - dh * (kh - 1), w + 2 * pw - dw * (kw - 1)
    geom = ConvGeometry(kh, kw, 1, 1, ph, pw, dh, dw, oh, ow)
    assert fast.input_grad_form(geom, (h, w), (oh, ow)) == expected
    g_in = fast.gather_geometry(geom, (h, w), (oh, ow))
    assert (g_in is None) == (gather_layout == "-")
    if g_in is not None:   # the forward the gather runs: grad_out (N, K, Ho, Wo) -> (N, C, H, W)
        assert layout(n, oh, ow, kh, kw, 1, (g_in.ph, g_in.pw), dilation) == gather_layout
    x = rng.standard_normal((n, c, h, w)).astype(dtype)
    wt = rng.standard_normal((k, c, kh, kw)).astype(dtype)
    g = rng.standard_normal((n, k, oh, ow)).astype(dtype)
    want = reference.conv2d_backward(g, x, wt, 1, padding, dilation)[0].astype(dtype)
    forms = ("scatter", "gather") if g_in is not None else ("scatter",)
    for form in forms + (None,):
        out = np.full((n, c, h, w), np.nan, dtype)
        got = fast.conv2d_backward_input(g, wt, geom, (h, w), out=out, form=form)
        assert got is out, form
        close(got, want, dtype, f"grad_x, form {form}")
    if len(forms) == 1:
        with pytest.raises(ValueError, match="no gather form"):
            fast.conv2d_backward_input(g, wt, geom, (h, w), form="gather")


@pytest.mark.parametrize("dtype", DTYPES)
def test_transposed_convolution_with_output_padding_at_stride_1(dtype, rng):
    """A transposed convolution reuses the input gradient.  At stride 1 with dilation it may ask
    for output padding: rows and columns that the gather's correlation would compute by reading
    past its padded input.  It once did: one image (the WIDE layout, laid out in reused scratch
    memory) read the stale values a larger convolution had left there, and returned garbage
    (errors of about 29 on this test).  Those geometries have no gather form now."""
    big = rng.standard_normal((1, 8, 64, 64)).astype(dtype) + 5
    for n in (1, 2):
        minicnn.conv2d(big, rng.standard_normal((4, 8, 3, 3)).astype(dtype), None, 1, 1)   # fills the scratch
        x = rng.standard_normal((n, 3, 40, 37)).astype(dtype)
        w = rng.standard_normal((3, 4, 3, 3)).astype(dtype)
        for padding, output_padding in ((2, 1), (1, 1), ((2, 1), (1, 0)), (2, 0)):
            kw = dict(stride=1, padding=padding, output_padding=output_padding, dilation=2)
            got = minicnn.conv_transpose2d(x, w, None, **kw)
            close(got, reference.conv_transpose2d(x, w, None, **kw).astype(dtype), dtype, f"conv_transpose2d {kw}")
            (ph, pw), (oph, opw) = (v if isinstance(v, tuple) else (v, v) for v in (padding, output_padding))
            geom = ConvGeometry(3, 3, 1, 1, ph, pw, 2, 2, got.shape[2], got.shape[3])
            assert (fast.gather_geometry(geom, got.shape[2:], x.shape[2:]) is None) == (oph + opw > 0)


@pytest.mark.parametrize("dtype", DTYPES)
def test_input_gradient_forms_on_random_shapes(dtype, rng):
    """Random stride-1 shapes, paddings and dilations: both forms against the oracle."""
    for _ in range(12):
        kh, kw, dh, dw = (int(v) for v in rng.integers(1, 4, size=4))
        ph, pw = int(rng.integers(0, (kh - 1) * dh + 1)), int(rng.integers(0, (kw - 1) * dw + 1))
        h, w = (int(v) for v in rng.integers(max(kh * dh, kw * dw), 17, size=2))
        n, c, k = (int(v) for v in rng.integers(1, 6, size=3))
        oh, ow = h + 2 * ph - dh * (kh - 1), w + 2 * pw - dw * (kw - 1)
        geom = ConvGeometry(kh, kw, 1, 1, ph, pw, dh, dw, oh, ow)
        x = rng.standard_normal((n, c, h, w)).astype(dtype)
        wt = rng.standard_normal((k, c, kh, kw)).astype(dtype)
        g = rng.standard_normal((n, k, oh, ow)).astype(dtype)
        want = reference.conv2d_backward(g, x, wt, 1, (ph, pw), (dh, dw))[0].astype(dtype)
        for form in ("scatter", "gather"):
            close(fast.conv2d_backward_input(g, wt, geom, (h, w), form=form), want, dtype,
                  f"grad_x, form {form}, {geom}")


def test_every_row_has_every_op_and_nothing_else():
    """One signature per op: conv2d(impl=...) is one lookup, no optional keys probed."""
    from minicnn.kernels import OPS
    for row in KERNELS.values():
        assert sorted(row) == sorted(OPS)


@pytest.mark.parametrize("dtype", DTYPES)
def test_transposed_and_1d_convolutions(dtype, rng):
    x = rng.standard_normal((2, 3, 5, 6)).astype(dtype)
    w = rng.standard_normal((3, 4, 3, 3)).astype(dtype)
    for stride, padding, op in ((2, 1, 1), (3, 0, 2), (1, 1, 0)):
        kw = dict(stride=stride, padding=padding, output_padding=op)
        y = minicnn.conv_transpose2d(x, w, None, **kw)
        close(y, minicnn.conv_transpose2d(x, w, None, **kw, impl="loop"), dtype, "conv_transpose2d")
        g = rng.standard_normal(y.shape).astype(dtype)
        for got, want in zip(minicnn.conv_transpose2d_backward(g, x, w, **kw),
                             minicnn.conv_transpose2d_backward(g, x, w, **kw, impl="loop")):
            close(got, want, dtype, "conv_transpose2d_backward")
    x1, w1 = rng.standard_normal((3, 2, 17)).astype(dtype), rng.standard_normal((4, 2, 3)).astype(dtype)
    close(minicnn.conv1d(x1, w1, None, 2, 1, 2), minicnn.conv1d(x1, w1, None, 2, 1, 2, impl="loop"), dtype, "conv1d")


def test_float32_stays_float32(rng):
    """No float64 creeps into the float32 kernels: a Python float or int mixed into float32
    arithmetic promotes it to float64 (slower, and no longer vectorised 8 wide)."""
    x = rng.standard_normal((2, 3, 8, 8)).astype(np.float32)
    w = rng.standard_normal((4, 3, 3, 3)).astype(np.float32)
    y = minicnn.conv2d(x, w, None, 1, 1)
    assert y.dtype == np.float32
    assert all(a.dtype == np.float32 for a in minicnn.conv2d_backward(y, x, w, 1, 1))
    for name in ("max_pool2d", "avg_pool2d"):
        p = getattr(minicnn, name)(x, 2)
        assert p.dtype == np.float32
        assert getattr(minicnn, name + "_backward")(p, x, 2).dtype == np.float32
    # the inner loops, recompiled here for float32 arguments: every variable's type
    f32 = np.float32
    rows = [np.zeros(64, f32) for _ in range(4)]
    planes, taps, offs = np.ones((2, 96), f32), np.array([0, 1, 0, 1], np.int64), np.array([0, 1, 2, 3], np.int64)
    calls = [
        (fast_passes.taps_pass, {"contract"}, (*rows, planes, np.ones((4, 4), f32), taps, offs, 0, 64)),
        (fast_passes.taps_pass1, {"contract"}, (rows[0], planes, np.ones(4, f32), taps, offs, 0, 64)),
        (fast_passes.dot_pass, {"contract", "reassoc"}, (np.zeros((2, 4), f32), rows[0], rows[1], planes, taps,
                                                         offs, 0, 64)),
        (fast_passes.dot_pass4, {"contract", "reassoc"}, (np.zeros((4, 4), f32), *rows, planes, taps, offs, 0, 64)),
        (fast_dense.dense_forward_part, {"contract", "reassoc"},   # (part, parts, x, w, b, out)
         (0, 1, np.ones((5, 7), f32), np.ones((6, 7), f32), np.ones(6, f32), np.ones((5, 6), f32))),
        (fast_dense.dense_backward_part, {"contract"},             # (part, parts, g, x, w, gx, gw, gb)
         (0, 1, np.ones((5, 6), f32), np.ones((5, 7), f32), np.ones((6, 7), f32), np.zeros((5, 7), f32),
          np.zeros((6, 7), f32), np.zeros(6, f32))),
    ]
    for fn, fastmath, args in calls:
        compiled = numba.njit(fastmath=fastmath)(fn.py_func)
        compiled(*args)
        typemap = compiled.overloads[compiled.signatures[0]].fndesc.typemap
        promoted = {var: str(t) for var, t in typemap.items() if "float64" in str(t)}
        assert not promoted, f"{fn.__name__}: float64 variables in the float32 kernel: {promoted}"


# ---------------------------------------------------------------- pooling

POOLS = [  # (kernel, stride, padding, H, W): the 2x2 stride-2 fast path and the general loops
    (2, 2, 0, 8, 8), (2, 2, 0, 7, 9), (2, 2, 1, 6, 7), (3, 2, 1, 9, 8), (2, 1, 0, 5, 6), ((1, 3), (1, 2), 0, 5, 7),
]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("pool", POOLS, ids=str)
def test_pooling_paths_match_the_loops(pool, dtype, rng):
    k, s, p, h, w = pool
    x = rng.standard_normal((3, 2, h, w)).astype(dtype)
    x[0, 0, :2, :2] = 1.5                      # a tie inside one window
    for name in ("max_pool2d", "avg_pool2d"):
        fwd, bwd = getattr(minicnn, name), getattr(minicnn, name + "_backward")
        y = fwd(x, k, s, p)
        want = fwd(x, k, s, p, impl="loop")
        g = rng.standard_normal(y.shape).astype(dtype)
        if name == "max_pool2d":   # same comparisons in the same order: exactly the loops' result
            np.testing.assert_array_equal(y, want)
            np.testing.assert_array_equal(bwd(g, x, k, s, p), bwd(g, x, k, s, p, impl="loop"))
        else:
            close(y, want, dtype, name)
            close(bwd(g, x, k, s, p), bwd(g, x, k, s, p, impl="loop"), dtype, name + "_backward")


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("hw", [(8, 10), (7, 9), (2, 3), (33, 64)], ids=str)
def test_max_pool_ties_and_nan_as_the_loops(dtype, hw):
    """Integer-valued inputs (ties in every position of a window) and NaN (check_finite=False):
    the fast 2x2 path picks the same winner as the loops, bit for bit, into a fresh array and
    into an `out=` full of NaN, odd sizes and a row longer than one vector included."""
    rng = np.random.default_rng(5)
    h, w = hw
    x = rng.integers(0, 3, size=(2, 3, h, w)).astype(dtype)
    x[rng.random(x.shape) < 0.05] = np.nan
    x[0, 0, 0, 0] = np.nan
    y = minicnn.max_pool2d(x, 2, check_finite=False)
    np.testing.assert_array_equal(y, minicnn.max_pool2d(x, 2, check_finite=False, impl="loop"))
    g = rng.standard_normal(y.shape).astype(dtype)
    want = minicnn.max_pool2d_backward(g, x, 2, impl="loop")
    np.testing.assert_array_equal(minicnn.max_pool2d_backward(g, x, 2), want)
    out = np.full(x.shape, np.nan, dtype=dtype)
    assert minicnn.max_pool2d_backward(g, x, 2, out=out) is out
    np.testing.assert_array_equal(out, want)


@pytest.mark.parametrize("dtype", DTYPES)
def test_max_pool_backward_starts_from_clean_memory(dtype):
    """The fast kernel allocates its gradient uninitialised and each task zeroes its own planes
    (the 2x2 path row by row as it goes, the general path, padded here, before adding into them);
    a block just freed full of NaN (which the allocator hands straight back) must not leak into
    the result, odd last row and column included."""
    rng = np.random.default_rng(6)
    for k, s, p in ((2, 2, 0), (3, 2, 1)):
        for h, w in ((8, 8), (7, 9), (33, 31)):
            x = rng.standard_normal((4, 3, h, w)).astype(dtype)
            g = rng.standard_normal(minicnn.max_pool2d(x, k, s, p).shape).astype(dtype)
            want = minicnn.max_pool2d_backward(g, x, k, s, p, impl="loop")
            for _ in range(3):
                junk = np.full((4, 3, h + 2 * p, w + 2 * p), np.nan, dtype=dtype)    # the padded gradient's size
                del junk
                np.testing.assert_array_equal(minicnn.max_pool2d_backward(g, x, k, s, p), want)


# ---------------------------------------------------------------- dense

@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n, fin, fout", [(64, 400, 120), (7, 33, 10), (1, 1, 1), (5, 3, 4), (9, 16, 13)])
def test_dense_matches_the_loops(n, fin, fout, dtype, rng):
    """fast_dense handles four outputs (and four samples) per pass: sizes that are and are not
    multiples of four, against the teaching loops and NumPy's matrix product."""
    x = rng.standard_normal((n, fin)).astype(dtype)
    w = rng.standard_normal((fout, fin)).astype(dtype)
    b = rng.standard_normal(fout).astype(dtype)
    g = rng.standard_normal((n, fout)).astype(dtype)
    y = minicnn.dense(x, w, b)
    assert y.dtype == dtype
    close(y, minicnn.dense(x, w, b, impl="loop"), dtype, "dense")
    close(y, x @ w.T + b, dtype, "dense against x @ w.T + b")
    got = minicnn.dense_backward(g, x, w)
    for a, e, want in zip(got, minicnn.dense_backward(g, x, w, impl="loop"), (g @ w, g.T @ x, g.sum(axis=0))):
        assert a.dtype == dtype
        close(a, e, dtype, "dense_backward")
        close(a, want, dtype, "dense_backward against NumPy")


def test_dense_uses_no_blas_threads():
    """The dense kernels are Numba loops: no NumPy matrix product (whose OpenBLAS threads spin
    after each call and slowed the next convolution twofold on two threads)."""
    import inspect
    for fn in (fast.dense_forward, fast.dense_backward, fast_dense.dense_forward, fast_dense.dense_backward,
               fast_dense.dense_forward_part.py_func, fast_dense.dense_backward_part.py_func):
        src = inspect.getsource(fn)
        assert "@" not in src.replace("@njit", "") and "np.dot" not in src and "matmul" not in src, fn.__name__
    assert KERNELS["fast"]["dense_forward"] is fast.dense_forward
    assert not fast_dense.dense_forward_part.targetoptions.get("parallel")   # threads come from threads.LAUNCH


# ---------------------------------------------------------------- threads

THREADS_SCRIPT = textwrap.dedent("""
    import hashlib, sys
    import numba, numpy as np
    import minicnn
    from minicnn.kernels import fast
    fast.SMALL_FLOPS = fast.SMALL_ELEMENTS = 0   # small layers too go parallel here
    numba.set_num_threads(int(sys.argv[1]))
    rng = np.random.default_rng(0)
    h = hashlib.sha256()
    for dt in (np.float32, np.float64):
        for (n, c, hw, k, ks, s, p) in ((8, 3, 21, 10, 3, 1, 1), (16, 6, 14, 16, 5, 1, 0), (4, 5, 23, 6, 3, 2, 1),
                                       (700, 1, 5, 5, 3, 1, 0)):
            x = rng.standard_normal((n, c, hw, hw)).astype(dt)
            w = rng.standard_normal((k, c, ks, ks)).astype(dt)
            y = minicnn.conv2d(x, w, rng.standard_normal(k).astype(dt), s, p)
            g = rng.standard_normal(y.shape).astype(dt)
            for a in (y, *minicnn.conv2d_backward(g, x, w, s, p)):
                h.update(a.tobytes())
        x = rng.standard_normal((8, 4, 10, 10)).astype(dt)
        for name in ("max_pool2d", "avg_pool2d"):
            y = getattr(minicnn, name)(x, 2)
            h.update(y.tobytes())
            h.update(getattr(minicnn, name + "_backward")(np.ones_like(y), x, 2).tobytes())
        x, w = rng.standard_normal((37, 45)).astype(dt), rng.standard_normal((11, 45)).astype(dt)
        y = minicnn.dense(x, w, rng.standard_normal(11).astype(dt))
        h.update(y.tobytes())
        for a in minicnn.dense_backward(rng.standard_normal(y.shape).astype(dt), x, w):
            h.update(a.tobytes())
    print(h.hexdigest())
""")


@pytest.mark.skipif(numba.config.NUMBA_NUM_THREADS < 2, reason="Numba has fewer than 2 threads here")
def test_results_do_not_depend_on_the_thread_count(tmp_path):
    """Every task writes its own memory and partial sums are added in a fixed order, so 1 and
    2 threads give bitwise identical results (fresh processes, so nothing is shared)."""
    digests = []
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))   # this checkout's minicnn
    env = dict(os.environ, PYTHONPATH=root + os.pathsep + os.environ.get("PYTHONPATH", ""))
    for threads in (1, 2):
        proc = subprocess.run([sys.executable, "-c", THREADS_SCRIPT, str(threads)], capture_output=True, text=True,
                              cwd=tmp_path, env=env, timeout=600)
        assert proc.returncode == 0, proc.stderr
        digests.append(proc.stdout.strip())
    assert digests[0] == digests[1]


def phases_by_numpy(x, ph, pw, sh, sw, hq, wq):
    """The phase layout written with NumPy slicing: phase (a, b) of the zero-padded x is
    xp[a::sh, b::sw], placed in an Hq x Wq plane (zeros past its edge), flattened."""
    n, c, h, w = x.shape
    xp = np.zeros((n, c, hq * sh, wq * sw), x.dtype)
    xp[:, :, ph:ph + h, pw:pw + w] = x
    return np.stack([xp[:, :, a::sh, b::sw].reshape(n, c, hq * wq) for a in range(sh) for b in range(sw)], axis=2)


@pytest.mark.parametrize("dtype", DTYPES)
def test_split_and_merge_phases_against_numpy_slicing(dtype, rng):
    """split_phases (WIDE and BATCH_INNER) against the phase layout built by NumPy slicing, and
    merge_phases as its inverse, for strides 1 to 3 with every padding up to 3 and widths from 1
    to 70, odd and even (phases of unequal length, a phase with no cell of a row at all)."""
    for sw in (1, 2, 3):
        for sh in (1, 2):
            for pw in range(4):
                for w in (1, 2, 3, 4, 5, 8, 17, 37, 70):
                    ph = (pw + w) % 3
                    h = 1 + w % 5
                    n, c = 2, 3
                    x = rng.standard_normal((n, c, h, w)).astype(dtype)
                    g = ConvGeometry(1, 1, sh, sw, ph, pw, 1, 1, 1, 1)
                    what = f"stride ({sh}, {sw}), padding ({ph}, {pw}), {h}x{w}"
                    for lay in (fast_layout.WIDE, fast_layout.BATCH_INNER):
                        plan = fast_layout.make_plan(x.shape, g, (1, 1), x.dtype, layout=lay)
                        want = phases_by_numpy(x, ph, pw, sh, sw, plan.hq, plan.wq)
                        src = np.full(fast_layout.phases_shape(x.shape, plan), np.nan, dtype)   # WIDE writes all
                        if lay == fast_layout.BATCH_INNER:
                            src[:] = 0   # BATCH_INNER needs it zeroed (its docstring)
                        got = fast_layout.split_phases(x, plan, src)
                        per_row = 1 if lay == fast_layout.WIDE else n   # images interleaved in a row
                        used = plan.hq * plan.wq * per_row
                        if lay == fast_layout.WIDE:
                            body = got[..., :used]
                        else:   # (1, C, phases, Hq*Wq*N): image n at every N-th position
                            body = got[0, ..., :used].reshape(c, sh * sw, plan.hq * plan.wq, n)
                            body = body.transpose(3, 0, 1, 2)
                        np.testing.assert_array_equal(body, want, err_msg=f"split {lay}, {what}")
                        assert not got[..., used:].any(), f"slack, {what}"
                        back = fast_layout.merge_phases(got, plan, np.full(x.shape, np.nan, dtype))
                        np.testing.assert_array_equal(back, x, err_msg=f"merge {lay}, {what}")
