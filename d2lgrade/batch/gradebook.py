"""The class gradebook: one SQLite file that survives restarts.

One writer (the batch's main process) records each submission in one transaction: its row in
`submissions` (status, content hash, grader version, executor, device, when) and one row per check in
`results`. `PRAGMA user_version` holds the schema version; older gradebooks are upgraded in place by
the steps in MIGRATIONS, newer ones are refused. A lock file next to the database keeps a second
batch from writing into the same gradebook at the same time.
"""
from __future__ import annotations

import fcntl
import json
import os
import sqlite3
from collections import Counter
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from d2lgrade.core import results as R
from d2lgrade.core.errors import UserError

GRADED, MISSING, INVALID, ERROR = "graded", "missing", "invalid", "error"   # a submission's status

# Step i brings a gradebook from schema version i to i + 1.
MIGRATIONS = [
    """
    CREATE TABLE submissions (
        student TEXT NOT NULL, section TEXT NOT NULL,
        status TEXT NOT NULL,                  -- graded | missing | invalid | error
        message TEXT NOT NULL DEFAULT '',      -- why it is invalid / what went wrong
        path TEXT, content_hash TEXT, grader_version TEXT, executor TEXT, device TEXT,
        graded_at TEXT, seconds REAL, score REAL, max_score REAL,
        report TEXT,                           -- the whole GradeReport (JSON) for the feedback page
        PRIMARY KEY (student, section));
    CREATE TABLE results (
        student TEXT NOT NULL, section TEXT NOT NULL, check_id TEXT NOT NULL,
        exercise TEXT NOT NULL, title TEXT NOT NULL, points REAL NOT NULL, max_points REAL NOT NULL,
        status TEXT NOT NULL, message TEXT NOT NULL,
        PRIMARY KEY (student, section, check_id),
        FOREIGN KEY (student, section) REFERENCES submissions ON DELETE CASCADE);
    """,
    # Version 2: an instructor's points for written answers. Kept apart from `results`, which a
    # regrade replaces; a review applies while the submission's content hash is the one reviewed.
    """
    CREATE TABLE reviews (
        student TEXT NOT NULL, section TEXT NOT NULL, check_id TEXT NOT NULL,
        points REAL NOT NULL, comment TEXT NOT NULL DEFAULT '',
        content_hash TEXT NOT NULL, reviewed_at TEXT NOT NULL,
        PRIMARY KEY (student, section, check_id));
    """,
    # Version 3: a gradebook belongs to one class (`class_info`: the folder it grades, the course
    # policy it applied), knows its roster, keeps when work was handed in next to the raw score and
    # the final one after a late penalty, and the pairs of submissions that are unusually similar.
    """
    CREATE TABLE class_info (key TEXT PRIMARY KEY, value TEXT NOT NULL);
    CREATE TABLE roster (
        id TEXT PRIMARY KEY, name TEXT NOT NULL DEFAULT '', email TEXT NOT NULL DEFAULT '',
        sis_id TEXT NOT NULL DEFAULT '', extra TEXT NOT NULL DEFAULT '{}', position INTEGER NOT NULL);
    ALTER TABLE submissions ADD COLUMN submitted_at TEXT;     -- ISO 8601, UTC
    ALTER TABLE submissions ADD COLUMN time_source TEXT;      -- submitted.csv | file modified
    ALTER TABLE submissions ADD COLUMN file_note TEXT;        -- which of several files was graded
    ALTER TABLE submissions ADD COLUMN late_days INTEGER;
    ALTER TABLE submissions ADD COLUMN penalty REAL;
    ALTER TABLE submissions ADD COLUMN final_score REAL;
    CREATE TABLE similar (
        section TEXT NOT NULL, a TEXT NOT NULL, b TEXT NOT NULL, similarity REAL NOT NULL,
        fragments TEXT NOT NULL,               -- JSON: [[lines of a, lines of b], ...]
        PRIMARY KEY (section, a, b));
    """,
    # Version 4: each check's own wall time, so that an instructor sees which checks a class waits on.
    """
    ALTER TABLE results ADD COLUMN seconds REAL;
    """,
]
SCHEMA_VERSION = len(MIGRATIONS)


@dataclass
class Row:
    """A submission as the gradebook holds it."""
    student: str
    section: str
    status: str
    message: str
    path: str | None
    content_hash: str | None
    grader_version: str | None
    executor: str | None
    device: str | None
    graded_at: str | None
    seconds: float | None
    score: float | None
    max_score: float | None
    report: str | None
    submitted_at: str | None = None
    time_source: str | None = None
    file_note: str | None = None
    late_days: int | None = None
    penalty: float | None = None
    final_score: float | None = None

    def grade_report(self) -> R.GradeReport | None:
        return report_from_dict(json.loads(self.report)) if self.report else None


def report_from_dict(data: dict) -> R.GradeReport:
    """The inverse of GradeReport.to_dict()."""
    data = dict(data)
    checks = [R.CheckResult(**c) for c in data.pop("checks")]
    data.pop("score", None), data.pop("max_score", None)
    return R.GradeReport(checks=checks, **data)


