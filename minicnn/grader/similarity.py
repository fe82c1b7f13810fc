"""Copies caught: winnowed fingerprints of every graded function, compared across a class, with
minicnn's own reference sources and with the instructor's solution (in the spirit of MOSS:
Schleimer, Wilkerson and Aiken, "Winnowing: local algorithms for document fingerprinting", 2003).

For each graded part (the function a test cell names) and each student:

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

import ast
import csv
import functools
import io
import keyword
import os
import re
import stat
import tokenize
import zlib
from dataclasses import dataclass, field
from pathlib import Path

from ..course.notebook import cells_of, is_solution_cell, nbgrader_meta, read_notebook, source_text
from .plan import parsed_cells, program, test_specs

K = 12              # tokens per k-gram (the noise floor)
WINDOW = 8          # winnowing window: a shared run of K + WINDOW - 1 = 19 tokens is always seen
THRESHOLD = 0.6     # flag at this score or above (measured: see the README's "Copies caught")
MIN_SHARED = 8      # ... and with at least this many fingerprints shared
MAX_TOKENS = 20000  # a part's code is cut after this many tokens (pasted data must not cost minutes)
PACKAGE_DIR = Path(__file__).resolve().parent.parent
# minicnn's own implementations a student could paste: the kernels, the layers, the ops
REFERENCE_GLOBS = ("kernels/*.py", "kernels/fast/*.py", "layers/*.py", "cuda/kernels.py", "cuda/ops.py",
                   "conv.py", "pool.py", "dense.py", "activations.py", "losses.py", "geometry.py", "optim.py",
                   "models.py")
SOLUTION_BLOCK = re.compile(r"^([ \t]*)### BEGIN SOLUTION.*?^[ \t]*### END SOLUTION[^\n]*", re.S | re.M)
SKIPPED = {tokenize.COMMENT, tokenize.NL, tokenize.NEWLINE, tokenize.INDENT, tokenize.DEDENT,
           tokenize.ENCODING, tokenize.ENDMARKER}


# ----------------------------------------------------------------------------- normalised tokens

def _kind(tok) -> str:
    """One token as the fingerprint sees it ('' for a token that is dropped)."""
    if tok.type == tokenize.NAME:
        return tok.string if keyword.iskeyword(tok.string) else "V"
    if tok.type == tokenize.NUMBER:
        return "N"
    if tok.type == tokenize.STRING or tok.type in _FSTRING:
        return "S"
    if tok.type in _FSTRING_PARTS:   # the inside of an f-string: one S for the whole string
        return ""
    if tok.type == tokenize.OP:
        return "" if tok.string == ";" else tok.string
    return ""


_FSTRING = {getattr(tokenize, "FSTRING_START", -1)}
_FSTRING_PARTS = {getattr(tokenize, n, -2) for n in ("FSTRING_MIDDLE", "FSTRING_END")}


def normalise(text: str) -> list[tuple[str, int]]:
    """[(symbol, line)] of `text`'s tokens: identifiers V, numbers N, strings S, keywords and
    operators as written; comments, docstrings, blank lines, line breaks, indentation and `;`
    dropped.  Text that does not tokenize to the end keeps the tokens read so far.

    >>> [s for s, _ in normalise("def f(a, b=2):\\n    '''doc'''\\n    return a  # c\\n")]
    ['def', 'V', '(', 'V', ',', 'V', '=', 'N', ')', ':', 'return', 'V']
    """
    out: list[tuple[str, int]] = []
    at_statement_start, pending_string = True, None
    depth = 0   # inside an f-string (3.12 tokenizes its parts)
    try:
        for tok in tokenize.generate_tokens(io.StringIO(text).readline):
            if tok.type in _FSTRING:
                depth += 1
            elif tok.type == getattr(tokenize, "FSTRING_END", -2):
                depth -= 1
                continue
            if depth > 0 and tok.type not in _FSTRING:
                continue   # f-string contents: the S of its start stands for all of it
            if tok.type in (tokenize.NEWLINE, tokenize.ENDMARKER) or (tok.type == tokenize.OP and tok.string == ";"):
                if pending_string is not None:
                    pending_string = None   # a string alone as a statement: a docstring, dropped
                at_statement_start = True
                continue
            if tok.type in SKIPPED:
                continue
            if pending_string is not None:   # the string started an expression statement after all
                out.append(pending_string)
                pending_string = None
            sym = _kind(tok)
            if sym == "S" and at_statement_start:
                pending_string = (sym, tok.start[0])
                at_statement_start = False
                continue
            at_statement_start = False
            if sym:
                out.append((sym, tok.start[0]))
            if len(out) >= MAX_TOKENS:
                break
    except (tokenize.TokenError, IndentationError, SyntaxError):
        pass
    return out


def _symbol_id(sym: str, cache: dict = {}) -> int:  # noqa: B006 - a deliberate cache
    """A fixed number for each symbol (crc32: the same in every process, unlike hash(str))."""
    got = cache.get(sym)
    if got is None:
        got = cache[sym] = zlib.crc32(sym.encode())
    return got


def kgram_hashes(symbols: list[str], k: int = K) -> list[int]:
    """The hash of every run of k consecutive symbols (hash of a tuple of ints: deterministic)."""
    ids = [_symbol_id(s) for s in symbols]
    return [hash(tuple(ids[i:i + k])) for i in range(len(ids) - k + 1)]


def winnow(hashes: list[int], w: int = WINDOW) -> dict[int, list[int]]:
    """{hash: [positions]} of the fingerprints: the smallest hash of every window of w (the
    rightmost on a tie, as the paper does), each position taken once.  A text shorter than one
    window keeps its smallest hash."""
    chosen: dict[int, list[int]] = {}
    last = -1
    for start in range(max(1, len(hashes) - w + 1)):
        window = hashes[start:start + w]
        if not window:
            break
        low = min(window)
        pos = start + max(i for i, h in enumerate(window) if h == low)
        if pos != last:
            chosen.setdefault(low, []).append(pos)
            last = pos
    return chosen


# ----------------------------------------------------------------------------- a part's code

@dataclass
class Doc:
    """One piece of code, fingerprinted: whose (a student, "solution", "minicnn:<file>"), which
    part, and where each token came from (for the evidence)."""

    owner: str
    part: str
    symbols: list
    where: list            # [(label, line)] per token: label is a cell id or a file name
    texts: dict            # {label: the whole text of that cell or file} to quote lines from
    prints: dict = field(default_factory=dict)   # {hash: [token positions]}, the base removed


def parse_cells(cells: list) -> list:
    """[(cell id, text, syntax tree)] of the cells that parse, IPython's magics turned into
    Python first (as the runner does)."""
    out = []
    for cell in cells:
        got = _parse(cell["source"]) if isinstance(cell.get("source"), str) else None
        if got is not None:
            out.append((str(cell["id"]), *got))
    return out


@functools.lru_cache(maxsize=8192)
def _parse(source: str):
    """(text, tree) of one cell, or None.  Cached: a class hands in the same template cells and
    the same copies over and over (the trees are only read)."""
    try:
        return source, ast.parse(source)
    except (SyntaxError, ValueError):
        pass
    from IPython.core.inputtransformer2 import TransformerManager   # a magic (%time, !ls) in the cell

    try:
        text = TransformerManager().transform_cell(source)
        return text, ast.parse(text)
    except (SyntaxError, ValueError, TypeError):
        return None


def _defs(trees) -> dict:
    """{name: [(index, node)]}: every top-level def, class and assignment, in notebook order."""
    out: dict = {}
    for index, (_, _, tree) in enumerate(trees):
        for node in tree.body:
            names = []
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                names = [node.name]
            elif isinstance(node, (ast.Assign, ast.AnnAssign, ast.AugAssign)):
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                names = [n.id for t in targets for n in ast.walk(t) if isinstance(n, ast.Name)]
            for name in names:
                out.setdefault(name, []).append((index, node))
    return out


def part_segments(trees: list, func: str) -> list[tuple[str, int, str, str]]:
    """[(cell id, first line, text, the cell's whole text)]: the last top-level definition of
    `func` in `trees` (parse_cells of the student's cells) and, at any depth, the last
    definition of every other top-level name of the student's that it uses.  When `func` has no
    top-level definition (it is made inside an `if`, or by exec), every cell that names it."""
    defs = _defs(trees)
    if func not in defs:
        return [(cid, 1, text, text) for cid, text, tree in trees
                if any(getattr(n, "id", getattr(n, "name", None)) == func for n in ast.walk(tree))]
    chosen, todo, seen = {}, [func], set()
    while todo:
        name = todo.pop()
        if name in seen or name not in defs:
            continue
        seen.add(name)
        index, node = defs[name][-1]
        chosen[id(node)] = (index, node)
        todo.extend(n.id for n in ast.walk(node) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load))
    out = []
    for index, node in sorted(chosen.values(), key=lambda item: (item[0], item[1].lineno)):
        cid, text, _ = trees[index]
        first = min([node.lineno] + [d.lineno for d in getattr(node, "decorator_list", [])])
        out.append((cid, first, "\n".join(text.splitlines()[first - 1:node.end_lineno]) + "\n", text))
    return out


def canonical(text: str) -> str:
    """The code as Python's own printer writes it back (ast.unparse): one layout, no comments,
    no redundant parentheses, one statement a line, so that reformatting leaves no trace.  The
    evidence quotes this form.  Text that does not parse is kept as it is."""
    try:
        return ast.unparse(ast.parse(text)) + "\n"
    except (SyntaxError, ValueError, RecursionError):
        return text


# the tokens of ast.unparse's output (no comments, no line continuations): a regular expression
# reads them several times faster than tokenize, with the same symbols
_TOKEN = re.compile(r"""
  (?P<str>[rRbBuUfF]{0,2}(?:'\'\'[\s\S]*?'\'\'|\"\"\"[\s\S]*?\"\"\"|'(?:\\.|[^'\\\n])*'|"(?:\\.|[^"\\\n])*"))
| (?P<num>0[xXoObB][\da-fA-F_]+|(?:\d[\d_]*(?:\.[\d_]*)?|\.\d[\d_]*)(?:[eE][+-]?\d+)?[jJ]?)
| (?P<name>[^\W\d]\w*)
| (?P<nl>\n)
| (?P<op>\*\*=|//=|>>=|<<=|\.\.\.|->|:=|[-+*/%&|^@<>=!]=|\*\*|//|<<|>>|[-+*/%&|^~@<>=.,:;()\[\]{}])
""", re.X)


def _fast_tokens(canon: str) -> list[tuple[str, int]]:
    """normalise() for text in canonical form."""
    out, line, start, pending = [], 1, True, None
    for m in _TOKEN.finditer(canon):
        kind, text = m.lastgroup, m.group()
        if kind == "nl" or text == ";":
            pending, start = None, True     # a string alone on its line: a docstring, dropped
            line += text == "\n"
            continue
        if pending is not None:
            out.append(pending)
            pending = None
        sym = ("S" if kind == "str" else "N" if kind == "num" else
               (text if keyword.iskeyword(text) else "V") if kind == "name" else text)
        if sym == "S" and start:
            pending = (sym, line)
        elif len(out) < MAX_TOKENS:
            out.append((sym, line))
        start = False
        line += text.count("\n") if kind == "str" else 0
    return out


@functools.lru_cache(maxsize=8192)
def _canonical_tokens(text: str):
    """(canonical text, its normalised tokens), cached: a class repeats its templates and copies."""
    canon = canonical(text)
    return canon, tuple(_fast_tokens(canon) if canon is not text else normalise(canon))


def make_doc(owner: str, part: str, segments, k: int = K, w: int = WINDOW, base=frozenset()) -> Doc:
    """Fingerprint the segments [(cell id, first line, text, the cell's text)] as one document,
    each in its canonical form, the base's k-grams removed; evidence lines count in that form."""
    symbols, where, texts = [], [], {}
    for cid, _, text, _ in segments:
        label = cid if cid not in texts else f"{cid}+{len(texts)}"
        texts[label], tokens = _canonical_tokens(text)
        for sym, line in tokens:
            symbols.append(sym)
            where.append((label, line))
    doc = Doc(owner, part, symbols[:MAX_TOKENS], where[:MAX_TOKENS], texts)
    doc.prints = {h: p for h, p in winnow(kgram_hashes(doc.symbols, k), w).items() if h not in base}
    return doc


def base_hashes(texts, k: int = K) -> set:
    """Every k-gram of the template texts (not only the winnowed ones: a student's fingerprint
    drawn from any window of the template is the template's)."""
    out: set = set()
    for text in texts:
        out.update(kgram_hashes([s for s, _ in normalise(canonical(text))], k))
    return out


def template_texts(source_nb: dict, release_nb: dict | None = None) -> list[str]:
    """The base: every code cell of the release (when there is one) and of the source with its
    solutions cleared (what nbgrader's generate_assignment leaves)."""
    out = []
    for cell in cells_of(source_nb):
        if cell.get("cell_type") == "code":
            out.append(SOLUTION_BLOCK.sub(lambda m: f"{m.group(1)}raise NotImplementedError()", source_text(cell)))
    if release_nb is not None:
        out += [source_text(c) for c in cells_of(release_nb) if c.get("cell_type") == "code"]
    return out


def reference_docs(k: int = K, w: int = WINDOW, base=frozenset()) -> list[Doc]:
    """One document per file of minicnn's reference sources (REFERENCE_GLOBS)."""
    docs = []
    for pattern in REFERENCE_GLOBS:
        for path in sorted(PACKAGE_DIR.glob(pattern)):
            rel = path.relative_to(PACKAGE_DIR).as_posix()
            text = path.read_text(encoding="utf-8")
            docs.append(make_doc(f"minicnn:{rel}", "*", [(rel, 1, text, text)], k, w, base))
    return docs


def solution_cells(source_nb: dict) -> list:
    """The instructor's answer cells, shaped as the runner's cells ({"id", "source", "trusted"})."""
    return [{"id": nbgrader_meta(c).get("grade_id") or str(i + 1), "source": source_text(c), "trusted": False}
            for i, c in enumerate(cells_of(source_nb)) if is_solution_cell(c)]


def graded_functions(source_nb: dict) -> dict:
    """{function name: part id} of the test cells, in notebook order (a function several test
    cells call, such as a2's conv2d, once, under its first part)."""
    out: dict = {}
    for spec in test_specs(source_nb):
        out.setdefault(spec.func, spec.part)
    return out


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
        try:
            cells, _ = program(source_nb, nb)
        except (ValueError, TypeError, AttributeError, KeyError):
            unread.append(student)
            continue
        trees = parse_cells([c for c in cells if not c.get("trusted")])
        for func, part in funcs.items():
            docs[part].append(make_doc(student, part, part_segments(trees, func), s.k, s.w, base))
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
    from .locate import RELEASE_DIR, course_root

    roots = [Path(course)] if course is not None else []
    try:
        roots.append(course_root())
    except FileNotFoundError:
        pass
    for root in roots:
        path = root / RELEASE_DIR / assignment / f"{assignment}.ipynb"
        if path.is_file():
            try:
                return read_notebook(path)
            except (OSError, ValueError):
                return None
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
