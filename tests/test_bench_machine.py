"""benchmarks/machine.py: the benchmark names the CPU and the ISA it compiled for, and measures an FMA peak
that is positive and physically possible (not a timing assertion on minicnn's speed)."""
import platform
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import machine  # noqa: E402

X86 = platform.machine().lower() in ("x86_64", "amd64")
MAX_GHZ = 6.5          # no CPU core has run faster
FMA_PORTS = 2          # FMA units per core on every x86 core so far


def test_machine_is_named():
    info = machine.describe()
    assert info["cpu_model"].strip()
    assert info["numba_cpu_name"].strip()
    assert info["cpu_count"] >= 1
    if X86:   # the probe's machine code has vfmadd on vector registers (0 would mean none found)
        assert info["vector_bits"] in (128, 256, 512)
        assert "sse4.2" in info["simd"] or "avx" in info["simd"]
    text = "\n".join(machine.summary_lines(info, {1: 10.0, 2: 19.0}))
    assert info["cpu_model"] in text and info["numba_cpu_name"] in text and "per thread" in text


def test_lanes_follow_the_features():
    assert machine.host_lanes(["+avx", "+avx2", "+avx512f"]) == 16
    assert machine.host_lanes(["+avx", "+avx2", "+fma"]) == 8
    assert machine.host_lanes(["+sse4.2"]) == 4
    assert machine.PROBE_FLOATS == machine.CHAINS * machine.host_lanes(machine.numba_target()[1])


def test_fma_probe_is_positive_and_below_a_physical_bound():
    peak = machine.fma_peak(threads=1, reps=50_000, rounds=3)
    bits = machine.vector_bits() or 512
    bound = MAX_GHZ * FMA_PORTS * 2 * (bits // 32)     # GFLOP/s: clock x ports x 2 flops x float32 lanes
    assert 0 < peak < bound, (peak, bound)


def test_cold_start_runs_in_an_empty_directory(tmp_path, monkeypatch):
    """benchmarks/cold_start.py runs each scenario with `python -c`, whose working directory comes
    first on sys.path: a stray module in the shared temp directory (a bisect.py left behind there
    broke every scenario once) must not be imported, and a failing scenario must say why."""
    import cold_start
    (tmp_path / "bisect.py").write_text("raise SystemExit('the stray bisect.py was imported')\n")
    (tmp_path / "numpy.py").write_text("raise SystemExit('the stray numpy.py was imported')\n")
    monkeypatch.setattr(cold_start.tempfile, "tempdir", str(tmp_path))
    cache = tmp_path / "cache"
    cache.mkdir()
    assert cold_start.run_python("import bisect, random, numpy\nprint(0.25)\n", str(cache)) == 0.25
    try:
        cold_start.run_python("import sys\nsys.exit('scenario broke')\n", str(cache))
    except RuntimeError as e:
        assert "scenario broke" in str(e) and "exit 1" in str(e)
    else:
        raise AssertionError("a failing scenario returned a time")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bisect.py", "cache", "numpy.py"]   # cwd removed


class _Clock:
    """A stand-in for time.perf_counter that moves only when a step says so."""

    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


def test_the_benchmark_times_each_backward_after_its_own_forward(monkeypatch):
    """benchmarks/cpu_bench.py: a Prepared call's set-up runs before the clock starts (only the
    backward is timed), and in the conv and pool sections every implementation's backward is
    such a call whose set-up is that implementation's own forward (PyTorch's backward needs its
    forward; the others get theirs so that all find their inputs where their forward left them)."""
    import cpu_bench as cb
    clock = _Clock()
    monkeypatch.setattr(cb.time, "perf_counter", clock)
    order = []

    def step(name, seconds):
        def fn():
            order.append(name)
            clock.now += seconds
        return fn

    timer = cb.Timer(threads=1)
    timer.run("a", cb.Prepared(step("forward", 10.0), step("backward", 0.5)))
    assert order == ["forward", "backward"] and timer.times["a"] == [0.5]

    calls = []
    for name in ("conv2d", "conv2d_backward", "max_pool2d", "max_pool2d_backward", "avg_pool2d",
                 "avg_pool2d_backward"):
        real = getattr(cb.minicnn, name)
        monkeypatch.setattr(cb.minicnn, name, lambda *a, _n=name, _f=real, **k: (calls.append(_n), _f(*a, **k))[1])
    monkeypatch.setattr(cb, "im2col_forward", lambda *a, _f=cb.im2col_forward: (calls.append("im2col"), _f(*a))[1])
    monkeypatch.setattr(cb, "LAYERS", {"tiny": (2, 2, 8, 3, 3, 1, 1)})
    monkeypatch.setattr(cb, "POOL", (2, 2, 8, 2))
    monkeypatch.setattr(cb, "set_threads", lambda n: None)   # leave this process's thread counts alone
    seen = []

    def fake_interleaved(impls, rounds, **kw):
        seen.append(dict(impls))
        return {k: 1e-3 for k in impls}

    monkeypatch.setattr(cb, "interleaved", fake_interleaved)
    cb.conv_section([1], 1, False, {1: 10.0}, lambda row: None, ("tiny",))
    cb.pool_section([1], 1, {1: 10.0}, lambda row: None)
    backward = [impls for impls in seen if any(isinstance(f, cb.Prepared) for f in impls.values())]
    assert len(backward) == 3   # conv, max pool, avg pool
    for impls in backward:
        assert "minicnn" in impls and "loop" in impls
        for name, fn in impls.items():
            assert isinstance(fn, cb.Prepared), name
            if name == "torch":
                continue
            calls.clear()
            fn.prepare()
            assert calls and calls[0] in ("conv2d", "max_pool2d", "avg_pool2d", "im2col"), (name, calls)
            assert not any(c.endswith("_backward") for c in calls), (name, calls)
