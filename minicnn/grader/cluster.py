"""The batch's engine: Dask distributed, on an embedded LocalCluster or an existing cluster.

    with connect(jobs=2) as client:                         # LocalCluster: 2 processes, 1 thread each, 127.0.0.1
    with connect(scheduler="tls://grader:8786") as client:  # the workers of an existing cluster

`run(client, setup, jobs, on_record)` submits one task per submission (task.grade_submission)
and hands each record to `on_record` as it arrives, in the client process: only the client
writes anything.

Trust: Dask's tcp:// has no authentication, so a scheduler on another host must be reached by
tls:// (certificates from Dask's own configuration, `distributed.comm.tls.*`, or a Security
object) unless the instructor says `allow_plain=True` explicitly.  Every task reports the
isolation its worker used; a record graded without bubblewrap is refused (replaced by a
grader-error record) unless resource limits only were asked for.

Faults: the scheduler's `allowed-failures` is set to 1, so a submission whose worker died is
re-run once on another worker; if that worker dies too, the submission gets a grader-error
record saying so (Dask's default of 3 would let one submission kill four workers).
"""
from __future__ import annotations

import contextlib
import ipaddress
import logging
import os

from .record import Grade

ALLOWED_FAILURES = 1  # a submission whose worker died is re-run once elsewhere, then recorded as a grader error


def _need_dask():
    try:
        import distributed  # noqa: F401
    except ImportError as exc:
        raise RuntimeError("batch grading runs on Dask: pip install -e '.[course]' (dask, distributed)") from exc


def is_loopback(host: str) -> bool:
    if host in ("localhost", ""):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_address(address: str, allow_plain: bool = False) -> str:
    """The scheduler's address, or ValueError when it would be reached without TLS on another host."""
    from distributed.comm import parse_address, parse_host_port
    scheme, loc = parse_address(address)
    if scheme == "tls":
        return address
    if scheme not in ("tcp", "ws"):
        raise ValueError(f"--scheduler {address!r}: expected tls://HOST:PORT (or tcp:// on this machine)")
    host, _ = parse_host_port(loc, 8786)
    if not is_loopback(host) and not allow_plain:
        raise ValueError(f"--scheduler {address!r}: {scheme}:// has no authentication, so anyone who can reach "
                         f"{host} could run code on the workers or read the grades: use tls:// (Dask's "
                         "distributed.comm.tls configuration), or say --allow-plain-tcp if this network is private")
    return address


def _set_allowed_failures(dask_scheduler=None, n=ALLOWED_FAILURES):
    dask_scheduler.allowed_failures = n
    return n


def _stop_http(dask_scheduler=None, dask_worker=None):
    """Close the node's HTTP server (Dask starts one on every scheduler and worker, dashboard or
    not: health checks, metrics, the task graph's JSON); run in the node's own event loop."""
    server = getattr(dask_scheduler or dask_worker, "http_server", None)
    if server is not None:
        server.stop()      # it stops listening
    return server is not None


def _no_http_plugin():
    from distributed.diagnostics.plugin import WorkerPlugin

    class NoHttp(WorkerPlugin):
        """On every worker of the embedded cluster, also one its nanny restarts: no HTTP port."""
        name = "minicnn-no-http"

        def setup(self, worker):
            _stop_http(dask_worker=worker)

    return NoHttp()


def close_http_servers(client, dashboard: bool = False) -> None:
    """No HTTP port stays open on the embedded cluster: the workers' servers close (now and
    whenever a worker is restarted), and the scheduler's unless it serves the dashboard."""
    client.register_plugin(_no_http_plugin())
    if not dashboard:
        client.run_on_scheduler(_stop_http)


@contextlib.contextmanager
def connect(jobs: int = 1, scheduler: str | None = None, allow_plain: bool = False, security=None,
            dashboard: bool = False):
    """A Dask Client: an embedded LocalCluster when no scheduler is given (nor DASK_SCHEDULER_ADDRESS)."""
    _need_dask()
    import dask
    from distributed import Client, LocalCluster
    scheduler = scheduler or dask.config.get("scheduler-address", None) or os.environ.get("DASK_SCHEDULER_ADDRESS")
    if scheduler:
        check_address(scheduler, allow_plain)
        with Client(scheduler, security=security, timeout="30s") as client:
            client.run_on_scheduler(_set_allowed_failures)
            client.minicnn_local = False
            yield client
        return
    with dask.config.set({"distributed.scheduler.allowed-failures": ALLOWED_FAILURES}):
        # the scheduler's HTTP server (dashboard or not) on a free port of 127.0.0.1: Dask's default,
        # 8787, is bound for a moment even when the server is closed right after, and is taken by
        # another embedded cluster (or anything else) as often as not
        with LocalCluster(n_workers=jobs, threads_per_worker=1, processes=True, host="127.0.0.1",
                          dashboard_address="127.0.0.1:0", scheduler_kwargs={"dashboard": dashboard},
                          memory_limit=0, silence_logs=logging.ERROR) as cl, Client(cl) as client:
            close_http_servers(client, dashboard)
            client.minicnn_local = True
            yield client


def in_flight(threads: int) -> int:
    """How many submissions the client keeps submitted at once: two per worker thread (one
    running, one waiting, so that no worker waits for the client), and at least 4."""
    return max(4, 2 * threads)


def run(client, setup: dict, jobs, accept: set[str], on_record) -> None:
    """Grade every job on the cluster; on_record(Grade, worker_info) for each, as they finish.
    jobs: any iterable, read as workers free up: at most in_flight(worker threads) submissions
    are with the cluster at once (a generator that reads each submission when asked for it
    keeps the client's memory to that many too).
    accept: the isolation modes whose records are kept ({"bwrap"}, or also "rlimits" when asked)."""
    from distributed import as_completed
    from . import task
    assignment = setup["assignment"]
    threads = sum(w.get("nthreads", 1) for w in client.scheduler_info()["workers"].values())
    jobs, students, pending = iter(jobs), {}, as_completed()

    def submit_next() -> None:
        job = next(jobs, None)
        if job is not None:
            fut = client.submit(task.grade_submission, setup, job, pure=False,
                                key=f"minicnn-grade-{assignment}-{job['student']}-{os.urandom(4).hex()}")
            students[fut.key] = job["student"]
            pending.add(fut)

    for _ in range(in_flight(max(threads, 1))):
        submit_next()
    for fut in pending:
        student = students.pop(fut.key)
        submit_next()   # one out, one in
        on_record(*_received(fut, student, assignment, accept))
        fut.release()


def _received(fut, student: str, assignment: str, accept: set[str]):
    """(Grade, worker info) for a finished task: its record, or a grader error saying why not."""
    try:
        out = fut.result()
    except Exception as exc:  # noqa: BLE001 - KilledWorker and friends: this submission, not the batch
        name = type(exc).__name__
        if name == "KilledWorker":
            why = ("the grading worker died while grading this submission, and again on the re-run elsewhere "
                   f"(allowed-failures={ALLOWED_FAILURES})")
        else:
            why = f"the grading task failed: {name}: {exc}"
        return Grade.failed(student, assignment, why, flags=["grading process died"]), {}
    rec = Grade.from_dict(out["record"])
    if out.get("isolation") not in accept:
        rec = Grade.failed(student, assignment,
                           f"refused: graded on worker {out.get('host')} with isolation {out.get('isolation')!r} "
                           f"(accepted: {', '.join(sorted(accept))}); install bubblewrap there or ask for "
                           "--isolation rlimits", flags=["weak isolation"])
    return rec, out
