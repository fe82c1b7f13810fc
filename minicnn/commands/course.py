"""`minicnn course`: the nbgrader course - verify it, release it, grade or validate a notebook.

    minicnn course init DIR               # instructor: a standalone course directory from a clone
    minicnn course verify                 # instructor: the whole course, with real nbgrader; prints a table
    minicnn course release                # regenerate exercises/ from solutions/ with nbgrader
    minicnn course validate NOTEBOOK      # student: run the checks; exit 1 if any falls short
    minicnn course grade ASSIGNMENT       # instructor: grade COURSE/submitted/*/ASSIGNMENT in parallel, sandboxed
    minicnn course grade NOTEBOOK         # one filled-in notebook, graded the same way; per-part table
    minicnn course similarity ASSIGNMENT  # instructor: copies in a submitted class (also run by grade)
    minicnn course roster import FILE     # instructor: the class list into the gradebook (names for formgrader)
    minicnn course export --format canvas|moodle -o FILE   # instructor: the gradebook for the LMS's import

Needs the `course` extra (nbgrader): pip install -e '.[course]'.
"""
from __future__ import annotations

import os
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
    from ..grader import verify

    try:
        return verify.verify(root=args.course, only=args.assignment or None, with_mutants=not args.no_mutants,
                             jobs=args.jobs, keep=Path(args.keep) if args.keep else None, secret=args.secret)
    except (FileNotFoundError, ValueError) as exc:   # a course secret that is missing or readable by others
        print(f"minicnn course verify: {exc}", file=sys.stderr)
        return 2


def _release(args) -> int:
    if not _need_nbgrader():
        return 2
    from ..grader import locate, nbg

    root = locate.course_root(args.course)
    names = args.assignment or nbg.assignments(root)
    with tempfile.TemporaryDirectory(prefix="minicnn-release-") as tmp:
        written = nbg.release(root / nbg.RELEASE_DIR, Path(tmp), root, only=names)
    for path in written:
        print(f"wrote {path.relative_to(root)}")
    print(f"{len(written)} notebook(s) released into {root / nbg.RELEASE_DIR} by nbgrader generate_assignment")
    return 0


def _init(args) -> int:
    if not _need_nbgrader():
        return 2
    from ..grader import init

    try:
        dest = init.init_course(args.directory, source=args.source, release=not args.no_release)
    except (FileExistsError, FileNotFoundError, ValueError) as exc:
        print(exc, file=sys.stderr)
        return 2
    print(f"made the course directory {dest}: solutions/, autograder/nbgrader_config.py, exercises/, "
          f".minicnn/secret, .minicnn/roster.csv\nnext: cd {dest} && minicnn course verify")
    return 0


def _assignment_of(notebook: Path, root) -> str:
    from ..grader import nbg

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
    from ..grader import batch, outputs
    from ..sandbox import isolation

    try:
        limits = isolation.Limits(wall=args.timeout, memory_mb=args.memory)
    except ValueError as exc:
        print(f"minicnn course grade: {exc}", file=sys.stderr)
        return 2
    browser = None
    if args.pdf:
        from ..grader import pdf
        try:
            browser = pdf.require_browser()     # before any grading: a missing browser is said at once
        except pdf.NoBrowser as exc:
            print(f"minicnn course grade: {exc}", file=sys.stderr)
            return 2
    target = Path(args.target)
    if target.suffix == ".ipynb" or target.is_file():
        return _grade_one(args, target.resolve(), limits, browser)
    course = Path(args.course).resolve()
    security = None
    if args.tls_ca_file or args.tls_cert or args.tls_key:
        if not (args.tls_ca_file and args.tls_cert and args.tls_key):
            print("minicnn course grade: --tls-ca-file, --tls-cert and --tls-key go together", file=sys.stderr)
            return 2
        from distributed import Security
        security = Security(tls_ca_file=args.tls_ca_file, tls_client_cert=args.tls_cert,
                            tls_client_key=args.tls_key, require_encryption=True)
    try:
        report = batch.grade_batch(args.target, course, jobs=args.jobs, isolation_mode=args.isolation, limits=limits,
                                   only=set(args.student) if args.student else None, progress=not args.no_progress,
                                   case_timeout=args.case_timeout, secret=args.secret, scheduler=args.scheduler,
                                   allow_plain=args.allow_plain_tcp, security=security, force=args.force,
                                   dashboard=args.dashboard, pdf_browser=browser)
    except (FileNotFoundError, RuntimeError, ValueError, OSError) as exc:
        print(f"minicnn course grade: {exc}", file=sys.stderr)
        return 2
    print(outputs.summary_table(report))
    print(f"gradebook: {course / 'gradebook.db'}\nper-part grades: {report['csv']}\n"
          f"feedback: {course / 'feedback'}/<student>/{args.target}/\nreport: {report['report']}")
    if report["gradebook_tampering"]:
        print(f"WARNING: {report['gradebook_tampering']}")
    return 0


