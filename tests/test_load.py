"""The loader: notebooks and modules become cells tagged with their exercise; bad files get one sentence."""
import json

import nbformat
import pytest

from d2lgrade.core.errors import SubmissionError
from d2lgrade.load import load_submission
from d2lgrade.load.sanitize import strip_shell


def write_nb(path, cells, kernel="python3"):
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": kernel, "display_name": kernel}
    nb.cells = cells
    path.write_text(nbformat.writes(nb))
    return path


def test_shell_escapes_are_removed_and_reported(tmp_path):
    path = write_nb(tmp_path / "a.ipynb", [
        nbformat.v4.new_code_cell("!pip install d2l==1.0.3\nimport torch"),
        nbformat.v4.new_code_cell("%pip install numpy"),
        nbformat.v4.new_code_cell("%%bash\nrm -rf /"),
        nbformat.v4.new_code_cell("if True:\n    !ls\nx = 1"),
    ])
    sub = load_submission(path)
    sources = [c.source for c in sub.cells]
    assert "pip install" not in "\n".join(s for s in sources if not s.lstrip().startswith("pass"))
    assert sources[0].splitlines()[1] == "import torch"
    assert sources[3].splitlines()[1].startswith("    pass")
    assert any("!pip install d2l==1.0.3" in n and "not run" in n for n in sub.notes)
    assert len(sub.notes) == 4


def test_timing_magics_are_kept():
    source, removed = strip_shell("%%time\nx = 1")
    assert source == "%%time\nx = 1" and removed == []


def test_cells_are_attributed_to_the_heading_above_them(tmp_path):
    path = write_nb(tmp_path / "a.ipynb", [
        nbformat.v4.new_markdown_cell("## 7.3/2 stride on audio"),
        nbformat.v4.new_markdown_cell("It halves the sample rate."),
        nbformat.v4.new_markdown_cell("### Exercise 7.3/3"),
        nbformat.v4.new_code_cell("def mirror_pad(X, p): ..."),
    ])
    sub = load_submission(path)
    assert [c.exercise for c in sub.cells] == ["7.3/2", "7.3/2", "7.3/3", "7.3/3"]
    assert sub.written_answer("7.3/2") == "stride on audio\n\nIt halves the sample rate."


def test_unknown_kernel_is_noted_not_fatal(tmp_path):
    path = write_nb(tmp_path / "a.ipynb", [nbformat.v4.new_code_cell("x = 1")], kernel="julia-1.9")
    assert any("julia-1.9" in n for n in load_submission(path).notes)


@pytest.mark.parametrize("content, words", [
    (b"{not json", "not valid notebook JSON"),
    (b'{"cells": []}', "has no cells"),
    (b'{"hello": 1}', "not a Jupyter notebook"),
    (b"[1, 2]", "not a Jupyter notebook"),
    (b'{"cells": [], "x": "\xff\xfe"}', "not UTF-8"),
])
def test_broken_notebooks_get_one_sentence(tmp_path, content, words):
    path = tmp_path / "bad.ipynb"
    path.write_bytes(content)
    with pytest.raises(SubmissionError) as err:
        load_submission(path)
    message = str(err.value)
    assert words in message and str(path) in message and "\n" not in message


def test_huge_notebook_is_refused_before_reading(tmp_path):
    path = tmp_path / "huge.ipynb"
    with open(path, "wb") as f:
        f.truncate(200 * 2**20)
    with pytest.raises(SubmissionError, match="over the 50 MB limit"):
        load_submission(path)


def test_outputs_are_not_kept(tmp_path):
    cell = nbformat.v4.new_code_cell("x = 1")
    cell.outputs = [nbformat.v4.new_output("display_data", data={"image/png": "A" * 3_000_000})]
    sub = load_submission(write_nb(tmp_path / "a.ipynb", [cell]))
    assert [c.source for c in sub.cells] == ["x = 1"]


@pytest.mark.parametrize("name, words", [("missing.ipynb", "does not exist"), ("work.txt", "neither a notebook")])
def test_wrong_paths(tmp_path, name, words):
    path = tmp_path / name
    if name.endswith(".txt"):
        path.write_text("x")
    with pytest.raises(SubmissionError, match=words):
        load_submission(path)


def test_module_percent_cells(tmp_path):
    path = tmp_path / "work.py"
    path.write_text("import torch\n# %% 7.3/3\ndef mirror_pad(X, p):\n    return X\n"
                    "# %% [markdown] 7.3/2\n# Halves the sample rate,\n# with aliasing.\n")
    sub = load_submission(path)
    assert [(c.kind, c.exercise) for c in sub.cells] == [("code", None), ("code", "7.3/3"), ("markdown", "7.3/2")]
    assert sub.written_answer("7.3/2") == "Halves the sample rate,\nwith aliasing."


def test_module_without_markers_is_one_cell(tmp_path):
    path = tmp_path / "work.py"
    path.write_text("x = 1\ny = 2\n")
    assert [c.source for c in load_submission(path).cells] == ["x = 1\ny = 2"]


def test_starter_placeholder_is_not_an_answer():
    from d2lgrade.core.sections import find_section
    sub = load_submission(find_section("7.3").starter_path)
    assert sub.written_answer("7.3/2") == ""
    assert json.loads(find_section("7.3").starter_path.read_text())["nbformat"] == 4
