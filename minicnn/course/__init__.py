"""The minicnn course: five nbgrader assignments and the code that grades them.

- `checks`     what the notebooks' test cells call: check(part, fn, points, seed) and
               check_compiled(part, fn, points); feedback and partial credit.
- `parts`      the graded parts of assignments 1-3 (cases from the worked-example
               catalogue and seeded random edges; expected values from minicnn's kernels).
- `sandbox`    runs one call of a student's function in a forked child, with a time limit,
               everything it prints captured, and library tripwires armed.
- `inspection` static checks: is the function @njit, does it call minicnn/torch/scipy.
- `mutants`    known-wrong implementations used by `minicnn course verify`.
- `nbg`        drives the real nbgrader (release, autograde, feedback, validate).
- `verify`     the instructor's one-command verification.
- `batch`      `minicnn course grade ASSIGNMENT`: a class in parallel worker processes; gradebook,
               per-part CSV, feedback pages.
- `grading`    one submission graded from outside: test cells read as text, cells run in a runner,
               results compared here.
- `runner`     the student's side (inside the sandbox): runs the cells, answers calls.
- `isolation`  bubblewrap or resource limits, cgroups, killing every process of a run.
- `wire`       the data-only format results cross the wall in (no pickle from the student's side).

The notebooks live in the repository (solutions/, exercises/), found by `course_root()`.
"""
from __future__ import annotations

import os
from pathlib import Path


def course_root() -> Path:
    """The directory holding solutions/, exercises/ and autograder/.

    $MINICNN_COURSE_DIR when set; otherwise the repository this package was installed from
    (an editable install: `pip install -e '.[course]'`)."""
    env = os.environ.get("MINICNN_COURSE_DIR")
    if env:
        return Path(env).resolve()
    return Path(__file__).resolve().parents[2]
