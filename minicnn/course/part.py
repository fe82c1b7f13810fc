"""What a graded part is: its cases, how a result is compared, and what a check returns.

A `Part` names the student's function in the notebook and how to check it; its `cases(rng,
hidden)` gives the `Case`s (inputs and the reference answer, computed by minicnn's kernels),
drawn from `case_rng(key, seed)`.  `compare_arrays` / `compare_exact` turn a result into None
(right) or a mismatch record; `AnyOf` lists the several results one known mistake can give.
A check's outcome is a `Result`.  The assignment modules (a1_convolution ... a5_lenet) build
their parts from these; nothing here runs a student's function.
"""
from __future__ import annotations

import zlib
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from ..sandbox.wire import Other
from .inspection import LIBRARIES

PUBLIC_SEED = 0
CASE_TIMEOUT = 10.0  # seconds for one call of the student's function


@dataclass
class Case:
    """One call of the student's function and the reference answer."""

    label: str                  # shown to the student: a citation, or "case 3 (stride larger than the kernel)"
    args: tuple
    expected: object
    describe: str = ""          # shapes and settings, safe to show for hidden cases
    hidden: bool = False
    worked: bool = False        # a lecture's worked example
    note: str = ""              # extra context (e.g. what the slide printed wrongly)
    pick: Callable | None = None  # selects the graded piece of the result (e.g. grad_x of a tuple)
    pick_name: str = ""
    alternatives: dict = field(default_factory=dict)  # mistake -> callable giving what that mistake returns
    show_inputs: bool = True    # print the inputs when this case fails (public cases only)
    example_id: str = ""        # the catalogue id, for worked examples


@dataclass
class Part:
    """A graded part: the function's name in the notebook and how to check it."""

    key: str
    func: str
    title: str
    cases: Callable[[np.random.Generator, bool], list]  # (rng, hidden) -> [Case]
    njit: bool = False
    forbidden: tuple = LIBRARIES
    allowed_modules: tuple = ()
    numpy_functions: tuple = ()
    tripwires: object = True            # True/"kernels" or "layers": what the call may not use (tripwires.py)
    compare: Callable | None = None     # (expected, got) -> None or mismatch text; default: arrays
    hint: Callable | None = None        # (case, got, mismatch) -> str or None
    error_hint: Callable | None = None  # (case, error text) -> str or None: a hint for a call that raised
    #                                     (fixed text only: it is shown for hidden cases too)
    timeout: float = CASE_TIMEOUT
    adapter: Callable | None = None     # turns what the student wrote (a class, a network) into a callable
    compiled_kind: str = "njit"         # what check_compiled asks for: "njit" or "cuda"
    forbidden_attrs: tuple = ()         # attribute names that count as forbidden when a minicnn module is used
    fork: Callable | bool = True        # run calls in a forked child (False, or a function deciding per run)
    display: Callable | None = None     # what of the result to print (e.g. drop a launch record)
    kernel: bool = False                # `func` is a @cuda.jit kernel that the adapter launches: the batch
    #                                     grader requires its source to carry numba's cuda.jit decorator


# ----------------------------------------------------------------------------- comparing

def compare_arrays(expected, got, rtol=1e-6, atol=1e-6):
    """None when got matches expected; otherwise a dict describing the mismatch."""
    if isinstance(got, Other):
        return {"kind": "type", "text": f"returned {got!r}, which cannot be checked: expected an array"}
    if got is None:
        return {"kind": "none", "text": "returned None (is there a `return` at the end?)"}
    if isinstance(got, tuple) and not isinstance(expected, tuple):
        return {"kind": "type", "text": f"returned a tuple of {len(got)} values, expected one array"}
    try:
        g = np.asarray(got, dtype=np.float64)
    except (TypeError, ValueError):
        return {"kind": "type", "text": f"returned a {type(got).__name__}, expected an array"}
    e = np.asarray(expected, dtype=np.float64)
    if g.shape != e.shape:
        return {"kind": "shape", "text": f"expected shape {e.shape}, got {g.shape}", "got": g}
    if np.isnan(g).any() and not np.isnan(e).any():
        i = tuple(int(v) for v in np.argwhere(np.isnan(g))[0])
        return {"kind": "nan", "text": f"the result contains NaN (first at {list(i)}): a cell never written? "
                                       "np.empty leaves garbage; start from np.zeros", "got": g}
    bad = ~np.isclose(g, e, rtol=rtol, atol=atol)
    if bad.any():
        i = tuple(int(v) for v in np.argwhere(bad)[0])
        return {"kind": "values", "got": g, "count": int(bad.sum()), "size": int(bad.size),
                "text": f"shape {g.shape} is right, but {int(bad.sum())} of {bad.size} values are wrong; "
                        f"first at {list(i)}: expected {e[i]:.6g}, got {g[i]:.6g}"}
    return None


