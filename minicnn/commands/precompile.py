"""`minicnn precompile`: compile every CPU kernel into Numba's cache ahead of time.

A fresh Numba cache makes the first call of each op compile its kernels (tens of seconds on a
small machine).  A course's JupyterHub or Docker image
runs this once while it is built; every later process then loads the compiled code instead.

What gets compiled: every op of both rows of the op table (`impl="fast"` and `impl="loop"`), in
float32 and float64, the serial and the parallel version of every multi-threaded fast kernel, on shapes chosen to reach every code path that compiles something of its
own: the three convolution layouts (wide, per image, batch inner), stride and dilation, a
filter count that is and one that is not a multiple of four, the 2x2 stride-2 pooling shortcut
and the general window, both `count_include_pad` settings, transposed and 1-d convolutions,
dense layers, and the finiteness check of `minicnn.argcheck`.

Numba keys its cache on the machine (CPU name and features), so an image built on one kind of
CPU and run on another compiles again: build it where it will run, or see docs/performance.md.
"""
from __future__ import annotations

import importlib
import pkgutil
import time

DTYPES = ("float32", "float64")


def kernel_modules():
    """Every module that holds compiled CPU kernels: the minicnn.kernels package and minicnn.argcheck."""
    import minicnn.kernels as pkg

    names = ["minicnn.argcheck", pkg.__name__]
    names += [m.name for m in pkgutil.walk_packages(pkg.__path__, pkg.__name__ + ".")]
    return [importlib.import_module(name) for name in names]


def dispatchers():
    """{qualified name: Numba dispatcher} for every @njit function in kernel_modules()."""
    from numba.core.dispatcher import Dispatcher

    found = {}
    for module in kernel_modules():
        for obj in vars(module).values():
            if isinstance(obj, Dispatcher) and obj.py_func.__module__ == module.__name__:
                found[f"{module.__name__}.{obj.py_func.__name__}"] = obj
    return found


def cached_signatures(dispatcher) -> list:
    """The signatures of `dispatcher` that Numba's cache holds for this machine and this version of
    its source: what a fresh process loads instead of compiling.

    Read from the cache's index with Numba's own key (numba.core.caching: these are Numba 0.6x
    internals, so a failure here says so rather than guessing).  A kernel called only from other
    kernels is never typed in a process that loads its callers from the cache, so its own
    `signatures` list can be empty there: the index is the only complete record."""
    from numba.core.caching import FunctionCache

    try:
        cache = FunctionCache(dispatcher.py_func)
        codegen = dispatcher.targetctx.codegen()
        index = cache._cache_file._load_index()
        return [key[0] for key in index if key == cache._index_key(key[0], codegen)]
    except AttributeError as exc:   # pragma: no cover - a Numba whose cache internals moved
        raise RuntimeError(f"cannot read Numba {__import__('numba').__version__}'s cache index: {exc}") from exc


def signature_dtypes(signatures) -> set:
    """The float dtype names ('float32', 'float64') that appear in these signatures' arguments (arrays and scalars)."""
    seen = set()
    for sig in signatures:
        for arg in sig:
            name = str(getattr(arg, "dtype", arg))
            if name in DTYPES:
                seen.add(name)
    return seen


def takes_floats(signatures) -> bool:
    """Whether any argument of these signatures is an array or scalar of floats."""
    return any(str(getattr(arg, "dtype", arg)).startswith("float") for sig in signatures for arg in sig)


