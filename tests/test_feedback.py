"""Feedback levels: at `hints` (what students see) no message, expected text, JSON, HTML page or in-notebook
check states the answer it checks; at `full` (an instructor's) the answer is there, as before.

The leak test grades known-wrong constant answers of every section with a table, count, formula or named value
(cheap: only the named checks, nothing is trained) and looks for the reference's answer, rendered the way
messages render it (thousands separators, magnitudes, tuples and lists), in everything a student sees.
"""
from __future__ import annotations

import copy
import json
import re

import pytest

from d2lgrade.core import feedback as F
from d2lgrade.core import results as R
from d2lgrade.core.checks import WrongAnswer
from d2lgrade.core.errors import UserError
from d2lgrade.values.expected import reference
from d2lgrade.report import html, terminal
from d2lgrade.core.sections import find_section
from graders.architecture import expect_count, magnitude


# -- what counts as stating the answer ---------------------------------------------------------------
def number_texts(n: int | float) -> list[str]:
    n = int(n) if float(n) == int(n) else n
    return [f"{n:,}", str(n), magnitude(n)] if isinstance(n, int) and abs(n) >= 1000 else [str(n)]


def table_texts(rows) -> list[str]:
    rows = [tuple(r) for r in rows]
    return [str(tuple(rows)), str([list(r) for r in rows]), str(list(rows)), str(rows[0:2])[1:-1]]


def states(text: str, answers: list[str]) -> list[str]:
    """The answers `text` contains; a bare number counts only as a whole word (16 is not in 160)."""
    found = []
    for answer in answers:
        pattern = rf"(?<![\w.,]){re.escape(answer)}(?![\w]|,\d)" if re.fullmatch(r"[\d.]+", answer) else re.escape(answer)
        if re.search(pattern, text):
            found.append(answer)
    return found


def student_texts(result: R.CheckResult) -> str:
    return "\n".join((result.message, result.detail, result.expected))


