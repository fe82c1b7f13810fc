"""minicnn's own functions recognised by what they are, not by what they are called.

A submission can reach minicnn's reference kernels under another name: by changing a
function's `__module__`, by holding it as a default argument, or by loading minicnn's source
file afresh as a module of another name (`importlib.util.spec_from_file_location`).  Names
lie; code does not.  Every function of minicnn's library has a *fingerprint*: a hash of its
code object with everything a copy could change for free left out (the file name, the line
numbers, the function's own name), keeping its bytecode, constants, the names it uses and
its variable names.  A fresh load of the same source file, a reload, or the source text
pasted into a cell gives functions with the same fingerprints as the originals.

    index = reference_index()          # {fingerprint: 'minicnn.kernels.loops.conv2d_forward'}
    reference_name(fn)                 # that dotted name when fn is (a copy of) one, else None
    copies_in(code)                    # the reference functions among a code object's own

`reference_index()` compiles minicnn's library source files (everything but the course, the
grader, the sandbox and the command line: those are not a reference) once, without importing
any of them.  Functions with less than MIN_CODE_BYTES of bytecode are left out: a two-line
helper could honestly be written the same way.

`guard_reference_code()` installs an audit hook (which nothing in the process can remove) that
refuses to execute minicnn's code a second time: a module of minicnn's library already loaded
is never executed again (a fresh load from its file, a reload), and code holding a copy of a
reference function is refused wherever it comes from (`exec` of source text read from a file).
The grader's runner installs it before any of the student's code runs.
"""
from __future__ import annotations

import hashlib
import os
import sys
import types

from ..sandbox.calls import ForbiddenCall

PACKAGE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))   # .../minicnn
NOT_REFERENCE = ("course", "grader", "sandbox", "commands", "cli.py", "__main__.py")
MIN_CODE_BYTES = 60


class ReferenceCode(ForbiddenCall, ValueError):
    """Raised by the audit hook when code would run minicnn's reference again.  (A ValueError
    too: IPython reports one raised while it compiles a cell as that cell's error.)"""


def digest_function(sha256=hashlib.sha256, repr_=repr, isinstance_=isinstance, code_type=types.CodeType):
    """A function hashing a code object (bytecode, names, variable names, free variables, argument
    counts, constants, nested code); its helpers are bound now, so that the audit hook's own copy
    (guard_reference_code) keeps working whatever is later rebound in this module or in builtins."""
    def digest(code) -> str:
        h = sha256()
        for piece in (code.co_code, repr_(code.co_names).encode(), repr_(code.co_varnames).encode(),
                      repr_(code.co_freevars).encode(),
                      repr_((code.co_argcount, code.co_posonlyargcount, code.co_kwonlyargcount)).encode()):
            h.update(piece)
            h.update(b"\0")
        for const in code.co_consts:
            h.update(digest(const).encode() if isinstance_(const, code_type) else repr_(const).encode())
            h.update(b"\0")
        return h.hexdigest()
    return digest


_digest = digest_function()


def fingerprint(code: types.CodeType) -> str | None:
    """The code object's fingerprint, or None when it is too short to tell a copy from a coincidence."""
    if not isinstance(code, types.CodeType) or len(code.co_code) < MIN_CODE_BYTES:
        return None
    return _digest(code)


def _nested(code):
    yield code
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            yield from _nested(const)


def library_files() -> list[str]:
    """minicnn's library source files (absolute paths), the course/grader/sandbox/commands left out."""
    out = []
    for folder, dirs, files in os.walk(PACKAGE_DIR):
        rel = os.path.relpath(folder, PACKAGE_DIR)
        top = rel.split(os.sep)[0]
        if top in NOT_REFERENCE or "__pycache__" in rel.split(os.sep):
            dirs[:] = []
            continue
        for name in sorted(files):
            if name.endswith(".py") and not (rel == "." and name in NOT_REFERENCE):
                out.append(os.path.join(folder, name))
    return sorted(out)


def _module_name(path: str) -> str:
    rel = os.path.relpath(path, os.path.dirname(PACKAGE_DIR))[:-3]
    parts = rel.split(os.sep)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


_INDEX: dict = {}
_OWNERS: dict = {}     # fingerprint -> every module of the library holding it
_CODES: set = set()    # the bytecode of every fingerprinted function (a quick first test)
_GUARDED: list = []


def _code_of_files(paths):
    """(module name, code object) of every function and class body in the files `paths`."""
    for path in paths:
        try:
            with open(path, encoding="utf-8") as fh:
                tree = compile(fh.read(), path, "exec", dont_inherit=True)
        except (OSError, SyntaxError, ValueError):
            continue
        mod = _module_name(path)
        for co in _nested(tree):
            if co is not tree:
                yield mod, co


