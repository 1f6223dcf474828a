"""A term around the grades (issue 23), without grading anything: the roster, LMS file names and
Canvas's flat download, deadlines / late penalties / extensions, submission times, the similarity
report, the LMS exports and the review sheet's numbering. Each part both ways."""
import csv
import os
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from d2lgrade.core import results as R
from d2lgrade.batch import exports, late, lms, roster, similarity, term
from d2lgrade.batch.discover import FOUND, INVALID, MISSING, discover, handed_in_sections
from d2lgrade.batch.gradebook import GRADED, MISSING as MISSING_ROW, Gradebook
from d2lgrade.batch.run import BatchConfig, run_batch
from d2lgrade.core.errors import UserError
from d2lgrade.load import load_submission
from d2lgrade.core.sections import ROOT, find_section

UTC = timezone.utc
SECTIONS = {"7.2", "7.3", "7.4"}
COURSE = '''[deadlines]
"7.2" = 2026-12-01T23:59:00Z
[late]
per_day = 0.10
max_days = 5
grace_minutes = 15
[extensions]
ana = { "7.2" = 2026-12-04T23:59:00Z }
'''


def write(path: Path, text: str, mtime: float | None = None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    if mtime is not None:
        os.utime(path, (mtime, mtime))
    return path


# -- roster ------------------------------------------------------------------------------------
def test_roster_columns_are_found_by_header_extra_ones_kept_and_fewer_allowed(tmp_path):
    path = write(tmp_path / "roster.csv", "Email,ID,Name,username,SIS_ID\nana@x.edu,ana,Ana Lima,alima,S1\n"
                                          ",bo,,,\n\n")
    ana, bo = roster.read(path)
    assert (ana.id, ana.name, ana.email, ana.sis_id, ana.extra) == ("ana", "Ana Lima", "ana@x.edu", "S1", {"username": "alima"})
    assert (bo.id, bo.name, bo.email) == ("bo", "", "")
    assert [s.id for s in roster.read(write(tmp_path / "ids.csv", "id\ncy\n"))] == ["cy"]


@pytest.mark.parametrize("text, words", [
    ("name,email\nAna,ana@x.edu\n", "line 1 has no `id` column (its header is name, email)"),
    ("id,name\nana,Ana\nana,Ana again\n", "line 3 repeats the id 'ana' of line 2"),
    ("id,name\n,Nobody\n", "line 2 has no id"),
])
def test_a_bad_roster_is_refused_naming_file_and_line(tmp_path, text, words):
    with pytest.raises(UserError) as caught:
        roster.read(write(tmp_path / "roster.csv", text))
    assert str(tmp_path / "roster.csv") in str(caught.value) and words in str(caught.value)


# -- LMS file names ----------------------------------------------------------------------------
@pytest.mark.parametrize("name, section, copy", [
    ("7.2.ipynb", "7.2", 0), ("7.2 (1).ipynb", "7.2", 1), ("7.2-2.ipynb", "7.2", 2), ("Copy of 7.2.ipynb", "7.2", 0),
    ("copy of 8.6 (3).py", "8.6", 3), ("7.2.txt", None, 0), ("notes.ipynb", None, 0), ("17.2x.py", None, 0),
])
def test_lms_download_names_are_read_as_their_section(name, section, copy):
    assert lms.section_of(name) == section and lms.copy_number(name) == copy


def test_of_several_files_for_a_section_the_newest_is_graded_and_the_row_says_which(tmp_path):
    write(tmp_path / "ana" / "7.2.ipynb", "{}", mtime=1_000)
    write(tmp_path / "ana" / "7.2 (1).ipynb", "{}", mtime=3_000)
    write(tmp_path / "ana" / "Copy of 7.2.ipynb", "{}", mtime=2_000)
    write(tmp_path / "bo" / "7.2.py", "x = 1", mtime=1_000)
    write(tmp_path / "bo" / "7.2-1.py", "x = 2", mtime=1_000)      # Canvas's resubmission, same clock
    write(tmp_path / "cy" / "7.2.py", "x = 1", mtime=1_000)
    write(tmp_path / "cy" / "7.2.ipynb", "{}", mtime=1_000)
    work = {w.student: w for w in discover(tmp_path, [find_section("7.2")])}
    assert work["ana"].state == FOUND and work["ana"].path.name == "7.2 (1).ipynb" and work["ana"].mtime == 3_000
    assert work["ana"].file_note == ("graded 7.2 (1).ipynb, the newest of 3 files handed in for 7.2 (by modification "
                                     "time); not graded: Copy of 7.2.ipynb, 7.2.ipynb")
    assert work["bo"].path.name == "7.2-1.py"
    assert work["cy"].state == INVALID and "same time; keep one of them" in work["cy"].reason
    assert handed_in_sections(tmp_path) == {"7.2"}


def test_canvas_bulk_download_is_mapped_to_students_through_the_roster(tmp_path):
    people = [roster.Student("ana", "Ana Lima"), roster.Student("bo", "Lovelace, Bo", extra={"canvas_id": "777"}),
              roster.Student("cy", "Cy Young")]
    write(tmp_path / "limaana_12345_901_7.2.ipynb", "{}")
    write(tmp_path / "whoever_LATE_777_902_7.2-1.py", "x = 1")
    write(tmp_path / "strangerdan_555_903_7.3.py", "x = 1")
    write(tmp_path / "limaana_12345_904_notes.txt", "not work")
    work = {(w.student, w.section): w for w in discover(tmp_path, [find_section("7.2"), find_section("7.3")], roster=people)}
    assert work["ana", "7.2"].state == FOUND and work["ana", "7.2"].path.name == "limaana_12345_901_7.2.ipynb"
    assert work["bo", "7.2"].state == FOUND                                  # by Canvas user id, whatever the name
    assert work["cy", "7.2"].state == MISSING and work["cy", "7.3"].state == MISSING
    assert work["strangerdan", "7.3"].state == FOUND                         # graded, not on the roster
    assert handed_in_sections(tmp_path) == {"7.2", "7.3"}
    assert lms.canvas_file("7.2.ipynb") is None and lms.canvas_file("ana_1_2_report.pdf") is None


# -- deadlines, late penalties, extensions -----------------------------------------------------
def policy(tmp_path, text=COURSE, students=None) -> late.Policy:
    return late.read(write(tmp_path / "course.toml", text), SECTIONS, students)


@pytest.mark.parametrize("handed_in, days, final", [
    ("2026-12-01T23:00:00Z", 0, 9),            # on time
    ("2026-12-02T00:14:00Z", 0, 9),            # within the 15 minutes' grace
    ("2026-12-02T00:15:01Z", 1, 7.7),          # past it: one started day, 10% of 13 off
    ("2026-12-03T23:59:00Z", 2, 6.4),          # two full days
    ("2026-12-06T23:59:01Z", 6, 0),            # beyond max_days: nothing
    ("2026-12-03T23:59:00+01:00", 2, 6.4),     # any time zone
])
def test_late_days_and_penalties_follow_the_policy(tmp_path, handed_in, days, final):
    result = late.assess(policy(tmp_path), "bo", "7.2", datetime.fromisoformat(handed_in), 9, 13)
    assert (result.late_days, result.final_score) == (days, final)
    assert result.penalty == round(9 - final, 4)


def test_an_extension_moves_the_deadline_for_that_student_and_section_only(tmp_path):
    p = policy(tmp_path)
    when = datetime(2026, 12, 3, 12, tzinfo=UTC)
    assert late.assess(p, "ana", "7.2", when, 9, 13).late_days == 0
    assert late.assess(p, "bo", "7.2", when, 9, 13).late_days == 2
    assert late.assess(p, "ana", "7.3", when, 9, 13).late_days is None        # 7.3 has no deadline
    text = late.describe(p, late.assess(p, "ana", "7.2", when + timedelta(days=2), 9, 13), 9, 13)
    assert text.startswith("1 day late for the extended deadline 2026-12-04 23:59 UTC: −1.3 points (10% of 13 per started day)")
    floor = late.describe(p, late.assess(p, "ana", "7.2", when + timedelta(days=4), 1, 13), 1, 13)
    assert "−1 points (10% of 13 per started day; a score does not go below 0); final score 0 of 13" in floor


@pytest.mark.parametrize("text, words", [
    ('[deadlines]\n"7.2" = 2026-12-01T23:59:00Z\n"7.2" = 2026-12-02T23:59:00Z\n', "does not parse as TOML (Cannot overwrite a value (at line 3"),
    ('[deadlines]\n"7.2" = 2026-12-01T23:59:00Z\n"7.9" = 2026-12-01T23:59:00Z\n', "line 3: '7.9' is not a section"),
    ('[late]\nper_day = 0.1\n[deadlines]\n"7.2" = 2026-12-01T23:59:00\n', "line 4: 2026-12-01T23:59:00 has no time zone"),
    ('[deadlines]\n"7.3" = 2026-12-01\n', "line 2: 2026-12-01 has no time zone"),
    ('[deadlines]\n"7.3" = "tomorrow"\n', "line 2: 'tomorrow' is not a date and time"),
    ('[late]\nper_day = 10\n', "line 2: per_day = 10 must be a fraction from 0 to 1"),
    ('[late]\nper_week = 0.1\n', "line 2: unknown key per_week"),
    ('[deadline]\n"7.2" = 2026-12-01T23:59:00Z\n', "line 1: unknown table [deadline]"),
    ('[extensions]\nana = { "7.2" = 2026-12-04T23:59:00Z }\nzed = { "7.2" = 2026-12-04T23:59:00Z }\n',
     "line 3: extension for zed, who is not on the roster nor a folder"),
    ('[extensions]\nana = { "8.9" = 2026-12-04T23:59:00Z }\n', "line 2: '8.9' is not a section"),
])
def test_a_bad_course_file_is_refused_naming_file_and_line(tmp_path, text, words):
    with pytest.raises(UserError) as caught:
        policy(tmp_path, text, students={"ana", "bo"})
    assert str(tmp_path / "course.toml") in str(caught.value) and words in str(caught.value)


def test_a_policy_survives_the_gradebook(tmp_path):
    p = policy(tmp_path)
    assert late.Policy.from_dict(p.to_dict()) == p and late.Policy.from_dict(None) == late.Policy()


# -- submission times --------------------------------------------------------------------------
def test_submitted_csv_gives_times_in_utc(tmp_path):
    path = write(tmp_path / "submitted.csv", "section,student,submitted_at,grader\n7.2,ana,2026-12-02T01:00:00+01:00,x\n"
                                               "7.3,bo,2026-12-02 10:00:00Z,\n")
    times = term.read_submitted(path, {"ana", "bo"}, SECTIONS)
    assert times == {("ana", "7.2"): datetime(2026, 12, 2, 0, 0, tzinfo=UTC), ("bo", "7.3"): datetime(2026, 12, 2, 10, tzinfo=UTC)}


@pytest.mark.parametrize("text, words", [
    ("student,section,submitted_at\nana,7.2,2026-12-02T01:00:00Z\nzed,7.2,2026-12-02T01:00:00Z\n",
     "line 3: 'zed' is neither on the roster nor a folder"),
    ("student,section,submitted_at\nana,7.2,2026-12-02T01:00:00\n", "line 2: 2026-12-02T01:00:00 has no time zone"),
    ("student,section,submitted_at\nana,9.9,2026-12-02T01:00:00Z\n", "line 2: '9.9' is not a section"),
    ("student,when\nana,2026-12-02T01:00:00Z\n", "line 1 has no column section, submitted_at"),
])
def test_a_bad_submitted_csv_is_refused_naming_file_and_line(tmp_path, text, words):
    with pytest.raises(UserError) as caught:
        term.read_submitted(write(tmp_path / "submitted.csv", text), {"ana", "bo"}, SECTIONS)
    assert str(tmp_path / "submitted.csv") in str(caught.value) and words in str(caught.value)


@pytest.mark.parametrize("name, text", [
    ("roster.csv", "name\nAna\n"),
    ("course.toml", '[deadlines]\n"7.3" = 2026-12-01T23:59:00\n'),
    ("submitted.csv", "student,section,submitted_at\nzed,7.3,2026-12-02T01:00:00Z\n"),
])
def test_bad_term_files_stop_the_batch_before_anything_is_graded_or_written(tmp_path, name, text):
    write(tmp_path / "class" / "ana" / "7.3.py", "x = 1")
    write(tmp_path / "class" / name, text)
    with pytest.raises(UserError, match=name):
        run_batch(BatchConfig(root=tmp_path / "class", workers=1, out=tmp_path / "out", quiet=True))
    assert not (tmp_path / "out").exists()


# -- the gradebook's side: times, penalties recomputed, exports -------------------------------
def report(points: float, section: str = "7.3") -> R.GradeReport:
    return R.GradeReport(section, "x.py", [R.CheckResult(f"{section}/1", f"{section}/1", "t", points, 13, R.PASSED, "ok")])


def class_book(tmp_path: Path, course: str = COURSE) -> Gradebook:
    """A gradebook as a batch leaves it: ana and bo graded (9 of 13), cy missing, zed not on the roster."""
    root = tmp_path / "class"
    write(root / "roster.csv", "id,name,email,sis_id,username,section\nana,Ana Lima,ana@x.edu,S1,alima,A\n"
                               "bo,\"Lovelace, Bo\",,S2,,A\ncy,Cy Young,cy@x.edu,S3,cyoung,B\n")
    write(root / "course.toml", course)
    write(root / "submitted.csv", "student,section,submitted_at\nana,7.2,2026-12-03T10:00:00Z\nbo,7.2,2026-12-03T10:00:00Z\n")
    for student in ("ana", "bo", "zed"):
        write(root / student / "7.2.py", "x = 1", mtime=datetime(2026, 12, 1, tzinfo=UTC).timestamp())
    the_term = term.load(root, [find_section("7.2")])
    book = Gradebook(tmp_path / "gradebook.sqlite")
    for w in the_term.work:
        if w.state == FOUND:
            book.record(w.student, "7.2", GRADED, path=str(w.path), content_hash=w.content_hash, report=report(9, "7.2"))
        else:
            book.record(w.student, "7.2", MISSING_ROW, message="no file handed in")
    term.record(book, the_term)
    term.apply_penalties(book)
    return book


def test_times_penalties_and_a_changed_policy_recompute_from_the_gradebook(tmp_path):
    with class_book(tmp_path) as book:
        rows = {r.student: r for r in book.submissions()}
        assert (rows["ana"].late_days, rows["ana"].final_score) == (0, 9)                 # extension
        assert (rows["bo"].late_days, rows["bo"].penalty, rows["bo"].final_score) == (2, 2.6, 6.4)
        assert (rows["bo"].time_source, rows["zed"].time_source) == (term.FROM_CSV, term.FROM_FILE)
        assert rows["zed"].late_days == 0 and rows["cy"].final_score is None and rows["cy"].score is None
        shown, notes = term.page(book, rows["bo"])
        assert shown["who"] == "Lovelace, Bo (bo)" and shown["final"] == 6.4 and "2 days late" in shown["penalty"]
        assert notes == ["Handed in 2026-12-03 10:00 UTC (from submitted.csv)."]
        assert term.page(book, rows["zed"])[0]["who"] == "zed (not on the roster)"
        assert "modification time" in term.page(book, rows["zed"])[1][0]
        book.set_info("course", late.Policy(deadlines={"7.2": datetime(2026, 12, 4, tzinfo=UTC)}).to_dict())
        term.apply_penalties(book)                                                       # no grading
        assert {r.student: r.final_score for r in book.submissions() if r.score} == {"ana": 9, "bo": 9, "zed": 9}
        assert book.submissions()[0].score == 9                                          # the raw score is kept


def test_a_page_gets_the_courses_feedback_level_and_after_deadline_once_the_deadline_has_passed(tmp_path):
    with class_book(tmp_path) as book:
        bo = {r.student: r for r in book.submissions()}["bo"]
        table = {"level": "hints", "after_deadline": "full", "checks": {"7.2/1": "verdict"}}
        now = datetime.now(UTC)
        for deadline, level in ((now - timedelta(days=1), "full"), (now + timedelta(days=30), "hints")):
            book.set_info("course", late.Policy(deadlines={"7.2": deadline}, feedback=table).to_dict())
            shown, _ = term.page(book, bo)
            assert shown["feedback"] == {"level": level, "checks": {"7.2/1": "verdict"}}
        book.set_info("course", late.Policy(deadlines={"7.2": now - timedelta(days=1)}).to_dict())
        assert term.page(book, bo)[0]["feedback"]["level"] == "hints"       # no [feedback]: the default


def read_csv(path: Path, delimiter: str = ",") -> list[list[str]]:
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.reader(f, delimiter=delimiter))


