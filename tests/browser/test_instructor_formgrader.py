"""The instructor's side, in a real browser: nbgrader's formgrader (JupyterLab's server, nbgrader's
own extension) opened on a class graded by `minicnn course grade`.

The class is a small nbgrader course directory built in a temp dir with the ordinary commands:
source/ from the course's solutions, release/ from its release (what `nbgrader generate_assignment`
makes of source/), two students' submissions under submitted/ (ann hands in the instructor's solution, written answer included; ben
hands in the untouched release), graded by `minicnn course grade`.  The instructor sees the
students and their scores, opens ann's submission (it needs manual grading: assignment 1's written
answer), enters a grade, and that grade is then in the gradebook (nbgrader's Gradebook API) and in
`nbgrader export`'s CSV.
"""
from __future__ import annotations

import csv
import re
import shutil
import sys
from pathlib import Path

import pytest

from browser_helpers import PAGE_MS, REPO, check_cells, filled_in, read_nb, run, write_nb, written_answers

try:
    from playwright.sync_api import expect
except ImportError:  # the chromium_exe fixture skips these tests (fails them where the browser is required)
    expect = None

ASSIGNMENT = "a1_convolution"
NOTEBOOK = f"{ASSIGNMENT}.ipynb"
BIN = Path(sys.executable).parent
ROSTER = "student_id,first_name,last_name,email,lms_id\nann,Ann,Lovelace,ann@example.org,al\nben,Ben,Turing,,bt\n"
DUE = "2026-11-20 17:00:00 UTC"
STAMPS = {"ann": "2026-11-21 17:00:00 UTC", "ben": "2026-11-20 16:00:00 UTC"}  # as formgrader shows them


def commands_env():
    """The environment for the course commands: this Python's bin first (nbgrader runs `alembic`)."""
    import os

    return {**os.environ, "PATH": str(BIN) + os.pathsep + os.environ.get("PATH", "")}


def minicnn_cmd():
    exe = BIN / "minicnn"
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "minicnn.cli"]


@pytest.fixture
def graded_class(tmp_path, chromium_exe):
    """A course directory with ann's and ben's submissions of assignment 1, graded by `minicnn course grade`."""
    course = tmp_path / "course"
    (course / "source").mkdir(parents=True)
    shutil.copytree(REPO / "solutions" / ASSIGNMENT, course / "source" / ASSIGNMENT)
    # The course's own nbgrader configuration, pointed at nbgrader's usual folder names, and an
    # exchange folder of its own (formgrader warns when the system-wide one is not writable).
    config = (REPO / "autograder" / "nbgrader_config.py").read_text(encoding="utf-8")
    config += ("\n# the browser test's course directory uses nbgrader's default folder names\n"
               'c.CourseDirectory.source_directory = "source"\n'
               'c.CourseDirectory.release_directory = "release"\n'
               f"c.Exchange.root = {str(course / 'exchange')!r}\n")
    (course / "nbgrader_config.py").write_text(config, encoding="utf-8")
    (course / "exchange").mkdir()
    env = commands_env()
    # release/: the course's committed release, which is exactly what `nbgrader generate_assignment`
    # makes from source/ (`minicnn course verify` and tests/course check that; running nbgrader here
    # again would only add half a minute)
    shutil.copytree(REPO / "exercises" / ASSIGNMENT, course / "release" / ASSIGNMENT)
    release = course / "release" / ASSIGNMENT / NOTEBOOK

    write_nb(filled_in(ASSIGNMENT), course / "submitted" / "ann" / ASSIGNMENT / NOTEBOOK)
    write_nb(read_nb(release), course / "submitted" / "ben" / ASSIGNMENT / NOTEBOOK)
    # The roster (names for ann and ben), a due date in the gradebook, nbgrader's timestamp.txt in
    # each submission (ann's a day late, ben's on time) and the "zero" late penalty.
    (course / "roster.csv").write_text(ROSTER, encoding="utf-8")
    run(minicnn_cmd() + ["course", "roster", "import", "roster.csv"], cwd=course, env=env)
    run([sys.executable, "-m", "nbgrader", "db", "assignment", "add", ASSIGNMENT, "--duedate", DUE], cwd=course, env=env)
    with open(course / "nbgrader_config.py", "a", encoding="utf-8") as fh:
        fh.write('c.LateSubmissionPlugin.penalty_method = "zero"\n')
    for student, stamp in STAMPS.items():
        (course / "submitted" / student / ASSIGNMENT / "timestamp.txt").write_text(stamp + "\n")
    proc = run(minicnn_cmd() + ["course", "grade", ASSIGNMENT, "--course", str(course), "--jobs", "2",
                                "--no-progress"], cwd=course, env=env)
    assert (course / "gradebook.db").is_file(), proc.stdout
    return course


def row_of(page, table_text):
    return page.locator("tbody tr", has=page.locator("td", has_text=re.compile(rf"^{table_text}$")))


