"""What leaves the gradebook for other tools: a class CSV, Gradescope's results.json per
submission, and the files the gradebook imports of Canvas, Moodle and Blackboard read as they are.
Every score leaving here is the final one (after any late penalty); every cell goes through csv_row."""
from __future__ import annotations

import csv
import json
from functools import lru_cache
from collections import defaultdict
from pathlib import Path

from d2lgrade.core import results as R
from d2lgrade.batch.gradebook import GRADED, Gradebook, Row
from d2lgrade.report.neutral import csv_row
from d2lgrade.core.sections import Section

# Canvas's gradebook import: these identity columns, a "Points Possible" row, then one column per
# assignment; a new column name makes a new assignment. Canvas matches a row on ID, SIS User ID or SIS
# Login ID, so students not on the roster (no ids to give) are left out of it.
CANVAS_COLUMNS = ["Student", "ID", "SIS User ID", "SIS Login ID", "Section"]
# Moodle's grade import (CSV): the "Email address" column is mapped to the users' email on import.
MOODLE_COLUMNS = ["Email address", "ID number", "Full name"]
# Blackboard's Grade Center upload: tab-delimited, keyed by Username; a column without a Column ID is new.
BLACKBOARD_COLUMNS = ["Last Name", "First Name", "Username", "Student ID"]


@lru_cache(maxsize=None)
def exercise_order(section_id: str) -> tuple[str, ...]:
    return tuple(e.id for e in Section(section_id).spec.exercises)


def class_table(book: Gradebook) -> tuple[list[str], dict[str, dict[str, float | str]], dict[str, float | str]]:
    """Columns (each exercise, each section's final total, penalty and status, the total), each
    student's cells, and the most points each column can take."""
    rows = book.submissions()
    sections = sorted({r.section for r in rows}, key=_section_key)
    points: dict[tuple[str, str], float] = defaultdict(float)
    possible: dict[tuple[str, str], float] = defaultdict(float)
    for r in book.results():
        points[r["student"], r["exercise"]] += r["points"]
        possible[r["student"], r["exercise"]] += r["max_points"]
    columns, table, top = [], {}, {}
    for section in sections:
        columns += [*exercise_order(section), f"{section} total", f"{section} penalty", f"{section} status"]
        for exercise in exercise_order(section):
            top[exercise] = _num(max([v for (_, e), v in possible.items() if e == exercise] or [0]))
        top[f"{section} total"] = _num(section_points(rows, section))
    columns.append("total")
    top["total"] = _num(sum(section_points(rows, s) for s in sections))
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
            cells[f"{section} total"] = final(row)
            cells[f"{section} penalty"] = _num(row.penalty) if graded and row.penalty else ""
            cells[f"{section} status"] = row.status if row is not None else "missing"
        cells["total"] = _num(sum(float(cells[f"{s} total"]) for s in sections))
        table[student] = cells
    return columns, table, top


def final(row: Row | None) -> float | int:
    """The score exports use: after any late penalty; 0 for work that was not graded."""
    if row is None or row.status != GRADED:
        return 0
    return _num(row.final_score if row.final_score is not None else row.score or 0)


def section_points(rows: list[Row], section: str) -> float:
    return max([r.max_score for r in rows if r.section == section and r.max_score] or [0])


def _write_csv(path: Path, rows, **dialect) -> Path:
    """Every export's one way out: each cell neutralised (report/neutral.py), the folder made first."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="", encoding="utf-8") as f:
        csv.writer(f, **dialect).writerows(csv_row(row) for row in rows)
    return path


def write_class_csv(book: Gradebook, path: Path) -> Path:
    columns, table, top = class_table(book)
    people = roster_of(book)
    rows = [["student", "name", "sis_id"] + columns, ["max points", "", ""] + [top.get(c, "") for c in columns]]
    rows += [[student, people.get(student, {}).get("name", ""), people.get(student, {}).get("sis_id", "")]
             + [cells[c] for c in columns] for student, cells in table.items()]
    return _write_csv(path, rows)


def roster_of(book: Gradebook) -> dict[str, dict]:
    return {s["id"]: s for s in book.roster()}


def _lms_rows(book: Gradebook) -> tuple[list[str], dict[str, float], list[tuple[dict, dict[str, float]]]]:
    """Sections, their points, and (roster entry, final score per section) per student an LMS can match:
    the roster's students in its order or, without a roster, every folder as its own id."""
    rows = book.submissions()
    sections = sorted({r.section for r in rows}, key=_section_key)
    possible = {s: section_points(rows, s) for s in sections}
    scores: dict[str, dict[str, float]] = defaultdict(dict)
    for r in rows:
        scores[r.student][r.section] = final(r)
    people = book.roster() or [{"id": s, "name": s, "email": "", "sis_id": s, "extra": {"login_id": s}}
                               for s in sorted(scores)]
    return sections, possible, [(p, scores.get(p["id"], {})) for p in people]


def write_canvas_csv(book: Gradebook, path: Path) -> Path:
    """One column per section (a new Canvas assignment "d2l <section>"), a Points Possible row."""
    sections, possible, people = _lms_rows(book)
    rows = [CANVAS_COLUMNS + [f"d2l {s}" for s in sections],
            ["Points Possible", "", "", "", ""] + [_num(possible[s]) for s in sections]]
    for p, scores in people:
        extra = p["extra"]
        rows.append([p["name"] or p["id"], extra.get("canvas_id") or extra.get("user_id", ""), p["sis_id"],
                     extra.get("login_id") or extra.get("username", ""), extra.get("section", "")]
                    + [_num(scores.get(s, 0)) for s in sections])
    return _write_csv(path, rows)


def write_moodle_csv(book: Gradebook, path: Path) -> Path:
    """Moodle's grade import, keyed by email: students without one on the roster cannot be matched."""
    sections, _, people = _lms_rows(book)
    rows = [MOODLE_COLUMNS + [f"d2l {s}" for s in sections]]
    rows += [[p["email"], p["sis_id"], p["name"]] + [_num(scores.get(s, 0)) for s in sections]
             for p, scores in people if p["email"]]
    return _write_csv(path, rows)


def write_blackboard(book: Gradebook, path: Path) -> Path:
    """Blackboard's Grade Center upload: tab-delimited, keyed by Username (the roster's `username`
    column, else the student's id)."""
    sections, _, people = _lms_rows(book)
    rows = [BLACKBOARD_COLUMNS + [f"d2l {s}" for s in sections]]
    for p, scores in people:
        first, last = split_name(p["name"])
        rows.append([last, first, p["extra"].get("username") or p["id"], p["sis_id"]]
                    + [_num(scores.get(s, 0)) for s in sections])
    return _write_csv(path, rows, delimiter="\t", lineterminator="\n")


def split_name(name: str) -> tuple[str, str]:
    """(first, last) from "Ada Lovelace" or "Lovelace, Ada"."""
    if "," in name:
        last, first = (part.strip() for part in name.split(",", 1))
        return first, last
    first, _, last = name.strip().rpartition(" ")
    return (first, last) if first else (last, "")


def gradescope_results(row: Row, report: R.GradeReport) -> dict:
    """Gradescope's autograder results format for one submission."""
    tests = [{"name": f"{c.id} {c.title}", "number": c.id, "score": c.points, "max_score": c.max_points,
              "status": "passed" if c.status == R.PASSED else "failed",
              "output": c.message, "visibility": "visible"} for c in report.checks]
    output = "\n".join(report.notes)
    score = row.final_score if row.final_score is not None else report.score     # after any late penalty
    return {"score": score, "execution_time": report.seconds, "output": output,
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
