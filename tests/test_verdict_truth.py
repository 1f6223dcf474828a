"""Verdicts that say the truth: a cell that cannot be parsed, a file tagged for another section, a check that
fails because a name it builds on fails, and the self-check called from a plain script."""
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import nbformat
import pytest

from d2lgrade.core import results as R
from d2lgrade.core.checks import Check
from d2lgrade.pipeline.dependencies import explain
from d2lgrade.pipeline.grading import grade_submission, run_check
from d2lgrade.load import Cell, Submission, load_submission
from d2lgrade.load.syntax import syntax_problem
from d2lgrade.load.tags import section_mismatch
from d2lgrade.pipeline.probe import Probe
from d2lgrade.run.executor import CellRun, RuntimeOptions
from d2lgrade.run.engines import default_executor, get_executor
from d2lgrade.run.live import LiveExecutor
from d2lgrade.run.limits import Limits
from d2lgrade.core.sections import find_section

ROOT = Path(__file__).resolve().parents[1]
OPTIONS = RuntimeOptions(limits=Limits(call_seconds=10, cell_seconds=30, total_seconds=120))
CORR2D = textwrap.dedent("""\
    def corr2d(X, K):
        h, w = K.shape
        Y = torch.zeros((X.shape[0] - h + 1, X.shape[1] - w + 1))
        for i in range(Y.shape[0]):
            for j in range(Y.shape[1]):
                Y[i, j] = (X[i:i + h, j:j + w] * K).sum()
        return Y""")
# 7.2/2.1's answer with a bracket left open on its second line; it calls corr2d, which 7.2/1's check scans.
BROKEN_EDGE = ("def edge_kernel(v):\n    return torch.tensor([[-(v[0] + v[1]), v[0]], [v[1], 0.0]]\n\n"
               "corr2d(edge_kernel((1, 0)), K)")


def checks_of(section, *ids):
    return [c for c in find_section(section).checks if c.id in ids]


def grade_cells(submission, section, *ids):
    """Only the named checks, run on a runtime that ran the whole submission (as grade.py does)."""
    with get_executor(default_executor()).start(submission, OPTIONS) as runtime:
        return {c.id: run_check(c, runtime, OPTIONS, submission) for c in checks_of(section, *ids)}


# -- a cell that cannot be parsed ------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def notebook_results(tmp_path_factory):
    path = tmp_path_factory.mktemp("nb") / "work.ipynb"
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("import torch"),
                nbformat.v4.new_markdown_cell("## 7.2/1"), nbformat.v4.new_code_cell(CORR2D),
                nbformat.v4.new_markdown_cell("## 7.2/2.1"), nbformat.v4.new_code_cell(BROKEN_EDGE)]
    path.write_text(nbformat.writes(nb))
    return grade_cells(load_submission(path), "7.2", "7.2/1:corr2d", "7.2/2.1")


def test_unparsable_cell_is_a_syntax_error_of_its_own_exercise(notebook_results):
    result = notebook_results["7.2/2.1"]
    assert result.status == R.ERROR and result.points == 0, result.message
    assert "syntax error in cell 5, line 2" in result.message and "not attempted" not in result.message


def test_unparsable_cell_is_not_source_other_checks_reach(notebook_results):
    result = notebook_results["7.2/1:corr2d"]
    assert result.status == R.PASSED and result.points == result.max_points, result.message


def test_module_cells_name_the_cell_and_the_file_line(tmp_path):
    path = tmp_path / "work.py"
    path.write_text(f"import torch\n\n# %% 7.2/1\n{CORR2D}\n\n# %% 7.2/2.1\n\n{BROKEN_EDGE}\n")
    results = grade_cells(load_submission(path), "7.2", "7.2/1:corr2d", "7.2/2.1:flat")
    assert results["7.2/1:corr2d"].status == R.PASSED, results["7.2/1:corr2d"].message
    broken = results["7.2/2.1:flat"]
    assert broken.status == R.ERROR and "syntax error in cell 3, line 2 (line 15 of the file)" in broken.message, \
        broken.message


def test_a_syntax_error_inside_a_cell_magic_is_named_from_the_runtimes_report(tmp_path):
    path = tmp_path / "work.ipynb"
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("import torch"),
                nbformat.v4.new_code_cell("%%time\ndef edge_kernel(v):\n    return torch.tensor([[v[0], v[1]]\n")]
    path.write_text(nbformat.writes(nb))      # no heading: the cell is known by the name it would define
    result = grade_cells(load_submission(path), "7.2", "7.2/2.1:flat")["7.2/2.1:flat"]
    assert result.status == R.ERROR and result.message.startswith("syntax error in cell 2 (SyntaxError"), \
        result.message


