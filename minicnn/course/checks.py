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
A failed hidden case names its kind of case and mistake, with a hint, but never its shapes,
settings or values (see HIDDEN_MISMATCH): a feedback page must not let anyone replay it.
"""
from __future__ import annotations

import builtins
import math
import os
import re

import numpy as np

from ..sandbox import calls
from ..sandbox.kept import KeptChild
from . import inspection, tripwires
from .part import (CASE_TIMEOUT, PUBLIC_SEED, AnyOf, Case, Part, Result, case_rng, compare_arrays, compare_exact,
                   fmt_array, fmt_value, matches)
from .registry import PARTS, get_part

__all__ = ["check", "check_compiled", "show_example",                       # what the notebooks call
           "run_part", "call_part", "kept_child", "compiled_point", "compiled_feedback", "headline", "InThisProcess",
           "IN_THIS_PROCESS", "get_part", "PARTS",                                  # what the grader uses
           "Part", "Case", "AnyOf", "Result", "case_rng", "cases_for", "call_args", "compare_arrays", "compare_exact",
           "matches", "PUBLIC_SEED", "CASE_TIMEOUT"]

HERE = os.path.dirname(os.path.abspath(__file__))  # frames of the course's own wrappers stay out of error texts


# ----------------------------------------------------------------------------- calling the student's function

def call_part(part: Part, fn, args, timeout: float | None = None, kept=None) -> calls.Outcome:
    """One call of the student's `fn` for `part`, through the sandbox: the part's adapter applied
    (a layer class turned into forward/backward, ...), in a forked child unless the part says
    otherwise, with the part's tripwires armed there.

    kept: a child from `kept_child(part)` (the batch grader's runner passes one per part): the
    call then runs in that child, forked once for all of the part's calls, each with its own
    time limit, instead of in a child forked for this call alone (see minicnn.sandbox.kept)."""
    def target():
        return part.adapter(fn) if part.adapter is not None else fn

    limit = part.timeout if timeout is None else timeout
    fork = part.fork() if callable(part.fork) else part.fork
    if kept is not None and fork and kept.usable(target()):
        return kept.call(target, tuple(args), timeout=limit, of=fn)
    return calls.call(target(), tuple(args), timeout=limit, arm=tripwires.arming(part.tripwires, part.numpy_functions), fork=fork,
                      hide=(HERE,))


def kept_child(part: Part) -> KeptChild:
    """A child for the calls of one part (see call_part): armed with the part's tripwires."""
    return KeptChild(arm=tripwires.arming(part.tripwires, part.numpy_functions), hide=(HERE,))


class InThisProcess:
    """Where run_part finds the student's function: here, `fn` itself (the notebook's kernel).

    The batch grader passes its own object with the same three methods, for which `fn` only
    names a function living in a sandboxed process (minicnn.grader.remote.Remote)."""

    def missing(self, part: Part, fn) -> str | None:
        """A feedback line when `fn` cannot be checked at all, else None."""
        if part.adapter is None and not callable(fn):
            return f"`{part.func}` is {type(fn).__name__}, not a function"
        return None

    def forbidden_uses(self, part: Part, fn) -> list:
        return inspection.forbidden_uses(fn, part.forbidden, part.allowed_modules, part.numpy_functions,
                                         part.forbidden_attrs)

    def call(self, part: Part, fn, args, timeout: float) -> calls.Outcome:
        return call_part(part, fn, args, timeout)


IN_THIS_PROCESS = InThisProcess()


# ----------------------------------------------------------------------------- running

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


# ----------------------------------------------------------------------------- what a hidden case may show

# A failed hidden case shows its kind ("hidden case 3 (stride larger than the kernel)"), the kind
# of mistake and the hint, never its shapes, settings or values, nor any text the student's code
# made (an error message, a warning, the repr of what it returned): any of those could carry the
# hidden inputs out to a feedback page, and with them the answers to memorise.
HIDDEN_MISMATCH = {
    "shape": "the result has the wrong shape",
    "values": "the shape is right, but some values are wrong",
    "nan": "the result contains NaN: a cell never written? np.empty leaves garbage; start from np.zeros",
    "none": "returned None (is there a `return` at the end?)",
    "type": "returned something of the wrong type",
    "launch": "the result is right, but not every output was computed by a thread of a launched kernel",
    "unchanged": "no parameter changed",
    "count": "the number of losses returned is wrong",
    "first-loss": "the first loss returned is wrong",
    None: "the result is wrong",
}
HIDDEN_NOTE = ("(hidden cases show which kind of case failed and a hint, not their shapes, settings or values; "
               "the public cases in your notebook show everything)")


def _hidden_label(label: str) -> str:
    """A hidden case's label without any parenthesised detail that holds a number (a shape):
    'hidden case 2 (shape (4, 6))' -> 'hidden case 2'; the kind, '(stride larger than the kernel)', stays."""
    return _PARENTHESISED.sub(lambda m: "" if re.search(r"\d", m.group(0)) else m.group(0), label)


_PARENTHESISED = re.compile(r"\s*\((?:[^()]|\([^()]*\))*\)")   # '(...)', with at most one '(...)' inside


def _error_kind(error: str) -> str:
    """The error's type when it is one of Python's own (IndexError, ...), else 'an error' (a class the
    student's code defined could be named after the inputs)."""
    name = error.split(":", 1)[0].strip()
    return name if isinstance(getattr(builtins, name, None), type) else "an error"


_UNTYPED_GLOBAL = re.compile(r"Untyped global name '(\w+)'(?:: Cannot determine Numba type of <class '(\w+)'>)?")


def _part_error_hint(part: Part, case: Case, out) -> str | None:
    """The part's own hint for a call that raised (e.g. pooling windows running off the input)."""
    if part.error_hint is None or out.status == "timeout":
        return None
    try:
        return part.error_hint(case, out.error)
    except Exception:  # noqa: BLE001 - a hint that does not apply to this case
        return None


def _error_hint(part: Part, out) -> tuple[str, str | None]:
    """(key, hint) for a call that failed: calls failing with the same key show the error once;
    the hint names what Numba could not compile, where the message says."""
    m = _UNTYPED_GLOBAL.search(out.error)
    if m:
        name, kind = m.group(1), m.group(2)
        if kind in ("function", "builtin_function_or_method", None):
            return f"untyped:{name}", (
                f"`{part.func}` is compiled with @njit and calls `{name}`, which is not compiled: an @njit "
                f"function can call only other @njit functions, NumPy and math. Put @njit on `{name}` "
                "too (and run its cell again), or compute the value inline")
        return f"untyped:{name}", (
            f"`{part.func}` is compiled with @njit and uses the global `{name}` (a {kind}), which Numba cannot "
            "use in compiled code: pass it as an argument, or use a NumPy array or a number instead")
    if out.status == "compile_error":
        return f"compile:{out.error}", ("Numba could not compile the function for these argument types; "
                                        "the message above names the line and the types involved")
    return f"{out.status}:{out.error}", None


def cases_for(part: Part, seed: int = PUBLIC_SEED) -> list:
    """The cases run_part checks `part` on with `seed` (hidden cases too unless it is PUBLIC_SEED)."""
    return part.cases(case_rng(part.key, seed), seed != PUBLIC_SEED)


def call_args(case: Case) -> tuple:
    """The arguments one call of a case gets: its arrays copied (a call may change them in place)."""
    return tuple(np.copy(a) if isinstance(a, np.ndarray) else a for a in case.args)


def run_part(part: Part, fn, seed: int = PUBLIC_SEED, points: float = 1.0, cases=None, student=None) -> Result:
    """Run every case of `part` on `fn` and build the feedback; nothing is printed here.

    student: where `fn` is found and called (see InThisProcess, the default); the batch grader
    passes its handle on a sandboxed process, in which `fn` names the function: then the calls
    happen there and only their results, as data, come back to be compared here."""
    student = IN_THIS_PROCESS if student is None else student
    lines = []
    missing = student.missing(part, fn)
    if missing:
        return Result(part.key, 0, 1, 0.0, points, [missing], [], False)
    reasons = student.forbidden_uses(part, fn)
    if reasons:
        lines.append("This part must be your own code: " + "; ".join(reasons) + ". "
                     "That earns no points here (the exercise is to write it yourself).")
        return Result(part.key, 0, 1, 0.0, points, lines, reasons, False)
    if cases is None:
        cases = cases_for(part, seed)
    passed, not_impl, skipped_after_timeout, hidden_failed, hidden_passed = 0, 0, False, False, 0
    warnings_seen, errors_seen = [], {}
    for i, case in enumerate(cases):
        if case.hidden:   # which kind of case, never its shapes or settings (see _hidden_label)
            head = _hidden_label(case.label)
        else:
            head = case.label + (f"  [{case.describe}]" if case.describe else "")
        if skipped_after_timeout:
            lines.append(f"  skip {head}: not run, an earlier case timed out")
            continue
        out = student.call(part, fn, call_args(case), part.timeout)
        for w in out.warnings if not case.hidden else ():   # a hidden case's warnings could carry its inputs
            if w not in warnings_seen:
                warnings_seen.append(w)
        if out.status == "forbidden":
            lines.append(f"This part must be your own code: {out.error}. That earns no points here.")
            return Result(part.key, 0, len(cases), 0.0, points, lines, [out.error], False)
        if out.status != "ok":
            if "NotImplementedError" in out.error:
                not_impl += 1
            lines.append(f"  FAIL {head}")
            key, hint = _error_hint(part, out)
            own = _part_error_hint(part, case, out)
            hint = hint or own
            if case.hidden:
                # the message is the student's code's own text, which could print the hidden inputs
                hidden_failed = True
                lines.append(f"       {out.status}: {_error_kind(out.error)} (the message is not shown for hidden "
                             "cases)")
                if out.status == "timeout":
                    skipped_after_timeout = True
                elif own:
                    lines.append(f"       hint: {own}")   # the part's fixed text: safe to show
                continue
            if key in errors_seen:
                # the same error on every case (a function that does not compile, ...): shown once
                lines.append(f"       {out.status}: the same error as in {errors_seen[key]} above")
                continue
            errors_seen[key] = case.label
            lines.append(f"       {out.status}: {out.error}")
            if out.status == "timeout":
                skipped_after_timeout = True
            elif hint:
                lines.append(f"       hint: {hint}")
            continue
        got = out.value
        if case.pick is not None:
            try:
                got = case.pick(got)
            except Exception as exc:  # noqa: BLE001
                lines.append(f"  FAIL {head}")
                what = case.pick_name or "the graded result"
                lines.append(f"       could not take {what} from what the function returned"
                             + ("" if case.hidden else f" ({type(out.value).__name__}): {type(exc).__name__}: {exc}"))
                continue
        cmp = part.compare or compare_arrays
        mismatch = cmp(case.expected, got)
        if mismatch is None:
            passed += 1
            hidden_passed += bool(case.hidden)
            if case.worked:
                lines.append(f"  ok   {head}")
            continue
        lines.append(f"  FAIL {head}" + (f" ({case.pick_name})" if case.pick_name else ""))
        if case.hidden:
            hidden_failed = True
            lines.append(f"       {HIDDEN_MISMATCH.get(mismatch.get('kind'), HIDDEN_MISMATCH[None])}")
        else:
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
        if case.note and not case.hidden:
            lines.append(f"       note: {case.note}")
    total = len(cases)
    if hidden_failed:
        lines.append(f"  {HIDDEN_NOTE}")
    if warnings_seen:
        lines.append("  warnings while running your code (shown here, not on stderr): " + "; ".join(warnings_seen))
    all_not_impl = total > 0 and not_impl == total
    if all_not_impl:
        lines = [f"  `{part.func}` is not implemented yet (it raises NotImplementedError)."]
    score = float(points) if passed == total else _floor2(points * passed / max(total, 1))
    return Result(part.key, passed, total, score, float(points), lines, [], all_not_impl,
                  hidden_passed, sum(bool(c.hidden) for c in cases))


def check(part: str, fn, points: float = 1, seed: int = PUBLIC_SEED, quiet: bool = False) -> float:
    """Check `fn` for graded part `part`; print feedback; return the points earned (partial credit).

    seed 0 runs the public cases; the autograder runs a hidden seed (more random cases,
    inputs not shown)."""
    p = get_part(part)
    res = run_part(p, fn, seed, points)
    if not quiet:
        print(headline(p, res, "with the hidden cases" if seed != PUBLIC_SEED else "public cases"))
        for line in res.lines:
            print(line)
        if p.njit and not res.forbidden and callable(fn):
            compiled, why = inspection.compiled_status(fn)
            if not compiled:
                print(f"  note: this exercise asks for @njit, and `{p.func}` is not compiled: {why}")
    return res.score


def headline(part: Part, res: Result, kind: str) -> str:
    """The first line of a part's feedback: its score (the notebook's check and the batch grader)."""
    if res.forbidden:
        return f"{part.title} (`{part.func}`): not your own code -> 0 of {res.points:g} points"
    return (f"{part.title} (`{part.func}`): {res.passed} of {res.total} checks pass ({kind}) -> "
            f"{res.score:g} of {res.points:g} points")


def compiled_point(public: Result) -> tuple[bool, str]:
    """Does a compiled function whose checks gave `public` earn the compiled point? (ok, why not)

    `public`: the part's public run (a notebook's check_compiled) or its test cell's run with the
    hidden cases (the batch grader): then half of the hidden cases must pass too."""
    if public.forbidden:
        return False, "it is compiled, but it is not your own code (see the part's feedback)"
    if public.all_not_implemented:
        return False, "it is compiled, but it is not implemented yet"
    if public.passed * 2 < public.total:
        return False, (f"it is compiled, but it passes only {public.passed} of {public.total} of the part's "
                       "checks; this point needs a compiled function that works")
    if public.hidden_passed * 2 < public.hidden_total:   # memorised public answers compile too
        return False, (f"it is compiled, but it passes only {public.hidden_passed} of {public.hidden_total} of the "
                       "part's hidden checks; this point needs a compiled function that works")
    return True, ""


def compiled_feedback(part: Part, name: str, ok: bool, why: str, points: float) -> list:
    """The lines shown for the compiled point (the notebook's check_compiled and the batch grader)."""
    what = "a @cuda.jit kernel" if part.compiled_kind == "cuda" else "compiled with @njit"
    if ok:
        return [f"`{name}` is {what}: yes -> {float(points):g} of {float(points):g} points"]
    # "no" is about the point, not the decorator: `why` says which (not compiled, or compiled but not working)
    return [f"`{name}` earns the point for being {what}: no -> 0 of {float(points):g} points", f"  {why}"]


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
    cases = [c for c in p.cases(case_rng(p.key, PUBLIC_SEED), False) if c.example_id == example_id]
    if not cases:
        raise KeyError(f"part {part!r} has no case from worked example {example_id!r}")
    case = cases[0]
    print(ex.citation)
    out = call_part(p, fn, case.args)
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
