"""minicnn/kernels/fast/threads.py: one thread runs a kernel's serial version, more run its twin.

Every multi-threaded fast kernel is a serial `kernel_part(part, parts, ...)` that does one share
of the tasks, and a `kernel_parallel(parts, ...)` that runs every share under prange.  These
tests check the choice `run` makes, and that each kernel's shares cover every task exactly once
for a share count that is not the thread count (3): a task done twice shows in the kernels that
add into their output, a task never done leaves that part of the output unwritten.
(test_fast_kernels.py checks that 1 and 2 threads give bitwise the same results.)
"""
import numba
import numpy as np
import pytest

import minicnn
from minicnn.kernels import fast
from minicnn.kernels.fast import threads


class _num_threads:
    def __init__(self, n):
        self.n = n

    def __enter__(self):
        self.old = numba.get_num_threads()
        numba.set_num_threads(self.n)

    def __exit__(self, *exc):
        numba.set_num_threads(self.old)


def test_one_thread_runs_the_serial_kernel_more_run_the_twin():
    calls = []
    part = lambda p, parts, a: calls.append(("part", p, parts, a))      # noqa: E731
    parallel = lambda parts, a: calls.append(("parallel", parts, a))    # noqa: E731
    with _num_threads(1):
        threads.run(part, parallel, "x")
    assert calls == [("part", 0, 1, "x")]
    if numba.config.NUMBA_NUM_THREADS >= 2:
        calls.clear()
        with _num_threads(2):
            threads.run(part, parallel, "x")
        assert calls == [("parallel", 2, "x")]


def test_only_version_overrides_the_thread_count_and_is_undone():
    calls = []
    part = lambda p, parts: calls.append("part")          # noqa: E731
    parallel = lambda parts: calls.append(("parallel", parts))   # noqa: E731
    with _num_threads(1), threads.only_version("parallel"):
        threads.run(part, parallel)
    if numba.config.NUMBA_NUM_THREADS >= 2:
        with _num_threads(2), threads.only_version("serial"):
            threads.run(part, parallel)
        with _num_threads(2), pytest.raises(KeyError), threads.only_version("serial"):
            raise KeyError("the block failed")
        threads.run(part, parallel)    # the choice is back to the thread count
        assert calls == [("parallel", 1), "part", ("parallel", 2)]
    else:
        assert calls == [("parallel", 1)]
    with pytest.raises(ValueError, match="which must be"):
        with threads.only_version("both"):
            pass


def _in_three_shares(part, parallel, *args):
    """What run would do with three threads, done one share after the other."""
    for p in range(3):
        part(p, 3, *args)


def _flat(x):
    return x.reshape(x.shape[0], -1)


def _rows(w, x):
    """w's values repeated into a (6, C*H*W) dense weight for x."""
    return np.resize(w, (w.shape[0], _flat(x).shape[1]))


OPS = {
    "conv2d": lambda x, w, b: minicnn.conv2d(x, w, b, 1, 1),
    "conv2d stride 2": lambda x, w, b: minicnn.conv2d(x, w, b, 2, 1),
    "conv2d_backward": lambda x, w, b: minicnn.conv2d_backward(minicnn.conv2d(x, w, b, 1, 1) * 0.5 + 1, x, w, 1, 1),
    "conv2d_backward stride 2": lambda x, w, b: minicnn.conv2d_backward(
        minicnn.conv2d(x, w, b, 2, 0) - 1, x, w, 2, 0),
    "max_pool2d": lambda x, w, b: minicnn.max_pool2d(x, 2),
    "max_pool2d_backward": lambda x, w, b: minicnn.max_pool2d_backward(minicnn.max_pool2d(x, 2) + 1, x, 2),
    "max_pool2d 3x3": lambda x, w, b: minicnn.max_pool2d_backward(minicnn.max_pool2d(x, 3, 1, 1) + 1, x, 3, 1, 1),
    "avg_pool2d": lambda x, w, b: minicnn.avg_pool2d(x, 2),
    "avg_pool2d_backward": lambda x, w, b: minicnn.avg_pool2d_backward(minicnn.avg_pool2d(x, 3, 1, 1), x, 3, 1, 1),
    "dense": lambda x, w, b: minicnn.dense(_flat(x), _rows(w, x), b),
    "dense_backward": lambda x, w, b: minicnn.dense_backward(np.cos(minicnn.dense(_flat(x), _rows(w, x), b)),
                                                             _flat(x), _rows(w, x)),
}


@pytest.mark.parametrize("batch", [1, 7, 40])     # one image; a batch-inner plan; per-image planes
@pytest.mark.parametrize("op", sorted(OPS))
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_three_shares_cover_every_task_once(op, batch, dtype, monkeypatch):
    rng = np.random.default_rng(batch)
    hw = 5 if batch == 7 else 11
    x = rng.standard_normal((batch, 3, hw, hw)).astype(dtype)
    w = rng.standard_normal((6, 3, 3, 3)).astype(dtype)
    b = rng.standard_normal(6).astype(dtype)
    monkeypatch.setattr(fast, "SMALL_FLOPS", 0)
    monkeypatch.setattr(fast, "SMALL_ELEMENTS", 0)
    with monkeypatch.context() as m:   # first, so that no output lands in memory a whole run just freed
        for mod in ("conv", "layout", "pool", "dense"):
            m.setattr(f"minicnn.kernels.fast.{mod}.run", _in_three_shares)
        shares = OPS[op](x, w, b)
    with _num_threads(1):
        whole = OPS[op](x, w, b)
    for a, e in zip(shares if isinstance(shares, tuple) else (shares,), whole if isinstance(whole, tuple) else (whole,)):
        np.testing.assert_array_equal(a, e)
