"""The checking code, run in-process (no nbgrader): it gives full marks to correct code, loses
points for wrong code with the right hint, catches library calls and uncompiled code, and
survives hangs, crashes and noisy code without writing to stderr."""
import subprocess
import sys
import textwrap
import types

import numpy as np
import pytest
from numba import njit

import minicnn
from course_helpers import CORRELATE_SRC, exec_cells
from minicnn.course import checks
from minicnn.sandbox import calls
from minicnn.course.checks import check, check_compiled


@pytest.fixture(scope="module")
def good():
    """A correct correlate2d and output_size, as a student would write them in a notebook."""
    return exec_cells(["import numpy as np\nfrom numba import njit\n", CORRELATE_SRC,
                       "def output_size(n, k, stride=1, padding=0):\n    return (n + 2 * padding - k) // stride + 1\n"])


def run(part, fn, points=4, seed=0, capsys=None):
    score = check(part, fn, points=points, seed=seed)
    text = capsys.readouterr() if capsys else None
    return score, text


def test_correct_code_gets_full_marks_public_and_hidden(good, capsys):
    for seed in (0, 99):
        score, out = run("a1.correlate2d", good["correlate2d"], seed=seed, capsys=capsys)
        assert score == 4.0, out.out
        assert out.err == ""
    assert check_compiled("a1.correlate2d", good["correlate2d"], points=1) == 1.0


def test_cases_include_worked_examples_and_every_edge():
    part = checks.get_part("a1.correlate2d")
    for hidden, seed in ((False, 0), (True, 5)):
        cases = part.cases(checks.case_rng(part.key, seed), hidden)
        labels = " ".join(c.label for c in cases)
        assert "worked example: Riccardo Zese" in labels and "Eren Erdal Aksoy" in labels
        for edge in ("kernel as large as the input", "stride larger than the kernel", "'same' padding",
                     "non-square input and kernel"):
            assert edge in labels, (hidden, edge)
        for c in cases:
            img, k, s, p = c.args
            if "kernel as large" in c.label:
                assert k.shape == (img.shape[0] + 2 * p, img.shape[1] + 2 * p)
            if "stride larger" in c.label:
                assert s > max(k.shape)
            if "'same' padding" in c.label:
                assert c.expected.shape == img.shape
            if "non-square" in c.label:
                assert img.shape[0] != img.shape[1] and k.shape[0] != k.shape[1]


