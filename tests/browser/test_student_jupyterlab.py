"""The student's side, in a real browser: a released notebook opened in JupyterLab, run cell by
cell, and checked with nbgrader's Validate button (nbgrader's JupyterLab extension, as shipped in
its wheel).

Screenshots of every step go to the results folder (see browser_helpers.results_root).
"""
from __future__ import annotations

import re

from browser_helpers import PAGE_MS, REPO, RUN_MS, check_cells, filled_in, read_nb, write_nb

try:
    from playwright.sync_api import expect
except ImportError:  # the chromium_exe fixture skips these tests (fails them where the browser is required)
    expect = None

ASSIGNMENT = "a1_convolution"
NOTEBOOK = f"{ASSIGNMENT}.ipynb"
POINTS_LINE = re.compile(r"-> (\d+(?:\.\d+)?) of (\d+(?:\.\d+)?) points")

# Every code cell shows an execution count: the kernel ran them all (JupyterLab writes [*] while a
# cell waits or runs, [ ] for one never run).
ALL_CELLS_RAN = """() => {
    const prompts = [...document.querySelectorAll('.jp-NotebookPanel .jp-CodeCell .jp-InputPrompt')]
        .map(p => p.textContent.trim());
    return prompts.length > 0 && prompts.every(t => /^\\[\\d+\\]:$/.test(t));
}"""


def open_notebook(page, server, path):
    """Open `path` in JupyterLab and wait until its kernel has started and is idle."""
    page.goto(server.url(f"lab/tree/{path}"))
    expect(page.locator(".jp-NotebookPanel .jp-Cell").first).to_be_visible(timeout=PAGE_MS)
    expect(page.locator(".jp-StatusBar-TextItem", has_text=re.compile(r"\| Idle$"))).to_be_visible(timeout=PAGE_MS)


def validate(page):
    """Press nbgrader's Validate button; return the results dialog once nbgrader has answered."""
    page.locator(".jp-NotebookPanel-toolbar").get_by_text("Validate", exact=True).click()
    message = page.locator(".jp-Dialog #validation-message")
    # The server runs the whole notebook again in a fresh kernel before it answers.
    expect(message).to_be_visible(timeout=RUN_MS)
    expect(page.locator(".jp-Dialog .jp-Dialog-header")).to_have_text("Validation Results")
    return message


def test_a_filled_in_notebook_runs_in_jupyterlab_and_validates(tmp_path, lab, page, shots):
    nb = filled_in(ASSIGNMENT)
    work = tmp_path / "student"
    write_nb(nb, work / NOTEBOOK)
    server = lab(work)

    open_notebook(page, server, NOTEBOOK)
    shots(page, "opened")

    # Run > Run All Cells, from the menu bar, as a student would.
    page.locator(".lm-MenuBar-itemLabel", has_text=re.compile(r"^Run$")).click()
    page.locator(".lm-Menu-itemLabel", has_text=re.compile(r"^Run All Cells$")).click()
    page.wait_for_function(ALL_CELLS_RAN, timeout=RUN_MS, polling=1000)
    server.note_children()

    # Each check cell shows the checks' feedback and full points; no cell failed.
    cells = page.locator(".jp-NotebookPanel .jp-Notebook .jp-Cell")
    assert cells.count() == len(nb["cells"]), "the page shows every cell of the notebook"
    outputs = page.locator(".jp-NotebookPanel .jp-OutputArea-output").all_inner_texts()
    assert outputs, "the run printed nothing"
    assert not [t for t in outputs if "Traceback" in t or "NotImplementedError" in t], "a cell raised"
    earned = total = 0.0
    tests = check_cells(nb)
    assert tests, f"{NOTEBOOK} has no test cells"
    for index, meta in tests:
        text = cells.nth(index).locator(".jp-OutputArea").inner_text()
        found = POINTS_LINE.findall(text)
        assert found, f"test cell {meta['grade_id']} shows no points line; it shows:\n{text[:2000]}"
        got, out_of = map(float, found[-1])
        assert out_of == float(meta["points"]), (meta["grade_id"], found)
        assert got == out_of, f"{meta['grade_id']}: {got} of {out_of} points for the instructor's solution"
        earned, total = earned + got, total + out_of
    assert total > 0 and earned == total
    first_check = cells.nth(tests[0][0])
    first_check.scroll_into_view_if_needed()
    expect(first_check.locator(".jp-OutputArea")).to_contain_text("points")
    shots(page, "ran_all_cells_check_feedback")
    cells.nth(tests[-1][0]).scroll_into_view_if_needed()
    shots(page, "ran_all_cells_last_check")

    message = validate(page)
    server.note_children()
    expect(message).to_have_class(re.compile(r"\bvalidation-success\b"))
    expect(message).to_contain_text("Success! Your notebook passes all the tests.")
    shots(page, "validate_success")
    page.locator(".jp-Dialog .jp-mod-accept").click()
    expect(page.locator(".jp-Dialog")).to_have_count(0)


def test_the_untouched_release_fails_validation(tmp_path, lab, page, shots):
    release = REPO / "exercises" / ASSIGNMENT / NOTEBOOK
    nb = read_nb(release)
    work = tmp_path / "student"
    write_nb(nb, work / NOTEBOOK)
    server = lab(work)

    open_notebook(page, server, NOTEBOOK)
    shots(page, "opened_release")
    message = validate(page)
    server.note_children()
    expect(message).to_have_class(re.compile(r"\bvalidation-failed\b"))
    expect(message).not_to_contain_text("Success!")
    # Every test cell falls short on the stubs (they raise NotImplementedError, which the checks
    # report as failed cases), and the dialog lists each one by its code; the unanswered written
    # answer is listed too.
    text = message.inner_text()
    tests = check_cells(nb)
    failed = message.get_by_text("The following cell failed:")
    assert failed.count() >= len(tests), f"{failed.count()} failed cells listed for {len(tests)} tests:\n{text}"
    for index, meta in tests:
        call = "".join(nb["cells"][index]["source"]).strip().splitlines()[-1]
        assert call in text, f"test cell {meta['grade_id']} ({call}) is not among the failures:\n{text}"
    expect(message).to_contain_text("You did not provide a response.")
    shots(page, "validate_failed")
    page.locator(".jp-Dialog .jp-mod-accept").click()
    expect(page.locator(".jp-Dialog")).to_have_count(0)
