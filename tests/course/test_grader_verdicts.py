"""Verdicts the grader reaches in its own process, from the source, that nothing in the student's
process can patch (issue 13, finding 3: a no-op `njit` of the student's own plus a patched
`compiled_status` in the runner earned every compiled point)."""
from __future__ import annotations

import pytest

from minicnn.grader import plan


def _cells(*sources):
    return [{"id": str(i), "trusted": False, "source": s} for i, s in enumerate(sources)]


def test_numba_decorators_imported_from_numba_count():
    cells = _cells("from numba import njit, cuda\nimport numba as nb\nimport numba\n",
                   "@njit\ndef a(x):\n    return x\n\n@nb.njit(cache=True)\ndef b(x):\n    return x\n",
                   "@numba.jit(nopython=True)\ndef c(x):\n    return x\n\n@cuda.jit\ndef k(x):\n    pass\n")
    assert plan.numba_compiled(cells, "njit") == {"a", "b", "c"}
    assert plan.numba_compiled(cells, "cuda") == {"k"}


def test_a_decorator_of_the_students_own_does_not_count():
    noop = _cells("def njit(f):\n    return f\n", "@njit\ndef a(x):\n    return x\n")
    assert plan.numba_compiled(noop, "njit") == set()
    shadow = _cells("from numba import njit\n", "njit = lambda f: f\n", "@njit\ndef a(x):\n    return x\n")
    assert plan.numba_compiled(shadow, "njit") == set()
    elsewhere = _cells("from mylib import njit\n@njit\ndef a(x):\n    return x\n")
    assert plan.numba_compiled(elsewhere, "njit") == set()
    never_imported = _cells("@njit\ndef a(x):\n    return x\n")   # bound by exec, builtins, ...: not trusted
    assert plan.numba_compiled(never_imported, "njit") == set()
    patched = _cells("import numba\nnumba.njit = lambda f: f\n", "@numba.njit\ndef a(x):\n    return x\n")
    # numba.njit replaced through the attribute: `numba` is still bound by its import alone, so the
    # source check passes; the static flags report the replacement and the runner's report decides
    assert "replaces numba.njit (cell 0)" in plan.static_flags(patched)


@pytest.mark.parametrize("attack,reason", [
    # numba's decorator replaced under an alias, then imported again under its own name (2026-12-02:
    # with the runner's compiled_status patched too, plain Python earned every compiled point)
    ("import numba as _nb\n_nb.njit = lambda f: f\nfrom numba import njit\n", "assigns to _nb.njit"),
    ("from numba import njit\nimport importlib\nimportlib.import_module('numba').njit = lambda f: f\n",
     "uses .import_module"),
    ("import sys\nsys.modules['numba'].njit = lambda f: f\n", "uses .modules"),
    ("import numba\nsetattr(numba, 'njit', lambda f: f)\n", "uses setattr"),
    ("import numba\nvars(numba)['njit'] = lambda f: f\n", "uses vars"),
    # the compiled function swapped for its Python original without an assignment the parser sees
    ("", "uses globals"),
    ("exec('a = a.py_func')\n", "uses exec"),
    ("import __main__\n__main__.a = len\n", "assigns to __main__.a"),
    # red-team notebooks of 2026-12-03: a dunder name built from strings, and compiled code that runs
    # Python inside (each earned every compiled point with plain Python doing the work)
    ("import numba\ngetattr(numba, '__di' + 'ct__').update(njit=lambda f: f)\n", "uses getattr with '__di' + 'ct__'"),
    ("import numba\ngetattr(numba, '__dict__')['njit'] = lambda f: f\n", "uses getattr with '__dict__'"),
    ("import numba\n@numba.njit\ndef b(x):\n    with numba.objmode(y='float64'):\n        y = float(x)\n"
     "    return y\n", "uses .objmode"),
    ("from numba import objmode as om\n@njit\ndef b(x):\n    with om(y='float64'):\n        y = float(x)\n"
     "    return y\n", "uses objmode"),
    ("import operator\nf = operator.attrgetter('__globals__')\n", "uses .attrgetter"),
])
def test_names_or_modules_changed_at_run_time_leave_nothing_compiled(attack, reason):
    swap = "globals()['a'] = a.py_func\n" if reason == "uses globals" else ""
    cells = _cells("from numba import njit\n", attack, "@njit\ndef a(x):\n    return x\n", swap)
    reasons = plan.run_time_rebinding(cells)
    assert any(r.startswith(reason) for r in reasons), reasons