def test_canvas_csv_follows_canvas_documented_import_columns(tmp_path):
    """Canvas's gradebook import (Canvas Instructor Guide, "How do I import grades in the Gradebook?";
    https://teaching.resources.osu.edu/toolsets/carmencanvas/guides/calculating-final-grades/import-csv-file-carmen-grades):
    the columns Student, ID, SIS User ID, SIS Login ID, Section, then one column per assignment; a
    "Points Possible" row; every student identified by ID, SIS User ID or SIS Login ID."""
    with class_book(tmp_path) as book:
        rows = read_csv(exports.write_canvas_csv(book, tmp_path / "canvas.csv"))
    assert rows[0] == ["Student", "ID", "SIS User ID", "SIS Login ID", "Section", "d2l 7.2"]
    assert rows[1] == ["Points Possible", "", "", "", "", "13"]
    assert rows[2:] == [["Ana Lima", "", "S1", "alima", "A", "9"], ["Lovelace, Bo", "", "S2", "", "A", "6.4"],
                        ["Cy Young", "", "S3", "cyoung", "B", "0"]]          # zed, not on the roster, left out
    assert all(any(r[1:4]) for r in rows[2:])


def test_moodle_and_blackboard_files_are_keyed_by_email_and_username(tmp_path):
    with class_book(tmp_path) as book:
        moodle = read_csv(exports.write_moodle_csv(book, tmp_path / "moodle.csv"))
        board = read_csv(exports.write_blackboard(book, tmp_path / "blackboard.txt"), delimiter="\t")
    assert moodle == [["Email address", "ID number", "Full name", "d2l 7.2"], ["ana@x.edu", "S1", "Ana Lima", "9"],
                      ["cy@x.edu", "S3", "Cy Young", "0"]]                    # bo has no email: Moodle cannot match
    assert board == [["Last Name", "First Name", "Username", "Student ID", "d2l 7.2"], ["Lima", "Ana", "alima", "S1", "9"],
                     ["Lovelace", "Bo", "bo", "S2", "6.4"], ["Young", "Cy", "cyoung", "S3", "0"]]


