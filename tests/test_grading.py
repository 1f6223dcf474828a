"""One submission through the whole pipeline: broken cells cost their exercise, not the rest."""
import nbformat
import pytest

from d2lgrade.pipeline.grading import grade
from d2lgrade.run.executor import RuntimeOptions
from d2lgrade.run.limits import Limits
from d2lgrade.core.sections import find_section

SECTION = find_section("7.3")


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    path = tmp_path_factory.mktemp("work") / "work.ipynb"
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_code_cell("!pip install d2l==1.0.3\nimport torch\nfrom torch.nn import functional as F"),
        nbformat.v4.new_markdown_cell("## 7.3/1"),
        nbformat.v4.new_code_cell("output_shape = 'floor((n_h + 2*p_h - k_h)/s_h) + 1'\nexample_shape = (2, 2"),
        nbformat.v4.new_markdown_cell("## 7.3/3"),
        nbformat.v4.new_code_cell("def helper(X):\n    return X[X.shape[0] + 5]\n\ndef mirror_pad(X, p):\n"
                                  "    if X.dim() == 4:\n        return helper(X)\n"
                                  "    return F.pad(X[None, None], (p,)*4, mode='reflect')[0, 0]"),
        nbformat.v4.new_markdown_cell("## 7.3/4"),
        nbformat.v4.new_code_cell("stride_speedup = 's_h*s_w'\nimport warnings\nwarnings.warn('noise on stderr')"),
        nbformat.v4.new_markdown_cell("## 7.3/6"),
        nbformat.v4.new_code_cell("def upsample_stride_half(X, K):\n    while True:\n        pass"),
        nbformat.v4.new_markdown_cell("## 7.3/2\nIt halves the sample rate."),
    ]
    path.write_text(nbformat.writes(nb))
    options = RuntimeOptions(limits=Limits(call_seconds=2, cell_seconds=10, total_seconds=120))
    return grade(SECTION, path, options=options)


def by_id(report):
    return {c.id: c for c in report.checks}


def test_syntax_error_costs_only_its_cell(report):
    checks = by_id(report)
    assert checks["7.3/1"].status == "error"                     # the cell with the syntax error
    assert "syntax error in cell 3, line 2" in checks["7.3/1"].message
    assert checks["7.3/4"].status == "passed"                    # later cells still ran (stderr noise ignored)
    assert any("Cell 3 (7.3/1) raised SyntaxError" in n for n in report.notes), report.notes


def test_shell_escape_is_reported(report):
    assert any("!pip install d2l==1.0.3" in n for n in report.notes)


def test_raising_function_shows_the_students_own_lines(report):
    check = by_id(report)["7.3/3:batched"]
    assert check.status == "error" and "IndexError" in check.message
    assert "return helper(X)" in check.detail and "return X[X.shape[0] + 5]" in check.detail
    assert "site-packages" not in check.detail
    assert by_id(report)["7.3/3"].status == "passed"


def test_endless_loop_is_a_timeout_and_grading_goes_on(report):
    check = by_id(report)["7.3/6"]
    assert check.status == "timeout" and "2 s limit" in check.message
    assert by_id(report)["7.3/2"].status == "manual"


def test_same_submission_same_score(report, tmp_path):
    path = tmp_path / "again.py"
    path.write_text("import torch\nfrom torch.nn import functional as F\n"
                    "def mirror_pad(X, p):\n    return F.pad(X[None, None], (p,)*4, mode='reflect')[0, 0] + 1e-3 * torch.randn(1)\n")
    scores = [grade(SECTION, path, selector="7.3/3").checks[0].message for _ in range(2)]
    assert scores[0] == scores[1] and "values are wrong" in scores[0]


def test_nan_result_is_named(tmp_path):
    path = tmp_path / "nan.py"
    path.write_text("import torch\nfrom torch.nn import functional as F\n"
                    "def mirror_pad(X, p):\n    Y = F.pad(X[None, None], (p,)*4, mode='reflect')[0, 0].clone()\n"
                    "    Y[0, 0] = float('nan')\n    return Y\n")
    check = grade(SECTION, path, selector="7.3/3").checks[0]
    assert check.status == "failed" and "nan at index (0, 0)" in check.message
