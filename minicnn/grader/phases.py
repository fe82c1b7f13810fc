"""Every answer the feedback shows in full comes back before any hidden input is sent.

The runner is the student's own process. Whatever the grader sends it, the student's code can
keep: in a file in the sandbox's /tmp, in shared memory made at cell level, or in a thread that
watches. It can then give it back in a later reply. The feedback shows a public case's error
text, warnings and output in full. So, in one pass over the parts, the inputs of part 1's
hidden cases could come back as the error text of part 2's public case, on the student's
feedback page. This was found on 2026-12-03: a red-team notebook replayed them. The grader
therefore asks the runner in two phases:

1. `Phased.prefetch`, for every test cell in the notebook's order: everything the runner says
   before any hidden input reaches it. That is each function's lookup, the inspection, the
   compiled reports, and every public case's call. The answers are kept.
2. The scoring itself, unchanged (checks.run_part), with `Phased` as the student's side. The
   kept answers are given back. A call that was not kept is a hidden case: it is sent now, and
   its outcome keeps none of its output or warnings, and for a refused library no text of the
   runner's (run_part shows a hidden case's other errors by their type alone).

For code whose answers do not depend on what was called before, the verdicts are exactly those
of a single pass. What still comes back from phase 2 is each hidden case's pass or fail, a few
bits a submission.
"""
from __future__ import annotations

import hashlib
import pickle

from ..course import checks
from ..sandbox.calls import Outcome
from .remote import RemoteFunction

# what a hidden case refused for a library shows: fixed text (the runner's message is the student's to write)
HIDDEN_FORBIDDEN = "a hidden case reached a library this exercise does not allow (details are not shown for hidden cases)"


def call_key(part, fn, args) -> tuple:
    """Which call this is: the part, the function's name and a digest of the arguments."""
    return part.key, fn.__name__, hashlib.sha256(pickle.dumps(tuple(args), protocol=4)).hexdigest()


def hidden_outcome(out: Outcome) -> Outcome:
    """What the grader keeps of a hidden case's call: status, value, time and error, without output or
    warnings. A refused library's message becomes HIDDEN_FORBIDDEN: run_part shows that text in
    full. Any other error text stays, because a part's fixed hint is chosen from it; run_part shows
    only its type for a hidden case (checks.HIDDEN_NOTE)."""
    error = HIDDEN_FORBIDDEN if out.status == "forbidden" else out.error
    return Outcome(out.status, value=out.value, error=error, seconds=out.seconds, mutated=list(out.mutated))


class Phased:
    """The student's side for checks.run_part, over a remote.Remote, asked in two phases (see the
    module docstring). `late` counts requests other than calls that phase 2 had to send (none is
    expected: prefetch asks every one of them)."""

    def __init__(self, remote):
        self.remote = remote
        self.prefetching = False
        self.kept: dict = {}        # call_key -> Outcome
        self.inspected: dict = {}   # (part key, function name) -> reasons
        self.reports: dict = {}     # (function name, kind) -> (ok, why)
        self.cases: dict = {}       # (part key, seed) -> the cases prefetch made (the scoring reuses them)
        self.late = 0

    def prefetch(self, wanted, reports=()) -> None:
        """wanted: (part, function name, seed) for each test cell that scoring will check, in order;
        reports: (function name, kind) for each compiled report it will ask for. Asks for every
        answer that does not need a hidden input. A part's public cases stop at its first timeout
        or refused library, as run_part stops there."""
        self.prefetching = True
        try:
            for name, kind in reports:
                self.compiled(name, kind)
            for part, name, seed in wanted:
                fn = RemoteFunction(name)
                if self.missing(part, fn) or self.forbidden_uses(part, fn):
                    continue
                if (part.key, seed) not in self.cases:
                    self.cases[part.key, seed] = checks.cases_for(part, seed)
                for case in self.cases[part.key, seed]:
                    if not case.hidden:
                        out = self.call(part, fn, checks.call_args(case), part.timeout)
                        if out.status in ("timeout", "forbidden"):
                            break
        finally:
            self.prefetching = False

    def cases_of(self, part, seed):
        """The cases prefetch made for (part, seed), so that scoring checks the very calls it kept;
        None (run_part makes them) for a part it did not get to call."""
        return self.cases.get((part.key, seed))

    def _late(self):
        if not self.prefetching:
            self.late += 1

    # the methods run_part and the scorer call
    def missing(self, part, fn):
        return self.remote.missing(part, fn)   # kept by Remote itself (its lookups)

    def forbidden_uses(self, part, fn) -> list:
        key = (part.key, fn.__name__)
        if key not in self.inspected:
            self._late()
            self.inspected[key] = self.remote.forbidden_uses(part, fn)
        return self.inspected[key]

    def compiled(self, name: str, kind: str) -> tuple:
        if (name, kind) not in self.reports:
            self._late()
            self.reports[name, kind] = self.remote.compiled(name, kind)
        return self.reports[name, kind]

    def call(self, part, fn, args, timeout) -> Outcome:
        key = call_key(part, fn, args)
        if key in self.kept:
            return self.kept[key]
        out = self.remote.call(part, fn, args, timeout)
        if self.prefetching:
            self.kept[key] = out
            return out
        return hidden_outcome(out)

    def flag(self, text) -> None:
        self.remote.flag(text)
