"""Deadlines, late penalties and extensions: course.toml in the class folder (or --course FILE).

    [deadlines]
    "7.2" = 2026-12-01T23:59:00Z
    [late]
    per_day = 0.10        # fraction of the section's points off per started day late
    max_days = 5          # later than that: 0 points, still graded with feedback
    grace_minutes = 15
    [extensions]
    ana = { "7.2" = 2026-12-04T23:59:00Z }

Work handed in within the grace period after its deadline is on time; past it, every started day
after the deadline (not after the grace) costs `per_day` of the section's points. An extension
replaces the deadline for that student and section.
"""
from __future__ import annotations

import math
import re
import tomllib
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from pathlib import Path

from d2lgrade.core.errors import UserError

FILE = "course.toml"
LATE_KEYS = {"per_day", "max_days", "grace_minutes"}
TABLES = {"deadlines", "late", "extensions", "feedback"}


@dataclass
class Policy:
    deadlines: dict[str, datetime] = field(default_factory=dict)
    per_day: float = 0.0
    max_days: int | None = None          # None: no limit
    grace_minutes: float = 0.0
    extensions: dict[str, dict[str, datetime]] = field(default_factory=dict)
    feedback: dict = field(default_factory=dict)   # [feedback], as d2lgrade/core/feedback.read_table checked it

    def deadline(self, student: str, section: str) -> tuple[datetime | None, bool]:
        """(the deadline that applies, whether it is an extension)."""
        extended = self.extensions.get(student, {}).get(section)
        return (extended, True) if extended else (self.deadlines.get(section), False)

    def to_dict(self) -> dict:
        iso = lambda d: d.isoformat()  # noqa: E731
        return {"deadlines": {s: iso(d) for s, d in self.deadlines.items()}, "per_day": self.per_day,
                "max_days": self.max_days, "grace_minutes": self.grace_minutes,
                "extensions": {st: {s: iso(d) for s, d in e.items()} for st, e in self.extensions.items()},
                "feedback": self.feedback}

    @staticmethod
    def from_dict(d: dict | None) -> "Policy":
        if not d:
            return Policy()
        parse = datetime.fromisoformat
        return Policy({s: parse(t) for s, t in d["deadlines"].items()}, d["per_day"], d["max_days"], d["grace_minutes"],
                      {st: {s: parse(t) for s, t in e.items()} for st, e in d["extensions"].items()},
                      d.get("feedback") or {})


@dataclass
class Lateness:
    late_days: int | None      # None: no deadline or no time to judge by
    penalty: float | None      # points off
    final_score: float | None
    deadline: datetime | None = None
    extended: bool = False


def assess(policy: Policy, student: str, section: str, submitted_at: datetime | None,
           score: float | None, max_score: float | None) -> Lateness:
    """The late days, the points off and the final score of one graded submission."""
    if score is None:
        return Lateness(None, None, None)
    deadline, extended = policy.deadline(student, section)
    if deadline is None or submitted_at is None:
        return Lateness(None, 0.0, score, deadline, extended)
    seconds = (submitted_at - deadline).total_seconds()
    days = 0 if seconds <= policy.grace_minutes * 60 else math.ceil(seconds / 86400)
    if policy.max_days is not None and days > policy.max_days:
        off = score
    else:
        off = min(score, days * policy.per_day * (max_score or 0))
    off = round(off, 4)
    return Lateness(days, off, round(score - off, 4), deadline, extended)


def describe(policy: Policy, late: Lateness, score: float, max_score: float) -> str:
    """The penalty line of a page: why the final score is what it is."""
    if late.deadline is None or late.late_days is None:
        return ""
    when = f"the {'extended ' if late.extended else ''}deadline {show(late.deadline)}"
    if late.late_days == 0:
        return f"On time for {when}."
    days = f"{late.late_days} day{'s' if late.late_days != 1 else ''} late"
    if policy.max_days is not None and late.late_days > policy.max_days:
        return (f"{days} for {when}, more than the {policy.max_days} days accepted: final score 0 of {max_score:g} "
                f"(graded {score:g}; the feedback stands).")
    floor = "; a score does not go below 0" if late.penalty < round(late.late_days * policy.per_day * max_score, 4) else ""
    return (f"{days} for {when}: −{late.penalty:g} points ({policy.per_day:.0%} of {max_score:g} per started day{floor}); "
            f"final score {late.final_score:g} of {max_score:g} (graded {score:g}).")


