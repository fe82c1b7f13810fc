"""What a graded call may not use, made unusable inside the sandbox's child (or the runner).

A part's `tripwires` says which of minicnn's own building blocks its exercise asks the
student to write: "kernels" (True) replaces every compiled kernel in minicnn's op table (so
every public op, minicnn.conv2d and the rest, raises ForbiddenCall); "layers" replaces the
ready-made layers, models and optimisers (the functional kernels stay usable, as assignment 5
builds on them).  `arm(mode)` is what the sandbox runs before the call (minicnn.sandbox.calls
knows nothing of minicnn: it is handed `arming(part)`).
"""
from __future__ import annotations

import importlib
import pkgutil

from .. import kernels
from ..sandbox.calls import ForbiddenCall

OWN_WORK_MODULES = ("minicnn.layers", "minicnn.models", "minicnn.optim", "minicnn.training")


def _tripwire(what):
    def tripwire(*a, **k):
        raise ForbiddenCall(what)
    return tripwire


def _disable_kernels():
    for table in kernels.KERNELS.values():
        for op in list(table):
            table[op] = _tripwire(f"the graded function called minicnn's own kernel {op!r} "
                                  "(through minicnn's public API)")


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
    """Make minicnn's kernels (mode True or "kernels") or its layers ("layers") unusable here."""
    try:
        if mode is True or mode == "kernels":
            _disable_kernels()
        elif mode == "layers":
            _disable_layers()
    except Exception:  # noqa: BLE001 - best effort: the static inspection comes first
        pass


def arming(mode):
    """The function the sandbox's child runs before a call of a part with this `tripwires` mode."""
    if not mode:
        return None
    return lambda: arm(mode)
