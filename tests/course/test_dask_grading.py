"""Batch grading on Dask (minicnn.grader.cluster): a scheduler and worker processes of our own on
127.0.0.1, a worker SIGKILLed mid-batch, the client SIGKILLed mid-batch and rerun, TLS, and a
submission that tries to reach the scheduler.  Every process started here is stopped here."""
from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

pytest.importorskip("distributed")

from minicnn.grader import batch, cluster  # noqa: E402
from minicnn.sandbox import isolation  # noqa: E402

ASSIGNMENT = "a1_convolution"
SUBMISSIONS = Path(__file__).parent / "submissions"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _with_code(code: str) -> dict:
    """correct.ipynb with `code` run first in the output_size answer cell."""
    nb = json.loads((SUBMISSIONS / "correct.ipynb").read_text())
    for cell in nb["cells"]:
        if cell.get("metadata", {}).get("nbgrader", {}).get("grade_id") == "output_size":
            src = cell["source"] if isinstance(cell["source"], str) else "".join(cell["source"])
            cell["source"] = code + "\n" + src
            return nb
    raise AssertionError("no output_size cell in correct.ipynb")


def _class(course: Path, notebooks: dict):
    for student, nb in notebooks.items():
        folder = course / "submitted" / student / ASSIGNMENT
        folder.mkdir(parents=True)
        if isinstance(nb, Path):
            shutil.copyfile(nb, folder / f"{ASSIGNMENT}.ipynb")
        else:
            (folder / f"{ASSIGNMENT}.ipynb").write_text(json.dumps(nb))


def _start(cmd, **kw):
    return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True,
                            text=True, **kw)


def _stop(*procs):
    for p in procs:
        if p.poll() is None:
            try:
                os.killpg(p.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        p.wait(timeout=30)


def _wait_for_port(port, proc, seconds=60):
    end = time.time() + seconds
    while time.time() < end:
        if proc.poll() is not None:
            raise AssertionError(f"the scheduler exited: {proc.stderr.read()[-2000:]}")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.2)
    raise AssertionError(f"nothing listens on {port}")


def _children(pid: int) -> list[int]:
    """The children of every thread of pid (Dask starts the grading child from a worker thread)."""
    kids = []
    try:
        for tid in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{tid}/children") as fh:
                kids += [int(x) for x in fh.read().split()]
    except OSError:
        pass
    return kids


def test_plain_tcp_to_another_host_is_refused_unless_allowed():
    with pytest.raises(ValueError, match="tcp:// has no authentication"):
        cluster.check_address("tcp://10.1.2.3:8786")
    assert cluster.check_address("tcp://10.1.2.3:8786", allow_plain=True)
    assert cluster.check_address("tcp://127.0.0.1:8786") and cluster.check_address("tls://10.1.2.3:8786")
    with pytest.raises(ValueError, match="tcp:// has no authentication"):
        cluster.check_address("192.0.2.7:8786")  # no scheme: Dask's default, tcp


def test_a_tls_scheduler_refuses_a_plain_client(tmp_path):
    pytest.importorskip("cryptography")
    from distributed import Client, Security
    sec = Security.temporary()
    for name, pem in (("ca.pem", sec.tls_ca_file), ("cert.pem", sec.tls_scheduler_cert),
                      ("key.pem", sec.tls_scheduler_key)):
        (tmp_path / name).write_text(pem)
    port = _free_port()
    sched = _start([sys.executable, "-m", "distributed.cli.dask_scheduler",
                   "--protocol", "tls", "--host", "127.0.0.1", "--port", str(port), "--no-dashboard",
                   "--tls-ca-file", str(tmp_path / "ca.pem"), "--tls-cert", str(tmp_path / "cert.pem"),
                   "--tls-key", str(tmp_path / "key.pem")])
    try:
        _wait_for_port(port, sched)
        # a plain client, and a TLS client whose certificate the scheduler's CA did not sign
        for address, security in ((f"tcp://127.0.0.1:{port}", None),
                                  (f"tls://127.0.0.1:{port}", Security.temporary())):
            with pytest.raises((OSError, TimeoutError, ValueError)):
                Client(address, security=security, timeout="5s")
        with Client(f"tls://127.0.0.1:{port}", security=sec, timeout="20s") as client:  # the key holder gets in
            assert client.scheduler_info()["address"].startswith("tls://")
    finally:
        _stop(sched)


