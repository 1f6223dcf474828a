"""`python grade.py`: the command line for students, instructors and the course's CI."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from d2lgrade.core.errors import UserError
from d2lgrade.report.neutral import terminal_text
from d2lgrade.run.executor import RuntimeOptions
from d2lgrade.run.engines import default_executor
from d2lgrade.run.limits import Limits

EPILOG = """examples:
  python grade.py 7.3                      grade exercises/7.3.ipynb
  python grade.py 7.3/3                    grade one exercise
  python grade.py 7.3 work/padding.py      grade another file (.ipynb or .py)
  python grade.py 7.3 --json               machine-readable result on stdout
  python grade.py 7.3 --watch              grade again on every save of the notebook
  python grade.py --check-references       prove every reference solution earns full marks
  python grade.py --batch                  grade a class: submissions/<student>/<section>.ipynb
  python grade.py --release ../kit         write the student kit (no reference, no course secret)
  python grade.py --audit 7.3              how many mutants of the reference the checks let through
"""


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="grade.py", description="Grade Dive into Deep Learning exercises (chapters 7-8).",
                                epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("target", nargs="?", help="section (7.3) or one exercise (7.3/3)")
    p.add_argument("submission", nargs="?", type=Path, help="notebook or module to grade (default: exercises/<section>.ipynb)")
    p.add_argument("--json", action="store_true", help="print the result as one JSON document")
    p.add_argument("--html", type=Path, help="where to write the HTML report (default: reports/<section>.html)")
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto", help="where student code runs (default: auto)")
    p.add_argument("--data-dir", type=Path, help="local Fashion-MNIST/MNIST in torchvision's layout, for training checks")
    p.add_argument("--call-timeout", type=float, default=Limits.call_seconds, help="CPU seconds per call of a student function (code that waits is stopped after 4x + 10 s)")
    p.add_argument("--cell-timeout", type=float, default=Limits.cell_seconds, help="CPU seconds per notebook cell (code that waits is stopped after 4x + 10 s)")
    p.add_argument("--total-timeout", type=float, default=Limits.total_seconds, help="seconds for the whole submission")
    p.add_argument("--memory-gb", type=float, default=Limits.memory_bytes / 2**30, help="memory limit of the student runtime")
    p.add_argument("--max-processes", type=int, default=Limits.max_processes, help="processes and threads the student runtime may run")
    p.add_argument("--file-mb", type=float, default=Limits.file_bytes / 2**20, help="largest file the student runtime may write (MiB)")
    p.add_argument("--output-mb", type=float, default=Limits.output_bytes / 2**20, help="printed output kept per submission (MiB)")
    p.add_argument("--disk-mb", type=float, default=Limits.disk_bytes / 2**20, help="all the files the student runtime may write, together (MiB)")
    p.add_argument("--disk-files", type=int, default=Limits.disk_files, help="files the student runtime may create")
    p.add_argument("--executor", choices=("auto", "kernel", "warm"), default="auto",
                   help="kernel: a Jupyter kernel per submission; warm: a child forked from a parent that has "
                        "imported torch and d2l already (auto: warm on Linux, else kernel)")
    p.add_argument("--feedback", choices=("verdict", "hints", "full"), default=None,
                   help="what the report shows: verdict (points and status), hints (what is wrong, never the answer; "
                        "default) or full (expected values too, for instructors)")
    p.add_argument("--watch", action="store_true", help="grade again whenever the submission is saved (Ctrl-C ends)")
    p.add_argument("--check-references", action="store_true", help="grade every reference solution; fail unless all earn full marks")
    p.add_argument("--release", type=Path, metavar="DIR",
                   help="write a student kit to DIR: starters and checks, no reference, no course secret")
    p.add_argument("--corpus", type=Path, action="append", default=[], metavar="DIR",
                   help="with --release: more answers to record (DIR/**/<section>.ipynb or .py), e.g. past years' work")
    p.add_argument("--make-starters", action="store_true", help="write exercises/<section>.ipynb from the specs")
    from d2lgrade.batch import cli as batch_cli
    batch_cli.add_arguments(p)
    from d2lgrade.audit import cli as audit_cli
    audit_cli.add_arguments(p)
    return p.parse_args(argv)


def options_from(args: argparse.Namespace, local_device: bool = True) -> RuntimeOptions:
    """The runtime's options; `local_device=False` leaves --device to the machines that grade (a cluster's workers)."""
    limits = Limits(call_seconds=args.call_timeout, cell_seconds=args.cell_timeout,
                    total_seconds=args.total_timeout, memory_bytes=int(args.memory_gb * 2**30),
                    max_processes=args.max_processes, file_bytes=int(args.file_mb * 2**20),
                    output_bytes=int(args.output_mb * 2**20), disk_bytes=int(args.disk_mb * 2**20),
                    disk_files=args.disk_files)
    for name, value in limits.to_dict().items():
        if value <= 0:
            raise UserError(f"the limit {name} must be positive (got {value:g}); see `python grade.py --help`.")
    data_dir = str(args.data_dir.resolve()) if args.data_dir else None
    if args.data_dir and not args.data_dir.is_dir():
        raise UserError(f"--data-dir {args.data_dir} is not a folder; give the folder that holds FashionMNIST/ or MNIST/.")
    device = RuntimeOptions.resolve_device(args.device) if local_device else args.device
    return RuntimeOptions(limits=limits, device=device, data_dir=data_dir)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        if args.make_starters:
            from d2lgrade.starters import write_all
            for path in write_all():
                print(f"wrote {path}")
            return 0
        refuse_in_kit(args)
        if args.release:
            return release(args)
        from d2lgrade.audit import cli as audit_cli
        if audit_cli.wanted(args):
            return audit_cli.main(args)
        if args.check_references:
            from d2lgrade.reference_check import check_references
            return check_references(options_from(args), as_json=args.json, executor=args.executor)
        from d2lgrade.batch import cli as batch_cli
        if batch_cli.wanted(args):
            if args.feedback:
                raise UserError("--feedback is for grading one notebook; a class's pages show the level of [feedback] "
                                "in its course.toml (see the README).")
            return batch_cli.main(args, lambda: options_from(args, local_device=not args.dask))   # torch only if something is graded
        if not args.target:
            raise UserError("say which section to grade, e.g. `python grade.py 7.3` (see --help).")
        return grade_one(args)
    except UserError as exc:          # may name the submission's file, or quote it
        print(f"error: {terminal_text(exc)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


def refuse_in_kit(args: argparse.Namespace) -> None:
    """A student kit has no references, no class and no course secret: say so instead of failing later."""
    from d2lgrade.core import course
    from d2lgrade.batch import cli as batch_cli
    wanted = [flag for flag, on in (("--release", args.release), ("--check-references", args.check_references),
                                    ("--batch", batch_cli.wanted(args)),
                                    ("--audit", args.audit is not None),
                                    ("--feedback full", getattr(args, "feedback", None) == "full")) if on]
    if wanted and course.is_kit():
        raise UserError(f"{wanted[0]} is for the course folder, and this is a student kit (kit.json); "
                        f"grade your own work with `python grade.py 7.3`.")


def release(args: argparse.Namespace) -> int:
    from d2lgrade.release.build import build_kit
    sections = [args.target] if args.target else None
    corpus: dict[str, list[Path]] = {}
    for folder in args.corpus:
        if not folder.is_dir():
            raise UserError(f"--corpus {folder} is not a folder; give a folder of answers named <section>.ipynb or .py.")
        for path in sorted(folder.rglob("*")):
            if path.suffix in (".ipynb", ".py"):
                corpus.setdefault(path.stem, []).append(path.resolve())
    summary = build_kit(args.release, sections=sections, corpus=corpus, options=options_from(args),
                        executor=args.executor, progress=lambda line: print(line, file=sys.stderr, flush=True))
    print(summary.text())
    return 0


def grade_one(args: argparse.Namespace) -> int:
    from d2lgrade.pipeline.grading import grade
    from d2lgrade.report import html, terminal
    from d2lgrade.core.sections import find_section

    section_id, _, _ = args.target.partition("/")
    section = find_section(section_id)
    section.validate_selector(args.target)
    path = args.submission or _relative(section.default_submission())
    options = options_from(args)
    # --watch regrades on every save, so it keeps a warm engine; one grading starts just the kernel.
    executor = default_executor(one_off=not args.watch) if args.executor == "auto" else args.executor

    def grade_and_show() -> None:
        report = grade(section, path, selector=args.target, options=options, executor=executor,
                       feedback=args.feedback or "hints")
        html_path = html.write(report, args.html or Path("reports") / f"{section.id}.html")
        if args.json:
            print(json.dumps(report.to_json(), indent=2), flush=True)
        else:
            print(terminal.render(report, str(html_path)), flush=True)

    if args.watch:
        from d2lgrade.watch import watch
        return watch(Path(path), grade_and_show)
    grade_and_show()
    return 0


def _relative(path: Path) -> Path:
    """Show exercises/7.3.ipynb rather than an absolute path when the user is in the course folder."""
    try:
        return path.relative_to(Path.cwd())
    except ValueError:
        return path
