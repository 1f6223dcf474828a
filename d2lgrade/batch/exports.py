"""What leaves the gradebook for other tools: a class CSV, Gradescope's results.json per
submission, and a CSV in the column layout Canvas's gradebook import reads."""
from __future__ import annotations

import csv
import json
from functools import lru_cache
from collections import defaultdict
from pathlib import Path

from d2lgrade import results as R
from d2lgrade.batch.gradebook import GRADED, Gradebook, Row
from d2lgrade.report.neutral import csv_row
from d2lgrade.sections import Section

# Canvas matches students on any of its ID columns; the folder name goes in as the SIS User ID.
CANVAS_COLUMNS = ["Student", "ID", "SIS User ID", "SIS Login ID", "Section"]


@lru_cache(maxsize=None)
def exercise_order(section_id: str) -> tuple[str, ...]:
    return tuple(e.id for e in Section(section_id).spec.exercises)


def class_table(book: Gradebook) -> tuple[list[str], dict[str, dict[str, float | str]]]:
    """Columns (each exercise, each section's total, the total) and each student's cells."""
    rows = book.submissions()
    sections = sorted({r.section for r in rows}, key=_section_key)
    points: dict[tuple[str, str], float] = defaultdict(float)
    for r in book.results():
        points[r["student"], r["exercise"]] += r["points"]
    columns, table = [], {}
    for section in sections:
        columns += [*exercise_order(section), f"{section} total"]
    columns.append("total")
    by_student: dict[str, dict[str, Row]] = defaultdict(dict)
    for r in rows:
        by_student[r.student][r.section] = r
    for student, subs in sorted(by_student.items()):
        cells: dict[str, float | str] = {}
        for section in sections:
            row = subs.get(section)
            graded = row is not None and row.status == GRADED
            for exercise in exercise_order(section):
                cells[exercise] = _num(points[student, exercise]) if graded else ""
            cells[f"{section} total"] = _num(row.score or 0) if graded else 0
        cells["total"] = _num(sum(float(cells[f"{s} total"]) for s in sections))
        table[student] = cells
    return columns, table


def write_class_csv(book: Gradebook, path: Path) -> Path:
    columns, table = class_table(book)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="", encoding="utf-8") as f:
        out = csv.writer(f)
        out.writerow(csv_row(["student"] + columns))
        for student, cells in table.items():           # student ids are folder names: the students'
            out.writerow(csv_row([student] + [cells[c] for c in columns]))
    return path


def write_canvas_csv(book: Gradebook, path: Path) -> Path:
    """One column per section (a new Canvas assignment "d2l <section>"), a Points Possible row."""
    rows = [r for r in book.submissions()]
    sections = sorted({r.section for r in rows}, key=_section_key)
    possible = {s: max([r.max_score for r in rows if r.section == s and r.max_score] or [0]) for s in sections}
    scores: dict[str, dict[str, float]] = defaultdict(dict)
    for r in rows:
        scores[r.student][r.section] = r.score if r.status == GRADED and r.score is not None else 0
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="", encoding="utf-8") as f:
        out = csv.writer(f)
        out.writerow(csv_row(CANVAS_COLUMNS + [f"d2l {s}" for s in sections]))
        out.writerow(csv_row(["Points Possible", "", "", "", ""] + [_num(possible[s]) for s in sections]))
        for student in sorted(scores):
            out.writerow(csv_row([student, "", student, student, ""] + [_num(scores[student].get(s, 0)) for s in sections]))
    return path


def gradescope_results(row: Row, report: R.GradeReport) -> dict:
    """Gradescope's autograder results format for one submission."""
    tests = [{"name": f"{c.id} {c.title}", "number": c.id, "score": c.points, "max_score": c.max_points,
              "status": "passed" if c.status == R.PASSED else "failed",
              "output": c.message, "visibility": "visible"} for c in report.checks]
    output = "\n".join(report.notes)
    return {"score": report.score, "execution_time": report.seconds, "output": output,
            "visibility": "visible", "stdout_visibility": "hidden", "tests": tests}


def write_gradescope(row: Row, report: R.GradeReport, out: Path) -> Path:
    path = out / row.student / f"{row.section}.results.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(gradescope_results(row, report), indent=2), encoding="utf-8")
    return path


def _num(x: float) -> float | int:
    x = round(float(x), 4)
    return int(x) if x == int(x) else x


def _section_key(section: str) -> tuple[int, ...]:
    return tuple(int(p) for p in section.split("."))