def test_hidden_cases_differ_with_the_seed_and_are_not_printed(capsys):
    part = checks.get_part("a1.correlate2d")
    a = part.cases(checks.case_rng(part.key, 1), True)
    b = part.cases(checks.case_rng(part.key, 2), True)
    assert any(x.args[0].shape != y.args[0].shape or not np.array_equal(x.args[0], y.args[0])
               for x, y in zip(a, b) if not x.worked)

    @njit
    def off(image, kernel, stride, padding):
        out = np.zeros(((image.shape[0] + 2 * padding - kernel.shape[0]) // stride + 1,
                        (image.shape[1] + 2 * padding - kernel.shape[1]) // stride + 1))
        return out + 1.0

    score, out = run("a1.correlate2d", off, seed=1, capsys=capsys)
    assert score == 0.0
    hidden_blocks = out.out.split("FAIL hidden case")[1:]
    assert hidden_blocks
    for block in hidden_blocks:
        block = block.split("FAIL ")[0]
        assert "argument" not in block and "expected:" not in block  # inputs and full arrays stay hidden
        # the kind of mistake is named, but no value, position or shape of the hidden case (issue 13, finding 4)
        assert "the shape is right, but some values are wrong" in block
        assert "first at" not in block and "expected" not in block and "got" not in block and "shape (" not in block


def test_partial_credit_is_proportional_and_never_rounds_up(good, capsys):
    @njit
    def stride_one(image, kernel, stride, padding):
        return good_corr(image, kernel, 1, padding) if stride == 1 else np.zeros((1, 1))
    good_corr = good["correlate2d"]
    res = checks.run_part(checks.get_part("a1.correlate2d"), stride_one, 0, 4)
    assert 0 < res.passed < res.total
    assert res.score == pytest.approx(np.floor(400 * res.passed / res.total) / 100)
    assert res.score < 4


HINT_CASES = [
    ("flipped", "* kernel[kh - 1 - u, kw - 1 - v]", "the kernel is flipped"),
    ("stride", "padded[i + u, j + v]", "does not move by `stride`"),
]


@pytest.mark.parametrize("name,replacement,hint", HINT_CASES)
def test_wrong_code_gets_the_hint_that_fits(name, replacement, hint, capsys):
    original = "padded[i * stride + u, j * stride + v] * kernel[u, v]"
    new = {"flipped": "padded[i * stride + u, j * stride + v] " + replacement,
           "stride": replacement + " * kernel[u, v]"}[name]
    src = CORRELATE_SRC.replace(original, new)
    assert src != CORRELATE_SRC
    ns = exec_cells(["import numpy as np\nfrom numba import njit\n", src])
    score, out = run("a1.correlate2d", ns["correlate2d"], capsys=capsys)
    assert 0 <= score < 4
    assert hint in out.out
    assert 'slide "' in out.out  # a failing worked example cites its slide
    assert out.err == ""


def test_missing_bias_hint_and_shape_hint(capsys):
    ns = exec_cells([textwrap.dedent("""
        import numpy as np
        from numba import njit
        @njit
        def conv2d(x, w, b, stride, padding, dilation):
            n, c, h, wd = x.shape
            k, _, kh, kw = w.shape
            oh = (h + 2 * padding - dilation * (kh - 1) - 1) // stride + 1
            ow = (wd + 2 * padding - dilation * (kw - 1) - 1) // stride + 1
            out = np.zeros((n, k, oh, ow))
            for a in range(n):
                for f in range(k):
                    for i in range(oh):
                        for j in range(ow):
                            t = 0.0
                            for ch in range(c):
                                for u in range(kh):
                                    for v in range(kw):
                                        r = i * stride + u * dilation - padding
                                        q = j * stride + v * dilation - padding
                                        if 0 <= r < h and 0 <= q < wd:
                                            t += x[a, ch, r, q] * w[f, ch, u, v]
                            out[a, f, i, j] = t
            return out
        @njit
        def bad_shape(x, w, b, stride, padding, dilation):
            return np.zeros((1, 1, 1, 1))
        """)])
    score, out = run("a2.conv2d", ns["conv2d"], capsys=capsys)
    assert score < 4 and "the bias is missing" in out.out
    assert "Aksoy" in out.out and "CNN: Convolution for Multi-channel Images" in out.out
    score, out = run("a2.conv2d", ns["bad_shape"], capsys=capsys)
    assert score == 0 and "expected shape" in out.out and "H_out = floor" in out.out


def test_stub_scores_zero_everywhere_including_compiled(capsys):
    ns = exec_cells(["import numpy as np\nfrom numba import njit\n",
                     "@njit\ndef correlate2d(image, kernel, stride, padding):\n"
                     "    # YOUR CODE HERE\n    raise NotImplementedError()\n"])
    score, out = run("a1.correlate2d", ns["correlate2d"], capsys=capsys)
    assert score == 0 and "not implemented yet" in out.out
    assert check_compiled("a1.correlate2d", ns["correlate2d"], points=1) == 0.0
    assert "not implemented" in capsys.readouterr().out


def test_uncompiled_code_is_told_so(good, capsys):
    plain = good["correlate2d"].py_func
    score, out = run("a1.correlate2d", plain, capsys=capsys)
    assert score == 4.0  # correct, so the part's points
    assert "asks for @njit" in out.out and "not compiled" in out.out
    assert check_compiled("a1.correlate2d", plain, points=1) == 0.0
    assert "not compiled" in capsys.readouterr().out


def _cheats():
    fake_scipy = types.ModuleType("scipy.signal")
    exec("def correlate2d(a, k, mode='valid'):\n    raise AssertionError('never reached')\n", fake_scipy.__dict__)
    fake_scipy.correlate2d.__module__ = "scipy.signal"
    fake_torch = types.ModuleType("torch")
    ns = exec_cells([textwrap.dedent("""
        import numpy as np
        import minicnn
        from minicnn import correlate2d as c2d
        def direct(image, kernel, stride, padding):
            return minicnn.correlate2d(image, kernel, stride, padding)
        def renamed(image, kernel, stride, padding):
            return c2d(image, kernel, stride, padding)
        def _helper(image, kernel, stride, padding):
            return minicnn.conv2d(image[None, None], kernel[None, None], None, stride, padding)[0, 0]
        def through_helper(image, kernel, stride, padding):
            return _helper(image, kernel, stride, padding)
        def hidden_import(image, kernel, stride, padding):
            m = __import__("mini" + "cnn")
            return m.correlate2d(image, kernel, stride, padding)
        def numpy_shortcut(image, kernel, stride, padding):
            return np.convolve(image.ravel(), kernel.ravel())[:1].reshape(1, 1)
        """)])
    ns["scipy_signal"] = fake_scipy
    exec("def with_scipy(image, kernel, stride, padding):\n"
         "    return scipy_signal.correlate2d(image, kernel)\n", ns)
    ns["torch"] = fake_torch
    exec("def with_torch(image, kernel, stride, padding):\n    return torch.conv2d(image, kernel)\n", ns)
    return ns


@pytest.mark.parametrize("name,why", [
    ("direct", "uses the module minicnn"), ("renamed", "calls minicnn.conv.correlate2d"),
    ("through_helper", "uses the module minicnn"), ("hidden_import", "minicnn's own kernel"),
    ("numpy_shortcut", "numpy.convolve"), ("with_scipy", "scipy.signal"), ("with_torch", "the module torch"),
])
def test_library_calls_earn_nothing_and_say_why(name, why, capsys):
    fn = _cheats()[name]
    score, out = run("a1.correlate2d", fn, capsys=capsys)
    assert score == 0.0
    assert "must be your own code" in out.out and why in out.out
    assert check_compiled("a1.correlate2d", fn, points=1) == 0.0


def test_a_numpy_function_the_exercise_forbids_is_refused_however_it_is_named(capsys):
    """zero_pad through `getattr(np, "p" + "ad")` got past the static inspection and earned its points
    (a red-team run, 2026-12-02); inside the call np.pad is a tripwire wherever NumPy keeps it."""
    ns = exec_cells([textwrap.dedent("""
        import numpy as np
        def by_name(image, p):
            return getattr(np, "p" + "ad")(image, p)
        def by_module(image, p):
            import importlib
            return importlib.import_module("numpy.lib._arraypad" + "_impl").pad(image, p)
        """)])
    for name in ("by_name", "by_module"):
        score, out = run("a1.zero_pad", ns[name], capsys=capsys)
        assert score == 0.0 and "called numpy.pad" in out.out, out.out
    assert np.pad(np.ones((1, 1)), 1).shape == (3, 3)     # this process's NumPy is left alone


def test_numpys_own_helpers_behind_a_forbidden_function_are_refused(capsys):
    """NumPy's private helper behind np.pad did zero_pad's work and earned its points (a red-team
    notebook, 2026-12-03): held as a global it is named by the inspection; reached at call time it
    is a tripwire.  The same for np.correlate's multiarray.correlate2 in correlate2d."""
    ns = exec_cells([textwrap.dedent("""
        import importlib
        import numpy as np
        from numpy.lib._arraypad_impl import _pad_simple as simple
        def held(image, p):
            return simple(image, ((p, p), (p, p)), fill_value=0)[0]
        def at_call(image, p):
            impl = importlib.import_module("numpy.lib._arraypad" + "_impl")
            return getattr(impl, "_pad_" + "simple")(image, ((p, p), (p, p)), fill_value=0)[0]
        def by_attribute(image, p):
            return np.lib._arraypad_impl._pad_simple(image, ((p, p), (p, p)), fill_value=0)[0]
        """)])
    assert not ns["__cell_errors__"], ns["__cell_errors__"]
    for name in ("held", "at_call", "by_attribute"):
        assert np.array_equal(ns[name](np.ones((2, 2)), 1), np.pad(np.ones((2, 2)), 1))   # it does the work
        score, out = run("a1.zero_pad", ns[name], capsys=capsys)
        assert score == 0.0 and ("_pad_simple" in out.out or "called numpy.pad" in out.out), (name, out.out)
    from numpy._core import multiarray
    assert np.pad(np.ones((1, 1)), 1).shape == (3, 3) and multiarray.correlate2 is not None   # this process's NumPy


def test_a_graded_function_cannot_hand_its_work_to_a_new_python(capsys, tmp_path):
    """A new Python has a minicnn without tripwires: `subprocess` running minicnn's own kernel earned
    the points (a red-team run, 2026-12-02).  Inside the call starting any program is refused; this
    process, which ran the check, still can."""
    ns = exec_cells([f"SCRATCH = {str(tmp_path)!r}\n" + textwrap.dedent("""
        import os, pickle, subprocess, sys
        CHILD = ("import pickle, sys, minicnn; a = pickle.load(sys.stdin.buffer); "
                 "sys.stdout.buffer.write(pickle.dumps(minicnn.correlate2d(*a, impl='loop')))")
        def via_subprocess(image, kernel, stride, padding):
            done = subprocess.run([sys.executable, "-c", CHILD], input=pickle.dumps((image, kernel, stride, padding)),
                                  capture_output=True, check=True)
            return pickle.loads(done.stdout)
        def via_system(image, kernel, stride, padding):
            import numpy as np, shlex, tempfile
            folder = tempfile.mkdtemp(dir=SCRATCH)
            np.save(folder + "/a.npy", image)
            np.save(folder + "/k.npy", kernel)
            script = (f"import numpy as np, minicnn; np.save({folder!r} + '/o.npy', minicnn.correlate2d("
                      f"np.load({folder!r} + '/a.npy'), np.load({folder!r} + '/k.npy'), {stride}, {padding}, impl='loop'))")
            os.system(f"{shlex.quote(sys.executable)} -c {shlex.quote(script)}")
            return np.load(folder + "/o.npy")
        """)])
    assert not ns["__cell_errors__"], ns["__cell_errors__"]
    for name in ("via_subprocess", "via_system"):
        score, out = run("a1.correlate2d", ns[name], capsys=capsys)
        assert score == 0.0, (name, out.out)
    assert "PermissionError" in run("a1.correlate2d", ns["via_subprocess"], capsys=capsys)[1].out
    image, kernel = np.arange(16.0).reshape(4, 4), np.ones((3, 3))
    for name in ("via_subprocess", "via_system"):   # what each would have earned, run here
        assert np.array_equal(ns[name](image, kernel, 1, 0), minicnn.correlate2d(image, kernel, impl="loop"))


def test_nothing_reaches_stderr_warnings_are_reported_on_stdout(capfd):
    ns = exec_cells([textwrap.dedent("""
        import sys, warnings
        import numpy as np
        from numba import njit
        @njit(parallel=True)
        def helper(image):                 # parallel=True with nothing to parallelise: NumbaPerformanceWarning
            return image[0, 0]
        def output_size(n, k, stride=1, padding=0):
            print("debugging to stderr", file=sys.stderr)
            warnings.warn("a student's own warning")
            helper(np.zeros((2, 2)))
            return (n + 2 * padding - k) // stride + 1
        """)])
    score = check("a1.output_size", ns["output_size"], points=2)
    captured = capfd.readouterr()
    assert score == 2.0
    assert captured.err == ""
    assert "a student's own warning" in captured.out


def test_a_hung_njit_loop_costs_only_its_cases(monkeypatch, capsys):
    monkeypatch.setattr(checks.get_part("a1.correlate2d"), "timeout", 1.5)
    ns = exec_cells(["import numpy as np\nfrom numba import njit\n", textwrap.dedent("""
        @njit
        def correlate2d(image, kernel, stride, padding):
            i = 0
            while image.shape[0] > 0:      # never ends, and ignores KeyboardInterrupt
                i += 1
            return np.zeros((1, 1))
        """)])
    import time
    t0 = time.perf_counter()
    score, out = run("a1.correlate2d", ns["correlate2d"], capsys=capsys)
    assert time.perf_counter() - t0 < 30
    assert score == 0.0
    assert "did not finish within 1.5 s" in out.out and "not run, an earlier case timed out" in out.out


OOB_SCRIPT = textwrap.dedent("""
    import numpy as np
    from numba import njit
    from minicnn.course.checks import check
    @njit
    def output_size(n, k, stride=1, padding=0):
        scratch = np.zeros(2)
        for i in range(100000):           # writes far past the end of `scratch`
            scratch[i] = n
        return (n + 2 * padding - k) // stride + 1
    print("score", check("a1.output_size", output_size, points=2))
""")


def test_out_of_bounds_writes_become_index_errors_with_boundscheck(tmp_path):
    env = {**__import__("os").environ, "NUMBA_BOUNDSCHECK": "1"}
    proc = subprocess.run([sys.executable, "-c", OOB_SCRIPT], capture_output=True, text=True, env=env,
                          cwd=tmp_path, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "IndexError" in proc.stdout and "score 0.0" in proc.stdout
    assert proc.stderr == ""


FRESH_COMPILE_SCRIPT = textwrap.dedent("""
    import numpy as np
    from numba import njit
    from minicnn.course.checks import check
    from minicnn.sandbox import calls

    @njit
    def _pad_core(image, p):
        h, w = image.shape
        out = np.zeros((h + 2 * p, w + 2 * p))
        for i in range(h):
            for j in range(w):
                out[i + p, j + p] = image[i, j]
        return out

    def zero_pad(image, p):     # plain Python around an @njit helper that nothing has compiled yet
        return _pad_core(image, p)

    def with_scipy(image, p):
        import scipy.signal     # noqa: F401
        return image

    def with_importlib(image, p):
        import importlib
        return importlib.import_module("sci" + "py.ndimage").zoom(image, 1)

    print("score", check("a1.zero_pad", zero_pad, points=2))
    for fn in (with_scipy, with_importlib):
        print(fn.__name__, calls.call(fn, (np.ones((2, 2)), 1), arm=lambda: None).status)
""")


def test_a_helper_compiled_for_the_first_time_inside_the_check_is_not_taken_for_scipy(tmp_path):
    """Numba's compiler imports scipy (optionally) the first time it compiles anything in a process.
    A plain-Python function whose @njit helper is first compiled inside the check's child was
    reported as importing scipy and lost its points (seen in a batch: an honest notebook without
    @njit on zero_pad).  The student's own imports of scipy are still refused."""
    proc = subprocess.run([sys.executable, "-c", FRESH_COMPILE_SCRIPT], capture_output=True, text=True,
                          cwd=tmp_path, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "score 2.0" in proc.stdout and "scipy" not in proc.stdout.split("score")[0], proc.stdout
    assert "with_scipy forbidden" in proc.stdout and "with_importlib forbidden" in proc.stdout, proc.stdout
    assert proc.stderr == ""


def test_a_plain_python_convolve2d_gets_an_uncompiled_stand_in():
    """convolve2d without @njit is checked with the grader's correlation standing in for the student's
    correlate2d, uncompiled: a compiled stand-in would be compiled again in every case's child."""
    from minicnn.course import a1_convolution
    ns = exec_cells(["import numpy as np\n", textwrap.dedent("""
        def correlate2d(image, kernel, stride, padding):
            return np.zeros((1, 1))
        def convolve2d(image, kernel, stride=1, padding=0):
            return correlate2d(image, kernel[::-1, ::-1], stride, padding)
        """)])
    adapted = a1_convolution.with_grader_correlate2d(ns["convolve2d"])
    stand_in = adapted.__globals__["correlate2d"]
    assert stand_in is not ns["correlate2d"] and not hasattr(stand_in, "py_func")
    assert check("a1.convolve2d", ns["convolve2d"], points=2) == 2.0


def test_a_crash_in_the_students_code_does_not_kill_the_caller():
    import ctypes

    def segfault():
        ctypes.string_at(0)

    out = calls.call(segfault, (), timeout=10)
    assert out.status == "crash" and "SIGSEGV" in out.error


def test_inputs_are_not_shared_with_the_students_function(good):
    image = np.arange(9.0).reshape(3, 3)

    def mutates(img, kernel, stride, padding):
        img[:] = 0
        return img

    out = calls.call(mutates, (image, np.ones((1, 1)), 1, 0))
    assert out.ok and not out.value.any()
    assert image.sum() == 36  # the caller's array is untouched


def test_show_example_prints_the_slide_beside_the_result(good, capsys):
    checks.show_example("a1.correlate2d", good["correlate2d"], "ferrara-5x5-stride-2")
    out = capsys.readouterr().out
    assert "Zese" in out and "Stride 2 - No Padding" in out and "slide printed" in out


def test_every_part_has_cases_and_reference_values():
    for key in ("a1.output_size", "a1.param_count", "a1.zero_pad", "a1.correlate2d", "a1.convolve2d",
                "a2.conv2d", "a2.dilated", "a2.conv1x1", "a2.max_pool2d", "a2.avg_pool2d", "a2.layer_table",
                "a3.grad_input", "a3.grad_weight", "a3.grad_bias", "a3.max_pool2d_backward",
                "a3.avg_pool2d_backward", "a3.relu_backward", "a3.tanh_backward", "a3.sigmoid_backward"):
        part = checks.get_part(key)
        for hidden in (False, True):
            cases = part.cases(checks.case_rng(key, 3), hidden)
            assert len(cases) >= 4, key
            assert any(c.worked for c in cases) or key.startswith("a3.") and "_backward" in key and "pool" not in key


def test_the_reference_answers_are_minicnns_kernels():
    """A spot check that the expected values are computed, not typed in: they equal minicnn's output."""
    part = checks.get_part("a1.correlate2d")
    for c in part.cases(checks.case_rng(part.key, 0), False):
        np.testing.assert_array_equal(c.expected, minicnn.correlate2d(*c.args))


# --------------------------------------------------------------- assignment 1's trap: an @njit function calling plain Python

CALLS_PLAIN_OUTPUT_SIZE = CORRELATE_SRC.replace(
    "    out_h = (h + 2 * padding - kh) // stride + 1\n    out_w = (w + 2 * padding - kw) // stride + 1\n",
    "    out_h = output_size(h, kh, stride, padding)\n    out_w = output_size(w, kw, stride, padding)\n")


def test_njit_calling_a_plain_function_gets_a_hint_naming_it_and_the_error_once(capsys):
    """The notebook's old trap: a correct correlate2d that calls the (plain Python) output_size
    cannot compile.  The feedback names output_size and says what to do, and the compile error
    is printed once, not once per case."""
    assert CALLS_PLAIN_OUTPUT_SIZE != CORRELATE_SRC
    ns = exec_cells(["import numpy as np\nfrom numba import njit\n",
                     "def output_size(n, k, stride=1, padding=0):\n    return (n + 2 * padding - k) // stride + 1\n",
                     CALLS_PLAIN_OUTPUT_SIZE])
    score = check("a1.correlate2d", ns["correlate2d"], points=4)
    out = capsys.readouterr().out
    assert score == 0.0
    assert out.count("Untyped global name 'output_size'") == 1, out
    assert out.count("hint:") == 1, out
    assert "calls `output_size`, which is not compiled" in out and "Put @njit on `output_size`" in out, out
    assert out.count("compile_error: the same error as in") == out.count("FAIL") - 1 > 3, out
    # and with output_size compiled too, the same correlate2d earns full marks
    fixed = exec_cells(["import numpy as np\nfrom numba import njit\n",
                        "@njit\ndef output_size(n, k, stride=1, padding=0):\n"
                        "    return (n + 2 * padding - k) // stride + 1\n", CALLS_PLAIN_OUTPUT_SIZE])
    assert check("a1.correlate2d", fixed["correlate2d"], points=4) == 4.0, capsys.readouterr().out


def test_an_njit_function_using_an_untypeable_global_gets_a_hint_naming_it(capsys):
    ns = exec_cells(["import numpy as np\nfrom numba import njit\nOFFSETS = {'a': 1}\n",
                     "@njit\ndef zero_pad(image, p):\n    q = OFFSETS['a']\n"
                     "    return np.zeros((image.shape[0] + 2 * p, image.shape[1] + 2 * p)) * q\n"])
    check("a1.zero_pad", ns["zero_pad"], points=2)
    out = capsys.readouterr().out
    assert "uses the global `OFFSETS` (a dict)" in out, out
    assert out.count("hint:") == 1, out


def test_compiled_point_line_does_not_deny_a_decorator_that_is_there(capsys):
    """A compiled but broken function loses the point with a line that says it *is* compiled
    (it used to read "`f` is compiled with @njit: no"); an uncompiled one is told it is not."""
    broken = exec_cells(["import numpy as np\nfrom numba import njit\n",
                         "@njit\ndef correlate2d(image, kernel, stride, padding):\n    return np.zeros((1, 1))\n"])
    assert check_compiled("a1.correlate2d", broken["correlate2d"], points=1) == 0.0
    out = capsys.readouterr().out
    assert "is compiled with @njit: no" not in out, out
    assert "earns the point for being compiled with @njit: no" in out and "it is compiled, but it passes only" in out
    plain = exec_cells(["import numpy as np\n",
                        "def correlate2d(image, kernel, stride, padding):\n    return np.zeros((1, 1))\n"])
    assert check_compiled("a1.correlate2d", plain["correlate2d"], points=1) == 0.0
    out = capsys.readouterr().out
    assert "it is a plain Python function, not compiled" in out and "it is compiled" not in out, out


def _solution_cell(assignment, grade_id):
    import json
    import pathlib
    nb = json.loads((pathlib.Path(__file__).parents[2] / "solutions" / assignment / f"{assignment}.ipynb").read_text())
    for cell in nb["cells"]:
        if cell.get("metadata", {}).get("nbgrader", {}).get("grade_id") == grade_id:
            return "".join(cell["source"])
    raise KeyError(grade_id)


def test_conv_backward_that_overwrites_gets_the_accumulate_hint(capsys):
    """grad_x written with `=` instead of `+=` (issue 16): a specific hint, not the generic one."""
    src = _solution_cell("a3_backprop", "conv2d_backward")
    old = "grad_xp[n, c, i * stride + u, j * stride + v] += g * w"
    assert src.count(old) == 1
    ns = exec_cells(["import numpy as np\nfrom numba import njit\n", src.replace(old, old.replace("+=", "="))])
    score = check("a3.grad_input", ns["conv2d_backward"], points=3)
    out = capsys.readouterr().out
    assert score < 3.0
    assert "`=` overwrites: an input cell under several windows" in out, out
    assert "every product xp[n, c, i*s+u, j*s+v]" not in out, out


def test_accuracy_at_chance_points_to_sgd_step_not_the_backward_passes():
    """A network that never trained (sgd_step rebinding a name leaves the parameters as they
    were) sits at chance: the hint names sgd_step and the loss at ln 10, not the backward passes."""
    from minicnn.course import a5_lenet
    level_case = types.SimpleNamespace(args=(None,), expected=(0.9, None, None, None))
    at_chance = a5_lenet.accuracy_mismatch(0.9, 0.1)
    hint = a5_lenet._accuracy_hint(level_case, None, at_chance)
    assert "ln 10" in hint and "sgd_step" in hint and "gradcheck" not in hint
    half = a5_lenet.accuracy_mismatch(0.9, 0.5)
    assert "gradcheck" in a5_lenet._accuracy_hint(level_case, None, half)


# ----------------------------------------------------------------------------- issue 16: feedback fixes

def _notebook_cells(assignment, edits=(), cell=None):
    """The solution's code cells (setup and solutions, not the test cells nor the try-it and training
    runs), with `edits` applied to solution cell `cell`, exec'd into a fresh namespace."""
    import contextlib
    import io
    import json
    import pathlib
    nb = json.loads((pathlib.Path(__file__).parents[2] / "solutions" / assignment / f"{assignment}.ipynb").read_text())
    sources = []
    for c in nb["cells"]:
        meta = c.get("metadata", {}).get("nbgrader", {})
        src = "".join(c["source"])
        if c["cell_type"] != "code" or meta.get("grade") or src.startswith("if not AUTOGRADING"):
            continue
        if meta.get("grade_id") in ("run_training", "show_lenet"):
            continue
        if meta.get("grade_id") == cell:
            for old, new in edits:
                assert src.count(old) == 1, old
                src = src.replace(old, new)
        sources.append(src)
    with contextlib.redirect_stdout(io.StringIO()):
        return exec_cells(sources)


def test_max_pool_window_at_i_times_k_is_caught_by_public_cases_with_the_window_hint(capsys):
    """The windows placed at i*kernel_size (max-pool-wrong-window) used to pass every public case:
    now public cases with stride != kernel_size catch it, and the overlapping one's IndexError gets
    the window-start hint instead of none."""
    ns = _notebook_cells("a2_volumes_pooling", [("x[n, c, i * stride + u, j * stride + v]",
                                                 "x[n, c, i * k + u, j * k + v]")], "max_pool2d")
    score = check("a2.max_pool2d", ns["max_pool2d"], points=3)
    out = capsys.readouterr().out
    assert score < 3.0, out
    assert "stride 3, kernel 2, several windows per row" in out.split("FAIL ", 1)[1], out
    assert "IndexError" in out and "starts at row i*stride and column j*stride (not i*kernel_size)" in out, out
    hidden = check("a2.max_pool2d", ns["max_pool2d"], points=3, seed=4242)
    out = capsys.readouterr().out
    assert hidden < 3.0
    block = out.split("error: IndexError (the message is not shown for hidden cases)", 1)[1]
    assert block.lstrip().startswith("hint: an index ran off the input"), out   # the fixed hint, hidden case too


def test_avg_pool_backward_window_at_i_times_k_gets_the_window_hint_for_its_index_error(capsys):
    ns = _notebook_cells("a3_backprop", [("grad_x[n, c, i * stride + u, j * stride + v] += share",
                                          "grad_x[n, c, i * k + u, j * k + v] += share")], "avg_pool2d_backward")
    score = check("a3.avg_pool2d_backward", ns["avg_pool2d_backward"], points=2)
    out = capsys.readouterr().out
    assert score < 2.0
    assert "error: IndexError" in out and "hint: an index ran off the input" in out, out


def test_conv_padding_off_by_one_is_recognised_where_padding_minus_one_is_no_convolution(capsys):
    """padding + 1 is recognised on every case where it gives a result, even when padding - 1 would
    be no valid convolution (it used to discard the whole recognised mistake there)."""
    from minicnn.course import a2_volumes_pooling
    ns = _notebook_cells("a2_volumes_pooling", [("p = padding\n", "p = padding + 1\n")], "conv2d")
    rng = np.random.default_rng(3)
    # a kernel as large as the padded input, padding 1: padding 0 would be no valid convolution
    x, w, b = rng.integers(-3, 4, (1, 2, 3, 4)).astype(float), rng.integers(-2, 3, (2, 2, 5, 6)).astype(float), \
        np.array([1.0, -1.0])
    with pytest.raises(ValueError):
        minicnn.conv2d(x, w, b, 1, 0)
    case = a2_volumes_pooling._conv_case("the kernel as large as the padded input", x, w, b, 1, 1)
    res = checks.run_part(checks.get_part("a2.conv2d"), ns["conv2d"], cases=[case])
    assert res.passed == 0
    assert "       hint: padding off by one" in res.lines, res.lines


@pytest.mark.parametrize("cell,edits,part,hint", [
    ("conv_layer", [('"w": rng.uniform(-limit, limit, shape).astype(np.float32)', '"w": np.zeros(shape, np.float32)')],
     ("a5.conv_layer", "Conv2D"), "hint: draw the weights at random from rng"),
    ("small_layers", [("minicnn.avg_pool2d_backward(grad_out, self.x, self.k, self.stride)",
                       "minicnn.avg_pool2d_backward(grad_out, self.x, self.k, 1)")],
     ("a5.pool_layer", "AvgPool2D"), "hint: backward must call minicnn's backward with the settings the forward used"),
])
def test_a5_layer_mistakes_that_had_no_hint_line_get_one(cell, edits, part, hint, capsys):
    ns = _notebook_cells("a5_lenet", edits, cell)
    score = check(part[0], ns[part[1]], points=1)
    out = capsys.readouterr().out
    assert score < 1.0 and hint in out, out


# ----------------------------------------------------------------------------- assignment 5: sgd_step and train

SGD_LINE = "            layer.params[name] -= lr * layer.grads[name]\n"


@pytest.mark.parametrize("edits,hint", [
    ([(SGD_LINE, "            p = layer.params[name]\n            p = p - lr * layer.grads[name]\n")],
     "`p = p - lr * g` only rebinds the local name p"),
    ([("-= lr *", "+= lr *")], "the sign is wrong: p += lr * grad climbs the loss"),
    ([("-= lr * layer.grads", "-= layer.grads")], "multiply it by the learning rate"),
    ([(SGD_LINE, SGD_LINE + "        return\n")], "some layers were updated and others not"),
])
def test_a_wrong_sgd_step_loses_its_points_with_its_hint_and_costs_train_nothing(edits, hint, capsys):
    """sgd_step is checked on the grader's layers; while train is checked the grader's sgd_step
    stands in for the student's, so the same mistake is charged once."""
    ns = _notebook_cells("a5_lenet", edits, "training")
    for seed in (0, 4242):
        assert check("a5.sgd_step", ns["sgd_step"], points=1, seed=seed) < 1.0
        out = capsys.readouterr().out
        assert hint in out, out
        assert check("a5.train", ns["train"], points=1, seed=seed) == 1.0, capsys.readouterr().out
    assert ns["sgd_step"] is not None and "sgd_step" in ns   # the student's own is back after the train check


def test_the_solutions_sgd_step_and_train_get_full_marks(capsys):
    ns = _notebook_cells("a5_lenet")
    for seed in (0, 4242):
        assert check("a5.sgd_step", ns["sgd_step"], points=1, seed=seed) == 1.0, capsys.readouterr().out
        assert check("a5.train", ns["train"], points=1, seed=seed) == 1.0, capsys.readouterr().out


@pytest.mark.parametrize("edits,text,hint", [
    ([("            net.backward(minicnn.softmax_cross_entropy_backward(logits, y[batch]))\n", "")],
     "the parameters are all still zero (where they started): the loss stays at ln 10 = 2.30",
     "nothing was learned: for every batch, train must run net.forward"),
    ([("for start in range(0, len(x), batch_size)", "for start in range(0, batch_size, batch_size)")],
     "expected one per batch: epochs * ceil(N / batch_size)", "append one loss (a float) per batch"),
    ([("losses.append(float(minicnn.softmax_cross_entropy(logits, y[batch])))",
       "losses.append(float(minicnn.softmax_cross_entropy(logits, y[batch])) * len(batch))")],
     "with the classifier's zero weights it is ln 10", "the batch's mean loss, before the step"),
])
def test_a_wrong_train_loses_its_points_with_a_diagnostic(edits, text, hint, capsys):
    ns = _notebook_cells("a5_lenet", edits, "training")
    assert check("a5.train", ns["train"], points=1) == 0.0
    out = capsys.readouterr().out
    assert text in out and hint in out, out
    assert check("a5.sgd_step", ns["sgd_step"], points=1) == 1.0


def test_train_is_judged_by_the_loss_the_grader_computes_not_the_losses_it_reports(capsys):
    """A train that reports a falling loss (the right count, ln 10 first) without training anything
    earns nothing: the grader computes the trained classifier's loss itself."""
    ns = exec_cells(["import math\n", textwrap.dedent("""\
        def train(net, x, y, epochs, batch_size, lr, rng):
            steps = epochs * -(-len(x) // batch_size)
            return [math.log(10) * (1 - i / steps) for i in range(steps)]
        """)])
    assert check("a5.train", ns["train"], points=1) == 0.0
    out = capsys.readouterr().out
    assert "the loss stays at ln 10" in out, out
