"""Grade one submission from outside the student's process.

nbgrader runs a notebook's test cells in the student's own kernel, so the student's code
can rewrite them (an IPython input transformer), neuter what they call
(numpy.testing, np.allclose, minicnn's reference) or read the hidden tests.  Here the
test cells are never run where the student's code runs.  `grade()` is four stages, each
visited once, each handing the one record (record.Grade) to the next:

1. plan      the instructor's source notebook says which parts are graded, with which points
             and hidden seed (its test cells, read as text with `ast`, never executed: plan.py);
             with a course secret, each hidden seed is the student's own (seeds.py);
2. read      the submission's code cells (minus its test cells; read-only cells taken from the
             source) and the static signs of tampering in them;
3. run       those cells run in a runner process inside the sandbox (remote.py, runner.py); for
             every case the grader generates the inputs, asks the runner to call the student's
             function on them, reads the reply as data (no pickle), and compares it with
             minicnn's reference answer computed here (minicnn.course.checks.run_part); every
             public answer of every part is asked for before any hidden input is sent (phases.py);
4. finish    what the run showed (cell errors, flags, output, processes killed) goes on the record.

What the student's code does to its own process changes nothing but its own replies.
Signs of tampering (patching libraries or builtins, input transformers, edited or deleted
test cells, malformed replies, processes left behind) are reported to the instructor.
"""
from __future__ import annotations

import dataclasses
import os
import re
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from ..course import checks
from ..course.notebook import read_notebook
from ..sandbox import isolation
from .phases import Phased
from .plan import TestSpec, numba_compiled, program, run_time_rebinding, static_flags, test_specs, tripwire_mode
from .record import Grade, PartGrade
from .remote import Remote, RemoteFunction

CELLS_TIMEOUT = {"a5_lenet": 900.0}     # seconds for a submission's cells to run (training takes a while)
DEFAULT_CELLS_TIMEOUT = 120.0


@dataclass
class Settings:
    """How to run every submission of a batch (the same for all of them)."""

    mode: str                               # "bwrap" or "rlimits" (isolation.choose)
    limits: isolation.Limits
    scratch: Path                           # where each run gets its private working copy
    cells_timeout: float | None = None      # default: CELLS_TIMEOUT for the assignment
    case_timeout: float | None = None       # a cap on each part's per-call time limit


def grade(student: str, assignment: str, source_nb: dict, submission_dir: Path, settings: Settings,
          seeds: dict | None = None) -> Grade:
    """Grade `submission_dir/<assignment>.ipynb`; returns its record.

    seeds: {grade_id: hidden seed} for this student (seeds.for_student, derived from the course
    secret by the batch's parent process, which alone reads the secret); a test cell not in it
    keeps the notebook's own seed."""
    t0 = time.perf_counter()
    record = Grade(student, assignment)
    specs = [dataclasses.replace(s, seed=int(seeds[s.grade_id])) if seeds and s.grade_id in seeds else s
             for s in test_specs(source_nb)]                                   # 1. plan
    cells = _read(record, specs, source_nb, Path(submission_dir))               # 2. read
    if cells is not None:
        remote = _run(record, specs, cells, Path(submission_dir), settings)      # 3. run
        _finish(record, remote)                                                  # 4. finish
    record.seconds = time.perf_counter() - t0
    return record


def _zero_all(record: Grade, specs, status: str, reason: str) -> None:
    record.status, record.reason = status, reason
    record.parts = [PartGrade(s.grade_id, s.part, checks.get_part(s.part).title, 0.0, s.points, [reason])
                    for s in specs]


def _read(record: Grade, specs, source_nb: dict, submission_dir: Path):
    """The cells to run, with the notes and flags on the record; None (every part zero) when
    there is no notebook to run."""
    path = submission_dir / f"{record.assignment}.ipynb"
    if not path.is_file():
        _zero_all(record, specs, "missing", f"no {record.assignment}.ipynb in the submission")
        return None
    try:
        cells, notes = program(source_nb, read_notebook(path))
    except (ValueError, UnicodeDecodeError) as exc:
        _zero_all(record, specs, "unreadable",
                  f"the notebook could not be read: {type(exc).__name__}: {str(exc)[:200]}")
        return None
    record.notes = notes
    record.flags = static_flags(cells)
    return cells


