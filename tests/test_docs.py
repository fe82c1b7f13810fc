"""Documentation that runs: the README's Python examples and every docstring example (`>>>`) in
minicnn are executed as doctests with their printed outputs compared, and every `minicnn ...`
command line the README shows is accepted by the real command-line parser (the cheap ones are
also run)."""
from __future__ import annotations

import doctest
import importlib
import re
import shlex
from pathlib import Path

import pytest

from minicnn.cli import build_parser, main

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
FLAGS = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE
FENCE = re.compile(r"^```python\n(.*?)^```", re.S | re.M)


def python_blocks(text: str) -> list:
    return FENCE.findall(text)


def run_doctest(source: str, name: str) -> doctest.TestResults:
    """Run `source` (doctest format) in a fresh namespace; report failures on stdout as doctest does."""
    test = doctest.DocTestParser().get_doctest(source, {}, name, str(README), 0)
    runner = doctest.DocTestRunner(optionflags=FLAGS)
    runner.run(test)
    return runner.summarize(verbose=False)


def test_the_harness_fails_on_a_wrong_output():
    assert run_doctest(">>> 1 + 1\n3\n", "made-up").failed == 1
    assert run_doctest(">>> 1 + 1\n2\n", "made-up") == (0, 1)


def test_readme_python_blocks_run_and_print_what_they_show():
    blocks = python_blocks(README.read_text(encoding="utf-8"))
    assert blocks, "no ```python block found in the README"
    for i, block in enumerate(blocks):
        if ">>>" in block:
            failed, attempted = run_doctest(block, f"README block {i}")
            assert attempted > 0 and failed == 0, f"README python block {i}: {failed} of {attempted} examples failed"
        else:
            exec(compile(block, f"README block {i}", "exec"), {})


def modules_with_examples() -> list:
    names = []
    for p in sorted((ROOT / "minicnn").rglob("*.py")):
        if ">>>" in p.read_text(encoding="utf-8"):
            parts = list(p.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            names.append(".".join(parts))
    return names


@pytest.mark.parametrize("module", modules_with_examples())
def test_docstring_examples(module):
    mod = importlib.import_module(module)
    failed, attempted = doctest.testmod(mod, optionflags=FLAGS, report=True)
    assert attempted > 0 and failed == 0


def readme_command_lines() -> list:
    """Every `minicnn ...` line of the README's indented command blocks, comments dropped."""
    lines = []
    for raw in README.read_text(encoding="utf-8").splitlines():
        m = re.match(r"^    (?:\.venv/bin/)?minicnn (.*)$", raw)
        if m:
            lines.append(shlex.split(m.group(1), comments=True))
    return lines


def test_the_readme_shows_commands():
    assert len(readme_command_lines()) >= 4


@pytest.mark.parametrize("argv", readme_command_lines(), ids=" ".join)
def test_readme_commands_parse(argv):
    args = build_parser().parse_args(argv)
    assert args.command == argv[0]


CHEAP = ("explain", "summary")


@pytest.mark.parametrize("argv", [a for a in readme_command_lines() if a[0] in CHEAP], ids=" ".join)
def test_cheap_readme_commands_run(argv, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(argv) == 0
    assert capsys.readouterr().out.strip()


def test_readme_answer_key_example_prints_what_the_readme_shows(tmp_path, monkeypatch, capsys):
    """The README's `minicnn check quiz.toml` example: its key, run for real, prints its text block."""
    text = README.read_text(encoding="utf-8")
    key = re.search(r"^```toml\n(.*?)^```", text, re.S | re.M).group(1)
    shown = re.search(r"`minicnn check quiz.toml` prints.*?^```text\n(.*?)^```", text, re.S | re.M).group(1)
    (tmp_path / "quiz.toml").write_text(key, encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    assert main(["check", "quiz.toml"]) == 1
    assert capsys.readouterr().out == shown
