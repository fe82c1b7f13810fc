"""Check every printed cell of a question; for a wrong one, search for the slip that reproduces it.

The search, in order: every known slip of the op (slips.py), run on the question's inputs; the
window of a convolution or pooling placed elsewhere; one product of the sum dropped, sign-flipped
or added instead of multiplied; two adjacent digits swapped; one input of the question changed
(the answer is right for another stride, padding, ...); a value carried from another wrong answer
("@id" inputs, a table's total over its printed rows).  Every hit reproduces the printed value
exactly; when nothing does, the cell says so.
"""
from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field

import numpy as np

from . import slips as S
from .keyfile import refs_in
from .ops import conv_explanation, evaluate
from .registry import OPS
from .values import KeyFileError, Printed, fmt, shape_text


@dataclass
class Diagnosis:
    slip: str                      # the slip's id (slips.py) or the search that found it
    kind: str                      # the family of slip
    says: str                      # what happened, for this cell
    mutants: tuple = ()            # the course's mutants that make the same slip

    def text(self) -> str:
        m = f" (the course's mutant{'s' if len(self.mutants) > 1 else ''} {', '.join(self.mutants)})" \
            if self.mutants else ""
        return f"{self.kind}: {self.says}{m}"


@dataclass
class CellResult:
    cell: str
    printed: str
    correct: str
    ok: bool
    working: str = ""
    working_latex: str = ""
    diagnoses: list = field(default_factory=list)


@dataclass
class QuestionResult:
    id: str
    op: str
    title: str
    cells: list
    note: str = ""
    extra: dict = field(default_factory=dict)
    value: float = None            # the right answer when it is one number (for '@id' in later questions)

    @property
    def wrong(self) -> list:
        return [c for c in self.cells if not c.ok]

    @property
    def ok(self) -> bool:
        return not self.wrong


@dataclass
class KeyResult:
    title: str
    path: str
    questions: list

    @property
    def ok(self) -> bool:
        return all(q.ok for q in self.questions)


def _show(v) -> str:
    if isinstance(v, tuple):
        return "(" + ", ".join(str(int(x)) for x in v) + ")" if v else "()"
    return fmt(v)


def _show_cell(cell, v) -> str:
    if cell.endswith("shape") and isinstance(v, tuple) and cell != "output shape":
        return shape_text(v)
    if cell == "output shape":
        return " x ".join(str(int(x)) for x in v)
    return _show(v)


# --------------------------------------------------------------------------- searches for one cell

def _hit(slip, kind, says):
    """A diagnosis found by one of the searches below (not one of slips.py's slips)."""
    return Diagnosis(slip, kind, says)


def _window_search(op, inp, cell, p):
    """Windows elsewhere in the (padded) input whose value is the printed one."""
    if op.name not in ("correlate", "convolve", "max_pool", "avg_pool") or not cell.startswith("out["):
        return []
    idx = tuple(int(v) for v in cell[4:-1].split(","))
    i, j = idx[-2:]
    if op.name in ("correlate", "convolve"):
        e = conv_explanation(inp)
        padded, ker = e.padded, e.kernel
        kh, kw = ker.shape[1:]
        s = inp["stride"]
        value = lambda r, c: float((padded[:, r:r + kh, c:c + kw] * ker).sum()) + inp["bias"]  # noqa: E731
        shape = padded.shape[1:]
    else:
        img = inp["image"][idx[0] if inp["channels"] else 0]
        kh = kw = inp["kernel_size"]
        s = inp["stride"]
        reduce = np.max if inp["mode"] == "max" else np.mean
        value = lambda r, c: float(reduce(img[r:r + kh, c:c + kw]))  # noqa: E731
        shape = img.shape
    right = (i * s, j * s)
    out = []
    for r in range(max(0, right[0] - s - 1), min(shape[0] - kh, right[0] + s + 1) + 1):
        for c in range(max(0, right[1] - s - 1), min(shape[1] - kw, right[1] + s + 1) + 1):
            if (r, c) != right and p.matches(value(r, c)):
                where = f"rows {r}-{r + kh - 1}, columns {c}-{c + kw - 1}"
                off = " (off by one)" if abs(r - right[0]) + abs(c - right[1]) == 1 else ""
                out.append(_hit("window-elsewhere", "window moved by the wrong amount",
                                  f"{p} is the window {r} down and {c} right of the first one ({where}){off}; "
                                  f"{cell} is the window {right[0]} down and {right[1]} right "
                                  f"(rows {right[0]}-{right[0] + kh - 1}, columns {right[1]}-{right[1] + kw - 1})"))
    return out


