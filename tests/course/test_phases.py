"""Every public answer before any hidden input (minicnn/grader/phases.py).

Unit tests drive phases.Phased with a stand-in runner that records what it was asked, in order.
The batch test grades a real notebook through the sandbox that tries the attack: its
`output_size` writes every input it gets to a file, and its `param_count`, a later part, raises
that file's contents as the error of its public cases. In one pass, the feedback page would show
output_size's hidden inputs. With phases, it shows only the public ones, which proves the channel
works, and none of the hidden ones.
"""
from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest

from minicnn.course import checks
from minicnn.grader import batch, phases
from minicnn.grader.remote import RemoteFunction
from minicnn.sandbox.calls import Outcome

SUBMISSIONS = Path(__file__).parent / "submissions"
A1 = "a1_convolution"


def _output_size(n, k, stride=1, padding=0):
    return (n + 2 * padding - k) // stride + 1


class Runner:
    """Stands in for remote.Remote: answers from plain functions here and logs every request."""

    def __init__(self, functions, forbidden=(), raise_forbidden=()):
        self.functions, self.forbidden, self.raise_forbidden = functions, set(forbidden), set(raise_forbidden)
        self.log, self.flags = [], []

    def missing(self, part, fn):
        self.log.append(("lookup", fn.__name__))
        return None if fn.__name__ in self.functions else f"  `{fn.__name__}` is not defined"

    def forbidden_uses(self, part, fn):
        self.log.append(("inspect", fn.__name__))
        return ["uses torch"] if fn.__name__ in self.forbidden else []

    def compiled(self, name, kind):
        self.log.append(("compiled", name))
        return True, ""

    def call(self, part, fn, args, timeout):
        self.log.append(("call", fn.__name__, phases.call_key(part, fn, args)))
        if fn.__name__ in self.raise_forbidden:
            return Outcome("forbidden", error=f"LEAK {args}", output=f"LEAK {args}", warnings=[f"LEAK {args}"])
        try:
            value = self.functions[fn.__name__](*args)
        except Exception as exc:  # noqa: BLE001 - as the runner reports it
            return Outcome("error", error=f"{type(exc).__name__}: {exc}", output=f"printed {args}")
        return Outcome("ok", value=value, output=f"printed {args}", warnings=[f"UserWarning: {args}"])

    def flag(self, text):
        self.flags.append(text)


def _keys(part, name, seed, hidden):
    fn = RemoteFunction(name)
    return {phases.call_key(part, fn, checks.call_args(c)) for c in checks.cases_for(part, seed) if c.hidden == hidden}


def test_every_public_call_comes_before_the_first_hidden_one_and_the_verdicts_are_a_single_passes():
    size, count = checks.get_part("a1.output_size"), checks.get_part("a1.param_count")
    def wrong_count(cin, cout, k, bias=True):   # wrong: no bias term
        kh, kw = (k, k) if isinstance(k, int) else k
        return cin * cout * kh * kw
    runner = Runner({"output_size": _output_size, "param_count": wrong_count})
    student = phases.Phased(runner)
    cells = [(size, "output_size", 4127), (count, "param_count", 5303)]
    student.prefetch(cells)
    phased = [checks.run_part(part, RemoteFunction(name), seed, 2.0, student.cases_of(part, seed), student=student)
              for part, name, seed in cells]
    assert student.late == 0
    assert student.cases_of(size, 4127) is not None and student.cases_of(size, 1) is None   # prefetch's own cases
    calls = [entry for entry in runner.log if entry[0] == "call"]
    hidden = set().union(*(_keys(p, n, s, True) for p, n, s in cells))
    public = set().union(*(_keys(p, n, s, False) for p, n, s in cells))
    assert hidden and public and not hidden & public
    first_hidden = next(i for i, c in enumerate(calls) if c[2] in hidden)
    assert {c[2] for c in calls[:first_hidden]} == public    # every public call, and only those, first
    assert all(c[2] in hidden for c in calls[first_hidden:])  # no public call asked twice
    assert len(calls) == len(public) + len(hidden)
    # the same verdicts and feedback as asking in one pass
    single = [checks.run_part(part, RemoteFunction(name), seed, 2.0, student=Runner(runner.functions))
              for part, name, seed in cells]
    assert [(r.score, r.lines) for r in phased] == [(r.score, r.lines) for r in single]
    assert phased[0].score == 2.0 and phased[1].score < 2.0


