"""PDF feedback (minicnn/grader/pdf.py): the HTML feedback page printed by headless Chromium.

The PDF's text is read back with a small extractor written here (no poppler in the image): the
page's content streams and the fonts' ToUnicode maps are Flate-compressed; Chromium shows text as
glyph ids (`<0044 0014 ...> Tj`), which a font's ToUnicode map turns back into characters.  Each
map is tried on all the text, so the text of every font is read with its own map at least once.

Needs Chromium only (not Playwright): skipped without it, failed where MINICNN_REQUIRE_BROWSER=1."""
from __future__ import annotations

import os
import re
import subprocess
import sys
import zlib
from pathlib import Path

import pytest

from browser_helpers import REQUIRE_ENV
from minicnn.grader import outputs, pdf
from minicnn.grader.record import Grade, PartGrade

A = "a1_convolution"


@pytest.fixture(scope="module")
def chromium() -> str:
    path = pdf.find_browser()
    if path is None:
        why = "no Chromium for the PDF feedback (apt-get install chromium)"
        if os.environ.get(REQUIRE_ENV) == "1":
            pytest.fail(f"{why} ({REQUIRE_ENV}=1 makes this a failure)", pytrace=False)
        pytest.skip(why)
    return path


def _streams(data: bytes):
    for m in re.finditer(rb"stream\r?\n(.*?)\r?\nendstream", data, re.S):
        try:
            yield zlib.decompress(m.group(1))
        except zlib.error:
            continue                      # an image or a font program stored otherwise


def _cmap(text: bytes) -> dict:
    """{glyph id: characters} from a ToUnicode CMap's bfchar and bfrange sections."""
    out = {}
    for block in re.findall(rb"beginbfchar(.*?)endbfchar", text, re.S):
        for src, dst in re.findall(rb"<([0-9A-Fa-f]+)>\s*<([0-9A-Fa-f]+)>", block):
            out[int(src, 16)] = bytes.fromhex(dst.decode()).decode("utf-16-be")
    for block in re.findall(rb"beginbfrange(.*?)endbfrange", text, re.S):
        for lo, hi, dst in re.findall(rb"<([0-9A-Fa-f]+)>\s*<([0-9A-Fa-f]+)>\s*<([0-9A-Fa-f]+)>", block):
            start = int(dst, 16)
            for i, gid in enumerate(range(int(lo, 16), int(hi, 16) + 1)):
                out[gid] = chr(start + i)
    return out


def pdf_texts(path: Path) -> list[str]:
    """The PDF's text, once per font map (see the module docstring)."""
    streams = list(_streams(path.read_bytes()))
    maps = [_cmap(s) for s in streams if b"begincmap" in s]
    shown = [re.findall(rb"<([0-9A-Fa-f]+)>", s) for s in streams if b"BT" in s and b"begincmap" not in s]
    runs = [h.decode() for hexes in shown for h in hexes]
    return [" ".join("".join(m.get(int(r[i:i + 4], 16), "?") for i in range(0, len(r), 4)) for r in runs)
            for m in maps]


def _record(student: str) -> Grade:
    parts = [PartGrade("test_output_size", "output_size", "Output size", 2.0, 2.0, ["ok: every case"]),
             PartGrade("test_correlate2d", "correlate2d", "Cross-correlation", 3.5, 6.0, ["3 of 5 cases right"])]
    return Grade(student, A, parts=parts)


def test_the_feedback_page_is_printed_to_pdf_with_the_score(chromium, tmp_path):
    rec = _record("ada")
    outputs.write_feedback(tmp_path, A, [rec])
    html = tmp_path / "feedback" / "ada" / A / f"{A}.html"
    assert pdf.write_pdfs(tmp_path, A, [rec], chromium, log=lambda _: None) == 1, rec.flags
    out = html.with_suffix(".pdf")
    assert out.read_bytes().startswith(b"%PDF-")
    assert html.is_file()                                   # the HTML stays
    texts = pdf_texts(out)
    assert any(f"{A}: 5.5 of 8 points" in t for t in texts), texts
    assert any("Student: ada" in t for t in texts), texts
    assert not rec.flags


def test_a_browser_that_fails_costs_a_flag_not_the_grade(tmp_path):
    fails = tmp_path / "chromium-fails"
    fails.write_text("#!/bin/sh\necho 'cannot open display' >&2\nexit 3\n")
    hangs = tmp_path / "chromium-hangs"
    hangs.write_text("#!/bin/sh\nsleep 60 &\nsleep 60\n")
    for f in (fails, hangs):
        f.chmod(0o755)
    recs = [_record("bo"), _record("cy")]
    outputs.write_feedback(tmp_path, A, recs)
    assert pdf.write_pdfs(tmp_path, A, recs[:1], str(fails), log=lambda _: None) == 0
    assert pdf.write_pdfs(tmp_path, A, recs[1:], str(hangs), timeout=2, log=lambda _: None) == 0
    assert "exited 3 without a PDF" in recs[0].flags[0] and "cannot open display" in recs[0].flags[0]
    assert "within 2 s" in recs[1].flags[0]
    for r in recs:
        assert r.total == 5.5 and (tmp_path / "feedback" / r.student / A / f"{A}.html").is_file()
        assert not (tmp_path / "feedback" / r.student / A / f"{A}.pdf").exists()


def test_pdf_without_chromium_is_a_clear_error_before_grading(tmp_path):
    env = dict(os.environ, MINICNN_CHROMIUM=str(tmp_path / "no-chromium"))
    proc = subprocess.run([sys.executable, "-m", "minicnn", "course", "grade", A, "--course", str(tmp_path), "--pdf"],
                          capture_output=True, text=True, timeout=300, env=env)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "--pdf needs headless Chromium" in proc.stderr and "no-chromium" in proc.stderr
    assert not (tmp_path / "gradebook.db").exists()
