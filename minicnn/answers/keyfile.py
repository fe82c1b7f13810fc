"""Reading an answer key: a TOML file with one [[question]] table per printed answer.

    title = "Zese, Introduction to CNNs"      # optional, shown in the report

    [[question]]
    id = "stride-2"                           # unique, names the question in every message
    op = "correlate"                          # what to compute (see OPS in ops.py)
    image = [[1, 2, 0, 3, 1], [1, 0, 0, 2, 2], [2, 1, 2, 1, 1], [0, 0, 1, 0, 0], [1, 2, 1, 1, 1]]
    kernel = [[-1, 1, 2], [1, 1, 0], [-1, -2, 0]]
    stride = 2
    answer = [[-2, 3], [0, "?"]]              # as printed; "?" for a cell the slide leaves blank

Every problem is reported as a KeyFileError naming the question and the field, never a traceback.
A printed number may be written as a string when the slide prints it so: "1,101,760",
"<56k" (a bound), "~65k" (rounded), "1101760^2" (a power).
"""
from __future__ import annotations

import tomllib
from dataclasses import dataclass, field

from .registry import OPS
from .values import KeyFileError


@dataclass
class Question:
    id: str
    op: str
    fields: dict                    # the question's inputs as written (op-specific, checked by the op)
    answer: object                  # as written; each op reads it into cells
    note: str = ""
    extra: dict = field(default_factory=dict)   # 'catalogue', 'source': carried into the report

    def where(self, name: str = "") -> str:
        return f"question {self.id!r}" + (f", field {name!r}" if name else "")


@dataclass
class AnswerKey:
    title: str
    questions: list
    path: str = ""


_COMMON = {"id", "op", "answer", "note", "catalogue", "source"}


def parse(data: dict, path: str = "") -> AnswerKey:
    """An AnswerKey from the TOML document (already parsed into dicts)."""
    if not isinstance(data, dict):
        raise KeyFileError(f"{path or 'answer key'}: the top level must be a table")
    unknown = set(data) - {"title", "question"}
    if unknown:
        raise KeyFileError(f"{path or 'answer key'}: unknown top-level field(s) {sorted(unknown)}; "
                           "use 'title' and [[question]] tables")
    items = data.get("question")
    if not isinstance(items, list) or not items:
        raise KeyFileError(f"{path or 'answer key'}: no [[question]] tables")
    questions, seen = [], set()
    for n, item in enumerate(items, 1):
        if not isinstance(item, dict):
            raise KeyFileError(f"question #{n}: must be a table")
        qid = item.get("id", f"#{n}")
        if not isinstance(qid, str) or not qid:
            raise KeyFileError(f"question #{n}, field 'id': must be a non-empty string, got {qid!r}")
        if qid in seen:
            raise KeyFileError(f"question {qid!r}, field 'id': used twice")
        seen.add(qid)
        where = f"question {qid!r}"
        if "op" not in item:
            raise KeyFileError(f"{where}, field 'op': missing (one of {', '.join(OPS)})")
        op = item["op"]
        if op not in OPS:
            raise KeyFileError(f"{where}, field 'op': unknown op {op!r}; use one of {', '.join(OPS)}")
        if "answer" not in item:
            raise KeyFileError(f"{where}, field 'answer': missing (write the answer as printed, '?' for blanks)")
        spec = OPS[op]
        fields = {k: v for k, v in item.items() if k not in _COMMON}
        for name in fields:
            if name not in spec.fields:
                raise KeyFileError(f"{where}, field {name!r}: op {op!r} has no such field; "
                                   f"it takes {', '.join(spec.fields)}")
        for name in spec.required:
            if name not in fields:
                raise KeyFileError(f"{where}, field {name!r}: missing (op {op!r} needs {', '.join(spec.required)})")
        note = item.get("note", "")
        extra = {k: item[k] for k in ("catalogue", "source") if k in item}
        questions.append(Question(qid, op, fields, item["answer"], note if isinstance(note, str) else "", extra))
    key = AnswerKey(str(data.get("title", "")), questions, path)
    for q in key.questions:  # references to other answers must name an earlier question
        for name, value in q.fields.items():
            for ref in refs_in(value):
                if ref not in seen:
                    raise KeyFileError(f"{q.where(name)}: '@{ref}' names no question of this key")
    return key


def refs_in(value):
    """The question ids that a field's value names as "@id", nested lists included."""
    if isinstance(value, str) and value.startswith("@"):
        yield value[1:]
    elif isinstance(value, list):
        for v in value:
            yield from refs_in(v)


def loads(text: str, path: str = "") -> AnswerKey:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise KeyFileError(f"{path or 'answer key'}: not valid TOML: {exc}") from None
    return parse(data, path)


def load(path) -> AnswerKey:
    try:
        with open(path, "rb") as fh:
            raw = fh.read()
    except OSError as exc:
        raise KeyFileError(f"{path}: cannot read the answer key: {exc.strerror}") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise KeyFileError(f"{path}: not UTF-8 text") from None
    return loads(text, str(path))