def test_gradebook_csv_has_a_max_points_row_and_tells_missing_from_zero(tmp_path):
    with class_book(tmp_path) as book:
        book.record("ana", "7.2", GRADED, path="x", content_hash="h", report=report(0, "7.2"))
        term.apply_penalties(book)
        rows = read_csv(exports.write_class_csv(book, tmp_path / "gradebook.csv"))
    header = rows[0]
    table = {r[0]: dict(zip(header, r)) for r in rows[1:]}
    assert header[:3] == ["student", "name", "sis_id"] and table["max points"]["7.2 total"] == "13"
    assert table["max points"]["7.2/1"] == "13"     # the exercise's points, as its checks give them
    assert (table["ana"]["7.2 total"], table["ana"]["7.2 status"]) == ("0", "graded")
    assert (table["cy"]["7.2 total"], table["cy"]["7.2 status"], table["cy"]["7.2/1"]) == ("0", "missing", "")
    assert (table["bo"]["7.2 total"], table["bo"]["7.2 penalty"], table["bo"]["name"]) == ("6.4", "2.6", "Lovelace, Bo")


def test_a_student_text_that_looks_like_a_formula_stays_text_in_every_export(tmp_path):
    with class_book(tmp_path) as book:
        book.save_roster([{"id": "ana", "name": "=HYPERLINK(\"x\")", "email": "+a@x.edu", "sis_id": "S1", "extra": {}}])
        for path in (exports.write_canvas_csv(book, tmp_path / "c.csv"), exports.write_moodle_csv(book, tmp_path / "m.csv"),
                     exports.write_class_csv(book, tmp_path / "g.csv")):
            assert "=HYPERLINK" not in path.read_text().replace("'=HYPERLINK", ""), path.name


