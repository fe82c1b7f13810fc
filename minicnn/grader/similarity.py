"""Copies caught: winnowed fingerprints of every graded function, compared across a class, with
minicnn's own reference sources and with the instructor's solution (in the spirit of MOSS:
Schleimer, Wilkerson and Aiken, "Winnowing: local algorithms for document fingerprinting", 2003).

For each graded part (the function a test cell names) and each student (fingerprint.py reads
the code; this module compares):

1. the code: the student's last top-level definition of the function, plus every top-level
   definition of the student's it uses, at any depth (helpers, lookup tables, `f = njit(g)`),
   taken from the cells the grader runs (plan.program; the read-only cells are the
   instructor's and left out);
2. normalised tokens (Python's tokenize): every identifier becomes `V`, every number `N`, every
   string `S`; comments, docstrings (a string standing alone as a statement), line breaks and
   indentation are dropped, so renaming and reformatting change nothing;
3. a hash of every k consecutive tokens (a k-gram), then winnowing: in every window of w
   consecutive hashes the smallest is kept.  A shared run of at least w + k - 1 tokens is always
   seen; runs shorter than k never are (the noise floor);
4. the base: every k-gram of the released template (the exercise notebook, and the source with
   its solutions cleared) is dropped, so two students who left the template alone share nothing.

Pairs are found through an index (fingerprint -> students), so the work grows with the
fingerprints students share, not with the square of the class.  A fingerprint shared by more
than `common` students (an idiom everyone writes) is left out of the student-to-student
comparison, as MOSS does; the comparison with minicnn's sources and with the solution keeps it.

A pair's score is shared / min(|A|, |B|) (containment: a copy padded with extra code still
scores high), counted only when at least `min_shared` fingerprints are shared.  Flags inform the
instructor; they never change a score.
"""

from __future__ import annotations

import csv
import os
import stat
from dataclasses import dataclass
from pathlib import Path

from ..course.notebook import read_notebook
from .fingerprint import (K, WINDOW, Doc, base_hashes, graded_functions, make_doc, parse_cells, part_segments,
                          reference_docs, solution_cells, template_texts, top_level_defs)
from .plan import program

# The defaults, from measurements on this repository (tests/course/test_similarity.py and the
# fixtures in tests/course/submissions/, k=12, w=8):
#   copies: the solution renamed and reformatted 1.00 on every part; the a1 fixtures (the solution
#     plus attack code or a mutation) 0.80-1.00 against the solution; minicnn's loops.py pasted
#     and renamed behind the graded function 0.96 (max pooling) and 0.89 (convolution);
#   not copies: independently written a1/a2 solutions in another style 0.06-0.33 against each
#     other and the solution; the instructor's own loops against minicnn's loops.py (the same
#     natural shape) up to 0.68 before the solution's fingerprints are set aside, other
#     minicnn files up to 0.58.
#   Parts under 12 fingerprints (output_size 4, param_count 9, zero_pad 10) are too short to tell
#     a copy from the one natural way to write them, so they are never flagged.
THRESHOLD = 0.75    # flag at this score or above
MIN_SHARED = 12     # ... and with at least this many fingerprints shared


# ----------------------------------------------------------------------------- comparing

@dataclass
class Match:
    """Two documents of one part that share fingerprints: `b` is a student, "solution" or
    "minicnn:<file>"."""

    a: str
    b: str
    part: str
    score: float           # shared / min(|A|, |B|)
    jaccard: float         # shared / |A u B|
    shared: int
    evidence: str          # "cell L3-9 ~ cell L12-18: first line ~ first line"
    excerpt_a: list        # the longest shared region's lines, side by side with ...
    excerpt_b: list        # ... the other's

    def to_dict(self) -> dict:
        return dict(self.__dict__)


def _region(doc: Doc, positions: list[int], k: int) -> tuple[str, int, int]:
    """(label, first line, last line) covered by the k-grams starting at `positions`."""
    first = doc.where[min(positions)]
    end = min(max(positions) + k - 1, len(doc.where) - 1)
    last = max((ln for lab, ln in doc.where[min(positions):end + 1] if lab == first[0]), default=first[1])
    return first[0], first[1], last


