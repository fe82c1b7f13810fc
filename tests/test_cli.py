"""The console script's demo: the README's main job."""
import subprocess
import sys

from minicnn import cli, examples


def test_demo_prints_every_example_and_exits_zero():
    proc = subprocess.run([sys.executable, "-m", "minicnn", "demo"], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    n = len(examples.load())
    assert proc.stdout.rstrip().endswith(
        f"{n} of {n} worked examples reproduce with impl='fast'; 6 slide errors corrected (see the notes above).")
    assert proc.stdout.count("[ok  ]") == n
    assert "Slide error" in proc.stdout
    assert proc.stderr == ""


def test_demo_fails_loudly_when_an_example_does_not_reproduce(monkeypatch, capsys):
    real_check = examples.check

    def broken(ex, impl="fast"):
        result = real_check(ex, impl)
        if ex.id == "tcd-max-pooling-4x4":
            result.ok, result.message = False, "pretend mismatch"
        return result

    monkeypatch.setattr(examples, "check", broken)
    assert cli.main(["demo", "--lecture", "tcd"]) == 1
    out = capsys.readouterr().out
    assert "[FAIL] tcd-max-pooling-4x4" in out and "MISMATCH: pretend mismatch" in out


def test_no_command_prints_help():
    assert cli.main([]) == 2
