"""What a graded call may not use, made unusable inside the sandbox's child (or the runner).

A part's `tripwires` says which of minicnn's own building blocks its exercise asks the
student to write: "kernels" (True) replaces every compiled kernel in minicnn's op table (so
every public op, minicnn.conv2d and the rest, raises ForbiddenCall), makes every function
of minicnn.kernels, minicnn.shapes, minicnn.activations and minicnn.losses unusable however it is
reached, and the layers as below: the module attribute is
replaced (a lookup by name at call time), and each Numba dispatcher object itself is emptied of
its compiled versions and refuses to run or compile (one held under another name, as a default
argument, in a closure, or found with gc); "layers" replaces the
ready-made layers, models and optimisers (the functional kernels stay usable, as assignment 5
builds on them).  `arm(mode)` is what the sandbox runs before the call (minicnn.sandbox.calls
knows nothing of minicnn: it is handed `arming(part)`).
"""
from __future__ import annotations

import importlib
import os
import pkgutil
import sys
import types

from .. import kernels
from ..sandbox.calls import ForbiddenCall, is_numba_dispatcher
from . import fingerprints, inspection

OWN_WORK_MODULES = ("minicnn.layers", "minicnn.models", "minicnn.optim", "minicnn.training")


def _tripwire(what, module=None, name=None):
    """A function raising ForbiddenCall(what); named as what it replaces when given (so the
    static inspection names it too)."""
    def tripwire(*a, **k):
        raise ForbiddenCall(what)
    if module is not None:
        tripwire.__module__, tripwire.__name__, tripwire.__qualname__ = module, name, name
    return tripwire


def _disable_kernels():
    for table in kernels.KERNELS.values():
        for op in list(table):
            table[op] = _tripwire(f"the graded function called minicnn's own kernel {op!r} "
                                  "(through minicnn's public API)")


# where the answers of the "kernels" parts live: the kernels, the shape rules, the activations and
# losses (assignment 3's tanh/relu/sigmoid backward: reached with importlib.import_module("minicnn." +
# "activations") it earned the point, 2026-12-02)
REFERENCE_MODULES = ("minicnn.kernels", "minicnn.shapes", "minicnn.activations", "minicnn.losses")


def _neuter(dispatcher, what: str) -> None:
    """Make this dispatcher object refuse every call from Python and every compilation (a
    caller being compiled asks it to compile itself for the caller's types)."""
    trip = _tripwire(f"the graded code called minicnn's own kernel {what}")
    try:
        dispatcher._clear()          # its compiled versions, and the C-level table of them
    except Exception:  # noqa: BLE001 - best effort on a Numba version with other internals
        pass
    for attr in ("_compile_for_args", "compile"):    # what a call or a caller's typing falls back to
        try:
            setattr(dispatcher, attr, trip)
        except Exception:  # noqa: BLE001
            pass


def _defined_in(obj, mod) -> bool:
    code = getattr(obj, "__code__", None)
    where = getattr(mod, "__file__", None)
    return code is not None and where is not None and \
        os.path.realpath(code.co_filename) == os.path.realpath(where)


def _disable_reference_functions():
    replaced = {}   # id(the original function) -> its tripwire
    for name, mod in list(sys.modules.items()):
        if mod is None or not any(name == m or name.startswith(m + ".") for m in REFERENCE_MODULES):
            continue
        for attr, obj in list(vars(mod).items()):
            what = f"{name}.{attr}"
            if is_numba_dispatcher(obj) and _defined_in(getattr(obj, "py_func", None), mod):
                _neuter(obj, what)
            elif not (isinstance(obj, types.FunctionType) and _defined_in(obj, mod)):
                continue
            replaced[id(obj)] = _tripwire(f"the graded code called minicnn's own {what}", name, attr)
            setattr(mod, attr, replaced[id(obj)])
    # and where the package re-exports them (`minicnn.tanh`, defined in minicnn.activations); the
    # library's own modules keep theirs (minicnn.conv's `kernels` leads to the tripwired op table,
    # whose message names the kernel reached)
    package = sys.modules.get("minicnn")
    for attr, obj in list(vars(package).items()) if package is not None else ():
        if id(obj) in replaced and isinstance(obj, types.FunctionType):
            setattr(package, attr, replaced[id(obj)])


