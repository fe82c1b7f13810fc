"""`minicnn course init DIR`: a standalone course directory, with nothing pointing back to the clone."""
from __future__ import annotations

import json
import stat
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("nbgrader")

from minicnn.grader import init, locate  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
A = "a1_convolution"


@pytest.fixture(scope="module")
def course(tmp_path_factory) -> Path:
    dest = tmp_path_factory.mktemp("init") / "course"
    proc = subprocess.run([sys.executable, "-m", "minicnn", "course", "init", str(dest), "--from", str(REPO)],
                          capture_output=True, text=True, timeout=900, cwd=dest.parent)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return dest


def test_init_makes_the_course_layout(course):
    assert locate.is_course_dir(course)
    for a in sorted(p.name for p in (REPO / "solutions").iterdir() if p.is_dir()):
        assert (course / "solutions" / a / f"{a}.ipynb").is_file()
        released = course / "exercises" / a / f"{a}.ipynb"
        assert released.is_file(), f"{a} not released"
        text = released.read_text(encoding="utf-8")
        assert "BEGIN HIDDEN TESTS" not in text and "BEGIN SOLUTION" not in text
    secret = course / ".minicnn" / "secret"
    assert len(secret.read_text().strip()) == 64
    assert stat.S_IMODE(secret.stat().st_mode) == 0o600
    assert (course / ".minicnn" / "roster.csv").read_text().startswith("student_id,first_name,last_name,email,")


def test_nothing_in_the_course_points_back_to_the_clone(course):
    for path in course.rglob("*"):
        assert not path.is_symlink(), path
        if path.is_file():
            assert str(REPO) not in path.read_text(encoding="utf-8", errors="replace"), path


def test_the_course_is_found_from_inside_it_and_released_again_there(course, monkeypatch):
    monkeypatch.delenv("MINICNN_COURSE_DIR", raising=False)
    monkeypatch.chdir(course)
    assert locate.course_root() == course
    released = course / "exercises" / A / f"{A}.ipynb"
    released.unlink()
    proc = subprocess.run([sys.executable, "-m", "minicnn", "course", "release", "--assignment", A],
                          capture_output=True, text=True, timeout=900, cwd=course)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert json.loads(released.read_text(encoding="utf-8"))["cells"]


def test_init_refuses_a_directory_in_use_or_inside_the_course(course, tmp_path):
    (tmp_path / "x").write_text("mine")
    with pytest.raises(FileExistsError, match="not empty"):
        init.init_course(tmp_path, source=course, release=False)
    with pytest.raises(ValueError, match="inside the course"):
        init.init_course(course / "sub", source=course, release=False)


def test_the_mutants_come_with_the_course_and_fit_its_solutions(course, monkeypatch):
    """verify's known-wrong implementations quote the solutions, so they are course material
    (solutions/mutants.py, not the package): init copies them, and inside the new course they are
    found and still apply to its notebooks."""
    from minicnn.course import mutation
    from minicnn.course.notebook import read_notebook

    monkeypatch.delenv("MINICNN_COURSE_DIR", raising=False)
    monkeypatch.chdir(course)
    path = locate.mutants_file()
    assert path == course / "solutions" / "mutants.py"
    known = mutation.load(path)
    assert [m.name for m in known] == [m.name for m in mutation.load(REPO / "solutions" / "mutants.py")]
    for a in sorted({m.assignment for m in known}):
        source = read_notebook(locate.source_notebook(a, course))
        for group in mutation.batches(source, mutation.for_assignment(a, known)):
            mutation.mutate_notebook(source, group)      # StaleMutant if an edit no longer fits
