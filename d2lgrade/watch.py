"""`python grade.py 7.3 --watch`: grade again whenever the submission is saved.

Polls the file's modification time (no extra dependency, works on every filesystem); with the warm
engine the parent stays up between gradings, so a regrade costs a fork plus the student's own cells
and the checks. Ctrl-C ends it.
"""
from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Callable

from d2lgrade.core.errors import UserError
from d2lgrade.report.neutral import terminal_text

POLL_SECONDS = 0.2


def stamp(path: Path) -> tuple[int, int] | None:
    """What changes when the file is saved; None while it is missing (some editors save by rename)."""
    try:
        info = path.stat()
    except OSError:
        return None
    return info.st_mtime_ns, info.st_size


def watch(path: Path, grade_once: Callable[[], None]) -> int:
    """Run `grade_once` now and after every save of `path`, saying how long each took."""
    seen = object()
    try:
        while True:
            now = stamp(path)
            if now != seen and now is not None:
                seen = now
                started = time.monotonic()
                try:
                    grade_once()
                except UserError as exc:          # e.g. a notebook saved half-way: wait for the next save
                    print(f"error: {terminal_text(exc)}", file=sys.stderr, flush=True)
                print(f"graded in {time.monotonic() - started:.2f} s; watching {path} for changes "
                      "(Ctrl-C to stop)", flush=True)
            time.sleep(POLL_SECONDS)
    except KeyboardInterrupt:
        print("stopped watching", flush=True)
        return 0