def _product_search(op, inp, cell, p, right):
    """One product of the cell's sum dropped, sign-flipped, or added instead of multiplied."""
    if op.name not in ("correlate", "convolve") or not cell.startswith("out["):
        return []
    i, j = (int(v) for v in cell[4:-1].split(","))
    step = conv_explanation(inp, at=(i, j)).steps[0]
    out = []
    for ch, u, v in np.ndindex(step.window.shape):
        x, w = float(step.window[ch, u, v]), float(step.kernel[ch, u, v])
        tap = f"({fmt(x)} x {fmt(w)})" + (f" in channel {ch}" if step.window.shape[0] > 1 else "")
        if x * w != 0 and p.matches(right - x * w):
            out.append(_hit("product-dropped", "one product's arithmetic wrong", f"the product {tap} is left out"))
        if x * w != 0 and p.matches(right - 2 * x * w):
            out.append(_hit("product-sign", "one product's arithmetic wrong",
                              f"the product {tap} is taken with the wrong sign ({fmt(-x * w)})"))
        if x + w != x * w and p.matches(right - x * w + x + w):
            out.append(_hit("product-added", "one product's arithmetic wrong",
                              f"{fmt(x)} and {fmt(w)} are added ({fmt(x + w)}) instead of multiplied"))
    return out


