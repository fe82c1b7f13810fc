"""Static checks on a submitted function: is it compiled, and does it hand the work to a library?

`forbidden_uses(fn, ...)` reads the function's bytecode (its global names, the modules
and functions they resolve to, what the student's objects among them hold, its closures and
nested functions), follows the student's
own helper functions (anything defined in the notebook) recursively, and lists every use
of a forbidden library: minicnn itself (the reference the answer is checked against),
torch, scipy, tensorflow, ..., and a few NumPy functions that would do the exercise's
work in one call (np.convolve, np.correlate, np.pad for the padding exercise, ...).
Renaming does not hide a use: `from minicnn import correlate2d as c` still resolves to
minicnn's function.  What static reading cannot see (an import built from a string) is
caught at run time by the sandbox's tripwires (sandbox.py).
"""
from __future__ import annotations

import builtins
import dis
import functools
import gc
import os
import sysconfig
import types

import numpy as np

from ..sandbox.calls import BLOCKED_IMPORTS, is_numba_dispatcher
from . import fingerprints

LIBRARIES = ("minicnn",) + BLOCKED_IMPORTS


def python_function(fn):
    """The plain Python function behind a Numba dispatcher, CUDA kernel, or functools wrapper."""
    seen = set()
    while id(fn) not in seen:
        seen.add(id(fn))
        for attr in ("py_func", "fn", "__wrapped__"):
            inner = getattr(fn, attr, None)
            if inner is not None and inner is not fn and callable(inner):
                fn = inner
                break
        else:
            break
    return fn if isinstance(fn, types.FunctionType) else None


def _module_of(obj) -> str:
    if isinstance(obj, types.ModuleType):
        return obj.__name__
    inner = python_function(obj)
    mod = getattr(inner if inner is not None else obj, "__module__", None)
    if mod is None and hasattr(obj, "__class__"):
        mod = getattr(type(obj), "__module__", "")
    return mod or ""


def _top(name: str) -> str:
    return name.split(".")[0]


def _code_objects(code):
    yield code
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            yield from _code_objects(const)


def _global_names(code):
    """Names loaded as globals, attribute names, and names imported, across nested code objects."""
    loads, attrs, imports = set(), set(), set()
    for co in _code_objects(code):
        for ins in dis.get_instructions(co):
            if ins.opname in ("LOAD_GLOBAL", "LOAD_NAME"):
                loads.add(ins.argval)
            elif ins.opname in ("LOAD_ATTR", "LOAD_METHOD", "IMPORT_FROM"):
                attrs.add(ins.argval)
            elif ins.opname == "IMPORT_NAME":
                imports.add(ins.argval)
    return loads, attrs, imports


def _class_functions(cls):
    """The plain functions behind a class's methods, properties, static and class methods."""
    out = []
    for value in vars(cls).values():
        if isinstance(value, (staticmethod, classmethod)):
            value = value.__func__
        if isinstance(value, property):
            out.extend(f for f in (value.fget, value.fset) if f is not None)
        elif isinstance(value, types.FunctionType):
            out.append(value)
    return out


