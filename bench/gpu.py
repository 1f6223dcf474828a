"""Same verdicts on a GPU as on the CPU? Grades every section's reference and the known-wrong answers the
tests hold (tests/kit_answers/<section>/*.py) once per device and compares every check (issue 24).

    python bench/gpu.py                                  # --devices cuda cpu, all 14 sections
    python bench/gpu.py --sections 7.3 8.6 --answers 2   # fewer
    python bench/gpu.py --devices cpu cpu --sections 7.3 # the mechanics, on a machine without a GPU

Writes bench/results/gpu.json: the GPU's name, the versions it ran with, and per section `same_verdicts`,
the checks whose status or points differ (with both messages) and seconds per device. The devices' passes run
side by side in threads of this one process (each grading starts its own runtime process; CUDA is only ever
initialised in those children), the CPU pass spread over the machine's cores.

It needs no `setup.sh`: run it with the repository on the path and whatever torch the machine's Python has
(e.g. a CUDA build of another version) plus the pure-Python packages in pyproject.toml; the versions used are
in the JSON.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
SECTIONS = ["7.1", "7.2", "7.3", "7.4", "7.5", "7.6", "8.1", "8.2", "8.3", "8.4", "8.5", "8.6", "8.7", "8.8"]


def answers_of(section: str, limit: int) -> list[Path]:
    """The section's reference, then up to `limit` of the tests' answers (wrong ones and other styles)."""
    from d2lgrade.core.sections import find_section
    kit = sorted((ROOT / "tests" / "kit_answers" / section).glob("*.py"))
    return [find_section(section).reference_path, *kit[:limit]]


def grade_one(section: str, path: Path, device: str) -> dict:
    from d2lgrade.pipeline.grading import grade
    from d2lgrade.run.executor import RuntimeOptions
    from d2lgrade.core.sections import find_section
    started = time.monotonic()
    report = grade(find_section(section), path, options=RuntimeOptions(device=device))
    return {"seconds": time.monotonic() - started, "checks": {
        c.id: {"status": c.status, "points": c.points, "message": c.message} for c in report.checks}}


def gpu_facts() -> dict:
    """Asked of a child Python, so that this process never initialises CUDA."""
    probe = ("import json, torch; ok = torch.cuda.is_available(); print(json.dumps({'torch': torch.__version__, "
             "'cuda': torch.version.cuda, 'gpu': torch.cuda.get_device_name(0) if ok else None, "
             "'tf32_matmul_default': torch.backends.cuda.matmul.allow_tf32}))")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=300)
    return json.loads(done.stdout.strip().splitlines()[-1]) if done.returncode == 0 else {"error": done.stderr[-500:]}


def versions() -> dict:
    names = ("torchvision", "numpy", "sympy", "nbformat", "nbclient", "ipykernel", "jinja2", "d2l", "scikit-learn")
    found = {}
    for name in names:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = None
    return {"python": platform.python_version(), **found}


def compare(first: dict, second: dict) -> list[dict]:
    """Checks whose status or points differ between two gradings of one answer."""
    differ = []
    for check_id in sorted(set(first["checks"]) | set(second["checks"])):
        a, b = first["checks"].get(check_id), second["checks"].get(check_id)
        if a is None or b is None or (a["status"], a["points"]) != (b["status"], b["points"]):
            differ.append({"check": check_id, "first": a, "second": b})
    return differ


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--devices", nargs=2, default=["cuda", "cpu"], metavar=("FIRST", "SECOND"))
    ap.add_argument("--sections", nargs="+", default=SECTIONS)
    ap.add_argument("--answers", type=int, default=3, help="answers of tests/kit_answers per section besides the reference")
    ap.add_argument("--cpu-workers", type=int, default=max(1, (os.cpu_count() or 2) - 2))
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "gpu.json")
    args = ap.parse_args()
    os.environ.setdefault("D2LGRADE_HELDOUT_KEY", "d2l-grade tests")   # the tests' images, on every machine
    facts, started = gpu_facts(), time.monotonic()
    if "cuda" in args.devices and not facts.get("gpu"):
        sys.exit("bench/gpu.py: torch sees no GPU here; run it on a GPU machine, or with --devices cpu cpu.")
    workers = {d: (1 if d == "cuda" else args.cpu_workers) for d in set(args.devices)}
    pools = {d: ThreadPoolExecutor(max_workers=n) for d, n in workers.items()}
    futures = {}
    for k, device in enumerate(args.devices):
        for s in args.sections:
            for path in answers_of(s, args.answers):
                futures[(s, str(path), k)] = pools[device].submit(grade_one, s, path, device)
    sections = {}
    for s in args.sections:
        rows = {"same_verdicts": True, "differ": [], "seconds": {f"{k}:{d}": 0.0 for k, d in enumerate(args.devices)}}
        for path in answers_of(s, args.answers):
            graded = [futures[(s, str(path), k)].result() for k in range(len(args.devices))]
            for k, d in enumerate(args.devices):
                rows["seconds"][f"{k}:{d}"] += round(graded[k]["seconds"], 1)
            for difference in compare(*graded):
                rows["differ"].append({"answer": str(path.relative_to(ROOT)), **difference})
        rows["same_verdicts"] = not rows["differ"]
        sections[s] = rows
        print(f"{s}: {'same' if rows['same_verdicts'] else 'DIFFERENT'} verdicts; seconds "
              + ", ".join(f"{k} {v:.0f}" for k, v in rows["seconds"].items()), flush=True)
    for pool in pools.values():
        pool.shutdown()
    from d2lgrade.numerics import cpu_name
    result = {"devices": args.devices, **facts, "versions": versions(), "cpu": cpu_name(),
              "wall_seconds": round(time.monotonic() - started, 1), "sections": sections}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.out} ({result['wall_seconds']:.0f} s)")


if __name__ == "__main__":
    main()
