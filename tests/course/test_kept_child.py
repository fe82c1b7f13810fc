"""minicnn.sandbox.kept: a part's calls answered one by one by one forked child, each with its
own deadline, and a fresh child after any call that timed out, crashed or answered nonsense."""
from __future__ import annotations

import os
import signal
import time

import numpy as np
import pytest
from numba import njit

from minicnn.course import checks
from minicnn.sandbox import calls
from minicnn.sandbox.kept import KeptChild

pytestmark = pytest.mark.skipif(not calls.USE_FORK, reason="the kept child is forked: Linux only")

_counter = [0]


def counting(x):
    _counter[0] += 1
    return x * 2, _counter[0], os.getpid()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie (not reaped yet) counts as gone
    with open(f"/proc/{pid}/stat") as f:
        return f.read().rsplit(")", 1)[1].split()[0] != "Z"


@pytest.fixture
def child():
    c = KeptChild()
    yield c
    c.close()


def test_one_child_answers_every_call(child):
    pids = set()
    for i in range(5):
        out = child.call(lambda: counting, (np.full(3, i),), timeout=10)
        assert out.status == "ok", out.error
        value, count, pid = out.value
        np.testing.assert_array_equal(value, np.full(3, 2 * i))
        assert count == i + 1          # one process: its state carries over, as in a notebook
        pids.add(pid)
    assert child.forks == 1 and len(pids) == 1 and pid != os.getpid()
    assert _counter[0] == 0             # nothing ran in the caller's own process


def test_a_timeout_costs_only_its_own_call(child):
    def slow_on_one(x):
        if x == 1:
            while True:
                pass
        return x + 10, os.getpid()

    first = child.call(lambda: slow_on_one, (0,), timeout=10)
    assert first.status == "ok"
    t0 = time.monotonic()
    out = child.call(lambda: slow_on_one, (1,), timeout=1.0)
    assert out.status == "timeout" and "1 s" in out.error
    assert time.monotonic() - t0 < 8
    assert not _alive(first.value[1])   # the hung child was killed
    after = child.call(lambda: slow_on_one, (2,), timeout=10)
    assert after.status == "ok" and after.value[0] == 12
    assert child.forks == 2 and after.value[1] != first.value[1]


@pytest.mark.parametrize("how", ["segv", "exit0", "garbage"])
def test_a_crash_costs_only_its_own_call(child, how):
    # the fds this test process already holds (pytest's, and a pytest-xdist worker's channel to its
    # controller): the forked child inherits them, and garbage written there would break the test
    # run itself, not the kept child (the child's pipes are made at its first call, after this)
    harness = {int(fd) for fd in os.listdir("/proc/self/fd")}

    def crash_on_one(x):
        if x == 1:
            if how == "segv":
                os.kill(os.getpid(), signal.SIGSEGV)
            elif how == "exit0":
                os._exit(0)
            else:   # writes over the reply pipe: a length that announces too much, then nothing
                for fd in range(3, 64):
                    if fd in harness:
                        continue
                    try:
                        os.write(fd, b"\xff" * 16)
                    except OSError:
                        pass
                os._exit(0)
        return x + 10

    assert child.call(lambda: crash_on_one, (0,), timeout=10).value == 10
    out = child.call(lambda: crash_on_one, (1,), timeout=10)
    assert out.status == "crash", (out.status, out.error)
    if how == "segv":
        assert "SIGSEGV" in out.error and "NUMBA_BOUNDSCHECK" in out.error
    after = child.call(lambda: crash_on_one, (2,), timeout=10)
    assert after.status == "ok" and after.value == 12 and child.forks == 2


def test_a_child_that_died_between_calls_is_replaced(child):
    def dies_later(x):
        if x == 0:   # after answering, its process ends by itself
            os.fork() or (time.sleep(0.2), os.kill(os.getppid(), signal.SIGKILL), os._exit(0))
        return x

    assert child.call(lambda: dies_later, (0,), timeout=10).status == "ok"
    time.sleep(1.0)
    out = child.call(lambda: dies_later, (1,), timeout=10)
    assert out.status == "ok" and out.value == 1 and child.forks == 2


def test_what_a_call_starts_dies_with_the_child(child, tmp_path):
    def starts_a_sleeper(_):
        pid = os.fork()
        if pid == 0:
            time.sleep(60)
            os._exit(0)
        return pid

    sleeper = child.call(lambda: starts_a_sleeper, (0,), timeout=10).value
    assert _alive(sleeper)
    child.close()
    end = time.monotonic() + 5
    while _alive(sleeper) and time.monotonic() < end:
        time.sleep(0.05)
    assert not _alive(sleeper)


def test_output_warnings_and_changes_are_per_call(child):
    def noisy(a, tag):
        print(f"print {tag}")
        os.write(1, f"fd {tag}\n".encode())
        if tag == "first":
            a[0] = 99.0
        return 0

    one = child.call(lambda: noisy, (np.zeros(2), "first"), timeout=10)
    two = child.call(lambda: noisy, (np.zeros(2), "second"), timeout=10)
    assert "print first" in one.output and "fd first" in one.output and one.mutated == [0]
    assert "first" not in two.output and "print second" in two.output and "fd second" in two.output
    assert two.mutated == []


@njit(cache=False)
def _double(x):
    return x * 2


def test_a_new_compilation_gets_a_fresh_child(child):
    assert child.call(lambda: _double, (np.ones(2),), timeout=30).status == "ok"
    assert child.call(lambda: _double, (np.ones(3),), timeout=30).status == "ok"
    assert child.forks == 1                    # same types: the compiled code is the child's already
    out = child.call(lambda: _double, (np.ones(2, dtype=np.int64),), timeout=30)
    assert out.status == "ok" and out.value.dtype == np.int64
    assert child.forks == 2                    # new types: compiled here first, then a fresh child


def test_call_part_with_a_kept_child_keeps_the_tripwires():
    part = checks.get_part("a1.correlate2d")
    kept = checks.kept_child(part)

    def uses_scipy(image, kernel, *rest):
        import scipy.signal  # noqa: F401
        return np.zeros((1, 1))

    def honest(image, kernel, stride=1, padding=0):
        return np.zeros((1, 1))

    try:
        for _ in range(2):   # armed once in the child, refused on every call
            out = checks.call_part(part, uses_scipy, (np.ones((3, 3)), np.ones((2, 2))), kept=kept)
            assert out.status == "forbidden" and "scipy" in out.error
        assert kept.forks == 1
        # another function: a fresh child (the kept one only ever calls the function it was forked for)
        assert checks.call_part(part, honest, (np.ones((3, 3)), np.ones((2, 2))), kept=kept).status == "ok"
        assert kept.forks == 2
    finally:
        kept.close()
