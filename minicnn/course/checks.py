"""The checks that the course notebooks' test cells call.

A test cell in an assignment reads

    from minicnn.course.checks import check
    check("a1.correlate2d", correlate2d, points=4)

and, in the instructor's version, the same line with a hidden seed (`seed=...`) inside
`### BEGIN HIDDEN TESTS`.  `check` runs the student's function on

- the lectures' worked examples (from minicnn.examples: the catalogue is the one source
  of the numbers, never re-typed), each cited by lecture, author and slide; and
- seeded random cases that always include the edges: kernel as large as the input,
  stride larger than the kernel, 'same' padding, non-square inputs and kernels, batches;

compares each result with minicnn's reference kernels, prints one feedback line per case
(what failed, what was expected, what came back, and a hint that fits the mistake), and
returns the partial credit, `points * passed / total`, as the cell's value: nbgrader
reads a number shown by a test cell as its score.  Nothing is ever written to stderr
(nbgrader scores a test cell with any stderr output 0): warnings raised while the
student's code runs are reported on stdout instead.

A function that hands the work to minicnn's own kernel, torch, scipy, ... scores 0 for
that part, with the reason.  `check_compiled` gives the points for "is it @njit" only to
a compiled function that also passes the lecture's examples, so a stub scores 0 there too.
Hidden cases are described (their shapes and settings, the first wrong value) but their
inputs are never printed in full.
"""
from __future__ import annotations

import math
import zlib
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from . import inspection, sandbox, wire

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
    forbidden: tuple = inspection.LIBRARIES
    allowed_modules: tuple = ()
    numpy_functions: tuple = ()
    tripwires: object = True            # True/"kernels", "layers" or False: see sandbox.call
    compare: Callable | None = None     # (expected, got) -> None or mismatch text; default: arrays
    hint: Callable | None = None        # (case, got, mismatch) -> str or None
    timeout: float = CASE_TIMEOUT
    adapter: Callable | None = None     # turns what the student wrote (a class, a network) into a callable
    compiled_kind: str = "njit"         # what check_compiled asks for: "njit" or "cuda"
    forbidden_attrs: tuple = ()         # attribute names that count as forbidden when a minicnn module is used
    fork: Callable | bool = True        # run calls in a forked child (False, or a function deciding per run)
    display: Callable | None = None     # what of the result to print (e.g. drop a launch record)


PARTS: dict[str, Part] = {}


def register(part: Part) -> Part:
    PARTS[part.key] = part
    return part


def _parts():
    from . import parts  # noqa: F401 - registers every part on import
    return PARTS


def get_part(key: str) -> Part:
    table = _parts()
    if key not in table:
        raise KeyError(f"unknown part {key!r}; known parts: {', '.join(sorted(table))}")
    return table[key]


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


# ----------------------------------------------------------------------------- comparing

def compare_arrays(expected, got, rtol=1e-6, atol=1e-6):
    """None when got matches expected; otherwise a dict describing the mismatch."""
    if isinstance(got, wire.Other):
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
    if isinstance(got, wire.Other):
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


# ----------------------------------------------------------------------------- running

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

    @property
    def ok(self) -> bool:
        return self.total > 0 and self.passed == self.total and not self.forbidden


def _case_rng(part_key: str, seed: int) -> np.random.Generator:
    return np.random.default_rng([zlib.crc32(part_key.encode()), int(seed)])


def _floor2(x: float) -> float:
    return math.floor(x * 100 + 1e-9) / 100


def _resolve_hint(part: Part, case: Case, got, mismatch) -> str | None:
    for name, alt in case.alternatives.items():
        try:
            value = alt() if callable(alt) else alt
        except Exception:  # noqa: BLE001 - the alternative is not defined for this case
            continue
        if matches(got, value):
            return name
    if part.hint is not None:
        return part.hint(case, got, mismatch)
    return None