def _plain_id(student: str) -> bool:
    """Can `student` name one folder (submitted/<student>/...) and nothing else?"""
    return bool(student) and student not in (".", "..") and "/" not in student and "\0" not in student \
        and (os.altsep is None or os.altsep not in student)


def _grade_one(args, notebook: Path, limits, browser=None) -> int:
    """One filled-in notebook, graded exactly as a class would be (in a scratch course directory)."""
    from ..grader import batch, locate
    from ..grader.record import Grade

    if not notebook.exists():
        print(f"no such notebook: {notebook}", file=sys.stderr)
        return 2
    if not notebook.is_file():
        print(f"minicnn course grade: {notebook} is not a notebook file (a directory?)", file=sys.stderr)
        return 2
    if args.student and not _plain_id(args.student[0]):
        print(f"minicnn course grade: --student must be a student id, usable as one folder name (not empty, no "
              f"'/' or NUL, not '.' or '..'); got {args.student[0]!r}", file=sys.stderr)
        return 2
    out_html = Path(args.feedback or notebook.with_name(f"{notebook.stem}-feedback.html")).resolve()
    if out_html.is_dir() or not out_html.parent.is_dir():
        print(f"minicnn course grade: --feedback {out_html}: "
              + ("that is a directory; name the file to write" if out_html.is_dir()
                 else f"its folder {out_html.parent} does not exist"), file=sys.stderr)
        return 2
    root = locate.course_root()
    assignment = _assignment_of(notebook, root)
    # the student id the hidden seeds are derived for: --student, else the folder of nbgrader's
    # layout (submitted/<student>/<assignment>/<assignment>.ipynb), as a batch would grade it
    layout = notebook.parent.name == assignment and notebook.parent.parent.parent.name == "submitted"
    student = args.student[0] if args.student else notebook.parent.parent.name if layout else "me"
    with tempfile.TemporaryDirectory(prefix="minicnn-grade-") as tmp:
        course = Path(tmp)
        folder = course / "submitted" / student / assignment
        folder.mkdir(parents=True)
        shutil.copyfile(notebook, folder / f"{assignment}.ipynb")
        print(f"grading {notebook.name} as {student!r} ...", flush=True)
        try:
            report = batch.grade_batch(assignment, course, jobs=1, isolation_mode=args.isolation, limits=limits,
                                       progress=False, case_timeout=args.case_timeout, secret=args.secret,
                                       secret_course=root)
        except (FileNotFoundError, ValueError) as exc:
            print(f"minicnn course grade: {exc}", file=sys.stderr)
            return 2
        rec = Grade.from_dict(report["records"][0])
        shutil.copyfile(course / "feedback" / student / assignment / f"{assignment}.html", out_html)
    pdf_note = ""
    if browser:
        from ..grader import pdf
        try:
            pdf.html_to_pdf(out_html, out_html.with_suffix(".pdf"), browser)
            pdf_note = f"\nPDF feedback: {out_html.with_suffix('.pdf')}"
        except (OSError, RuntimeError) as exc:
            pdf_note = f"\nPDF feedback not made: {exc}"
    width = max([len("part")] + [len(p.grade_id) for p in rec.parts])   # no parts: the grading failed
    print(f"\n{'part'.ljust(width)}  points")
    for p in rec.parts:
        print(f"{p.grade_id.ljust(width)}  {p.score:g} / {p.max:g}")
        if args.details and p.score < p.max:
            lines = [ln for ln in p.lines[1:] if ln.strip() and not ln.lstrip().startswith("ok ")]
            for line in lines:   # all of it (the grader keeps at most 60 lines a part): --details asked for it
                print(f"  {line}")
    if rec.reason:
        print(f"\nnote: {rec.reason}")
    for err in rec.cell_errors:
        print(f"cell error: {err}")
    print(f"\nautograded: {rec.total:g} of {rec.most:g} points (parts graded by hand are not included)")
    print(f"feedback: {out_html}{pdf_note}")
    return 0


