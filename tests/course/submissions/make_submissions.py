"""Write the student submissions of assignment a1_convolution that the batch grader's tests grade.

    python tests/course/submissions/make_submissions.py            # (re)write the notebooks
    python tests/course/submissions/make_submissions.py --check    # and check correct.ipynb

Every submission is the instructor's solution, filled into the release notebook, plus a list
of named changes; no solution code is typed here.  Writes, next to this file:

- `correct.ipynb`: the release notebook (exercises/) with every solution code cell filled in
  from the instructor's notebook (solutions/), the `### BEGIN/END SOLUTION` lines removed;
  `correct_again.ipynb`, the same work handed in by a second student.
- one notebook per entry of HOSTILE below: `correct.ipynb` with the entry's changes, which
  attack the grader (endless loops, crashes, floods, fork and memory bombs, stray processes,
  patched libraries, forged results, reads of other people's files) or are simply broken;
- `unreadable.ipynb` (not JSON) and `stub.ipynb` (the release, nothing filled in);
- `expected.json`: for every notebook, per test cell, the fewest points it must get ("min") and
  the most it can honestly earn ("max"), plus "functions_correct".

A change is data, applied to the solution cells (found by their nbgrader grade_id, with the
solution markers still in them) in the order listed:
- Edit(cell, old, new): `old` must occur exactly once in the cell (as in minicnn's mutants),
  else StaleChange: the change must follow the solution;
- Body(cell, code) / first_in_body(cell, code): the function's body between the solution markers
  replaced by `code`, or `code` put first in it (Body with keep=True);
- Insert(cell, code, where): attack code put before or after the cell's code (cell level);
- Standalone(cell): the function stops calling the other solution functions: renamed copies
  of those it calls (`_zero_pad`, `_correlate2d`), taken from the solution, go first in its cell;
- Tests(source): every test cell replaced by `source`, or deleted (source None).
Attack code (print floods, fork bombs, patched numpy, ...) is not solution code and is written
here, one snippet per attack.

How the grader is assumed to work: it runs a submission's code cells in a sandbox, except the
test cells, and scores each part by calling the student's function from outside on inputs of its
own (fresh copies for every call) and comparing outside. So the points follow the *functions*;
the code of the attacks runs at cell level or inside the functions.

"functions_correct" lists the functions that, once the notebook's cells have run, exist and are
the correct solution (or the solution made standalone) doing nothing else. A function listed
there can still have a "min" of 0: when the notebook's other code may legitimately cost it its
points under the grader's resource limits (memory, processes, output, time).

Knock-on effects are avoided on purpose: in the solution correlate2d calls zero_pad and
convolve2d calls correlate2d, so where one of those is sabotaged, the functions that should stay
correct are made Standalone.

The "wrong constant" returned by the wrong array functions is np.full((1, 1), 0.5), not zeros:
every expected value of the a1 parts is an integer, and some random cases (a kernel as large as
the input) expect a 1x1 array that can be 0; a 0.5 can never match.

Nothing here executes a submission.
"""
from __future__ import annotations

import copy
import json
import re
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path

import nbformat

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[2]
RELEASE = ROOT / "exercises" / "a1_convolution" / "a1_convolution.ipynb"
SOURCE = ROOT / "solutions" / "a1_convolution" / "a1_convolution.ipynb"

FUNCS = ("output_size", "param_count", "zero_pad", "correlate2d", "convolve2d")
POINTS = {"test_output_size": 2, "test_param_count": 2, "test_zero_pad": 2, "test_zero_pad_compiled": 1,
          "test_correlate2d": 4, "test_correlate2d_compiled": 1, "test_convolve2d": 2,
          "test_convolve2d_compiled": 1}
TESTS_OF = {"output_size": ("test_output_size",), "param_count": ("test_param_count",),
            "zero_pad": ("test_zero_pad", "test_zero_pad_compiled"),
            "correlate2d": ("test_correlate2d", "test_correlate2d_compiled"),
            "convolve2d": ("test_convolve2d", "test_convolve2d_compiled")}
BEGIN, END = "### BEGIN SOLUTION", "### END SOLUTION"


def code(text: str) -> str:
    return textwrap.dedent(text).strip("\n") + "\n"


# ------------------------------------------------------------------ changes

class StaleChange(Exception):
    """A change no longer fits the solution cell it names (the solution has changed)."""


def replace_once(source: str, old: str, new: str, where: str) -> str:
    # The discipline of minicnn's mutants (course verify), written here rather than imported:
    # these fixtures must not depend on where the grader's modules live, and the error names
    # this file.
    count = source.count(old)
    if count != 1:
        raise StaleChange(f"{where}: {old!r} occurs {count} times (expected exactly once); "
                          "update tests/course/submissions/make_submissions.py to follow the solution")
    return source.replace(old, new)


def body_span(source: str, where: str) -> tuple[int, int, str]:
    """(start, end, indent) of the function body between the solution markers: source[start:end]
    is the body's lines, `indent` the markers' indentation."""
    begin = re.search(rf"^( *){re.escape(BEGIN)}\n", source, re.M)
    end = re.search(rf"^ *{re.escape(END)}\n?", source, re.M)
    if not begin or not end or end.start() < begin.end():
        raise StaleChange(f"{where}: no {BEGIN!r} ... {END!r} lines in the cell")
    return begin.end(), end.start(), begin.group(1)


@dataclass(frozen=True)
class Edit:
    """`old` (exactly once in the solution cell) becomes `new`."""
    cell: str
    old: str
    new: str

    def apply(self, cells: dict, sols: dict, where: str) -> None:
        cells[self.cell] = replace_once(cells[self.cell], self.old, self.new, f"{where}, cell {self.cell!r}")