# -- similarity --------------------------------------------------------------------------------
COPY = (ROOT / "submissions" / "ada" / "7.2.py").read_text()
RENAMED = (ROOT / "submissions" / "fay" / "Copy of 7.2.py").read_text()


def cells(text: str) -> list[str]:
    """The code cells of a .py submission, as a batch reads them."""
    import tempfile
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "7.2.py"
        path.write_text(text)
        return [c.source for c in load_submission(path).code_cells]


def test_copies_renamed_or_recommented_are_flagged_with_their_shared_fragments():
    pairs = similarity.find_pairs({"7.2": {"ada": cells(COPY), "fay": cells(RENAMED), "bo": cells(COPY),
                                           "ben": cells((ROOT / "submissions" / "ben" / "7.2.py").read_text())}})
    assert [p["students"] for p in pairs] == [["ada", "bo"], ["ada", "fay"], ["bo", "fay"]]      # not ben
    assert pairs[0]["similarity"] == 1.0 and min(p["similarity"] for p in pairs) > 0.9
    fragment = pairs[1]["fragments"][0]
    assert "out[r, c] = torch.sum" in fragment["a"]["code"] and "Y[i, j] = torch.sum" in fragment["b"]["code"]


def test_independent_right_answers_and_untouched_starters_are_not_flagged():
    answers = {path.stem: cells(path.read_text()) for path in (ROOT / "tests" / "kit_answers" / "7.2").glob("*.py")}
    answers |= {p.parent.name: cells(p.read_text()) for p in (ROOT / "submissions").glob("*/7.2.py")}
    answers["starter1"] = answers["starter2"] = [c.source for c in load_submission(find_section("7.2").starter_path).code_cells]
    assert similarity.find_pairs({"7.2": answers}) == []
    short = 'def corr2d(X, K):\n    h, w = K.shape\n    return (X.unfold(0, h, 1).unfold(1, w, 1) * K).sum((-2, -1))\n'
    same_idea = 'def corr2d(img, ker):\n    a, b = ker.shape\n    return (img.unfold(0, a, 1).unfold(1, b, 1) * ker).sum((-2, -1))\n'
    assert similarity.find_pairs({"7.2": {"x": [short], "y": [same_idea]}}) == []    # a short exercise, same answer


