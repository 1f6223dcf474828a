"""A gradebook belongs to its class (issue 23): it lives in the output folder by default, records the
class folder it grades, refuses another one before writing anything, and older gradebooks learn their
class from the paths they hold. No notebook is graded here (unreadable and missing work only)."""
import csv
import os
import sqlite3
from datetime import datetime, timezone

import pytest

from d2lgrade.batch import gradebook as G
from d2lgrade.batch.run import BatchConfig, run_batch
from d2lgrade.core.errors import UserError
from d2lgrade.run.executor import RuntimeOptions
from d2lgrade.run.limits import Limits
from d2lgrade.core.sections import ROOT

OPTIONS = RuntimeOptions(limits=Limits(total_seconds=300))


def unreadable_class(root, students=("ada", "ben")):
    for student in students:
        (root / student).mkdir(parents=True)
        (root / student / "7.3.ipynb").write_text("not json")
    return root


def config(root, out, **kw):
    return BatchConfig(root=root, sections=["7.3"], workers=1, out=out, quiet=True, **kw)


def test_the_gradebook_lives_in_the_output_folder_and_records_its_class(tmp_path):
    root = unreadable_class(tmp_path / "hw3")
    summary = run_batch(config(root, tmp_path / "hw3-reports"))
    assert summary["gradebook"] == str(tmp_path / "hw3-reports" / "gradebook.sqlite")
    with G.Gradebook(tmp_path / "hw3-reports" / "gradebook.sqlite") as book:
        assert book.class_folder() == str(root.resolve())
        assert {r.student for r in book.submissions()} == {"ada", "ben"}
    again = run_batch(config(root, tmp_path / "hw3-reports"))          # the same class: welcome
    assert again["invalid"] == 2


def test_grading_another_class_into_a_gradebook_is_refused_before_anything_is_written(tmp_path):
    first, second = unreadable_class(tmp_path / "demo"), unreadable_class(tmp_path / "fall", ("cy",))
    out = tmp_path / "reports"
    run_batch(config(first, out))
    before = (out / "gradebook.sqlite").read_bytes(), (out / "gradebook.csv").read_bytes()
    with pytest.raises(UserError) as caught:
        run_batch(config(second, out))
    message = str(caught.value)
    assert str(first.resolve()) in message and str(second.resolve()) in message and "--out" in message
    assert message.count(". ") == 0                                       # one sentence
    assert ((out / "gradebook.sqlite").read_bytes(), (out / "gradebook.csv").read_bytes()) == before
    assert not (out / "cy").exists()


def test_an_older_gradebook_is_upgraded_and_learns_its_class_from_its_rows(tmp_path):
    demo, fall = unreadable_class(tmp_path / "demo"), unreadable_class(tmp_path / "fall", ("cy",))
    path = tmp_path / "reports" / "gradebook.sqlite"
    path.parent.mkdir()
    with sqlite3.connect(path) as db:                                    # what version 2 wrote
        db.executescript(G.MIGRATIONS[0] + ";" + G.MIGRATIONS[1] + "; PRAGMA user_version = 2;")
        db.execute("INSERT INTO submissions (student, section, status, path, score) "
                   "VALUES ('ada', '7.3', 'graded', ?, 5)", (str(demo / "ada" / "7.3.ipynb"),))
    with pytest.raises(UserError, match="is the gradebook of the class in .*demo, not of .*fall"):
        run_batch(config(fall, tmp_path / "reports"))
    with G.Gradebook(path) as book:
        assert book.db.execute("PRAGMA user_version").fetchone()[0] == G.SCHEMA_VERSION
        assert [(r.student, r.score) for r in book.submissions()] == [("ada", 5)]   # the old row survived
        assert book.info("folder") is None
    run_batch(config(demo, tmp_path / "reports"))
    with G.Gradebook(path) as book:
        assert book.info("folder") == str(demo.resolve())


def test_an_explicit_gradebook_is_bound_the_same_way(tmp_path):
    shared = tmp_path / "one.sqlite"
    run_batch(config(unreadable_class(tmp_path / "a"), tmp_path / "out-a", gradebook=shared))
    with pytest.raises(UserError, match="not of"):
        run_batch(config(unreadable_class(tmp_path / "b"), tmp_path / "out-b", gradebook=shared))


