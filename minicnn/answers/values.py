"""The values an answer key prints: numbers as a slide writes them, and the error for a bad key."""
from __future__ import annotations

import math
import re
from dataclasses import dataclass


class KeyFileError(ValueError):
    """A malformed answer key: the message names the question and the field."""


@dataclass(frozen=True)
class Printed:
    """A number as a slide prints it.  `relation` is '=', '<', '<=', '>', '>=', '~' (rounded or
    truncated to `unit`, as "65k") or 'round' (rounded to the decimals printed, `unit` 0.01 for
    2.33); `text` is how it was written."""
    value: float
    relation: str = "="
    unit: float = 1.0
    text: str = ""

    def matches(self, x) -> bool:
        x = float(x)
        if self.relation == "=":
            return math.isclose(x, self.value, rel_tol=1e-9, abs_tol=1e-9)
        if self.relation == "~":  # rounded or truncated to the printed precision ("65k")
            return abs(x - self.value) < self.unit or math.isclose(x, self.value, rel_tol=1e-9)
        if self.relation == "round":  # rounded to the printed decimals (2.33)
            return abs(x - self.value) <= self.unit / 2 * (1 + 1e-9)
        return {"<": x < self.value, "<=": x <= self.value, ">": x > self.value, ">=": x >= self.value}[self.relation]

    def __str__(self):
        return self.text or _fmt(self.value)


def _fmt(v) -> str:
    v = float(v)
    return str(int(v)) if v == int(v) and abs(v) < 1e18 else f"{v:.6g}"


_NUMBER = re.compile(r"^\(?\s*(<=|>=|<|>|~)?\s*(-?[0-9][0-9,]*(?:\.[0-9]+)?)\s*([kKMG]?)\s*(?:\^\s*([0-9]+))?"
                     r"(?:\s*total)?\s*\)?$")
_SCALE = {"": 1, "k": 1e3, "K": 1e3, "M": 1e6, "G": 1e9}


def _decimal(v: float, written: str, text: str = "") -> Printed:
    """A number with decimals is taken as rounded to the digits printed (2.33 for 7/3)."""
    decimals = written.split(".")[1] if "." in written and "e" not in written.lower() else ""
    if decimals.strip("0") == "":
        return Printed(v, "=", 1.0, text or _fmt(v))
    return Printed(v, "round", 10.0 ** -len(decimals), text or written)


def printed(value, where: str):
    """A printed answer cell: None for "?", else a Printed.  `where` names it in errors."""
    if value == "?":
        return None
    if isinstance(value, bool):
        raise KeyFileError(f"{where}: expected a number or '?', got {value!r}")
    if isinstance(value, (int, float)):
        if not math.isfinite(value):
            raise KeyFileError(f"{where}: {value!r} is not a finite number")
        return _decimal(float(value), repr(value))
    if isinstance(value, str):
        m = _NUMBER.match(value.strip())
        if m:
            rel, digits, scale, power = m.groups()
            v = float(digits.replace(",", "")) * _SCALE[scale]
            if power:
                v = v ** int(power)
            elif not rel and not scale:
                return _decimal(v, digits.replace(",", ""), value.strip())
            relation = rel or ("~" if scale else "=")
            return Printed(v, relation, _SCALE[scale], value.strip())
    raise KeyFileError(f"{where}: cannot read {value!r} as a printed number (write 42, -2.5, '1,101,760', "
                       "'<56k', '~65k', '1101760^2', or '?' for a blank)")


def fmt(v) -> str:
    """A number as a slide prints it: integers without a decimal point."""
    return _fmt(v)


@dataclass(frozen=True)
class Shape:
    """A printed activation shape.  A volume is written (H, W, C) as the slides do, or (H, W) for one
    channel; a vector (n) or (n, 1).  `matches` takes minicnn's (C, H, W) or (n,)."""
    dims: tuple
    text: str = ""

    def matches(self, chw) -> bool:
        chw = tuple(int(v) for v in chw)
        return self.dims in renderings(chw)

    def __str__(self):
        return self.text or "(" + ", ".join(str(d) for d in self.dims) + ")"


def renderings(chw) -> list:
    """The ways a slide may print a shape given in minicnn's order."""
    if len(chw) == 1:
        return [(chw[0],), (chw[0], 1)]
    c, h, w = chw
    return [(h, w, c)] + ([(h, w)] if c == 1 else [])


def shape_text(chw) -> str:
    return "(" + ", ".join(str(d) for d in renderings(chw)[0]) + ")"


def printed_shape(value, where: str):
    if value == "?":
        return None
    if (not isinstance(value, list) or not 1 <= len(value) <= 3
            or any(isinstance(v, bool) or not isinstance(v, int) or v < 1 for v in value)):
        raise KeyFileError(f"{where}: a shape is a list of 1 to 3 positive ints, (H, W, C) or (n), got {value!r}")
    return Shape(tuple(value))
