"""The grade of one submission: the one record every stage of grading hands to the next.

grading.grade() fills it in; the batch's worker sends it to the parent as JSON (`to_dict`,
`from_dict`); the outputs (gradebook, CSV, feedback pages, autograded notebooks, the report)
are written from it.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields

STATUSES = ("graded", "missing", "unreadable", "grader-error")


@dataclass
class PartGrade:
    """One test cell's score and the feedback lines behind it."""

    grade_id: str
    part: str
    title: str
    score: float
    max: float
    lines: list


@dataclass
class Grade:
    """status: graded, missing (no notebook), unreadable, or grader-error (the grader failed)."""

    student: str
    assignment: str
    status: str = "graded"
    reason: str = ""                  # why the submission (or its last parts) could not be graded fully
    parts: list = field(default_factory=list)         # [PartGrade]
    cell_errors: list = field(default_factory=list)   # "cell ID: Error: text" for cells that raised
    flags: list = field(default_factory=list)         # signs of tampering, for the instructor
    similar: list = field(default_factory=list)       # copies caught (similarity.py), for the instructor
    notes: list = field(default_factory=list)         # edited or deleted cells, inputs changed in place
    output: str = ""                  # what the student's code printed (an excerpt)
    seconds: float = 0.0
    killed: int = 0                   # processes killed at the end of the run
    starts: int = 0                   # times the student's process was started
    submitted_at: str = ""            # nbgrader's timestamp.txt, as the gradebook holds it (UTC); late.py
    seconds_late: float = 0.0         # after the assignment's due date (0: on time, or no due date)
    late_penalty: float = 0.0         # points taken off by the course's late-submission plugin
    late_note: str = ""               # why the submission time is unknown, when it is

    @property
    def total(self) -> float:
        return sum(p.score for p in self.parts)

    @property
    def most(self) -> float:
        return sum(p.max for p in self.parts)

    @property
    def final(self) -> float:
        """The autograded total less the late penalty (as nbgrader's export: never below 0)."""
        return max(self.total - self.late_penalty, 0.0)

    def scores(self) -> dict:
        """{grade_id: score}"""
        return {p.grade_id: p.score for p in self.parts}

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "Grade":
        """The record from its JSON form; missing fields take their defaults."""
        known = {f.name for f in fields(cls)}
        kw = {k: v for k, v in data.items() if k in known}
        kw["parts"] = [p if isinstance(p, PartGrade) else PartGrade(**p) for p in data.get("parts", [])]
        return cls(**kw)

    @classmethod
    def failed(cls, student: str, assignment: str, reason: str, output: str = "", flags=()) -> "Grade":
        """The record of a submission the grader itself failed on (no part graded)."""
        return cls(student, assignment, status="grader-error", reason=reason, output=output, flags=list(flags))