def reference_index() -> dict:
    """{fingerprint: dotted name} of every function (and class body) of minicnn's library."""
    if not _INDEX:
        index = {}
        for mod, co in _code_of_files(library_files()):
            fp = fingerprint(co)
            if fp is not None:
                index.setdefault(fp, f"{mod}.{getattr(co, 'co_qualname', co.co_name)}")
                _OWNERS.setdefault(fp, set()).add(mod)
                _CODES.add(co.co_code)
        _INDEX.update(index)
    return _INDEX


_GRADER_INDEX: dict = {}


def grader_files() -> list[str]:
    """The course's own modules (the graders' stand-in solutions, the case makers): not library
    code the audit hook guards (the runner loads them itself), but no student's work either."""
    folder = os.path.join(PACKAGE_DIR, "course")
    return sorted(os.path.join(folder, n) for n in os.listdir(folder) if n.endswith(".py"))


def grader_index() -> dict:
    """{fingerprint: dotted name} of every function of minicnn.course, for the inspection only:
    a copy of a grader's stand-in (minicnn.course.a1_convolution's own correlation, rebuilt from
    its __code__) earned every point of two parts until 2026-12-03 (a red-team notebook)."""
    if not _GRADER_INDEX:
        index = {}
        for mod, co in _code_of_files(grader_files()):
            fp = None if co.co_name.startswith("<") else fingerprint(co)   # a comprehension is anyone's
            if fp is not None:
                index.setdefault(fp, f"{mod}.{getattr(co, 'co_qualname', co.co_name)}")
        _GRADER_INDEX.update(index)
    return _GRADER_INDEX


def _known(fp):
    """The dotted name of the library or course function with fingerprint fp, or None."""
    return reference_index().get(fp) or grader_index().get(fp)


def plain_function(fn):
    """The Python function behind a Numba dispatcher or a functools wrapper (else None)."""
    for _ in range(8):
        if isinstance(fn, types.FunctionType):
            return fn
        inner = getattr(fn, "py_func", None) or getattr(fn, "__wrapped__", None) or getattr(fn, "__func__", None)
        if inner is None or inner is fn:
            return None
        fn = inner
    return None


def copies_in(code: types.CodeType, index=None) -> list[str]:
    """The reference functions (dotted names) whose copies are among `code`'s own code objects."""
    found = []
    for co in _nested(code):
        fp = fingerprint(co)
        name = None if fp is None else (_known(fp) if index is None else index.get(fp))
        if name is not None and name not in found:
            found.append(name)
    return found


def reference_name(fn) -> str | None:
    """'minicnn.kernels.loops.conv2d_forward' when `fn` is that reference function (or a copy of
    its code), whatever its name, module or holder; else None."""
    pyfn = plain_function(fn)
    if pyfn is None:
        return None
    fp = fingerprint(getattr(pyfn, "__code__", None))
    return _known(fp) if fp is not None else None


def module_of_reference(name: str) -> str:
    """The module part of a reference's dotted name ('minicnn.kernels.loops')."""
    files = {_module_name(p) for p in library_files() + grader_files()}
    parts = name.split(".")
    for i in range(len(parts), 0, -1):
        if ".".join(parts[:i]) in files:
            return ".".join(parts[:i])
    return parts[0]


def _is_library_file(path: str) -> bool:
    if not path.endswith(".py"):
        return False
    path = os.path.realpath(path)
    if not path.startswith(PACKAGE_DIR + os.sep):
        return False
    rel = os.path.relpath(path, PACKAGE_DIR).split(os.sep)
    return rel[0] not in NOT_REFERENCE


