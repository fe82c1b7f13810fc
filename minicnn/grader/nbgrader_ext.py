"""nbgrader's Execute preprocessor, made to cope with a kernel stuck in compiled code.

When a cell runs past its timeout, nbgrader (through nbclient) interrupts the kernel.  A pure
Python loop stops there; an `@njit` loop does not: compiled code never returns to the
interpreter, so the kernel stays busy for good.  By default nbgrader then abandons the whole
submission (no score at all); with `raise_on_iopub_timeout = False` it carries on, but every
later cell waits for the full timeout again in a kernel that will never answer.

This subclass asks the kernel, after a timed-out cell, whether it still answers (a
kernel_info request on the shell channel, which a busy kernel cannot serve).  If it does not,
the remaining code cells are not sent to it: each gets an error output saying why, and
scores 0, and grading moves on at once.  The cells before the hang keep their scores.

autograder/nbgrader_config.py puts this class in nbgrader's autograde pipeline.
"""
from __future__ import annotations

import asyncio
import time
from queue import Empty

from nbformat.notebooknode import NotebookNode
from nbgrader.preprocessors import Execute as NbgraderExecute
from nbclient.util import run_sync
from traitlets import Float

STUCK_ENAME = "KernelStuckError"


class Execute(NbgraderExecute):
    probe_timeout = Float(10.0, help="Seconds a kernel has to answer after a timed-out cell "
                                     "before it counts as stuck.").tag(config=True)

    def preprocess(self, nb, resources=None, km=None):
        self._stuck_after = None
        return super().preprocess(nb, resources, km)

    async def _async_kernel_answers(self) -> bool:
        msg_id = self.kc.kernel_info()
        deadline = time.monotonic() + self.probe_timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            try:
                msg = await self.kc.shell_channel.get_msg(timeout=remaining)
            except (Empty, asyncio.TimeoutError):
                return False
            if msg.get("parent_header", {}).get("msg_id") == msg_id:
                return True

    kernel_answers = run_sync(_async_kernel_answers)

    def _timed_out(self, cell) -> bool:
        name = self.error_on_timeout.get("ename", "CellTimeoutError") if self.error_on_timeout else "CellTimeoutError"
        return any(o.get("output_type") == "error" and o.get("ename") == name for o in cell.get("outputs", []))

    def preprocess_cell(self, cell, resources, index):
        if cell.cell_type == "code" and getattr(self, "_stuck_after", None) is not None and cell.source.strip():
            err = NotebookNode(output_type="error", ename=STUCK_ENAME,
                               evalue=f"not run: the kernel is still stuck in cell {self._stuck_after}",
                               traceback=[f"{STUCK_ENAME}: not run - cell {self._stuck_after} ran past the time "
                                          "limit inside compiled code (an endless @njit loop?), which cannot be "
                                          "interrupted, so the kernel never became free again"])
            cell.outputs = [err]
            return cell, resources
        cell, resources = super().preprocess_cell(cell, resources, index)
        if cell.cell_type == "code" and self._timed_out(cell) and not self.kernel_answers():
            self.log.warning("The kernel does not answer after cell %s timed out; the remaining cells are "
                             "marked as not run", index)
            self._stuck_after = index
        return cell, resources
