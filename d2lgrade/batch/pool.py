"""A small pool of worker processes that survives the death of any of them.

concurrent.futures' process pool marks itself broken when one worker dies; here each worker has its
own pipe, so the pool knows which submission a dead worker held, records that as an error, retries it
once on a fresh worker and carries on. A submission that runs far past its time limit is killed the
same way.
"""
from __future__ import annotations

import multiprocessing
import signal
import time
from collections import deque
from dataclasses import dataclass, field
from multiprocessing.connection import wait
from typing import Callable, Iterable, Iterator

from d2lgrade.batch import worker
from d2lgrade.core.errors import UserError
from d2lgrade.run.executor import RuntimeOptions

ATTEMPTS = 2                 # a submission whose worker dies is tried once more
STARTS = 3                   # workers that die before their first submission, before the pool gives up
BACKSTOP_SECONDS = 60        # beyond the runtime's own total limit, before the pool kills the worker


@dataclass
class _Worker:
    process: multiprocessing.Process
    conn: object
    task: dict | None = None
    started: float = 0.0
    ready: bool = False
    killed_for: str = ""


@dataclass
class WorkerPool:
    size: int
    executor: str
    options: RuntimeOptions
    on_start: Callable[[dict, int], None] | None = None   # (task, worker pid), e.g. for progress or tests
    _workers: list[_Worker | None] = field(default_factory=list)   # None: a slot retired, no work left

    def __post_init__(self):
        # spawn: a fresh interpreter, never a fork of a parent that holds threads (the progress
        # display) or the gradebook's SQLite handle.
        self._ctx = multiprocessing.get_context("spawn")
        self._backstop = self.options.limits.total_seconds + BACKSTOP_SECONDS
        self._failed_starts = 0

    def run(self, tasks: Iterable[dict]) -> Iterator[dict]:
        """Grade `tasks` (dicts with student, section, path); yield each outcome as it arrives.

        An outcome is the task plus status (graded | invalid | error), and report or message. A worker
        that dies yields an error outcome with `retrying` set when the task goes back in the queue."""
        queue = deque({**t, "attempt": 1} for t in tasks)
        try:
            self._workers = [self._spawn() for _ in range(min(self.size, len(queue)))]
            while queue or any(w.task for w in self._live()):
                for w in self._live():
                    if w.ready and w.task is None and queue:
                        self._dispatch(w, queue.popleft())
                wait([w.conn for w in self._live()] + [w.process.sentinel for w in self._live()], timeout=1.0)
                for i, w in enumerate(self._workers):
                    if w is not None:
                        yield from self._collect(i, w, queue)
        finally:
            self.close()

    def _live(self) -> list[_Worker]:
        return [w for w in self._workers if w is not None]

    def _collect(self, index: int, w: _Worker, queue: deque) -> Iterator[dict]:
        try:
            while w.conn.poll():
                message = w.conn.recv()
                if "ready" in message:
                    w.ready = True
                    continue
                w.task = None
                yield message
        except (EOFError, OSError):
            pass                                  # the pipe closed: the process is dead, see below
        if w.task and time.monotonic() - w.started > self._backstop:
            w.killed_for = f"it ran past {self._backstop:g} s"
            w.process.kill()
            w.process.join(5)
        if w.process.is_alive():
            return
        w.conn.close()
        task, w.task = w.task, None
        if not w.ready:
            self._failed_starts += 1
            if self._failed_starts >= STARTS:
                raise UserError(f"worker processes exit before grading anything (exit code {w.process.exitcode}); "
                                "run `python grade.py 7.3` to see the error, e.g. a missing dependency (bash setup.sh).")
        if task is not None:
            code = w.process.exitcode
            why = w.killed_for or (f"signal {signal.Signals(-code).name}" if code and code < 0 else f"exit code {code}")
            retry = task["attempt"] < ATTEMPTS
            if retry:
                queue.appendleft({**task, "attempt": task["attempt"] + 1})
            yield {**task, "status": "error", "retrying": retry,
                   "message": f"the worker grading it died ({why})" + ("; retrying once" if retry else "")}
        # A fresh worker only where work is left for it.
        self._workers[index] = self._spawn() if queue else None

    def _spawn(self) -> _Worker:
        parent, child = self._ctx.Pipe()
        process = self._ctx.Process(target=worker.serve, args=(child, self.executor, self.options),
                                    name="d2lgrade-worker")
        process.start()
        child.close()
        return _Worker(process=process, conn=parent)

    def _dispatch(self, w: _Worker, task: dict) -> None:
        w.task, w.started = task, time.monotonic()
        w.conn.send(task)
        if self.on_start:
            self.on_start(task, w.process.pid)

    def close(self) -> None:
        """Stop every worker; their student runtimes die with them (the sandbox watches its parent)."""
        for w in self._live():
            try:
                w.conn.send(None)
            except (OSError, ValueError):
                pass
        deadline = time.monotonic() + 2
        for w in self._live():
            if w.task is not None:
                w.process.kill()          # mid-submission (Ctrl-C): nothing of it is kept
            w.process.join(max(0.1, deadline - time.monotonic()))
            if w.process.is_alive():
                w.process.kill()
                w.process.join(5)
            w.conn.close()
        self._workers = []
