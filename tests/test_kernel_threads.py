"""minicnn/kernels/fast/threads.py: one thread runs a kernel's serial version, more run it per share.

Every multi-threaded fast kernel is a serial `kernel_part(part, parts, ...)` that does one share
of the tasks; on more threads a launcher (`threads.LAUNCH`) calls it once per share under prange,
through its compiled address.  These tests check the choice `run` makes, the launcher's call
(arguments, exceptions, the address per argument types), and that each kernel's shares cover every task exactly once
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


@pytest.fixture
def spied(monkeypatch):
    """threads.run with its launcher and addresses recorded instead of run: [(what, ...)]."""
    calls = []
    monkeypatch.setattr(threads, "address_of", lambda kernel, args: ("address of", kernel))
    monkeypatch.setattr(threads, "LAUNCH", {n: (lambda *a: calls.append(("launch",) + a)) for n in (1, 2)})
    return calls


def test_one_thread_runs_the_serial_kernel_more_run_the_launcher(spied):
    part = lambda p, parts, a: spied.append(("part", p, parts, a))      # noqa: E731
    with _num_threads(1):
        threads.run(part, "x")
    assert spied == [("part", 0, 1, "x")]
    if numba.config.NUMBA_NUM_THREADS >= 2:
        spied.clear()
        with _num_threads(2):
            threads.run(part, "x", "y")
        assert spied == [("launch", ("address of", part), 2, "x", "y")]


def test_only_version_overrides_the_thread_count_and_is_undone(spied):
    part = lambda p, parts, a: spied.append(("part",))          # noqa: E731
    with _num_threads(1), threads.only_version("parallel"):
        threads.run(part, "x")
    if numba.config.NUMBA_NUM_THREADS >= 2:
        with _num_threads(2), threads.only_version("serial"):
            threads.run(part, "x")
        with _num_threads(2), pytest.raises(KeyError), threads.only_version("serial"):
            raise KeyError("the block failed")
        threads.run(part, "x")    # the choice is back to the thread count
        assert [c[:3] for c in spied] == [("launch", ("address of", part), 1), ("part",), ("launch", ("address of", part), 2)]
    else:
        assert [c[:3] for c in spied] == [("launch", ("address of", part), 1)]
    with pytest.raises(ValueError, match="which must be"):
        with threads.only_version("both"):
            pass


@numba.njit
def _share_marks(part, parts, out, a, scale):
    """out[i] = a[i] * scale + 1000 * (part + 1) for share `part` of out's rows; raises on a NaN."""
    n = out.shape[0]
    for i in range(n * part // parts, n * (part + 1) // parts):
        if a[i] != a[i]:
            raise ValueError("a NaN in a")
        out[i] = a[i] * scale + 1000 * (part + 1)


@numba.njit
def _share_sum(part, parts, out, a, b, c):
    n = out.shape[0]
    for i in range(n * part // parts, n * (part + 1) // parts):
        out[i] = a[i] + b[i] * c[i] + part


@pytest.mark.parametrize("parts", [1, 2, 3, 5])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_launcher_calls_every_share_once_with_the_arguments(parts, dtype):
    a = np.arange(11, dtype=dtype)
    out = np.full(11, -1, dtype=dtype)
    threads.LAUNCH[3](threads.address_of(_share_marks, (0, 1, out, a, 2.5)), parts, out, a, 2.5)
    shares = [next(p for p in range(parts) if 11 * p // parts <= i < 11 * (p + 1) // parts) for i in range(11)]
    np.testing.assert_array_equal(out, a * dtype(2.5) + 1000 * (np.array(shares) + 1))

    b, c = a[::-1].copy(), a + 1
    got = np.zeros_like(a)
    threads.LAUNCH[4](threads.address_of(_share_sum, (0, 1, got, a, b, c)), parts, got, a, b, c)
    np.testing.assert_array_equal(got, a + b * c + np.array(shares))


def test_launcher_passes_a_strided_array_as_a_strided_array():
    """The address is that of the kernel compiled for the arguments' own types (here a view with a
    stride, Numba's 'A' layout, not 'C'): a call with the wrong types would read garbage."""
    base = np.arange(40, dtype=np.float64)
    a = base[::2]                                  # 20 elements, stride 16 bytes
    out = np.zeros(20)
    contiguous = threads.address_of(_share_marks, (0, 1, out, base[:20].copy(), 1.0))
    strided = threads.address_of(_share_marks, (0, 1, out, a, 1.0))
    assert strided != contiguous
    threads.LAUNCH[3](strided, 2, out, a, 1.0)
    np.testing.assert_array_equal(out, a + 1000 * (np.arange(20) >= 10) + 1000)
    assert threads.address_of(_share_marks, (0, 1, out, base[1::2], 3.0)) == strided   # cached per kind


@numba.njit(parallel=True)
def _share_marks_twin(parts, out, a, scale):
    """What the launcher replaced: a prange loop that calls the share by name."""
    for part in numba.prange(parts):
        _share_marks(np.int64(part), parts, out, a, scale)


def _outcome(call, a):
    out = np.full(a.shape, -1.0)
    try:
        call(out)
    except Exception as e:      # noqa: BLE001 - what was raised is the outcome
        chain = []
        while e is not None:
            # (a SystemError's message names the dispatcher, which differs between the two)
            chain.append(type(e).__name__ if isinstance(e, SystemError) else f"{type(e).__name__}: {e}")
            e = e.__cause__
        return chain, out
    return None, out


@pytest.mark.parametrize("parts", [1, 2, 3])
def test_launcher_raises_as_a_prange_loop_does(parts):
    """An exception inside a share: Numba's prange loops do not reliably raise one that a worker
    thread hit (a Numba limitation: minicnn's kernels raise nothing, their inputs are checked in
    Python first), and the launcher must do what the prange twin it replaced did, neither more nor
    less: on one share, the kernel's own ValueError."""
    a = np.ones(8)
    a[5] = np.nan
    address = threads.address_of(_share_marks, (0, 1, np.zeros(8), a, 1.0))
    mine = _outcome(lambda out: threads.LAUNCH[3](address, parts, out, a, 1.0), a)
    twin = _outcome(lambda out: _share_marks_twin(parts, out, a, 1.0), a)
    assert mine[0] == twin[0]
    np.testing.assert_array_equal(mine[1], twin[1])
    if parts == 1:
        assert any("ValueError: a NaN in a" in line for line in mine[0]), mine[0]


@numba.njit
def _calls_by_address(address, out, a):
    threads.call_at(address, (np.int64(0), np.int64(1), out, a, 1.0))


def test_a_call_by_address_raises_what_the_callee_raised():
    """Outside prange (a convolution share calling its task) an exception is the callee's own."""
    a = np.ones(8)
    out = np.zeros(8)
    address = threads.address_of(_share_marks, (0, 1, out, a, 1.0))
    _calls_by_address(address, out, a)
    np.testing.assert_array_equal(out, a + 1000)
    a[3] = np.nan
    with pytest.raises(ValueError, match="a NaN in a"):
        _calls_by_address(address, out, a)


def test_every_kernel_argument_count_has_a_launcher():
    """run picks the launcher by the number of arguments; every kernel's count must have one."""
    import inspect

    from minicnn.commands import precompile as pc
    parts = [d for name, d in pc.dispatchers().items() if name.endswith("_part")]
    assert parts
    counts = {len(inspect.signature(d.py_func).parameters) - 2 for d in parts}
    assert counts == set(threads.LAUNCH), (counts, sorted(threads.LAUNCH))


def _in_three_shares(part, *args):
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


DISABLE_JIT_SCRIPT = """
import sys
import numpy as np
import minicnn
from minicnn.kernels.fast import threads
x, w, b = (np.load(sys.argv[1] + f"/{n}.npy") for n in "xwb")
for version in ("serial", "parallel"):
    with threads.only_version(version):
        out = minicnn.conv2d(x, w, b, 2, 1)
        gx, gw, gb = minicnn.conv2d_backward(out, x, w, 2, 1)
        pooled = minicnn.max_pool2d(x, 2)
        np.save(sys.argv[1] + f"/{version}.npy", np.concatenate([a.ravel() for a in (out, gx, gw, gb, pooled)]))
"""


def test_fast_kernels_run_as_python_under_numba_disable_jit(tmp_path):
    """NUMBA_DISABLE_JIT=1 (to step through a kernel in a debugger) runs every kernel as Python: the
    addresses are then the Python functions themselves.  Same results as the compiled kernels."""
    import os
    import subprocess
    import sys

    rng = np.random.default_rng(5)
    x = rng.standard_normal((2, 3, 6, 6))
    w = rng.standard_normal((5, 3, 3, 3))
    b = rng.standard_normal(5)
    for name, a in zip("xwb", (x, w, b)):
        np.save(tmp_path / f"{name}.npy", a)
    env = dict(os.environ, NUMBA_DISABLE_JIT="1")
    done = subprocess.run([sys.executable, "-c", DISABLE_JIT_SCRIPT, str(tmp_path)], env=env,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    out = minicnn.conv2d(x, w, b, 2, 1)
    gx, gw, gb = minicnn.conv2d_backward(out, x, w, 2, 1)
    want = np.concatenate([a.ravel() for a in (out, gx, gw, gb, minicnn.max_pool2d(x, 2))])
    for version in ("serial", "parallel"):
        np.testing.assert_allclose(np.load(tmp_path / f"{version}.npy"), want, rtol=1e-12, atol=1e-12)
