"""Every graded part of the course, by key ("a1.correlate2d", ...): read from the assignment
modules' PARTS lists, explicitly listed here (no registration by import side effect).

An assignment module is imported only when one of its parts is first asked for: the key's
prefix names it ("a1.zero_pad" -> the module in ASSIGNMENTS starting "a1_").  A sandboxed
runner grading assignment 1 then never imports assignment 4's module, which pulls in
numba.cuda (about a third of the runner's imports).  `PARTS` reads like the table of every part
(iterating it imports every assignment).
"""
from __future__ import annotations

import importlib
from collections.abc import Mapping

from .part import Part

# The assignment modules of minicnn.course, in course order; a part's key starts with the
# module's prefix (the name up to its first "_") and a dot.
ASSIGNMENTS = (
    "a1_convolution",
    "a2_volumes_pooling",
    "a3_backprop",
    "a4_gpu",
    "a5_lenet",
    "a6_beyond",
)

_LOADED: dict[str, dict[str, Part]] = {}   # assignment -> its parts by key, once imported


def prefix(assignment: str) -> str:
    """'a1_convolution' -> 'a1': how the keys of its parts begin."""
    return assignment.split("_", 1)[0]


def parts_of(assignment: str) -> dict[str, Part]:
    """The parts of one assignment by key, importing its module the first time."""
    if assignment not in _LOADED:
        if assignment not in ASSIGNMENTS:
            raise KeyError(f"unknown assignment {assignment!r}; known: {', '.join(ASSIGNMENTS)}")
        module = importlib.import_module(f"{__package__}.{assignment}")
        table: dict[str, Part] = {}
        for part in module.PARTS:
            if part.key in table:
                raise ValueError(f"part {part.key!r} of {assignment} is defined twice")
            if not part.key.startswith(prefix(assignment) + "."):
                raise ValueError(f"part {part.key!r} of {assignment}: its key must start with "
                                 f"{prefix(assignment)!r}. (that is how the registry finds its module)")
            table[part.key] = part
        _LOADED[assignment] = table
    return _LOADED[assignment]


def _assignment_of(key: str) -> str | None:
    for assignment in ASSIGNMENTS:
        if key.startswith(prefix(assignment) + "."):
            return assignment
    return None


class _AllParts(Mapping):
    """{key: Part} for the whole course; a lookup imports only the key's own assignment."""

    def __getitem__(self, key):
        assignment = _assignment_of(key) if isinstance(key, str) else None
        if assignment is None or key not in parts_of(assignment):
            raise KeyError(key)
        return parts_of(assignment)[key]

    def __iter__(self):
        for assignment in ASSIGNMENTS:
            yield from parts_of(assignment)

    def __len__(self):
        return sum(len(parts_of(a)) for a in ASSIGNMENTS)

    def __repr__(self):
        return f"<the course's parts: {', '.join(self)}>"


PARTS: Mapping[str, Part] = _AllParts()


def get_part(key: str) -> Part:
    """The part `key`; a KeyError naming the known parts otherwise."""
    try:
        return PARTS[key]
    except KeyError:
        raise KeyError(f"unknown part {key!r}; known parts: {', '.join(sorted(PARTS))}") from None
