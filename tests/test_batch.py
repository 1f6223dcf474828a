"""Batch grading: one small class graded once (module fixture), then exports, reports, reviews and
the faults of issue 10 (a worker killed, Ctrl-C and resume, two batches at once, runaway submissions)."""
import csv
import json
import os
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from d2lgrade.core import results as R
from d2lgrade.batch.gradebook import ERROR, GRADED, INVALID, MISSING, Gradebook
from d2lgrade.batch.run import BatchConfig, run_batch
from d2lgrade.core.errors import UserError
from d2lgrade.run.executor import RuntimeOptions
from d2lgrade.run.engines import default_executor
from d2lgrade.run.limits import Limits
from d2lgrade.core.sections import ROOT

HOSTILE = ROOT / "tests" / "hostile"
# A call limit of 5 s of CPU: the hanging student spins through all of it (the default 20 s was a quarter of this
# module's CPU). Limits are CPU time, not wall time, so a loaded machine does not bring a right answer's calls
# (milliseconds each, the first traced one included) nearer to it.
LIMITS = Limits(call_seconds=5, total_seconds=300, max_processes=48, file_bytes=8 * 2**20)
OPTIONS = RuntimeOptions(limits=LIMITS)

WRONG = '''# %% 7.3/1
output_shape = "(n_h + p_h - k_h)/s_h + 1"
example_shape = (2, 3)
# %% 7.3/4
stride_speedup = "s_h + s_w"
'''
HANGS = '''# %% 7.3/4
stride_speedup = "s_h*s_w"
# %% 7.3/6
def upsample_stride_half(X, K):
    while True:
        pass
'''
RIGHT_SMALL = '''# %% 7.3/4
stride_speedup = "s_w * s_h"
'''


def make_class(root: Path) -> Path:
    """Students of section 7.3: right, wrong, hanging, memory and processes, 100 MB of output,
    one who handed in nothing, one whose file is not a notebook."""
    files = {"right/7.3.py": (ROOT / "reference" / "section_7_3.py").read_text(), "wrong/7.3.py": WRONG,
             "hangs/7.3.py": HANGS, "hog/7.3.py": (HOSTILE / "resources.py").read_text(),
             "loud/7.3.py": (HOSTILE / "output.py").read_text(), "garbled/7.3.ipynb": "{ not json"}
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    (root / "absent").mkdir()
    return root


def config(tmp: Path, root: Path | None, **kw) -> BatchConfig:
    return BatchConfig(root=root, sections=["7.3"], workers=2, gradebook=tmp / "reports" / "gradebook.sqlite",
                       out=tmp / "reports", options_factory=lambda: OPTIONS, quiet=True, **kw)


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("batch")
    root = make_class(tmp / "submissions")
    summary = run_batch(config(tmp, root, lms_csv=True, review=tmp / "review.csv"))
    with Gradebook(tmp / "reports" / "gradebook.sqlite") as book:
        rows = {r.student: r for r in book.submissions()}
        results = {(r["student"], r["check_id"]): r for r in book.results()}
    return {"tmp": tmp, "root": root, "summary": summary, "rows": rows, "results": results}


def copy_of(graded, tmp_path) -> Path:
    """The graded class's reports folder, to change without touching the shared one."""
    shutil.copytree(graded["tmp"] / "reports", tmp_path / "reports")
    return tmp_path


# -- the class as graded ---------------------------------------------------------------------
def test_every_submission_has_a_row_with_its_status(graded):
    rows, s = graded["rows"], graded["summary"]
    assert {k: v.status for k, v in rows.items()} == {
        "right": GRADED, "wrong": GRADED, "hangs": GRADED, "hog": GRADED, "loud": GRADED,
        "garbled": INVALID, "absent": MISSING}
    assert (s["students"], s["submissions"], s["graded"], s["missing"], s["invalid"], s["errors"]) == (7, 6, 5, 1, 1, 0)
    assert "not valid notebook JSON" in rows["garbled"].message
    right = rows["right"]
    assert right.score == 9 and right.executor == default_executor() and right.device == "cpu" and right.graded_at
    assert len(right.content_hash) == 64 and right.grader_version