def test_ordinary_code_keeps_its_compiled_verdict():
    cells = _cells("import numpy as np\nfrom numba import njit\nimport matplotlib.pyplot as plt\n",
                   "@njit\ndef a(x):\n    out = np.zeros(3)\n    out[0] = x\n    out[1:] += 1\n    return out\n",
                   "plt.rcParams['figure.figsize'] = (4, 3)\nclass Box:\n    def __init__(self):\n"
                   "        self.v = 1\nb = Box()\nb.v += 1\nd = {}\nd['k'] = a(1.0)\n"
                   "size = getattr(b, 'v', 0) + getattr(np, 'float32')(1)\n")
    assert plan.run_time_rebinding(cells) == []
    assert plan.numba_compiled(cells, "njit") == {"a"}
    # the grader's own trusted cells are not the student's: what they do is not held against anyone
    trusted = [{"id": "setup", "trusted": True, "source": "import sys\nsys.modules['x'] = None\n"}] + cells
    assert plan.run_time_rebinding(trusted) == []


def test_a_function_rebound_from_inside_another_is_not_counted():
    cells = _cells("from numba import njit\n", "@njit\ndef a(x):\n    return x\n",
                   "def swap():\n    global a\n    a = len\nswap()\n")
    assert plan.numba_compiled(cells, "njit") == set()


def test_object_mode_device_functions_and_rebinding_do_not_count():
    cells = _cells("from numba import njit, jit, cuda\n",
                   "@njit(forceobj=True)\ndef a(x):\n    return x\n\n@jit(nopython=False)\ndef b(x):\n    return x\n",
                   "@cuda.jit(device=True)\ndef d(x):\n    return x\n\nopts = {}\n@njit(**opts)\ndef e(x):\n    return x\n",
                   "@njit\ndef f(x):\n    return x\n\ndef plain(x):\n    return x\n\nf = plain\n",
                   "@njit\ndef g(x):\n    return x\n\ndef g(x):\n    return x\n")
    assert plan.numba_compiled(cells, "njit") == set()
    assert plan.numba_compiled(cells, "cuda") == set()


def _armed(mode: str, setup: str, calls: dict, after: str = "") -> list:
    """In a fresh process: `setup`, tripwires.arm(mode), then each of `calls` ({name: expression});
    returns its output lines: "name blocked" or "name NOT BLOCKED", then what `after` prints."""
    import subprocess
    import sys

    code = ("import importlib, numpy as np, minicnn\n"
            "from minicnn.course import tripwires\n"
            "from minicnn.sandbox.calls import ForbiddenCall\n"
            f"{setup}tripwires.arm({mode!r})\n"
            f"for what, f in [{', '.join(f'({k!r}, lambda: {v})' for k, v in calls.items())}]:\n"
            "    try:\n"
            "        f()\n"
            "        print(what, 'NOT BLOCKED')\n"
            "    except ForbiddenCall:\n"
            "        print(what, 'blocked')\n"
            f"{after}")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.stdout.splitlines()