@dataclass(frozen=True)
class Body:
    """The function's body (between the solution markers) becomes `code`; with keep=True,
    `code` goes first in the body and the solution's lines follow it."""
    cell: str
    code: str
    keep: bool = False

    def apply(self, cells: dict, sols: dict, where: str) -> None:
        src = cells[self.cell]
        start, end, indent = body_span(src, f"{where}, cell {self.cell!r}")
        rest = src[start:] if self.keep else src[end:]
        cells[self.cell] = src[:start] + textwrap.indent(code(self.code), indent) + rest


@dataclass(frozen=True)
class Insert:
    """Code at cell level, before or after the cell's code."""
    cell: str
    code: str
    where: str = "after"

    def apply(self, cells: dict, sols: dict, where: str) -> None:
        src = cells[self.cell].rstrip("\n") + "\n"
        if self.where == "before":
            cells[self.cell] = self.code.rstrip("\n") + "\n\n" + src
        else:
            cells[self.cell] = src + "\n\n" + self.code


@dataclass(frozen=True)
class Standalone:
    """The function calls no other solution function: a renamed copy of each function it calls
    (directly or not), as the solution writes it, goes first in its cell."""
    cell: str

    def apply(self, cells: dict, sols: dict, where: str) -> None:
        needed = calls(self.cell, sols)
        if not needed:
            raise StaleChange(f"{where}: {self.cell} calls no other solution function")
        copies = [rename(sols[f], needed) for f in reversed(needed)]   # the deepest first
        cells[self.cell] = "\n\n".join(copies) + "\n\n" + rename(cells[self.cell], needed)


@dataclass(frozen=True)
class Tests:
    """Every test cell becomes `source`, or is deleted (None)."""
    source: str | None

    def apply(self, cells: dict, sols: dict, where: str) -> None:
        pass                                # the test cells are not solution cells: see submission()


def call_pattern(name: str) -> str:
    return rf"(?<![\w.]){re.escape(name)}\("


def calls(func: str, sols: dict) -> list:
    """The solution functions that `func`'s solution calls, directly or through others, nearest first."""
    found, todo = [], [func]
    while todo:
        caller = todo.pop(0)
        body = sols[caller].replace(f"def {caller}(", "")
        for other in FUNCS:
            if other != func and other not in found and re.search(call_pattern(other), body):
                found.append(other)
                todo.append(other)
    return found


def rename(source: str, names) -> str:
    """`source` with every call and definition of the given functions renamed `_name`."""
    for name in names:
        source = re.sub(call_pattern(name), f"_{name}(", source)
    return source


def add_lines(cell: str, anchor: str, before: str = "", after: str = "") -> Edit:
    """Lines put just before or just after the line `anchor` (exactly once in the cell)."""
    return Edit(cell, anchor, before + anchor + after)


def first_in_body(cell: str, text: str) -> Body:
    """`text` runs first in the function, before the solution's lines."""
    return Body(cell, text, keep=True)


def uncompiled(cell: str) -> Edit:
    """The function without its @njit: plain Python."""
    return Edit(cell, "@njit\n", "")


def wrong(cell: str) -> list:
    """The function (plain Python, no builtins used: patch_builtins replaces them) always answers wrong."""
    if cell in ("output_size", "param_count"):
        return [Body(cell, "return 0")]
    return [uncompiled(cell), Body(cell, "return np.full((1, 1), 0.5)")]


WRONG = [change for cell in FUNCS for change in wrong(cell)]


# ------------------------------------------------------------------ attack code (cell level or inside a function)

MEMORY_HOARD = code('''
    # cell level: keep up to 10 GB alive in this process, stopping quietly at a memory limit
    hoard = []
    try:
        for _ in range(100):
            hoard.append(bytearray(100 * 1024 ** 2))
    except MemoryError:
        pass
    print(f"holding {len(hoard)} blocks of 100 MB")
''')

PRINT_FLOOD = code('''
    # cell level: 3,000,000 lines of 100 characters (about 300 MB of output)
    line = "x" * 100
    for _ in range(3_000_000):
        print(line)
''')

THREADS_CELL = code('''
    # cell level: ask Numba for 100000 threads
    import numba
    try:
        numba.set_num_threads(100000)
    except Exception as exc:
        print("set_num_threads refused:", type(exc).__name__, exc)
''')

SETSID_CELL = code('''
    # cell level: leave processes behind, in sessions of their own, that outlive the kernel
    import os, subprocess, sys, time
    try:
        subprocess.Popen(["sleep", "987654"], start_new_session=True)
    except Exception as exc:
        print("Popen failed:", type(exc).__name__, exc)
    try:
        pid = os.fork()
        if pid == 0:                        # child: a new session, fork once more, and go
            try:
                os.setsid()
                if os.fork() == 0:          # grandchild: orphaned; 987653 is in its command line
                    try:
                        os.execv(sys.executable, [sys.executable, "-c", "import time; time.sleep(987653)"])
                    except OSError:
                        time.sleep(987653)
            finally:
                os._exit(0)
        os.waitpid(pid, 0)
    except Exception as exc:
        print("fork failed:", type(exc).__name__, exc)
''')

SEGFAULT = code('''
    import ctypes
    ctypes.string_at(0)                     # reads address 0: SIGSEGV
''')

PATCH_TESTING = code('''
    # cell level: numpy's assertions never fail any more
    import numpy.testing
    def _never_fails(*args, **kwargs):
        return None
    numpy.testing.assert_allclose = _never_fails
    numpy.testing.assert_array_equal = _never_fails
    numpy.testing.assert_equal = _never_fails
''')

