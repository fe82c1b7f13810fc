"""`minicnn course`: the nbgrader course - verify it, release it, grade or validate a notebook.

    minicnn course verify                 # instructor: the whole course, with real nbgrader; prints a table
    minicnn course release                # regenerate exercises/ from solutions/ with nbgrader
    minicnn course validate NOTEBOOK      # student: run the checks; exit 1 if any falls short
    minicnn course grade NOTEBOOK         # autograde one filled-in notebook; per-part table + feedback HTML

Needs the `course` extra (nbgrader): pip install -e '.[course]'.
"""
from __future__ import annotations

import shutil
import sys
import tempfile
from pathlib import Path


def _need_nbgrader() -> bool:
    try:
        import nbgrader  # noqa: F401
    except ImportError:
        print("minicnn course needs nbgrader: pip install -e '.[course]'", file=sys.stderr)
        return False
    return True


def _verify(args) -> int:
    if not _need_nbgrader():
        return 2
    from ..course import verify

    return verify.verify(only=args.assignment or None, with_mutants=not args.no_mutants, jobs=args.jobs,
                         keep=Path(args.keep) if args.keep else None)


def _release(args) -> int:
    if not _need_nbgrader():
        return 2
    from ..course import course_root, nbg

    root = course_root()
    names = args.assignment or nbg.assignments(root)
    with tempfile.TemporaryDirectory(prefix="minicnn-release-") as tmp:
        written = nbg.release(root / nbg.RELEASE_DIR, Path(tmp), root, only=names)
    for path in written:
        print(f"wrote {path.relative_to(root)}")
    print(f"{len(written)} notebook(s) released into {root / nbg.RELEASE_DIR} by nbgrader generate_assignment")
    return 0


def _assignment_of(notebook: Path, root) -> str:
    from ..course import nbg

    names = nbg.assignments(root)
    if notebook.stem in names:
        return notebook.stem
    raise SystemExit(f"{notebook.name}: the notebook's name must be one of "
                     f"{', '.join(n + '.ipynb' for n in names)} (as released)")


def _excerpt(lines, head=10):
    """The first lines of a check's feedback, plus every hint further down."""
    out = list(lines[:head])
    out += [ln for ln in lines[head:] if ln.strip().startswith(("hint:", "FAIL"))][:10]
    return out


def _is_number(text: str) -> bool:
    try:
        float(text)
        return True
    except ValueError:
        return False


def _grade(args) -> int:
    if not _need_nbgrader():
        return 2
    from ..course import course_root, nbg

    root = course_root()
    notebook = Path(args.notebook).resolve()
    if not notebook.exists():
        print(f"no such notebook: {notebook}", file=sys.stderr)
        return 2
    assignment = _assignment_of(notebook, root)
    student = args.student
    with tempfile.TemporaryDirectory(prefix="minicnn-grade-") as tmp:
        course = nbg.CourseDir(Path(tmp), root)
        course.add_source(assignment)
        course.generate(assignment)
        course.submit(assignment, student, notebook)
        print(f"autograding {notebook.name} as {student!r} with nbgrader ...", flush=True)
        course.autograde(assignment, student)
        scores = course.scores(assignment, student)
        feedback_dir = course.feedback(assignment, student)
        html = feedback_dir / student / assignment / f"{assignment}.html"
        out_html = Path(args.feedback or notebook.with_name(f"{notebook.stem}-feedback.html")).resolve()
        shutil.copyfile(html, out_html)
        width = max(len(s.grade_id) for s in scores.values())
        total = got = 0.0
        pending = 0.0
        print(f"\n{'part'.ljust(width)}  points")
        for s in scores.values():
            if s.score is None:
                pending += s.max_score
                print(f"{s.grade_id.ljust(width)}  graded by hand (of {s.max_score:g})")
                continue
            total += s.max_score
            got += s.score
            print(f"{s.grade_id.ljust(width)}  {s.score:g} / {s.max_score:g}")
            if args.details and s.score < s.max_score and s.auto:
                lines = [ln for ln in course.cell_output(assignment, student, s.grade_id).splitlines()
                         if ln.strip() and not ln.lstrip().startswith("ok ") and not _is_number(ln)]
                for line in _excerpt(lines[1:]):  # the first line repeats the score
                    print(f"  {line}")
        print(f"\nautograded: {got:g} of {total:g} points" + (f"; {pending:g} more graded by hand" if pending else ""))
        print(f"feedback: {out_html}")
    return 0


