"""Reading a notebook's cells (the one reader the course and the grader use).

A notebook is JSON; nothing here executes it.  Every accessor tolerates a malformed notebook
(a cell that is not a record, a source that is neither text nor a list of lines): a
submission is untrusted input.
"""
from __future__ import annotations

import json
import re
from pathlib import Path

HIDDEN_BLOCK = re.compile(r"^[ \t]*### BEGIN HIDDEN TESTS.*?^[ \t]*### END HIDDEN TESTS[^\n]*\n?", re.S | re.M)


def read_notebook(path) -> dict:
    """The notebook at `path`, parsed (ValueError or OSError when it cannot be read)."""
    return json.loads(Path(path).read_text(encoding="utf-8"))


def cells_of(nb: dict) -> list:
    """The notebook's cells that are records; ValueError when it has no list of cells."""
    cells = nb.get("cells") if isinstance(nb, dict) else None
    if not isinstance(cells, list):
        if isinstance(nb, dict) and ("worksheets" in nb or nb.get("nbformat") in (1, 2, 3)):
            raise ValueError(f"it is in the old notebook format {nb.get('nbformat', 3)} (before Jupyter 4, "
                             "cells inside 'worksheets'); open it in Jupyter and save it, or run `jupyter "
                             "nbconvert --to notebook --nbformat 4`, then hand it in again")
        raise ValueError("it has no list of cells")
    return [c for c in cells if isinstance(c, dict)]


def source_text(cell: dict) -> str:
    """The cell's source as one string (nbformat allows a list of lines)."""
    src = cell.get("source", "")
    if isinstance(src, list):
        return "".join(s for s in src if isinstance(s, str))
    return src if isinstance(src, str) else ""


def nbgrader_meta(cell: dict) -> dict:
    """The cell's nbgrader metadata ({} when it has none)."""
    meta = cell.get("metadata", {})
    meta = meta.get("nbgrader", {}) if isinstance(meta, dict) else {}
    return meta if isinstance(meta, dict) else {}


def grade_id(cell: dict):
    return nbgrader_meta(cell).get("grade_id")


def is_test_cell(cell) -> bool:
    """An autograded test cell (graded, not an answer)."""
    m = nbgrader_meta(cell)
    return cell.get("cell_type") == "code" and bool(m.get("grade")) and not m.get("solution")


def is_manual_cell(cell) -> bool:
    """An answer graded by hand (graded and an answer)."""
    m = nbgrader_meta(cell)
    return bool(m.get("grade")) and bool(m.get("solution"))


def is_solution_cell(cell) -> bool:
    """A code cell the student fills in."""
    return cell.get("cell_type") == "code" and bool(nbgrader_meta(cell).get("solution"))


def release_text(source: str) -> str:
    """A test cell as students see it: without the hidden-tests block."""
    return HIDDEN_BLOCK.sub("", source)


def solution_cell_sources(nb: dict) -> dict:
    """{grade_id: source} of the solution (answer) code cells of a notebook."""
    return {grade_id(c): source_text(c) for c in cells_of(nb) if is_solution_cell(c)}


def cell_output_text(cell: dict) -> str:
    """What a cell printed or showed, as text (stream, error and text/plain outputs)."""
    parts = []
    for out in cell.get("outputs", []):
        if out.get("output_type") == "stream":
            parts.append("".join(out.get("text", "")))
        elif out.get("output_type") == "error":
            parts.append(f"{out.get('ename')}: {out.get('evalue')}")
        elif "data" in out:
            parts.append("".join(out["data"].get("text/plain", "")))
    return "".join(parts)
