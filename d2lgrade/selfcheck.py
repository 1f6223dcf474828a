"""`d2lgrade.check("7.3/3")`: feedback inside the notebook, from the definitions live in the kernel.

The same checks, seeds and messages as `python grade.py`, run through the live engine
(d2lgrade/run/live.py) on the kernel's own namespace; the result displays itself as an HTML table
(plain text where the front end shows no HTML) and carries the JSON of `grade.py --json` under its own
MIME type, which no front end renders and tests can read.
"""
from __future__ import annotations

import html
import sys
from pathlib import Path

from d2lgrade.core.errors import UserError
from d2lgrade.core.results import GradeReport

JSON_MIME = "application/vnd.d2lgrade.selfcheck+json"
VERDICT_COLOURS = {"passed": "#1a7f37", "failed": "#cf222e", "error": "#cf222e", "timeout": "#9a6700",
                   "memory": "#9a6700", "not_attempted": "#6e7781", "manual": "#0969da"}


def check(selector: str, *, device: str = "cpu", data_dir: str | None = None, namespace: dict | None = None):
    """Check one exercise ("7.3/3") or a whole section ("7.3") against what is defined in this kernel."""
    try:
        return SelfCheck(_grade(selector, device, data_dir, namespace if namespace is not None else _caller_namespace()))
    except UserError as exc:
        return SelfCheckError(str(exc))


def check_all(section: str, **kwargs):
    """Every check of a section: `d2lgrade.check_all("7.3")`."""
    return check(section.partition("/")[0], **kwargs)


def _grade(selector: str, device: str, data_dir: str | None, namespace: dict) -> GradeReport:
    from d2lgrade.pipeline.grading import grade_submission
    from d2lgrade.load import Submission
    from d2lgrade.run.executor import RuntimeOptions
    from d2lgrade.run.live import LiveExecutor
    from d2lgrade.core.sections import find_section

    section = find_section(str(selector).partition("/")[0])
    section.validate_selector(str(selector))
    options = RuntimeOptions(device=RuntimeOptions.resolve_device(device), data_dir=str(Path(data_dir).resolve()) if data_dir else None)
    report = grade_submission(section, Submission(Path("<this notebook>"), _executed_cells(namespace)), selector=str(selector),
                              options=options, executor=LiveExecutor(namespace), written=False)
    written = [ex.id for ex in section.spec.exercises if ex.manual_points and
               (selector == section.id or ex.id == selector or ex.id.startswith(f"{selector}."))]
    if written:
        report.notes.append(f"Written answers ({', '.join(written)}) are read by an instructor; they are not checked here.")
    return report


def _executed_cells(namespace: dict) -> list:
    """The code this kernel has run, in order (IPython's `In`): what the source scan of "implement it
    yourself" exercises reads, as it reads a saved notebook's cells."""
    from d2lgrade.load import Cell
    history = namespace.get("In")
    if not isinstance(history, list):
        return _script_cells(namespace)
    return [Cell(index=i, kind="code", source=source) for i, source in enumerate(history)
            if isinstance(source, str) and source.strip()]


def _script_cells(namespace: dict) -> list:
    """A plain `python script.py` keeps no history: its own file is the code it runs."""
    from d2lgrade.load.pyfile import split_cells
    script = namespace.get("__file__")
    if not isinstance(script, str) or not script.endswith(".py"):
        return []
    try:
        return [c for c in split_cells(Path(script).read_text(encoding="utf-8")) if c.kind == "code"]
    except (OSError, UnicodeDecodeError):
        return []


def _caller_namespace() -> dict:
    """The kernel's user namespace in IPython; otherwise the globals of whoever called `check`."""
    try:
        from IPython import get_ipython
        shell = get_ipython()
        if shell is not None:
            return shell.user_ns
    except ImportError:
        pass
    # The first frame outside this package: `check_all` and `d2lgrade.check` add frames of their own, so no
    # fixed depth finds the student's script from both.
    frame = sys._getframe(1)
    while frame.f_back is not None and _ours(frame.f_globals.get("__name__", "")):
        frame = frame.f_back
    return frame.f_globals


def _ours(module: str) -> bool:
    return module == "d2lgrade" or module.startswith("d2lgrade.")


class SelfCheck:
    """What `d2lgrade.check` returns: displays itself, and holds the report for code that wants it."""

    def __init__(self, report: GradeReport):
        self.report = report
        self.score, self.max_score = report.score, report.max_score

    def to_json(self) -> dict:
        return {**self.report.to_json(), "self_check": True}

    def __repr__(self) -> str:
        from d2lgrade.report import terminal
        return terminal.render(self.report)

    def _repr_html_(self) -> str:
        from d2lgrade.report.html import inline_code
        rows = []
        for c in self.report.checks:
            colour = VERDICT_COLOURS.get(c.status, "#24292f")
            rows.append(f"<tr><td><code>{html.escape(c.id)}</code></td><td style='text-align:right'>{c.points:g}/{c.max_points:g}</td>"
                        f"<td style='color:{colour};font-weight:600'>{html.escape(c.status.replace('_', ' '))}</td>"
                        f"<td>{inline_code(c.message)}</td></tr>")
        notes = "".join(f"<li>{html.escape(n)}</li>" for n in self.report.notes)
        return ("<div class='d2lgrade-selfcheck'>"
                f"<p><b>d2l-grade {html.escape(self.report.section)}</b>: score {self.score:g}/{self.max_score:g}</p>"
                "<table><thead><tr><th>check</th><th>points</th><th>verdict</th><th>reason</th></tr></thead>"
                f"<tbody>{''.join(rows)}</tbody></table><ul>{notes}</ul></div>")

    def _repr_mimebundle_(self, include=None, exclude=None) -> dict:
        return {"text/plain": repr(self), "text/html": self._repr_html_(), JSON_MIME: self.to_json()}


class SelfCheckError:
    """A selector or option the check cannot use: one sentence, never a traceback."""

    def __init__(self, message: str):
        self.message = message

    def __repr__(self) -> str:
        return f"d2l-grade: {self.message}"

    def _repr_html_(self) -> str:
        return f"<p style='color:#cf222e'><b>d2l-grade:</b> {html.escape(self.message)}</p>"

    def _repr_mimebundle_(self, include=None, exclude=None) -> dict:
        return {"text/plain": repr(self), "text/html": self._repr_html_(), JSON_MIME: {"error": self.message}}
