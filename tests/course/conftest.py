"""Fixtures for the course tests; the helpers live in course_helpers.py."""
import pytest

from course_helpers import REPO
from minicnn.course.notebook import read_notebook
from minicnn.grader import locate, nbg


@pytest.fixture(scope="session")
def course_notebooks():
    """{assignment: source notebook JSON} of the bundled course."""
    return {a: read_notebook(locate.source_notebook(a, REPO)) for a in nbg.assignments(REPO)}
