"""The lectures' worked examples, as data.

`catalogue.json` holds every worked example of the five lecture decks the course
follows: inputs, kernel, stride, padding, the expected output as printed (null where
the slide prints nothing), the lecture and slide it comes from, and a note.  Where a
slide is wrong the catalogue keeps the correct value, records what the slide printed
under `slide_printed` and says why in the note.

    >>> from minicnn import examples
    >>> ex = examples.get("sjtu-single-channel-5x5-3x3")
    >>> examples.check(ex).ok
    True

The tests, the demo and the course's autograder all read this one file.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

import numpy as np


@dataclass(frozen=True)
class Example:
    id: str
    lecture: dict
    slide: str
    op: str
    inputs: dict
    params: dict
    expected: object
    note: str
    slide_printed: object = None
    extra: dict = None

    @property
    def citation(self) -> str:
        return f'{self.lecture["author"]}, "{self.lecture["title"]}", slide "{self.slide}"'

    def array(self, name) -> np.ndarray:
        """An input as a float64 array (kernels given by name are looked up in the catalogue)."""
        value = self.inputs[name]
        if isinstance(value, str):
            value = kernels()[value]["values"]
        return np.array(value, dtype=np.float64)

    def expected_array(self) -> tuple[np.ndarray, np.ndarray]:
        """(values, printed) for array-valued examples: printed marks the cells the slide shows."""
        raw = np.array(self.expected, dtype=object)
        printed = raw != None  # noqa: E711 - elementwise test for JSON null
        values = np.where(printed, raw, np.nan).astype(np.float64)
        return values, printed


@lru_cache(maxsize=1)
def _raw() -> dict:
    with resources.files(__package__).joinpath("catalogue.json").open(encoding="utf-8") as fh:
        return json.load(fh)


def lectures() -> dict:
    """The five lecture decks, by key: author, title, institution."""
    return _raw()["lectures"]


def kernels() -> dict:
    """The hand-made kernels the lectures show (identity, shift, Sobel, line and corner detectors, ...)."""
    return _raw()["kernels"]


_FIELDS = {"id", "lecture", "slide", "op", "inputs", "params", "expected", "note", "slide_printed"}


def load(lecture: str | None = None, op: str | None = None) -> list[Example]:
    """All worked examples, optionally only one lecture's (key of `lectures()`) or one op's."""
    raw = _raw()
    out = []
    for item in raw["examples"]:
        if lecture is not None and item["lecture"] != lecture:
            continue
        if op is not None and item["op"] != op:
            continue
        out.append(Example(
            id=item["id"], lecture=raw["lectures"][item["lecture"]], slide=item["slide"], op=item["op"],
            inputs=item.get("inputs", {}), params=item.get("params", {}), expected=item["expected"],
            note=item["note"], slide_printed=item.get("slide_printed"),
            extra={k: v for k, v in item.items() if k not in _FIELDS}))
    return out


def get(example_id: str) -> Example:
    for ex in load():
        if ex.id == example_id:
            return ex
    raise KeyError(f"no worked example {example_id!r}; see minicnn.examples.load() for the list")


from .runner import CheckResult, check, run  # noqa: E402  (the runner needs Example)

__all__ = ["Example", "CheckResult", "load", "get", "lectures", "kernels", "run", "check"]
