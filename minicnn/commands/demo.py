"""`minicnn demo`: run every worked example of the lectures through the kernels and print it."""
from __future__ import annotations

import textwrap

import numpy as np


def _grid(a: np.ndarray, indent="      ") -> str:
    a = np.asarray(a)
    if a.ndim == 3:
        return "\n".join(f"{indent}channel {i}:\n" + _grid(a[i], indent + "  ") for i in range(a.shape[0]))
    cells = [[f"{v:g}" for v in row] for row in np.atleast_2d(a)]
    width = max(len(c) for row in cells for c in row)
    return "\n".join(indent + " ".join(c.rjust(width) for c in row) for row in cells)


def demo(args) -> int:
    from .. import examples

    chosen = examples.load(lecture=args.lecture)
    failed, corrected = 0, 0
    for ex in chosen:
        result = examples.check(ex, impl=args.impl)
        failed += not result.ok
        mark = "ok  " if result.ok else "FAIL"
        print(f"[{mark}] {ex.id}  ({ex.op})")
        print(f"       {ex.citation}")
        if isinstance(result.got, np.ndarray):
            print(_grid(result.got))
        else:
            print(f"       result: {result.got}")
        if ex.slide_printed is not None:
            corrected += 1
            print(f"       slide printed: {ex.slide_printed}")
        if args.notes or ex.slide_printed is not None or not result.ok:
            for line in textwrap.wrap(ex.note, 100):
                print("       " + line)
        if not result.ok:
            print(f"       MISMATCH: {result.message}")
        print()
    print(f"{len(chosen) - failed} of {len(chosen)} worked examples reproduce with impl={args.impl!r}; "
          f"{corrected} slide errors corrected (see the notes above).")
    return 1 if failed else 0


def add_parser(sub):
    p = sub.add_parser("demo", help="run the lectures' worked examples through the kernels and print them")
    p.add_argument("--lecture", choices=["zju-uoe", "ferrara", "sjtu", "tcd", "halmstad"], help="only this lecture")
    p.add_argument("--impl", choices=["fast", "loop"], default="fast", help="kernel implementation")
    p.add_argument("--notes", action="store_true", help="print every example's note")
    p.set_defaults(func=demo)