def forbidden_uses(fn, forbidden=LIBRARIES, allowed_modules=(), numpy_functions=(), forbidden_attrs=(),
                   _seen=None) -> list:
    """Human-readable reasons why `fn` is not the student's own work; [] when none is found.

    fn               a function, Numba dispatcher or CUDA kernel; a class (its bases and methods are
                     read); or an object (its class is read)
    forbidden        top-level package names that may not be used
    allowed_modules  module names exempt from `forbidden`, e.g. ('minicnn', 'minicnn.conv')
    numpy_functions  NumPy attribute names that count as doing the exercise (e.g. ('convolve',))
    forbidden_attrs  attribute names that count as forbidden when read off a module of a forbidden
                     package, e.g. ('layers',) for `minicnn.layers.Conv2D`
    """
    if _seen is None:
        _seen = set()
    if not isinstance(fn, type) and python_function(fn) is None and not isinstance(fn, types.ModuleType) \
            and hasattr(fn, "__class__") and type(fn).__module__ not in ("builtins",):
        fn = type(fn)  # an instance (a trained network): read its class
    if isinstance(fn, type):
        if id(fn) in _seen:
            return []
        _seen.add(id(fn))
        reasons = []
        own = fn.__module__ or ""
        if _top(own) in forbidden and own not in allowed_modules:
            reasons.append(f"`{fn.__name__}` is {own}.{fn.__qualname__}, not a class of your own")
        for base in fn.__mro__[1:]:
            mod = base.__module__ or ""
            if _top(mod) in forbidden and not any(mod == a for a in allowed_modules):
                reasons.append(f"`{fn.__name__}` is built on {mod}.{base.__name__}")
        for f in _class_functions(fn):
            for r in forbidden_uses(f, forbidden, allowed_modules, numpy_functions, forbidden_attrs, _seen):
                if r not in reasons:
                    reasons.append(r)
        return reasons
    pyfn = python_function(fn)
    if pyfn is None or id(pyfn) in _seen:
        return []
    _seen.add(id(pyfn))
    reasons = []
    home = pyfn.__module__
    own = _reference_use(pyfn, f"`{pyfn.__name__}` is", allowed_modules)
    if own is not None:
        return [own] if own else []
    glb = pyfn.__globals__
    loads, attrs, imports = _global_names(pyfn.__code__)

    def is_forbidden(modname: str) -> bool:
        if not modname or _top(modname) not in forbidden:
            return False
        return modname not in allowed_modules

    def note(text):
        if text not in reasons:
            reasons.append(text)

    for name in sorted(imports):
        if is_forbidden(name):
            note(f"`{pyfn.__name__}` imports {name}")
    for copy in fingerprints.copies_in(pyfn.__code__):
        if fingerprints.module_of_reference(copy) not in allowed_modules:
            note(f"`{pyfn.__name__}` holds a copy of minicnn's own {copy}")
    referenced = []
    for name in sorted(loads):
        if name in glb:
            referenced.append((name, glb[name]))
        elif not hasattr(builtins, name):
            continue
    for cell in pyfn.__closure__ or ():
        try:
            referenced.append(("(closure)", cell.cell_contents))
        except ValueError:  # an empty cell
            pass
    # what the function holds without naming it: default arguments, and what its compiled
    # versions call (Numba resolved those globals when it compiled; they may be rebound since)
    referenced += [("(a default argument)", v) for v in pyfn.__defaults__ or ()]
    referenced += [(f"(the default of {k})", v) for k, v in (pyfn.__kwdefaults__ or {}).items()]
    referenced += [("(called by its compiled code)", d) for d in _compiled_callees(fn)]
    numpy_used = False
    for name, obj in _expanded(referenced, attrs):
        mod = _module_of(obj)
        if isinstance(obj, types.ModuleType):
            if is_forbidden(mod):
                note(f"`{pyfn.__name__}` uses the module {mod} (as `{name}`)")
            elif _top(mod) in forbidden:
                for attr in sorted(attrs & set(forbidden_attrs)):
                    note(f"`{pyfn.__name__}` uses {mod}.{attr}")
            if mod == "numpy" or mod.startswith("numpy."):
                numpy_used = True
            continue
        if isinstance(obj, type):
            for r in forbidden_uses(obj, forbidden, allowed_modules, numpy_functions, forbidden_attrs, _seen):
                note(r)
            if is_forbidden(mod):
                note(f"`{pyfn.__name__}` uses {mod}.{obj.__name__} (as `{name}`)")
            continue
        if is_forbidden(mod):
            label = getattr(obj, "__qualname__", None) or getattr(obj, "__name__", None) or type(obj).__name__
            note(f"`{pyfn.__name__}` calls {mod}.{label} (as `{name}`)")
            continue
        inner = python_function(obj)
        own = _reference_use(inner, f"`{pyfn.__name__}` uses", allowed_modules, f" (as `{name}`)")
        if own is not None:   # its name hides it, its code does not
            if own:
                note(own)
            continue
        if getattr(obj, "__module__", None) == "numpy" and getattr(obj, "__name__", None) in numpy_functions:
            note(f"`{pyfn.__name__}` calls numpy.{obj.__name__}, which does this exercise's work in one call")
            continue
        if numpy_helper(obj, numpy_functions):
            note(f"`{pyfn.__name__}` calls {obj.__module__}.{obj.__name__}, NumPy's own code behind a function "
                 "this exercise asks you to write yourself")
            continue
        # the student's own helpers (defined in the notebook, or anywhere outside an installed
        # library, whatever their __module__ says): follow them
        if inner is not None and (inner.__module__ == home or not _library_code(inner)):
            for r in forbidden_uses(obj, forbidden, allowed_modules, numpy_functions, forbidden_attrs, _seen):
                note(r)
    if numpy_used:
        for attr in sorted(attrs & set(numpy_functions)):
            note(f"`{pyfn.__name__}` calls numpy.{attr}, which does this exercise's work in one call")
        for attr in sorted(a for a in attrs if a.startswith("_") and any(f in a for f in numpy_functions)):
            note(f"`{pyfn.__name__}` reads numpy's internal {attr}, behind a function this exercise asks you "
                 "to write yourself")
    return reasons