def test_wrong_answers_lose_points_with_the_message_naming_the_mistake(graded):
    got = graded["results"]
    assert got["wrong", "7.3/1"]["status"] == R.FAILED and "height formula" in got["wrong", "7.3/1"]["message"]
    assert got["wrong", "7.3/4"]["points"] == 0
    assert all(got["right", c]["status"] == R.PASSED for c in ("7.3/1", "7.3/3", "7.3/3:batched", "7.3/4", "7.3/6"))


def test_runaway_submissions_are_named_in_their_own_rows_and_the_others_are_unaffected(graded):
    got = graded["results"]
    assert got["hangs", "7.3/6"]["status"] == R.TIMEOUT and f"{LIMITS.call_seconds:g} s" in got["hangs", "7.3/6"]["message"]
    assert got["hangs", "7.3/4"]["status"] == R.PASSED
    assert got["hog", "7.3/3"]["status"] == R.MEMORY and "GiB" in got["hog", "7.3/3"]["message"]
    processes = got["hog", "7.3/3:batched"]
    assert processes["status"] in (R.ERROR, R.TIMEOUT) and processes["points"] == 0
    assert got["hog", "7.3/1"]["status"] == R.PASSED and got["hog", "7.3/4"]["status"] == R.PASSED
    loud = graded["rows"]["loud"]
    assert any("Output beyond" in note for note in loud.grade_report().notes)
    assert loud.score == 4 and got["loud", "7.3/1"]["status"] == R.FAILED   # its printed 13/13 changes nothing
    assert graded["rows"]["right"].score == 9


# -- exports and pages ---------------------------------------------------------------------------
def test_class_csv_has_a_row_per_student_with_exercise_section_and_total_columns(graded):
    with open(graded["tmp"] / "reports" / "gradebook.csv") as f:
        table = {row["student"]: row for row in csv.DictReader(f)}
    assert set(table) == {"max points", "right", "wrong", "hangs", "hog", "loud", "garbled", "absent"}
    assert table["max points"]["7.3/1"] == "3" and table["max points"]["7.3 total"] == "13"
    assert table["right"]["7.3/1"] == "3" and table["right"]["7.3 total"] == "9" and table["right"]["total"] == "9"
    assert table["absent"]["7.3/1"] == "" and table["absent"]["7.3 total"] == "0"
    assert (table["absent"]["7.3 status"], table["garbled"]["7.3 status"], table["wrong"]["7.3 status"]) == \
        ("missing", "invalid", "graded")


def test_gradescope_results_follow_its_format(graded):
    doc = json.loads((graded["tmp"] / "reports" / "wrong" / "7.3.results.json").read_text())
    assert doc["score"] == graded["rows"]["wrong"].score
    assert {"name", "score", "max_score", "output", "visibility"} <= set(doc["tests"][0])
    failed = next(t for t in doc["tests"] if t["number"] == "7.3/1")
    assert failed["score"] == 0 and failed["max_score"] == 2 and "height formula" in failed["output"]
    assert not (graded["tmp"] / "reports" / "garbled" / "7.3.results.json").exists()


def test_canvas_csv_has_the_import_columns_and_a_points_possible_row(graded):
    with open(graded["tmp"] / "reports" / "canvas.csv") as f:
        rows = list(csv.reader(f))
    assert rows[0] == ["Student", "ID", "SIS User ID", "SIS Login ID", "Section", "d2l 7.3"]
    assert rows[1][0] == "Points Possible" and rows[1][5] == "13"
    assert ["right", "", "right", "right", "", "9"] in rows


def test_class_page_groups_failures_and_lists_missing_and_invalid_work(graded):
    page = (graded["tmp"] / "reports" / "class.html").read_text()
    assert page.count("<svg") >= 2
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//|url\(\s*["']?https?:|@import""", page)   # no external assets
    assert f"ran past the {LIMITS.call_seconds:g} s limit" in page and "(hangs)" in page
    assert "absent" in page and "garbled" in page and "not valid notebook JSON" in page
    assert 'href="right/7.3.html"' in page and (graded["tmp"] / "reports" / "right" / "7.3.html").exists()


