"""Fixtures for the real-browser tests: Chromium through Playwright, JupyterLab servers on
127.0.0.1 that are stopped (with everything they started) when the test is done, and a folder
for the screenshots.

Without Chromium or Playwright the tests are skipped; with MINICNN_REQUIRE_BROWSER=1 (CI) they
fail instead, so that a CI machine that lost its browser cannot pass by skipping them.
"""
from __future__ import annotations

import os
import re
import time
import warnings

import pytest

from browser_helpers import PAGE_MS, LabServer, alive, descendants, require_browser, results_root


@pytest.fixture(scope="session")
def chromium_exe():
    return require_browser()


@pytest.fixture
def shots(request):
    """save(page, name): a screenshot under the results folder, numbered in the order taken."""
    folder = results_root() / re.sub(r"[^A-Za-z0-9_.-]+", "_", request.node.name)
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.glob("*.png"):
        old.unlink()
    taken = []

    def save(page, name, **kwargs):
        path = folder / f"{len(taken) + 1:02d}_{name}.png"
        page.screenshot(path=str(path), **kwargs)
        taken.append(path)
        return path

    save.folder = folder
    return save


@pytest.hookimpl(hookwrapper=True, tryfirst=True)
def pytest_runtest_makereport(item, call):
    """Keep each phase's report on the test item, so that fixtures can see whether the test failed."""
    outcome = yield
    report = outcome.get_result()
    setattr(item, f"report_{report.when}", report)


@pytest.fixture
def page(chromium_exe, request):
    """A fresh Chromium page (1400x900), closed with its browser and Playwright's driver after the test."""
    from playwright.sync_api import sync_playwright

    before = descendants(os.getpid())
    with sync_playwright() as pw:
        # --no-sandbox: Chromium refuses to start as root with its own sandbox (CI runs as root)
        browser = pw.chromium.launch(executable_path=chromium_exe, headless=True, args=["--no-sandbox"])
        ours = descendants(os.getpid()) - before  # Playwright's driver and Chromium, nothing else yet
        try:
            context = browser.new_context(viewport={"width": 1400, "height": 900})
            context.set_default_timeout(PAGE_MS)
            page = context.new_page()
            yield page
            report = getattr(request.node, "report_call", None)
            if report is not None and report.failed:  # what the page showed when the test failed
                folder = results_root() / re.sub(r"[^A-Za-z0-9_.-]+", "_", request.node.name)
                folder.mkdir(parents=True, exist_ok=True)
                page.screenshot(path=str(folder / "99_at_failure.png"))
        finally:
            for pid, _ in list(ours):  # Chromium's renderers and helpers started since
                ours |= descendants(pid)
            browser.close()
    deadline = time.monotonic() + 30
    while (left := alive(ours)) and time.monotonic() < deadline:
        time.sleep(0.2)  # Playwright's driver and Chromium exit on their own once closed
    assert not left, f"processes of the browser still running after it was closed: {sorted(left)}"


@pytest.fixture
def lab(tmp_path_factory):
    """start(root) -> a running LabServer serving `root`.  After the test every server is stopped
    (SIGTERM, then SIGKILL for whatever of its process tree is left), and the test fails if any
    process it started (kernels included) is still running after that."""
    servers = []

    def start(root):
        base = tmp_path_factory.mktemp("lab")
        server = LabServer(root, home=base / "home", log=base / "jupyter.log")
        servers.append(server)
        return server.start()

    yield start
    problems = []
    for server in servers:
        killed = server.stop()
        if killed:  # JupyterLab did not end them itself on SIGTERM; stop() killed them
            warnings.warn(f"JupyterLab on port {server.port} left {len(killed)} process(es) that had to be killed")
        still = alive(server.seen)
        if still:
            problems.append(f"port {server.port}: {sorted(still)}")
    assert not problems, "processes started by JupyterLab still running after it stopped: " + "; ".join(problems)