def test_identical_copies_of_the_reference_answers_are_flagged_but_a_shared_answer_is_not():
    reference = (ROOT / "reference" / "section_7_3.py").read_text()
    pairs = similarity.find_pairs({"7.3": {"a": cells(reference), "b": cells(reference), "c": cells(reference[:2000])}})
    assert [p["students"] for p in pairs] == [["a", "b"]]


# -- the review sheet ------------------------------------------------------------------------
UNVERIFIED = '''# %% 7.2/1
def corr2d(X, K):
    return my_own_loop(X, K)      # the grader could not tell how
# %% [markdown] 7.2/1
My kernel finds horizontal edges.
'''


def test_unverified_code_goes_to_the_sheet_with_the_code_and_a_refused_sheet_counts_rows_like_a_spreadsheet(tmp_path):
    from d2lgrade.batch import review
    path = write(tmp_path / "ana" / "7.2.py", UNVERIFIED)
    checks = [R.CheckResult("7.2/1", "7.2/1", "corr2d", 0, 3, R.MANUAL, "could not verify", answer=""),
              R.CheckResult("7.2/1:written", "7.2/1", "edges", 0, 1, R.MANUAL, "waiting", answer="My kernel finds\nhorizontal edges.")]
    with Gradebook(tmp_path / "gb.sqlite") as book:
        book.record("ana", "7.2", GRADED, path=str(path), content_hash="h", report=R.GradeReport("7.2", str(path), checks))
        sheet_path, count = review.write_sheet(book, tmp_path / "review.csv")
        with open(sheet_path, newline="") as f:
            sheet = {r["exercise"]: r for r in csv.DictReader(f)}
        assert count == 2 and "return my_own_loop(X, K)" in sheet["7.2/1"]["answer"]
        assert sheet["7.2/1:written"]["answer"] == "My kernel finds\nhorizontal edges."      # text, not code
        sheet["7.2/1:written"]["points"], sheet["7.2/1"]["points"] = "1", "4"              # 4 > 3: refused
        with open(sheet_path, "w", newline="") as f:
            out = csv.DictWriter(f, fieldnames=review.COLUMNS)
            out.writeheader()
            out.writerows([sheet["7.2/1:written"], sheet["7.2/1"]])                        # rows 2 and 3
        with pytest.raises(UserError, match=r"row 3 \(ana, 7.2/1\): points 4 is outside 0..3"):
            review.import_sheet(book, sheet_path)                   # the file's line 4: row 2 spans two