# -- the cases: (section, source, check id, the answer's texts) ----------------------------------------
def _cases():
    r86, r82, r87, r83, r84, r81 = (reference(s) for s in ("8.6", "8.2", "8.7", "8.3", "8.4", "8.1"))
    vgg16_typo = ((2, 64), (3, 128), (3, 256), (3, 512), (3, 512))
    nin = r83.nin_params
    split = r81.alexnet_param_split
    flops = r81.alexnet_flop_split
    from graders.section_8_4 import _reference_counts
    googlenet = _reference_counts()["GoogLeNet"][0]
    return [
        ("8.6", "RESNET18_ARCH = ((2, 64), (2, 128), (2, 256), (2, 512))\nRESNET34_ARCH = RESNET18_ARCH",
         "8.6/2:table", table_texts(r86.RESNET34_ARCH)),
        ("8.6", f"RESNET18_ARCH = {r86.RESNET18_ARCH!r}\nRESNET34_ARCH = ((3, 64), (4, 128), (6, 256), (4, 512))",
         "8.6/2:table", table_texts(r86.RESNET34_ARCH) + ["(3, 512)"]),
        ("8.2", f"VGG16_ARCH = {vgg16_typo!r}\nVGG19_ARCH = {r82.VGG19_ARCH!r}", "8.2/3:arch",
         table_texts(r82.VGG16_ARCH) + ["(2, 128)", "13 convolutions"]),
        ("8.2", f'param_counts = {{"alexnet": {r82.param_counts["alexnet"]}, "vgg11": {r82.param_counts["vgg11"] // 10}}}',
         "8.2/1.1", number_texts(r82.param_counts["vgg11"])),
        ("8.2", f'vgg_flop_split = {{"conv": {r82.vgg_flop_split["conv"] // 3}, "fc": {r82.vgg_flop_split["fc"]}, "unit": "FLOPs"}}',
         "8.2/1.2", number_texts(r82.vgg_flop_split["conv"])),
        ("8.7", f'param_counts = {{"densenet": 6957834, "resnet18": {r87.param_counts["resnet18"]}}}', "8.7/2",
         number_texts(r87.param_counts["densenet"])),
        ("8.7", "DENSENET_BLOCKS = {121: (6, 12, 24, 16), 169: (6, 12, 24, 32), 201: (6, 12, 48, 32)}",
         "8.7/4:table", [str(tuple(r87.DENSENET_BLOCKS[169])), str(list(r87.DENSENET_BLOCKS[169]))]),
        ("8.3", f"nin_params = {nin * 3 // 2}", "8.3/4:params", number_texts(nin)),
        ("8.3", f'nin_flops = {{"total": {r83.nin_flops["total"] // 3}, "unit": "FLOPs"}}', "8.3/4:flops",
         number_texts(r83.nin_flops["total"])),
        ("8.1", f'alexnet_param_split = {{"conv": {split["conv"]}, "fc": {split["fc"] * 2}}}', "8.1/1.1",
         number_texts(split["fc"])),
        ("8.1", f'alexnet_flop_split = {{"conv": {flops["conv"] * 3}, "fc": {flops["fc"]}, "unit": "FLOPs"}}', "8.1/1.2",
         number_texts(flops["conv"])),
        ("8.4", "googlenet_min_size = 96", "8.4/2", [f"from {r84.googlenet_min_size} up"]),
        ("8.4", f'param_counts_all = {{"AlexNet": 46_764_746, "VGG": 128_806_154, "NiN": 1_992_166, "GoogLeNet": {googlenet * 1000}}}',
         "8.4/4", number_texts(googlenet)),
        # formulas: a counterexample point, never the formula (only "what a correct answer does" at full)
        ("7.3", 'output_shape = ("(n_h + 2*p_h - k_h)/s_h + 1", "(n_w + 2*p_w - k_w)/s_w + 1")', "7.3/1",
         [str(reference("7.3").formula("output_shape", 0)), "floor((n + 2p - k)/s)"]),
        ("7.4", 'forward_memory = "c_o*c_i*k_h*k_w + c_o*h_o*w_o"', "7.4/2.2", [str(reference("7.4").formula("forward_memory"))]),
        ("7.5", 'max_via_relu = "relu(a - b)"', "7.5/3.1", [str(reference("7.5").formula("max_via_relu"))]),
        ("7.5", 'pool_cost = "c*(floor((h - p_h)/s_h) + 1)*(floor((w - p_w)/s_w) + 1)"', "7.5/4",
         [str(reference("7.5").formula("pool_cost"))]),
        # two-way questions: the expected text names both options, so the answer is the option said of K.T
        ("7.2", 'kernel_t_detects = "vertical"', "7.2/1:transpose_k", [f"detects {reference('7.2').kernel_t_detects}"]),
        ("7.4", "gaussian_separable = False", "7.4/1.3:gaussian", ["it is separable", "is the outer product of two 1-D"]),
    ]


CASES = _cases()
IDS = [f"{section}-{check}-{i}" for i, (section, _, check, _) in enumerate(CASES)]


def graded(runners, section, source, check_id) -> R.CheckResult:
    runner = runners(section)     # tests/conftest.py: the run's shared runtimes
    runner.load(source)
    return runner.grade_loaded([check_id])[check_id]


@pytest.mark.parametrize("section, source, check_id, answers", CASES, ids=IDS)
def test_hints_never_state_the_answer_and_full_does(runners, section, source, check_id, answers):
    result = graded(runners, section, source, check_id)
    assert result.status in (R.FAILED, R.ERROR) and result.points == 0, (result.status, result.message)
    hints = F.apply(copy.deepcopy(result), F.HINTS)
    assert not states(student_texts(hints), answers), student_texts(hints)
    report = R.GradeReport(section=section, submission="work.py", checks=[hints])
    assert not states(json.dumps(report.to_json()), answers)
    assert not states(terminal.render(report), answers)
    assert not states(html.render(report), answers)
    full = F.apply(copy.deepcopy(result), F.FULL)
    assert states(student_texts(full), answers), student_texts(full)   # the answer was there to hide
    verdict = F.apply(copy.deepcopy(result), F.VERDICT)
    assert (verdict.message, verdict.detail, verdict.expected) == (F.LABELS[result.status], "", "")