def test_layer_tripwires_reach_private_methods_and_every_submodule():
    """The a5 tripwires: `Conv2D(...)._forward(x)` (a private method, defined in minicnn.layers.conv)
    was not blocked once the layers became a package; now it is, while the functional kernels
    that assignment 5 builds on stay usable."""
    calls = {"_forward": "layer._forward(x)", "forward": "layer.forward(x)", "call": "layer(x)",
             "conv module": "minicnn.layers.conv.Conv2D(1, 2, 3)._forward(x)"}
    lines = _armed("layers", "from minicnn.layers import Conv2D\nlayer = Conv2D(1, 2, 3)\nx = np.zeros((1, 1, 5, 5))\n",
                   calls, "print(minicnn.conv2d(x, np.ones((2, 1, 3, 3))).shape)\n")
    assert lines == [f"{name} blocked" for name in calls] + ["(1, 2, 3, 3)"], lines


def test_kernel_tripwires_reach_activations_losses_layers_and_the_package_reexports():
    """Found by a red-team run (2026-12-02): under the kernel assignments' tripwires, a3's
    tanh_backward taken from `importlib.import_module("minicnn." + "activations")` and a1's
    param_count read off a minicnn Conv2D layer's weights earned their points."""
    calls = {"act.tanh_backward": "act.tanh_backward(y, y)", "act.relu_backward": "act.relu_backward(y, y)",
             "pkg.sigmoid": "pkg.sigmoid(y)", "pkg.tanh": "pkg.tanh(y)", "pkg.relu": "pkg.relu(y)",
             "losses": "losses.softmax_cross_entropy(np.ones((2, 3)), np.array([0, 1]))",
             "Conv2D": "layers.Conv2D(3, 4, 5).params['w'].size"}
    setup = ("act = importlib.import_module('minicnn.' + 'activations')\npkg = importlib.import_module('minicnn')\n"
             "layers = importlib.import_module('minicnn.' + 'layers')\n"
             "losses = importlib.import_module('minicnn.' + 'losses')\ny = np.full(3, 0.5)\n")
    lines = _armed("kernels", setup, calls)
    assert lines == [f"{name} blocked" for name in calls], lines


def test_replies_are_bounded_before_reading_and_long_cells_travel_to_the_runner():
    """Findings 7 and 8: a 1.2 MB code cell reaches the runner (the grader's own frame has no
    string limit); a reply far larger than the part's result is refused before it is read."""
    import os

    import numpy as np

    from minicnn.grader import remote
    from minicnn.sandbox import wire

    import threading

    def send(fd, msg):
        # a pipe holds 64 KiB: the frame is written from a thread while this one reads it
        t = threading.Thread(target=wire.write_frame, args=(fd, msg), daemon=True)
        t.start()
        return t

    r, w = os.pipe()
    try:
        cell = "x = '" + "a" * 1_200_000 + "'\n"
        t = send(w, {"cells": [{"id": "1", "source": cell}]})
        assert wire.read_frame(r, max_str=None)["cells"][0]["source"] == cell
        t.join(60)
        wire.write_frame(w, {"value": np.zeros(2_000)})             # 16 KB of result: fits the pipe
        with pytest.raises(wire.WireError, match="over the limit of 1000"):
            wire.read_frame(r, max_size=1000)                       # refused from the length alone
    finally:
        os.close(r)
        os.close(w)
    small = (np.zeros((1, 1, 8, 8)), np.zeros((2, 1, 3, 3)), 1, 0)
    assert remote.result_bound(small) < 5 << 20                      # a 200 MiB reply is refused
    assert remote.result_bound(small) > 64 * 2 * 1 * 8 * 8 * 8       # any real result fits


def test_the_home_is_a_size_capped_copy():
    """Finding 9: the sandbox's home is a tmpfs of limits.home_mb (the working folder copied in)."""
    from pathlib import Path

    from minicnn.sandbox import isolation

    cmd = isolation.bwrap_command("bwrap", Path("/tmp/x"), ["python"], {}, isolation.Limits(home_mb=77), ())
    i = cmd.index("/home/student")
    assert cmd[i - 1] == "--tmpfs" and cmd[i - 3:i - 1] == ["--size", str(77 << 20)]
    assert ["--bind", "/tmp/x", "/home/student"] != cmd[i - 2:i + 1] and "--bind" not in cmd