@pytest.mark.skipif(not isolation.bwrap_path(), reason="the sandbox's network wall needs bubblewrap")
def test_a_scheduler_and_two_workers_survive_a_killed_worker_and_a_probing_submission(tmp_path):
    port = _free_port()
    address = f"tcp://127.0.0.1:{port}"
    probe = ("import socket as _s\n_c = _s.socket()\n_c.settimeout(3)\n"
             f"try:\n    _c.connect(('127.0.0.1', {port}))\n    print('PROBE-CONNECTED')\n"
             "except OSError as _e:\n    print('PROBE-REFUSED', _e)\n")
    course = tmp_path / "course"
    _class(course, {"ann": SUBMISSIONS / "correct.ipynb", "ben": SUBMISSIONS / "stub.ipynb",
                    "cal": _with_code("import time\ntime.sleep(60)"), "dee": _with_code(probe)})
    sched = _start([sys.executable, "-m", "distributed.cli.dask_scheduler", "--host", "127.0.0.1", "--port",
                    str(port), "--no-dashboard"])
    workers = []
    try:
        _wait_for_port(port, sched)
        for _ in range(2):
            workers.append(_start([sys.executable, "-m", "distributed.cli.dask_worker", address, "--nthreads", "1",
                                   "--no-nanny", "--host", "127.0.0.1", "--no-dashboard", "--memory-limit", "0"]))
        from distributed import Client
        with Client(address, timeout="30s") as c:
            c.wait_for_workers(2, timeout=60)
        killed = []

        def killer():  # SIGKILL the first worker seen grading (it has a child), once
            while not killed:
                for w in workers:
                    if _children(w.pid):
                        os.kill(w.pid, signal.SIGKILL)
                        killed.append(w.pid)
                        return
                time.sleep(0.2)
        t = threading.Thread(target=killer, daemon=True)
        t.start()
        report = batch.grade_batch(ASSIGNMENT, course, scheduler=address, isolation_mode="bwrap", progress=False,
                                   cells_timeout=120, log=lambda *a: None)
        t.join(timeout=1)
        assert killed, "no worker was killed mid-batch"
        recs = {r["student"]: r for r in report["records"]}
        assert set(recs) == {"ann", "ben", "cal", "dee"}, "every student ends with a record"
        total = {s: sum(p["score"] for p in r["parts"]) for s, r in recs.items()}
        hit = [s for s, r in recs.items() if r["status"] == "grader-error"]
        assert len(hit) <= 1, (hit, [recs[s]["reason"] for s in hit])
        for student, want in (("ann", 15), ("ben", 0), ("dee", 15)):
            if student not in hit:
                assert total[student] == want, (student, recs[student]["reason"])
        assert "PROBE-CONNECTED" not in recs["dee"]["output"]
        if "dee" not in hit:
            assert "PROBE-REFUSED" in recs["dee"]["output"], recs["dee"]["output"][-500:]
    finally:
        _stop(*workers, sched)


def test_the_client_killed_mid_batch_loses_nothing_and_a_rerun_regrades_nothing(tmp_path):
    course = tmp_path / "course"
    students = {"ann": SUBMISSIONS / "correct.ipynb", "ben": SUBMISSIONS / "stub.ipynb",
                "cal": _with_code("import time\ntime.sleep(60)")}
    _class(course, students)
    journal = batch.journal_path(course, ASSIGNMENT)
    client = _start([sys.executable, "-m", "minicnn.cli", "course", "grade", ASSIGNMENT, "--course", str(course),
                     "--jobs", "2", "--no-progress", "--isolation", "rlimits"])
    try:
        end = time.time() + 600
        while time.time() < end and len(batch.read_journal(journal)) < 2 and client.poll() is None:
            time.sleep(0.3)
        first = batch.read_journal(journal)
        assert len(first) >= 2 and client.poll() is None, (first.keys(), client.poll())
    finally:
        _stop(client)  # the whole group: client, local cluster, graders
    assert not (course / "grades" / f"{ASSIGNMENT}.csv").exists(), "killed before the outputs"
    report = batch.grade_batch(ASSIGNMENT, course, jobs=1, isolation_mode="rlimits", progress=False,
                               cells_timeout=5, log=lambda *a: None)
    assert set(report["kept"]) == set(first), "nothing already graded is graded again"
    assert report["graded_now"] == 3 - len(first)
    recs = {r["student"]: r for r in report["records"]}
    assert set(recs) == set(students)
    for s in first:
        # the copy flags are the class's, worked out again at the end of every batch
        kept, journaled = dict(recs[s]), first[s][1].to_dict()
        kept.pop("similar"), journaled.pop("similar")
        assert kept == journaled
    again = batch.grade_batch(ASSIGNMENT, course, jobs=1, isolation_mode="rlimits", progress=False,
                              log=lambda *a: None)
    assert again["graded_now"] == 0 and set(again["kept"]) == set(students)
