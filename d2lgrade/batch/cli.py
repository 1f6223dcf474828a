"""The instructor's options of `python grade.py` (--batch and friends); the logic is in run.py."""
from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
from typing import Callable

from d2lgrade.run.executor import RuntimeOptions
from d2lgrade.batch.run import DEFAULT_EXECUTOR, BatchConfig, run_batch, summary_line


def add_arguments(parser: argparse.ArgumentParser) -> None:
    g = parser.add_argument_group("grading a class (instructors)")
    g.add_argument("--batch", nargs="?", const=Path("submissions"), type=Path, metavar="DIR",
                   help="grade every DIR/<student>/<section>.ipynb or .py (default DIR: submissions/)")
    g.add_argument("--sections", nargs="+", metavar="S", help="only these sections, e.g. --sections 7.2 7.3")
    g.add_argument("--students", nargs="+", metavar="ID", help="only these students (folder names)")
    g.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="worker processes (default: the machine's cores)")
    g.add_argument("--gradebook", type=Path, help="the class's SQLite gradebook (default: <out>/gradebook.sqlite)")
    g.add_argument("--out", type=Path, default=Path("reports"), help="where exports and reports go (default: reports/)")
    g.add_argument("--regrade", action="store_true", help="grade again even what is unchanged since the last batch")
    g.add_argument("--quiet", action="store_true", help="one log line per submission instead of a progress bar")
    g.add_argument("--lms-csv", action="store_true",
                   help="also write <out>/canvas.csv, moodle.csv and blackboard.txt for those LMS' gradebook imports")
    g.add_argument("--roster", type=Path, metavar="FILE.csv", help="the class roster (default: DIR/roster.csv when there is one)")
    g.add_argument("--course", type=Path, metavar="FILE.toml",
                   help="deadlines, late policy, extensions (default: DIR/course.toml when there is one)")
    g.add_argument("--review", type=Path, metavar="FILE.csv", help="write the written answers to score into FILE.csv")
    g.add_argument("--dask", metavar="ADDRESS", help="grade on the workers of a Dask scheduler, e.g. tcp://host:8786 (see the README)")
    g.add_argument("--import-review", type=Path, metavar="FILE.csv", help="merge an instructor's points from FILE.csv")


def wanted(args: argparse.Namespace) -> bool:
    return bool(args.batch or args.review or args.import_review)


def main(args: argparse.Namespace, options: Callable[[], RuntimeOptions]) -> int:
    config = BatchConfig(root=args.batch, sections=args.sections, students=args.students, workers=args.workers,
                         gradebook=args.gradebook, out=args.out, options_factory=options,
                         executor=getattr(args, "executor", None) or DEFAULT_EXECUTOR,
                         regrade=args.regrade, quiet=args.quiet or args.json, lms_csv=args.lms_csv,
                         review=args.review, import_review=args.import_review, dask=args.dask,
                         roster=args.roster, course=args.course)
    summary = run_batch(config)
    if args.json:
        print(json.dumps(summary, indent=2))
    else:
        print(summary_line(summary))
    return 0
