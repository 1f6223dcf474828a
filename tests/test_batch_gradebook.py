"""The gradebook's schema versions, finding submissions and the grader version (no grading here)."""
import json
import os
import sqlite3

import pytest

from d2lgrade.batch import gradebook as G
from d2lgrade.batch.discover import FOUND, INVALID, MISSING, discover
from d2lgrade.core.version import _module_closure, grader_version
from d2lgrade.cli import main
from d2lgrade.core.errors import SubmissionError, UserError
from d2lgrade.load import load_submission
from d2lgrade.core.sections import ROOT, find_section


def test_an_older_gradebook_is_upgraded_in_place_keeping_its_rows(tmp_path):
    path = tmp_path / "old.sqlite"
    with sqlite3.connect(path) as db:                      # what version 1 wrote
        db.executescript(G.MIGRATIONS[0] + "; PRAGMA user_version = 1;")
        db.execute("INSERT INTO submissions (student, section, status) VALUES ('ada', '7.3', 'missing')")
    with G.Gradebook(path) as book:
        assert book.db.execute("PRAGMA user_version").fetchone()[0] == G.SCHEMA_VERSION
        assert [r.student for r in book.submissions()] == ["ada"]
        assert book.db.execute("SELECT count(*) FROM reviews").fetchone()[0] == 0


@pytest.mark.parametrize("make, words", [
    (lambda db: db.execute(f"PRAGMA user_version = {G.SCHEMA_VERSION + 1}"), "newer than this d2l-grade reads"),
    (lambda db: db.execute("CREATE TABLE grades (x)"), "not a d2l-grade gradebook"),
])
def test_a_gradebook_it_cannot_read_is_refused_with_the_reason(tmp_path, make, words):
    path = tmp_path / "gb.sqlite"
    with sqlite3.connect(path) as db:
        make(db)
    with pytest.raises(UserError, match=words):
        G.Gradebook(path)


def test_a_file_that_is_not_sqlite_is_refused(tmp_path):
    path = tmp_path / "gb.sqlite"
    path.write_text("student,points\n" * 200)
    with pytest.raises(UserError, match="not a d2l-grade gradebook SQLite can open"):
        G.Gradebook(path)


def test_recording_twice_replaces_a_submission_in_one_transaction(tmp_path):
    from d2lgrade.core.results import CheckResult, GradeReport
    report = GradeReport("7.3", "x.py", [CheckResult("7.3/1", "7.3/1", "t", 2, 2, "passed", "ok")])
    with G.Gradebook(tmp_path / "gb.sqlite") as book:
        book.record("ada", "7.3", G.GRADED, content_hash="h", grader_version="v", report=report)
        assert book.current_status("ada", "7.3", "h", "v") == G.GRADED
        assert book.current_status("ada", "7.3", "h", "other grader") is None
        with pytest.raises(sqlite3.IntegrityError):          # a bad row: the old one must survive
            book.record("ada", "7.3", G.GRADED, content_hash="h2", report=GradeReport("7.3", "x", report.checks * 2))
        assert [(r["check_id"], r["points"]) for r in book.results()] == [("7.3/1", 2)]
        assert book.submissions()[0].content_hash == "h"


def test_discover_finds_missing_ambiguous_and_unreadable_work(tmp_path):
    for name in ("ada/7.3.py", "ben/7.3.py", "ben/7.3.ipynb"):
        (tmp_path / name).parent.mkdir(exist_ok=True)
        (tmp_path / name).write_text("x = 1")
    (tmp_path / "cy").mkdir()
    (tmp_path / "cy" / "7.3.ipynb").mkdir()                  # a folder, not a file
    (tmp_path / "dee").mkdir()
    (tmp_path / "dee" / "7.3.py").symlink_to(tmp_path / "nowhere")
    (tmp_path / "eve").mkdir()
    for name in ("ben/7.3.py", "ben/7.3.ipynb"):           # handed in at the same moment: which one is meant?
        os.utime(tmp_path / name, (1_700_000_000, 1_700_000_000))
    work = {w.student: w for w in discover(tmp_path, [find_section("7.3")])}
    assert work["ada"].state == FOUND and len(work["ada"].content_hash) == 64
    assert work["ben"].state == INVALID and "same time; keep one of them" in work["ben"].reason
    assert work["cy"].state == INVALID and "not a regular file" in work["cy"].reason
    assert work["dee"].state == INVALID and work["eve"].state == MISSING
    with pytest.raises(UserError, match="no folder for student"):
        discover(tmp_path, [find_section("7.3")], students=["zed"])


