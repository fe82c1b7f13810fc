"""minicnn.keep_freed_memory: glibc keeps freed blocks, so new arrays stop page-faulting."""
import subprocess
import sys
import textwrap

import pytest

import minicnn

SCRIPT = textwrap.dedent("""
    import resource, sys
    import numpy as np
    import minicnn
    applied = minicnn.keep_freed_memory() if sys.argv[1] == "keep" else None
    def churn():   # what a training step does: arrays of a few sizes, made, written, dropped
        for n in (300_000, 75_000, 1_000_000, 300_000):
            a = np.empty(n, np.float32)
            a[:] = 1
    churn()
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(50):
        churn()
    print(applied, (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before) / 50)
""")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt: Linux only")
def test_freed_blocks_are_reused_without_page_faults(tmp_path):
    out = subprocess.run([sys.executable, "-c", SCRIPT, "keep"], capture_output=True, text=True, cwd=tmp_path,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    applied, faults = out.stdout.split()
    if applied != "True":
        pytest.skip("no glibc here (musl or another libc): keep_freed_memory reports False and changes nothing")
    # 1.7M floats a round = 1,640 pages; kept blocks are reused: next to no faults
    assert float(faults) < 5, f"{faults} page faults per round with keep_freed_memory()"


@pytest.mark.parametrize("kwargs", [{"mmap_bytes": 0}, {"trim_bytes": -5}, {"mmap_bytes": 2 ** 31},
                                    {"trim_bytes": 1.5}, {"mmap_bytes": True}])
def test_bad_sizes_are_refused(kwargs):
    name = next(iter(kwargs))
    with pytest.raises(ValueError, match=rf"{name} must be a positive int below 2\*\*31 bytes"):
        minicnn.keep_freed_memory(**kwargs)
