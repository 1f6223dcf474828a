"""A gradebook belongs to its class (issue 23): it lives in the output folder by default, records the
class folder it grades, refuses another one before writing anything, and older gradebooks learn their
class from the paths they hold. No notebook is graded here (unreadable and missing work only)."""
import sqlite3

import pytest

from d2lgrade.batch import gradebook as G
from d2lgrade.batch.run import BatchConfig, run_batch
from d2lgrade.errors import UserError


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
