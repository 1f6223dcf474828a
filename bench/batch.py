#!/usr/bin/env python3
"""Batch grading against the nbgrader way, on N chapter-7 notebooks written the book's way.

    python bench/batch.py --n 200 [--workers 2] [--baseline-n 200] [--executor kernel]

Writes N notebooks for section 7.3 (each imports d2l, as the book does; a quarter each right, wrong,
crashing and hanging), then times, with the same checks and limits:
  batch     `python grade.py --batch` (worker processes, --executor)
  rerun     the same command again, nothing changed (every submission skipped)
  nbgrader  a fresh kernel per notebook, one after another (what `nbgrader autograde` does), on the
            first --baseline-n notebooks
and prints seconds per submission for each, their ratio and the peak memory of each worker.
Hanging work loops until the call timeout (--call-timeout, 2 s by default) for both.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

SETUP = "import torch\nfrom torch import nn\nfrom torch.nn import functional as F\nfrom d2l import torch as d2l"
VARIANTS = {
    "right": {
        "7.3/1": 'output_shape = "floor((n_h + 2*p_h - k_h)/s_h) + 1"\nexample_shape = (2, 2)',
        "7.3/3": 'def mirror_pad(X, p):\n    if X.dim() == 2:\n        return F.pad(X[None, None], (p,) * 4, mode="reflect")[0, 0]\n'
                 '    return F.pad(X, (p,) * 4, mode="reflect")',
        "7.3/4": 'stride_speedup = "s_h*s_w"',
    },
    "wrong": {
        "7.3/1": 'output_shape = "(n_h - k_h + p_h)/s_h + 1"\nexample_shape = (3, 2)',
        "7.3/3": 'def mirror_pad(X, p):\n    return F.pad(X, (p,) * 4)',
        "7.3/4": 'stride_speedup = "s_h"',
    },
    "crashing": {
        "7.3/1": 'output_shape = d2l.no_such_helper()',
        "7.3/3": 'def mirror_pad(X, p):\n    return X[p:-p].reshape(-1, 7, 3)',
    },
    "hanging": {
        "7.3/3": 'def mirror_pad(X, p):\n    while True:\n        X = X + 0',
        "7.3/4": 'stride_speedup = "s_w*s_h"',
    },
}


def write_class(root: Path, n: int) -> list[Path]:
    paths = []
    for i in range(n):
        kind = list(VARIANTS)[i % len(VARIANTS)]
        cells = [nbformat.v4.new_markdown_cell("# 7.3 Padding and stride"), nbformat.v4.new_code_cell(SETUP)]
        for exercise, code in VARIANTS[kind].items():
            cells += [nbformat.v4.new_markdown_cell(f"### {exercise}"), nbformat.v4.new_code_cell(code)]
        path = root / f"student{i:04d}" / "7.3.ipynb"
        path.parent.mkdir(parents=True)
        nbformat.write(nbformat.v4.new_notebook(cells=cells), path)
        paths.append(path)
    return paths


def run_batch(root: Path, work: Path, args) -> tuple[float, dict]:
    command = [sys.executable, "grade.py", "--batch", str(root), "--json", "--workers", str(args.workers),
               "--gradebook", str(work / "gradebook.sqlite"), "--out", str(work / "reports"),
               "--call-timeout", str(args.call_timeout)] + (["--executor", args.executor] if args.executor else [])
    started = time.monotonic()
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
    seconds = time.monotonic() - started
    if done.returncode:
        sys.exit(f"the batch failed ({done.returncode}):\n{done.stderr[-3000:]}")
    return seconds, json.loads(done.stdout)


def run_nbgrader_way(paths: list[Path], args) -> float:
    from d2lgrade.pipeline.grading import grade
    from d2lgrade.run.executor import RuntimeOptions
    from d2lgrade.run.limits import Limits
    from d2lgrade.core.sections import find_section
    section, options = find_section("7.3"), RuntimeOptions(limits=Limits(call_seconds=args.call_timeout))
    started = time.monotonic()
    for path in paths:
        grade(section, path, options=options, executor="kernel")     # a fresh kernel per notebook
    return time.monotonic() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=200, help="submissions to grade")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--baseline-n", type=int, help="notebooks the nbgrader way grades (default: all N)")
    parser.add_argument("--call-timeout", type=float, default=2.0)
    parser.add_argument("--executor", help="engine of the batch (default: the batch's own default)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="d2lgrade-bench-") as tmp:
        tmp = Path(tmp)
        paths = write_class(tmp / "submissions", args.n)
        batch_s, summary = run_batch(tmp / "submissions", tmp, args)
        rerun_s, again = run_batch(tmp / "submissions", tmp, args)
        sample = paths[: args.baseline_n or args.n]
        baseline_s = run_nbgrader_way(sample, args)
    per_batch, per_baseline = batch_s / args.n, baseline_s / len(sample)
    print(f"N = {args.n} notebooks of 7.3 (right, wrong, crashing, hanging), {args.workers} workers, "
          f"call timeout {args.call_timeout:g} s")
    print(f"--batch          {batch_s:8.1f} s  {per_batch:6.2f} s/submission  "
          f"(graded {summary['graded']}, errors {summary['errors']})")
    print(f"rerun, unchanged {rerun_s:8.1f} s  (skipped {again['skipped']})")
    print(f"nbgrader way     {baseline_s:8.1f} s  {per_baseline:6.2f} s/submission  (fresh kernel each, "
          f"sequential, {len(sample)} notebooks)")
    print(f"speed-up         {per_baseline / per_batch:8.1f}x")
    for pid, memory in sorted(summary.get("workers", {}).items()):
        print(f"worker {pid}: peak {memory['worker_mb']:.0f} MiB itself, {memory['runtime_mb']:.0f} MiB "
              "its largest student runtime")


if __name__ == "__main__":
    main()