def run_part(part: Part, fn, seed: int = PUBLIC_SEED, points: float = 1.0, cases=None, remote=None) -> Result:
    """Run every case of `part` on `fn` and build the feedback; nothing is printed here.

    remote: None to call `fn` here (through sandbox.call), or the batch grader's handle on
    a student process (grading.Remote) in which `fn` names the function: then the calls
    happen there and only their results, as data, come back to be compared here."""
    hidden = seed != PUBLIC_SEED
    lines = []
    if remote is not None:
        missing = remote.missing(part, fn)
        if missing:
            return Result(part.key, 0, 1, 0.0, points, [f"  {missing}"], [], False)
        reasons = remote.forbidden_uses(part, fn)
    elif part.adapter is None and not callable(fn):
        return Result(part.key, 0, 1, 0.0, points, [f"`{part.func}` is {type(fn).__name__}, not a function"],
                      [], False)
    else:
        reasons = inspection.forbidden_uses(fn, part.forbidden, part.allowed_modules, part.numpy_functions,
                                            part.forbidden_attrs)
    if reasons:
        lines.append("This part must be your own code: " + "; ".join(reasons) + ". "
                     "That earns no points here (the exercise is to write it yourself).")
        return Result(part.key, 0, 1, 0.0, points, lines, reasons, False)
    if cases is None:
        cases = part.cases(_case_rng(part.key, seed), hidden)
    target = part.adapter(fn) if part.adapter is not None and remote is None else fn
    fork = part.fork() if callable(part.fork) else part.fork
    passed, not_impl, skipped_after_timeout = 0, 0, False
    warnings_seen = []
    for i, case in enumerate(cases):
        head = case.label + (f"  [{case.describe}]" if case.describe else "")
        if skipped_after_timeout:
            lines.append(f"  skip {head}: not run, an earlier case timed out")
            continue
        args = tuple(np.copy(a) if isinstance(a, np.ndarray) else a for a in case.args)
        if remote is None:
            out = sandbox.call(target, args, timeout=part.timeout, tripwires=part.tripwires, fork=fork)
        else:
            out = remote.call(part, fn, args, part.timeout)
        for w in out.warnings:
            if w not in warnings_seen:
                warnings_seen.append(w)
        if out.status == "forbidden":
            lines.append(f"This part must be your own code: {out.error}. That earns no points here.")
            return Result(part.key, 0, len(cases), 0.0, points, lines, [out.error], False)
        if out.status != "ok":
            if "NotImplementedError" in out.error:
                not_impl += 1
            lines.append(f"  FAIL {head}")
            lines.append(f"       {out.status}: {out.error}")
            if out.status == "timeout":
                skipped_after_timeout = True
            elif out.status == "compile_error":
                lines.append("       hint: Numba could not compile the function for these argument types; "
                             "the message above names the line and the types involved")
            continue
        got = out.value
        if case.pick is not None:
            try:
                got = case.pick(got)
            except Exception as exc:  # noqa: BLE001
                lines.append(f"  FAIL {head}")
                lines.append(f"       could not take {case.pick_name or 'the graded result'} from what the "
                             f"function returned ({type(out.value).__name__}): {type(exc).__name__}: {exc}")
                continue
        cmp = part.compare or compare_arrays
        mismatch = cmp(case.expected, got)
        if mismatch is None:
            passed += 1
            if case.worked:
                lines.append(f"  ok   {head}")
            continue
        lines.append(f"  FAIL {head}" + (f" ({case.pick_name})" if case.pick_name else ""))
        lines.append(f"       {mismatch['text']}")
        if not case.hidden and case.show_inputs and isinstance(case.expected, np.ndarray):
            for j, a in enumerate(case.args):
                if isinstance(a, np.ndarray) and a.size <= 64:
                    lines.append(f"       argument {j + 1}: {fmt_array(a)}")
            lines.append(f"       expected: {fmt_value(case.expected)}")
            lines.append(f"       got:      {fmt_value(part.display(got) if part.display else got)}")
        hint = _resolve_hint(part, case, got, mismatch)
        if hint:
            lines.append(f"       hint: {hint}")
        if case.note:
            lines.append(f"       note: {case.note}")
    total = len(cases)
    if warnings_seen:
        lines.append("  warnings while running your code (shown here, not on stderr): " + "; ".join(warnings_seen))
    all_not_impl = total > 0 and not_impl == total
    if all_not_impl:
        lines = [f"  `{part.func}` is not implemented yet (it raises NotImplementedError)."]
    score = float(points) if passed == total else _floor2(points * passed / max(total, 1))
    return Result(part.key, passed, total, score, float(points), lines, [], all_not_impl)