def test_a_cell_named_for_no_exercise_still_explains_the_name_it_would_define():
    cell = Cell(index=4, kind="code", source="def edge_kernel(v)\n    return v")
    problem = syntax_problem(cell)
    assert problem is not None and problem.sentence().startswith("syntax error in cell 4, line 1")
    assert syntax_problem(Cell(index=1, kind="code", source="%time x = 1\nprint(x)")) is None   # IPython runs it


class _Ran:
    """A runtime that reports how each cell ran, without running anything."""
    def __init__(self, runs):
        self.cell_runs, self.notes = runs, []


def test_an_unparsable_cell_the_runtime_ran_anyway_stays_unverifiable():
    """A cell the grader cannot parse but that ran (an input transformer of the student's own rewrote it)
    may define what another exercise's code reaches: it is not dropped from the scanned source."""
    good = Cell(index=1, kind="code", source=CORR2D)
    odd = Cell(index=2, kind="code", source="corr2d := F.conv2d")
    submission = Submission(Path("x.ipynb"), [good, odd])
    [check] = checks_of("7.2", "7.2/1:corr2d")
    ran = Probe(_Ran([CellRun(good, "ok"), CellRun(odd, "ok")]), OPTIONS, check, submission)
    assert [label for label, _ in ran.sources()] == ["cell 1", "cell 2"]
    failed = Probe(_Ran([CellRun(good, "ok"), CellRun(odd, "error", "SyntaxError: invalid syntax")]), OPTIONS,
                   check, submission)
    assert [label for label, _ in failed.sources()] == ["cell 1"]


def test_a_cell_rewritten_by_the_students_own_input_transformer_still_loses(tmp_path):
    """The grader cannot parse the cell, but the runtime ran it (rewritten): it stays in the evidence."""
    path = tmp_path / "cheat.ipynb"
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("import torch\nfrom torch.nn import functional as F\n"
                                          "get_ipython().input_transformers_cleanup.append(\n"
                                          "    lambda lines: [l.replace('<--', '=') for l in lines])"),
                nbformat.v4.new_code_cell("def corr2d(X, K):\n    return X"),
                nbformat.v4.new_code_cell("corr2d <-- lambda X, K: F.conv2d(X[None, None], K[None, None])[0, 0]")]
    path.write_text(nbformat.writes(nb))
    result = grade_cells(load_submission(path), "7.2", "7.2/1:corr2d")["7.2/1:corr2d"]
    assert result.points == 0 and result.status in (R.FAILED, R.MANUAL), (result.status, result.message)
    assert "convolution" in result.message or "cannot parse" in result.message, result.message


# -- section tags --------------------------------------------------------------------------------------------------
def _tagged(*exercises, untagged=0):
    cells = [Cell(index=i + 1, kind="code", source="x = 1", exercise=e) for i, e in enumerate(exercises)]
    cells += [Cell(index=len(cells) + i + 1, kind="code", source="y = 2") for i in range(untagged)]
    return Submission(Path("work/7.2.ipynb"), cells)


def test_a_file_tagged_for_another_section_says_so_in_the_report():
    submission = _tagged("7.2/1", "7.2/2.1", untagged=1)
    report = grade_submission(find_section("8.6"), submission, selector="8.6/2:table", executor=LiveExecutor({}),
                              written=False)
    assert report.notes[0] == ("This file's cells are tagged 7.2, not 8.6: run `python grade.py 7.2 "
                               f"{Path('work/7.2.ipynb')}`."), report.notes


@pytest.mark.parametrize("exercises, untagged", [((), 3), (("8.6/2",), 2), (("7.2/1", "8.6/3"), 0)])
def test_untagged_partly_tagged_and_mixed_files_get_no_such_note(exercises, untagged):
    assert section_mismatch(_tagged(*exercises, untagged=untagged), "8.6") is None


def test_several_other_sections_are_named_in_the_books_order():
    note = section_mismatch(_tagged("8.10/1", "7.3/1", "7.2/4"), "8.6")
    assert note.startswith("This file's cells are tagged 7.2, 7.3 and 8.10, not 8.6: grade it as one of those")


# -- dependencies ---------------------------------------------------------------------------------------------------
def _check(cid, uses, needs=()):
    return Check(id=cid, exercise=cid.partition(":")[0], points=1, title=cid, run=None, uses=uses, needs=needs)


def _result(cid, status, message="raised RuntimeError: shapes do not match."):
    return R.CheckResult(id=cid, exercise=cid.partition(":")[0], title=cid, points=0.0, max_points=1,
                         status=status, message=message)


CHAIN = [_check("8.6/2:residual", ("Residual",)), _check("8.6/2:resnet18", ("resnet",), ("8.6/2:residual",))]


def _explained(source, block_status=R.FAILED, net_status=R.ERROR):
    results = [_result("8.6/2:residual", block_status, "the block is wrong."), _result("8.6/2:resnet18", net_status)]
    explain(CHAIN, results, Submission(Path("x.py"), [Cell(index=1, kind="code", source=source)]))
    return results[1]