def test_formgrader_shows_the_graded_class_and_takes_a_manual_grade(graded_class, lab, page, shots):
    from nbgrader.api import Gradebook

    course = graded_class
    nb = read_nb(course / "release" / ASSIGNMENT / NOTEBOOK)
    manual = written_answers(nb)
    auto = sum(float(meta["points"]) for _, meta in check_cells(nb))
    assert manual, f"{NOTEBOOK} has no cell graded by hand"
    cell_id, cell_points = next(iter(manual.items()))
    total = auto + sum(manual.values())

    server = lab(course)
    # the formgrader pages fetch their data with XHRs; send the server's token with each request
    page.set_extra_http_headers({"Authorization": f"token {server.token}"})

    # 1. The assignment, with its two submissions.
    page.goto(server.url("formgrader"))
    assignment_row = row_of(page, ASSIGNMENT)
    expect(assignment_row).to_have_count(1, timeout=PAGE_MS)
    expect(assignment_row.locator("td").nth(8)).to_have_text("2")  # "# Submissions"
    shots(page, "formgrader_assignments")

    # 2. The students and their scores (the written answer not graded yet).
    page.get_by_role("link", name="Manage Students").click()
    expect(row_of(page, "ann")).to_contain_text(f"{auto:g} / {total:g}", timeout=PAGE_MS)
    expect(row_of(page, "ben")).to_contain_text(f"0 / {total:g}")
    # the Name column shows each student's name from the roster
    expect(row_of(page, "ann")).to_contain_text("Lovelace, Ann")
    expect(row_of(page, "ben")).to_contain_text("Turing, Ben")
    shots(page, "formgrader_students")

    # 2b. The submissions' times, from their timestamp.txt.
    page.goto(server.url(f"formgrader/manage_submissions/{ASSIGNMENT}"))
    expect(row_of(page, "ann").locator("td.timestamp")).to_have_text(STAMPS["ann"], timeout=PAGE_MS)
    expect(row_of(page, "ben").locator("td.timestamp")).to_have_text(STAMPS["ben"])
    shots(page, "formgrader_submission_times")

    # 3. Manual grading: the submissions list flags both as needing a manual grade.
    page.goto(server.url(f"formgrader/gradebook/{ASSIGNMENT}/{ASSIGNMENT}"))
    submissions = page.locator("tbody tr")
    expect(submissions.locator("td.name a.name-hidden")).to_have_count(2, timeout=PAGE_MS)
    expect(submissions.locator("td.needs-manual-grade .glyphicon-ok")).to_have_count(2)
    page.get_by_role("button", name="Show All Names").click()
    ann_link = page.locator("td.name a.name-shown", has_text=re.compile(r"^Lovelace, Ann$"))  # the roster's name
    expect(ann_link).to_be_visible()
    ann_row = submissions.filter(has=ann_link)
    expect(ann_row.locator("td.score")).to_have_text(f"{auto:g} / {total:g}")
    shots(page, "formgrader_submissions")

    # 4. ann's submission: the autograded notebook, with a score box for the written answer.
    ann_link.click()
    box = page.locator(f"input.score#{cell_id}")
    expect(box).to_be_visible(timeout=PAGE_MS)
    expect(box).to_have_class(re.compile(r"\bneeds_manual_grade\b"))
    # an autograded cell's box shows the autograder's score (formgrader puts it in the placeholder)
    _, first_check = check_cells(nb)[0]
    test_id, test_points = first_check["grade_id"], float(first_check["points"])
    expect(page.locator(f"input.score#{test_id}")).to_have_attribute("placeholder", f"{test_points:g}")
    box.scroll_into_view_if_needed()
    shots(page, "submission_written_answer_before")
    with page.expect_response(lambda r: "/formgrader/api/grade/" in r.url and r.request.method == "PUT"
                              and r.ok, timeout=PAGE_MS):
        box.fill(f"{cell_points:g}")
        box.press("Tab")  # formgrader saves a score when its box loses focus
    expect(box).not_to_have_class(re.compile(r"\bneeds_manual_grade\b"))
    shots(page, "submission_written_answer_graded")

    # 5. The formgrader's own views show the new total.
    page.goto(server.url("formgrader/manage_students"))
    expect(row_of(page, "ann")).to_contain_text(f"{total:g} / {total:g}", timeout=PAGE_MS)
    shots(page, "formgrader_students_after")

    # 6. The grade is in the gradebook ...
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gb:
        grade = gb.find_grade(cell_id, ASSIGNMENT, ASSIGNMENT, "ann")
        assert grade.manual_score == cell_points and grade.score == cell_points
        assert gb.find_submission(ASSIGNMENT, "ann").score == total
        assert gb.find_submission(ASSIGNMENT, "ben").score == 0
        assert gb.find_grade(cell_id, ASSIGNMENT, ASSIGNMENT, "ben").manual_score is None

    # ... and in nbgrader's export.
    run([sys.executable, "-m", "nbgrader", "export", "--to", "grades.csv"], cwd=course, env=commands_env())
    with open(course / "grades.csv", newline="") as fh:
        rows = {r["student_id"]: r for r in csv.DictReader(fh) if r["assignment"] == ASSIGNMENT}
    assert set(rows) == {"ann", "ben"}
    assert float(rows["ann"]["raw_score"]) == total and float(rows["ann"]["max_score"]) == total
    assert float(rows["ben"]["score"]) == 0
    # ann was a day late: "zero" took the score she had when graded (the autograded parts)
    assert float(rows["ann"]["late_submission_penalty"]) == auto and float(rows["ann"]["score"]) == total - auto
    assert float(rows["ben"]["late_submission_penalty"]) == 0
    assert (rows["ann"]["first_name"], rows["ann"]["last_name"]) == ("Ann", "Lovelace")
    assert (rows["ben"]["first_name"], rows["ben"]["last_name"]) == ("Ben", "Turing")
