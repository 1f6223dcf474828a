"""Seconds per submission: the warm engine, a fresh Jupyter kernel per notebook, and bare nbclient.

    python bench/executors.py --n 60 [--sections 7.1 7.2 7.3 7.4 7.5] [--call-timeout 2]

Builds N chapter-7 notebooks the book's way (`from d2l import torch as d2l` first, then the
reference's cells under `## 7.x/n` headings), a quarter each right, wrong (every answer replaced by
a wrong one), crashing (the runtime ends itself with os._exit, so it is restarted and the good cells
replayed) and timing out (one function never returns, so the call limit fires), and in one run grades them one after another:
(a) with the warm engine, (b) with the kernel engine (a fresh kernel per notebook, as nbgrader does),
and (c) runs each bare with nbclient, no checks (nbgrader's floor). Prints seconds per submission,
the ratios (b)/(a) and (c)/(a), the warm engine's overhead per submission (wall time minus time
inside its children, i.e. the student's cells and the checks' calls; split into forks and the rest),
peak memory of the parent and of a child, and ends with one line of JSON. Not a timed test: run it
on a quiet machine.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import nbformat  # noqa: E402

from d2lgrade.pipeline.grading import grade  # noqa: E402
from d2lgrade.load import load_submission  # noqa: E402
from d2lgrade.run.executor import RuntimeOptions  # noqa: E402
from d2lgrade.run.limits import Limits  # noqa: E402
from d2lgrade.core.sections import find_section  # noqa: E402

KINDS = ("right", "wrong", "crashing", "timeout")
WRONG_ANSWERS = '''import torch as _torch
for _name in %r:
    if callable(globals().get(_name)):
        globals()[_name] = lambda *args, **kwargs: _torch.zeros(1)
    elif _name in globals():
        globals()[_name] = "0"
'''

# The first function of the contract never returns: the checks that call it meet the call limit.
HANGING_ANSWER = '''for _name in %r:
    if callable(globals().get(_name)):
        def _hang(*args, **kwargs):
            while True:
                pass
        globals()[_name] = _hang
        break
'''


def build(n: int, sections: list[str], folder: Path) -> list[tuple[str, str, Path]]:
    """(section, kind, notebook) for N notebooks cycling through the sections and the kinds."""
    made = []
    for i in range(n):
        section = find_section(sections[i % len(sections)])
        kind = KINDS[i % len(KINDS)]          # with 5 sections and 4 kinds, 20 notebooks cover every pair
        cells = [nbformat.v4.new_code_cell("from d2l import torch as d2l\nimport torch\nfrom torch import nn")]
        for cell in load_submission(section.reference_path).cells:
            if cell.kind != "code" or not cell.source.strip():
                continue
            if cell.exercise:
                cells.append(nbformat.v4.new_markdown_cell(f"## {cell.exercise}"))
            cells.append(nbformat.v4.new_code_cell(cell.source))
        names = sorted({name for ex in section.spec.exercises for name in ex.contract})
        if kind == "wrong":
            cells.append(nbformat.v4.new_code_cell(WRONG_ANSWERS % (names,)))
        elif kind == "crashing":
            cells.append(nbformat.v4.new_code_cell("import os\nos._exit(1)"))
        elif kind == "timeout":
            cells.append(nbformat.v4.new_code_cell(HANGING_ANSWER % (names,)))
        nb = nbformat.v4.new_notebook(cells=cells)
        nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
        path = folder / f"{i:03d}-{section.slug}-{kind}.ipynb"
        nbformat.write(nb, path)
        made.append((section.id, kind, path))
    return made


def graded(notebooks, executor: str, options: RuntimeOptions) -> list[float]:
    seconds = []
    for section_id, kind, path in notebooks:
        started = time.perf_counter()
        report = grade(find_section(section_id), path, options=options, executor=executor)
        seconds.append(time.perf_counter() - started)
        print(f"  {executor:6} {path.name:34} {seconds[-1]:6.2f} s  score {report.score:g}/{report.max_score:g}",
              flush=True)
    return seconds


def bare_nbclient(notebooks, cell_timeout: float) -> list[float]:
    from nbclient import NotebookClient
    seconds = []
    for _, _, path in notebooks:
        nb = nbformat.read(path, as_version=4)
        started = time.perf_counter()
        try:
            NotebookClient(nb, timeout=int(cell_timeout), allow_errors=True, kernel_name="python3",
                           resources={"metadata": {"path": str(path.parent)}}).execute()
        except Exception as exc:          # a kernel that died (os._exit): nbgrader records it and goes on
            print(f"  nbclient {path.name}: {type(exc).__name__}", flush=True)
        seconds.append(time.perf_counter() - started)
        print(f"  bare   {path.name:34} {seconds[-1]:6.2f} s", flush=True)
    return seconds


class CheckClock:
    """Times every check (grading.run_check) while active, and the part of it spent inside children."""

    def __init__(self, timings):
        self.timings, self.seconds, self.in_child = timings, 0.0, 0.0

    def __enter__(self):
        from d2lgrade.pipeline import grading
        self._original = original = grading.run_check

        def timed(*args, **kwargs):
            started, child = time.perf_counter(), self.timings.child_seconds
            try:
                return original(*args, **kwargs)
            finally:
                self.seconds += time.perf_counter() - started
                self.in_child += self.timings.child_seconds - child
        grading.run_check = timed
        return self

    def __exit__(self, *exc):
        from d2lgrade.pipeline import grading
        grading.run_check = self._original


def peak_kb(pid: int | None) -> int:
    try:
        with open(f"/proc/{pid}/status") as f:
            return next(int(line.split()[1]) for line in f if line.startswith("VmHWM:"))
    except (OSError, StopIteration, ValueError, TypeError):
        return 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=60)
    parser.add_argument("--sections", nargs="+", default=["7.1", "7.2", "7.3", "7.4", "7.5"])
    parser.add_argument("--call-timeout", type=float, default=2.0, help="seconds per call (the timing-out kind)")
    args = parser.parse_args()
    from d2lgrade.run import warm

    limits = Limits(call_seconds=args.call_timeout)
    options = RuntimeOptions(limits=limits)
    with tempfile.TemporaryDirectory(prefix="d2lgrade-bench-") as tmp:
        notebooks = build(args.n, args.sections, Path(tmp))
        print(f"{len(notebooks)} notebooks: {', '.join(args.sections)}; kinds {', '.join(KINDS)}", flush=True)
        engine = warm.shared_executor()
        started = time.perf_counter()
        grade(find_section(args.sections[0]), notebooks[0][2], options=options, executor="warm")
        parent_start = time.perf_counter() - started          # the parent's imports, paid once per process
        warm.TIMINGS.reset()
        checks = CheckClock(warm.TIMINGS)
        with checks:
            warm_seconds = graded(notebooks, "warm", options)
        timings = warm.TIMINGS
        kernel_seconds = graded(notebooks, "kernel", options)
        bare_seconds = bare_nbclient(notebooks, limits.cell_seconds)

    n = len(notebooks)
    a, b, c = sum(warm_seconds) / n, sum(kernel_seconds) / n, sum(bare_seconds) / n
    cells = timings.child_seconds - checks.in_child           # the student's cells, replays included
    overhead = (sum(warm_seconds) - cells - checks.seconds) / n
    figures = {
        "n": n, "warm_s": round(a, 3), "kernel_s": round(b, 3), "nbclient_s": round(c, 3),
        "kernel_over_warm": round(b / a, 2), "nbclient_over_warm": round(c / a, 2),
        "warm_median_s": round(statistics.median(warm_seconds), 3),
        "warm_overhead_s": round(overhead, 3), "warm_fork_s": round(timings.fork_seconds / n, 3),
        "warm_forks": timings.forks, "warm_cells_s": round(cells / n, 3),
        "warm_checks_s": round(checks.seconds / n, 3), "warm_checks_in_child_s": round(checks.in_child / n, 3),
        "parent_start_s": round(parent_start, 2),
        "parent_peak_mb": round(peak_kb(engine.parent.pid) / 1024, 1),
        "child_peak_mb": round(timings.child_peak_kb / 1024, 1),
    }
    print()
    print(f"seconds per submission: warm {a:.3f}, kernel {b:.3f}, bare nbclient {c:.3f}")
    print(f"kernel/warm {b / a:.1f}x (target >= 15), nbclient/warm {c / a:.1f}x (target >= 12)")
    print(f"warm per submission: student cells {cells / n:.3f} s, checks {checks.seconds / n:.3f} s "
          f"(of which inside the child {checks.in_child / n:.3f} s, the rest the grader's own comparisons)")
    print(f"warm overhead per submission {overhead:.3f} s (target <= 0.25): forks and setup {timings.fork_seconds / n:.3f} s "
          f"({timings.forks} forks, restarts included); the rest: loading the notebook, messages, reports")
    print(f"parent start {parent_start:.1f} s (once per process, not in the figures above)")
    print(f"peak memory: parent {figures['parent_peak_mb']} MB, a child {figures['child_peak_mb']} MB "
          "(resident, pages shared with the parent included; target <= 1536)")
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
