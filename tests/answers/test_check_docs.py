"""docs/check.md's example key gives the output the page shows; the package docstring's example runs."""
import doctest
import re
from pathlib import Path

import minicnn.answers
from minicnn import cli

DOC = Path(__file__).resolve().parents[2] / "docs" / "check.md"


def test_docs_example_output(tmp_path, monkeypatch, capsys):
    text = DOC.read_text(encoding="utf-8")
    key = re.search(r"```toml\n(.*?)```", text, re.S).group(1)
    shown = re.search(r"prints \(this output is checked.*?```text\n(.*?)```", text, re.S).group(1)
    (tmp_path / "quiz.toml").write_text(key, encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    assert cli.main(["check", "quiz.toml"]) == 1
    assert capsys.readouterr().out == shown


def test_package_docstring_example():
    result = doctest.testmod(minicnn.answers)
    assert result.attempted > 0 and result.failed == 0
