"""Find the class's work: submissions/<student-id>/<section>.ipynb (or .py)."""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from d2lgrade.errors import UserError
from d2lgrade.sections import Section

FOUND, MISSING, INVALID = "found", "missing", "invalid"
SUFFIXES = (".ipynb", ".py")


@dataclass
class Work:
    """What one student handed in for one section (or did not)."""
    student: str
    section: str
    state: str                    # FOUND | MISSING | INVALID
    path: Path | None = None
    content_hash: str = ""        # sha256 of the file's bytes (and its suffix, which decides how it is read)
    reason: str = ""              # why it is invalid


def discover(root: Path, sections: list[Section], students: list[str] | None = None) -> list[Work]:
    root = Path(root)
    if not root.is_dir():
        raise UserError(f"{root} is not a folder; give the folder that holds one sub-folder per student "
                        "(submissions/<student-id>/<section>.ipynb).")
    folders = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if students:
        known = {p.name for p in folders}
        unknown = [s for s in students if s not in known]
        if unknown:
            raise UserError(f"{root} has no folder for student(s) {', '.join(unknown)}; "
                            f"the students there are {', '.join(sorted(known)) or 'none'}.")
        folders = [p for p in folders if p.name in set(students)]
    return [find_work(folder, section) for folder in folders for section in sections]


def find_work(folder: Path, section: Section) -> Work:
    candidates = [folder / f"{section.id}{suffix}" for suffix in SUFFIXES]
    present = [p for p in candidates if p.exists() or p.is_symlink()]
    work = Work(student=folder.name, section=section.id, state=MISSING)
    if not present:
        return work
    work.path = present[0]
    if len(present) > 1:
        return _invalid(work, f"both {present[0].name} and {present[1].name} were handed in; keep one of them")
    if not present[0].is_file():
        return _invalid(work, f"{present[0].name} is not a regular file")
    try:
        data = present[0].read_bytes()
    except OSError as exc:
        return _invalid(work, f"{present[0].name} cannot be read ({exc.strerror or exc})")
    work.state = FOUND
    work.content_hash = hashlib.sha256(present[0].suffix.encode() + b"\0" + data).hexdigest()
    return work


def _invalid(work: Work, reason: str) -> Work:
    work.state, work.reason = INVALID, reason
    return work
