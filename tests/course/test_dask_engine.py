"""The embedded LocalCluster (minicnn.grader.cluster): no HTTP port unless a dashboard is asked
for, records from a worker reporting a weaker isolation than asked are refused, and the client
keeps only a bounded number of submissions in flight.  Every process started here is stopped here."""
from __future__ import annotations

import socket

import pytest

pytest.importorskip("distributed")
psutil = pytest.importorskip("psutil")

from minicnn.grader import cluster  # noqa: E402
from minicnn.grader.record import Grade  # noqa: E402

ASSIGNMENT = "a1_convolution"


def _listening_ports() -> set[int]:
    """TCP ports listened on by this process and its descendants (our own cluster only)."""
    me = psutil.Process()
    ports = set()
    for proc in [me] + me.children(recursive=True):
        try:
            conns = proc.net_connections(kind="tcp")
        except psutil.Error:
            continue
        ports.update(c.laddr.port for c in conns if c.status == psutil.CONN_LISTEN)
    return ports


def _speaks_http(port: int) -> bool:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.settimeout(3)
        s.sendall(b"GET /health HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
        try:
            return s.recv(5) == b"HTTP/"
        except OSError:   # Dask's own protocol waits for the rest of a frame, or hangs up
            return False


def _dask_ports(client) -> set[int]:
    """The ports of Dask's own protocol: the scheduler's, each worker's and each nanny's."""
    info = client.scheduler_info()
    addresses = [info["address"]] + list(info["workers"]) + [w.get("nanny") for w in info["workers"].values()]
    return {int(a.rsplit(":", 1)[1]) for a in addresses if a}


@pytest.mark.parametrize("dashboard", [False, True])
def test_the_embedded_cluster_opens_no_http_port_unless_a_dashboard_is_asked_for(dashboard):
    before = _listening_ports()
    with cluster.connect(jobs=2, dashboard=dashboard) as client:
        assert len(client.scheduler_info()["workers"]) == 2
        comm = _dask_ports(client)
        ports = _listening_ports() - before
        assert comm <= ports, (comm, ports)
        others = sorted(ports - comm)
        if dashboard:   # the scheduler's dashboard, and nothing else
            assert len(others) == 1 and _speaks_http(others[0]), others
        else:
            assert others == [], f"listening beyond Dask's own protocol: {others}"
        # and so will a worker that its nanny restarts
        assert all(client.run(lambda dask_worker: "minicnn-no-http" in dask_worker.plugins).values())


TWO_CLUSTERS = r"""
import socket, sys
from minicnn.grader import cluster
held = socket.socket()
try:   # Dask's default HTTP port, taken (by us, if nobody else has it): as by a second grader's cluster
    held.bind(("127.0.0.1", 8787))
    held.listen()
except OSError:
    pass   # someone else's: taken all the same
with cluster.connect(jobs=1) as one, cluster.connect(jobs=1) as two:
    assert one.submit(sum, [1, 2], pure=False).result() == 3
    assert two.submit(sum, [3, 4], pure=False).result() == 7
print("graded on both")
"""


def test_two_embedded_clusters_at_once_leave_port_8787_alone():
    import subprocess
    import sys
    out = subprocess.run([sys.executable, "-c", TWO_CLUSTERS], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0 and "graded on both" in out.stdout, out.stderr[-3000:]
    assert "8787" not in out.stderr and "already in use" not in out.stderr, out.stderr[-3000:]


def _fake_grade(setup, job, isolation="rlimits"):
    """A worker that grades nothing and reports full marks, graded with `isolation`."""
    rec = Grade(job["student"], setup["assignment"])
    rec.status = "graded"
    return {"record": rec.to_dict(), "isolation": isolation, "host": "fake-host"}


def _install_fake(isolation, dask_worker=None):
    """Run on a worker: from now on its grade_submission is _fake_grade (the task's function is
    looked up by name on the worker, as a tampered worker's would be)."""
    import functools

    from minicnn.grader import task
    task.grade_submission = functools.partial(_fake_grade, isolation=isolation)
    return True


@pytest.mark.parametrize("reported, accepted", [("rlimits", False), ("bwrap", True)])
def test_a_worker_reporting_a_weaker_isolation_is_refused(reported, accepted):
    setup = {"assignment": ASSIGNMENT, "isolation": "bwrap"}
    jobs = [{"student": f"s{i}", "files": {}} for i in range(3)]
    got = []
    with cluster.connect(jobs=1) as client:
        assert all(client.run(_install_fake, reported).values())
        cluster.run(client, setup, jobs, accept={"bwrap"}, on_record=lambda rec, info: got.append((rec, info)))
    assert sorted(rec.student for rec, _ in got) == ["s0", "s1", "s2"]
    for rec, info in got:
        assert info.get("isolation") == reported
        if accepted:
            assert rec.status == "graded", rec.reason
        else:
            assert rec.status == "grader-error" and "weak isolation" in rec.flags, (rec.status, rec.flags)
            assert "refused" in rec.reason and "'rlimits'" in rec.reason and "fake-host" in rec.reason


def test_the_client_keeps_a_bounded_number_of_submissions_in_flight():
    """Jobs are read as results come back: never more than in_flight(workers) submitted and not
    yet recorded, and the job generator is not run ahead of that."""
    made, got, ahead = [], [], []

    def jobs():
        for i in range(12):
            made.append(i)
            yield {"student": f"s{i:02d}", "files": {}}

    def on_record(rec, info):
        ahead.append(len(made) - len(got))   # jobs taken from the generator, not yet recorded
        got.append(rec.student)

    with cluster.connect(jobs=1) as client:
        assert all(client.run(_install_fake, "bwrap").values())
        cluster.run(client, {"assignment": ASSIGNMENT, "isolation": "bwrap"}, jobs(), accept={"bwrap"},
                    on_record=on_record)
    assert sorted(got) == [f"s{i:02d}" for i in range(12)]
    assert max(ahead) <= cluster.in_flight(1) + 1 < 12, ahead   # +1: the next is submitted before a record is handed on