def numpy_helper(obj, numpy_functions) -> bool:
    """Is obj one of NumPy's own functions whose name holds one of numpy_functions (its private
    helpers: numpy.lib._arraypad_impl._pad_simple is np.pad's work, and earned zero_pad's points in
    a red-team notebook of 2026-12-03; numpy._core.multiarray.correlate2 is np.correlate's)?"""
    name, mod = getattr(obj, "__name__", None), getattr(obj, "__module__", None)
    if not isinstance(name, str) or not isinstance(mod, str) or not numpy_functions:
        return False
    return (_top(mod) == "numpy" and callable(obj) and not isinstance(obj, type)
            and any(f in name for f in numpy_functions))


def _reference_use(pyfn, what: str, allowed_modules, how: str = ""):
    """None when `pyfn` is not minicnn's own code; '' when it is, from an allowed module; else
    the reason (found by its code: a renamed module, a fresh load, a pasted copy are all found)."""
    if pyfn is None:
        return None
    ref = fingerprints.reference_name(pyfn)
    if ref is None:
        return None
    if fingerprints.module_of_reference(ref) in allowed_modules:
        return ""
    said = getattr(pyfn, "__module__", None)
    alias = "" if said and ref.startswith(said + ".") else f"; its __module__ says {said!r}"
    return f"{what} minicnn's own {ref}{how} (recognised by its code, not its name{alias})"


LIBRARY_DIRS = tuple(os.path.realpath(p) + os.sep for p in {
    sysconfig.get_paths()[k] for k in ("stdlib", "platstdlib", "purelib", "platlib")})


def _library_code(fn) -> bool:
    """Is `fn` defined in a file of the Python installation or an installed package (not minicnn)?"""
    path = os.path.realpath(fn.__code__.co_filename)
    return path.startswith(LIBRARY_DIRS) and not path.startswith(fingerprints.PACKAGE_DIR + os.sep)


def _compiled_callees(fn) -> list:
    """The Numba dispatchers that `fn`'s compiled versions call (from their type annotations)."""
    out = []
    overloads = getattr(fn, "overloads", None)
    if not isinstance(overloads, dict):
        return out
    for cres in list(overloads.values()):
        typemap = getattr(getattr(cres, "type_annotation", None), "typemap", None) or {}
        for t in list(typemap.values()):
            if type(t).__name__ == "Dispatcher":
                callee = getattr(t, "dispatcher", None)
                if callee is not None and callee is not fn:
                    out.append(callee)
    return out


