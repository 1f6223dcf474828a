"""File names as learning-management systems hand them out.

A student's folder may hold `7.2.ipynb`, or the names a browser or an LMS gives a second copy:
`7.2 (1).ipynb`, `7.2-2.ipynb` (Canvas's resubmissions), `Copy of 7.2.ipynb` (Google Drive / Colab).
Canvas's bulk download is one flat folder of `<name>_<userid>_<submissionid>_<original name>` (with
`_LATE` after the name for late work); those files are mapped to students through the roster.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

SECTION_FILE = re.compile(r"^(?:copy of )?(?P<section>\d+\.\d+)(?:\s*\((?P<paren>\d+)\)|-(?P<dash>\d+))?"
                          r"\.(?P<suffix>ipynb|py)$", re.IGNORECASE)
CANVAS_FILE = re.compile(r"^(?P<name>[^_]+?)(?P<late>_late)?_(?P<userid>\d+)_(?P<subid>\d+)_(?P<original>.+)$",
                         re.IGNORECASE)


def section_of(filename: str) -> str | None:
    """The section a file is for, judged by its name alone ("7.2 (1).ipynb" -> "7.2")."""
    m = SECTION_FILE.match(filename.strip())
    return m["section"] if m else None


def copy_number(filename: str) -> int:
    """0 for the plain name; n for "7.2 (n).ipynb" and "7.2-n.ipynb", later copies of the same file."""
    m = SECTION_FILE.match(filename.strip())
    return int(m["paren"] or m["dash"] or 0) if m else 0


@dataclass(frozen=True)
class CanvasFile:
    name: str          # Canvas's "lastfirst", lower case, letters only
    userid: str        # Canvas's user id
    original: str      # the name the student's file had
    late: bool


def canvas_file(filename: str) -> CanvasFile | None:
    m = CANVAS_FILE.match(filename)
    if not m or section_of(m["original"]) is None:
        return None
    return CanvasFile(m["name"].lower(), m["userid"], m["original"], bool(m["late"]))


def name_keys(name: str) -> set[str]:
    """How Canvas may have squeezed a roster name into a file name: "Ada Lovelace" and "Lovelace, Ada"
    give "adalovelace" and "lovelaceada"."""
    words = re.findall(r"[a-z0-9]+", name.lower())
    if not words:
        return set()
    return {"".join(words), "".join(words[1:] + words[:1]), "".join(words[-1:] + words[:-1])}


def match_student(f: CanvasFile, roster: list) -> str | None:
    """The roster id of a Canvas file's student: by Canvas user id (a `canvas_id` or `user_id` column,
    or the id or SIS id itself), else by name; None when nobody or more than one student matches."""
    for key in ("canvas_id", "user_id"):
        hits = [s.id for s in roster if s.extra.get(key) == f.userid]
        if hits:
            return hits[0] if len(hits) == 1 else None
    hits = [s.id for s in roster if f.userid in (s.id, s.sis_id)]
    if hits:
        return hits[0] if len(hits) == 1 else None
    hits = [s.id for s in roster if f.name in name_keys(s.name) or f.name == s.id.lower()]
    return hits[0] if len(hits) == 1 else None
