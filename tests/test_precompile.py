"""`minicnn precompile` fills Numba's cache with every CPU kernel, float32 and float64, so that a
fresh process compiles nothing.

The test runs the command in one process; a second, fresh process then reads the cache's index
for every @njit function of minicnn.kernels (and minicnn.argcheck), checks that it holds the
float32 and float64 signatures, and loads every cached signature, which must compile nothing
(no cache misses).  It uses the default cache (the __pycache__ folders next to the kernels,
which the rest of the suite fills too): with an empty private cache the command takes minutes
on a small machine, which benchmarks/cold_start.py measures instead.
"""
import json
import os
import re
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

CHECK = r"""
import json
from minicnn.commands.precompile import cached_signatures, dispatchers, signature_dtypes, takes_floats
found = dispatchers()
before = {name: len(d.signatures) for name, d in found.items()}
cached = {name: cached_signatures(d) for name, d in found.items()}
for name, d in found.items():
    for sig in cached[name]:
        d.compile(sig)
print(json.dumps({
    "before": before,
    "cached": {name: len(sigs) for name, sigs in cached.items()},
    "dtypes": {name: sorted(signature_dtypes(sigs)) for name, sigs in cached.items()},
    "floats": {name: takes_floats(sigs) for name, sigs in cached.items()},
    "misses": {name: sum(d.stats.cache_misses.values()) for name, d in found.items()},
    "hits": {name: sum(d.stats.cache_hits.values()) for name, d in found.items()},
}))
"""


def _env():
    env = dict(os.environ)
    env["PYTHONPATH"] = ROOT + os.pathsep + env.get("PYTHONPATH", "")
    return env


def test_precompile_then_a_fresh_process_compiles_nothing(tmp_path):
    first = subprocess.run([sys.executable, "-m", "minicnn", "precompile"], cwd=tmp_path, env=_env(),
                           capture_output=True, text=True, timeout=1800)
    assert first.returncode == 0, first.stdout + first.stderr
    assert "kernels" in first.stdout and "cache:" in first.stdout
    # what the cache is keyed on (the CPU, and minicnn.simd's choice of vector width) is said
    assert re.search(r"compiled for: \S+; vector width: \S", first.stdout), first.stdout

    second = subprocess.run([sys.executable, "-c", CHECK], cwd=tmp_path, env=_env(), capture_output=True,
                            text=True, timeout=1800)
    assert second.returncode == 0, second.stderr
    got = json.loads(second.stdout.strip().splitlines()[-1])

    # a fresh process starts with nothing compiled: every signature below came from the cache
    assert got["before"] and not any(got["before"].values())
    names = set(got["cached"])
    # the kernels the op table is built from are all among those checked
    for expected in ("minicnn.kernels.fast.conv.correlate_part", "minicnn.kernels.fast.conv._correlate_task",
                     "minicnn.kernels.fast.conv.correlate_per_image_part", "minicnn.kernels.fast.conv.scatter_part",
                     "minicnn.kernels.fast.conv.weight_grad_part", "minicnn.kernels.fast.layout.grad_rows_part",
                     "minicnn.kernels.fast.passes.taps_pass", "minicnn.kernels.fast.layout.split_phases",
                     "minicnn.kernels.fast.pool.max_pool_part", "minicnn.kernels.fast.dense.dense_backward_part",
                     "minicnn.kernels.loops.conv2d_forward", "minicnn.kernels.loops.avg_pool2d_backward",
                     "minicnn.argcheck._finite_sum"):
        assert expected in names
    assert len(names) >= 35
    for name in names:
        assert got["cached"][name] > 0, f"{name}: nothing in the cache"
        if got["floats"][name]:
            assert got["dtypes"][name] == ["float32", "float64"], (name, got["dtypes"][name])
    compiled = {name: n for name, n in got["misses"].items() if n}
    assert compiled == {}, f"compiled again in a fresh process after precompile: {compiled}"
    assert sum(got["hits"].values()) == sum(got["cached"].values())


def test_the_workload_reaches_every_threaded_kernel(monkeypatch):
    """`minicnn precompile` runs its workload once with every multi-threaded kernel's serial version
    and once under its launcher; a kernel the workload never reaches is missing from a fresh
    cache (the per-image correlation was: the check above passes on the suite's shared cache,
    which other tests fill).  Here every `run(part, ...)` of the workload is recorded, with the
    launcher it would use."""
    from minicnn.commands import precompile as pc
    from minicnn.kernels.fast import threads

    reached = set()

    def spy(part, *args):
        reached.add((part.py_func.__module__, part.py_func.__name__, threads.LAUNCH[len(args)].py_func.__name__))
        part(0, 1, *args)

    for mod in ("conv", "layout", "pool", "dense"):
        monkeypatch.setattr(f"minicnn.kernels.fast.{mod}.run", spy)
    pc.workload("float32")
    names = {name for name in pc.dispatchers() if name.endswith("_part")}
    assert names, "no *_part kernels found"
    assert {f"{m}.{p}" for m, p, _ in reached} == names
    launchers = {f"{threads.__name__}.{f.py_func.__name__}" for f in threads.LAUNCH.values()}
    assert {f"{threads.__name__}.{launcher}" for _, _, launcher in reached} == launchers   # each one used
    assert launchers <= set(pc.dispatchers())