def _digits_search(cell, p, right):
    """Two adjacent digits swapped (at the printed precision: '56k' for 65,536)."""
    if not isinstance(p, Printed) or isinstance(right, tuple) or right != int(right) or right < 10:
        return []
    shown = int(right // p.unit) if p.unit > 1 else int(right)
    digits, target = str(shown), int(p.value // p.unit) if p.unit > 1 else int(p.value)
    unit = {1e3: "k", 1e6: "M", 1e9: "G"}.get(p.unit, "")
    for k in range(len(digits) - 1):
        swapped = digits[:k] + digits[k + 1] + digits[k] + digits[k + 2:]
        if swapped != digits and int(swapped) == target:
            return [_hit("digits-transposed", "one product's arithmetic wrong",
                           f"two digits swapped: {fmt(right)} is {digits}{unit}, printed as {swapped}{unit}")]
    return []


def _input_search(op, inp, cell, p, cache):
    """One input of the question changed: the printed value is right for another stride, padding, ..."""
    out = []
    for name in op.tunable:
        v = inp.get(name)
        if isinstance(v, bool) or not isinstance(v, int):
            continue
        for alt in (v - 1, v + 1):  # a number printed one off
            if alt < (0 if name == "padding" else 1):
                continue
            key = (name, alt)
            if key not in cache:
                cache[key] = evaluate(op, {**inp, name: alt})
            got = cache[key].get(cell)
            if got is not None and p.matches(got):
                out.append(_hit("input-misprinted", "an input printed wrong",
                                  f"{p} is right for {name} = {alt} (the question has {name} = {v})"))
    return out


def _carried_search(op, q, inp, cell, p, printed_answers):
    """A value carried from a wrong answer elsewhere."""
    out = []
    if op.name == "network" and cell == "total":
        rows = [c for c in inp["_printed"] if c.endswith(".params")]
        total = sum(inp["_printed"][c].value if inp["_printed"][c] is not None else inp["_right"][c] for c in rows)
        wrong = [c for c in rows if inp["_printed"][c] is not None and not inp["_printed"][c].matches(inp["_right"][c])]
        if wrong and p.matches(total):
            out.append(_hit("carried", "carried from a wrong number",
                              f"{p} is the sum of the rows as printed, with the wrong {', '.join(wrong)}"))
    refs = {r for v in q.fields.values() for r in refs_in(v)}
    wrong_refs = {r: printed_answers[r] for r in refs if r in printed_answers}
    if wrong_refs:
        try:
            alt = evaluate(op, op.read(q, {**inp["_refs"], **wrong_refs}))
        except KeyFileError:
            alt = {}
        if cell in alt and p.matches(alt[cell]):
            names = ", ".join(f"question {r!r} ({fmt(v)} printed, {fmt(inp['_refs'][r])} right)"
                              for r, v in wrong_refs.items())
            out.append(_hit("carried", "carried from a wrong number", f"{p} uses the printed answer of {names}"))
    return out



_MATRIX_OPS = ("correlate", "convolve", "max_pool", "avg_pool")


def _consistent(op, inp, got, cell):
    """A slip in a convolution or pooling is made on every cell: it must also give the cells the
    slide prints right (else those cells show the slip was not made)."""
    if op.name not in _MATRIX_OPS:
        return True
    for other, p in inp["_printed"].items():
        if other in (cell, "output shape") or p is None or not p.matches(inp["_right"].get(other, math.nan)):
            continue
        if other in got and not p.matches(got[other]):
            return False
    return True


def diagnose(op, q, inp, cell, p, right, printed_answers, cache) -> list:
    found = []
    for slip in S.for_op(op.name):
        try:
            cells = slip.run(copy.copy(inp))
        except (ValueError, IndexError, ZeroDivisionError, KeyError):
            cells = {}
        got = cells.get(cell)
        if got is not None and not (isinstance(got, float) and math.isnan(got)) and p.matches(got) \
                and _consistent(op, inp, cells, cell):
            found.append(Diagnosis(slip.id, slip.kind, slip.says, slip.mutants))
    if cell in inp.get("diagnoses", {}):
        found.append(_hit("input-misprinted", "an input printed wrong", inp["diagnoses"][cell]))
    found += _window_search(op, inp, cell, p)
    found += _input_search(op, inp, cell, p, cache)
    found += _carried_search(op, q, inp, cell, p, printed_answers)
    if not isinstance(right, tuple):
        found += _product_search(op, inp, cell, p, right)
        found += _digits_search(cell, p, right)
    return found


# --------------------------------------------------------------------------- questions and keys

def check_question(q, right_answers=None, printed_answers=None) -> QuestionResult:
    """Check one keyfile.Question.  right_answers / printed_answers: {question id: value} of the
    key's earlier questions, for '@id' inputs (the printed ones only where they are wrong)."""
    op = OPS[q.op]
    refs = right_answers or {}
    try:
        inp = op.read(q, refs)
        right = op.compute(inp)
    except KeyFileError:
        raise
    except (ValueError, TypeError) as exc:
        raise KeyFileError(f"{q.where()}: {exc}") from None
    shown = op.answer(q, inp)
    inp.update(_printed=shown, _right=right, _refs=refs)
    cache, cells = {}, []
    for cell, p in shown.items():
        if p is None or cell not in right:
            continue
        value = right[cell]
        ok = p.matches(value)
        result = CellResult(cell, str(p), op.show(inp, cell) if op.show else _show_cell(cell, value), ok)
        if not ok:
            result.working, result.working_latex = op.working(inp, cell)
            result.diagnoses = diagnose(op, q, inp, cell, p, value, printed_answers or {}, cache)
        cells.append(result)
    value = right.get("answer")
    return QuestionResult(q.id, q.op, op.title, cells, q.note, q.extra,
                          value if isinstance(value, (int, float)) else None)


def check_key(key) -> KeyResult:
    """Check every question of a keyfile.AnswerKey, in order.  A question may use an earlier one's
    answer ('@id'); its right value is used, and the printed one, where wrong, is tried as a slip."""
    right_answers, printed_answers, results = {}, {}, []
    for q in key.questions:
        r = check_question(q, right_answers, printed_answers)
        results.append(r)
        if r.value is not None:
            right_answers[q.id] = r.value
            wrong = [c for c in r.wrong if c.cell == "answer"]
            p = OPS[q.op].answer(q, {}).get("answer")
            if wrong and isinstance(p, Printed) and p.relation == "=":
                printed_answers[q.id] = p.value
    return KeyResult(key.title, key.path, results)