def test_a_batch_of_some_sections_keeps_the_similar_pairs_of_the_others(tmp_path):
    pair = {"section": "7.2", "students": ["ada", "fay"], "similarity": 1.0, "fragments": []}
    with Gradebook(tmp_path / "gb.sqlite") as book:
        book.save_similar([pair], ["7.2"])
        book.save_similar([], ["7.3"])
        assert [p["students"] for p in book.similar()] == [["ada", "fay"]]
        book.save_similar([], ["7.2"])
        assert book.similar() == []


def test_the_similarity_report_is_computed_again_only_when_a_submission_changed(tmp_path, monkeypatch):
    from d2lgrade.batch import run
    calls = []
    monkeypatch.setattr(similarity, "find_pairs", lambda sources: calls.append(sorted(sources)) or [])
    for student in ("ada", "bo"):
        write(tmp_path / "class" / student / "7.2.py", f"x = '{student}'")
    with Gradebook(tmp_path / "gb.sqlite") as book:
        for _ in range(2):
            run.compare_class(book, discover(tmp_path / "class", [find_section("7.2")]))
        assert len(calls) == 1
        write(tmp_path / "class" / "bo" / "7.2.py", "x = 'changed'")
        run.compare_class(book, discover(tmp_path / "class", [find_section("7.2")]))
        assert len(calls) == 2


