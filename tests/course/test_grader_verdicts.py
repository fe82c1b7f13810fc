"""Verdicts the grader reaches in its own process, from the source, that nothing in the student's
process can patch (issue 13, finding 3: a no-op `njit` of the student's own plus a patched
`compiled_status` in the runner earned every compiled point)."""
from __future__ import annotations

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
