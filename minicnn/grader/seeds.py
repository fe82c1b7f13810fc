"""Hidden seeds that stay hidden: derived from the course secret, per student and per part.

The instructor's notebooks carry a hidden seed in each test cell (such as `seed = 1234`, an example, between
`### BEGIN HIDDEN TESTS` and `### END HIDDEN TESTS`).  Used as it is, that seed is the same
for every student and small enough to find by replaying every value against one feedback
page.  With a course secret (`minicnn course init` writes `<course>/.minicnn/secret`: 32
random bytes as hex, readable by its owner only) the seed a part is graded with is

    HMAC-SHA256(secret, "<assignment>/<part key>/<student id>/<notebook seed>/<submission>")

cut to its first 64 bits, where <submission> is `submission_digest` of every file the student
handed in (paths and contents).  Different for every student, part and submission; reproducible
by whoever holds the secret (a regrade of the same files gives the same cases), and of no use
to anyone who does not.

Why the submission: a student's code holds its hidden inputs while it runs, and can carry them
out (an error text of a later public case, written in the same run, shows them on the feedback
page).  Without the submission in the seed, a second notebook holding a table of those cases'
answers, or a data file beside it holding them, would pass every hidden case.  With it, any
change to what is handed in draws new cases.  The price: each new submission draws new cases,
so a student allowed many graded submissions could resubmit until a draw passes a kernel that
is wrong on some inputs.  The draws come from the same distribution, so this matters only for
that kind of kernel.  Without a secret nothing changes: the notebook's own seeds are used.

Where the secret is found (`find_secret`), first match wins:

1. a file given explicitly (`minicnn course grade --secret FILE`);
2. the file named by $MINICNN_COURSE_SECRET_FILE;
3. `<course>/.minicnn/secret` in the course directory.

With none (a bare clone, a test's course) grading uses the notebook's seeds as they are, and
says so (`NO_SECRET`).  A secret file that its group or other users may read or write is
refused (`SecretError`): anyone who can read it can replay every student's hidden cases.
"""
from __future__ import annotations

import hashlib
import hmac
import os
import stat
from pathlib import Path

ENV = "MINICNN_COURSE_SECRET_FILE"
COURSE_FILE = Path(".minicnn") / "secret"
NO_SECRET = ("hidden seeds: no course secret (.minicnn/secret, --secret or $MINICNN_COURSE_SECRET_FILE), so the "
             "notebook's fixed hidden seeds are used: the same for every student, and weaker (a student who sees "
             "one feedback page can replay them); `minicnn course init` makes a course with a secret")
WITH_SECRET = "hidden seeds: derived from the course secret, different for every student, part and submission"


class SecretError(ValueError):
    """The course secret exists but must not be used (readable by others, empty, unreadable)."""


def find_secret(course=None, explicit=None) -> Path | None:
    """The secret file to use (see the module docstring), or None when there is none.

    An explicit file, or one named by the environment, must exist (FileNotFoundError names it);
    the course directory's file is optional."""
    for given, what in ((explicit, "--secret"), (os.environ.get(ENV) or None, f"${ENV}")):
        if given is not None:
            path = Path(given)
            if not path.is_file():
                raise FileNotFoundError(f"the course secret given by {what} is not a file: {path}")
            return path
    if course is not None and (Path(course) / COURSE_FILE).is_file():
        return Path(course) / COURSE_FILE
    return None


def read_secret(path) -> bytes:
    """The secret's bytes; SecretError when the file is readable or writable by group or others
    (the fix is named: chmod 600), or holds nothing."""
    path = Path(path)
    mode = path.stat().st_mode
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise SecretError(f"the course secret {path} has mode {stat.filemode(mode)}: its group or other users can "
                          f"read or change it, and with it replay every student's hidden cases. Refusing to use it; "
                          f"make it private with `chmod 600 {path}`")
    text = path.read_text(encoding="utf-8").strip()
    if not text:
        raise SecretError(f"the course secret {path} is empty")
    return text.encode("utf-8")


def load(course=None, explicit=None) -> bytes | None:
    """find_secret then read_secret: the secret's bytes, or None when the course has none."""
    path = find_secret(course, explicit)
    return None if path is None else read_secret(path)


def submission_digest(files: dict) -> str:
    """What a student handed in, as a hex SHA-256: files maps each relative path ('/'-separated)
    to its bytes, or to None for a folder (as the batch reads a submission).  The order of the
    dict does not matter; a renamed, added or removed file or folder changes it."""
    h = hashlib.sha256()
    for rel in sorted(files):
        data = files[rel]
        h.update(os.fsencode(rel) + (b"/\0" if data is None else b"\0" + hashlib.sha256(data).digest()))
    return h.hexdigest()


def derive(secret: bytes, assignment: str, part_key: str, student: str, notebook_seed: int,
           submission: str = "") -> int:
    """The hidden seed one student's part is graded with: a 64-bit int (never 0, the public seed).
    submission: submission_digest of what the student handed in; "" (course verify, which grades
    the instructor's own notebooks) leaves it out."""
    message = f"{assignment}/{part_key}/{student}/{int(notebook_seed)}" + (f"/{submission}" if submission else "")
    seed = int.from_bytes(hmac.new(secret, message.encode("utf-8"), hashlib.sha256).digest()[:8], "big")
    return seed or 1


def for_student(secret: bytes | None, assignment: str, student: str, specs, public_seed: int = 0,
                submission: str = "") -> dict:
    """{grade_id: seed} for every test cell of `specs` (plan.TestSpec) that runs hidden cases,
    derived for `student` and their `submission` (see derive); {} without a secret (the
    notebook's seeds stand)."""
    if secret is None:
        return {}
    return {s.grade_id: derive(secret, assignment, s.part, student, s.seed, submission)
            for s in specs if s.kind == "check" and s.seed != public_seed}