def _validate(args) -> int:
    if not _need_nbgrader():
        return 2
    import os

    from nbgrader.preprocessors import CheckCellMetadata, ClearOutput
    from nbgrader.validator import Validator
    from traitlets.config import Config

    from ..course.nbgrader_ext import Execute

    os.environ["NUMBA_BOUNDSCHECK"] = "1"
    cfg = Config()
    cfg.Execute.timeout = 300
    cfg.Execute.raise_on_iopub_timeout = False

    notebook = Path(args.notebook).resolve()
    print(f"running {notebook.name} with nbgrader validate ...", flush=True)
    class KeepingValidator(Validator):
        """nbgrader's Validator, keeping the executed notebook so that the checks' feedback can be shown."""

        def _preprocess(self, nb):
            self.executed = super()._preprocess(nb)
            return self.executed

    validator = KeepingValidator(config=cfg)
    validator.preprocessors = [CheckCellMetadata, ClearOutput, Execute]  # not configurable in nbgrader 0.9.6
    results = validator.validate(str(notebook))
    feedback = {}
    for cell in getattr(validator, "executed", {"cells": []})["cells"]:
        text = "".join(o.get("text", "") for o in cell.get("outputs", []) if o.get("output_type") == "stream")
        feedback[cell.get("source", "").strip()] = text
    if results.get("type_changed") or results.get("changed"):
        print("Some cells were changed or deleted that must not be (test cells, read-only cells):")
        for cell in results.get("type_changed", []) + results.get("changed", []):
            print("  ---\n  " + cell["source"][:300].replace("\n", "\n  "))
        return 1
    failed = results.get("failed", [])
    if failed:
        print(f"{len(failed)} check cell(s) fall short:")
        for cell in failed:
            print("  --- " + cell["source"].strip().splitlines()[-1])
            shown = [ln for ln in feedback.get(cell["source"].strip(), "").splitlines()
                     if ln.strip() and not ln.lstrip().startswith("ok ")]
            for line in _excerpt(shown or cell["raw_error"].strip().splitlines()):
                print("      " + line)
        return 1
    print("Every check passes.")
    return 0


def add_parser(sub):
    p = sub.add_parser("course", help="the nbgrader course: verify, release, validate, grade")
    csub = p.add_subparsers(dest="course_command", metavar="ACTION")
    v = csub.add_parser("verify", help="run the whole course through nbgrader and print the verification table")
    v.add_argument("--assignment", action="append", help="only this assignment (repeatable)")
    v.add_argument("--no-mutants", action="store_true", help="skip the known-wrong implementations (d)")
    v.add_argument("--jobs", type=int, default=None, help="assignments graded at once (default: CPU count)")
    v.add_argument("--keep", metavar="DIR", help="work in DIR and keep it (notebooks, gradebook, logs)")
    v.set_defaults(func=_verify)
    r = csub.add_parser("release", help="regenerate exercises/ from solutions/ with nbgrader generate_assignment")
    r.add_argument("--assignment", action="append", help="only this assignment (repeatable)")
    r.set_defaults(func=_release)
    g = csub.add_parser("grade", help="autograde one filled-in notebook with nbgrader")
    g.add_argument("notebook", help="a released notebook, e.g. a1_convolution.ipynb, filled in")
    g.add_argument("--student", default="me", help="student id to grade as (default: me)")
    g.add_argument("--feedback", metavar="HTML", help="where to write the feedback (default: beside the notebook)")
    g.add_argument("--details", action="store_true", help="print the failing checks' feedback too")
    g.set_defaults(func=_grade)
    c = csub.add_parser("validate", help="run a notebook's checks with nbgrader validate; exit 1 when any fails")
    c.add_argument("notebook")
    c.set_defaults(func=_validate)

    def _help(args):
        p.print_help()
        return 2
    p.set_defaults(func=_help)