# files of code a submission may not bring beside its notebook: Python imports them from the
# working folder once a cell puts it on sys.path, and the grader reads only the notebook's cells
# (a red-team course, 2026-12-03: helper.py rebound the compiled functions, unseen, for full marks)
CODE_SUFFIXES = (".py", ".pyc", ".pyo", ".pyd", ".pyw", ".pyx", ".so", ".pth", ".egg", ".whl", ".zip")


def workdir_for(student: str, submission_dir: Path, scratch: Path) -> tuple[Path, list]:
    """A private copy of the student's own folder (nothing else of the course; no symlinks, no
    files of Python code): (the folder, the relative paths of the code files left out)."""
    workdir = Path(tempfile.mkdtemp(prefix=f"{re.sub(r'[^A-Za-z0-9_.-]', '_', student)[:40]}-", dir=scratch))
    left_out: list = []

    def is_code(name: str) -> bool:
        return name.lower().endswith(CODE_SUFFIXES)

    def ignore(folder, names):
        skip = [n for n in names if is_code(n) and not os.path.isdir(os.path.join(folder, n))]
        left_out.extend(os.path.relpath(os.path.join(folder, n), submission_dir) for n in skip)
        return skip
    for item in sorted(submission_dir.iterdir()):
        if item.is_symlink():
            continue
        if item.is_dir():
            shutil.copytree(item, workdir / item.name, symlinks=True, ignore=ignore)
        elif is_code(item.name):
            left_out.append(item.name)
        else:
            shutil.copyfile(item, workdir / item.name)
    return workdir, sorted(left_out)


def _run(record: Grade, specs, cells, submission_dir: Path, settings: Settings) -> Remote:
    """Run the cells in the sandbox and score every part; returns the (stopped) runner handle."""
    assignment = record.assignment
    workdir, left_out = workdir_for(record.student, submission_dir, settings.scratch)
    if left_out:
        record.flags.append("files of code beside the notebook were not given to it (only the notebook's "
                            f"cells are graded): {', '.join(left_out[:20])}" + (" ..." if len(left_out) > 20 else ""))
    cuda_env = {"NUMBA_ENABLE_CUDASIM": "1"} if assignment.startswith("a4") else {}
    job = {"cells": cells, "tripwires": tripwire_mode(specs), "env": cuda_env}
    remote = Remote(job, settings.mode, workdir, settings.limits,
                    settings.cells_timeout or CELLS_TIMEOUT.get(assignment, DEFAULT_CELLS_TIMEOUT),
                    {"NBGRADER_EXECUTION": "autograde", **cuda_env})
    scorer = _Scorer(remote, {k: numba_compiled(cells, k) for k in ("njit", "cuda")}, settings.case_timeout,
                     run_time_rebinding(cells))
    try:
        scorer.prefetch(specs)   # every public answer before any hidden input (phases.py)
        record.parts = [scorer.score(spec) for spec in specs]
        if scorer.student.late:   # a grader bug, not the student's: said to the instructor
            record.flags.append(f"grader: {scorer.student.late} request(s) other than calls were sent after the "
                                "hidden cases began (phases.py); their answers may not be hidden-safe")
    finally:
        remote.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    return remote


