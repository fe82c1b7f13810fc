"""The student's distribution: the wheel, installed with no clone on the path.

Builds the wheel from this checkout, looks inside it for anything that only the instructor may
hold (a solution notebook, the body of a hidden test, a hidden seed, the model answer of a written
part, solution code such as the mutants that quote it), then installs it into a fresh virtual
environment and runs `minicnn course validate` on a released notebook, untouched (fails, with the
normal feedback) and filled with the solutions' code (passes); and, as an instructor with only the
wheel, `course init` -> `release` -> `grade` (a deadline and a late penalty) -> `export`.  Offline: the wheel is built without build isolation and installed with --no-deps; the
new environment reaches the dependencies (numpy, numba, nbgrader) of the environment running the
tests through a path file, as plain directories, so that environment's editable install of minicnn
(a finder started by a .pth file) is not followed.
"""
from __future__ import annotations

import csv
import json
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import venv
import zipfile
from pathlib import Path

import pytest

pytest.importorskip("nbgrader")

REPO = Path(__file__).resolve().parents[2]
SOLUTIONS = REPO / "solutions"
RELEASE = REPO / "exercises"
A = "a1_convolution"
HIDDEN = re.compile(r"### BEGIN HIDDEN TESTS\n(.*?)### END HIDDEN TESTS", re.S)
SOLUTION = re.compile(r"### BEGIN SOLUTION\n(.*?)### END SOLUTION", re.S)
# Solution code: a line of a solution cell, whitespace collapsed, at least this long, is distinctive; a
# file holding SOLUTION_LINES_MAX or more different ones holds solution code (a line or two can be
# shared with minicnn's own kernels, which are public by design: `return x.reshape(x.shape[0], -1)`).
SOLUTION_LINE_CHARS = 30
SOLUTION_LINES_MAX = 3
# Files that compute what an assignment's solution computes, by design: the grader's stand-in kernels
# for assignment 4 (the host functions are graded with them; the same kernels as minicnn.cuda's).
# Their own assignment's lines are allowed there, any other assignment's count.
PUBLIC_BY_DESIGN = {"minicnn/course/a4_launch.py": "a4_gpu"}


def _cells(path: Path):
    return json.loads(path.read_text(encoding="utf-8"))["cells"]


def _src(cell) -> str:
    return "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]


def _nbg(cell) -> dict:
    return cell.get("metadata", {}).get("nbgrader", {})


def instructor_secrets():
    """What no file of the wheel may contain: (hidden test bodies, hidden seeds, model-answer sentences)."""
    bodies, seeds, answers = set(), set(), set()
    for nb in sorted(SOLUTIONS.glob("*/*.ipynb")):
        for cell in _cells(nb):
            text = _src(cell)
            for body in HIDDEN.findall(text):
                bodies.update(line.strip() for line in body.splitlines() if line.strip())
                seeds.update(int(n) for n in re.findall(r"\bseed\s*=\s*(\d+)", body))
            if cell["cell_type"] == "markdown" and _nbg(cell).get("solution"):
                # the model answer of a written part: every sentence long enough to be its own
                answers.update(s.strip() for s in re.split(r"(?<=[.:;!?])\s+", " ".join(text.split()))
                               if len(s.strip()) >= 40)
    return bodies, seeds, answers


def _flat(text: str) -> str:
    return " ".join(text.split())


def solution_lines() -> dict:
    """{line: assignment} for the distinctive lines of the instructor's solution code: each line of a
    solution cell's BEGIN/END SOLUTION block (the whole cell when it has none), whitespace collapsed,
    long enough, not a comment, and not in the released notebook (the scaffolding students get)."""
    lines = {}
    for nb in sorted(SOLUTIONS.glob("*/*.ipynb")):
        release = RELEASE / nb.parent.name / nb.name
        public = {_flat(line) for cell in _cells(release) for line in _src(cell).splitlines()} if release.exists() else set()
        for cell in _cells(nb):
            if cell["cell_type"] != "code" or not _nbg(cell).get("solution"):
                continue
            text = _src(cell)
            for body in SOLUTION.findall(text) or [text]:
                for line in map(_flat, body.splitlines()):
                    if len(line) >= SOLUTION_LINE_CHARS and not line.startswith("#") and line not in public:
                        lines[line] = nb.parent.name
    return lines