# -- a term, end to end (the one batch of this file that grades: four small 7.3 submissions) ------------
COPIED = (ROOT / "tests" / "kit_answers" / "7.3" / "wrong_everything.py").read_text()
SMALL = '# %% 7.3/4\nstride_speedup = "s_w * s_h"\n'
TERM = '''[deadlines]
"7.3" = 2026-12-01T23:59:00Z
[late]
per_day = 0.10
max_days = 5
grace_minutes = 15
[extensions]
bo = { "7.3" = 2026-12-04T23:59:00Z }
'''


def test_a_class_with_roster_deadlines_and_copies_end_to_end(tmp_path):
    root = tmp_path / "class"
    files = {"ana/7.3.py": COPIED, "bo/7.3 (1).py": COPIED, "cy/7.3.py": SMALL, "zed/7.3.py": SMALL,
             "roster.csv": "id,name,email,sis_id\nana,Ana Lima,ana@x.edu,S1\nbo,Bo Chen,bo@x.edu,S2\n"
                           "cy,Cy Young,cy@x.edu,S3\ndee,Dee Ray,dee@x.edu,S4\n",
             "course.toml": TERM,
             "submitted.csv": "student,section,submitted_at\nana,7.3,2026-12-02T10:00:00Z\nbo,7.3,2026-12-03T10:00:00Z\n"}
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    before_deadline = datetime(2026, 12, 1, tzinfo=timezone.utc).timestamp()
    os.utime(root / "cy" / "7.3.py", (before_deadline, before_deadline))
    out = tmp_path / "reports"
    first = run_batch(BatchConfig(root=root, workers=2, out=out, quiet=True, lms_csv=True,
                                  options_factory=lambda: OPTIONS))
    rows = {r["student"]: r for r in first["rows"]}
    assert set(rows) == {"ana", "bo", "cy", "dee", "zed"} and first["graded"] == 4
    assert {k: rows["dee"][k] for k in ("name", "status", "score", "final_score")} == \
        {"name": "Dee Ray", "status": "missing", "score": None, "final_score": None}
    ana = rows["ana"]
    assert (ana["late_days"], ana["time_source"], ana["file"]) == (1, "submitted.csv", "7.3.py")
    assert ana["penalty"] == min(ana["score"], 1.3) and ana["final_score"] == round(ana["score"] - ana["penalty"], 4)
    assert (rows["bo"]["late_days"], rows["bo"]["final_score"], rows["bo"]["file"]) == (0, rows["bo"]["score"], "7.3 (1).py")
    assert (rows["cy"]["late_days"], rows["cy"]["time_source"]) == (0, "file modified")
    assert first["similar"] == [{"section": "7.3", "students": ["ana", "bo"], "similarity": 1.0}]
    assert first["not_on_roster"] == ["zed"]
    page = (out / "class.html").read_text()
    assert "Late work" in page and "ana and bo" in page and "Ana Lima" in page and "Not on the roster" in page
    assert "1 day late for the deadline 2026-12-01 23:59 UTC" in (out / "ana" / "7.3.html").read_text()
    with open(out / "canvas.csv") as f:
        canvas = list(csv.reader(f))
    assert [r[:3] for r in canvas[2:]] == [["Ana Lima", "", "S1"], ["Bo Chen", "", "S2"], ["Cy Young", "", "S3"], ["Dee Ray", "", "S4"]]
    assert canvas[2][5] == f"{ana['final_score']:g}"

    # An extension granted afterwards: penalties recomputed, nothing graded again, the page rewritten.
    (root / "course.toml").write_text(TERM + 'ana = { "7.3" = 2026-12-03T23:59:00Z }\n')
    second = run_batch(BatchConfig(root=root, workers=2, out=out, quiet=True, options_factory=lambda: OPTIONS))
    assert (second["graded"], second["skipped"]) == (0, 4)
    ana = next(r for r in second["rows"] if r["student"] == "ana")
    assert (ana["late_days"], ana["penalty"], ana["final_score"]) == (0, 0, ana["score"])
    assert "On time for the extended deadline" in (out / "ana" / "7.3.html").read_text()