def _quote(doc: Doc, region, most: int = 12) -> list[str]:
    label, first, last = region
    return doc.texts.get(label, "").splitlines()[first - 1:min(last, first + most - 1)]


def _cluster(positions: list[int], gap: int) -> list[int]:
    """The largest run of sorted positions with neighbours at most `gap` apart."""
    best, run = [], []
    for pos in positions:
        if run and pos - run[-1] > gap:
            run = []
        run.append(pos)
        if len(run) > len(best):
            best = list(run)
    return best


def evidence(a: Doc, b: Doc, shared: set, k: int = K, w: int = WINDOW) -> tuple[str, list, list]:
    """The longest run of shared fingerprints in `a` (neighbours at most k + w tokens apart), the
    same fingerprints' place in `b`, and both passages' lines."""
    marks = sorted((p[0], h) for h, p in a.prints.items() if h in shared)
    best, run = [], []
    for pos, h in marks:
        if run and pos - run[-1][0] > k + w:
            run = []
        run.append((pos, h))
        if len(run) > len(best):
            best = list(run)
    if not best:
        return "", [], []
    ra = _region(a, [p for p, _ in best], k)
    rb = _region(b, _cluster(sorted(b.prints[h][0] for _, h in best), k + w), k)
    qa, qb = _quote(a, ra), _quote(b, rb)

    def head(lines):
        return next((ln.strip() for ln in lines if ln.strip()), "")[:60]
    text = f"{ra[0]} L{ra[1]}-{ra[2]} ~ {rb[0]} L{rb[1]}-{rb[2]}: {head(qa)} ~ {head(qb)}"
    return text, qa, qb


def _match(a: Doc, b: Doc, shared: set, size_a: int, size_b: int, k: int, w: int) -> Match:
    n = len(shared)
    ev, qa, qb = evidence(a, b, shared, k, w)
    return Match(a.owner, b.owner, a.part, n / max(1, min(size_a, size_b)), n / max(1, size_a + size_b - n), n,
                 ev, qa, qb)


def _best_function(doc: Doc, shared: set, own: list, least: int) -> tuple[set, int]:
    """(shared fingerprints, size) of the one top-level definition of the part's code (a
    segment) with the largest shared fraction: a helper pasted from minicnn behind the graded
    function is judged on its own, not diluted by the wrapper around it."""
    by_label: dict = {}
    for h in own:
        by_label.setdefault(doc.where[doc.prints[h][0]][0], []).append(h)
    best = (shared, max(1, len(own)))
    for hashes in by_label.values():
        got = {h for h in hashes if h in shared}
        if len(got) >= least and len(got) / len(hashes) > len(best[0]) / best[1]:
            best = (got, len(hashes))
    return best


@dataclass
class Settings:
    threshold: float = THRESHOLD
    min_shared: int = MIN_SHARED
    common: int | None = None   # fingerprints of more students than this are idioms (None: max(20, n / 10))
    k: int = K
    w: int = WINDOW