def guard_reference_code() -> None:
    """Refuse, from now on in this process, to execute minicnn's library code again (see the
    module's docstring).  Installed once per process (a forked child inherits its parent's hook).

    The hook sees every code object the process makes from text or bytes: `compile` (so also
    `exec` of source text, and IPython's cells), `marshal.loads` (a .pyc), and every `exec` of a
    code object.  Code holding a reference function's fingerprint is refused unless it is the
    first load of the very module that function belongs to; a library module already loaded is
    never executed again.  (Building functions from a compiled module's constants with
    `types.FunctionType` runs no "exec": refusing the compilation is what stops it.)  A function's
    `__code__` may not be replaced by a reference's code, and no other audit hook may be installed.

    What the hook decides with is its own: frozensets, and helpers bound when it is installed
    (never looked up in this module's globals or in builtins at the time of an event, so that
    replacing `fingerprint` or `builtins.compile` here changes nothing)."""
    if _GUARDED:
        return
    _GUARDED.append(True)
    index = reference_index()
    prints = frozenset(index)
    owners = {fp: frozenset(mods) for fp, mods in _OWNERS.items()}
    names = tuple(sorted(index.items()))     # for the message only
    modules = {os.path.realpath(p): _module_name(p) for p in library_files()}
    loaded = frozenset(os.path.realpath(m.__file__) for name, m in list(sys.modules.items())
                       if (name == "minicnn" or name.startswith("minicnn.")) and getattr(m, "__file__", None)
                       and _is_library_file(m.__file__))
    hook_for(prints, owners, names, modules, loaded, frozenset(_CODES))


def hook_for(prints, owners, names, modules, loaded, codes):
    """Install the audit hook (guard_reference_code); everything it uses is a local of this call."""
    import marshal

    realpath, relpath, sep = os.path.realpath, os.path.relpath, os.sep
    code_type, str_, bytes_, tuple_ = types.CodeType, str, bytes, tuple
    isinstance_, len_, next_, compile_, loads = isinstance, len, next, compile, marshal.loads
    getframe = sys._getframe
    reference_error, package = ReferenceCode, PACKAGE_DIR
    not_reference = tuple_(NOT_REFERENCE)
    sentinel = "<minicnn-guard " + os.urandom(8).hex() + ">"   # marks the hook's own compilations
    top_level_await = 0x2000                                    # ast.PyCF_ALLOW_TOP_LEVEL_AWAIT
    unmarshalling = []                                          # the hook's own marshal.loads

    digest = digest_function()

    def nested(code, out=None):
        out = [] if out is None else out
        out.append(code)
        for c in code.co_consts:
            if isinstance_(c, code_type):
                nested(c, out)
        return out

    def library_module(path):
        """(module name, loaded?) when `path` names a file of minicnn's library, else (None, False)."""
        if not isinstance_(path, str_) or not path.endswith(".py"):
            return None, False
        real = realpath(path)
        if not real.startswith(package + sep):
            return None, False
        if relpath(real, package).split(sep)[0] in not_reference:
            return None, False
        return modules.get(real, real), real in loaded

    def check(code, verb, filename):
        module, is_loaded = library_module(filename)
        if module is not None and is_loaded:
            raise reference_error(f"minicnn's {relpath(filename, package)} is already loaded; loading or running "
                                  "it again (a fresh load from its file, a reload) is not allowed here")
        for co in nested(code):
            if co.co_code not in codes:   # no reference has this bytecode: no need to hash the rest
                continue
            fp = digest(co)
            if fp in prints and module not in owners.get(fp, ()):   # a module's own first load is fine
                what = next_((n for f, n in names if f == fp), "reference function")
                raise reference_error(f"this code holds a copy of minicnn's own {what}, which may not {verb} here")

    def hook(event, args):
        if event == "exec":
            if args and isinstance_(args[0], code_type):
                check(args[0], "run", args[0].co_filename)
        elif event == "compile":
            if len_(args) < 2 or (isinstance_(args[1], str_) and args[1].startswith(sentinel)):
                return       # the hook's own compilation, below
            if args[1] is None:
                # an AST is reported without its file name, so the hook's own compilation of one
                # is known by who asks: this very hook (else it would recurse until Python's limit,
                # about 1000 compilations of every cell IPython runs)
                here = getframe(0)
                if here.f_back is not None and here.f_back.f_code is here.f_code:
                    return
            try:
                code = compile_(args[0], sentinel + str_(args[1]), "exec", top_level_await, True)
            except Exception:  # noqa: BLE001 - not compilable as a module: the real compile decides
                return
            check(code, "be compiled", args[1])
        elif event == "marshal.loads":
            if unmarshalling or not args or not isinstance_(args[0], (bytes_, bytearray)):
                return
            unmarshalling.append(True)
            try:
                code = loads(args[0])
            except Exception:  # noqa: BLE001
                return
            finally:
                unmarshalling.clear()
            if isinstance_(code, code_type):
                check(code, "be loaded", code.co_filename)
        elif event == "object.__setattr__":     # fn.__code__ = a reference's code
            if len_(args) >= 3 and args[1] == "__code__" and isinstance_(args[2], code_type):
                check(args[2], "be installed", "")
        elif event == "sys.addaudithook":
            raise reference_error("another audit hook may not be installed here")

    sys.addaudithook(hook)
