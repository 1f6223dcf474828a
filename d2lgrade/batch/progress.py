"""What the instructor sees while a batch runs: a live bar (rich), or one log line per submission.

Student ids come from folder names and the text from the grading (error messages): both are the
submission's, so they are shown through neutral.terminal_text, and rich reads no markup in them."""
from __future__ import annotations

import sys
import time

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from d2lgrade.report.neutral import terminal_text


class BatchProgress:
    def __init__(self, total: int, skipped: int, quiet: bool = False):
        self.total, self.quiet = total, quiet
        self.counts = {"graded": 0, "failed": 0, "skipped": skipped}
        self.started = time.monotonic()
        self._bar = None
        if not quiet:
            self._bar = Progress(TextColumn("grading"), BarColumn(), MofNCompleteColumn(),
                                 TextColumn("{task.fields[summary]}"), TimeRemainingColumn(),
                                 console=Console(stderr=True), transient=True)
            self._task = self._bar.add_task("batch", total=total, completed=skipped, summary=self._summary())
            self._bar.start()

    def _summary(self) -> str:
        done = sum(self.counts.values())
        return (f"graded {self.counts['graded']} · failed {self.counts['failed']} · "
                f"skipped {self.counts['skipped']} · remaining {self.total - done}")

    def finished(self, student: str, section: str, status: str, text: str) -> None:
        self.counts["graded" if status == "graded" else "failed"] += 1
        if self._bar is not None:
            self._bar.update(self._task, advance=1, summary=self._summary())
        else:
            done = sum(self.counts.values())
            print(f"[{done}/{self.total}] {_line(student, section, text)}", file=sys.stderr, flush=True)

    def retrying(self, student: str, section: str, text: str) -> None:
        if self._bar is not None:
            self._bar.console.print(_line(student, section, text), markup=False, highlight=False)
        else:
            print(_line(student, section, text), file=sys.stderr, flush=True)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.stop()
            self._bar = None


def _line(student: str, section: str, text: str) -> str:
    return f"{terminal_text(student)} {terminal_text(section)}: {terminal_text(text)}"