def open_in_chromium(url: str, shot: Path) -> tuple[list[str], int]:
    """Console messages of the page in headless Chromium, and the colours of its screenshot."""
    from PIL import Image
    done = subprocess.run(
        ["chromium", "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--window-size=1000,800",
         "--enable-logging=stderr", "--v=0", f"--screenshot={shot}", url],
        capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and shot.exists(), done.stderr[-2000:]
    colours = Image.open(shot).convert("RGB").getcolors(maxcolors=1 << 16)
    return [line for line in done.stderr.splitlines() if ":CONSOLE" in line], 1 << 16 if colours is None else len(colours)


@pytest.mark.skipif(not shutil.which("chromium"), reason="Debian's chromium is not installed (.ci/run installs it)")
def test_pages_open_in_headless_chromium_without_console_errors(graded, tmp_path):
    control = tmp_path / "control.html"             # the detectors themselves: an error and a blank page
    control.write_text('<html><body><script>console.error("boom")</script></body></html>')
    console, colours = open_in_chromium(control.as_uri(), tmp_path / "control.png")
    assert any("boom" in line for line in console) and colours == 1
    for page in ("class.html", "wrong/7.3.html"):
        console, colours = open_in_chromium((graded["tmp"] / "reports" / page).as_uri(),
                                            tmp_path / (page.replace("/", "_") + ".png"))
        assert not console and colours > 1, (page, console, colours)


# -- written answers -------------------------------------------------------------------------
def test_review_sheet_lists_written_answers_and_an_import_scores_them(graded, tmp_path):
    tmp = copy_of(graded, tmp_path)
    with open(graded["tmp"] / "review.csv") as f:
        sheet = list(csv.DictReader(f))
    right = {r["exercise"]: r for r in sheet if r["student"] == "right"}
    assert set(right) == {"7.3/2", "7.3/4:written", "7.3/5", "7.3/6:written"}
    assert "Nyquist" in right["7.3/2"]["answer"] and right["7.3/2"]["rubric"] and right["7.3/2"]["points"] == ""
    right["7.3/2"]["points"], right["7.3/2"]["comment"] = "1", "clear"
    right["7.3/5"]["points"] = "0.5"
    filled = tmp / "filled.csv"
    with open(filled, "w", newline="") as f:
        out = csv.DictWriter(f, fieldnames=list(sheet[0]))
        out.writeheader()
        out.writerows(sheet)
    summary = run_batch(config(tmp, None, import_review=filled))
    assert summary["reviews_imported"] == 2
    with Gradebook(tmp / "reports" / "gradebook.sqlite") as book:
        row = next(r for r in book.submissions() if r.student == "right")
        assert row.score == 10.5
        checks = {c.id: c for c in book.report(row).checks}
    assert checks["7.3/2"].status == R.PASSED and checks["7.3/2"].message == "scored by an instructor: clear"
    assert checks["7.3/5"].points == 0.5 and checks["7.3/6:written"].status == R.MANUAL
    with open(tmp / "reports" / "gradebook.csv") as f:
        assert next(r for r in csv.DictReader(f) if r["student"] == "right")["7.3 total"] == "10.5"
    assert "scored by an instructor: clear" in (tmp / "reports" / "right" / "7.3.html").read_text()


@pytest.mark.parametrize("student, exercise, points, words", [
    ("nobody", "7.3/2", "1", "no written answer '7.3/2' from student 'nobody'"),
    ("right", "7.3/9", "1", "no written answer '7.3/9'"),
    ("right", "7.3/2", "3", "outside 0..1"),
    ("right", "7.3/2", "lots", "'lots' is not a number"),
])
def test_a_bad_review_sheet_is_refused_whole_naming_the_row(graded, tmp_path, student, exercise, points, words):
    tmp = copy_of(graded, tmp_path)
    sheet = tmp / "bad.csv"
    sheet.write_text("student,exercise,points\nright,7.3/5,1\n" + f"{student},{exercise},{points}\n")
    with pytest.raises(UserError) as caught:
        run_batch(config(tmp, None, import_review=sheet))
    assert "nothing was imported" in str(caught.value) and "row 3" in str(caught.value) and words in str(caught.value)
    with Gradebook(tmp / "reports" / "gradebook.sqlite") as book:
        assert book.db.execute("SELECT count(*) FROM reviews").fetchone()[0] == 0   # not even row 2


# -- resume, changes, faults -----------------------------------------------------------------
def test_a_rerun_skips_what_is_unchanged_and_regrades_a_changed_file(graded, tmp_path):
    tmp = copy_of(graded, tmp_path)
    root = shutil.copytree(graded["root"], tmp / "submissions")
    with Gradebook(tmp / "reports" / "gradebook.sqlite") as book:     # the copy is the same class, moved
        book.set_info("folder", str(root.resolve()))
    (root / "wrong" / "7.3.py").write_text(WRONG.replace("s_h + s_w", "s_h*s_w"))
    summary = run_batch(config(tmp, root, students=["wrong", "right", "garbled"]))
    assert (summary["graded"], summary["skipped"], summary["invalid"]) == (1, 1, 1)
    with Gradebook(tmp / "reports" / "gradebook.sqlite") as book:
        rows = [r for r in book.results() if r["student"] == "wrong"]
    assert len(rows) == len({r["check_id"] for r in rows}) == len(graded["rows"]["wrong"].grade_report().checks)
    assert next(r for r in rows if r["check_id"] == "7.3/4")["points"] == 1


def small_class(root: Path, n: int) -> Path:
    for i in range(n):
        (root / f"s{i}").mkdir(parents=True)
        (root / f"s{i}" / "7.3.py").write_text(RIGHT_SMALL)
    return root


def test_a_killed_worker_is_recorded_and_retried_once_and_twice_is_an_error(tmp_path):
    """s1's worker is killed once mid-submission: retried and graded. s0's is killed on both tries:
    an error row. The batch completes either way and s1's row is right."""
    root = small_class(tmp_path / "submissions", 2)
    seen = []

    def kill(task, pid):
        seen.append((task["student"], task["attempt"]))
        if task["student"] == "s0" or (task["student"] == "s1" and task["attempt"] == 1):
            threading.Timer(1.0, os.kill, (pid, signal.SIGKILL)).start()

    summary = run_batch(config(tmp_path, root, on_start=kill))
    assert sorted(seen) == [("s0", 1), ("s0", 2), ("s1", 1), ("s1", 2)]
    assert (summary["graded"], summary["errors"]) == (1, 1)
    with Gradebook(tmp_path / "reports" / "gradebook.sqlite") as book:
        rows = {r.student: r for r in book.submissions()}
        assert len(book.results()) == 10
    assert rows["s0"].status == ERROR and "SIGKILL" in rows["s0"].message
    assert (rows["s1"].status, rows["s1"].score) == (GRADED, 1)


def test_ctrl_c_then_the_same_command_resumes_without_losing_or_duplicating_rows(tmp_path):
    root = small_class(tmp_path / "submissions", 2)
    # The second student's cells take a while, so that Ctrl-C lands while the batch is still busy with
    # them, however fast the engine grades the first (the warm one takes a fraction of a second).
    (root / "s1" / "7.3.py").write_text(RIGHT_SMALL + "import time\ntime.sleep(8)\n")
    book_path = tmp_path / "gb.sqlite"
    command = [sys.executable, "grade.py", "--batch", str(root), "--workers", "1", "--quiet",
               "--gradebook", str(book_path), "--out", str(tmp_path / "out")]
    first = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and _graded(book_path) < 1:
        time.sleep(0.2)
    first.send_signal(signal.SIGINT)
    _, err = first.communicate(timeout=60)
    assert first.returncode == 130 and "interrupted" in err, err
    done_before = _graded(book_path)
    assert done_before == 1
    second = subprocess.run(command + ["--json"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    summary = json.loads(second.stdout)
    assert (summary["graded"], summary["skipped"]) == (1, 1)
    with sqlite3.connect(book_path) as db:
        assert db.execute("SELECT count(*), count(DISTINCT student) FROM submissions").fetchone() == (2, 2)
        assert db.execute("SELECT count(*) FROM results").fetchone()[0] == 2 * 10


def _graded(path: Path) -> int:
    if not path.exists():
        return 0
    try:
        with sqlite3.connect(path, timeout=1) as db:
            return db.execute("SELECT count(*) FROM submissions WHERE status = 'graded'").fetchone()[0]
    except sqlite3.OperationalError:
        return 0


def test_a_second_batch_on_the_same_gradebook_is_refused_with_a_clear_message(tmp_path):
    root = small_class(tmp_path / "submissions", 1)
    with Gradebook(tmp_path / "reports" / "gradebook.sqlite", lock=True):
        with pytest.raises(UserError, match=r"another batch \(pid \d+\) is writing to .*gradebook.sqlite; wait"):
            run_batch(config(tmp_path, root))
    # The first one gone, the lock goes with it.
    with Gradebook(tmp_path / "reports" / "gradebook.sqlite", lock=True):
        pass
