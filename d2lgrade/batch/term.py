"""A class folder's term files, read and checked before anything is graded or written, and what they
change in the gradebook: names from the roster, submission times, late penalties.

The files, all optional: roster.csv (roster.py), course.toml (late.py) and submitted.csv (student,
section, submitted_at as an LMS exports it, ISO 8601 with a time zone). Without a submitted.csv row, a
submission's time is its file's modification time, and every page says which was used.
"""
from __future__ import annotations

import csv
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from d2lgrade.core import feedback
from d2lgrade.batch import late, roster as roster_file
from d2lgrade.batch.discover import FOUND, Work, discover, known_students
from d2lgrade.batch.gradebook import GRADED, Gradebook, Row
from d2lgrade.core.errors import UserError
from d2lgrade.core.sections import Section, all_sections

SUBMITTED = "submitted.csv"
FROM_CSV, FROM_FILE = "submitted.csv", "file modified"


@dataclass
class Term:
    work: list[Work]
    roster: list[roster_file.Student] | None = None     # None: the class has no roster
    policy: late.Policy = field(default_factory=late.Policy)
    times: dict[tuple[str, str], datetime] = field(default_factory=dict)   # from submitted.csv
    files: dict[str, str] = field(default_factory=dict)                    # which term files were read
    everyone: list[Work] = field(default_factory=list)                     # the whole class's work


def load(root: Path, sections: list[Section], students: list[str] | None = None,
         roster_path: Path | None = None, course_path: Path | None = None) -> Term:
    """Everything a batch needs from the class folder; a bad file stops it here, naming file and line."""
    term = Term(work=[])
    files = {}
    if (path := roster_file.find(root, roster_path)) is not None:
        term.roster, files["roster"] = roster_file.read(path), str(path)
    course_sections = {s.id for s in all_sections()}
    known = set(known_students(root, term.roster))
    if (path := late.find(root, course_path)) is not None:
        term.policy, files["course"] = late.read(path, course_sections, known), str(path)
    term.work = discover(root, sections, students, term.roster)
    # Similarity compares the whole class, also when --students grades a few of it.
    term.everyone = discover(root, sections, None, term.roster) if students else term.work
    if (path := Path(root) / SUBMITTED).is_file():
        term.times, files["submitted"] = read_submitted(path, known, course_sections), str(path)
    term.files = files
    return term


def read_submitted(path: Path, students: set[str], sections: set[str]) -> dict[tuple[str, str], datetime]:
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            records = list(csv.reader(f))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise UserError(f"{path} cannot be read as CSV ({exc}); save it as UTF-8 CSV.") from None
    header = [h.strip().lower() for h in records[0]] if records else []
    missing = [c for c in ("student", "section", "submitted_at") if c not in header]
    if missing:
        raise UserError(f"{path} line 1 has no column {', '.join(missing)}; its header must name student, "
                        "section and submitted_at.")
    at = {name: header.index(name) for name in ("student", "section", "submitted_at")}
    times = {}
    for line, record in enumerate(records[1:], start=2):
        if not any(c.strip() for c in record):
            continue
        student, section, text = (record[at[c]].strip() if at[c] < len(record) else ""
                                  for c in ("student", "section", "submitted_at"))
        if student not in students:
            raise UserError(f"{path} line {line}: {student!r} is neither on the roster nor a folder of the class; "
                            "use the student's id.")
        if section not in sections:
            raise UserError(f"{path} line {line}: {section!r} is not a section of this course.")
        times[student, section] = parse_time(text, f"{path} line {line}")
    return times


def parse_time(text: str, where: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text.replace(" UTC", "Z").strip())
    except ValueError:
        raise UserError(f"{where}: {text!r} is not a date and time; write it like 2026-12-01T23:59:00Z.") from None
    if moment.tzinfo is None:
        raise UserError(f"{where}: {text} has no time zone; add one, like 2026-12-01T23:59:00Z or +01:00.")
    return moment.astimezone(timezone.utc)


# -- into the gradebook -------------------------------------------------------------------------
def record(book: Gradebook, term: Term) -> None:
    """Store the roster, the policy and each submission's time (also for work skipped as unchanged)."""
    book.save_roster([s.as_dict() for s in term.roster or []])
    with book.transaction():
        book.set_info("course", term.policy.to_dict())
        book.set_info("term_files", term.files)
        for w in term.work:
            when, source = term.times.get((w.student, w.section)), FROM_CSV
            if when is None and w.state == FOUND and w.mtime:
                when, source = datetime.fromtimestamp(w.mtime, timezone.utc), FROM_FILE
            book.set_times(w.student, w.section, when.isoformat() if when else None,
                           source if when else None, w.file_note or None)


def apply_penalties(book: Gradebook) -> None:
    """Final scores from the raw ones and the stored policy: a changed deadline or extension needs no
    grading again."""
    policy = late.Policy.from_dict(book.info("course"))
    with book.transaction():
        for row in book.submissions():
            when = datetime.fromisoformat(row.submitted_at) if row.submitted_at else None
            score = row.score if row.status == GRADED else None
            result = late.assess(policy, row.student, row.section, when, score, row.max_score)
            book.set_final(row.student, row.section, result.late_days, result.penalty, result.final_score)


def page(book: Gradebook, row: Row, people: dict | None = None, policy: late.Policy | None = None) -> tuple[dict, list[str]]:
    """What a student's page shows beyond its report: who, the final score and the penalty line; and
    notes on which file was graded and when it was handed in (and by which clock). `people` and
    `policy` spare reading them again for every row."""
    people = names(book) if people is None else people
    policy = late.Policy.from_dict(book.info("course")) if policy is None else policy
    notes = []
    if row.file_note:
        notes.append(row.file_note[0].upper() + row.file_note[1:] + ".")
    if row.submitted_at:
        source = "from submitted.csv" if row.time_source == FROM_CSV else \
            "the file's modification time; no submitted.csv entry"
        notes.append(f"Handed in {late.show(datetime.fromisoformat(row.submitted_at))} ({source}).")
    when = datetime.fromisoformat(row.submitted_at) if row.submitted_at else None
    result = late.assess(policy, row.student, row.section, when, row.score, row.max_score)
    line = late.describe(policy, result, row.score or 0, row.max_score or 0)
    person = people.get(row.student)
    who = f"{person['name'] or row.student} ({row.student})" if person else \
        f"{row.student} (not on the roster)" if people else row.student
    final = result.final_score if result.final_score is not None else row.score
    deadline = result.deadline or policy.deadline(row.student, row.section)[0]
    shown = feedback.for_submission(policy.feedback, deadline is not None and datetime.now(timezone.utc) > deadline)
    return {"who": who, "final": final or 0, "penalty": line, "feedback": shown}, notes


def pages(book: Gradebook) -> dict[tuple[str, str], tuple]:
    """Every graded submission's page extras: a change rewrites its page without grading again."""
    people, policy = names(book), late.Policy.from_dict(book.info("course"))
    return {(r.student, r.section): repr(page(book, r, people, policy)) for r in book.submissions() if r.status == GRADED}


def names(book: Gradebook) -> dict[str, dict]:
    """Roster entries by id (empty when the class has no roster)."""
    return {s["id"]: s for s in book.roster()}
