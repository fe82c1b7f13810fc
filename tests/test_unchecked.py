"""minicnn/unchecked.py: in a process with NUMBA_BOUNDSCHECK=1 (every course notebook), minicnn's
own kernels are compiled, and so cached, without bounds checks, while the student's functions keep
theirs, even one that calls a library function.  Run in a child process with a private, empty
Numba cache, so that what is compiled there is what gets saved."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

CHILD = textwrap.dedent(r'''
    import json, os
    import numpy as np
    from numba import config, njit
    import minicnn
    from minicnn import argcheck
    from minicnn.kernels import loops

    MESSAGE = "index is out of bounds"       # the text of the IndexError Numba's checks raise

    def checked(dispatcher):
        irs = dispatcher.inspect_llvm()
        assert irs, "nothing was compiled"
        return any(MESSAGE in ir for ir in irs.values())

    @njit
    def students(a, counts, i):
        return a[i] + argcheck._finite_sum(counts)   # a library function, compiled for int64 here

    x = np.ones((1, 1, 6, 6))
    w = np.ones((2, 1, 3, 3))
    minicnn.conv2d(x, w, impl="loop")              # compiles loops.conv2d_forward here
    minicnn.conv2d(x.astype(np.float32), w.astype(np.float32))   # and argcheck's finite check, fp32
    got = {"env": config.BOUNDSCHECK,
           "library_loop": checked(loops.conv2d_forward),
           "library_finite": checked(argcheck._finite_sum),
           "called_from_student": None, "student": None, "student_raises": False}
    try:
        students(np.arange(3.0), np.arange(4), 7)
    except IndexError:
        got["student_raises"] = True
    got["student"] = checked(students)
    got["called_from_student"] = checked(argcheck._finite_sum)
    got["env_after"] = config.BOUNDSCHECK
    print(json.dumps(got))
''')


def test_library_kernels_compile_unchecked_and_the_students_code_keeps_its_checks(tmp_path):
    env = dict(os.environ, NUMBA_BOUNDSCHECK="1", NUMBA_CACHE_DIR=str(tmp_path / "cache"))
    proc = subprocess.run([sys.executable, "-c", CHILD], capture_output=True, text=True, env=env, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    got = json.loads(proc.stdout.strip().splitlines()[-1])
    assert got["env"] == 1 and got["env_after"] == 1            # the notebook's setting stands
    assert got["student"] is True and got["student_raises"] is True
    assert got["library_loop"] is False
    assert got["library_finite"] is False
    assert got["called_from_student"] is False


def test_without_minicnns_listener_the_library_would_be_checked(tmp_path):
    """The control: the same child with the listener removed compiles checked library kernels
    (so the test above can fail, and NUMBA_BOUNDSCHECK is what it says it is)."""
    child = CHILD.replace("import minicnn\n", "import minicnn\nfrom numba.core import event\n"
                          "event.unregister('numba:compile', minicnn.unchecked.install())\n", 1)
    env = dict(os.environ, NUMBA_BOUNDSCHECK="1", NUMBA_CACHE_DIR=str(tmp_path / "cache"))
    proc = subprocess.run([sys.executable, "-c", child], capture_output=True, text=True, env=env, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    got = json.loads(proc.stdout.strip().splitlines()[-1])
    assert got["library_loop"] is True and got["library_finite"] is True and got["student"] is True
    assert got["called_from_student"] is True


def test_the_listener_restores_the_setting_when_a_compile_fails():
    from numba import config, njit
    from numba.core import errors

    import minicnn.unchecked as unchecked

    listener = unchecked.install()
    before = config.BOUNDSCHECK

    @njit
    def broken(a):
        return a.no_such_attribute

    broken.py_func.__module__ = "minicnn.fake_library_module"   # taken for a library function
    try:
        broken(1.0)
    except errors.TypingError:
        pass
    assert config.BOUNDSCHECK == before and listener.stack == []