KIT_ANSWERS = find_section("8.6").reference_path.parents[1] / "tests" / "kit_answers"


def test_an_error_on_an_answer_table_names_the_table(runners):
    """The student's code raised on `resnet(<the table>)`: the message names the call by the table's name."""
    result = graded(runners, "8.6", (KIT_ANSWERS / "8.6" / "wrong_one.py").read_text(encoding="utf-8"), "8.6/2:resnet50")
    assert result.status == R.ERROR and "resnet(RESNET50_ARCH" in result.message, result.message
    assert not states(student_texts(F.apply(result, F.HINTS)), table_texts(reference("8.6").RESNET50_ARCH))


def _vgg11_flops():
    split = reference("8.2").vgg_flop_split
    return [magnitude(split["conv"] + split["fc"]), magnitude(split["conv"])]


# Whole known-wrong submissions of the kit's tests: a check about one thing must not state another's answer.
@pytest.mark.parametrize("section, answer_file, check_id, answers", [
    ("8.2", "wrong_networks.py", "8.2/4", _vgg11_flops),
    ("8.2", "wrong_networks.py", "8.2/3", lambda: [f"{sum(n for n, _ in reference('8.2').VGG16_ARCH)} convolutions"]),
    ("8.7", "wrong_three.py", "8.7/4:structure", lambda: [str(list(reference("8.7").DENSENET_BLOCKS[121]))]),
], ids=["vggsmall-budget-is-8.2/1.2", "vgg16-total-is-the-table", "densenet-121-blocks"])
def test_known_wrong_kit_answers_do_not_state_another_answer(runners, section, answer_file, check_id, answers):
    result = graded(runners, section, (KIT_ANSWERS / section / answer_file).read_text(encoding="utf-8"), check_id)
    assert result.status == R.FAILED, result.message
    assert not states(student_texts(F.apply(copy.deepcopy(result), F.HINTS)), answers())
    assert states(F.apply(result, F.FULL).message, answers())


@pytest.mark.parametrize("check_id, name", [("8.6/2:table", "RESNET34_ARCH"), ("8.2/3:arch", "VGG16_ARCH")])
def test_expected_texts_that_state_a_table_are_marked(check_id, name):
    [check] = [c for c in find_section(check_id.partition("/")[0]).checks if c.id == check_id]
    table = getattr(reference(check_id.partition("/")[0]), name)
    assert check.reveals and states(check.expected, table_texts(table))
    result = R.CheckResult(id=check.id, exercise=check.exercise, title="", points=0, max_points=1, status=R.FAILED,
                           message="m", expected=check.expected, expected_reveals=check.reveals)
    assert F.apply(copy.deepcopy(result), F.HINTS).expected == ""
    assert F.apply(copy.deepcopy(result), F.FULL).expected == check.expected
    page = html.render(R.GradeReport("8.6", "w.py", [F.apply(result, F.HINTS)]))
    assert "What a correct answer does" not in page


def test_the_in_notebook_check_shows_hints_only():
    import d2lgrade
    ref = reference("8.6")
    shown = d2lgrade.check("8.6/2:table", namespace={"RESNET18_ARCH": ref.RESNET18_ARCH,
                                                      "RESNET34_ARCH": ref.RESNET18_ARCH})
    [result] = shown.report.checks
    assert result.status == R.FAILED and "stage 1 has too few residual blocks" in result.message
    for text in (repr(shown), shown._repr_html_(), json.dumps(shown.to_json())):
        assert not states(text, table_texts(ref.RESNET34_ARCH)), text
    assert "<code>RESNET34_ARCH</code>" in shown._repr_html_()


# -- counts: every section's parameter and FLOP answers go through expect_count -----------------------
@pytest.mark.parametrize("got, hints", [(1_300_000, {}), (9_000_000, {}), (99, {}), (600_000, {"the count without biases": 600_000})],
                         ids=["a-bit-above", "orders-above", "far-below", "named-mistake"])
