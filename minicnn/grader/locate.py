"""Where the course's notebooks are: the one lookup of the course directory and of an
assignment's source notebook.

The course directory holds solutions/ (the instructor's notebooks), exercises/ (the release)
and autograder/nbgrader_config.py.  It is, in this order:

1. the directory given explicitly (a `--course` argument, or a caller's `root=`);
2. $MINICNN_COURSE_DIR when set;
3. the current directory, when it has that layout;
4. the clone this package sits in (an editable install: `pip install -e '.[course]'`).
"""
from __future__ import annotations

import os
from pathlib import Path

SOURCE_DIR = "solutions"
RELEASE_DIR = "exercises"
MUTANTS_FILE = Path(SOURCE_DIR) / "mutants.py"   # the known-wrong implementations (instructor's, like solutions/)
CONFIG = Path("autograder") / "nbgrader_config.py"
PACKAGE_DIR = Path(__file__).resolve().parent.parent   # the minicnn package


def is_course_dir(path: Path) -> bool:
    """Does `path` have the course layout (solutions/ and autograder/nbgrader_config.py)?"""
    return (path / SOURCE_DIR).is_dir() and (path / CONFIG).is_file()


def course_root(explicit=None) -> Path:
    """The course directory (see the module docstring); FileNotFoundError when none is found."""
    if explicit is not None:
        return Path(explicit).resolve()
    env = os.environ.get("MINICNN_COURSE_DIR")
    if env:
        return Path(env).resolve()
    for candidate in (Path.cwd(), PACKAGE_DIR.parent):
        if is_course_dir(candidate):
            return candidate.resolve()
    raise FileNotFoundError(
        f"no course directory (with {SOURCE_DIR}/ and {CONFIG}) here or around the installed package: run from "
        "a clone of minicnn, pass --course DIR, or set MINICNN_COURSE_DIR")


def _roots(course=None) -> list:
    """Where an assignment's notebooks are looked for: `course` first when given, then the course
    directory course_root() finds (when there is one)."""
    roots = [Path(course)] if course is not None else []
    try:
        roots.append(course_root())
    except FileNotFoundError:
        pass
    return roots


def _first_notebook(kind: str, assignment: str, roots) -> Path | None:
    for root in roots:
        path = root / kind / assignment / f"{assignment}.ipynb"
        if path.is_file():
            return path
    return None


def source_notebook(assignment: str, course=None) -> Path:
    """solutions/<assignment>/<assignment>.ipynb: in `course` when it has one (an nbgrader course
    directory may carry its own source), else in the course directory found by course_root()."""
    roots = _roots(course)
    path = _first_notebook(SOURCE_DIR, assignment, roots)
    if path is not None:
        return path
    where = " or ".join(str(r) for r in roots) if roots else "any course directory"
    raise FileNotFoundError(f"no source notebook {SOURCE_DIR}/{assignment}/{assignment}.ipynb in {where}")


def release_notebook(assignment: str, course=None) -> Path | None:
    """exercises/<assignment>/<assignment>.ipynb, looked for as source_notebook looks; None if absent."""
    return _first_notebook(RELEASE_DIR, assignment, _roots(course))


def mutants_file(course=None) -> Path:
    """solutions/mutants.py, the known-wrong implementations `course verify` grades: in `course`
    when it has one, else in the course directory found by course_root().  The mutants quote the
    solutions, so they live with them and never in the package."""
    roots = _roots(course)
    for root in roots:
        if (root / MUTANTS_FILE).is_file():
            return root / MUTANTS_FILE
    where = " or ".join(str(r) for r in roots) if roots else "any course directory"
    raise FileNotFoundError(f"no {MUTANTS_FILE} in {where}")
