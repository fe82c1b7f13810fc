"""Helpers for the real-browser tests: find Chromium, start JupyterLab on 127.0.0.1, stop it and
everything it started, build the notebooks the tests open.

Nothing here drives the browser; the tests do that with Playwright (see conftest.py).
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent

# CI sets this: a missing browser (or Playwright) is then a failure, not a skip.
REQUIRE_ENV = "MINICNN_REQUIRE_BROWSER"
MARKERS = ("### BEGIN SOLUTION", "### END SOLUTION")

# Generous, bounded waits (in ms, Playwright's unit): CI has 2 busy cores, and running a notebook
# compiles Numba code.  PAGE_MS for a page or a kernel to be ready, RUN_MS for a whole notebook run.
PAGE_MS = 180_000
RUN_MS = 600_000


# ------------------------------------------------------------------ what the tests need installed

def missing_requirements() -> tuple[str | None, list[str]]:
    """(the Chromium executable or None, [what is missing, said so that a person can install it])."""
    missing = []
    exe = os.environ.get("MINICNN_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    if not exe or not os.access(exe, os.X_OK):
        found = f": {exe} is not an executable" if exe else ""
        missing.append(f"Chromium (Debian: apt-get install chromium; or set MINICNN_CHROMIUM to its path){found}")
        exe = None
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        missing.append("Playwright for Python (pip install -e '.[browser]')")
    for module, extra in (("jupyterlab", "course"), ("nbgrader", "course")):
        try:
            __import__(module)
        except ImportError:
            missing.append(f"{module} (pip install -e '.[{extra}]')")
    return exe, missing


def require_browser() -> str:
    """The Chromium executable; or skip the calling test, or fail it where REQUIRE_ENV=1 (CI)."""
    import pytest

    exe, missing = missing_requirements()
    if missing:
        why = "the browser tests need " + "; ".join(missing)
        if os.environ.get(REQUIRE_ENV) == "1":
            pytest.fail(f"{why} ({REQUIRE_ENV}=1 makes this a failure)", pytrace=False)
        pytest.skip(why)
    return exe


def results_root() -> Path:
    """Where screenshots go: $MINICNN_RESULTS_DIR/browser, else tests/browser/results (gitignored)."""
    base = os.environ.get("MINICNN_RESULTS_DIR")
    return Path(base) / "browser" if base else HERE / "results"


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ------------------------------------------------------------------ processes: ours, and only ours

def _stat(pid: int) -> tuple[int, int] | None:
    """(parent pid, start time in clock ticks) of a live process, or None when it is gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # the command name (field 2) may hold spaces and parentheses: split after its last ')'
    fields = text[text.rindex(")") + 2:].split()
    if fields[0] == "Z":  # a zombie has finished; only its parent's wait() is missing
        return None
    return int(fields[1]), int(fields[19])


def descendants(root: int) -> set[tuple[int, int]]:
    """{(pid, start time)} of every live process below `root` in the process tree.

    The start time makes each entry unique: a pid that is reused later is a different process."""
    parent = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            st = _stat(int(entry.name))
            if st is not None:
                parent[int(entry.name)] = st
    found, frontier = set(), [root]
    while frontier:
        p = frontier.pop()
        for pid, (ppid, start) in parent.items():
            if ppid == p and (pid, start) not in found:
                found.add((pid, start))
                frontier.append(pid)
    return found


def alive(procs: set[tuple[int, int]]) -> set[tuple[int, int]]:
    """The members of `procs` still running (same pid *and* same start time)."""
    return {(pid, start) for pid, start in procs if (_stat(pid) or (None, None))[1] == start}


# ------------------------------------------------------------------ JupyterLab on 127.0.0.1

