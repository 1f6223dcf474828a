"""The HTML feedback report, rendered with Jinja2 from templates/report.html.j2."""
from __future__ import annotations

from pathlib import Path

import re

from jinja2 import Environment, PackageLoader, select_autoescape
from markupsafe import Markup, escape

from d2lgrade.report.terminal import LABELS
from d2lgrade.core.results import GradeReport

_ENV = Environment(loader=PackageLoader("d2lgrade.report", "templates"),
                   autoescape=select_autoescape(["html", "j2"]), trim_blocks=True, lstrip_blocks=True)
_ENV.filters["num"] = lambda x: f"{x:g}"
_INLINE_CODE = re.compile(r"`([^`\n]+)`")


def inline_code(text) -> Markup:
    """Messages mark names and calls with backticks, as markdown does: shown as code. The text is escaped
    first (it can quote the submission), so only the <code> tags added here are markup."""
    return Markup(_INLINE_CODE.sub(lambda m: f"<code>{m.group(1)}</code>", str(escape(text or ""))))


_ENV.filters["code"] = inline_code


def render(report: GradeReport, term: dict | None = None) -> str:
    """`term` (a class's batch only): who (the student's name and id), final (the score after a late
    penalty) and penalty (the line that explains it)."""
    return _ENV.get_template("report.html.j2").render(report=report, labels=LABELS, term=term)


def write(report: GradeReport, path: Path, term: dict | None = None) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render(report, term), encoding="utf-8")
    return path
