"""Does a kit give the course folder's verdicts? Grade the same answers in both and list the differences.

    python -m d2lgrade.release.verify 7.3 [ANSWER ...]

builds a kit of 7.3 in a temporary folder (recording the reference, the starter and the answers), grades each
answer there, and prints every check whose status, points or message differ from the course folder's verdict
for the same inputs (the kit's key). Formula verdicts may differ only in saying "samples" instead of "proved".
"""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

# A formula's "equal" message differs on purpose: the course folder proves, the kit samples.
FORMULA_AGREES = re.compile(r"(proved: your formula is equivalent[^.]*\.|your formula agrees with the expected "
                            r"(formula|values) at \d+ .*?\((not proved symbolically|the student kit checks samples"
                            r"[^)]*)\)\.?)")

RUNNER = """
import json, sys
from pathlib import Path
from d2lgrade.pipeline.grading import grade
from d2lgrade.core.sections import find_section
jobs = [arg.partition("=") for arg in sys.argv[1:]]     # SECTION=PATH
print(json.dumps([grade(find_section(section), Path(path)).to_json() for section, _, path in jobs]))
"""


def grade_in_kit(kit: Path, section: str, answers: list[Path], timeout: float = 1800) -> list[dict]:
    """The kit's JSON reports for `answers`, graded by the kit's own code (a child process started in the kit)."""
    return start_grading_in_kit(kit, section, answers)(timeout)


def start_grading_in_kit(kit: Path, section: str, answers: list[Path]):
    """Start grading `answers` in the kit and return a function that waits for the reports: the caller can
    grade the same answers in the course folder meanwhile (on another core)."""
    return start_grading_jobs_in_kit(kit, [(section, answer) for answer in answers])


def start_grading_jobs_in_kit(kit: Path, jobs: list[tuple[str, Path]]):
    """Like start_grading_in_kit, for (section, answer) pairs of any sections, in one child (one start-up)."""
    env = {**os.environ, "PYTHONPATH": str(kit)}
    env.pop("D2LGRADE_HELDOUT_KEY", None)
    section = ", ".join(dict.fromkeys(s for s, _ in jobs))
    child = subprocess.Popen([sys.executable, "-c", RUNNER, *(f"{s}={a}" for s, a in jobs)], cwd=kit, env=env,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def reports(timeout: float = 1800) -> list[dict]:
        try:
            out, err = child.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            child.kill()
            raise
        if child.returncode:
            raise RuntimeError(f"grading {section} in the kit failed:\n{err[-4000:]}")
        return json.loads(out.strip().splitlines()[-1])
    return reports


def differences(course_report: dict, kit_report: dict) -> list[str]:
    """Checks whose verdict differs between the course folder and the kit (empty: the same public verdicts)."""
    out = []
    kit_checks = {c["id"]: c for c in kit_report["checks"]}
    for check in course_report["checks"]:
        other = kit_checks.pop(check["id"], None)
        if other is None:
            out.append(f"{check['id']}: missing in the kit")
            continue
        for field in ("status", "points"):
            if check[field] != other[field]:
                out.append(f"{check['id']}: {field} {check[field]!r} in the course folder, {other[field]!r} in the kit "
                           f"({other['message'][:300]})")
        if _normal(check["message"]) != _normal(other["message"]):
            out.append(f"{check['id']}: message differs:\n    course: {check['message'][:400]}\n"
                       f"    kit:    {other['message'][:400]}")
    out += [f"{cid}: only in the kit" for cid in kit_checks]
    return out


def _normal(message: str) -> str:
    return FORMULA_AGREES.sub("<the formula agrees>", message)


def course_reports_with_kit_key(kit: Path, section, answers: list[Path]) -> dict[str, dict]:
    """The course folder's live verdicts for `answers`, with the inputs the kit draws (its public key)."""
    from d2lgrade.core import course
    from d2lgrade.pipeline.grading import grade
    key = json.loads((kit / "kit.json").read_text())["key"].encode()
    with course.using_key(key):
        return {str(p): grade(section, p).to_json() for p in answers}


def main(argv: list[str]) -> int:
    """`verify SECTION [--unseen] ANSWER...`: --unseen grades the answers without recording them first."""
    from d2lgrade.release.build import build_kit
    from d2lgrade.core.sections import find_section
    unseen = "--unseen" in argv
    argv = [a for a in argv if a != "--unseen"]
    if not argv:
        print("usage: python -m d2lgrade.release.verify SECTION [--unseen] [ANSWER ...]", file=sys.stderr)
        return 2
    section_id, answers = argv[0], [Path(a).resolve() for a in argv[1:]]
    section = find_section(section_id)
    with tempfile.TemporaryDirectory(prefix="d2lgrade-kit-") as tmp:
        kit = Path(tmp) / "kit"
        summary = build_kit(kit, sections=[section_id], corpus={} if unseen else {section_id: answers},
                            progress=lambda m: None)
        print(summary.text())
        course_reports = {r.submission: r.to_json() for r in summary.reports[section_id]}
        if unseen:
            course_reports.update(course_reports_with_kit_key(kit, section, answers))
        paths = [section.reference_path, *answers]
        failures = 0
        for path, kit_report in zip(paths, grade_in_kit(kit, section_id, paths)):
            found = differences(course_reports[str(path)], kit_report)
            failures += bool(found)
            print(f"{'SAME' if not found else 'DIFFERENT'}  {path}")
            for line in found:
                print("    " + line)
        return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
