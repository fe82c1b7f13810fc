"""PDF feedback: the student's HTML feedback page printed to PDF by headless Chromium.

`minicnn course grade ASSIGNMENT --pdf` writes, beside each

    COURSE/feedback/<student>/<assignment>/<assignment>.html

the same page as <assignment>.pdf.  The HTML stays the feedback (it is always written first);
the PDF is a copy of it for schools that hand out or archive PDFs.  Chromium is Debian's
`chromium` (or $MINICNN_CHROMIUM); it opens the local file only (the page has no external
resources, and background networking is switched off), with no GPU, a fresh profile in a
temporary folder, and a time limit.  Run as root (a container, CI) it needs --no-sandbox: its own
sandbox refuses to start as root.  A page that cannot be printed becomes a flag on that student's
record, never a lost grade.
"""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
from pathlib import Path

BROWSER_ENV = "MINICNN_CHROMIUM"
BROWSERS = ("chromium", "chromium-browser", "google-chrome")
TIMEOUT = 60.0   # seconds per page; a cold Chromium start is a few seconds


class NoBrowser(RuntimeError):
    """PDF feedback was asked for, and there is no Chromium to print it with."""


def find_browser() -> str | None:
    """The Chromium executable: $MINICNN_CHROMIUM when set (even when it is not there, so that
    a wrong setting is reported rather than silently replaced), else the first of BROWSERS on PATH."""
    env = os.environ.get(BROWSER_ENV)
    if env:
        return env if os.path.isfile(env) and os.access(env, os.X_OK) else None
    for name in BROWSERS:
        path = shutil.which(name)
        if path:
            return path
    return None


def require_browser() -> str:
    """find_browser(), or NoBrowser with what to install."""
    path = find_browser()
    if path is None:
        where = (f"{BROWSER_ENV}={os.environ[BROWSER_ENV]!r} is not an executable" if os.environ.get(BROWSER_ENV)
                 else f"none of {', '.join(BROWSERS)} is on PATH")
        raise NoBrowser(f"--pdf needs headless Chromium to print the feedback, and {where}: install it "
                        "(apt-get install chromium) or set MINICNN_CHROMIUM, or leave out --pdf (the HTML "
                        "feedback is written either way)")
    return path


def command(browser: str, html: Path, pdf: Path, profile: Path) -> list:
    """The Chromium command line that prints the local page `html` to `pdf`."""
    cmd = [browser, "--headless", "--disable-gpu", "--no-first-run", "--no-default-browser-check",
           "--disable-extensions", "--disable-background-networking", "--disable-component-update",
           "--disable-sync", "--no-pdf-header-footer", f"--user-data-dir={profile}",
           f"--print-to-pdf={pdf}", Path(html).resolve().as_uri()]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        cmd.insert(1, "--no-sandbox")
    return cmd


def html_to_pdf(html: Path, pdf: Path, browser: str, timeout: float = TIMEOUT) -> None:
    """Print `html` to `pdf`; RuntimeError saying why when no PDF came out."""
    html, pdf = Path(html), Path(pdf)
    pdf.unlink(missing_ok=True)
    with tempfile.TemporaryDirectory(prefix="minicnn-chromium-") as profile:
        proc = subprocess.Popen(command(browser, html, pdf, Path(profile)), stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
        try:
            out, _ = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)     # Chromium and its helper processes
            proc.communicate()
            raise RuntimeError(f"Chromium did not print {html.name} within {timeout:g} s") from None
        finally:
            try:
                os.killpg(proc.pid, signal.SIGKILL)  # helpers left behind by a Chromium that exited
            except ProcessLookupError:
                pass
    if proc.returncode != 0 or not pdf.is_file():
        tail = out.decode("utf-8", "replace").strip().splitlines()[-3:]
        raise RuntimeError(f"Chromium exited {proc.returncode} without a PDF: {' / '.join(tail)[:300]}")
    with pdf.open("rb") as fh:
        if fh.read(5) != b"%PDF-":
            raise RuntimeError(f"Chromium wrote {pdf.name}, but it is not a PDF")


def write_pdfs(course: Path, assignment: str, records: list, browser: str, timeout: float = TIMEOUT,
               log=print) -> int:
    """Print every record's feedback page (written before) to PDF beside it; a failure is flagged
    on that record (the grade stands).  Returns the number of PDFs written."""
    done = 0
    for rec in records:
        html = Path(course) / "feedback" / rec.student / assignment / f"{assignment}.html"
        if not html.is_file():
            continue     # no feedback page for this one (its own flag says why)
        try:
            html_to_pdf(html, html.with_suffix(".pdf"), browser, timeout)
            done += 1
        except (OSError, RuntimeError) as exc:
            rec.flags.append(f"PDF feedback not made: {exc}")
    log(f"PDF feedback: {done} of {len(records)} page(s) printed with {browser}")
    return done
