#!/usr/bin/env python3
"""How long `python grade.py X.Y --watch` takes from a save to the new grade on the screen.

    python bench/watch.py [--section 7.3] [--saves 10] [--executor auto]

Starts the watcher on a copy of the section's reference in a temporary folder, waits for its first
grading (that one also starts the engine), then saves the file --saves times (a changed comment each time,
so the grade must come back the same) and times each save until the watcher prints "graded in". The
latency includes the watcher's polling interval; figures are the median and the worst save.
"""
from __future__ import annotations

import argparse
import os
import queue
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def lines_of(process: subprocess.Popen) -> "queue.Queue[tuple[float, str]]":
    """Each line the watcher prints, with the moment it arrived, read on a thread so a wait can time out."""
    lines: queue.Queue[tuple[float, str]] = queue.Queue()

    def pump() -> None:
        for line in process.stdout:
            lines.put((time.monotonic(), line))
        lines.put((time.monotonic(), ""))
    threading.Thread(target=pump, daemon=True).start()
    return lines


def next_grading(lines: "queue.Queue[tuple[float, str]]", limit: float) -> tuple[float, list[str]]:
    """The moment the watcher reported a finished grading, and what it printed for it."""
    printed = []
    deadline = time.monotonic() + limit
    while True:
        at, line = lines.get(timeout=max(0.1, deadline - time.monotonic()))
        if not line:
            raise SystemExit("the watcher stopped:\n" + "".join(printed[-20:]))
        printed.append(line)
        if line.startswith("graded in "):
            return at, printed


def verdicts(printed: list[str]) -> str:
    """The grade's table, without the header and footer lines that carry timings."""
    return "".join(line for line in printed if not line.startswith(("d2l-grade ", "graded in ")))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--section", default="7.3")
    parser.add_argument("--saves", type=int, default=10)
    parser.add_argument("--executor", default="auto")
    args = parser.parse_args()
    from d2lgrade.numerics import cpu_name

    folder = Path(tempfile.mkdtemp(prefix="d2lgrade-watch-"))
    answer = folder / f"section_{args.section.replace('.', '_')}.py"
    shutil.copy(ROOT / "reference" / answer.name, answer)
    command = [sys.executable, "grade.py", args.section, str(answer), "--watch", "--executor", args.executor]
    process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                               env={**os.environ, "PYTHONUNBUFFERED": "1"})
    lines = lines_of(process)
    try:
        started = time.monotonic()
        at, first = next_grading(lines, 600)
        first_seconds = at - started
        latencies, reports = [], []
        for n in range(args.saves):
            time.sleep(0.5)                     # a person's pause between saves; also lets mtime move on
            text = answer.read_text() + f"\n# save {n}\n"
            saved = time.monotonic()
            answer.write_text(text)
            at, printed = next_grading(lines, 120)
            latencies.append(at - saved)
            reports.append(verdicts(printed))
    finally:
        process.terminate()
        process.wait(10)
        shutil.rmtree(folder, ignore_errors=True)
    same = set(reports) == {verdicts(first)}
    print(f"CPU: {cpu_name()}; load {os.getloadavg()[0]:.2f}; executor {args.executor}; section {args.section}")
    print(f"first grading (starts the engine): {first_seconds:.2f} s")
    print(f"save -> new grade over {len(latencies)} saves: median {statistics.median(latencies):.2f} s, "
          f"worst {max(latencies):.2f} s, best {min(latencies):.2f} s; every report the same as the first: {same}")


if __name__ == "__main__":
    main()
