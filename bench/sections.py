#!/usr/bin/env python3
"""Each section's reference graded, as a multiple of the cost of merely starting torch and d2l.

    python bench/sections.py [--sections 7.3 8.2] [--repeat 3] [--cold | --warm] [--executor auto]

The floor is a bare `python -c "import torch; from d2l import torch as d2l"`, measured in the same run
and interleaved with the gradings (floor, then each section, --repeat times), so that a loaded machine
slows both alike; figures are medians. Each grading is `python grade.py X.Y reference/section_X_Y.py
--json`, timed by the wall clock and by CPU time (user + system of the process and all its descendants:
the process tree read from /proc every 50 ms, or RUSAGE_CHILDREN where that is larger; the bench adopts
orphaned descendants as their subreaper so that none is missed). A wall time well above the CPU time means the machine waited
on the grader (process starts, polling, sleeps).

--cold  empties the expected-value cache (.d2lgrade-cache/expected, d2lgrade/values/expected_cache.py) before
        every grading; the reference-run cache (training runs) is kept: those take minutes each.
--warm  grades each section once, untimed, first, so that every expected value is already kept.
Neither: the cache as it is.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

FLOOR = [sys.executable, "-c", "import torch; from d2l import torch as d2l"]


def adopt_orphans() -> bool:
    """Become the subreaper of everything the gradings start (Linux): a runtime or sandbox process whose parent
    exits without waiting for it is handed to this process instead of init, so its CPU time is counted too."""
    try:
        import ctypes
        return ctypes.CDLL(None, use_errno=True).prctl(36, 1, 0, 0, 0) == 0     # PR_SET_CHILD_SUBREAPER
    except (OSError, AttributeError):
        return False


def reap(grace: float = 2.0) -> None:
    """Wait for adopted orphans (for up to `grace` seconds), so that getrusage counts them."""
    deadline = time.monotonic() + grace
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            if time.monotonic() > deadline:
                return
            time.sleep(0.05)


def timed(command: list[str]) -> tuple[float, float, subprocess.CompletedProcess]:
    """(wall seconds, CPU seconds of the command and all its descendants, the finished process).

    RUSAGE_CHILDREN alone misses processes that are killed rather than waited for on the way up (a
    sandboxed kernel: measured 4.6 s against 7.8 s for a 7.3 grading), so the process tree is also read
    from /proc every 50 ms, each process's own CPU time kept at its last reading; the larger of the two
    sums counts (the sampled one misses at most the last 50 ms of each process)."""
    from phases import TICK, descendants
    before, start = resource.getrusage(resource.RUSAGE_CHILDREN), time.perf_counter()
    process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    own: dict[int, float] = {}
    out: list[str] = []
    reader = threading.Thread(target=lambda: out.extend(process.communicate()), daemon=True)
    reader.start()
    while reader.is_alive():
        for pid in descendants():
            try:
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            own[pid] = max(own.get(pid, 0.0), (int(fields[11]) + int(fields[12])) / TICK)
        reader.join(0.05)
    wall = time.perf_counter() - start
    reap()
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    waited = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    done = subprocess.CompletedProcess(command, process.returncode, *out)
    return wall, max(waited, sum(own.values())), done


def grading(section: str, executor: str) -> list[str]:
    slug = section.replace(".", "_")
    return [sys.executable, "grade.py", section, f"reference/section_{slug}.py", "--json", "--executor", executor]


def empty_expected_cache() -> None:
    from d2lgrade.values import expected_cache
    shutil.rmtree(expected_cache.folder(), ignore_errors=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sections", nargs="+", default=None, help="sections to grade (default: all)")
    parser.add_argument("--repeat", type=int, default=3, help="paired runs; figures are medians")
    parser.add_argument("--executor", default="auto", help="grade.py --executor (default: auto)")
    cache = parser.add_mutually_exclusive_group()
    cache.add_argument("--cold", action="store_true", help="no expected value kept before each grading")
    cache.add_argument("--warm", action="store_true", help="every expected value kept before timing")
    parser.add_argument("--json", action="store_true", help="print the figures as one JSON document")
    args = parser.parse_args()

    from d2lgrade import numerics
    from d2lgrade.core.sections import all_sections
    sections = args.sections or [s.id for s in all_sections()]
    orphans_counted = adopt_orphans()
    mode = "cold" if args.cold else "warm" if args.warm else "as found"
    if args.warm:
        for section in sections:
            timed(grading(section, args.executor))

    floors, runs = [], {s: [] for s in sections}
    for _ in range(args.repeat):
        wall, cpu, done = timed(FLOOR)
        if done.returncode != 0:
            raise SystemExit(f"the floor did not run: {done.stderr.strip()[-500:]}")
        floors.append((wall, cpu))
        for section in sections:
            if args.cold:
                empty_expected_cache()
            wall, cpu, done = timed(grading(section, args.executor))
            try:
                report = json.loads(done.stdout)
            except json.JSONDecodeError:
                raise SystemExit(f"grade.py {section} printed no JSON: {done.stderr.strip()[-500:]}")
            runs[section].append((wall, cpu, report["score"], report["max_score"]))

    floor_wall = statistics.median(w for w, _ in floors)
    floor_cpu = statistics.median(c for _, c in floors)
    rows = []
    for section in sections:
        wall = statistics.median(r[0] for r in runs[section])
        cpu = statistics.median(r[1] for r in runs[section])
        rows.append({"section": section, "wall_s": round(wall, 2), "cpu_s": round(cpu, 2),
                     "wall_x": round(wall / floor_wall, 2), "cpu_x": round(cpu / floor_cpu, 2),
                     "waiting": round(wall / cpu - 1, 2) if cpu else None,
                     "score": f"{runs[section][-1][2]}/{runs[section][-1][3]}"})
    document = {"cpu": numerics.cpu_name(), "cache": mode, "orphans_counted": orphans_counted, "executor": args.executor, "repeat": args.repeat,
                "floor": {"wall_s": round(floor_wall, 2), "cpu_s": round(floor_cpu, 2)}, "sections": rows}
    if args.json:
        print(json.dumps(document, indent=2))
        return 0
    print(f"CPU: {document['cpu']}; expected-value cache: {mode}; executor {args.executor}; "
          f"medians of {args.repeat} paired runs" + ("" if orphans_counted else "; CPU time of orphaned processes missed"))
    print(f"floor (import torch, d2l): {floor_wall:.2f} s wall, {floor_cpu:.2f} s CPU")
    print(f"{'section':8} {'wall s':>7} {'× floor':>8} {'CPU s':>7} {'× floor':>8} {'wall/CPU-1':>10}  score")
    for r in rows:
        waiting = f"{r['waiting'] * 100:+.0f} %" if r["waiting"] is not None else "-"
        print(f"{r['section']:8} {r['wall_s']:7.2f} {r['wall_x']:8.2f} {r['cpu_s']:7.2f} {r['cpu_x']:8.2f} "
              f"{waiting:>10}  {r['score']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