PATCH_ALLCLOSE = code('''
    # cell level: numpy's comparisons always say "equal"
    def _all_true(a, b, *args, **kwargs):
        try:
            return np.ones(np.broadcast(np.asarray(a), np.asarray(b)).shape, dtype=bool)
        except ValueError:
            return np.True_
    np.allclose = lambda *args, **kwargs: True
    np.array_equal = lambda *args, **kwargs: True
    np.isclose = _all_true
''')

# In the last solution cell, so that the cells before it run with the real builtins.
PATCH_BUILTINS = code('''
    # cell level: isinstance, len, abs and round lie for everybody in this process
    import builtins
    builtins.isinstance = lambda obj, classes: True
    builtins.len = lambda obj: 0
    builtins.abs = lambda x: 0
    builtins.round = lambda x, ndigits=None: 0
''')

PATCH_MINICNN = code('''
    # cell level: make minicnn's reference answers, kernels and comparisons agree with the wrong
    # functions, and call every function compiled, in whatever module of minicnn they live
    import sys
    for name in ("minicnn", "minicnn.conv", "minicnn.shapes", "minicnn.course.checks"):
        try:
            __import__(name)
        except Exception as exc:
            print("import failed:", name, type(exc).__name__, exc)
    try:
        import minicnn.kernels
    except Exception as exc:
        print("import failed: minicnn.kernels", type(exc).__name__, exc)
    def _size(*args, **kwargs):
        return 0
    def _array(*args, **kwargs):
        return np.full((1, 1), 0.5)
    def _kernel(*args, **kwargs):
        return np.full((1, 1, 1, 1), 0.5)   # conv2d(...)[0, 0] is then the wrong (1, 1) array
    def _match(*args, **kwargs):
        return None                        # "no mismatch"
    def _compiled(*args, **kwargs):
        return True, ""                    # "an @njit function"
    FAKES = {"conv_output_size": _size, "conv2d_param_count": _size, "correlate2d": _array,
             "convolve2d": _array, "pad2d": _array, "compare_arrays": _match, "compare_exact": _match,
             "compiled_status": _compiled}
    patched = 0
    for module_name, module in list(sys.modules.items()):
        if module is None or module_name.split(".")[0] != "minicnn":
            continue
        for name, value in list(vars(module).items()):
            try:
                if name in FAKES and callable(value):
                    setattr(module, name, FAKES[name])
                    patched += 1
                elif name == "KERNELS" and isinstance(value, dict):
                    for table in value.values():
                        for op in list(table):
                            table[op] = _kernel
                            patched += 1
                elif name == "PARTS" and isinstance(value, dict):
                    for part in value.values():   # the parts keep their own reference to compare_exact
                        object.__setattr__(part, "compare", _match)
                        patched += 1
            except Exception as exc:
                print("could not patch", module_name, name, type(exc).__name__)
    print("patched", patched, "names in minicnn")
''')

INPUT_TRANSFORMER = code('''
    # cell level: rewrite every later cell that calls check(...) into its full points
    import re
    def _full_marks(lines):
        text = "".join(lines)
        if "check(" in text or "check_compiled(" in text:
            points = re.search(r"points=(\\d+)", text)
            return [(points.group(1) if points else "2") + "\\n"]   # the cell's value: its points
        return lines
    try:
        get_ipython().input_transformers_cleanup.append(_full_marks)
    except NameError:
        print("no IPython here")
''')

READ_SOURCES = code('''
    # cell level: look for the instructor's notebook (hidden seeds) and nbgrader's source/ folder
    import os, re
    import minicnn, minicnn.course
    TARGET = "solutions/a1_convolution/a1_convolution.ipynb"
    def _read(path):
        try:
            with open(path, encoding="utf-8", errors="replace") as f:
                text = f.read()
        except Exception as exc:
            print("READ-BLOCKED", path, type(exc).__name__)
            return
        print("READ-OK", path, "seeds:", re.findall(r"seed = (\\d+)", text))
    try:
        _read(str(minicnn.course.course_root() / TARGET))
    except Exception as exc:
        print("READ-BLOCKED course_root()", type(exc).__name__)
    _read(os.path.dirname(minicnn.__file__) + "/../" + TARGET)
    here = os.path.abspath(os.getcwd())
    while True:
        if os.path.exists(os.path.join(here, TARGET)):
            _read(os.path.join(here, TARGET))
        if os.path.isdir(os.path.join(here, "source")):
            print("FOUND", os.path.join(here, "source"))
            _read(os.path.join(here, "source", "a1_convolution", "a1_convolution.ipynb"))
        if os.path.dirname(here) == here:
            break
        here = os.path.dirname(here)
''')

READ_OTHERS = code('''
    # cell level: look for other students' work and the gradebook, and read one of them
    import os
    WANTED = {"submitted", "autograded", "feedback", "gradebook.db"}
    seen, found = set(), []
    def _look(top, max_depth=6):
        for root, dirs, files in os.walk(top):
            depth = 0 if root == top else len(os.path.relpath(root, top).split(os.sep))
            if root in seen or len(seen) > 20000 or depth >= max_depth:
                dirs[:] = []
            dirs[:] = [d for d in dirs if os.path.join(root, d) not in ("/proc", "/sys")]
            if root in seen:
                continue
            seen.add(root)
            found.extend(os.path.join(root, name) for name in dirs + files if name in WANTED)
    here = os.path.abspath(os.getcwd())
    tops = [here, "/tmp"]
    while os.path.dirname(here) != here:
        here = os.path.dirname(here)
        tops.append(here)                 # the parent folders, up to /
    for top in tops:
        try:
            _look(top)
        except Exception as exc:
            print("BLOCKED", top, type(exc).__name__)
    for path in found:
        print("FOUND", path)
    mine = os.path.abspath(os.getcwd())
    others = []                           # notebooks handed in by somebody else
    for folder in found:
        if os.path.basename(folder) in ("submitted", "autograded"):
            for root, _, files in os.walk(folder):
                if not root.startswith(mine):
                    others += [os.path.join(root, name) for name in files if name.endswith(".ipynb")]
    for path in others[:3]:
        try:
            with open(path, "rb") as f:
                f.read()
            print("READ-OK", path)
        except Exception as exc:
            print("READ-BLOCKED", path, type(exc).__name__)
''')

