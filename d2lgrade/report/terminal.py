"""The table a student sees in the terminal: exercise, points, verdict, the reason (wrapped under its column).

Messages and notes carry text from the submission (exception messages, class names, file names): each
goes through neutral.terminal_text, so no escape sequence of the student's reaches the terminal."""
from __future__ import annotations

import shutil
import textwrap

from d2lgrade.report.neutral import terminal_text
from d2lgrade.core.results import GradeReport

LABELS = {"passed": "passed", "failed": "FAILED", "error": "ERROR", "timeout": "TIMEOUT", "memory": "MEMORY",
          "not_attempted": "not attempted", "manual": "manual review"}


def render(report: GradeReport, html_path: str | None = None) -> str:
    width = max(80, min(shutil.get_terminal_size((100, 24)).columns, 140))
    id_w = max([len("exercise")] + [len(c.id) for c in report.checks])
    head = f"{'exercise':<{id_w}}  {'points':>9}  {'verdict':<13}  reason"
    lines = [f"d2l-grade {report.section}: {terminal_text(report.submission)} ({report.executor} engine, {report.seconds:g} s)", "", head, "-" * min(width, len(head) + 40)]
    reason_w = max(20, width - id_w - 30)
    for c in report.checks:
        pts = f"{_num(c.points)}/{_num(c.max_points)}"
        # Wrapped, not cut: a hint's second half (where to look) is what a student needs.
        reason = textwrap.wrap(terminal_text(c.message.replace("\n", " ")), reason_w) or [""]
        lines.append(f"{terminal_text(c.id):<{id_w}}  {pts:>9}  {LABELS.get(c.status, c.status):<13}  {reason[0]}")
        lines.extend(" " * (id_w + 28) + more for more in reason[1:])
    lines.append("-" * min(width, len(head) + 40))
    manual = sum(c.max_points for c in report.checks if c.status == "manual")
    total = f"score {_num(report.score)}/{_num(report.max_score)}"
    if manual:
        total += f" ({_num(manual)} points wait for manual review)"
    lines.append(total)
    for note in report.notes:
        lines.append(textwrap.fill(terminal_text(note), width, initial_indent="note: ", subsequent_indent="      "))
    if html_path:
        lines.append(f"full feedback: {html_path}")
    return "\n".join(lines)


def _num(x: float) -> str:
    return f"{x:g}"
