"""Drive the real nbgrader (0.9.6) on the course: release, autograde, feedback, validate.

Every run happens in a scratch *course directory* (nbgrader's layout: solutions/ as the
source, exercises/ as the release, submitted/, autograded/, feedback/, gradebook.db),
never in the repository itself, with autograder/nbgrader_config.py copied in as its
nbgrader_config.py.  nbgrader is run as `python -m nbgrader` with this interpreter, with
this interpreter's bin directory first on PATH (a new gradebook runs `alembic` from PATH).
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from ..course.notebook import cell_output_text, cells_of, grade_id, read_notebook
from .locate import CONFIG, RELEASE_DIR, SOURCE_DIR, course_root

ASSIGNMENTS_DIR = SOURCE_DIR


def config_file(root: Path | None = None) -> Path:
    return (root or course_root()) / CONFIG


def assignments(root: Path | None = None) -> list[str]:
    """The assignment ids: the folders of solutions/ that hold a notebook, in order."""
    src = (root or course_root()) / ASSIGNMENTS_DIR
    if not src.is_dir():
        raise FileNotFoundError(
            f"no {ASSIGNMENTS_DIR}/ folder in {src.parent}: the course notebooks live in the minicnn repository; "
            "install it editable from a clone (pip install -e '.[course]'), pass --course DIR "
            "or set MINICNN_COURSE_DIR")
    return sorted(p.name for p in src.iterdir() if p.is_dir() and any(p.glob("*.ipynb")))


def nbgrader_env() -> dict:
    env = dict(os.environ)
    env["PATH"] = os.path.dirname(sys.executable) + os.pathsep + env.get("PATH", "")
    env["NUMBA_BOUNDSCHECK"] = "1"
    env.setdefault("PYTHONUNBUFFERED", "1")
    return env


class NbgraderError(RuntimeError):
    pass


@dataclass
class CellScore:
    grade_id: str
    score: float | None     # None: waits for manual grading
    max_score: float
    auto: bool              # graded by code (a test cell)


class CourseDir:
    """A scratch nbgrader course directory."""

    def __init__(self, path: Path, root: Path | None = None):
        self.path = Path(path)
        self.root = root or course_root()
        self.path.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(config_file(self.root), self.path / "nbgrader_config.py")
        self.log = []

    # -- running nbgrader ------------------------------------------------------------------
    def run(self, *args, check=True, timeout=None) -> subprocess.CompletedProcess:
        cmd = [sys.executable, "-m", "nbgrader", *args]
        proc = subprocess.run(cmd, cwd=self.path, env=nbgrader_env(), capture_output=True, text=True,
                              timeout=timeout)
        self.log.append((cmd, proc.returncode, proc.stdout, proc.stderr))
        if check and proc.returncode != 0:
            raise NbgraderError(f"`nbgrader {' '.join(args)}` failed (exit {proc.returncode}):\n"
                                f"{proc.stdout[-3000:]}\n{proc.stderr[-6000:]}")
        return proc

    def add_source(self, assignment: str, notebooks: dict | None = None):
        """Copy solutions/<assignment>/ here (or write the given {name: notebook JSON})."""
        dest = self.path / ASSIGNMENTS_DIR / assignment
        if dest.exists():
            shutil.rmtree(dest)
        if notebooks is None:
            shutil.copytree(self.root / ASSIGNMENTS_DIR / assignment, dest)
        else:
            dest.mkdir(parents=True)
            for name, nb in notebooks.items():
                (dest / name).write_text(nb if isinstance(nb, str) else json.dumps(nb, indent=1), encoding="utf-8")

    def generate(self, assignment: str):
        """nbgrader generate_assignment: the release in exercises/<assignment>/, and the gradebook entry."""
        self.run("generate_assignment", assignment, "--force")
        return self.path / RELEASE_DIR / assignment

    def submit(self, assignment: str, student: str, notebook_path_or_json, name: str | None = None):
        dest = self.path / "submitted" / student / assignment
        dest.mkdir(parents=True, exist_ok=True)
        name = name or f"{assignment}.ipynb"
        if isinstance(notebook_path_or_json, (str, Path)) and Path(notebook_path_or_json).exists():
            shutil.copyfile(notebook_path_or_json, dest / name)
        else:
            data = notebook_path_or_json
            (dest / name).write_text(data if isinstance(data, str) else json.dumps(data, indent=1), encoding="utf-8")
        return dest / name

    def autograde(self, assignment: str, student: str | None = None, timeout=None):
        args = ["autograde", assignment, "--force", "--create"]
        if student:
            args.append(f"--student={student}")
        return self.run(*args, timeout=timeout)

    def feedback(self, assignment: str, student: str | None = None):
        args = ["generate_feedback", assignment, "--force"]
        if student:
            args.append(f"--student={student}")
        self.run(*args)
        return self.path / "feedback"

    # -- reading results -------------------------------------------------------------------
    def scores(self, assignment: str, student: str, notebook: str | None = None) -> dict:
        """{grade_id: CellScore} for one submitted notebook, from the gradebook."""
        from nbgrader.api import Gradebook

        notebook = notebook or assignment
        with Gradebook(f"sqlite:///{self.path / 'gradebook.db'}") as gb:
            nb = gb.find_submission_notebook(notebook, assignment, student)
            out = {}
            for grade in nb.grades:
                auto = grade.cell.cell_type == "code" and not grade.needs_manual_grade
                out[grade.name] = CellScore(grade.name, grade.score if not grade.needs_manual_grade else None,
                                            float(grade.max_score), auto)
            return out

    def autograded_notebook(self, assignment: str, student: str, notebook: str | None = None) -> dict:
        return read_notebook(self.path / "autograded" / student / assignment / f"{notebook or assignment}.ipynb")

    def cell_output(self, assignment: str, student: str, grade: str) -> str:
        """The text a graded cell printed, for reports."""
        for cell in cells_of(self.autograded_notebook(assignment, student)):
            if grade_id(cell) == grade:
                return cell_output_text(cell)
        return ""


def release(dest_root: Path, work: Path, root: Path | None = None, only=None) -> list[Path]:
    """Generate the student release of every assignment with nbgrader into dest_root/<assignment>/."""
    root = root or course_root()
    course = CourseDir(work, root)
    written = []
    for a in only or assignments(root):
        course.add_source(a)
        out = course.generate(a)
        target = Path(dest_root) / a
        if target.exists():
            shutil.rmtree(target)
        shutil.copytree(out, target)
        written.extend(sorted(target.rglob("*.ipynb")))
    return written