class LabServer:
    """`jupyter lab` from this Python's environment, serving `root` on a free port of 127.0.0.1.

    It runs with its own HOME and Jupyter directories under `home`, so no setting of the machine's
    user leaks in, and with a random token (the browser logs in with `url(...)`).  stop() ends it
    and every process it started (kernels, nbgrader's validation kernel) and returns those that
    had to be killed."""

    def __init__(self, root: Path, home: Path, log: Path):
        self.root, self.home, self.log_path = Path(root), Path(home), Path(log)
        self.port = free_port()
        self.token = os.urandom(16).hex()
        self.proc: subprocess.Popen | None = None
        self.seen: set[tuple[int, int]] = set()

    def url(self, path: str = "lab") -> str:
        sep = "&" if "?" in path else "?"
        return f"http://127.0.0.1:{self.port}/{path.lstrip('/')}{sep}token={self.token}"

    def env(self) -> dict:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("JUPYTER", "JPY_"))}
        env.update(HOME=str(self.home), JUPYTER_CONFIG_DIR=str(self.home / ".jupyter"),
                   JUPYTER_DATA_DIR=str(self.home / ".local" / "share" / "jupyter"),
                   JUPYTER_RUNTIME_DIR=str(self.home / ".local" / "share" / "jupyter" / "runtime"),
                   JUPYTERLAB_SETTINGS_DIR=str(self.home / ".jupyter" / "lab" / "user-settings"),
                   JUPYTERLAB_WORKSPACES_DIR=str(self.home / ".jupyter" / "lab" / "workspaces"),
                   IPYTHONDIR=str(self.home / ".ipython"),
                   # the kernels' Python and the alembic executable nbgrader runs come from here
                   PATH=os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", ""))
        return env

    def start(self, timeout: float = 180) -> "LabServer":
        self.home.mkdir(parents=True, exist_ok=True)
        # JupyterLab 4 asks on first start whether to fetch Jupyter news; say no, so that no
        # notification covers the page (and nothing tries the network).
        news = self.home / ".jupyter" / "lab" / "user-settings" / "@jupyterlab" / "apputils-extension"
        news.mkdir(parents=True, exist_ok=True)
        (news / "notification.jupyterlab-settings").write_text(json.dumps({"fetchNews": "false"}))
        # JupyterLab 4 renders only the cells near the viewport; the tests read every cell's prompt
        # and output from the page, so render them all.
        nb_settings = news.parent / "notebook-extension"
        nb_settings.mkdir(parents=True, exist_ok=True)
        (nb_settings / "tracker.jupyterlab-settings").write_text(json.dumps({"windowingMode": "none"}))
        cmd = [sys.executable, "-m", "jupyter", "lab", "--no-browser", "--ip=127.0.0.1", f"--port={self.port}",
               "--port-retries=0", f"--ServerApp.root_dir={self.root}", f"--IdentityProvider.token={self.token}",
               "--ServerApp.allow_root=True", "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate"]
        self._log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(cmd, cwd=self.root, env=self.env(), stdout=self._log, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, start_new_session=True)
        deadline = time.monotonic() + timeout
        status = f"http://127.0.0.1:{self.port}/api/status?token={self.token}"
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"jupyter lab exited ({self.proc.returncode}) on start; log:\n{self.log()}")
            try:
                with urllib.request.urlopen(status, timeout=5) as resp:
                    if resp.status == 200:
                        return self
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.5)  # polling a port that is not open yet: there is nothing to wait on
        raise RuntimeError(f"jupyter lab did not answer on port {self.port} within {timeout} s; log:\n{self.log()}")

    def note_children(self) -> None:
        """Remember every process below the server now (called before stopping; kernels come and go)."""
        if self.proc is not None:
            self.seen |= descendants(self.proc.pid)

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-6000:]
        except OSError:
            return ""

    def stop(self, grace: float = 30) -> set[tuple[int, int]]:
        """SIGTERM (JupyterLab shuts its kernels down), then SIGKILL whatever is left of it and its
        tree.  Returns the processes that had to be killed (the server itself excluded)."""
        if self.proc is None:
            return set()
        self.note_children()
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(grace)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(30)
        leftover = alive(self.seen)
        for pid, _ in leftover:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + 30
        while alive(self.seen) and time.monotonic() < deadline:
            time.sleep(0.2)  # waiting for the kernel to reap killed processes: nothing else to wait on
        self._log.close()
        self.proc = None
        return leftover


# ------------------------------------------------------------------ notebooks

def read_nb(path: Path) -> dict:
    return json.loads(Path(path).read_text(encoding="utf-8"))


def write_nb(nb: dict, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(nb, indent=1), encoding="utf-8")
    return path


def _nbgrader(cell) -> dict:
    return cell.get("metadata", {}).get("nbgrader", {})


def _text(source) -> str:
    return "".join(source) if isinstance(source, list) else source


def without_markers(source: str) -> str:
    return "".join(line for line in source.splitlines(keepends=True) if line.strip() not in MARKERS)


def filled_in(assignment: str) -> dict:
    """The released notebook of `assignment` with every solution cell (code and written answers)
    replaced by the instructor's cell from solutions/, the BEGIN/END SOLUTION lines removed: what a
    student who got everything right hands in.  (tests/course/submissions/make_submissions.py builds
    its correct.ipynb the same way, for the code cells.)"""
    release = read_nb(REPO / "exercises" / assignment / f"{assignment}.ipynb")
    source = read_nb(REPO / "solutions" / assignment / f"{assignment}.ipynb")
    answers = {_nbgrader(c)["grade_id"]: without_markers(_text(c["source"])).strip("\n")
               for c in source["cells"] if _nbgrader(c).get("solution")}
    filled = 0
    for cell in release["cells"]:
        meta = _nbgrader(cell)
        if meta.get("solution"):
            cell["source"] = answers[meta["grade_id"]]
            filled += 1
    if not filled:
        raise AssertionError(f"the release of {assignment} has no solution cells")
    return release


def check_cells(nb: dict) -> list[tuple[int, dict]]:
    """[(index, nbgrader metadata)] of the autograded test cells (graded code the student does not write)."""
    return [(i, _nbgrader(c)) for i, c in enumerate(nb["cells"])
            if c["cell_type"] == "code" and _nbgrader(c).get("grade") and not _nbgrader(c).get("solution")]


def written_answers(nb: dict) -> dict[str, float]:
    """{grade_id: points} of the answers graded by hand (graded markdown cells the student writes)."""
    return {_nbgrader(c)["grade_id"]: float(_nbgrader(c)["points"]) for c in nb["cells"]
            if c["cell_type"] == "markdown" and _nbgrader(c).get("grade") and _nbgrader(c).get("solution")}


def run(cmd: list, cwd: Path, env: dict, timeout: float = 900) -> subprocess.CompletedProcess:
    """Run a command line (ours: minicnn or nbgrader); raise with its output when it fails."""
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout,
                          stdin=subprocess.DEVNULL)
    if proc.returncode != 0:
        raise AssertionError(f"{' '.join(map(str, cmd))} exited {proc.returncode}:\n"
                             f"{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}")
    return proc