def leaks(files: dict) -> list:
    """Every instructor-only thing found in `files` ({name: bytes}), as readable lines."""
    bodies, seeds, answers = instructor_secrets()
    code = solution_lines()
    found = []
    for name, data in files.items():
        if name.endswith(".ipynb"):
            found.append(f"{name}: a notebook")
            continue
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            continue                                  # the MNIST sample and other binaries
        flat = " ".join(text.split())
        found += [f"{name}: hidden test line {b!r}" for b in bodies if b in text]
        for seed in seeds:
            if re.search(rf"\bseed\s*[=:]\s*{seed}\b", text) or (name.endswith(".py") and re.search(rf"\b{seed}\b", text)):
                found.append(f"{name}: hidden seed {seed}")
        found += [f"{name}: model answer {a[:60]!r}..." for a in answers if a in flat]
        quoted = sorted(line for line, a in code.items() if line in flat and PUBLIC_BY_DESIGN.get(name) != a)
        if len(quoted) >= SOLUTION_LINES_MAX:
            found.append(f"{name}: solution code, {len(quoted)} lines such as {quoted[0]!r}")
    return found


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """The wheel built from a copy of what packaging reads (pyproject.toml, README.md, minicnn/)."""
    tmp = tmp_path_factory.mktemp("wheel")
    src = tmp / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md", "LICENSE", "MANIFEST.in"):
        if (REPO / name).exists():
            shutil.copy(REPO / name, src / name)
    shutil.copytree(REPO / "minicnn", src / "minicnn",
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "*.nbi", "*.nbc"))
    dist = tmp / "dist"
    proc = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index",
                           "-q", "-w", str(dist), str(src)], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    (built,) = dist.glob("minicnn-*.whl")
    return built


def test_the_leak_check_catches_what_it_looks_for():
    bodies, seeds, answers = instructor_secrets()
    assert bodies and seeds and answers, "the solutions have hidden tests and written parts to look for"
    seed = sorted(seeds)[0]
    answer = sorted(answers)[0]
    planted = {
        "minicnn/a.py": f'"""for example\n    seed = {seed}\n"""\n'.encode(),
        "minicnn/b.md": ("The answer is: " + answer.replace(" ", "\n  ")).encode(),
        f"minicnn/{A}.ipynb": b"{}",
        "minicnn/c.bin": bytes([0xff, 0xfe, 0x00]),
    }
    found = leaks(planted)
    assert any("a.py: hidden" in f for f in found) and any("b.md: model answer" in f for f in found)
    assert any(f.startswith(f"minicnn/{A}.ipynb") for f in found)
    assert not leaks({"minicnn/ok.py": b"seed = 0  # the public cases\n"})


def test_the_leak_check_catches_solution_code():
    """The mutants quote the solutions: the wheel of before (which shipped them as
    minicnn/course/mutants.py) fails the check; so does a solution cell pasted into a docstring."""
    lines = solution_lines()
    assert len(lines) > 50 and {"a1_convolution", "a3_backprop", "a5_lenet"} <= set(lines.values())
    old_wheel = {"minicnn/course/mutants.py": (SOLUTIONS / "mutants.py").read_bytes()}
    assert any("mutants.py: solution code" in f for f in leaks(old_wheel)), leaks(old_wheel)
    cell = next(_src(c) for c in _cells(SOLUTIONS / A / f"{A}.ipynb")
                if _nbg(c).get("grade_id") == "correlate2d")
    pasted = {"minicnn/doc.py": ('"""An example:\n\n' + cell.replace("\n", "\n    ") + '\n"""\n').encode()}
    assert any("doc.py: solution code" in f for f in leaks(pasted))
    # a line or two in common with minicnn's own kernels is not solution code
    one = sorted(lines)[0]
    assert not leaks({"minicnn/kernel.py": f"# {one}\n".encode()})