class _Scorer:
    """Scores one test cell after another against the same runner, asked in two phases: prefetch,
    then score (phases.Phased)."""

    def __init__(self, remote: Remote, jitted: dict, case_timeout: float | None, rebinding: list = ()):
        self.student, self.jitted, self.case_timeout = Phased(remote), jitted, case_timeout
        self.rebinding = list(rebinding)   # plan.run_time_rebinding: then no source verdict "compiled" holds
        self.public: dict = {}   # part key -> its public checks' Result (for the compiled points)
        self.checked: dict = {}  # part key -> the Result of its test cell, hidden cases included

    def _part(self, spec: TestSpec):
        part = checks.get_part(spec.part)
        if self.case_timeout is not None:
            part = dataclasses.replace(part, timeout=min(part.timeout, self.case_timeout))
        return part

    def _launch_refused(self, spec: TestSpec, part) -> bool:
        return spec.kind == "check" and part.kernel and spec.func not in self.jitted["cuda"]

    def prefetch(self, specs) -> None:
        """Phase 1: what score() will ask the runner for, but the hidden cases (phases.py). Walks the
        specs as score() does: a compiled point is judged on its part's test cell when that ran
        before it, else on the public cases, which a compiled report cannot need where the source
        already refuses the point."""
        wanted, reports, checked = [], [], set()
        for spec in specs:
            part = self._part(spec)
            if spec.kind == "check":
                if not self._launch_refused(spec, part):
                    wanted.append((part, spec.func, spec.seed))
                    checked.add(spec.part)
            else:
                name = spec.kernel or spec.func
                reports.append((name, part.compiled_kind))
                if spec.part not in checked and name in self.jitted[part.compiled_kind] and not self.rebinding:
                    wanted.append((part, spec.func, checks.PUBLIC_SEED))
        self.student.prefetch(wanted, reports)

    def score(self, spec: TestSpec) -> PartGrade:
        part = self._part(spec)
        fn = RemoteFunction(spec.func)
        if self._launch_refused(spec, part):
            # the grader launches this function as a kernel inside the submission's process, where the
            # adapter's own "is it a kernel" test could be patched: the verdict is taken from the source
            return PartGrade(spec.grade_id, spec.part, part.title, 0.0, float(spec.points),
                             [f"{part.title} (`{spec.func}`): not a @cuda.jit kernel -> 0 of {spec.points:g} points",
                              f"  its definition in the notebook does not carry numba's cuda.jit decorator, and "
                              f"the grader launches `{spec.func}` as a kernel"])
        if spec.kind == "check":
            res = checks.run_part(part, fn, spec.seed, spec.points, self.student.cases_of(part, spec.seed),
                                  student=self.student)
            self.checked[spec.part] = res
            if res.forbidden:
                self.student.flag(f"{spec.grade_id}: not the student's own code: " + "; ".join(res.forbidden)[:400])
            score, lines = res.score, [checks.headline(part, res, "hidden cases")] + res.lines
        else:
            name = spec.kernel or spec.func
            # decided here, from the source, whatever the runner says: the runner's report only
            # adds a reason (a decorated function that failed to compile)
            ok, why = self.student.compiled(name, part.compiled_kind)
            if name not in self.jitted[part.compiled_kind]:
                if ok:
                    self.student.flag(f"`{name}` reported itself compiled, but its source does not define it "
                                      "under numba's own jit decorator")
                ok, why = False, ("its definition in the notebook does not carry numba's jit decorator (imported "
                                  "from numba, never redefined, no forceobj/nopython=False/device=True)")
            elif self.rebinding:
                self.student.flag(f"`{name}`: no compiled point, the notebook changes names or modules while it runs: "
                                  + "; ".join(self.rebinding[:3])[:300])
                ok, why = False, ("the notebook changes names or modules while it runs ("
                                  + "; ".join(self.rebinding[:3])[:300] + "), so the grader cannot tell from the "
                                  "source that the function it calls is the compiled one")
            if ok:
                # judged on the part's own test cell when it ran (its hidden cases included, so an @njit
                # table of memorised public answers earns nothing here), else on the public cases
                basis = self.checked.get(spec.part)
                if basis is None:
                    if spec.part not in self.public:
                        self.public[spec.part] = checks.run_part(part, fn, checks.PUBLIC_SEED, 1.0,
                                                                 self.student.cases_of(part, checks.PUBLIC_SEED),
                                                                 student=self.student)
                    basis = self.public[spec.part]
                ok, why = checks.compiled_point(basis)
            score = spec.points if ok else 0.0
            lines = checks.compiled_feedback(part, name, ok, why, spec.points)
        return PartGrade(spec.grade_id, spec.part, part.title, float(score), float(spec.points), lines[:60])


def _finish(record: Grade, remote: Remote) -> None:
    record.killed = remote.killed
    if remote.fatal:
        record.reason = remote.fatal
    record.cell_errors = remote.cell_errors
    for error in remote.cell_errors:
        if "ReferenceCode" in error:   # fingerprints.guard_reference_code refused to run it
            record.flags.append(f"tried to run minicnn's own code again: {error}")
    record.flags += remote.flags
    if remote.inputs_mutated:
        record.notes.append("a graded function changed its input arrays in place (no points are lost for it, "
                            "but a library function must not do that)")
    record.starts = remote.starts
    record.output = "\n".join(o for o in remote.outputs if o)[-20000:]
