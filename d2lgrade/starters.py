"""Generate the starter notebooks (exercises/<section>.ipynb) from the specs.

`python grade.py --make-starters` writes them; a test fails when a committed starter differs from
what the spec produces, so the two never drift apart.
"""
from __future__ import annotations

from pathlib import Path

import nbformat

from d2lgrade.load.submission import WRITTEN_PLACEHOLDER
from d2lgrade.core.sections import Section, all_sections


def exercise_points(section: Section) -> dict[str, float]:
    points: dict[str, float] = {}
    for check in section.checks:
        points[check.exercise] = points.get(check.exercise, 0) + check.points
    for ex in section.spec.exercises:
        points[ex.id] = points.get(ex.id, 0) + ex.manual_points
    return points


def build(section: Section) -> nbformat.NotebookNode:
    spec = section.spec
    points = exercise_points(section)
    nb = nbformat.v4.new_notebook()
    nb.metadata = {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"},
                   "language_info": {"name": "python"}, "d2lgrade": {"section": spec.section}}
    cells = [nbformat.v4.new_markdown_cell(
        f"# {spec.section} {spec.title}: exercises\n\n"
        f"Fill in the cells below, then run `python grade.py {spec.section}` from the course folder "
        f"(or `python grade.py {spec.section}/N` for one exercise). Keep the names you are asked to define: "
        "the grader calls them. Leave a function raising `NotImplementedError` (or a value as `None`) "
        "until you attempt it. Shell commands (`!pip ...`) are not run while grading.\n\n"
        f"To check an answer without leaving the notebook, run `import d2lgrade` and then "
        f"`d2lgrade.check(\"{spec.section}/1\")` (or `d2lgrade.check_all(\"{spec.section}\")`) in a cell: "
        "the same checks on what is defined in this kernel, as feedback. It is not your grade: the course "
        "grades the saved notebook.")]
    cells.append(_tag(nbformat.v4.new_code_cell(spec.setup.strip()), None, "setup"))
    for ex in spec.exercises:
        pts = points.get(ex.id, 0)
        names = ", ".join(f"`{n}`" for n in ex.contract)
        body = f"### {ex.id} · {ex.title} ({pts:g} point{'s' if pts != 1 else ''})\n\n{ex.prompt.strip()}"
        if names:
            body += f"\n\n*Define:* {names}"
        cells.append(_tag(nbformat.v4.new_markdown_cell(body), ex.id, "prompt"))
        if ex.starter.strip():
            cells.append(_tag(nbformat.v4.new_code_cell(ex.starter.strip()), ex.id, "answer"))
        if ex.manual_points:
            cells.append(_tag(nbformat.v4.new_markdown_cell(WRITTEN_PLACEHOLDER), ex.id, "written"))
    nb.cells = cells
    # Stable ids keep regenerated starters byte-identical (nbformat otherwise draws random ones).
    for i, cell in enumerate(nb.cells):
        cell["id"] = f"{spec.section.replace('.', '-')}-{i:02d}"
    return nb


def _tag(cell, exercise: str | None, role: str):
    cell.metadata["d2lgrade"] = {"role": role, **({"exercise": exercise} if exercise else {})}
    return cell


def render(section: Section) -> str:
    return nbformat.writes(build(section)) + "\n"


def write_all() -> list[Path]:
    written = []
    for section in all_sections():
        section.starter_path.write_text(render(section), encoding="utf-8")
        written.append(section.starter_path)
    return written
