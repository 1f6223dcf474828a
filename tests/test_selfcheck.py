"""`d2lgrade.check(...)` inside a notebook gives the JSON that `python grade.py --json` gives.

A notebook made of 7.3's reference, with one answer broken the way students break it (replicate
instead of reflect padding), is executed through nbclient in an ordinary kernel, as a student's
front end would; its displayed self-check is compared check by check with grading the saved file.
"""
import json
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from d2lgrade.load import load_submission
from d2lgrade.selfcheck import JSON_MIME
from d2lgrade.core.sections import ROOT, find_section

SECTION = find_section("7.3")
REPLICATE = '''
def mirror_pad(X, p):
    if X.dim() == 2:
        return F.pad(X[None, None], (p, p, p, p), mode="replicate")[0, 0]
    return F.pad(X, (p, p, p, p), mode="replicate")
'''
CALLS = ['import d2lgrade\nd2lgrade.check_all("7.3")', 'd2lgrade.check("7.3/3")', 'd2lgrade.check("7.3/9")']


def notebook_from_reference() -> nbformat.NotebookNode:
    cells = []
    for cell in load_submission(SECTION.reference_path).cells:
        if cell.kind == "code":
            cells.append(nbformat.v4.new_code_cell(cell.source))
        else:    # a heading claims the written answer for its exercise, as a student's notebook does
            cells.append(nbformat.v4.new_markdown_cell(f"### {cell.exercise}\n\n{cell.source}" if cell.exercise else cell.source))
    cells.append(nbformat.v4.new_code_cell(REPLICATE))   # the student's later, wrong version
    cells.extend(nbformat.v4.new_code_cell(source) for source in CALLS)
    nb = nbformat.v4.new_notebook(cells=cells)
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    return nb


def displayed(cell) -> dict:
    bundles = [o["data"] for o in cell.outputs if o.get("output_type") in ("execute_result", "display_data")]
    assert len(bundles) == 1, cell.outputs
    return bundles[0]


@pytest.fixture(scope="module")
def executed(tmp_path_factory):
    path = tmp_path_factory.mktemp("selfcheck") / "7.3.ipynb"
    nb = notebook_from_reference()
    nbformat.write(nb, path)
    NotebookClient(nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(ROOT)}}).execute()
    return path, nb.cells[-len(CALLS):]


def test_the_notebook_shows_what_grade_py_says(executed, tmp_path):
    path, (section_call, _, _) = executed
    shown = displayed(section_call)[JSON_MIME]
    # The HTML report goes to the test's folder, not to the project's reports/ that other runs may be writing.
    graded = json.loads(subprocess.run([sys.executable, "grade.py", "7.3", str(path), "--json",
                                        "--html", str(tmp_path / "r.html")], cwd=ROOT,
                                       capture_output=True, text=True, check=True).stdout)
    automatic = [c for c in graded["checks"] if c["status"] != "manual"]   # written answers: an instructor's
    assert shown["self_check"] is True
    assert [(c["id"], c["points"], c["status"], c["message"]) for c in shown["checks"]] == \
           [(c["id"], c["points"], c["status"], c["message"]) for c in automatic]
    wrong = {c["id"]: c for c in shown["checks"]}["7.3/3"]
    assert wrong["status"] == "failed" and wrong["points"] == 0


def test_it_says_it_is_a_self_check_in_html_and_plain_text(executed):
    _, (_, one_exercise, _) = executed
    bundle = displayed(one_exercise)
    assert {c["exercise"] for c in bundle[JSON_MIME]["checks"]} == {"7.3/3"}
    for text in (bundle["text/plain"], bundle["text/html"]):
        assert "not a grade" in text and "7.3/3" in text
    assert "<table>" in bundle["text/html"]


def test_an_unknown_exercise_is_one_sentence_not_a_traceback(executed):
    _, (_, _, unknown) = executed
    assert not [o for o in unknown.outputs if o.get("output_type") == "error"]
    assert displayed(unknown)["text/plain"].startswith("d2l-grade: section 7.3 has no exercise 7.3/9")


def test_starters_show_the_call():
    for section in ("7.1", "7.3", "7.6"):
        intro = nbformat.read(find_section(section).starter_path, as_version=4).cells[0].source
        assert f'd2lgrade.check("{section}/1")' in intro