def workload(dtype: str) -> None:
    """Call every public CPU op on small inputs of `dtype`, through both rows of the op table."""
    import numpy as np

    import minicnn
    from minicnn.argcheck import all_finite

    rng = np.random.default_rng(0)

    def a(*shape):
        return rng.standard_normal(shape).astype(dtype)

    all_finite(a(8))
    for impl in ("fast", "loop"):
        # (x shape, weight shape, stride, padding, dilation): wide (one image), per image (a batch
        # of mid-sized planes: 16x16 outputs of 18-wide rows), batch inner (small planes), strided,
        # dilated; 6 and 4 filters
        for xs, ws, s, p, d in [((1, 3, 12, 12), (6, 3, 3, 3), 1, 1, 1),
                                ((8, 3, 16, 16), (4, 3, 3, 3), 1, 1, 1),
                                ((8, 2, 12, 12), (4, 2, 5, 5), 1, 0, 1),
                                ((8, 4, 5, 5), (6, 4, 3, 3), 1, 0, 1),
                                ((2, 3, 11, 11), (4, 3, 3, 3), 2, 1, 1),
                                ((2, 3, 11, 11), (5, 3, 3, 3), 1, 2, 2),
                                ((64, 6, 14, 14), (16, 6, 5, 5), 1, 0, 1)]:
            x, w, b = a(*xs), a(*ws), a(ws[0])
            out = minicnn.conv2d(x, w, b, s, p, d, impl=impl)
            minicnn.conv2d_backward(a(*out.shape), x, w, s, p, d, impl=impl)
        x, w = a(2, 4, 5, 5), a(4, 3, 3, 3)
        out = minicnn.conv_transpose2d(x, w, a(3), stride=2, padding=1, impl=impl)
        minicnn.conv_transpose2d_backward(a(*out.shape), x, w, stride=2, padding=1, impl=impl)
        x1, w1 = a(2, 3, 16), a(4, 3, 3)
        out = minicnn.conv1d(x1, w1, a(4), impl=impl)
        minicnn.conv1d_backward(a(*out.shape), x1, w1, impl=impl)
        for xs in [(2, 3, 8, 8), (64, 6, 28, 28)]:
            x = a(*xs)
            for k, s, p in [(2, 2, 0), (3, 1, 1)]:
                out = minicnn.max_pool2d(x, k, s, p, impl=impl)
                minicnn.max_pool2d_backward(a(*out.shape), x, k, s, p, impl=impl)
                for cip in (True, False):
                    out = minicnn.avg_pool2d(x, k, s, p, cip, impl=impl)
                    minicnn.avg_pool2d_backward(a(*out.shape), x, k, s, p, cip, impl=impl)
        for n, i, o in [(2, 7, 3), (64, 400, 120)]:
            x, w = a(n, i), a(o, i)
            out = minicnn.dense(x, w, a(o), impl=impl)
            minicnn.dense_backward(a(*out.shape), x, w, impl=impl)


def precompile(dtypes=DTYPES) -> dict:
    """Run the workload for each dtype; return what it found: kernels, signatures, how many were
    compiled now (cache misses) and how many were loaded from the cache (hits), and the seconds."""
    import llvmlite.binding as ll
    from numba import config

    from .. import simd
    from ..kernels.fast.threads import only_version

    start = time.perf_counter()
    for version in ("serial", "parallel"):   # kernel_part alone, then under its threads.LAUNCH launcher
        with only_version(version):
            for dtype in dtypes:
                workload(dtype)
    found = dispatchers()
    misses = sum(sum(d.stats.cache_misses.values()) for d in found.values())
    hits = sum(sum(d.stats.cache_hits.values()) for d in found.values())
    cached = {name: cached_signatures(d) for name, d in found.items()}
    missing = {}    # kernel -> what the cache lacks: a dtype, or everything
    for name, sigs in cached.items():
        if not sigs:
            missing[name] = "nothing cached"
        elif takes_floats(sigs) and signature_dtypes(sigs) != set(dtypes):
            missing[name] = "no " + " or ".join(sorted(set(dtypes) - signature_dtypes(sigs)))
    return {"kernels": len(found), "signatures": sum(len(s) for s in cached.values()),
            "compiled": misses, "loaded": hits, "seconds": time.perf_counter() - start,
            "cache_dir": config.CACHE_DIR or "__pycache__ next to each kernel module", "missing": missing,
            "cpu": config.CPU_NAME or ll.get_host_cpu_name(), "vector_width": simd.status()["reason"]}


def run(args) -> int:
    report = precompile()
    print(f"minicnn precompile: {report['kernels']} kernels, {report['signatures']} signatures "
          f"(float32 and float64): {report['compiled']} compiled now, {report['loaded']} loaded from the cache, "
          f"{report['seconds']:.1f} s")
    print(f"cache: {report['cache_dir']}")
    # the cache is keyed on the CPU and its features, which minicnn.simd may have set (512-bit on AVX-512)
    print(f"compiled for: {report['cpu']}; vector width: {report['vector_width']}")
    if report["missing"]:
        print("not in the cache (compiled on first use instead):")
        for name, what in sorted(report["missing"].items()):
            print(f"  {name}: {what}")
        return 1
    return 0


def add_parser(sub):
    p = sub.add_parser("precompile", help="compile every CPU kernel into Numba's cache (for a course image)")
    p.set_defaults(func=run)
