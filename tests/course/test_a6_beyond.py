"""Assignment 6's parts without the sandbox: the relation the transposed-convolution parts teach
(conv_transpose2d is conv2d's adjoint, so it gives conv2d's input gradient), the receptive-field
mistakes the check names, the concept questions' catalogue coverage, and the comparisons' types.
The notebook, its release and its mutants are graded in test_course_notebooks.py."""
import numpy as np
import pytest

import minicnn
from minicnn.course import a6_beyond
from minicnn.course.part import case_rng, matches

# the worked examples no assignment graded before assignment 6 (issue 16: 12 of the catalogue's 50)
UNGRADED_BEFORE = {
    "ferrara-edge-detection-flops", "ferrara-edge-detection-dense-matrix", "ferrara-rgb-224-inputs",
    "ferrara-rgb-224-dense-weights", "sjtu-l1-distance", "sjtu-linear-classifier", "sjtu-256x256-pixels",
    "tcd-conv-transpose-shape", "halmstad-fully-connected-params", "halmstad-quiz-sigmoid-relu",
    "halmstad-receptive-field-vanilla", "zju-uoe-256x256x3-inputs"}


def _cases(key, hidden=False, seed=0):
    part = next(p for p in a6_beyond.PARTS if p.key == key)
    return part.cases(case_rng(key, seed), hidden)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("impl", ["loop", "fast"])
def test_conv_transpose2d_is_the_adjoint_of_conv2d(dtype, impl):
    """<conv2d(x, w), y> == <x, conv_transpose2d(y, w)> for random shapes, strides and paddings."""
    rng = np.random.default_rng(16)
    for _ in range(6):
        s, p, k = int(rng.integers(1, 4)), int(rng.integers(0, 3)), int(rng.integers(1, 4))
        h, w_ = int(rng.integers(k, 9)) + 2 * p, int(rng.integers(k, 9)) + 2 * p
        x = rng.standard_normal((2, 3, h, w_)).astype(dtype)
        w = rng.standard_normal((4, 3, k, k)).astype(dtype)
        y_shape = minicnn.conv2d(x, w, stride=s, padding=p, impl=impl).shape
        y = rng.standard_normal(y_shape).astype(dtype)
        op = (h + 2 * p - k) % s  # the rows the stride skipped, so that the shapes agree
        if op != (w_ + 2 * p - k) % s:
            continue
        back = minicnn.conv_transpose2d(y, w, stride=s, padding=p, output_padding=op, impl=impl)
        assert back.shape == x.shape and back.dtype == dtype
        lhs = float(np.vdot(minicnn.conv2d(x, w, stride=s, padding=p, impl=impl).astype(np.float64), y))
        rhs = float(np.vdot(x.astype(np.float64), back))
        assert lhs == pytest.approx(rhs, rel=1e-4 if dtype == np.float32 else 1e-10, abs=1e-3)


def test_input_grad_cases_fit_one_output_padding_and_are_the_transpose():
    for hidden, seed in ((False, 0), (True, 5)):
        for case in _cases("a6.input_grad", hidden, seed):
            g, w, s, p, (h, wd) = case.args
            reached_h = (g.shape[2] - 1) * s - 2 * p + w.shape[2]
            reached_w = (g.shape[3] - 1) * s - 2 * p + w.shape[3]
            op = h - reached_h
            assert op == wd - reached_w and 0 <= op < max(s, 1)
            got = minicnn.conv_transpose2d(g, w, None, s, p, op, impl="loop")
            np.testing.assert_allclose(got, case.expected)
    skipped = [c for c in _cases("a6.input_grad") if "skipped" in c.label]
    assert skipped and all(c.args[4][0] > (c.args[0].shape[2] - 1) * c.args[2] - 2 * c.args[3] + c.args[1].shape[2]
                           for c in skipped)


def _rf(layers, *, add_k=False, stride=True, dilation=True):
    rf, jump = 1, 1
    for k, s, d in layers:
        rf += (d if dilation else 1) * (k if add_k else k - 1) * jump
        jump *= s if stride else 1
    return rf


@pytest.mark.parametrize("mistake, kw", [("adding k counts the overlap twice", {"add_k": True}),
                                         ("the stride is ignored", {"stride": False}),
                                         ("the dilation is ignored", {"dilation": False})])
