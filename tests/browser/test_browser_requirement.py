"""Without a browser the browser tests skip, except where MINICNN_REQUIRE_BROWSER=1 (CI): then
they fail.  Checked by running one of them in a child pytest with a Chromium path that does not
exist; nothing is started (the fixture stops the test before any server or browser)."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from browser_helpers import HERE, REPO, REQUIRE_ENV


def run_without_browser(require: bool):
    env = {k: v for k, v in os.environ.items() if k != REQUIRE_ENV}
    env["MINICNN_CHROMIUM"] = str(Path("/nonexistent") / "chromium")
    if require:
        env[REQUIRE_ENV] = "1"
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-rsE",
                           str(HERE / "test_student_jupyterlab.py"), "-k", "untouched"],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=300)


@pytest.mark.parametrize("require", [False, True], ids=["skips", "required-fails"])
def test_a_missing_browser_skips_unless_required(require):
    proc = run_without_browser(require)
    out = proc.stdout + proc.stderr
    assert "/nonexistent/chromium is not an executable" in out, out[-3000:]
    if require:
        assert proc.returncode == 1 and "1 error" in out and REQUIRE_ENV in out, out[-3000:]
    else:
        assert proc.returncode == 0 and "1 skipped" in out, out[-3000:]
