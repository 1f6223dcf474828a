"""`python grade.py --batch [DIR]`: grade a class, keep the gradebook, write exports and reports."""
from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from d2lgrade.core import feedback
from d2lgrade.batch import class_report, exports, late, review, similarity, term
from d2lgrade.batch.discover import FOUND, INVALID, MISSING, handed_in_sections
from d2lgrade.batch.gradebook import ERROR, GRADED, Gradebook, report_from_dict
from d2lgrade.batch.progress import BatchProgress
from d2lgrade.core.version import grader_version
from d2lgrade.core.errors import UserError
from d2lgrade.report import html
from d2lgrade.run.executor import RuntimeOptions
from d2lgrade.core.sections import Section, all_sections, find_section

DEFAULT_EXECUTOR = "auto"       # warm on Linux, kernel elsewhere (d2lgrade.run.engines.default_executor)


@dataclass
class BatchConfig:
    root: Path | None = Path("submissions")   # None: grade nothing, only import / export from the gradebook
    sections: list[str] | None = None          # default: every section someone handed in
    students: list[str] | None = None
    workers: int = field(default_factory=lambda: os.cpu_count() or 1)
    gradebook: Path | None = None               # default: <out>/gradebook.sqlite, the class's own
    out: Path = Path("reports")
    executor: str = DEFAULT_EXECUTOR
    # Made only when something is graded: resolving the device imports torch, which a rerun with
    # nothing to grade never needs.
    options_factory: Callable[[], RuntimeOptions] = RuntimeOptions
    regrade: bool = False
    quiet: bool = False
    lms_csv: bool = False
    review: Path | None = None                 # write the review sheet here
    import_review: Path | None = None          # merge an instructor's sheet
    on_start: Callable[[dict, int], None] | None = None   # (task, worker pid): a hook for tests
    dask: str | None = None                    # a Dask scheduler's address: grade on its workers
    roster: Path | None = None                 # default: <root>/roster.csv when there is one
    course: Path | None = None                 # default: <root>/course.toml when there is one


def gradebook_path(config: BatchConfig) -> Path:
    return Path(config.gradebook) if config.gradebook is not None else Path(config.out) / "gradebook.sqlite"


def run_batch(config: BatchConfig) -> dict:
    if config.workers < 1:
        raise UserError(f"--workers must be at least 1 (got {config.workers}).")
    book_path = gradebook_path(config)
    summary = {"students": 0, "submissions": 0, "graded": 0, "skipped": 0, "missing": 0, "invalid": 0,
               "errors": 0, "gradebook": str(book_path), "reports": {}, "workers": {}}
    if config.root is None and not book_path.exists():
        raise UserError(f"there is no gradebook at {book_path} yet; grade the class first "
                        "(`python grade.py --batch`), or give its path with --gradebook or --out.")
    changed: set[tuple[str, str]] = set()      # (student, section) whose pages must be written again
    # The class folder's files are read and checked first: a bad roster or course.toml stops the
    # batch before the gradebook is even opened.
    the_term = term.load(config.root, choose_sections(config), config.students, config.roster, config.course) \
        if config.root is not None else None
    with Gradebook(book_path, lock=True) as book:
        before = term.pages(book)
        if the_term is not None:
            book.bind(config.root)             # another class's gradebook: refused before anything is written
            changed |= grade_class(config, book, summary, the_term)
            term.record(book, the_term)
            compare_class(book, the_term.everyone)
        if config.import_review:
            scored = review.import_sheet(book, config.import_review)
            summary["reviews_imported"] = len(scored)
            changed |= {(student, section) for student, section, _ in scored}
        term.apply_penalties(book)
        after = term.pages(book)
        changed |= {key for key, state in after.items() if before.get(key) != state}
        summary["reports"] = publish(book, config, changed)
        summary["rows"], summary["similar"] = json_rows(book), [
            {k: p[k] for k in ("section", "students", "similarity")} for p in book.similar()]
        summary["not_on_roster"] = not_on_roster(book)
    return summary