METHODS = ("forward", "backward", "_forward", "_backward", "step", "__call__")


def _own_modules():
    """Every module of OWN_WORK_MODULES, with every submodule of those that are packages
    (minicnn.layers.conv, minicnn.layers.base, ...)."""
    mods = []
    for modname in OWN_WORK_MODULES:
        try:
            mod = importlib.import_module(modname)
        except ImportError:
            continue
        mods.append(mod)
        for info in pkgutil.walk_packages(getattr(mod, "__path__", []) or [], prefix=modname + "."):
            try:
                mods.append(importlib.import_module(info.name))
            except ImportError:
                continue
    return mods


def _is_own(obj) -> bool:
    """Defined in one of OWN_WORK_MODULES or a submodule of one (whatever module re-exports it)."""
    where = getattr(obj, "__module__", None) or ""
    return any(where == m or where.startswith(m + ".") for m in OWN_WORK_MODULES)


def _disable_layers():
    for mod in _own_modules():
        for name, obj in list(vars(mod).items()):
            if isinstance(obj, type) and _is_own(obj):
                for meth in METHODS:
                    if meth in vars(obj):
                        setattr(obj, meth, _tripwire(f"the graded code used {obj.__module__}.{obj.__name__}."
                                                     f"{meth}, which this exercise asks you to write yourself"))
            elif callable(obj) and not isinstance(obj, type) and _is_own(obj):
                setattr(mod, name, _tripwire(f"the graded code called {obj.__module__}.{name}"))


def arm(mode) -> None:
    """Make minicnn's kernels, activations, losses and layers (mode True or "kernels") or its layers
    alone ("layers") unusable here,
    and (any mode) refuse to run minicnn's library code again (fingerprints.guard_reference_code)."""
    try:
        fingerprints.guard_reference_code()
    except Exception:  # noqa: BLE001 - best effort, as below
        pass
    try:
        if mode is True or mode == "kernels":
            _disable_kernels()
            _disable_reference_functions()
            # and the layers (a1's param_count read off minicnn.layers.Conv2D's weights, 2026-12-02):
            # an exercise that asks for the kernels has no use for minicnn's layers either
            _disable_layers()
        elif mode == "layers":
            _disable_layers()
    except Exception:  # noqa: BLE001 - best effort: the static inspection comes first
        pass


def _disable_numpy(names) -> None:
    """NumPy's functions `names` (a part's numpy_functions: the ones that would do its exercise)
    raise ForbiddenCall wherever NumPy keeps them: a name built at run time, `getattr(np, "p" +
    "ad")`, gets the tripwire too (it earned zero_pad's points, 2026-12-02)."""
    import numpy as np

    modules = [mod for name, mod in list(sys.modules.items())
               if mod is not None and (name == "numpy" or name.startswith("numpy."))]
    for fname in names:
        original = getattr(np, fname, None)
        if original is None:
            continue
        trip = _tripwire(f"the graded function called numpy.{fname}, which this exercise asks you to write "
                         "yourself", "numpy", fname)
        # and NumPy's own helpers behind it (numpy.lib._arraypad_impl._pad_simple, multiarray.correlate2),
        # wherever NumPy keeps them: the functions the static inspection names too
        for mod in modules:
            for attr, obj in list(vars(mod).items()):
                if obj is original or inspection.numpy_helper(obj, (fname,)):
                    setattr(mod, attr, trip)


def arming(mode, numpy_functions=()):
    """The function the sandbox's child runs before a call of a part with this `tripwires` mode (and
    its numpy_functions, see _disable_numpy)."""
    if not mode and not numpy_functions:
        return None
    if mode:
        fingerprints.reference_index()   # built once here, not in every forked child

    def armed():
        if mode:
            arm(mode)
        try:
            _disable_numpy(numpy_functions)
        except Exception:  # noqa: BLE001 - best effort: the static inspection comes first
            pass
    return armed