FAKE_GRADEBOOK = code('''
    # cell level: spoil its own class's gradebook.db wherever under /tmp it is (the course folder that
    # holds submitted/fake_gradebook; other courses on the machine are left alone, so that a test run
    # beside this one keeps its gradebook), and leave forged results behind
    import json, os, sqlite3
    GARBAGE = b"\\x00\\xffthis is not a database\\n" * 64
    for root, dirs, files in os.walk("/tmp"):
        if root != "/tmp" and len(os.path.relpath(root, "/tmp").split(os.sep)) >= 6:
            dirs[:] = []
        if "gradebook.db" in files and os.path.isdir(os.path.join(root, "submitted", "fake_gradebook")):
            path = os.path.join(root, "gradebook.db")
            try:
                with open(path, "r+b") as f:
                    f.write(GARBAGE)
                    f.truncate()
                print("OVERWROTE", path)
            except Exception as exc:
                print("BLOCKED", path, type(exc).__name__)
    try:                                  # a forged gradebook, as sqlite, here ...
        if os.path.exists("gradebook.db"):
            os.remove("gradebook.db")
        db = sqlite3.connect("gradebook.db")
        db.execute("CREATE TABLE grade (name TEXT, auto_score REAL, max_score REAL)")
        db.executemany("INSERT INTO grade VALUES (?, ?, ?)",
                       [("test_output_size", 2, 2), ("test_param_count", 2, 2), ("test_zero_pad", 2, 2),
                        ("test_zero_pad_compiled", 1, 1), ("test_correlate2d", 4, 4),
                        ("test_correlate2d_compiled", 1, 1), ("test_convolve2d", 2, 2),
                        ("test_convolve2d_compiled", 1, 1)])
        db.commit()
        db.close()
        print("WROTE gradebook.db (sqlite)")
    except Exception as exc:
        print("BLOCKED gradebook.db", type(exc).__name__)
    forged = {"/tmp/gradebook.db": GARBAGE,   # ... and garbage in /tmp
              "results.json": json.dumps({"a1_convolution": {"score": 15, "max_score": 15}}).encode(),
              "grades.csv": b"assignment,student,score,max_score\\na1_convolution,me,15,15\\n",
              "feedback.html": b"<html><body><h1>a1_convolution: 15 / 15</h1></body></html>\\n"}
    for path, data in forged.items():
        try:
            with open(path, "wb") as f:
                f.write(data)
            print("WROTE", path)
        except Exception as exc:
            print("BLOCKED", path, type(exc).__name__)
''')

NETWORK = code('''
    # cell level: try to reach the internet
    import socket
    for host, port in [("pypi.org", 443), ("151.101.0.223", 443)]:
        try:
            socket.create_connection((host, port), timeout=3).close()
            print(f"NET-OK {host}:{port}")
        except Exception as exc:
            print(f"NET-BLOCKED {host}:{port} {exc!r}")
''')

FILL_TMP = code('''
    # cell level: fill /tmp (and the temp folder) with 64 MiB files, at most 16 each; never deleted
    import os, tempfile
    block = b"\\xa5" * (64 * 1024 * 1024)
    for folder, prefix in [("/tmp", "minicnn-hostile-fill-"),
                           (tempfile.gettempdir(), "minicnn-hostile-fill-tempdir-")]:
        written = 0
        try:
            for i in range(16):
                with open(os.path.join(folder, f"{prefix}{i}"), "wb") as f:
                    f.write(block)
                written += 1
        except Exception as exc:
            print("stopped:", type(exc).__name__, exc)
        print(f"wrote {written} files of 64 MiB in {folder}")
''')

FORK_BOMB = code('''
    import os
    while True:
        try:
            os.fork()
        except OSError:
            pass                            # the process limit: keep trying
''')

THREADS_IN_CALL = code('''
    import threading, time
    for _ in range(100000):
        try:
            threading.Thread(target=time.sleep, args=(60,)).start()
        except RuntimeError:
            continue                        # "can't start new thread": keep going
''')

NO_BOUNDSCHECK = code('''
    import os
    os.environ["NUMBA_BOUNDSCHECK"] = "0"   # undo the setup cell's safety net (read at each compile)
''')

FAKE_JIT = code('''
    import numba as _nb
    _nb.njit = lambda f=None, **kw: f if callable(f) else (lambda g: g)    # "@njit" now does nothing
    import importlib
    importlib.import_module("minicnn.course." + "inspection").compiled_status = lambda *a, **k: (True, "")
    from numba import njit                  # the no-op, under numba's own name
''')

SWAP_FOR_PY_FUNC = code('''
    import importlib
    importlib.import_module("minicnn.course." + "inspection").compiled_status = lambda *a, **k: (True, "")
    globals()["convolve2d"] = convolve2d.py_func      # the plain Python function, under the same name


    def _swap():
        global zero_pad_copy
        zero_pad_copy = zero_pad
    _swap()
''')

SUBPROCESS_REFERENCE = code('''
    # convolve2d hands its work to a new Python, whose minicnn has no tripwires (found 2026-12-02:
    # earned every case point of the part, as the tripwires live in the runner's memory only)
    import pickle as _pickle, subprocess as _sp, sys as _sys

    _CHILD = ("import pickle, sys, minicnn; a = pickle.load(sys.stdin.buffer); "
              "sys.stdout.buffer.write(pickle.dumps(minicnn.convolve2d(*a, impl='loop')))")


    def convolve2d(image, kernel, stride, padding):
        done = _sp.run([_sys.executable, "-c", _CHILD], input=_pickle.dumps((image, kernel, stride, padding)),
                       capture_output=True, timeout=60, check=True)
        return _pickle.loads(done.stdout)
''')