def compare_exact(expected, got):
    if isinstance(got, Other):
        return {"kind": "type", "text": f"returned {got!r}, which cannot be checked: expected {expected!r}"}
    if isinstance(expected, (int, np.integer)) and not isinstance(expected, bool):
        if isinstance(got, (bool, np.bool_)) or not isinstance(got, (int, np.integer, float, np.floating)):
            return {"kind": "type", "text": f"returned {got!r} ({type(got).__name__}), expected an int"}
        if isinstance(got, (float, np.floating)):
            if float(got) == expected:
                return {"kind": "type", "text": f"returned {got!r}, a float: the size of an array is an int "
                                                "(use // for floor division, or int())"}
            return {"kind": "values", "text": f"expected {expected}, got {got!r}"}
    if got != expected:
        return {"kind": "values", "text": f"expected {expected!r}, got {got!r}"}
    return None


class AnyOf(list):
    """Several results one mistake can produce (e.g. padding off by one either way)."""


def matches(got, alternative) -> bool:
    """Does `got` equal what a known mistake would return?"""
    if alternative is None:
        return False
    if isinstance(alternative, AnyOf):
        return any(matches(got, a) for a in alternative)
    try:
        if isinstance(alternative, np.ndarray) or isinstance(got, np.ndarray):
            g = np.asarray(got, dtype=np.float64)
            a = np.asarray(alternative, dtype=np.float64)
            return g.shape == a.shape and bool(np.allclose(g, a, rtol=1e-6, atol=1e-6))
        return got == alternative
    except Exception:  # noqa: BLE001 - an alternative that does not apply to this case
        return False


# ----------------------------------------------------------------------------- formatting

def fmt_array(a, limit=64) -> str:
    a = np.asarray(a)
    if a.size > limit:
        return f"array of shape {a.shape}"
    if a.ndim == 0:
        return f"{a.item():g}"
    body = np.array2string(a, precision=4, suppress_small=True, separator=", ",
                           formatter={"float_kind": lambda v: f"{v:g}"}, max_line_width=100)
    return body.replace("\n", "\n         ")


def fmt_value(v) -> str:
    if isinstance(v, np.ndarray):
        return fmt_array(v)
    if isinstance(v, (list, tuple)) and len(v) > 0 and all(isinstance(r, (list, tuple)) for r in v):
        return "\n         " + "\n         ".join(repr(tuple(r)) for r in v)
    return repr(v)


def shape_of(v):
    return tuple(np.shape(v))


# ----------------------------------------------------------------------------- results

@dataclass
class Result:
    part: str
    passed: int
    total: int
    score: float
    points: float
    lines: list
    forbidden: list
    all_not_implemented: bool
    hidden_passed: int = 0   # of the hidden cases (a hidden seed's run): how many passed, of how many
    hidden_total: int = 0

    @property
    def ok(self) -> bool:
        return self.total > 0 and self.passed == self.total and not self.forbidden


def case_rng(part_key: str, seed: int) -> np.random.Generator:
    """The generator of a part's random cases: one stream per (part, seed), the same on every machine."""
    return np.random.default_rng([zlib.crc32(part_key.encode()), int(seed)])
