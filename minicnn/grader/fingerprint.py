"""Fingerprints of code, as winnowing makes them (Schleimer, Wilkerson and Aiken, "Winnowing:
local algorithms for document fingerprinting", 2003): the half of copy detection that reads one
piece of code.  similarity.py compares the fingerprints across a class.

- `part_segments`: the code of one graded function in a student's cells (the function, and the
  student's own top-level definitions it uses, at any depth);
- `canonical` + `normalise`: the code as ast.unparse writes it back (one layout, no comments,
  no redundant parentheses), then its tokens with every identifier V, number N, string S, and
  docstrings dropped: renaming and reformatting change nothing;
- `kgram_hashes` + `winnow`: a hash of every K consecutive tokens, and the smallest of every
  window of WINDOW hashes (a shared run of K + WINDOW - 1 tokens is always seen; one shorter than
  K never is);
- `make_doc`: all of that for one owner and part, minus the base (the template's k-grams);
  `reference_docs`: minicnn's own sources, fingerprinted the same way.
"""
from __future__ import annotations

import ast
import functools
import io
import keyword
import re
import tokenize
import zlib
from dataclasses import dataclass, field
from pathlib import Path

from ..course.notebook import cells_of, is_solution_cell, nbgrader_meta, source_text
from .plan import test_specs

K = 12              # tokens per k-gram (the noise floor)
WINDOW = 8          # winnowing window: a shared run of K + WINDOW - 1 = 19 tokens is always seen
MAX_TOKENS = 20000  # a part's code is cut after this many tokens (pasted data must not cost minutes)
PACKAGE_DIR = Path(__file__).resolve().parent.parent
# minicnn's own implementations a student could paste: the kernels, the layers, the ops
REFERENCE_GLOBS = ("kernels/*.py", "kernels/fast/*.py", "layers/*.py", "cuda/kernels.py", "cuda/ops.py",
                   "conv.py", "pool.py", "dense.py", "activations.py", "losses.py", "geometry.py", "optim.py",
                   "models.py")
MAGIC = re.compile(r"^[ \t]*[%!]|\?[ \t]*$", re.M)   # a line IPython would turn into Python
MAX_CANONICAL = 100_000   # characters: a longer piece (pasted data) is tokenized as written, up to MAX_TOKENS
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
    w = min(w, len(hashes))
    last = low = -1
    if not hashes:
        return chosen
    for end in range(w - 1, len(hashes)):
        start = end - w + 1
        if low < start:            # the minimum left the window: find the new one
            low = start
            for i in range(start + 1, end + 1):
                if hashes[i] <= hashes[low]:
                    low = i
        elif hashes[end] <= hashes[low]:
            low = end
        if low != last:
            chosen.setdefault(hashes[low], []).append(low)
            last = low
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
    except (SyntaxError, ValueError, RecursionError, MemoryError):   # deep nesting: the parser's own limits
        pass
    if not MAGIC.search(source):
        return None
    from IPython.core.inputtransformer2 import TransformerManager   # a magic (%time, !ls) in the cell

    try:
        text = TransformerManager().transform_cell(source)
        return text, ast.parse(text)
    except (SyntaxError, ValueError, TypeError, RecursionError, MemoryError):
        return None


def top_level_defs(trees) -> dict:
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


def part_segments(trees: list, func: str, defs: dict | None = None) -> list[tuple[str, int, str, object]]:
    """[(cell id, first line, text, its syntax tree)]: the last top-level definition of `func` in
    `trees` (parse_cells of the student's cells; `defs`: their top_level_defs, when already made) and, at
    any depth, the last definition of every other top-level name of the student's that it uses.
    When `func` has no top-level definition (it is made inside an `if`, or by exec), every cell
    that names it."""
    defs = top_level_defs(trees) if defs is None else defs
    if func not in defs:
        return [(cid, 1, text, tree) for cid, text, tree in trees if func in _names(tree)]
    chosen, todo, seen = {}, [func], set()
    while todo:
        name = todo.pop()
        if name in seen or name not in defs:
            continue
        seen.add(name)
        index, node = defs[name][-1]
        chosen[id(node)] = (index, node)
        todo.extend(_names(node))
    out = []
    for index, node in sorted(chosen.values(), key=lambda item: (item[0], item[1].lineno)):
        cid, text, _ = trees[index]
        first = min([node.lineno] + [d.lineno for d in getattr(node, "decorator_list", [])])
        out.append((cid, first, "\n".join(text.splitlines()[first - 1:node.end_lineno]) + "\n", node))
    return out


@functools.lru_cache(maxsize=65536)
def _names(node) -> frozenset:
    """Every name a syntax tree mentions (cached: the trees themselves are cached by _parse).
    Constants are leaves and never visited: a list of 240,000 pasted numbers costs one pass."""
    out, stack = set(), [node]
    while stack:
        n = stack.pop()
        if isinstance(n, ast.Name):
            out.add(n.id)
        elif isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            out.add(n.name)
        for field_name in n._fields:
            value = getattr(n, field_name, None)
            if isinstance(value, list):
                stack.extend(v for v in value if isinstance(v, ast.AST) and type(v) is not ast.Constant)
            elif isinstance(value, ast.AST) and type(value) is not ast.Constant:
                stack.append(value)
    return frozenset(out)


def canonical(text: str, tree=None) -> str:
    """The code as Python's own printer writes it back (ast.unparse of `tree`, else of `text`
    parsed): one layout, no comments, no redundant parentheses, one statement a line, so that
    reformatting leaves no trace.  The evidence quotes this form.  Text that does not parse is
    kept as it is."""
    try:
        return ast.unparse(tree if tree is not None else ast.parse(text)) + "\n"
    except (SyntaxError, ValueError, RecursionError, MemoryError):
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
        else:
            break
        start = False
        line += text.count("\n") if kind == "str" else 0
    return out


_SEEN: dict = {}


def _canonical_tokens(text: str, tree=None):
    """(canonical text, its normalised tokens), cached by text: a class repeats its templates
    and its copies."""
    got = _SEEN.get(text)
    if got is None:
        if len(_SEEN) > 50000:
            _SEEN.clear()
        canon = canonical(text, tree) if len(text) <= MAX_CANONICAL else text
        got = _SEEN[text] = (canon, tuple(_fast_tokens(canon) if canon is not text else normalise(canon)))
    return got


def make_doc(owner: str, part: str, segments, k: int = K, w: int = WINDOW, base=frozenset()) -> Doc:
    """Fingerprint the segments [(cell id, first line, text, its tree or None)] as one document,
    each in its canonical form, the base's k-grams removed; evidence lines count in that form."""
    symbols, where, texts = [], [], {}
    for cid, _, text, tree in segments:
        label = cid if cid not in texts else f"{cid}+{len(texts)}"
        texts[label], tokens = _canonical_tokens(text, tree)
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
            docs.append(make_doc(f"minicnn:{rel}", "*", [(rel, 1, text, None)], k, w, base))
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