def _similarity(args) -> int:
    """Compare an already-submitted class (no grading): pairs of students, minicnn's own code,
    the instructor's solution; writes COURSE/grades/ASSIGNMENT-similarity.csv."""
    from ..course.notebook import read_notebook
    from ..grader import locate, similarity

    course = Path(args.course).resolve()
    settings = similarity.Settings(threshold=args.threshold, min_shared=args.min_shared)
    try:
        source_nb = read_notebook(locate.source_notebook(args.assignment, course))
        notebooks = similarity.read_class(course, args.assignment)
    except (FileNotFoundError, OSError, ValueError) as exc:
        print(f"minicnn course similarity: {exc}", file=sys.stderr)
        return 2
    result = similarity.class_similarity(args.assignment, source_nb, notebooks,
                                         similarity.release_of(args.assignment, course), settings)
    path = similarity.write_csv(similarity.csv_path(course, args.assignment), result)
    print(similarity.summary(result, path))
    return 0


def _validate(args) -> int:
    if not _need_nbgrader():
        return 2
    import os

    from nbgrader.preprocessors import CheckCellMetadata, ClearOutput
    from nbgrader.validator import Validator
    from traitlets.config import Config

    from ..grader.nbgrader_ext import Execute

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


def _roster(args) -> int:
    if not _need_nbgrader():
        return 2
    from ..grader import roster

    course = Path(args.course).resolve()
    path = Path(args.file) if args.file else course / roster.ROSTER
    try:
        students = roster.import_roster(course, path)
    except (OSError, roster.RosterError) as exc:
        print(f"minicnn course roster import: {exc}", file=sys.stderr)
        return 1
    print(f"imported {len(students)} student(s) from {path} into {course / 'gradebook.db'}")
    return 0


def _export(args) -> int:
    if not _need_nbgrader():
        return 2
    from ..grader import lms

    course = Path(args.course).resolve()
    try:
        warnings = lms.write(course, args.format, Path(args.output), args.assignment or None, args.parts)
    except (OSError, ValueError) as exc:
        print(f"minicnn course export: {exc}", file=sys.stderr)
        return 2
    for line in warnings:
        print(f"warning: {line}", file=sys.stderr)
    print(f"wrote {args.output} ({args.format})")
    return 0


COURSE_HELP = ("the course directory holding solutions/, exercises/ and autograder/ (default: $MINICNN_COURSE_DIR, "
               "else the current directory if it is one, else the clone minicnn is installed from)")