def show(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


def find(root: Path, given: Path | None) -> Path | None:
    if given is not None:
        if not Path(given).is_file():
            raise UserError(f"--course {given} is not a file; give the course.toml with [deadlines] and [late].")
        return Path(given)
    path = Path(root) / FILE
    return path if path.is_file() else None


def read(path: Path, sections: set[str], students: set[str] | None = None) -> Policy:
    """The policy of `path`; `sections` are the course's, `students` the class's (None: anyone)."""
    try:
        text = Path(path).read_text(encoding="utf-8")
        data = tomllib.loads(text)
    except (OSError, UnicodeDecodeError) as exc:
        raise UserError(f"{path} cannot be read ({exc}); save it as UTF-8 text.") from None
    except tomllib.TOMLDecodeError as exc:
        raise UserError(f"{path} does not parse as TOML ({exc}); compare it with the example in the README.") from None
    lines = text.splitlines()
    for table in data:
        if table not in TABLES:
            raise UserError(f"{path} line {_line(lines, table)}: unknown table [{table}]; "
                            f"use {', '.join(f'[{t}]' for t in sorted(TABLES))}.")
    policy = Policy()
    for section, moment in _table(path, data, "deadlines").items():
        policy.deadlines[_section(path, lines, section, sections)] = _moment(path, lines, section, moment)
    late = _table(path, data, "late")
    for key, value in late.items():
        if key not in LATE_KEYS:
            raise UserError(f"{path} line {_line(lines, key)}: unknown key {key} in [late]; "
                            f"use {', '.join(sorted(LATE_KEYS))}.")
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0 or (key == "per_day" and value > 1):
            limit = "a fraction from 0 to 1" if key == "per_day" else "a number of at least 0"
            raise UserError(f"{path} line {_line(lines, key)}: {key} = {value!r} must be {limit}.")
    policy.per_day = float(late.get("per_day", 0.0))
    policy.max_days = int(late["max_days"]) if "max_days" in late else None
    policy.grace_minutes = float(late.get("grace_minutes", 0.0))
    for student, granted in _table(path, data, "extensions").items():
        if students is not None and student not in students:
            raise UserError(f"{path} line {_line(lines, student)}: extension for {student}, who is not on the roster "
                            "nor a folder of the class; use the student's id.")
        if not isinstance(granted, dict):
            raise UserError(f"{path} line {_line(lines, student)}: give {student}'s extensions as "
                            '{ "7.2" = 2026-12-04T23:59:00Z }.')
        policy.extensions[student] = {_section(path, lines, s, sections, student): _moment(path, lines, student, m)
                                      for s, m in granted.items()}
    if "feedback" in data:
        from d2lgrade.core.feedback import read_table
        policy.feedback = read_table(path, data["feedback"], sections)
    return policy


def _table(path: Path, data: dict, name: str) -> dict:
    table = data.get(name, {})
    if not isinstance(table, dict):
        raise UserError(f"{path}: {name} must be a table, [{name}]; compare it with the example in the README.")
    return table


def _section(path: Path, lines: list[str], section: str, sections: set[str], after: str | None = None) -> str:
    if section not in sections:
        raise UserError(f"{path} line {_line(lines, after or section, section)}: {section!r} is not a section of "
                        f"this course (sections: {', '.join(sorted(sections, key=_key))}).")
    return section


def _moment(path: Path, lines: list[str], key: str, value) -> datetime:
    if isinstance(value, datetime) and value.tzinfo is not None:
        return value.astimezone(timezone.utc)
    if isinstance(value, (datetime, date)):
        raise UserError(f"{path} line {_line(lines, key)}: {value.isoformat()} has no time zone; write it like "
                        f"2026-12-01T23:59:00Z or 2026-12-01T23:59:00+01:00.")
    raise UserError(f"{path} line {_line(lines, key)}: {value!r} is not a date and time; write it unquoted, like "
                    "2026-12-01T23:59:00Z.")


def _line(lines: list[str], key: str, inner: str | None = None) -> int:
    """The first line that defines `key` (and names `inner` on it); tomllib keeps no positions."""
    pattern = re.compile(rf'^\s*(\[\s*)?["\']?{re.escape(key)}["\']?\s*(=|\])')
    for number, line in enumerate(lines, start=1):
        if pattern.search(line) and (inner is None or inner in line):
            return number
    for number, line in enumerate(lines, start=1):
        if pattern.search(line):
            return number
    return 1


def _key(section: str) -> tuple[int, ...]:
    return tuple(int(p) for p in section.split("."))