def compare_class(docs: dict, refs: list[Doc], solutions: dict, settings: Settings = Settings()) -> list[Match]:
    """Every match at or above the threshold.  docs: {part: [Doc of each student]};
    solutions: {part: the instructor's Doc}; refs: minicnn's files."""
    s = settings
    out: list[Match] = []
    ref_index: dict = {}
    for ref in refs:
        for h in ref.prints:
            ref_index.setdefault(h, []).append(ref)
    for part, students in docs.items():
        common = s.common if s.common is not None else max(20, len(students) // 10)
        index: dict = {}
        for i, doc in enumerate(students):
            for h in doc.prints:
                index.setdefault(h, []).append(i)
        idiom = {h for h, owners in index.items() if len(owners) > common}
        sizes = [sum(1 for h in d.prints if h not in idiom) for d in students]
        counts: dict = {}
        for h, owners in index.items():
            if 1 < len(owners) <= common:
                for x in range(len(owners)):
                    for y in range(x + 1, len(owners)):
                        key = (owners[x], owners[y])
                        counts[key] = counts.get(key, 0) + 1
        for (i, j), n in counts.items():
            if n >= s.min_shared and n / max(1, min(sizes[i], sizes[j])) >= s.threshold:
                shared = set(students[i].prints) & set(students[j].prints) - idiom
                out.append(_match(students[i], students[j], shared, sizes[i], sizes[j], s.k, s.w))
        sol = solutions.get(part)
        natural = set(sol.prints) if sol is not None else set()
        for doc in students:
            # minicnn's code: what the instructor's own solution also has is the natural way to
            # write it, not a sign of copying minicnn (a copy of the solution is flagged below)
            own = [h for h in doc.prints if h not in natural]
            others = {}
            for h in own:
                for ref in ref_index.get(h, ()):
                    others.setdefault(ref.owner, (ref, set(), len(own)))[1].add(h)
            if sol is not None:
                both = set(doc.prints) & natural
                if both:
                    others["solution"] = (sol, both, len(doc.prints))
            for other, shared, size_a in others.values():
                if other is not sol:   # minicnn's code: judged function by function (a pasted helper)
                    shared, size_a = _best_function(doc, shared, own, s.min_shared)
                n, size_b = len(shared), len(other.prints)
                if n >= s.min_shared and n / max(1, min(size_a, size_b)) >= s.threshold:
                    m = _match(doc, other, shared, size_a, size_b, s.k, s.w)
                    m.part = part
                    out.append(m)
    out.sort(key=lambda m: (-m.score, m.part, m.a, m.b))
    return out


# ----------------------------------------------------------------------------- a class

@dataclass
class Result:
    assignment: str
    matches: list              # [Match], best first
    students: int
    parts: dict                # {function: part id}
    unread: list               # students whose notebook could not be read (nothing compared)
    settings: Settings


def class_similarity(assignment: str, source_nb: dict, notebooks: dict, release_nb: dict | None = None,
                     settings: Settings = Settings()) -> Result:
    """Compare a class: notebooks {student: the submitted notebook, or None when unreadable}."""
    s = settings
    funcs = graded_functions(source_nb)
    base = base_hashes(template_texts(source_nb, release_nb), s.k)
    docs: dict = {part: [] for part in funcs.values()}
    unread = []
    for student in sorted(notebooks):
        nb = notebooks[student]
        try:   # one odd notebook costs its own comparison, never the class's
            cells, _ = program(source_nb, nb)
            trees = parse_cells([c for c in cells if not c.get("trusted")])
            defs = top_level_defs(trees)
            made = [make_doc(student, part, part_segments(trees, func, defs), s.k, s.w, base)
                    for func, part in funcs.items()]
        except Exception:  # noqa: BLE001 - a malformed or pathological submission
            unread.append(student)
            continue
        for doc in made:
            docs[doc.part].append(doc)
    sol_trees = parse_cells(solution_cells(source_nb))
    solutions = {part: make_doc("solution", part, part_segments(sol_trees, func), s.k, s.w, base)
                 for func, part in funcs.items()}
    matches = compare_class(docs, reference_docs(s.k, s.w, base), solutions, s)
    return Result(assignment, matches, len(notebooks), funcs, unread, s)


def describe(m: Match, other: str) -> str:
    """The flag line for one side of a match (`other`: the other side's name)."""
    what = ("matches the instructor's solution" if other == "solution"
            else f"copied from minicnn's reference code ({other[len('minicnn:'):]})" if other.startswith("minicnn:")
            else f"similar to {other}'s")
    return (f"similarity: {m.part} {what} (score {m.score:.2f}, {m.shared} fingerprints shared; "
            f"{m.evidence[:120]})")


def flags(result: Result) -> dict:
    """{student: [flag lines]} (a pair flags both students)."""
    out: dict = {}
    for m in result.matches:
        out.setdefault(m.a, []).append(describe(m, m.b))
        if not m.b.startswith("minicnn:") and m.b != "solution":
            out.setdefault(m.b, []).append(describe(m, m.a))
    return out


def write_csv(path: Path, result: Result) -> Path:
    """One row per match: student_a, student_b (a student, "solution" or "minicnn:<file>"), part,
    score, jaccard, shared fingerprints, evidence (where, and each side's first shared line)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as fh:
        out = csv.writer(fh)
        out.writerow(["student_a", "student_b", "part", "score", "jaccard", "shared", "evidence"])
        for m in result.matches:
            out.writerow([m.a, m.b, m.part, f"{m.score:.3f}", f"{m.jaccard:.3f}", m.shared, m.evidence])
    return path


def csv_path(course: Path, assignment: str) -> Path:
    """COURSE/grades/<assignment>-similarity.csv, beside the grades' CSV and report."""
    return Path(course) / "grades" / f"{assignment}-similarity.csv"


def _regular(path: Path) -> bool:
    """A regular file reached through no symlink below the course (never opens a FIFO)."""
    try:
        return stat.S_ISREG(os.lstat(path).st_mode)
    except OSError:
        return False


def read_class(course: Path, assignment: str) -> dict:
    """{student: notebook or None} of COURSE/submitted/<student>/<assignment>/<assignment>.ipynb.
    As in grading, nothing behind a symlink is read and nothing but a regular file is opened."""
    base = Path(course) / "submitted"
    if not base.is_dir():
        raise FileNotFoundError(f"no submitted/ folder in {course}")
    out: dict = {}
    for entry in sorted(os.scandir(base), key=lambda e: e.name):
        folder = Path(entry.path) / assignment
        if not entry.is_dir(follow_symlinks=False) or not os.path.isdir(folder) or os.path.islink(folder):
            continue
        name = os.fsencode(entry.name).decode("utf-8", "backslashreplace")
        path = folder / f"{assignment}.ipynb"
        nb = None
        if _regular(path):
            try:
                nb = read_notebook(path)
            except (OSError, ValueError):
                nb = None
        out[name] = nb if isinstance(nb, dict) else None
    return out


def release_of(assignment: str, course: Path | None = None):
    """The released notebook (exercises/<a>/<a>.ipynb) in `course` or the course directory, or None."""
    from .locate import release_notebook

    path = release_notebook(assignment, course)
    if path is None:
        return None
    try:
        return read_notebook(path)
    except (OSError, ValueError):
        return None


def summary(result: Result, path: Path | None = None) -> str:
    """What `minicnn course similarity` prints: one line per match, then the totals."""
    lines = [f"{m.score:5.2f}  {m.part:<18} {m.a} ~ {m.b}   {m.evidence[:100]}" for m in result.matches]
    s = result.settings
    lines.append(f"{len(result.matches)} match(es) at score >= {s.threshold:g} (and >= {s.min_shared} fingerprints) "
                 f"among {result.students} submission(s), {len(result.parts)} graded function(s)"
                 + (f"; unreadable: {', '.join(result.unread)}" if result.unread else ""))
    if path is not None:
        lines.append(f"similarity: {path}")
    return "\n".join(lines)


def flag_batch(course: Path, assignment: str, source_nb: dict, submitted: dict, records: list,
               settings: Settings = Settings()) -> dict:
    """The end of `minicnn course grade`: compare the class (the notebooks as staged, before any
    student code ran), write COURSE/grades/<assignment>-similarity.csv, put a flag line in each
    flagged student's record (its `similar` list, shown in the CSV's flags column beside the signs
    of tampering; never a score) and return the report's "similarity" entry.  A failure here is
    reported there and costs nobody a grade."""
    try:
        result = class_similarity(assignment, source_nb, submitted, release_of(assignment, course), settings)
        path = write_csv(csv_path(course, assignment), result)
    except Exception as exc:  # noqa: BLE001 - the grades are written whatever happens here
        return {"error": f"similarity was not computed: {type(exc).__name__}: {exc}"}
    lines = flags(result)
    for rec in records:
        rec.similar.extend(lines.get(rec.student, []))
    return {"csv": str(path), "threshold": settings.threshold, "min_shared": settings.min_shared,
            "matches": [m.to_dict() for m in result.matches]}