def compare_class(book: Gradebook, work: list) -> None:
    """The similarity report, computed again only when some submission changed: a rerun with nothing
    new stays quick."""
    key = hashlib.sha256(json.dumps([similarity.SETTINGS] + sorted(
        [w.student, w.section, w.content_hash] for w in work if w.state == FOUND)).encode()).hexdigest()
    if book.info("similarity_of") == key:
        return
    book.save_similar(similarity.find_pairs(similarity.sources(work)), sorted({w.section for w in work}))
    with book.transaction():
        book.set_info("similarity_of", key)


def not_on_roster(book: Gradebook) -> list[str]:
    roster = term.names(book)
    return sorted({r.student for r in book.submissions()} - set(roster)) if roster else []


def json_rows(book: Gradebook) -> list[dict]:
    """The JSON contract: one object per (student, section), roster students without work included."""
    roster = term.names(book)
    return [{"student": r.student, "name": roster.get(r.student, {}).get("name", ""), "section": r.section,
             "status": r.status, "score": r.score if r.status == GRADED else None,
             "max_score": r.max_score, "late_days": r.late_days, "penalty": r.penalty,
             "final_score": r.final_score, "submitted_at": r.submitted_at, "time_source": r.time_source,
             "file": Path(r.path).name if r.path else None} for r in book.submissions()]


def choose_sections(config: BatchConfig) -> list[Section]:
    if not Path(config.root).is_dir():
        raise UserError(f"{config.root} is not a folder; give the folder that holds one sub-folder per student "
                        "(submissions/<student-id>/<section>.ipynb).")
    if config.sections:
        return [find_section(s) for s in config.sections]
    handed_in = handed_in_sections(Path(config.root))
    sections = [s for s in all_sections() if s.id in handed_in]
    if not sections:
        raise UserError(f"{config.root} holds no <student>/<section>.ipynb or .py files; "
                        "collect work as submissions/<student-id>/7.3.ipynb.")
    return sections


def grade_class(config: BatchConfig, book: Gradebook, summary: dict, the_term: term.Term) -> set[tuple[str, str]]:
    """Grade what is new or changed; returns the (student, section) pairs it recorded."""
    work = the_term.work
    versions = {w.section: grader_version(find_section(w.section)) for w in work}
    summary["students"] = len({w.student for w in work})
    summary["submissions"] = sum(w.state != MISSING for w in work)
    tasks = []
    for w in work:
        if w.state == MISSING:
            book.record(w.student, w.section, MISSING, message="no file handed in")
            summary["missing"] += 1
        elif w.state == INVALID:
            book.record(w.student, w.section, INVALID, message=w.reason, path=str(w.path))
            summary["invalid"] += 1
        elif not config.regrade and (status := book.current_status(w.student, w.section, w.content_hash,
                                                                      versions[w.section])):
            summary["skipped" if status == GRADED else "invalid"] += 1
        else:
            tasks.append({"student": w.student, "section": w.section, "path": str(w.path),
                          "content_hash": w.content_hash, "grader_version": versions[w.section]})
    if not tasks:
        return set()
    progress = BatchProgress(len(tasks) + summary["skipped"], summary["skipped"], config.quiet)
    pool = make_pool(config)
    recorded = set()
    try:
        for outcome in pool.run(tasks):
            record_outcome(book, outcome, config.executor)
            recorded.add((outcome["student"], outcome["section"]))
            if outcome.get("retrying"):
                progress.retrying(outcome["student"], outcome["section"], outcome["message"])
                continue
            key = {GRADED: "graded", INVALID: "invalid", ERROR: "errors"}[outcome["status"]]
            summary[key] += 1
            if "memory" in outcome:
                summary["workers"][str(outcome.get("worker", len(summary["workers"])))] = outcome["memory"]
            progress.finished(outcome["student"], outcome["section"], outcome["status"], _line(outcome))
    finally:
        pool.close()          # at once, also when Ctrl-C lands here rather than inside the pool
        progress.close()
    return recorded