SUBPROCESS_SERVER = code('''
    # cell level: a helper Python started before any graded call, with minicnn free of tripwires;
    # correlate2d (redefined after its cell) sends its arguments down a pipe and reads the answer
    import pickle as _pickle, subprocess as _sp, sys as _sys

    _SERVER = ("import pickle, sys, minicnn\\n"
               "while True:\\n"
               "    a = pickle.load(sys.stdin.buffer)\\n"
               "    pickle.dump(minicnn.correlate2d(*a, impl='loop'), sys.stdout.buffer)\\n"
               "    sys.stdout.buffer.flush()\\n")
    _helper = _sp.Popen([_sys.executable, "-c", _SERVER], stdin=_sp.PIPE, stdout=_sp.PIPE)
''')

SERVED_CORRELATE = code('''
    def correlate2d(image, kernel, stride, padding):
        _pickle.dump((image, kernel, stride, padding), _helper.stdin)
        _helper.stdin.flush()
        return _pickle.load(_helper.stdout)
''')

ALWAYS_EQUAL = code('''
    class Always:
        """Equal to everything, 7 as a number."""
        def __eq__(self, other):
            return True
        def __ne__(self, other):
            return False
        def __int__(self):
            return 7
        def __index__(self):
            return 7
        def __float__(self):
            return 7.0
        def __hash__(self):
            return 0
''')

ARRAY_LIAR = code('''
    class ArrayLiar(Always):
        """Turns into a wrong array, and is equal to everything."""
        def __array__(self, dtype=None, copy=None):
            return np.full((1, 1), 0.5, dtype=dtype)
''')

NDARRAY_LIAR = code('''
    class Liar(np.ndarray):
        def __array_finalize__(self, obj):
            pass
        def __eq__(self, other):
            return True
        def __ne__(self, other):
            return False
        def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
            return True                     # np.isclose, np.equal, np.subtract, ...: "True"
''')


# ------------------------------------------------------------------ the hostile and broken submissions
#
# Each entry: "about" (one line); "changes": the changes above, applied in order;
# "zero": functions whose parts can earn nothing (max 0);
# "shaky": functions whose parts may lose points to resource limits (min 0, max full), or "all";
# "altered": functions that answer correctly but are not the clean solution (left out of
#            functions_correct);
# "override": {test grade_id: (min, max)} where the rules above do not fit.
# Every other part: min = max = full points.

def wrong_with(attack: str, cell: str, about: str) -> dict:
    """Every function wrong, plus `attack` after `cell`'s code: the attack must earn nothing."""
    return dict(about=about, changes=WRONG + [Insert(cell, attack)], zero=list(FUNCS))


