"""`python grade.py --release DIR`: write the student kit (see d2lgrade/core/course.py and d2lgrade/values/expected.py).

1. Record: grade a corpus for each section (the reference, the starter, the demo class's and any `--corpus`
   answers) with the kit's public key, the recorder listening: every expected value a check receives is
   written down, so that wrong answers' paths (their diagnoses, their counterexamples) replay too.
2. Copy the course without its answers (layout.py), add the recordings, kit.json and a student README.
3. Prove it: no reference function body may appear anywhere in the kit; the summary lists each section's
   recorded checks and those left out, with the reason.
"""
from __future__ import annotations

import json
import secrets
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

from d2lgrade.core import course, recording
from d2lgrade.values import expected
from d2lgrade.core.errors import UserError
from d2lgrade.release import layout
from d2lgrade.core.results import GradeReport

STUDENT_README = Path(__file__).with_name("README.student.md")


@dataclass
class Summary:
    dest: Path
    sections: list[str]
    checks: dict[str, int] = field(default_factory=dict)             # section -> checks in the kit
    left_out: dict[str, dict[str, str]] = field(default_factory=dict)  # section -> check -> why
    hidden: dict[str, list[str]] = field(default_factory=dict)       # section -> hidden checks not shipped
    reports: dict[str, list[GradeReport]] = field(default_factory=dict)  # the course folder's verdicts (kit key)
    seconds: float = 0.0
    bytes: int = 0

    def text(self) -> str:
        lines = [f"student kit written to {self.dest} ({self.bytes / 2**20:.1f} MiB, built in {self.seconds:.0f} s)"]
        for section in self.sections:
            out = self.left_out.get(section, {})
            lines.append(f"  {section}: {self.checks.get(section, 0) - len(out)} checks replay from recordings"
                         + (f", {len(out)} left out" if out else ""))
            lines += [f"      left out {check}: {why}" for check, why in out.items()]
            lines += [f"      hidden check {name} not shipped" for name in self.hidden.get(section, [])]
        lines.append("the course secret, reference/ and submissions/ stay here; the kit's inputs differ from the "
                     "ones --batch and --check-references draw.")
        return "\n".join(lines)


def corpus_for(section, extra: dict[str, list[Path]] | None = None) -> list[Path]:
    """What the release grades to record `section`: the reference first, then every other answer it can find."""
    paths = [section.reference_path, section.default_submission()]
    paths += sorted(p for p in (course.ROOT / "submissions").glob(f"*/{section.id}.*") if p.suffix in (".ipynb", ".py"))
    paths += list((extra or {}).get(section.id, []))
    return [p for i, p in enumerate(paths) if p.exists() and p not in paths[:i]]


def build_kit(dest: Path, *, sections: list[str] | None = None, corpus: dict[str, list[Path]] | None = None,
              options=None, executor=None, progress=print) -> Summary:
    from d2lgrade.pipeline.grading import grade
    from d2lgrade.core.sections import all_sections, find_section

    if course.is_kit():
        raise UserError("this folder is a student kit; run --release in the course folder that holds reference/.")
    dest = Path(dest).resolve()
    if dest == course.ROOT or course.ROOT in dest.parents:
        raise UserError(f"{dest} is inside the course folder; give --release a folder outside it.")
    if dest.exists() and any(dest.iterdir()):
        raise UserError(f"{dest} is not empty; give --release a new or empty folder.")
    chosen = [find_section(s) for s in sections] if sections else all_sections()
    started = time.monotonic()
    summary = Summary(dest=dest, sections=[s.id for s in chosen])
    key = ("d2l-grade student kit " + secrets.token_hex(16)).encode()
    recorder = expected.Recorder()
    with course.using_key(key), expected.record_into(recorder):
        for section in chosen:
            summary.checks[section.id] = len(section.checks)
            for path in corpus_for(section, corpus):
                progress(f"recording {section.id} with {path.relative_to(course.ROOT) if course.ROOT in path.parents else path}")
                try:
                    report = grade(section, path, options=options, executor=executor)
                except (UserError, OSError) as exc:    # the demo class holds unreadable files on purpose
                    progress(f"  skipped: {exc}")
                    continue
                summary.reports.setdefault(section.id, []).append(report)

    dest.mkdir(parents=True, exist_ok=True)
    layout.copy_course(course.ROOT, dest, summary.sections)
    for section in chosen:
        recording.write(dest / "recorded" / f"{section.id}.json.gz", recorder.payload(section.id))
        summary.left_out[section.id] = recorder.left_out.get(section.id, {})
        summary.hidden[section.id] = layout.hidden_checks(section_source(section))
    shutil.copy2(STUDENT_README, dest / "README.md")
    (dest / "kit.json").write_text(json.dumps({"kit": 1, "key": key.decode(), "sections": summary.sections,
                                               "built": time.strftime("%Y-%m-%d")}, indent=2) + "\n")
    found = layout.leaks(dest, layout.reference_bodies(course.ROOT))
    if found:
        shutil.rmtree(dest)
        raise UserError(f"the kit would contain reference code ({', '.join(found[:5])}); it was removed. A grader "
                        "holds a copy of the reference: move that code behind d2lgrade.values.expected.")
    summary.bytes = sum(p.stat().st_size for p in dest.rglob("*") if p.is_file())
    summary.seconds = time.monotonic() - started
    return summary


def section_source(section) -> str:
    return (course.ROOT / "graders" / f"section_{section.slug}.py").read_text()
