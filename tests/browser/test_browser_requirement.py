"""Without a browser the browser tests skip, except where MINICNN_REQUIRE_BROWSER=1 (CI): then
they fail.  This checks require_browser(), which the `chromium_exe` fixture every browser test
depends on calls before anything is started, with a Chromium path that does not exist."""
from __future__ import annotations

import pytest

from browser_helpers import REQUIRE_ENV, require_browser

MISSING = "/nonexistent/chromium"


@pytest.fixture
def no_browser(monkeypatch):
    monkeypatch.setenv("MINICNN_CHROMIUM", MISSING)
    monkeypatch.delenv(REQUIRE_ENV, raising=False)
    return monkeypatch


def test_a_missing_browser_skips_the_browser_tests(no_browser):
    with pytest.raises(pytest.skip.Exception, match=f"{MISSING} is not an executable"):
        require_browser()


def test_a_missing_browser_fails_them_where_required(no_browser):
    no_browser.setenv(REQUIRE_ENV, "1")
    with pytest.raises(pytest.fail.Exception, match=f"{MISSING} is not an executable.*{REQUIRE_ENV}=1"):
        require_browser()


def test_a_browser_that_is_there_is_used(monkeypatch, tmp_path):
    fake = tmp_path / "chromium"
    fake.write_text("#!/bin/sh\n")
    fake.chmod(0o755)
    monkeypatch.setenv("MINICNN_CHROMIUM", str(fake))
    monkeypatch.setenv(REQUIRE_ENV, "1")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:  # then Playwright is what is missing, and the test must say so
        with pytest.raises(pytest.fail.Exception, match="Playwright"):
            require_browser()
    else:
        assert require_browser() == str(fake)