HOSTILE = {
    # ---- functions that never return, or take the process down
    "loop_python": dict(about="output_size spins forever in Python before computing",
        changes=[first_in_body("output_size", "while True:\n    pass\n")],
        zero=["output_size"]),
    "loop_njit": dict(about="zero_pad (@njit) loops forever in compiled code, writing into its output",
        changes=[add_lines("zero_pad", "    for i in range(h):\n",
                           before="    while True:                 # compiled: no KeyboardInterrupt can stop it\n"
                                  "        out[0, 0] += 1.0\n"),
                 Standalone("correlate2d")],
        zero=["zero_pad"]),
    "recursion": dict(about="output_size calls itself without end (RecursionError)",
        changes=[Body("output_size", "return output_size(n, k, stride, padding) + 0\n")],
        zero=["output_size"]),
    "memory_bomb": dict(about="param_count allocates 8 GiB before answering; its cell hoards 10 GB",
        changes=[first_in_body("param_count", "x = bytearray(8 * 1024 ** 3)      # 8 GiB, zero-filled: every page touched\n"),
                 Insert("param_count", MEMORY_HOARD)],
        zero=["param_count"], shaky="all"),
    "print_flood_python": dict(about="3,000,000 lines of 100 characters printed at cell level; functions correct",
        changes=[Insert("output_size", PRINT_FLOOD)],
        shaky="all"),
    "print_flood_njit": dict(about="correlate2d (@njit) prints 2000 lines per output element, then returns the right answer",
        changes=[add_lines("correlate2d", "            out[i, j] = total\n",
                           after="            for r in range(2000):   # printed from compiled code, straight to fd 1\n"
                                 "                print(i, j, total)\n"),
                 Standalone("convolve2d")],
        shaky=["correlate2d"], altered=["correlate2d"]),
    "fork_bomb": dict(about="param_count forks without end (every child forks too), retrying when refused",
        changes=[first_in_body("param_count", FORK_BOMB)],
        zero=["param_count"], shaky="all"),
    "thread_explosion": dict(about="numba.set_num_threads(100000), a parallel correlate2d, 100000 sleeping threads in param_count",
        changes=[first_in_body("param_count", THREADS_IN_CALL),
                 Insert("correlate2d", "from numba import prange\n\n", "before"),
                 Edit("correlate2d", "@njit\n", "@njit(parallel=True)\n"),
                 Edit("correlate2d", "for i in range(out_h):", "for i in prange(out_h):"),
                 Insert("correlate2d", THREADS_CELL)],
        shaky="all", altered=["param_count"]),
    "setsid_child": dict(about="cell level: `sleep 987654` in a new session and a double-forked setsid child sleeping 987653",
        changes=[Insert("output_size", SETSID_CELL)],
        shaky="all"),
    "segfault": dict(about="correlate2d is plain Python reading address 0; zero_pad writes far out of bounds unchecked",
        changes=[uncompiled("correlate2d"), first_in_body("correlate2d", SEGFAULT),
                 Standalone("convolve2d"),
                 Insert("zero_pad", NO_BOUNDSCHECK, "before"),
                 Edit("zero_pad", "@njit\n", "@njit(boundscheck=False)\n"),
                 add_lines("zero_pad", "    return out\n",
                           before="    out[10 ** 9, 10 ** 9] = 1.0          # gigabytes past the end: SIGSEGV\n")],
        zero=["zero_pad", "correlate2d"], shaky=["convolve2d"]),
    "kill_self": dict(about="output_size sends SIGKILL to its own process",
        changes=[first_in_body("output_size", "import os, signal\nos.kill(os.getpid(), signal.SIGKILL)\n")],
        zero=["output_size"]),
    "sys_exit": dict(about="the output_size cell starts with sys.exit(0), so output_size is never defined",
        changes=[Insert("output_size", "import sys; sys.exit(0)\n", "before")],
        zero=["output_size"]),
    "os_exit": dict(about="the first solution cell starts with os._exit(0): the process ends, nothing after it runs",
        changes=[Insert("output_size", "import os; os._exit(0)\n", "before")],
        zero=list(FUNCS)),
    # ---- wrong functions that try to make the checking say "right"
    "patch_testing": wrong_with(
        PATCH_TESTING, "output_size",
        "numpy.testing's assert_allclose/assert_array_equal/assert_equal made no-ops; functions wrong"),
    "patch_allclose": wrong_with(
        PATCH_ALLCLOSE, "output_size",
        "np.allclose/np.isclose/np.array_equal always true; functions wrong"),
    "patch_builtins": wrong_with(
        PATCH_BUILTINS, "convolve2d",
        "builtins isinstance/len/abs/round replaced by liars (in the last solution cell); functions wrong"),
    "patch_minicnn": dict(about="minicnn's reference functions, kernel tables, compare and compiled-status functions patched "
              "wherever they live; functions wrong",
        changes=WRONG + [Insert("output_size", PATCH_MINICNN)],
        zero=list(FUNCS)),
    "input_transformer": wrong_with(
        INPUT_TRANSFORMER, "output_size",
        "an IPython input transformer turns later check cells into their full points; functions wrong"),
    # ---- honest but careless: right answers, nothing compiled (found 2026-12-02: such notebooks lost
    #      correctness points, their @njit helper, or the grader's compiled stand-in for correlate2d,
    #      being compiled for the first time inside the call's child, where Numba's own optional import
    #      of scipy was taken for the student's)
    "no_njit": dict(about="careless, honest: the solution with every @njit taken off (plain Python); answers right",
        changes=[uncompiled("zero_pad"), uncompiled("correlate2d"), uncompiled("convolve2d")],
        altered=["zero_pad", "correlate2d", "convolve2d"],
        override={"test_zero_pad_compiled": (0, 0), "test_correlate2d_compiled": (0, 0),
                  "test_convolve2d_compiled": (0, 0)}),
    "plain_wrapper": dict(about="honest: zero_pad is a plain-Python wrapper around an @njit helper of the solution's code",
        changes=[Standalone("correlate2d"), Edit("zero_pad", "def zero_pad(", "def zero_pad_core("),
                 Insert("zero_pad", "def zero_pad(image, p):\n    return zero_pad_core(image, p)\n")],
        altered=["zero_pad", "correlate2d"],
        override={"test_zero_pad_compiled": (0, 0)}),
    # ---- plain Python passed off as compiled (found 2026-12-02: each earned the compiled points)
    "fake_jit": dict(about="numba.njit replaced by a no-op through an alias and the runner's compiled_status patched; "
              "answers right, nothing compiled",
        changes=[Insert("zero_pad", FAKE_JIT, "before")],
        altered=["zero_pad", "correlate2d", "convolve2d"],
        override={"test_zero_pad_compiled": (0, 0), "test_correlate2d_compiled": (0, 0),
                  "test_convolve2d_compiled": (0, 0)}),
    "swap_py_func": dict(about="convolve2d swapped for its .py_func through globals(), compiled_status patched; answers right",
        changes=[Insert("convolve2d", SWAP_FOR_PY_FUNC)],
        altered=["convolve2d"],
        override={"test_zero_pad_compiled": (0, 0), "test_correlate2d_compiled": (0, 0),
                  "test_convolve2d_compiled": (0, 0)}),
    # ---- the work handed to a new Python, whose minicnn has no tripwires (found 2026-12-02)
    "subprocess_reference": dict(about="convolve2d runs minicnn's convolve2d in a new Python started by the call",
        changes=[Insert("convolve2d", SUBPROCESS_REFERENCE)],
        zero=["convolve2d"]),
    "subprocess_server": dict(about="cell level: a helper Python with minicnn started before the calls; "
                              "correlate2d sends it its arguments",
        changes=[Standalone("convolve2d"), Insert("zero_pad", SUBPROCESS_SERVER),
                 Insert("correlate2d", SERVED_CORRELATE)],
        zero=["correlate2d"]),
    "deleted_tests": dict(about="every test cell deleted; functions correct",
        changes=[Tests(None)]),
    "edited_tests": dict(about='every test cell replaced by print("full marks"); functions wrong',
        changes=WRONG + [Tests('print("full marks")\n')],
        zero=list(FUNCS)),
    "lying_eq": dict(about="output_size/param_count return an object equal to everything; correlate2d an __array__ liar",
        changes=[Insert("output_size", ALWAYS_EQUAL, "before"), Body("output_size", "return Always()\n"),
                 Body("param_count", "return Always()\n"),
                 uncompiled("correlate2d"), Insert("correlate2d", ARRAY_LIAR, "before"),
                 Body("correlate2d", "return ArrayLiar()\n"),
                 Standalone("convolve2d")],
        zero=["output_size", "param_count", "correlate2d"]),
    "ndarray_subclass": dict(about="zero_pad (plain Python) returns zeros viewed as an ndarray subclass whose comparisons say True",
        changes=[uncompiled("zero_pad"), Insert("zero_pad", NDARRAY_LIAR, "before"),
                 Edit("zero_pad", "    return out\n",
                      "    return np.zeros_like(out).view(Liar)   # right shape, no image in it\n"),
                 Standalone("correlate2d")],
        zero=["zero_pad"]),
    # ---- plainly wrong results
    "wrong_dtype_shape": dict(about="correlate2d: right values as int8, transposed; convolve2d: float16 with an extra axis; output_size a float",
        changes=[Edit("output_size", "return (n + 2 * padding - k) // stride + 1",
                      "return float((n + 2 * padding - k) // stride + 1)"),
                 Edit("correlate2d", "    return out\n", "    return out.astype(np.int8).T\n"),
                 Standalone("convolve2d"),
                 Edit("convolve2d", "def convolve2d(", "def _convolve2d("),
                 Insert("convolve2d", code('''
                     def convolve2d(image, kernel, stride, padding):
                         return _convolve2d(image, kernel, stride, padding).astype(np.float16)[np.newaxis]
                 '''))],
        zero=["output_size", "convolve2d"], altered=["correlate2d"],
        # A 1x1 output (kernel as large as the input) or a symmetric one, with values in -128..127,
        # is right as int8 and transposed, and minicnn's compare_arrays checks values, not dtypes:
        # 3 of 21 public cases pass (less than half: no compiled point), 4 of 27 with seed 7877.
        override={"test_correlate2d": (0, 4), "test_correlate2d_compiled": (0, 0)}),
    "nan": dict(about="correlate2d returns all NaN; convolve2d the right values but NaN at [0, 0]",
        changes=[add_lines("correlate2d", "    return out\n", before="    out[:, :] = np.nan\n"),
                 Standalone("convolve2d"),
                 Edit("convolve2d", "    return _correlate2d(image, flipped, stride, padding)\n",
                      "    out = _correlate2d(image, flipped, stride, padding)\n"
                      "    out[0, 0] = np.nan\n"
                      "    return out\n")],
        zero=["correlate2d", "convolve2d"]),
    "mutate_input": dict(about="zero_pad and correlate2d zero their input image after computing; results correct",
        changes=[add_lines(cell, "    return out\n", before="    image[:, :] = 0.0           # and the caller's image is gone\n")
                 for cell in ("zero_pad", "correlate2d")],
        altered=["zero_pad", "correlate2d"]),
    # ---- reaching outside the sandbox
    "read_sources": wrong_with(
        READ_SOURCES, "output_size",
        "cell level: tries to read the instructor's notebook and nbgrader's source/ (hidden seeds); functions wrong"),
    "read_others": wrong_with(
        READ_OTHERS, "output_size",
        "cell level: looks for submitted/, autograded/, feedback/, gradebook.db and reads another notebook; functions wrong"),
    "fake_gradebook": wrong_with(
        FAKE_GRADEBOOK, "output_size",
        "cell level: overwrites gradebook.db files under /tmp, forges gradebook/results/grades/feedback; functions wrong"),
    "network": dict(about="cell level: tries TCP connections to pypi.org:443 and 151.101.0.223:443; functions correct",
        changes=[Insert("output_size", NETWORK)]),
    "fill_tmp": dict(about="cell level: writes up to 16 files of 64 MiB into /tmp and the temp folder, never deleted; functions correct",
        changes=[Insert("output_size", FILL_TMP)],
        shaky="all"),
}

