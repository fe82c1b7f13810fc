"""Every graded part of the course, by key ("a1.correlate2d", ...): built once, explicitly,
from the six assignment modules' PARTS lists (no registration by import side effect)."""
from __future__ import annotations

from . import a1_convolution, a2_volumes_pooling, a3_backprop, a4_gpu, a5_lenet, a6_beyond
from .part import Part

ASSIGNMENTS = {
    "a1_convolution": a1_convolution.PARTS,
    "a2_volumes_pooling": a2_volumes_pooling.PARTS,
    "a3_backprop": a3_backprop.PARTS,
    "a4_gpu": a4_gpu.PARTS,
    "a5_lenet": a5_lenet.PARTS,
    "a6_beyond": a6_beyond.PARTS,
}


def _table() -> dict[str, Part]:
    table: dict[str, Part] = {}
    for assignment, parts in ASSIGNMENTS.items():
        for part in parts:
            if part.key in table:
                raise ValueError(f"part {part.key!r} of {assignment} is defined twice")
            table[part.key] = part
    return table


PARTS: dict[str, Part] = _table()


def get_part(key: str) -> Part:
    """The part `key`; a KeyError naming the known parts otherwise."""
    if key not in PARTS:
        raise KeyError(f"unknown part {key!r}; known parts: {', '.join(sorted(PARTS))}")
    return PARTS[key]