def test_a_hidden_cases_output_warnings_and_refusal_text_are_not_kept():
    """A refusal is the runner's own text, which the student's code can write: for a hidden case the
    feedback shows a fixed one (and the public case still shows the real one)."""
    out = phases.hidden_outcome(Outcome("forbidden", error="ForbiddenCall: LEAK 1 2 3", output="LEAK",
                                        warnings=["LEAK"], seconds=0.5))
    assert out.status == "forbidden" and out.error == phases.HIDDEN_FORBIDDEN and "LEAK" not in out.error
    assert out.output == "" and out.warnings == [] and out.seconds == 0.5
    kept = phases.hidden_outcome(Outcome("error", value=None, error="IndexError: index 9", output="x", warnings=["w"]))
    assert kept.error == "IndexError: index 9" and kept.output == "" and kept.warnings == []

    size = checks.get_part("a1.output_size")
    student = phases.Phased(Runner({"output_size": _output_size}, raise_forbidden={"output_size"}))
    student.prefetch([(size, "output_size", 4127)])
    public = checks.run_part(size, RemoteFunction("output_size"), 4127, 2.0, student=student)
    assert "LEAK" in "\n".join(public.lines)     # the first case is public: its text is shown
    # a function refused on its hidden cases only, each refusal worded with its inputs
    runner = Runner({"output_size": _output_size})
    student = phases.Phased(runner)
    student.prefetch([(size, "output_size", 4127)])
    runner.raise_forbidden = {"output_size"}       # from now on, every call is refused with its inputs
    res = checks.run_part(size, RemoteFunction("output_size"), 4127, 2.0, student=student)
    text = "\n".join(res.lines)
    assert res.score == 0 and "LEAK" not in text and phases.HIDDEN_FORBIDDEN in text, text


def test_refused_or_missing_functions_are_not_called_and_compiled_reports_are_asked_first():
    size, count = checks.get_part("a1.output_size"), checks.get_part("a1.param_count")
    runner = Runner({"output_size": _output_size}, forbidden={"output_size"})
    student = phases.Phased(runner)
    student.prefetch([(size, "output_size", 4127), (count, "param_count", 5303)], [("zero_pad", "njit")])
    assert [e for e in runner.log if e[0] == "call"] == []
    assert runner.log[0] == ("compiled", "zero_pad")
    assert student.compiled("zero_pad", "njit") == (True, "") and student.late == 0
    assert student.forbidden_uses(size, RemoteFunction("output_size")) == ["uses torch"]
    student.compiled("not_asked_before", "njit")      # a request prefetch did not make: counted
    assert student.late == 1


LEAKY = {
    "output_size": '''\
def output_size(n, k, stride=1, padding=0):
    with open("seen.txt", "a") as fh:          # every input this function is given
        fh.write(f"{n}|{k}|{stride}|{padding};")
    return (n + 2 * padding - k) // stride + 1
''',
    "param_count": '''\
def param_count(in_channels, out_channels, kernel_size, bias=True):
    import os
    seen = open("seen.txt").read() if os.path.exists("seen.txt") else ""
    raise ValueError(f"LEAKED {seen.count(';')} CALLS: {seen}")
''',
}


def test_a_later_public_case_cannot_show_an_earlier_parts_hidden_inputs(tmp_path):
    nb = json.loads((SUBMISSIONS / "correct.ipynb").read_text())
    for cell in nb["cells"]:
        gid = cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")
        if gid in LEAKY:
            cell["source"] = LEAKY[gid]
    course = tmp_path / "course"
    folder = course / "submitted" / "eve" / A1
    folder.mkdir(parents=True)
    (folder / f"{A1}.ipynb").write_text(json.dumps(nb))
    env_secret = os.environ.pop("MINICNN_COURSE_SECRET_FILE", None)
    try:
        report = batch.grade_batch(A1, course, jobs=1, progress=False, log=lambda *a: None, case_timeout=10)
    finally:
        if env_secret is not None:
            os.environ["MINICNN_COURSE_SECRET_FILE"] = env_secret
    rec = report["records"][0]
    assert not [f for f in rec["flags"] if f.startswith("grader:")], rec["flags"]   # nothing asked late
    size = next(p for p in rec["parts"] if p["grade_id"] == "test_output_size")
    assert size["score"] == size["max"], size["lines"]
    html = (course / "feedback" / "eve" / A1 / f"{A1}.html").read_text(encoding="utf-8")
    part = checks.get_part("a1.output_size")
    cases = checks.cases_for(part, 4127)   # no secret: the notebook's seed
    public = [c for c in cases if not c.hidden]
    hidden = [c for c in cases if c.hidden]
    asked = list(dict.fromkeys("|".join(str(a) for a in c.args) for c in public))   # a repeated case is asked once
    counts = {int(m) for m in re.findall(r"LEAKED (\d+) CALLS", html)}
    # the channel works: the public inputs come back, all of them and nothing more
    assert counts == {len(asked)}, counts
    shown = re.search(r"LEAKED \d+ CALLS: ([0-9|;]*)", html).group(1)
    assert shown.split(";")[:-1] == asked, shown
    assert hidden and all(len(c.args) == 4 for c in cases)
