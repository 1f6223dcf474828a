"""The class roster: roster.csv in the class folder (or --roster FILE).

Columns are found by their header: `id` (the student's folder name, required), `name`, `email`,
`sis_id`; any other column is kept (e.g. `username` for Blackboard, `login_id`, `canvas_id`, `section`
for Canvas), and fewer are allowed. Rows are numbered as a spreadsheet numbers them (the header is row 1).
"""
from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path

from d2lgrade.core.errors import UserError

KNOWN = ("id", "name", "email", "sis_id")
FILE = "roster.csv"


@dataclass
class Student:
    id: str
    name: str = ""
    email: str = ""
    sis_id: str = ""
    extra: dict = field(default_factory=dict)

    def as_dict(self) -> dict:
        return {"id": self.id, "name": self.name, "email": self.email, "sis_id": self.sis_id, "extra": self.extra}

    @staticmethod
    def from_dict(d: dict) -> "Student":
        return Student(d["id"], d.get("name", ""), d.get("email", ""), d.get("sis_id", ""), dict(d.get("extra", {})))


def find(root: Path, given: Path | None) -> Path | None:
    """--roster FILE, else roster.csv in the class folder, else no roster."""
    if given is not None:
        if not Path(given).is_file():
            raise UserError(f"--roster {given} is not a file; give the roster CSV (columns id, name, email, sis_id).")
        return Path(given)
    path = Path(root) / FILE
    return path if path.is_file() else None


def read(path: Path) -> list[Student]:
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:    # -sig: Excel writes a BOM
            records = list(csv.reader(f))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise UserError(f"{path} cannot be read as a CSV roster ({exc}); save it as UTF-8 CSV.") from None
    if not records:
        raise UserError(f"{path} is empty; its first line must be a header with at least an `id` column.")
    header = [h.strip().lower() for h in records[0]]
    if "id" not in header:
        raise UserError(f"{path} line 1 has no `id` column (its header is {', '.join(records[0]) or 'empty'}); "
                        "name the column of student folder names `id`.")
    students, seen = [], {}
    for row_number, record in enumerate(records[1:], start=2):
        if not any(cell.strip() for cell in record):
            continue
        cells = {h: (record[i].strip() if i < len(record) else "") for i, h in enumerate(header) if h}
        sid = cells.get("id", "")
        if not sid:
            raise UserError(f"{path} line {row_number} has no id; give every student the name of their folder.")
        if sid in seen:
            raise UserError(f"{path} line {row_number} repeats the id {sid!r} of line {seen[sid]}; keep one of them.")
        seen[sid] = row_number
        students.append(Student(sid, cells.get("name", ""), cells.get("email", ""), cells.get("sis_id", ""),
                                {h: v for h, v in cells.items() if h not in KNOWN}))
    return students