def test_receptive_field_mistakes_are_named(mistake, kw):
    named = 0
    for case in _cases("a6.receptive_field", True, 3):
        (layers,) = case.args
        assert _rf(layers) == case.expected == minicnn.receptive_field(layers)
        wrong = _rf(layers, **kw)
        if wrong == case.expected:
            continue
        hits = [name for name, alt in case.alternatives.items() if matches(wrong, alt)]
        assert any(mistake in name for name in hits), (layers, wrong, hits)
        named += 1
    assert named >= 3


def test_random_stacks_have_strides_and_dilation_where_their_kind_says():
    cases = _cases("a6.receptive_field", True, 11)
    assert any(s > 1 for c in cases if "strided" in c.label for _, s, _ in c.args[0])
    assert any(d > 1 for c in cases if "dilat" in c.label for _, _, d in c.args[0])


def test_assignment_6_grades_every_example_no_other_assignment_did():
    ids = {c.example_id for part in a6_beyond.PARTS for c in part.cases(case_rng(part.key, 0), False)}
    assert UNGRADED_BEFORE <= ids
    for case in _cases("a6.concepts"):
        assert case.expected == minicnn.examples.get(case.args[0]).expected


def test_comparisons_reject_the_wrong_types():
    assert a6_beyond.compare_rf(5, 5) is None and a6_beyond.compare_rf(5, np.int64(5)) is None
    for bad in (5.0, True, "5", None):
        assert a6_beyond.compare_rf(5, bad)["kind"] == "type"
    assert a6_beyond.compare_rf(5, 7)["kind"] == "values"
    assert a6_beyond.compare_number(0.5, 0.5) is None and a6_beyond.compare_number(456, 456.0) is None
    assert a6_beyond.compare_number(456, 455.9999)["kind"] == "values"
    for bad in (True, "456", None, [456]):
        assert a6_beyond.compare_number(456, bad)["kind"] == "type"


def test_the_callee_of_conv2d_input_grad_is_compiled_once_before_the_cases():
    namespace = {"np": np}
    exec("from numba import njit\n"   # as a notebook defines them: two globals of one namespace
         "@njit\ndef conv_transpose2d(x, w, b, stride, padding, output_padding):\n    return x\n"
         "def conv2d_input_grad(grad_out, w, stride, padding, x_hw):\n"
         "    return conv_transpose2d(grad_out, w, np.zeros(w.shape[1]), stride, padding, 0)\n", namespace)
    callee = namespace["conv_transpose2d"]
    assert not callee.signatures
    assert a6_beyond._compile_callees(namespace["conv2d_input_grad"]) is namespace["conv2d_input_grad"]
    assert len(callee.signatures) == 1
    case = _cases("a6.input_grad")[0]
    g, w, s, p, _ = case.args
    namespace["conv2d_input_grad"](g, w, s, p, None)
    assert len(callee.signatures) == 1   # the cases' call used the compiled one


def test_the_reference_ascent_step_raises_the_filters_activation():
    for hidden, seed in ((False, 0), (True, 7)):
        for case in _cases("a6.ascent_step", hidden, seed):
            x, w, b, f, lr = case.args
            before = a6_beyond.filter_activation(x, w, b, f)
            assert a6_beyond.filter_activation(case.expected, w, b, f) > before
            wrong_sign = a6_beyond._ascent_reference(x, w, b, f, lr, sign=-1.0)
            assert a6_beyond.filter_activation(wrong_sign, w, b, f) < before


def test_ascent_step_must_be_the_students_own_step(capsys):
    """Careless and hostile ascent steps, checked in-process as the notebook does (fork=False)."""
    from minicnn.course.checks import check

    def via_a_ready_made_layer(x, w, b, f, lr):   # minicnn.layers is assignment 5's own work: refused
        import minicnn.layers
        layer = minicnn.layers.Conv2D(1, w.shape[0], 3)
        return x + 0 * layer.forward(x).sum()

    def unchanged(x, w, b, f, lr):                # returns the image as it came in
        return x

    def right(x, w, b, f, lr):
        y = minicnn.conv2d(x, w, b)
        g = np.zeros_like(y)
        g[:, f] = 1.0 / (y.shape[0] * y.shape[2] * y.shape[3])
        return x + lr * minicnn.conv2d_backward(minicnn.relu_backward(g, y), x, w)[0]

    assert check("a6.ascent_step", right, points=2) == 2
    assert check("a6.ascent_step", via_a_ready_made_layer, points=2) == 0
    assert "your own code" in capsys.readouterr().out
    assert check("a6.ascent_step", unchanged, points=2) == 0
    assert "did not rise" in capsys.readouterr().out