def make_pool(config: BatchConfig):
    """Where submissions are graded: local worker processes, or a Dask cluster's workers (same outcomes)."""
    if config.dask:
        from d2lgrade.batch.cluster import DaskPool
        return DaskPool(config.dask, config.executor, config.options_factory())
    from d2lgrade.batch.pool import WorkerPool
    return WorkerPool(config.workers, config.executor, config.options_factory(), on_start=config.on_start)


def record_outcome(book: Gradebook, outcome: dict, executor: str) -> None:
    report = report_from_dict(outcome["report"]) if outcome["status"] == GRADED else None
    book.record(outcome["student"], outcome["section"], outcome["status"], message=outcome.get("message", ""),
                path=outcome["path"], content_hash=outcome["content_hash"],
                grader_version=outcome["grader_version"], report=report, executor=executor)


def _line(outcome: dict) -> str:
    if outcome["status"] == GRADED:
        r = outcome["report"]
        return f"{r['score']:g}/{r['max_score']:g} in {r['seconds']:g} s"
    return f"{outcome['status']}: {outcome.get('message', '')}"


def publish(book: Gradebook, config: BatchConfig, changed: set[tuple[str, str]] | None = None) -> dict:
    """Exports and pages, from the gradebook alone. A submission's own page and results.json are
    written when it is in `changed` (None: all) or they are missing; the class-wide files always."""
    out = Path(config.out)
    written = {"gradebook_csv": str(exports.write_class_csv(book, out / "gradebook.csv"))}
    pages = 0
    people, policy = term.names(book), late.Policy.from_dict(book.info("course"))
    for row in book.submissions():
        page, results = out / row.student / f"{row.section}.html", out / row.student / f"{row.section}.results.json"
        if row.status != GRADED:            # e.g. a file withdrawn since: no feedback of an old grading
            page.unlink(missing_ok=True)
            results.unlink(missing_ok=True)
            continue
        pages += 1
        if changed is not None and (row.student, row.section) not in changed and page.exists() and results.exists():
            continue
        report = book.report(row)
        shown, notes = term.page(book, row, people, policy)     # who, which file, when, any penalty, feedback level
        feedback.for_page(report, shown["feedback"])
        report.notes = notes + report.notes
        html.write(report, page, shown)
        exports.write_gradescope(row, report, out)
    written["student_pages"] = pages
    written["gradescope_results"] = pages
    written["class_page"] = str(class_report.write(book, out))
    written["similarity_page"] = str(class_report.write_similarity(book, out))
    if config.lms_csv:
        written["lms_csv"] = str(exports.write_canvas_csv(book, out / "canvas.csv"))
        written["moodle_csv"] = str(exports.write_moodle_csv(book, out / "moodle.csv"))
        written["blackboard"] = str(exports.write_blackboard(book, out / "blackboard.txt"))
    if config.review:
        path, count = review.write_sheet(book, config.review)
        written["review_sheet"], written["written_answers"] = str(path), count
    return written


def summary_line(summary: dict) -> str:
    reports, parts = summary["reports"], []
    if summary["students"]:
        parts.append(f"{summary['students']} students, {summary['submissions']} submissions: graded {summary['graded']}, "
                     f"skipped {summary['skipped']} (unchanged), missing {summary['missing']}, "
                     f"invalid {summary['invalid']}, errors {summary['errors']}")
    late_rows = [r for r in summary.get("rows", []) if r["late_days"]]
    if late_rows:
        parts.append(f"{len(late_rows)} late (penalties on the class page)")
    if summary.get("similar"):
        parts.append(f"{len(summary['similar'])} unusually similar pairs (similarity.html)")
    if summary.get("not_on_roster"):
        parts.append(f"not on the roster: {', '.join(summary['not_on_roster'])}")
    if "reviews_imported" in summary:
        parts.append(f"imported the points of {summary['reviews_imported']} written answers")
    if "review_sheet" in reports:
        parts.append(f"review sheet {reports['review_sheet']} ({reports['written_answers']} written answers)")
    parts.append(f"gradebook {summary['gradebook']}; class page {reports.get('class_page')}")
    return "; ".join(parts)