def test_a_wrong_count_says_which_way_not_the_count(got, hints):
    expected = 1_234_567
    with pytest.raises(WrongAnswer) as failure:
        expect_count(got, expected, "`n`", rel=0.01, hints=hints)
    assert not states(failure.value.message, number_texts(expected)), failure.value.message
    assert "1.23 M" in failure.value.reveal
    assert ("above" in failure.value.message) == (got > expected and not hints)


# -- levels, overrides, course.toml ----------------------------------------------------------------------
def result_with(**kw) -> R.CheckResult:
    base = dict(id="8.6/2:table", exercise="8.6/2", title="t", points=0.0, max_points=1.0, status=R.FAILED,
                message="stage 4 has too many blocks.", reveal="The table gives (3, 512).", expected="((3, 512),)",
                expected_reveals=True, detail="d")
    return R.CheckResult(**{**base, **kw})


def test_levels():
    assert F.apply(result_with(), F.FULL).message == "stage 4 has too many blocks. The table gives (3, 512)."
    hints = F.apply(result_with(), F.HINTS)
    assert (hints.message, hints.reveal, hints.expected, hints.detail) == ("stage 4 has too many blocks.", "", "", "d")
    assert F.apply(result_with(expected_reveals=False), F.HINTS).expected == "((3, 512),)"
    verdict = F.apply(result_with(rubric=["names the stride"]), F.VERDICT)
    assert (verdict.message, verdict.detail, verdict.expected, verdict.rubric) == ("failed", "", "", [])
    assert F.apply(result_with(rubric=["names the stride"]), F.HINTS).rubric == ["names the stride"]
    hidden = F.apply(result_with(hidden=True, message="failed a hidden test"), F.FULL)
    assert hidden.message == "failed a hidden test" and not hidden.reveal
    kept = F.apply(result_with(), F.RECORD)
    assert kept.reveal and kept.expected_reveals


def test_per_check_overrides_take_the_most_precise():
    shown = F.settings({"level": "hints", "checks": {"8.6": "full", "8.6/2:table": "verdict", "7.2/1": "full"}})
    assert shown.level_of(result_with()) == "verdict"
    assert shown.level_of(result_with(id="8.6/2:resnet18")) == "full"
    assert shown.level_of(result_with(id="7.2/1.1", exercise="7.2/1.1")) == "full"
    assert shown.level_of(result_with(id="7.2/10", exercise="7.2/10")) == "hints"
    with pytest.raises(UserError, match="'everything'"):
        F.settings("everything")


def test_course_toml_feedback_table(tmp_path):
    from d2lgrade.batch import late
    path = tmp_path / "course.toml"
    path.write_text('[deadlines]\n"8.6" = 2026-12-01T23:59:00Z\n[feedback]\nlevel = "verdict"\n'
                    'after_deadline = "full"\n[feedback.checks]\n"8.6/2:table" = "hints"\n', encoding="utf-8")
    policy = late.read(path, {"8.6"})
    assert policy.feedback == {"level": "verdict", "after_deadline": "full", "checks": {"8.6/2:table": "hints"}}
    assert late.Policy.from_dict(policy.to_dict()).feedback == policy.feedback
    assert F.for_submission(policy.feedback, past_deadline=False)["level"] == "verdict"
    assert F.for_submission(policy.feedback, past_deadline=True) == {"level": "full", "checks": {"8.6/2:table": "hints"}}
    path.write_text('[feedback]\nlevel = "all"\n', encoding="utf-8")
    with pytest.raises(UserError, match=r"\[feedback\] level is 'all'; use one of"):
        late.read(path, {"8.6"})
    path.write_text('[feedback.checks]\n"9.1/2" = "full"\n', encoding="utf-8")
    with pytest.raises(UserError, match="'9.1/2' names no section of this course"):
        late.read(path, {"8.6"})
    path.write_text('[feedback]\nwhen = "later"\n', encoding="utf-8")
    with pytest.raises(UserError, match="unknown key when in"):
        late.read(path, {"8.6"})