def check(part: str, fn, points: float = 1, seed: int = PUBLIC_SEED, quiet: bool = False) -> float:
    """Check `fn` for graded part `part`; print feedback; return the points earned (partial credit).

    seed 0 runs the public cases; the autograder runs a hidden seed (more random cases,
    inputs not shown)."""
    p = get_part(part)
    res = run_part(p, fn, seed, points)
    if not quiet:
        kind = "with the hidden cases" if seed != PUBLIC_SEED else "public cases"
        if res.forbidden:
            print(f"{p.title} (`{p.func}`): not your own code -> 0 of {res.points:g} points")
        else:
            print(f"{p.title} (`{p.func}`): {res.passed} of {res.total} checks pass "
                  f"({kind}) -> {res.score:g} of {res.points:g} points")
        for line in res.lines:
            print(line)
        if p.njit and not res.forbidden and callable(fn):
            compiled, why = inspection.compiled_status(fn)
            if not compiled:
                print(f"  note: this exercise asks for @njit, and `{p.func}` is not compiled: {why}")
    return res.score


def compiled_point(public: Result) -> tuple[bool, str]:
    """Does a compiled function whose public checks gave `public` earn the compiled point? (ok, why not)"""
    if public.forbidden:
        return False, "it is not your own code (see the part's feedback)"
    if public.all_not_implemented:
        return False, "it is not implemented yet"
    if public.passed * 2 < public.total:
        return False, (f"it passes only {public.passed} of {public.total} of the part's public checks; "
                       "this point needs a compiled function that works")
    return True, ""


def compiled_feedback(part: Part, name: str, ok: bool, why: str, points: float) -> list:
    """The lines shown for the compiled point (the notebook's check_compiled and the batch grader)."""
    what = "a @cuda.jit kernel" if part.compiled_kind == "cuda" else "compiled with @njit"
    score = float(points) if ok else 0.0
    return [f"`{name}` is {what}: {'yes' if ok else 'no'} -> {score:g} of {float(points):g} points"] + \
        ([] if ok else [f"  {why}"])


def check_compiled(part: str, fn, points: float = 1, quiet: bool = False, kernel=None) -> float:
    """Points for writing `fn` as an @njit function (or `kernel` as a @cuda.jit kernel, for the
    GPU parts): all or nothing, and only when the part's function also passes at least half
    of the part's public checks (a stub earns 0)."""
    p = get_part(part)
    ok, why = inspection.compiled_status(kernel if kernel is not None else fn, p.compiled_kind)
    if ok:
        ok, why = compiled_point(run_part(p, fn, PUBLIC_SEED, points))
    score = float(points) if ok else 0.0
    if not quiet:
        shown = kernel if kernel is not None else fn
        name = getattr(shown, "__name__", None) or getattr(getattr(shown, "py_func", None), "__name__", p.func)
        print("\n".join(compiled_feedback(p, name, ok, why, points)))
    return score


def show_example(part: str, fn, example_id: str) -> None:
    """Run `fn` on one worked example (safely) and print its result beside the slide's."""
    from .. import examples

    p = get_part(part)
    ex = examples.get(example_id)
    cases = [c for c in p.cases(_case_rng(p.key, PUBLIC_SEED), False) if c.example_id == example_id]
    if not cases:
        raise KeyError(f"part {part!r} has no case from worked example {example_id!r}")
    case = cases[0]
    print(ex.citation)
    target = p.adapter(fn) if p.adapter is not None else fn
    out = sandbox.call(target, case.args, timeout=p.timeout, tripwires=p.tripwires,
                       fork=p.fork() if callable(p.fork) else p.fork)
    if out.status != "ok":
        print(f"  your function: {out.status}: {out.error}")
    else:
        got = case.pick(out.value) if case.pick else out.value
        got = p.display(got) if p.display else got
        print(f"  yours:     {fmt_value(got)}")
        mismatch = (p.compare or compare_arrays)(case.expected, out.value if p.display else got)
        print("  matches the reference" if mismatch is None else f"  differs: {mismatch['text']}")
    print(f"  reference: {fmt_value(case.expected)}")
    if ex.slide_printed is not None:
        print(f"  (the slide printed {ex.slide_printed}; see the note in minicnn.examples.get({example_id!r}).note)")
