"""Written answers: a review sheet for the instructor, and importing the points they give.

The sheet lists every written answer waiting for (or already given) points. An imported sheet is
checked whole first; one bad row refuses it all, naming the row, so nothing is half-imported.
"""
from __future__ import annotations

import csv
import math
from pathlib import Path

from d2lgrade.core import results as R
from d2lgrade.batch.gradebook import GRADED, Gradebook
from d2lgrade.core.errors import SubmissionError, UserError
from d2lgrade.batch.class_report import written_checks
from d2lgrade.load import load_submission
from d2lgrade.report.neutral import csv_cell, from_csv_cell

COLUMNS = ["student", "section", "exercise", "answer", "rubric", "max_points", "points", "comment"]
REQUIRED = ("student", "exercise", "points")


def written_answers(book: Gradebook) -> dict[tuple[str, str], dict]:
    """(student, check id) -> what the sheet shows, for every written answer in the gradebook."""
    reviews = {(s, c): (p, m) for s, c, p, m in book.db.execute(
        "SELECT r.student, r.check_id, r.points, r.comment FROM reviews r JOIN submissions s "
        "ON r.student = s.student AND r.section = s.section AND r.content_hash = s.content_hash")}
    out = {}
    for row in book.submissions():
        report = row.grade_report() if row.status == GRADED else None
        for c in report.checks if report else []:
            if c.status != R.MANUAL:          # the stored report keeps the status grading gave
                continue
            points, comment = reviews.get((row.student, c.id), ("", ""))
            # A code check the grader could not verify ("implement it yourself") has no text answer:
            # the instructor judges the student's code for that exercise instead.
            answer = c.answer if c.id in written_checks(row.section) else \
                "\n\n".join(filter(None, [c.answer, student_code(row.path, c.exercise)]))
            out[row.student, c.id] = {"student": row.student, "section": row.section, "exercise": c.id,
                                      "answer": answer, "rubric": "\n".join(f"- {r}" for r in c.rubric),
                                      "max_points": f"{c.max_points:g}",
                                      "points": "" if points == "" else f"{points:g}", "comment": comment}
    return out


def student_code(path: str | None, exercise: str) -> str:
    """The code cells a submission attributes to `exercise` (its parts included), or "" when the file
    is gone or unreadable."""
    if not path:
        return ""
    try:
        submission = load_submission(Path(path))
    except (SubmissionError, OSError):
        return ""
    return "\n\n".join(c.source for c in submission.code_cells
                        if c.exercise and (c.exercise == exercise or c.exercise.startswith(exercise + ".")))


def write_sheet(book: Gradebook, path: Path) -> tuple[Path, int]:
    rows = written_answers(book)
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="", encoding="utf-8") as f:
        out = csv.DictWriter(f, fieldnames=COLUMNS)
        out.writeheader()
        # Answers, comments and student ids are typed by people: no cell may run as a formula.
        out.writerows({k: csv_cell(v) for k, v in row.items()} for row in rows.values())
    return Path(path), len(rows)


def import_sheet(book: Gradebook, path: Path) -> list[tuple[str, str, str]]:
    """Merge the instructor's points into the gradebook; returns the (student, section, check id)
    it scored."""
    path = Path(path)
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            reader = csv.DictReader(f)
            missing = [c for c in REQUIRED if c not in (reader.fieldnames or [])]
            if missing:
                raise UserError(f"{path} has no column {', '.join(missing)}; start from the sheet "
                                "`--review FILE.csv` writes.")
            # Numbered as a spreadsheet shows them (header = row 1), not by file line: an answer's
            # newlines make a record span several lines of the file.
            sheet = list(enumerate((dict(row) for row in reader), start=2))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise UserError(f"{path} cannot be read as a CSV review sheet ({exc}); give the sheet --review wrote.") from None
    known = written_answers(book)
    problems, scored = [], []
    for line, row in sheet:
        student, exercise = (from_csv_cell((row.get(k) or "").strip()) for k in ("student", "exercise"))
        text = (row.get("points") or "").strip()
        if not text:
            continue                              # not reviewed yet
        answer = known.get((student, exercise))
        if answer is None:
            problems.append(f"row {line}: the gradebook has no written answer {exercise!r} from student {student!r}")
            continue
        try:
            points = float(text)
        except ValueError:
            problems.append(f"row {line} ({student}, {exercise}): points {text!r} is not a number")
            continue
        top = float(answer["max_points"])
        if not math.isfinite(points) or points < 0 or points > top:
            problems.append(f"row {line} ({student}, {exercise}): points {text} is outside 0..{top:g}")
            continue
        scored.append((student, answer["section"], exercise, points, from_csv_cell((row.get("comment") or "").strip())))
    if problems:
        raise UserError(f"{path}: nothing was imported; fix " + "; ".join(problems[:10]) +
                        (f"; and {len(problems) - 10} more" if len(problems) > 10 else "") + ".")
    with book.transaction():
        for student, section, exercise, points, comment in scored:
            book.save_review(student, section, exercise, points, comment)
    return [(student, section, exercise) for student, section, exercise, _, _ in scored]
