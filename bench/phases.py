#!/usr/bin/env python3
"""Where one grading's time goes: wall clock against CPU time, phase by phase.

    python bench/phases.py 7.6 [--executor kernel] [--json out.json] [--requests]

Grades the section's reference the way `python grade.py X.Y reference/section_X_Y.py --json` does, in this
process, and splits the time into phases: the interpreter's imports, the runtime's start (engine start,
sandbox, agent), the student's cells, each check, and the report. For each phase it prints the wall time,
the grader process's CPU time (all its threads) and the runtime's (every process below this one: the
sandbox launcher, the kernel and whatever they started, read from /proc, reaped children included). What
the machine ran other jobs while the grading's threads were ready (`queued`, the scheduler's run delay of the
live threads, /proc/*/schedstat) is taken off too; what is left is time in which neither side computed nor
wanted to: process starts waiting on each other, polling intervals, sleeps, hand-offs (negative when both
sides ran at once). The runtime column includes every child process (the reference runs of d2lgrade/numerics/pinned.py
too); a process that has exited takes its queued time with it.
--requests also times each runtime round trip (the request's wall time against the runtime's CPU in it).

For a profile of the grader's own code, run it under cProfile:
    python -m cProfile -o 7.6.prof bench/phases.py 7.6
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import time
from pathlib import Path

STARTED_WALL = time.monotonic()
STARTED_CPU = time.process_time()
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
TICK = os.sysconf("SC_CLK_TCK")


def run_delay(pids) -> float:
    """Seconds the threads of `pids` spent ready to run but waiting for a CPU (/proc/PID/task/*/schedstat):
    the share of the wall clock that other jobs on the machine took, not the grading's own waits."""
    total = 0
    for pid in pids:
        for task in Path(f"/proc/{pid}/task").glob("*"):
            try:
                total += int((task / "schedstat").read_text().split()[1])
            except (OSError, IndexError, ValueError):
                continue
    return total / 1e9


def descendants(pid: int | None = None) -> list[int]:
    pid = pid or os.getpid()
    found, stack = [], [pid]
    while stack:
        current = stack.pop()
        try:
            children = Path(f"/proc/{current}/task/{current}/children").read_text().split()
        except OSError:
            children = []
        found += map(int, children)
        stack += map(int, children)
    return found


def descendants_cpu(pid: int | None = None) -> float:
    """CPU seconds of every live process below `pid` (this process by default), with what each has reaped."""
    total = 0.0
    for child in descendants(pid):
        try:
            fields = Path(f"/proc/{child}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += sum(int(fields[i]) for i in (11, 12, 13, 14)) / TICK   # utime stime cutime cstime
    return total


class Clock:
    """Wall, grader CPU and runtime CPU since the last `mark`; runtime CPU that vanished with a process that
    nobody reaped (a killed kernel) is counted from RUSAGE_CHILDREN."""

    def __init__(self):
        self.rows: list[dict] = []
        self._last = self._now()

    @staticmethod
    def _now():
        children = resource.getrusage(resource.RUSAGE_CHILDREN)
        return (time.monotonic(), time.process_time(), descendants_cpu(), children.ru_utime + children.ru_stime,
                run_delay([os.getpid(), *descendants()]))

    def mark(self, phase: str, **extra) -> dict:
        now = self._now()
        wall, grader = now[0] - self._last[0], now[1] - self._last[1]
        runtime = max(0.0, now[2] - self._last[2]) + (now[3] - self._last[3])
        queued = max(0.0, now[4] - self._last[4])
        self._last = now
        row = {"phase": phase, "wall": round(wall, 3), "grader_cpu": round(grader, 3),
               "runtime_cpu": round(runtime, 3), "queued": round(queued, 3),
               "idle": round(wall - grader - runtime - queued, 3), **extra}
        self.rows.append(row)
        return row


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("section")
    parser.add_argument("--executor", default="kernel", choices=("kernel", "warm"))
    parser.add_argument("--json", help="also write the rows to this file")
    parser.add_argument("--requests", action="store_true", help="time every runtime round trip")
    args = parser.parse_args()

    imports = time.monotonic()
    from d2lgrade.pipeline import grading
    from d2lgrade.core import sections
    from d2lgrade.load import load_submission
    from d2lgrade.run.engines import get_executor
    clock = Clock()
    clock.rows.append({"phase": "interpreter and imports", "wall": round(time.monotonic() - STARTED_WALL, 3),
                       "grader_cpu": round(time.process_time() - STARTED_CPU, 3), "runtime_cpu": 0.0,
                       "queued": round(run_delay([os.getpid()]), 3), "idle": None, "note": f"of it, d2lgrade's imports {time.monotonic() - imports:.2f} s"})

    section = sections.find_section(args.section)
    submission = load_submission(ROOT / "reference" / f"section_{args.section.replace('.', '_')}.py")
    engine = get_executor(args.executor)
    original_start, original_run_check = engine.start, grading.run_check
    requests: list[dict] = []

    def start(submission, options):
        runtime = original_start(submission, options)
        clock.mark("runtime start and the student's cells", engine=engine.name,
                   cells=len(getattr(runtime, "cell_runs", [])))
        if args.requests:
            request = runtime.request

            def timed(payload, timeout):
                before = (time.monotonic(), descendants_cpu(), time.process_time())
                try:
                    return request(payload, timeout)
                finally:
                    requests.append({"kind": payload.get("kind") or payload.get("op") or "?",
                                     "wall": time.monotonic() - before[0],
                                     "runtime_cpu": descendants_cpu() - before[1],
                                     "grader_cpu": time.process_time() - before[2]})
            runtime.request = timed
        return runtime

    def run_check(check, runtime, options, submission=None):
        first = len(requests)
        result = original_run_check(check, runtime, options, submission)
        mine = requests[first:]
        extra = {"status": result.status}
        if args.requests:
            extra.update(requests=len(mine), request_wall=round(sum(r["wall"] for r in mine), 3),
                         request_runtime_cpu=round(sum(r["runtime_cpu"] for r in mine), 3))
        clock.mark(f"check {check.id}", **extra)
        return result

    engine.start = start
    grading.run_check = run_check
    try:
        clock.mark("section and submission loaded")
        report = grading.grade_submission(section, submission, executor=engine)
    finally:
        engine.start, grading.run_check = original_start, original_run_check
    clock.mark("report, runtime closed")
    score = f"{report.score:g}/{report.max_score:g}" if hasattr(report, "score") else ""

    total = {"phase": "total", **{k: round(sum(r[k] for r in clock.rows if r[k] is not None), 3)
                                  for k in ("wall", "grader_cpu", "runtime_cpu", "queued")}}
    total["idle"] = round(total["wall"] - total["grader_cpu"] - total["runtime_cpu"] - total["queued"], 3)
    print(f"{args.section} reference, executor {engine.name}, score {score}; load {os.getloadavg()[0]:.2f}")
    print(f"{'phase':44} {'wall':>7} {'grader':>7} {'runtime':>7} {'queued':>7} {'idle':>7}")
    for row in clock.rows + [total]:
        idle = "" if row["idle"] is None else f"{row['idle']:7.2f}"
        extra = {k: v for k, v in row.items() if k not in ("phase", "wall", "grader_cpu", "runtime_cpu", "queued", "idle")}
        print(f"{row['phase'][:44]:44} {row['wall']:7.2f} {row['grader_cpu']:7.2f} {row['runtime_cpu']:7.2f} "
              f"{idle:>7} {' '.join(f'{k}={v}' for k, v in extra.items())}")
    if args.requests and requests:
        print(f"{len(requests)} round trips: wall {sum(r['wall'] for r in requests):.2f} s, runtime CPU "
              f"{sum(r['runtime_cpu'] for r in requests):.2f} s, grader CPU {sum(r['grader_cpu'] for r in requests):.2f} s")
    if args.json:
        Path(args.json).write_text(json.dumps({"rows": clock.rows + [total], "requests": requests}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
