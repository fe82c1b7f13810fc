"""`minicnn course roster import FILE`: a roster CSV checked row by row (bad rows named by line number,
nothing imported then) and read into nbgrader's gradebook, where formgrader finds the names."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("nbgrader")

from nbgrader.api import Gradebook  # noqa: E402

from minicnn.grader import roster  # noqa: E402

GOOD = """student_id,first_name,last_name,email,lms_id
s001,Ada,Lovelace,ada@example.org,alovelace
s002,Alan,Turing,alan@example.org,aturing

s003,Grace,"Hopper, Murray",grace@example.org,
"""
BAD = """student_id,first_name,last_name,email,lms_id
s001,Ada,Lovelace,ada@example.org,alovelace
s002,Alan,Turing,alan@example.org
,Nobody,Here,n@example.org,x
s001,Ada,Again,ada2@example.org,alovelace2
../s004,Eve,Sly,eve@example.org,eve
s005,Carl,Gauss,not-an-address,cgauss
s006,,,six@example.org,six
"""


def _cli(*args, cwd):
    return subprocess.run([sys.executable, "-m", "minicnn", "course", "roster", "import", *args],
                          capture_output=True, text=True, timeout=300, cwd=cwd)


def _students(course: Path) -> dict:
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gb:
        return {s.id: (s.first_name, s.last_name, s.email, s.lms_user_id) for s in gb.students}


def test_a_good_roster_is_read_with_quoted_fields_and_blank_lines():
    got = roster.parse(GOOD)
    assert [s.student_id for s in got] == ["s001", "s002", "s003"]
    assert (got[2].last_name, got[2].lms_id) == ("Hopper, Murray", "")


def test_every_bad_row_is_named_by_its_line_number():
    with pytest.raises(roster.RosterError) as info:
        roster.parse(BAD, "class.csv")
    problems = info.value.problems
    assert [p.split(":")[0] for p in problems] == ["line 3", "line 4", "line 5", "line 6", "line 7", "line 8"]
    assert "4 field(s), expected 5" in problems[0]
    assert "student_id is empty" in problems[1]
    assert "'s001' already on line 2" in problems[2]
    assert "cannot be a folder name" in problems[3]
    assert "'not-an-address' is not an address" in problems[4]
    assert "no first_name or last_name" in problems[5]
    assert str(info.value).startswith("class.csv: 6 problem(s), nothing imported")


@pytest.mark.parametrize("header, words", [("student_id,first_name,last_name,email", "missing column(s) lms_id"),
                                           ("id,first_name,last_name,email,lms_id", "unknown column(s) 'id'"),
                                           ("", "empty file")])
def test_a_wrong_header_is_line_1(header, words):
    with pytest.raises(roster.RosterError) as info:
        roster.parse(header + "\n" if header else "")
    assert info.value.problems[0].startswith("line 1") and words in info.value.problems[0]


def test_columns_may_come_in_any_order():
    got = roster.parse("email,lms_id,student_id,last_name,first_name\nada@example.org,al,s001,Lovelace,Ada\n")
    assert (got[0].student_id, got[0].first_name, got[0].lms_id) == ("s001", "Ada", "al")


def test_the_command_imports_a_good_roster_into_the_gradebook(tmp_path):
    (tmp_path / "class.csv").write_text(GOOD)
    proc = _cli("class.csv", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "imported 3 student(s)" in proc.stdout
    assert _students(tmp_path) == {"s001": ("Ada", "Lovelace", "ada@example.org", "alovelace"),
                                   "s002": ("Alan", "Turing", "alan@example.org", "aturing"),
                                   "s003": ("Grace", "Hopper, Murray", "grace@example.org", None)}
    assert roster.listed(tmp_path) == {"s001", "s002", "s003"}   # kept as .minicnn/roster.csv
    # a second import updates names and keeps everyone
    (tmp_path / "class.csv").write_text(GOOD.replace("Alan,Turing", "Alan M.,Turing"))
    roster.import_roster(tmp_path, tmp_path / "class.csv")
    assert _students(tmp_path)["s002"][0] == "Alan M."


def test_the_command_imports_nothing_from_a_roster_with_bad_rows(tmp_path):
    (tmp_path / "class.csv").write_text(BAD)
    proc = _cli("class.csv", cwd=tmp_path)
    assert proc.returncode == 1
    for line in range(3, 9):
        assert f"line {line}:" in proc.stderr
    assert not (tmp_path / "gradebook.db").exists() and roster.listed(tmp_path) is None
    (tmp_path / "latin1.csv").write_bytes("student_id,first_name,last_name,email,lms_id\ns1,J\xfcrgen,M,,\n"
                                          .encode("latin-1"))
    with pytest.raises(roster.RosterError, match="not UTF-8"):
        roster.import_roster(tmp_path, tmp_path / "latin1.csv")
    with pytest.raises(FileNotFoundError):
        roster.import_roster(tmp_path, tmp_path / "no-such.csv")
    assert not (tmp_path / "gradebook.db").exists()


def test_submissions_off_the_roster_are_flagged_not_dropped(tmp_path):
    from minicnn.grader.record import Grade

    records = [Grade("s001", "a1"), Grade("zed", "a1")]
    roster.flag_unlisted(tmp_path, records)        # no roster: nobody is flagged
    assert records[0].flags == records[1].flags == []
    (tmp_path / ".minicnn").mkdir()
    (tmp_path / ".minicnn" / "roster.csv").write_text(GOOD)
    roster.flag_unlisted(tmp_path, records)
    assert records[0].flags == [] and "not on the roster" in records[1].flags[0]