def test_the_wheel_holds_the_library_and_no_instructor_material(wheel):
    with zipfile.ZipFile(wheel) as zf:
        files = {n: zf.read(n) for n in zf.namelist() if not n.endswith("/")}
    names = set(files)
    # the library, the public checks and the catalogue are there ...
    for needed in ("minicnn/__init__.py", "minicnn/course/checks.py", "minicnn/examples/catalogue.json",
                   "minicnn/grader/nbg.py", "minicnn/sandbox/isolation.py"):
        assert needed in names, f"{needed} is missing from {wheel.name}"
    # ... and nothing of solutions/, nor anything of it copied into the package
    assert not [n for n in names if n.startswith(("solutions/", "exercises/", "autograder/"))]
    assert leaks(files) == []


def _fresh_venv(tmp: Path) -> Path:
    """A new environment whose only minicnn is the one pip installs into it."""
    env_dir = tmp / "venv"
    venv.EnvBuilder(with_pip=True, symlinks=True).create(env_dir)
    py = env_dir / "bin" / "python"
    site = subprocess.run([str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          capture_output=True, text=True, check=True).stdout.strip()
    # the dependencies of the running environment, as a plain directory (its .pth files are not run)
    (Path(site) / "deps_of_the_test_env.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    return py


def _run(py, *args, cwd):
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "MINICNN_COURSE_DIR", "VIRTUAL_ENV")}
    # the new environment's scripts first; then those of the dependencies (nbgrader runs `alembic`), which
    # a real install would have put beside them and which here live with the environment running the tests
    env["PATH"] = os.pathsep.join([str(Path(py).parent), sysconfig.get_paths()["scripts"], env.get("PATH", "")])
    return subprocess.run([str(py), *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=900)


def _filled(release: Path, solution: Path) -> dict:
    """The released notebook with each solution cell's code taken from the instructor's notebook, and
    each written part answered in a student's own words (validate only asks that it is answered)."""
    answers = {_nbg(c).get("grade_id"): _src(c) for c in _cells(solution) if _nbg(c).get("solution")}
    nb = json.loads(release.read_text(encoding="utf-8"))
    for cell in nb["cells"]:
        gid = _nbg(cell).get("grade_id")
        if _nbg(cell).get("solution") and cell["cell_type"] == "code" and gid in answers:
            cell["source"] = answers[gid]
        elif _nbg(cell).get("solution") and cell["cell_type"] == "markdown":
            cell["source"] = "The kernel is learned, so flipping it or not makes no difference to what a layer can do."
    return nb


@pytest.fixture(scope="module")
def installed(wheel, tmp_path_factory) -> Path:
    """The python of a fresh virtual environment with the wheel installed (and no clone on its path)."""
    tmp = tmp_path_factory.mktemp("installed")
    py = _fresh_venv(tmp)
    proc = _run(py, "-m", "pip", "install", "-q", "--no-deps", "--no-index", str(wheel), cwd=tmp)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    where = _run(py, "-c", "import minicnn; print(minicnn.__file__)", cwd=tmp)
    assert where.returncode == 0, where.stderr
    assert Path(where.stdout.strip()).is_relative_to(tmp / "venv"), where.stdout
    assert not Path(where.stdout.strip()).is_relative_to(REPO)
    return py


def test_a_student_validates_a_released_notebook_with_only_the_wheel(installed, tmp_path):
    py = installed
    work = tmp_path / "student"
    work.mkdir()
    untouched = work / f"{A}.ipynb"
    shutil.copy(RELEASE / A / f"{A}.ipynb", untouched)
    proc = _run(py, "-m", "minicnn", "course", "validate", str(untouched), cwd=work)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "fall short" in proc.stdout

    filled_dir = work / "filled"
    filled_dir.mkdir()
    filled = filled_dir / f"{A}.ipynb"
    filled.write_text(json.dumps(_filled(RELEASE / A / f"{A}.ipynb", SOLUTIONS / A / f"{A}.ipynb")), encoding="utf-8")
    proc = _run(py, "-m", "minicnn", "course", "validate", str(filled), cwd=filled_dir)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "fall short" not in proc.stdout


DUE = "2026-11-20 17:00:00 UTC"
STAMPS = {"ontime": "2026-11-20 16:59:00.000000 UTC", "late": "2026-11-21 09:30:00.000000 UTC"}
HALVE = """from nbgrader.plugins import LateSubmissionPlugin


class Halve(LateSubmissionPlugin):
    \"\"\"A late submission keeps half of its points.\"\"\"

    def late_submission_penalty(self, student_id, score, total_seconds_late):
        return score / 2
"""


def test_an_instructor_runs_a_course_from_the_wheel(installed, tmp_path):
    """init -> release -> grade -> export with only the wheel installed (issue 14): a deadline with a
    penalty plugin in the course's nbgrader_config.py, one submission before it and one after."""
    from nbgrader.api import Gradebook

    py, course = installed, tmp_path / "course"
    proc = _run(py, "-m", "minicnn", "course", "init", str(course), "--from", str(REPO), "--no-release", cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert (course / "solutions" / "mutants.py").is_file()
    proc = _run(py, "-m", "minicnn", "course", "release", "--assignment", A, cwd=course)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert (course / "exercises" / A / f"{A}.ipynb").is_file()

    (course / "halve.py").write_text(HALVE)
    (course / "nbgrader_config.py").write_text('c = get_config()\nc.AssignLatePenalties.plugin_class = "halve.Halve"\n')
    proc = _run(py, "-m", "nbgrader", "db", "assignment", "add", A, "--duedate", DUE, cwd=course)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    (course / ".minicnn" / "roster.csv").write_text("student_id,first_name,last_name,email,lms_id\n"
                                                    "ontime,Ada,Early,ada@example.org,ada1\n"
                                                    "late,Bo,Later,bo@example.org,bo2\n")
    proc = _run(py, "-m", "minicnn", "course", "roster", "import", cwd=course)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    for student, stamp in STAMPS.items():
        folder = course / "submitted" / student / A
        folder.mkdir(parents=True)
        shutil.copy(course / "solutions" / A / f"{A}.ipynb", folder / f"{A}.ipynb")
        (folder / "timestamp.txt").write_text(stamp + "\n")
    proc = _run(py, "-m", "minicnn", "course", "grade", A, "--jobs", "1", "--no-progress", cwd=course)
    assert proc.returncode == 0, proc.stdout + proc.stderr

    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gb:
        subs = {s: gb.find_submission(A, s) for s in STAMPS}
        got = {s: (float(sub.score), float(sub.late_submission_penalty or 0)) for s, sub in subs.items()}
        names = {s: (sub.student.first_name, sub.student.last_name) for s, sub in subs.items()}
    score = got["ontime"][0]
    assert score > 0 and got["late"][0] == score, got            # the same notebook, the same points
    assert got["ontime"][1] == 0 and got["late"][1] == score / 2, got
    assert names["late"] == ("Bo", "Later")
    with (course / "grades" / f"{A}.csv").open(newline="") as fh:
        rows = {r["student"]: r for r in csv.DictReader(fh)}
    assert float(rows["ontime"]["late_penalty"]) == 0 and float(rows["ontime"]["final"]) == score
    assert float(rows["late"]["late_penalty"]) == score / 2 and float(rows["late"]["final"]) == score / 2
    assert float(rows["late"]["seconds_late"]) == 16.5 * 3600
    assert "late penalty" in (course / "feedback" / "late" / A / f"{A}.html").read_text().lower()

    exported = {}
    for fmt, key in (("canvas", "SIS User ID"), ("moodle", "ID number")):
        out = tmp_path / f"{fmt}.csv"
        proc = _run(py, "-m", "minicnn", "course", "export", "--format", fmt, "-o", str(out), cwd=course)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        with out.open(newline="") as fh:
            exported[fmt] = {r[key]: r for r in csv.DictReader(fh) if r[key]}
        assert float(exported[fmt]["ontime"][A]) == round(score, 2), exported[fmt]
        assert float(exported[fmt]["late"][A]) == round(score / 2, 2), exported[fmt]
    assert exported["canvas"]["late"]["Student"] == "Later, Bo"
    assert exported["moodle"]["late"]["Email address"] == "bo@example.org"
