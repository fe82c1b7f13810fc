"""Static checks on a submitted function: is it compiled, and does it hand the work to a library?

`forbidden_uses(fn, ...)` reads the function's bytecode (its global names, the modules
and functions they resolve to, its closures and nested functions), follows the student's
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
import types

from ..sandbox.calls import BLOCKED_IMPORTS, is_numba_dispatcher

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
    numpy_used = False
    for name, obj in referenced:
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
        if getattr(obj, "__module__", None) == "numpy" and getattr(obj, "__name__", None) in numpy_functions:
            note(f"`{pyfn.__name__}` calls numpy.{obj.__name__}, which does this exercise's work in one call")
            continue
        # the student's own helpers (defined in the notebook): follow them
        inner = python_function(obj)
        if inner is not None and inner.__module__ == home:
            for r in forbidden_uses(inner, forbidden, allowed_modules, numpy_functions, forbidden_attrs, _seen):
                note(r)
    if numpy_used:
        for attr in sorted(attrs & set(numpy_functions)):
            note(f"`{pyfn.__name__}` calls numpy.{attr}, which does this exercise's work in one call")
    return reasons


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