def test_the_command_says_what_is_wrong_in_one_line_without_a_traceback(tmp_path, capsys):
    from d2lgrade.cli import main
    write(tmp_path / "class" / "ana" / "7.3.py", "x = 1")
    write(tmp_path / "class" / "course.toml", '[deadlines]\n"7.3" = 2026-12-01T23:59:00\n')
    assert main(["--batch", str(tmp_path / "class"), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "course.toml line 2: 2026-12-01T23:59:00 has no time zone" in err
    assert "Traceback" not in err and not (tmp_path / "out").exists()


def test_roster_and_course_may_come_from_elsewhere_and_must_exist(tmp_path):
    write(tmp_path / "class" / "ana" / "7.3.py", "x = 1")
    write(tmp_path / "class" / "roster.csv", "id\nnot-used\n")
    other = write(tmp_path / "term" / "people.csv", "id,name\nana,Ana Lima\nbo,Bo Chen\n")
    course = write(tmp_path / "term" / "policy.toml", '[deadlines]\n"7.3" = 2026-12-01T23:59:00Z\n')
    loaded = term.load(tmp_path / "class", [find_section("7.3")], roster_path=other, course_path=course)
    assert [s.id for s in loaded.roster] == ["ana", "bo"] and "7.3" in loaded.policy.deadlines
    assert {(w.student, w.state) for w in loaded.work} == {("ana", FOUND), ("bo", MISSING)}
    with pytest.raises(UserError, match="--course .*nowhere.toml is not a file"):
        term.load(tmp_path / "class", [find_section("7.3")], course_path=tmp_path / "nowhere.toml")
    with pytest.raises(UserError, match="--roster .*nowhere.csv is not a file"):
        term.load(tmp_path / "class", [find_section("7.3")], roster_path=tmp_path / "nowhere.csv")
