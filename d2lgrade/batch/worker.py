"""What one worker process does: take a submission, grade it through the student's pipeline, answer.

A worker lives for many submissions, so an engine that keeps a warm parent (the fork-server
executor) pays its start-up once per worker, not once per submission.
"""
from __future__ import annotations

import os
import resource
import traceback
from pathlib import Path

from d2lgrade.core.errors import SubmissionError
from d2lgrade.core.feedback import RECORD
from d2lgrade.run.executor import RuntimeOptions
from d2lgrade.run.engines import get_executor
from d2lgrade.core.sections import Section


# What grading one submission may add to a worker's address space: the wire admits 512 MiB of answers,
# and comparing them copies them a few times. Past it an allocation fails in the grader's process, which
# costs that check (an internal error), not the worker, the machine or the batch.
# D2LGRADE_WORKER_MEMORY_MB overrides it (tests use a small one).
WORKER_HEADROOM_BYTES = 6 * 2**30


def serve(conn, executor: str, options: RuntimeOptions) -> None:
    # Its own process group: Ctrl-C in the terminal reaches the batch's main process, which
    # decides what happens to the work in flight, instead of every worker at once.
    os.setpgrp()
    get_executor(executor)          # start (warm) the engine before the first submission arrives
    from d2lgrade.pipeline import grading    # noqa: F401  (imported before the limit is measured)
    limit_own_memory(options)
    try:
        conn.send({"ready": os.getpid()})
        while (task := conn.recv()) is not None:
            conn.send({**task, **grade_task(task, executor, options), "memory": peak_memory(), "worker": os.getpid()})
    except (EOFError, BrokenPipeError):
        return        # the batch is gone (killed): nobody to answer, nothing to keep


def grade_task(task: dict, executor: str, options: RuntimeOptions) -> dict:
    from d2lgrade.pipeline.grading import grade
    try:
        # Both texts of every check go to the gradebook; publish cuts each page to the course's level.
        report = grade(Section(task["section"]), Path(task["path"]), options=options, executor=executor,
                       feedback=RECORD)
    except SubmissionError as exc:
        return {"status": "invalid", "message": str(exc)}
    except Exception as exc:   # a fault of the grader or the engine: one row says so, the batch goes on
        return {"status": "error", "message": f"grading stopped: {type(exc).__name__}: {exc}",
                "detail": traceback.format_exc()}
    return {"status": "graded", "report": report.to_dict()}


def limit_own_memory(options: RuntimeOptions) -> None:
    """A soft address-space limit on this worker: what it maps now plus the headroom. Soft only, so
    the student runtimes it starts still raise theirs to the runtime's own limit (the sandbox sets
    both). Not with CUDA, which reserves far more address space than it uses."""
    if str(options.device).startswith("cuda"):
        return
    headroom = int(os.environ.get("D2LGRADE_WORKER_MEMORY_MB") or 0) * 2**20 or WORKER_HEADROOM_BYTES
    try:
        with open("/proc/self/status") as f:
            mapped = next(int(line.split()[1]) * 1024 for line in f if line.startswith("VmSize:"))
        hard = resource.getrlimit(resource.RLIMIT_AS)[1]
        soft = mapped + headroom if hard == resource.RLIM_INFINITY else min(mapped + headroom, hard)
        resource.setrlimit(resource.RLIMIT_AS, (soft, hard))
    except (OSError, StopIteration, ValueError):
        pass                        # not Linux: the machine's own limits apply


def peak_memory() -> dict:
    """Peak resident memory in MiB: this worker, and the largest student runtime it has closed."""
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    runtimes = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return {"worker_mb": round(own, 1), "runtime_mb": round(runtimes, 1)}