UNREADABLE_TEXT = "this is not a notebook{"


# ------------------------------------------------------------------ building

def nb_grade(cell) -> dict:
    return cell.get("metadata", {}).get("nbgrader", {})


def is_solution_code(cell) -> bool:
    return cell.cell_type == "code" and bool(nb_grade(cell).get("solution"))


def is_test(cell) -> bool:
    g = nb_grade(cell)
    return bool(g.get("grade")) and not g.get("solution")


def without_markers(source: str) -> str:
    return "".join(line for line in source.splitlines(keepends=True) if line.strip() not in (BEGIN, END))


def solutions(path: Path = SOURCE) -> dict:
    """grade_id -> the instructor's solution code cell, solution markers still in."""
    src = nbformat.read(path, as_version=4)
    return {nb_grade(c)["grade_id"]: c.source.rstrip("\n") + "\n" for c in src.cells if is_solution_code(c)}


def submission(release, sols: dict, changes=(), name="correct"):
    """The release notebook with the solution cells, changed by `changes`, filled in."""
    if set(sols) != set(FUNCS):
        raise SystemExit(f"solution cells: {sorted(sols)}, expected {sorted(FUNCS)}")
    cells = dict(sols)
    for change in changes:
        if getattr(change, "cell", None) not in (None, *FUNCS):
            raise SystemExit(f"submission {name!r}: unknown solution cell {change.cell!r}")
        change.apply(cells, sols, f"submission {name!r}, {type(change).__name__}")
    tests = [c.source for c in changes if isinstance(c, Tests)]
    nb = copy.deepcopy(release)
    kept = []
    for cell in nb.cells:
        if is_solution_code(cell):
            cell.source = without_markers(cells[nb_grade(cell)["grade_id"]]).rstrip("\n")
        elif is_test(cell) and tests:
            if tests[-1] is None:
                continue
            cell.source = tests[-1].rstrip("\n")
        kept.append(cell)
    nb.cells = kept
    return nb


