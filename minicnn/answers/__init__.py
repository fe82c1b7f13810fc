"""Answer keys: check the numbers a slide or an exam key prints, and say which slip made a wrong one.

    >>> from minicnn import answers
    >>> key = answers.loads('''
    ... [[question]]
    ... id = "lenet-conv1"
    ... op = "conv_params"
    ... in_channels = 1
    ... filters = 6
    ... kernel_size = 5
    ... answer = 151
    ... ''')
    >>> cell = answers.check_key(key).questions[0].wrong[0]
    >>> cell.printed, cell.correct, cell.diagnoses[0].slip
    ('151', '156', 'one-bias-per-layer')

`keyfile` reads and validates a TOML key, `ops`/`tables` compute the right value of every
printed cell, `slips` holds the known slips (each tied to the course's mutants where one exists),
`diagnose` searches them, `report` writes text, JSON, Markdown or HTML.  docs/check.md has the
key format.  Only `minicnn.commands.check` imports this package.
"""
from __future__ import annotations

from importlib import resources

from .diagnose import KeyResult, QuestionResult, check_key, check_question
from .keyfile import AnswerKey, Question, load, loads, parse
from .registry import OPS
from .values import KeyFileError


def lecture_keys() -> list:
    """Paths of the shipped answer keys of the five lectures' worked examples."""
    folder = resources.files(__package__).joinpath("keys")
    return sorted(str(p) for p in folder.iterdir() if p.name.endswith(".toml"))


__all__ = ["AnswerKey", "Question", "KeyFileError", "KeyResult", "QuestionResult", "OPS", "check_key",
           "check_question", "load", "loads", "parse", "lecture_keys"]