BUILT_ON_RESIDUAL = ("class Residual(nn.Module):\n    pass\n\n"
                     "def stage(n, c):\n    return [Residual(c) for _ in range(n)]"
                     "\n\ndef resnet(arch):\n    return nn.Sequential(*[b for n, c in arch for b in stage(n, c)])")


def test_a_failure_built_on_a_failing_block_names_that_check():
    result = _explained(BUILT_ON_RESIDUAL)
    assert result.message.startswith("depends on 8.6/2:residual, which fails: fix that first (this check: raised")
    assert result.points == 0 and result.status == R.ERROR


def test_a_network_with_blocks_of_its_own_is_not_blamed_on_residual():
    own = ("class Residual(nn.Module):\n    pass\n\nclass Basic(nn.Module):\n    pass\n\n"
           "def resnet(arch):\n    return Basic()")
    assert _explained(own).message == "raised RuntimeError: shapes do not match."


def test_a_passing_block_or_a_passing_network_changes_nothing():
    assert _explained(BUILT_ON_RESIDUAL, block_status=R.PASSED).message.startswith("raised")
    assert _explained(BUILT_ON_RESIDUAL, net_status=R.PASSED).message.startswith("raised")


def test_a_block_not_written_yet_is_named_and_a_hidden_block_never_is():
    assert _explained(BUILT_ON_RESIDUAL, block_status=R.NOT_ATTEMPTED).message.startswith(
        "depends on 8.6/2:residual, which is not done yet: write that first")
    hidden = [_check("8.6/2:residual", ("Residual",)), CHAIN[1]]
    hidden[0].hidden = True          # not in a student's kit: the kit's message must be the course's
    results = [_result("8.6/2:residual", R.FAILED), _result("8.6/2:resnet18", R.ERROR)]
    explain(hidden, results, Submission(Path("x.py"), [Cell(index=1, kind="code", source=BUILT_ON_RESIDUAL)]))
    assert results[1].message.startswith("raised")


def test_every_declared_dependency_names_a_check_of_its_section_with_names_of_its_own():
    for section_id in ("8.2", "8.6"):
        checks = find_section(section_id).checks
        ids = {c.id: c for c in checks}
        for check in checks:
            for need in check.needs:
                assert need in ids and set(check.uses) - set(ids[need].uses), (check.id, need)
    assert {"8.6/2:book", "8.6/2:resnet18", "8.6/2:resnet34"} <= {c.id for c in find_section("8.6").checks
                                                                 if "8.6/2:residual" in c.needs}


def test_a_broken_residual_is_named_by_the_resnets_built_on_it(tmp_path):
    reference = (ROOT / "reference" / "section_8_6.py").read_text()
    stride = "self.conv3 = nn.LazyConv2d(num_channels, kernel_size=1,\n" + " " * 39 + "stride=strides)"
    assert stride in reference
    path = tmp_path / "work.py"
    path.write_text(reference.replace(stride, "self.conv3 = nn.LazyConv2d(num_channels, kernel_size=1)"))
    report = grade_submission(find_section("8.6"), load_submission(path), selector="8.6/2", options=OPTIONS,
                              written=False)
    checks = {c.id: c for c in report.checks}
    block = checks["8.6/2:residual"]
    assert block.status in (R.FAILED, R.ERROR) and not block.message.startswith("depends"), block.message
    for cid in ("8.6/2:book", "8.6/2:resnet18", "8.6/2:resnet34"):
        assert checks[cid].points == 0 and checks[cid].message.startswith(
            "depends on 8.6/2:residual, which fails: fix that first"), (cid, checks[cid].message)
    assert checks["8.6/2:table"].status == R.PASSED and checks["8.6/2:resnet50"].status == R.PASSED


# -- the self-check from a plain script ---------------------------------------------------------------------------
def test_check_all_from_a_plain_script_finds_the_scripts_names(tmp_path):
    script = tmp_path / "mine.py"
    script.write_text(f"import torch\nimport d2lgrade\n\n{CORR2D}\n\n"
                      "def main():\n"
                      "    one = d2lgrade.check('7.2/1').report\n"
                      "    print({c.id: c.status for c in one.checks})\n\n"
                      "main()\n"
                      "report = d2lgrade.check_all('7.2').report\n"
                      "print({c.id: c.status for c in report.checks})\n")
    out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=300,
                         cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert out.returncode == 0, out.stderr
    first, statuses = (eval(line) for line in out.stdout.strip().splitlines()[-2:])
    assert first["7.2/1:corr2d"] == "passed"                          # called from a function of the script too
    assert statuses["7.2/1:corr2d"] == "passed"                       # found, and its source verified
    assert statuses["7.2/2.1"] == "not_attempted"                     # what the script does not define stays so
