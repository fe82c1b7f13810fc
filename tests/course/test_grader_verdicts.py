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


def test_object_mode_device_functions_and_rebinding_do_not_count():
    cells = _cells("from numba import njit, jit, cuda\n",
                   "@njit(forceobj=True)\ndef a(x):\n    return x\n\n@jit(nopython=False)\ndef b(x):\n    return x\n",
                   "@cuda.jit(device=True)\ndef d(x):\n    return x\n\nopts = {}\n@njit(**opts)\ndef e(x):\n    return x\n",
                   "@njit\ndef f(x):\n    return x\n\ndef plain(x):\n    return x\n\nf = plain\n",
                   "@njit\ndef g(x):\n    return x\n\ndef g(x):\n    return x\n")
    assert plan.numba_compiled(cells, "njit") == set()
    assert plan.numba_compiled(cells, "cuda") == set()


def test_layer_tripwires_reach_private_methods_and_every_submodule():
    """The a5 tripwires: `Conv2D(...)._forward(x)` (a private method, defined in minicnn.layers.conv)
    was not blocked once the layers became a package; now it is, while the functional kernels
    that assignment 5 builds on stay usable."""
    import subprocess
    import sys

    code = (
        "import numpy as np, minicnn\n"
        "from minicnn.layers import Conv2D\n"
        "from minicnn.course import tripwires\n"
        "from minicnn.sandbox.calls import ForbiddenCall\n"
        "layer = Conv2D(1, 2, 3)\n"
        "x = np.zeros((1, 1, 5, 5))\n"
        "tripwires.arm('layers')\n"
        "blocked = []\n"
        "for what, f in [('_forward', lambda: layer._forward(x)), ('forward', lambda: layer.forward(x)),\n"
        "                ('call', lambda: layer(x)),\n"
        "                ('conv module', lambda: minicnn.layers.conv.Conv2D(1, 2, 3)._forward(x))]:\n"
        "    try:\n"
        "        f()\n"
        "    except ForbiddenCall:\n"
        "        blocked.append(what)\n"
        "print(blocked)\n"
        "print(minicnn.conv2d(x, np.ones((2, 1, 3, 3))).shape)\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    lines = proc.stdout.split("\n")
    assert lines[0] == "['_forward', 'forward', 'call', 'conv module']", proc.stdout
    assert lines[1] == "(1, 2, 3, 3)"


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
