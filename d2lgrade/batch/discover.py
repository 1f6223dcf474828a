"""Find the class's work: one folder per student (`<class>/<student-id>/<section>.ipynb` or `.py`, with
the names LMS downloads give, see lms.py), or Canvas's flat bulk download mapped through the roster.
Roster students without work get rows too. Where a student handed in several files for a section, the
newest is graded and the row says which."""
from __future__ import annotations

import hashlib
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from d2lgrade.batch import lms
from d2lgrade.core.errors import UserError
from d2lgrade.core.sections import Section

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
    mtime: float | None = None    # the graded file's modification time (seconds since the epoch)
    others: list[Path] = field(default_factory=list)   # files for the same section that were not graded

    @property
    def file_note(self) -> str:
        if not self.others or self.path is None:
            return ""
        return (f"graded {self.path.name}, the newest of {len(self.others) + 1} files handed in for {self.section} "
                f"(by modification time); not graded: {', '.join(p.name for p in self.others)}")


def handed_in_sections(root: Path) -> set[str]:
    """Every section someone handed in a file for, in either layout."""
    root, found = Path(root), set()
    for entry in _entries(root):
        if entry.is_dir() and not entry.name.startswith("."):
            found |= {s for p in _entries(entry) if (s := lms.section_of(p.name))}
        elif (f := lms.canvas_file(entry.name)) is not None:
            found.add(lms.section_of(f.original))
    return found


def discover(root: Path, sections: list[Section], students: list[str] | None = None,
             roster: list | None = None) -> list[Work]:
    root = Path(root)
    if not root.is_dir():
        raise UserError(f"{root} is not a folder; give the folder that holds one sub-folder per student "
                        "(submissions/<student-id>/<section>.ipynb).")
    known, files = _layout(root, {s.id for s in sections}, roster)
    if students:
        unknown = [s for s in students if s not in known]
        if unknown:
            raise UserError(f"{root} has no folder for student(s) {', '.join(unknown)}; "
                            f"the students there are {', '.join(sorted(known)) or 'none'}.")
        known = [s for s in known if s in set(students)]
    return [choose(student, section.id, files.get((student, section.id), []))
            for student in sorted(known) for section in sections]


def known_students(root: Path, roster: list | None = None) -> list[str]:
    """The roster's students and everyone who handed something in, without reading any file."""
    return _layout(Path(root), set(), roster)[0]


def _layout(root: Path, wanted: set[str], roster: list | None) -> tuple[list[str], dict[tuple[str, str], list[Path]]]:
    files: dict[tuple[str, str], list[Path]] = defaultdict(list)
    known: list[str] = []
    for entry in sorted(_entries(root)):
        if entry.is_dir() and not entry.name.startswith("."):
            known.append(entry.name)
            for path in _entries(entry):
                if (section := lms.section_of(path.name)) in wanted:
                    files[entry.name, section].append(path)
        elif (f := lms.canvas_file(entry.name)) is not None:
            student = lms.match_student(f, roster or []) or f.name
            known.append(student)
            if (section := lms.section_of(f.original)) in wanted:
                files[student, section].append(entry)
    return list(dict.fromkeys([s.id for s in roster or []] + sorted(known))), files


def choose(student: str, section: str, present: list[Path]) -> Work:
    work = Work(student=student, section=section, state=MISSING)
    if not present:
        return work
    # Newest first; among files of the same time a later copy ("7.2 (2)") before an earlier one.
    order = lambda p: (_mtime(p), lms.copy_number(p.name))      # noqa: E731
    ranked = sorted(present, key=lambda p: (*order(p), p.name), reverse=True)
    work.path, work.others, work.mtime = ranked[0], ranked[1:], _mtime(ranked[0])
    if len(ranked) > 1 and order(ranked[1]) == order(ranked[0]):
        return _invalid(work, f"both {ranked[0].name} and {ranked[1].name} were handed in at the same time; "
                              "keep one of them")
    if not work.path.is_file():
        return _invalid(work, f"{work.path.name} is not a regular file")
    try:
        data = work.path.read_bytes()
    except OSError as exc:
        return _invalid(work, f"{work.path.name} cannot be read ({exc.strerror or exc})")
    work.state = FOUND
    work.content_hash = hashlib.sha256(work.path.suffix.encode() + b"\0" + data).hexdigest()
    return work


def _entries(folder: Path) -> list[Path]:
    try:
        return list(folder.iterdir())
    except OSError:
        return []


def _mtime(path: Path) -> float:
    try:
        return path.lstat().st_mtime
    except OSError:
        return 0.0


def _invalid(work: Work, reason: str) -> Work:
    work.state, work.reason = INVALID, reason
    return work
