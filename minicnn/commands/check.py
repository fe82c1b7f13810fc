"""`minicnn check`: check an answer key (or one question given on the command line), say which
printed numbers are wrong, the right value with its working, and which known slip made each."""
from __future__ import annotations

import sys
import tomllib


def _value(text: str, what: str):
    """A field's value from the command line: TOML (16, "same", [[1, 2], [3, 4]]), or a matrix as
    `minicnn explain` reads it ("1,2;3,4"), or a bare word."""
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        pass
    if any(ch.isdigit() for ch in text) and (";" in text or "," in text):
        rows = [r for r in text.split(";") if r.strip()]
        try:
            return [[_number(v) for v in r.replace(",", " ").split()] for r in rows]
        except ValueError:
            raise ValueError(f"{what}: cannot read {text!r} (write TOML, e.g. [[1, 2], [3, 4]], or rows '1,2;3,4')") \
                from None
    return text


def _number(v: str):
    return "?" if v == "?" else (int(v) if v.lstrip("-").isdigit() else float(v))


def _single(args):
    from .. import answers

    item = {"id": "command-line", "op": args.op, "answer": _value(args.answer, "--answer")}
    for spec in args.field or []:
        if "=" not in spec:
            raise answers.KeyFileError(f"--field {spec!r}: write NAME=VALUE, e.g. stride=2")
        name, value = spec.split("=", 1)
        item[name.strip()] = _value(value.strip(), f"--field {name.strip()}")
    return answers.parse({"question": [item]}, "command line")


def check(args) -> int:
    from .. import answers
    from ..answers import report

    try:
        if args.op:
            if args.keys or args.lectures:
                raise answers.KeyFileError("give either answer key files (or --lectures) or one question with --op")
            if args.answer is None:
                raise answers.KeyFileError("--op needs --answer (the answer as printed, '?' for blanks)")
            keys = [_single(args)]
        else:
            paths = list(args.keys) + (answers.lecture_keys() if args.lectures else [])
            if not paths:
                raise answers.KeyFileError("give an answer key (KEY.toml), --lectures, or --op with --field/--answer")
            keys = [answers.load(p) for p in paths]
        results = [answers.check_key(k) for k in keys]
    except answers.KeyFileError as exc:
        print(f"minicnn check: {exc}", file=sys.stderr)
        return 2
    if args.report:
        path = args.report
        if path.endswith((".md", ".markdown")):
            page = report.markdown(results)
        elif path.endswith((".html", ".htm")):
            page = report.html_page(results)
        else:
            print(f"minicnn check: --report {path!r}: name a .md or .html file", file=sys.stderr)
            return 2
        with open(path, "w", encoding="utf-8") as fh:
            fh.write(page)
    print(report.as_json(results) if args.json else report.text(results, latex=args.latex))
    if args.report and not args.json:
        print(f"report written to {args.report}")
    return 0 if all(r.ok for r in results) else 1


def add_parser(sub):
    p = sub.add_parser("check", help="check an answer key's printed numbers; name the slip behind each wrong one",
                       description="Check the numbers a slide or exam key prints (a TOML answer key, see "
                                   "docs/check.md). Exit status 0: all right; 1: some wrong; 2: a bad key.")
    p.add_argument("keys", nargs="*", metavar="KEY.toml", help="answer key file(s)")
    p.add_argument("--lectures", action="store_true", help="also check the five lectures' worked examples "
                   "(the answer keys shipped in minicnn/answers/keys)")
    p.add_argument("--op", help="check one question given here instead: its op (correlate, output_size, ...)")
    p.add_argument("--field", action="append", metavar="NAME=VALUE",
                   help="a field of that question, TOML or rows '1,2;3,4' (repeat: --field stride=2 ...)")
    p.add_argument("--answer", help="that question's answer as printed ('?' for a blank cell)")
    p.add_argument("--json", action="store_true", help="print JSON for scripts")
    p.add_argument("--latex", action="store_true", help="write the working as LaTeX")
    p.add_argument("--report", metavar="FILE.md|FILE.html", help="also write a report to keep with the slides")
    p.set_defaults(func=check)
