#!/usr/bin/env python3
"""The student kit: how long `--release` takes, how big the kit is, and how fast a student grades in it.

    python bench/release.py [--sections 7.3 8.2]

Builds a kit (every section by default) into a temporary folder with `python grade.py --release`, then prints
the build time, the kit's size (all of it, and the recordings alone, per section) and the seconds
`python grade.py 7.3 <reference>` takes in the kit and in the course folder.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def timed(command: list[str], cwd: Path, env=None) -> float:
    started = time.monotonic()
    done = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True)
    if done.returncode:
        sys.exit(f"{' '.join(command[1:])} failed:\n{done.stderr[-3000:]}")
    return time.monotonic() - started


def size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) if path.is_dir() else path.stat().st_size


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sections", nargs="*", default=None, help="only these sections (one --release each)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="d2lgrade-bench-kit-") as tmp:
        kit = Path(tmp) / "kit"
        if args.sections and len(args.sections) == 1:
            command = [sys.executable, "grade.py", args.sections[0], "--release", str(kit)]
        else:
            command = [sys.executable, "grade.py", "--release", str(kit)]
        build = timed(command, ROOT)
        print(f"build:      {build:7.1f} s  ({' '.join(command[1:])})")
        print(f"kit:        {size(kit) / 2**20:7.2f} MiB in {sum(1 for p in kit.rglob('*') if p.is_file())} files")
        print(f"recordings: {size(kit / 'recorded') / 2**20:7.2f} MiB")
        for path in sorted((kit / "recorded").iterdir()):
            print(f"  {path.name:16s} {path.stat().st_size / 2**10:8.1f} KiB")
        env = {k: v for k, v in os.environ.items() if k != "D2LGRADE_HELDOUT_KEY"}
        sections = [p.name.removesuffix(".json.gz") for p in (kit / "recorded").iterdir()]
        if "7.3" in sections:
            reference = str(ROOT / "reference" / "section_7_3.py")
            in_kit = timed([sys.executable, "grade.py", "7.3", reference], kit, {**env, "PYTHONPATH": str(kit)})
            in_course = timed([sys.executable, "grade.py", "7.3", reference], ROOT, env)
            print(f"grade 7.3:  {in_kit:7.1f} s in the kit, {in_course:.1f} s in the course folder")
    return 0


if __name__ == "__main__":
    sys.exit(main())