def read_release():
    nb = nbformat.read(RELEASE, as_version=4)
    filled = {nb_grade(c)["grade_id"] for c in nb.cells if is_solution_code(c)}
    if filled != set(FUNCS):
        raise SystemExit(f"solution cells in the release: {sorted(filled)}, expected {sorted(FUNCS)}")
    tests = {nb_grade(c)["grade_id"]: nb_grade(c).get("points") for c in nb.cells if is_test(c)}
    if tests != POINTS:
        raise SystemExit(f"test cells in the release: {tests}, expected {POINTS}")
    return nb


def expectation(about: str, zero=(), shaky=(), altered=(), override=None) -> dict:
    shaky = set(FUNCS) if shaky == "all" else set(shaky)
    lo, hi = {}, {}
    for fn in FUNCS:
        for test in TESTS_OF[fn]:
            full = POINTS[test]
            if fn in zero:
                lo[test], hi[test] = 0, 0
            elif fn in shaky:
                lo[test], hi[test] = 0, full
            else:
                lo[test], hi[test] = full, full
    for test, (a, b) in (override or {}).items():
        lo[test], hi[test] = a, b
    return {"about": about, "max": hi, "min": lo,
            "functions_correct": [f for f in FUNCS if f not in zero and f not in altered]}


def generate(sols: dict | None = None) -> dict:
    """{file name: its text}: every notebook and expected.json, as they should be committed."""
    release = read_release()
    sols = solutions() if sols is None else sols
    base = submission(release, sols)
    notebooks = {"correct": base, "correct_again": copy.deepcopy(base)}
    expected = {"correct": expectation("the instructor's solution, filled into the release"),
                "correct_again": expectation("a second student handing in exactly the same work as `correct`")}
    for name, spec in HOSTILE.items():
        notebooks[name] = submission(release, sols, spec["changes"], name)
        expected[name] = expectation(spec["about"], spec.get("zero", ()), spec.get("shaky", ()),
                                     spec.get("altered", ()), spec.get("override"))
    notebooks["stub"] = release
    expected["stub"] = expectation("the untouched release notebook: nothing filled in", zero=FUNCS)
    expected["unreadable"] = expectation("not a notebook at all (not JSON)", zero=FUNCS)
    files = {}
    for name, nb in notebooks.items():
        nbformat.validate(nb)
        text = nbformat.writes(nb)
        files[f"{name}.ipynb"] = text if text.endswith("\n") else text + "\n"
    files["unreadable.ipynb"] = UNREADABLE_TEXT
    files["expected.json"] = json.dumps(expected, indent=1) + "\n"
    return files


def build(folder: Path = HERE) -> list:
    """Write every file of generate() into `folder`; the names of the submissions."""
    folder.mkdir(parents=True, exist_ok=True)
    files = generate()
    for name, text in files.items():
        (folder / name).write_text(text, encoding="utf-8")
    return sorted(name[:-len(".ipynb")] for name in files if name.endswith(".ipynb"))


# ------------------------------------------------------------------ checking correct.ipynb

CHECK_CHILD = r'''
import json, sys
import numpy as np
import minicnn
from minicnn import conv, shapes

nb = json.load(open(sys.argv[1]))
ns = {}
for cell in nb["cells"]:
    meta = cell.get("metadata", {}).get("nbgrader", {})
    if cell["cell_type"] == "code" and (meta.get("grade_id") == "setup" or meta.get("solution")):
        exec("".join(cell["source"]), ns)
rng = np.random.default_rng(1)
for n, k, s, p in [(5, 3, 1, 0), (7, 3, 3, 0), (32, 5, 2, 2), (6, 6, 1, 1)]:
    assert ns["output_size"](n, k, s, p) == shapes.conv_output_size(n, k, s, p), (n, k, s, p)
    assert type(ns["output_size"](n, k, s, p)) is int
for c, k, ks, b in [(3, 10, 5, True), (1, 4, (2, 3), False), (64, 128, 1, True)]:
    assert ns["param_count"](c, k, ks, b) == shapes.conv2d_param_count(c, k, ks, b), (c, k, ks, b)
for h, w, kh, kw, s, p in [(5, 5, 3, 3, 1, 0), (5, 5, 3, 3, 2, 1), (6, 7, 2, 3, 2, 2), (4, 4, 4, 4, 1, 0)]:
    img = rng.integers(-4, 5, (h, w)).astype(np.float64)
    ker = rng.integers(-4, 5, (kh, kw)).astype(np.float64)
    np.testing.assert_array_equal(ns["zero_pad"](img, p), conv.pad2d(img, p))
    np.testing.assert_allclose(ns["correlate2d"](img, ker, s, p), conv.correlate2d(img, ker, s, p))
    np.testing.assert_allclose(ns["convolve2d"](img, ker, s, p), conv.convolve2d(img, ker, s, p))
    np.testing.assert_allclose(ns["correlate2d"](img, ker, s, p),
                               minicnn.correlate2d(img, ker, s, p, impl="loop"))
for f in ("zero_pad", "correlate2d", "convolve2d"):
    assert type(ns[f]).__name__ == "CPUDispatcher", f
print(sys.argv[1].rsplit("/", 1)[-1] + ": the five functions agree with minicnn")
'''


def check_correct(folder: Path = HERE):
    for name in ("correct", "correct_again"):
        subprocess.run([sys.executable, "-c", CHECK_CHILD, str(folder / f"{name}.ipynb")], check=True)


if __name__ == "__main__":
    names = build()
    print(f"wrote {len(names)} notebooks and expected.json to {HERE}")
    if "--check" in sys.argv[1:]:
        check_correct()
