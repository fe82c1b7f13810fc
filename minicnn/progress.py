"""One plain-text progress bar, for training epochs and for grading a class.

    bar = Progress(sys.stderr, width=30, every=None)
    bar.start("grading", total=40)
    bar.show(3, 40, "graded, 2 running")      # [######.......] 3/40 graded, 2 running

On a terminal the line is redrawn in place (a newline after the final one); in a log (CI, a
file) a line is written at every `every` fraction of the total (0.2: at 20%, 40%, ... and
the final one), or at every update when `every` is None.
"""
from __future__ import annotations

import sys


class Progress:
    def __init__(self, stream=None, width: int = 24, every: float | None = 0.2):
        self.stream = sys.stdout if stream is None else stream
        self.width = width
        self.every = every
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.label = ""
        self._next_mark = 0.0
        self._drawn = 0

    def start(self, label: str = "") -> None:
        """A new run of the bar (e.g. the next epoch), shown with `label` in front."""
        self.label = label
        self._next_mark = self.every or 0.0

    def show(self, done: int, total: int, text: str = "", final: bool = False) -> None:
        """Draw the bar at `done` of `total`, followed by `text`."""
        frac = done / total if total else 1.0
        filled = int(round(self.width * min(frac, 1.0)))
        line = (f"{self.label} " if self.label else "") + f"[{'#' * filled}{'.' * (self.width - filled)}] " \
            f"{done}/{total}" + (f" {text}" if text else "")
        if self.tty:
            self.stream.write("\r" + line.ljust(self._drawn) + ("\n" if final else ""))
            self._drawn = 0 if final else len(line)
            self.stream.flush()
        elif self.every is None:
            self.line(line)
        elif final or frac >= self._next_mark:   # a line at each mark, then the final one
            while self._next_mark <= frac:
                self._next_mark += self.every
            if final or frac < 1.0:
                self.line(line)

    def line(self, text: str) -> None:
        """A line of its own (e.g. a validation result after an epoch)."""
        self.stream.write(text + "\n")
        self.stream.flush()