def _expanded(referenced, attrs, depth: int = 2):
    """`referenced` and, inside it: the items of tuples, lists, sets and dicts, a partial's
    function and arguments, a bound method's function, and a module's attributes that the
    code reads (for a module of any name: a fresh load of minicnn's file is named anything)."""
    out, seen = [], set()

    def visit(name, obj, level):
        if id(obj) in seen:
            return
        seen.add(id(obj))
        out.append((name, obj))
        if level >= depth:
            return
        if isinstance(obj, (tuple, list, set, frozenset)) and len(obj) <= 1000:
            for item in list(obj):
                visit(name, item, level + 1)
        elif isinstance(obj, dict) and len(obj) <= 1000:
            for item in list(obj.values()):
                visit(name, item, level + 1)
        elif isinstance(obj, np.ndarray) and obj.dtype == object and obj.size <= 1000:
            for item in obj.ravel().tolist():   # a NumPy array of objects is a container too
                visit(name, item, level + 1)
        elif isinstance(obj, functools.partial):
            for item in (obj.func, *obj.args, *obj.keywords.values()):
                visit(name, item, level + 1)
        elif isinstance(obj, types.MethodType):
            visit(name, obj.__func__, level + 1)
        elif isinstance(obj, types.ModuleType):
            for attr in sorted(attrs):
                try:
                    item = _stored_attr(obj, attr)
                except Exception:  # noqa: BLE001 - a module's __getattr__ may raise anything
                    continue
                if item is not None:
                    visit(f"{name}.{attr}", item, level + 1)
        else:
            for attr, item in _held_by(obj):
                visit(f"{name}.{attr}", item, level + 1)
    for name, obj in referenced:
        visit(name, obj, 0)
    return out


# objects whose attributes are not followed: what they hold is the library's, not the student's
_OPAQUE_PACKAGES = frozenset({"builtins", "numpy", "numba", "llvmlite", "functools"})


def _held_by(obj):
    """(attribute, value) pairs an object holds in its instance dict or slots (at most 1000), read
    with gc.get_referents, which runs none of the object's own code (no __getattr__, no property):
    `box.f(x)` with `box.f = minicnn's kernel` is followed like a global.  Functions, classes,
    modules and the objects of NumPy, Numba and builtins are left to the other rules."""
    if isinstance(obj, (type, types.FunctionType, types.BuiltinFunctionType, types.ModuleType,
                        types.CodeType, types.FrameType)):
        return []
    if _top(getattr(type(obj), "__module__", None) or "builtins") in _OPAQUE_PACKAGES or is_numba_dispatcher(obj):
        return []
    held = []
    for ref in gc.get_referents(obj):
        if ref is type(obj):
            continue
        if isinstance(ref, dict):
            if len(ref) <= 1000:
                held.extend((str(k), v) for k, v in list(ref.items()))
        else:
            held.append(("(slot)", ref))
        if len(held) > 1000:
            return held[:1000]
    return held


def _stored_attr(mod, attr):
    """A module's attribute as stored (no module-level __getattr__ run)."""
    return vars(mod).get(attr)


def is_cuda_kernel(fn) -> bool:
    """A @cuda.jit kernel: numba's CUDA dispatcher, or the simulator's stand-in for it."""
    cls = type(fn)
    return (cls.__name__ in ("FakeCUDAKernel", "CUDADispatcher")
            and cls.__module__.startswith(("numba.cuda", "numba_cuda")))


def compiled_status(fn, kind: str = "njit") -> tuple[bool, str]:
    """(True, '') for an @njit function compiled to machine code (kind "njit") or a @cuda.jit
    kernel (kind "cuda"); else (False, why not)."""
    if kind == "cuda":
        if is_cuda_kernel(fn):
            opts = getattr(fn, "targetoptions", {}) or {}
            if opts.get("device"):
                return False, "it is a device function (device=True); a kernel is launched from the host"
            return True, ""
        return False, ("it is not a CUDA kernel: put @cuda.jit (from numba import cuda) on the line above `def`"
                       if callable(fn) else f"it is {type(fn).__name__}, not a function")
    if is_numba_dispatcher(fn):
        opts = getattr(fn, "targetoptions", {}) or {}
        if opts.get("forceobj") or opts.get("nopython") is False:
            return False, ("it is decorated for Numba's object mode (forceobj / nopython=False), which runs "
                           "as slowly as Python; use @njit")
        if type(fn).__name__ != "CPUDispatcher":
            return False, f"it is a {type(fn).__name__}, not a CPU @njit function"
        return True, ""
    if callable(fn):
        kind = "a plain Python function" if python_function(fn) is not None else f"a {type(fn).__name__}"
        return False, (f"it is {kind}, not compiled: put @njit (from numba) on the line above `def`, and keep "
                       "to what nopython mode supports (loops, NumPy arrays, math)")
    return False, f"it is {type(fn).__name__}, not a function"