class Gradebook:
    def __init__(self, path: Path, *, lock: bool = False):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock_file = self._take_lock() if lock else None
        try:
            self.db = sqlite3.connect(self.path, isolation_level=None, timeout=30)
            self.db.execute("PRAGMA foreign_keys = ON")
            self._upgrade()
        except sqlite3.DatabaseError as exc:
            self.close()
            raise UserError(f"{self.path} is not a d2l-grade gradebook SQLite can open ({exc}); "
                            "move it away or give another one with --gradebook.") from None

    # -- opening ------------------------------------------------------------------------------
    def _take_lock(self):
        lock_path = self.path.with_name(self.path.name + ".lock")
        handle = open(lock_path, "a+")
        try:
            # flock dies with its process: a killed batch never leaves a stale lock behind.
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "another process"
            handle.close()
            raise UserError(f"another batch ({holder}) is writing to {self.path}; wait for it to finish, "
                            "or give this one its own --gradebook.") from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"pid {os.getpid()}")
        handle.flush()
        return handle

    def _upgrade(self) -> None:
        version = self.db.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise UserError(f"{self.path} has gradebook schema version {version}, newer than this d2l-grade "
                            f"reads (up to {SCHEMA_VERSION}); upgrade d2l-grade or use another --gradebook.")
        if version == 0 and self.db.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]:
            raise UserError(f"{self.path} is an SQLite database but not a d2l-grade gradebook; "
                            "give another path with --gradebook.")
        for step in range(version, SCHEMA_VERSION):
            try:   # each step whole or not at all (SQLite's DDL is transactional)
                self.db.executescript(f"BEGIN IMMEDIATE;{MIGRATIONS[step]};PRAGMA user_version = {step + 1};COMMIT;")
            except BaseException:
                if self.db.in_transaction:
                    self.db.execute("ROLLBACK")
                raise

    @contextmanager
    def transaction(self):
        """All of it or nothing: BEGIN IMMEDIATE takes the write lock up front."""
        if self.db.in_transaction:
            yield
            return
        self.db.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        self.db.execute("COMMIT")

    def close(self) -> None:
        if getattr(self, "db", None) is not None:
            self.db.close()
            self.db = None
        if self._lock_file is not None:
            self._lock_file.close()
            self._lock_file = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # -- writing ------------------------------------------------------------------------------
    def record(self, student: str, section: str, status: str, *, message: str = "", path: str | None = None,
               content_hash: str | None = None, grader_version: str | None = None,
               report: R.GradeReport | None = None, executor: str | None = None) -> None:
        """Replace what the gradebook holds for (student, section), in one transaction."""
        with self.transaction():
            self.db.execute("DELETE FROM submissions WHERE student = ? AND section = ?", (student, section))
            self.db.execute(
                "INSERT INTO submissions (student, section, status, message, path, content_hash, grader_version, "
                "executor, device, graded_at, seconds, score, max_score, report) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (student, section, status, message, path, content_hash, grader_version,
                 report.executor if report else executor, report.device if report else None, _now(),
                 report.seconds if report else None, report.score if report else None,
                 report.max_score if report else None, json.dumps(report.to_dict()) if report else None))
            for c in report.checks if report else []:
                self.db.execute("INSERT INTO results (student, section, check_id, exercise, title, points, "
                                "max_points, status, message, seconds) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                                (student, section, c.id, c.exercise, c.title, c.points, c.max_points,
                                 c.status, c.message, c.seconds))
            if report:
                self._apply_reviews(student, section, content_hash)

    def save_review(self, student: str, section: str, check_id: str, points: float, comment: str) -> None:
        """Within a transaction: keep the instructor's points and apply them to the current results."""
        content_hash = self.db.execute("SELECT content_hash FROM submissions WHERE student = ? AND section = ?",
                                       (student, section)).fetchone()[0]
        self.db.execute("INSERT OR REPLACE INTO reviews VALUES (?, ?, ?, ?, ?, ?, ?)",
                        (student, section, check_id, points, comment, content_hash, _now()))
        self._apply_reviews(student, section, content_hash)

    def _apply_reviews(self, student: str, section: str, content_hash: str | None) -> None:
        reviews = self.db.execute("SELECT check_id, points, comment FROM reviews WHERE student = ? AND section = ? "
                                  "AND content_hash = ?", (student, section, content_hash)).fetchall()
        for check_id, points, comment in reviews:
            self.db.execute(
                "UPDATE results SET points = ?, status = CASE WHEN ? >= max_points THEN ? ELSE ? END, message = ? "
                "WHERE student = ? AND section = ? AND check_id = ?",
                (points, points, R.PASSED, R.FAILED, "scored by an instructor" + (f": {comment}" if comment else ""),
                 student, section, check_id))
        if reviews:
            self.db.execute("UPDATE submissions SET score = (SELECT round(sum(points), 4) FROM results r WHERE "
                            "r.student = submissions.student AND r.section = submissions.section) "
                            "WHERE student = ? AND section = ?", (student, section))

    # -- the class it belongs to ------------------------------------------------------------------
    def class_folder(self) -> str | None:
        """The class folder this gradebook grades (absolute), or None while it is empty."""
        if (folder := self.info("folder")) is not None:
            return folder
        # Gradebooks from before version 3 did not record it; their rows' paths (<class>/<student>/<file>) do.
        parents = Counter(str(Path(p).resolve().parent.parent) for (p,) in
                          self.db.execute("SELECT path FROM submissions WHERE path IS NOT NULL"))
        return parents.most_common(1)[0][0] if parents else None

    def bind(self, folder: Path) -> None:
        """Refuse a folder that is not this gradebook's class (before anything of it is written);
        otherwise record it, so that an upgraded gradebook holds its class from now on."""
        folder_text, recorded = str(Path(folder).resolve()), self.class_folder()
        if recorded is not None and recorded != folder_text:
            raise UserError(f"{self.path} is the gradebook of the class in {recorded}, not of {folder_text}; "
                            f"grade {folder} into its own folder with --out DIR (or --gradebook FILE).")
        with self.transaction():
            self.set_info("folder", folder_text)

    def set_info(self, key: str, value) -> None:
        self.db.execute("INSERT OR REPLACE INTO class_info VALUES (?, ?)", (key, json.dumps(value)))

    def info(self, key: str, default=None):
        row = self.db.execute("SELECT value FROM class_info WHERE key = ?", (key,)).fetchone()
        if row is None:
            return default
        return json.loads(row[0])

    # -- roster, times, penalties, similarity (the term around the grades) -------------------------
    def save_roster(self, students: list[dict]) -> None:
        """Replace the roster (dicts with id, name, email, sis_id, extra), keeping its order."""
        with self.transaction():
            self.db.execute("DELETE FROM roster")
            self.db.executemany("INSERT INTO roster VALUES (?, ?, ?, ?, ?, ?)",
                                [(s["id"], s.get("name", ""), s.get("email", ""), s.get("sis_id", ""),
                                  json.dumps(s.get("extra", {})), i) for i, s in enumerate(students)])

    def roster(self) -> list[dict]:
        rows = self.db.execute("SELECT id, name, email, sis_id, extra FROM roster ORDER BY position").fetchall()
        return [{"id": i, "name": n, "email": e, "sis_id": s, "extra": json.loads(x)} for i, n, e, s, x in rows]

    def set_times(self, student: str, section: str, submitted_at: str | None, time_source: str | None,
                  file_note: str | None) -> None:
        self.db.execute("UPDATE submissions SET submitted_at = ?, time_source = ?, file_note = ? "
                        "WHERE student = ? AND section = ?", (submitted_at, time_source, file_note, student, section))

    def set_final(self, student: str, section: str, late_days: int | None, penalty: float | None,
                  final_score: float | None) -> None:
        self.db.execute("UPDATE submissions SET late_days = ?, penalty = ?, final_score = ? "
                        "WHERE student = ? AND section = ?", (late_days, penalty, final_score, student, section))

    def save_similar(self, pairs: list[dict], sections: list[str]) -> None:
        """Replace the flagged pairs of `sections` (a batch of other sections keeps theirs)."""
        with self.transaction():
            self.db.executemany("DELETE FROM similar WHERE section = ?", [(s,) for s in sections])
            self.db.executemany("INSERT INTO similar VALUES (?, ?, ?, ?, ?)",
                                [(p["section"], *p["students"], p["similarity"], json.dumps(p["fragments"]))
                                 for p in pairs])

    def similar(self) -> list[dict]:
        rows = self.db.execute("SELECT section, a, b, similarity, fragments FROM similar "
                               "ORDER BY section, similarity DESC, a, b").fetchall()
        return [{"section": s, "students": [a, b], "similarity": x, "fragments": json.loads(f)} for s, a, b, x, f in rows]

    # -- reading ------------------------------------------------------------------------------
    def current_status(self, student: str, section: str, content_hash: str, grader_version: str) -> str | None:
        """GRADED or INVALID when these very bytes were judged by this very grader (nothing to redo)."""
        row = self.db.execute("SELECT status, content_hash, grader_version FROM submissions "
                              "WHERE student = ? AND section = ?", (student, section)).fetchone()
        if row and row[0] in (GRADED, INVALID) and tuple(row[1:]) == (content_hash, grader_version):
            return row[0]
        return None

    def report(self, row: Row) -> R.GradeReport | None:
        """The stored report of a graded submission, with the gradebook's points (reviews included)."""
        report = row.grade_report()
        if report is None:
            return None
        current = {r[0]: r[1:] for r in self.db.execute(
            "SELECT check_id, points, status, message FROM results WHERE student = ? AND section = ?",
            (row.student, row.section))}
        for c in report.checks:
            if c.id in current:
                c.points, c.status, c.message = current[c.id]
        return report

    def submissions(self) -> list[Row]:
        rows = self.db.execute("SELECT * FROM submissions ORDER BY student, section").fetchall()
        return [Row(*r) for r in rows]

    def results(self) -> list[dict]:
        cursor = self.db.execute("SELECT * FROM results ORDER BY student, section, check_id")
        names = [d[0] for d in cursor.description]
        return [dict(zip(names, r)) for r in cursor.fetchall()]


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")