def test_the_published_page_is_cut_to_the_course_level():
    stored = R.GradeReport("8.6", "w.py", [result_with()])
    page = F.for_page(copy.deepcopy(stored), {"level": "hints", "checks": {}})
    assert page.feedback == "hints" and "(3, 512)" not in html.render(page)
    assert "Feedback level hints" in html.render(page)
    full = html.render(F.for_page(copy.deepcopy(stored), {"level": "full", "checks": {}}))
    assert "(3, 512)" in full and "Feedback level full" in full


def test_a_class_takes_its_level_from_course_toml_not_from_the_command(tmp_path, capsys):
    from d2lgrade import cli
    assert cli.main(["--batch", str(tmp_path), "--out", str(tmp_path / "out"), "--feedback", "full"]) == 2
    assert "[feedback] in its course.toml" in capsys.readouterr().err


def test_the_kit_refuses_full_feedback(monkeypatch, capsys):
    from d2lgrade import cli
    from d2lgrade.core import course
    monkeypatch.setattr(course, "kit", lambda: {"sections": ["8.6"]})
    assert cli.main(["8.6", "--feedback", "full"]) == 2
    assert "--feedback full is for the course folder" in capsys.readouterr().err


# -- rendering -------------------------------------------------------------------------------------------
def test_html_shows_backticks_as_code_and_escapes_the_rest():
    page = html.render(R.GradeReport("8.6", "w.py", [result_with(message="`resnet(<x>)` is `wrong & odd`", expected="")]))
    assert "<code>resnet(&lt;x&gt;)</code> is <code>wrong &amp; odd</code>" in page


def test_the_terminal_wraps_a_long_hint_instead_of_cutting_it():
    words = [f"word{i}" for i in range(80)]
    text = terminal.render(R.GradeReport("8.6", "w.py", [result_with(message=" ".join(words))]))
    assert "..." not in text and all(w in text for w in words)
    assert max(len(line) for line in text.splitlines()) <= 140


@pytest.mark.parametrize("table, shown", [({}, False), ({"level": "full"}, True), ({"level": "verdict"}, False)])
def test_a_class_page_and_its_gradescope_file_show_what_the_course_allows(tmp_path, table, shown):
    from d2lgrade.batch import late
    from d2lgrade.batch.gradebook import GRADED, Gradebook
    from d2lgrade.batch.run import BatchConfig, publish
    book = Gradebook(tmp_path / "gradebook.sqlite")
    stored = R.GradeReport("8.6", "ana/8.6.py", [F.apply(result_with(), F.RECORD)])
    book.record("ana", "8.6", GRADED, path="ana/8.6.py", content_hash="h", report=stored)
    book.set_info("course", late.Policy(feedback=table).to_dict())
    publish(book, BatchConfig(root=None, out=tmp_path))
    assert book.report(book.submissions()[0]).checks[0].reveal      # the gradebook keeps the answer
    for page in (tmp_path / "ana" / "8.6.html", tmp_path / "ana" / "8.6.results.json"):
        assert ("(3, 512)" in page.read_text(encoding="utf-8")) == shown, page
    assert ("stage 4 has too many blocks" in (tmp_path / "ana" / "8.6.html").read_text(encoding="utf-8")) == \
        (table.get("level", "hints") != "verdict")


# -- a passing check must not hand out another exercise's answer ------------------------------------------
@pytest.mark.parametrize("section, check_id, answer", [
    ("8.6", "8.6/2:resnet18", lambda: reference("8.7").param_counts["resnet18"]),
    ("8.3", "8.3/1", lambda: reference("8.3").nin_params),
    ("8.2", "8.2/2", lambda: reference("8.2").param_counts["vgg11"]),
], ids=["resnet18-is-8.7/2", "nin-is-8.3/4", "vgg11-is-8.2/1.1"])
def test_a_passing_network_check_does_not_state_another_exercises_count(runners, section, check_id, answer):
    from d2lgrade.load import load_submission
    source = "\n\n".join(c.source for c in load_submission(find_section(section).reference_path).code_cells)
    result = graded(runners, section, source, check_id)
    assert result.status == R.PASSED, result.message
    assert not states(F.apply(copy.deepcopy(result), F.HINTS).message, number_texts(answer()))