def test_the_demo_class_has_right_wrong_missing_and_unreadable_work():
    sections = [find_section(s) for s in ("7.2", "7.3", "7.4")]
    work = {(w.student, w.section): w for w in discover(ROOT / "submissions", sections)}
    assert len({w.student for w in work.values()}) == 6      # fay handed in "Copy of 7.2.py"
    assert work["ben", "7.4"].state == MISSING
    for student, section in (("chen", "7.4"), ("eli", "7.3")):
        with pytest.raises(SubmissionError):
            load_submission(work[student, section].path)


def test_the_grader_version_covers_imported_graders_probes_and_references():
    files = {p.relative_to(ROOT).as_posix() for p in _module_closure("graders.section_8_4")}
    assert {"graders/section_8_4.py", "graders/architecture.py", "graders/probes/architecture.py",
            "graders/probes/section_7_6.py", "reference/section_8_4.py"} <= files
    assert "graders/probes/matrix_products.py" in {p.relative_to(ROOT).as_posix() for p in _module_closure("graders.section_7_2")}
    assert grader_version(find_section("7.2")) != grader_version(find_section("7.3"))


def test_cli_batch_json_on_a_class_with_nothing_to_run(tmp_path, capsys):
    (tmp_path / "subs" / "ada").mkdir(parents=True)
    (tmp_path / "subs" / "ada" / "7.3.ipynb").write_text("not json")
    (tmp_path / "subs" / "ben").mkdir()
    (tmp_path / "subs" / "ben" / "7.3.py").symlink_to(tmp_path / "gone")
    code = main(["--batch", str(tmp_path / "subs"), "--json", "--gradebook", str(tmp_path / "gb.sqlite"),
                 "--out", str(tmp_path / "out"), "--students", "ben"])
    doc = json.loads(capsys.readouterr().out)
    assert code == 0 and {"students", "submissions", "graded", "skipped", "missing", "invalid", "errors",
                          "gradebook", "reports"} <= set(doc)
    assert (doc["students"], doc["invalid"], doc["graded"]) == (1, 1, 0)
    assert (tmp_path / "out" / "class.html").exists()


def test_each_checks_time_is_kept_and_the_class_page_lists_the_slowest(tmp_path):
    from d2lgrade.batch import class_report
    from d2lgrade.core.results import CheckResult, GradeReport
    checks = lambda fast, slow: [CheckResult("7.3/1", "7.3/1", "t", 2, 2, "passed", "ok", seconds=fast),   # noqa: E731
                                 CheckResult("7.3/3", "7.3/3", "t", 2, 2, "failed", "no", seconds=slow)]
    with G.Gradebook(tmp_path / "gb.sqlite") as book:
        book.record("ada", "7.3", G.GRADED, content_hash="a", report=GradeReport("7.3", "a.py", checks(0.1, 4.0)))
        book.record("bo", "7.3", G.GRADED, content_hash="b", report=GradeReport("7.3", "b.py", checks(0.3, 2.0)))
        assert sorted((r["student"], r["check_id"], r["seconds"]) for r in book.results()) == \
            [("ada", "7.3/1", 0.1), ("ada", "7.3/3", 4.0), ("bo", "7.3/1", 0.3), ("bo", "7.3/3", 2.0)]
        slowest = class_report.context(book)["slowest"]
        assert [(r["check"], r["mean"], r["max"], r["count"]) for r in slowest] == \
            [("7.3/3", 3.0, 4.0, 2), ("7.3/1", 0.2, 0.3, 2)]
        page = class_report.write(book, tmp_path / "class").read_text()
        listed = page[page.index("<h2>Slowest checks</h2>"):]
        assert listed.index("<td>7.3/3</td>") < listed.index("<td>7.3/1</td>")
