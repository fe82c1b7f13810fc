"""A checked answer key as text (the terminal), JSON (scripts), Markdown or HTML (kept with the slides)."""
from __future__ import annotations

import html
import json
from dataclasses import asdict

NO_SLIP = "no known slip reproduces this value"


def _summary(results) -> str:
    qs = [q for r in results for q in r.questions]
    wrong = [c for q in qs for c in q.wrong]
    explained = [c for c in wrong if c.diagnoses]
    return (f"{len(qs)} question(s): {sum(q.ok for q in qs)} right, {len(qs) - sum(q.ok for q in qs)} wrong; "
            f"{len(wrong)} wrong cell(s), {len(explained)} reproduced by a known slip")


def _head(r) -> str:
    return f"{r.path or 'answer key'}" + (f" ({r.title})" if r.title else "")


def text(results, latex=False) -> str:
    out = []
    for r in results:
        out.append(f"== {_head(r)}")
        for q in r.questions:
            if q.ok:
                out.append(f"ok     {q.id}: {q.title}, {len(q.cells)} printed cell(s) right")
                continue
            out.append(f"WRONG  {q.id}: {q.title}, {len(q.wrong)} of {len(q.cells)} printed cell(s) wrong")
            for c in q.wrong:
                out.append(f"  {c.cell}: printed {c.printed}, correct {c.correct}")
                working = c.working_latex if latex else c.working
                for line in working.splitlines():
                    out.append(f"    {line}")
                if c.diagnoses:
                    for d in c.diagnoses:
                        out.append(f"    slip: {d.text()}")
                else:
                    out.append(f"    slip: {NO_SLIP}")
    out.append(_summary(results))
    return "\n".join(out)


def as_json(results) -> str:
    data = {"keys": [{"path": r.path, "title": r.title, "ok": r.ok,
                      "questions": [{**{k: v for k, v in asdict(q).items() if k != "cells"}, "ok": q.ok,
                                     "cells": [asdict(c) for c in q.cells]} for q in r.questions]}
                     for r in results],
            "summary": _summary(results)}
    return json.dumps(data, indent=2)


def markdown(results) -> str:
    out = ["# Answer key check (minicnn check)", ""]
    for r in results:
        out += [f"## {_head(r)}", "", "| question | op | verdict |", "| --- | --- | --- |"]
        for q in r.questions:
            verdict = "right" if q.ok else f"**{len(q.wrong)} of {len(q.cells)} cell(s) wrong**"
            out.append(f"| {q.id} | {q.title} | {verdict} |")
        out.append("")
        for q in r.questions:
            for c in q.wrong:
                out += [f"### {q.id}: {c.cell}", "", f"Printed **{c.printed}**, correct **{c.correct}**.", "",
                        "```", c.working, "```", ""]
                out += [f"- {d.text()}" for d in c.diagnoses] or [f"- {NO_SLIP}"]
                out.append("")
    out.append(_summary(results))
    return "\n".join(out) + "\n"


def html_page(results) -> str:
    e = html.escape
    out = ["<!DOCTYPE html>", "<html><head><meta charset='utf-8'><title>Answer key check</title>",
           "<style>body{font-family:sans-serif;max-width:60em;margin:auto} td,th{border:1px solid #ccc;"
           "padding:.2em .5em} table{border-collapse:collapse} .wrong{color:#b00} pre{background:#f4f4f4}</style>",
           "</head><body><h1>Answer key check (minicnn check)</h1>"]
    for r in results:
        out.append(f"<h2>{e(_head(r))}</h2><table><tr><th>question</th><th>op</th><th>verdict</th></tr>")
        for q in r.questions:
            verdict = "right" if q.ok else f"<span class='wrong'>{len(q.wrong)} of {len(q.cells)} cell(s) wrong</span>"
            out.append(f"<tr><td>{e(q.id)}</td><td>{e(q.title)}</td><td>{verdict}</td></tr>")
        out.append("</table>")
        for q in r.questions:
            for c in q.wrong:
                out.append(f"<h3>{e(q.id)}: {e(c.cell)}</h3><p>Printed <b>{e(c.printed)}</b>, "
                           f"correct <b>{e(c.correct)}</b>.</p><pre>{e(c.working)}</pre><ul>")
                out += [f"<li>{e(d.text())}</li>" for d in c.diagnoses] or [f"<li>{NO_SLIP}</li>"]
                out.append("</ul>")
    out.append(f"<p>{e(_summary(results))}</p></body></html>")
    return "\n".join(out) + "\n"