def add_parser(sub):
    p = sub.add_parser("course", help="the nbgrader course: verify, release, validate, grade")
    csub = p.add_subparsers(dest="course_command", metavar="ACTION")
    v = csub.add_parser("verify", help="run the whole course through nbgrader and print the verification table")
    v.add_argument("--assignment", action="append", help="only this assignment (repeatable)")
    v.add_argument("--no-mutants", action="store_true", help="skip the known-wrong implementations (d)")
    v.add_argument("--jobs", type=int, default=None, help="assignments graded at once (default: CPU count)")
    v.add_argument("--keep", metavar="DIR", help="work in DIR and keep it (notebooks, gradebook, logs)")
    v.add_argument("--course", metavar="DIR", default=None, help=COURSE_HELP)
    v.add_argument("--secret", metavar="FILE", default=None,
                   help="the course secret the hidden seeds are derived from, as by `course grade` for the student "
                        "'verify' (default: $MINICNN_COURSE_SECRET_FILE, else the course directory's .minicnn/secret)")
    v.set_defaults(func=_verify)
    i = csub.add_parser("init", help="make a standalone course directory (solutions, configuration, release, "
                                     "secret, roster) from a clone of minicnn")
    i.add_argument("directory", metavar="DIR", help="the new course directory (must not exist or be empty)")
    i.add_argument("--from", dest="source", metavar="CLONE", default=None,
                   help="the clone (or course directory) to copy from (default: found as for --course)")
    i.add_argument("--no-release", action="store_true", help="do not generate exercises/ now")
    i.set_defaults(func=_init)
    r = csub.add_parser("release", help="regenerate exercises/ from solutions/ with nbgrader generate_assignment")
    r.add_argument("--assignment", action="append", help="only this assignment (repeatable)")
    r.add_argument("--course", metavar="DIR", default=None, help=COURSE_HELP)
    r.set_defaults(func=_release)
    g = csub.add_parser("grade", help="grade a class (ASSIGNMENT, nbgrader's submitted/ layout) or one notebook, "
                                      "with student code walled off from the grader")
    g.add_argument("target", metavar="ASSIGNMENT|NOTEBOOK",
                   help="an assignment id such as a1_convolution (grades COURSE/submitted/*/ASSIGNMENT/), "
                        "or one filled-in notebook such as a1_convolution.ipynb")
    g.add_argument("--course", default=".", help="the course directory holding submitted/ (default: here)")
    g.add_argument("--jobs", type=int, default=None, help="submissions graded at once (default: CPU count)")
    g.add_argument("--isolation", choices=("auto", "bwrap", "rlimits"), default="auto",
                   help="bwrap (bubblewrap sandbox), rlimits (resource limits only), auto: bwrap when installed")
    g.add_argument("--student", action="append", help="only this student (repeatable); with a notebook: its id "
                   "(the hidden seeds are derived for it; default: the folder in submitted/<student>/, else 'me')")
    g.add_argument("--secret", metavar="FILE", default=None,
                   help="the course secret the hidden seeds are derived from (default: $MINICNN_COURSE_SECRET_FILE, "
                        "else the course directory's .minicnn/secret; none: the notebooks' fixed seeds)")
    g.add_argument("--timeout", type=float, default=600.0, help="seconds per submission, all of it (default 600)")
    g.add_argument("--memory", type=int, default=2048, help="MB of memory per process (at least 1024; default 2048)")
    g.add_argument("--case-timeout", type=float, default=None, help="cap on the seconds per call of a function")
    g.add_argument("--no-progress", action="store_true", help="no progress bar")
    g.add_argument("--force", action="store_true", help="regrade every student, also those with a current record")
    g.add_argument("--scheduler", metavar="ADDRESS", default=None,
                   help="grade on the Dask cluster at ADDRESS, e.g. tls://grader:8786 (default: "
                        "$DASK_SCHEDULER_ADDRESS, else a local cluster of --jobs processes)")
    g.add_argument("--allow-plain-tcp", action="store_true",
                   help="allow an unauthenticated tcp:// scheduler on another host (a private network only)")
    g.add_argument("--tls-ca-file", metavar="PEM", help="TLS: the cluster's certificate authority")
    g.add_argument("--tls-cert", metavar="PEM", help="TLS: this client's certificate")
    g.add_argument("--tls-key", metavar="PEM", help="TLS: this client's private key")
    g.add_argument("--dashboard", action="store_true", help="with a local cluster: start Dask's dashboard")
    g.add_argument("--feedback", metavar="HTML", help="with a notebook: where to write its feedback")
    g.add_argument("--pdf", action="store_true", help="also print each feedback page to PDF beside its HTML "
                   "(needs headless Chromium: apt-get install chromium)")
    g.add_argument("--details", action="store_true", help="with a notebook: print the failing checks' feedback")
    g.set_defaults(func=_grade)
    s = csub.add_parser("similarity", help="copies in a submitted class: students alike, minicnn's own code, the "
                                           "instructor's solution (flags for a person; no score changes)")
    s.add_argument("assignment", metavar="ASSIGNMENT", help="an assignment id such as a1_convolution")
    s.add_argument("--course", default=".", help="the course directory holding submitted/ (default: here)")
    s.add_argument("--threshold", type=float, default=0.75, help="flag at this score (shared fingerprints over the "
                                                                  "smaller side's) or above (default 0.75)")
    s.add_argument("--min-shared", type=int, default=12, help="and at least this many fingerprints (default 12)")
    s.set_defaults(func=_similarity)
    ro = csub.add_parser("roster", help="the class list: import a roster CSV into the gradebook")
    rsub = ro.add_subparsers(dest="roster_command", metavar="ACTION")
    ri = rsub.add_parser("import", help="check a roster CSV (student_id,first_name,last_name,email,lms_id) and put "
                                        "its students into the gradebook; nothing is imported when a row is wrong")
    ri.add_argument("file", metavar="FILE", nargs="?", default=None,
                    help="the roster CSV (default: COURSE/.minicnn/roster.csv)")
    ri.add_argument("--course", default=".", help="the course directory holding gradebook.db (default: here)")
    ri.set_defaults(func=_roster)
    ro.set_defaults(func=lambda args: (ro.print_help(), 2)[1])
    e = csub.add_parser("export", help="the gradebook (late penalties applied) as a Canvas or Moodle grade import CSV")
    e.add_argument("--format", choices=("canvas", "moodle"), required=True)
    e.add_argument("--assignment", action="append", help="only this assignment (repeatable; default: all)")
    e.add_argument("--parts", action="store_true", help="a column per graded part too")
    e.add_argument("-o", "--output", required=True, metavar="FILE", help="the CSV to write")
    e.add_argument("--course", default=".", help="the course directory holding gradebook.db (default: here)")
    e.set_defaults(func=_export)
    c = csub.add_parser("validate", help="run a notebook's checks with nbgrader validate; exit 1 when any fails")
    c.add_argument("notebook")
    c.set_defaults(func=_validate)

    def _help(args):
        p.print_help()
        return 2
    p.set_defaults(func=_help)
