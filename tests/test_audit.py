"""The mutation audit: each operator makes the mutant it names, and the audit classifies and counts
graded mutants correctly on one small exercise (7.3/3, a few seconds)."""
import ast
import textwrap
from pathlib import Path

import pytest

from d2lgrade.audit import report
from d2lgrade.audit.mutate import Mutant, mutants
from d2lgrade.audit.operators import CODE_OPERATORS
from d2lgrade.audit.run import SectionAudit, SectionRuntime, audit_exercise
from d2lgrade.core.sections import find_section

ROOT = Path(__file__).resolve().parents[1]
OPERATORS = {op.name: op for op in CODE_OPERATORS}


def made(source: str, operator: str | None = None) -> list[str]:
    """The mutated sources, normalised by ast.unparse, that `operator` (or every operator) makes."""
    ops = (OPERATORS[operator],) if operator else CODE_OPERATORS
    return [m.source for m in mutants(textwrap.dedent(source), ops)]


def norm(source: str) -> str:
    return ast.unparse(ast.parse(textwrap.dedent(source))) + "\n"


@pytest.mark.parametrize("operator, source, expected", [
    ("arithmetic", "def f(a, b):\n    return a + b", "def f(a, b):\n    return a - b"),
    ("arithmetic", "def f(a, b):\n    return a @ b", "def f(a, b):\n    return a * b"),
    ("comparison", "def f(a):\n    return a < 3", "def f(a):\n    return a <= 3"),
    ("constant", "k = 3", "k = 4"),
    ("constant", "k = 3", "k = 2"),
    ("slice", "def f(x, n):\n    return x[1:n]", "def f(x, n):\n    return x[2:n]"),
    ("slice", "def f(x, n):\n    return x[1:n]", "def f(x, n):\n    return x[1:n - 1]"),
    ("slice", "def f(x):\n    return x[::2]", "def f(x):\n    return x[1::2]"),
    ("slice", "def f(n):\n    return list(range(n))", "def f(n):\n    return list(range(n + 1))"),
    ("axis", "def f(x):\n    return x.sum(dim=0)", "def f(x):\n    return x.sum(dim=1)"),
    ("axis", "def f(x):\n    return x.softmax(-1)", "def f(x):\n    return x.softmax(-2)"),
    ("axis", "def f(a, b):\n    return torch.cat([a, b], 1)", "def f(a, b):\n    return torch.cat([a, b], 0)"),
    ("axis", "def f(x):\n    return x.permute(0, 2, 1)", "def f(x):\n    return x.permute(0, 1, 2)"),
    ("einsum-axes", "def f(W, X):\n    return torch.einsum('oc,nchw->nohw', W, X)",
     "def f(W, X):\n    return torch.einsum('oc,nchw->nowh', W, X)"),
    ("einsum-axes", "def f(W, X):\n    return torch.einsum('oc,nchw->nohw', W, X)",
     "def f(W, X):\n    return torch.einsum('co,nchw->nohw', W, X)"),
    ("drop-term", "def f(X, Y):\n    return F.relu(Y + X)", "def f(X, Y):\n    return F.relu(Y)"),
    ("drop-term", "def f(a, b):\n    return a - b", "def f(a, b):\n    return -b"),
    ("drop-statement", "def f(x):\n    x = x * 2\n    return x", "def f(x):\n    return x"),
    ("activation", "def f(x):\n    return F.relu(x)", "def f(x):\n    return torch.sigmoid(x)"),
    ("activation", "def f(x):\n    return F.relu(x)", "def f(x):\n    return x"),
    ("activation", "net = nn.Sequential(nn.Linear(2, 2), nn.ReLU())",
     "net = nn.Sequential(nn.Linear(2, 2), nn.Identity())"),
    ("drop-layer", "net = nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU())", "net = nn.Sequential(nn.ReLU())"),
    ("layer-argument", "def f(k):\n    return nn.Conv2d(1, 1, k, padding=k // 2)",
     "def f(k):\n    return nn.Conv2d(1, 1, k, padding=k // 2 + 1)"),
    ("layer-argument", "pool = nn.MaxPool2d(2)", "pool = nn.MaxPool2d(2, stride=2)"),
    ("floor-ceil", "def f(n):\n    return math.floor(n / 2)", "def f(n):\n    return math.ceil(n / 2)"),
])
def test_each_operator_makes_the_mutant_it_names(operator, source, expected):
    assert norm(expected) in made(source, operator)


def test_an_operator_makes_nothing_where_it_has_no_site():
    assert made("def f(x):\n    return x", "arithmetic") == []
    assert made("def f(x):\n    return x", "axis") == []


def test_formula_strings_get_formula_mutants():
    out = {m.operator: [] for m in mutants('speedup = "floor(s_h*s_w/2)"')}
    for m in mutants('speedup = "floor(s_h*s_w/2)"'):
        out[m.operator].append(ast.literal_eval(m.source.split(" = ", 1)[1]))
    assert "ceiling(s_h * s_w / 2)" in out["formula-floor-ceil"]
    assert "floor(s_h * s_w * 2)" in out["formula-arithmetic"]
    assert "floor(s_h / 2)" in out["formula-drop-term"]
    assert "floor(2 * (s_h * s_w) / 2)" in out["formula-factor-2"]
    # a plain word is not a formula, and a docstring is never mutated
    assert list(mutants('mode = "reflect"')) == []
    assert all('"""Add one."""' in m.source or "'Add one.'" in m.source
               for m in mutants('def f(x):\n    """Add one."""\n    return x + 1'))


def test_symbolic_exercises_mutate_lone_names_and_whole_fstring_formulas():
    found = [m.source for m in mutants('speedup = "b"', symbolic=True)]
    assert "speedup = '2 * b'\n" in found and "speedup = 'b + 1'\n" in found
    assert list(mutants('speedup = "b"')) == []          # outside a symbolic exercise "b" is a word
    source = '_h = "(h - k + 1)"\ncost = f"c*{_h}"'
    found = [m.source.splitlines()[-1] for m in mutants(source)]
    assert "cost = 'c * (h + k + 1)'" in found and "cost = 'c * (h - k)'" in found
    assert all(m.source.startswith("_h = '(h - k + 1)'") for m in mutants(source))
    # pieces from an earlier cell, and a plain alias of a formula, are formulas too
    found = [m.source for m in mutants("later = f'2*{_h}'\nsame = cost", context=source)]
    assert "later = '2 * (h - k)'\nsame = 'c*(h - k + 1)'\n" in found
    assert "later = '2*(h - k + 1)'\nsame = 'c * (h - k - 1)'\n" in found


def test_private_names_and_book_code_are_left_alone():
    """Grader-side helpers of a reference (`_name`) are not the answer, and statements outside a
    definition (imports, calls) are not mutated."""
    source = "import torch\nprint(1 + 1)\ndef _helper(x):\n    return x + 1\ndef answer(x):\n    return x * 3"
    found = list(mutants(source))
    assert found and all("def _helper(x):\n    return x + 1" in m.source and "print(1 + 1)" in m.source for m in found)


def test_mutants_compile_are_unique_and_carry_a_diff():
    source = (ROOT / "reference" / "section_7_1.py").read_text()
    found = list(mutants(source))
    assert len({m.source for m in found}) == len(found) > 20
    for m in found:
        compile(m.source, "<mutant>", "exec")
        # every operator changes or removes a line of the reference, so the diff shows it
        assert m.diff.startswith("@@") and any(l.startswith("-") for l in m.diff.splitlines()), m


# -- graded: one small exercise, three hand-picked variants ------------------------------------------------
HEAD = "mirror_mode = 'reflect'\n\n"
PAD = """
def mirror_pad(X, p):
    if X.dim() == 2:
        return F.pad(X[None, None], (p, p, p, p), mode='reflect')[{index}]
    return F.pad(X, (p, p, p, p), mode='reflect')
"""
SYMMETRIC = """
mirror_mode = 'symmetric'

def mirror_pad(X, p):
    def axis(n):
        idx = torch.arange(-p, n + p)
        idx = torch.where(idx < 0, -idx - 1, idx)
        return torch.where(idx >= n, 2 * n - idx - 1, idx)
    return X[..., axis(X.shape[-2])[:, None], axis(X.shape[-1])[None, :]]
"""


def audited_variants(exercise: str, variants: list[Mutant]):
    """`variants` of an exercise graded by its checks in one runtime of its section, as the audit grades mutants."""
    engine = SectionRuntime(find_section(exercise.split("/")[0]))
    try:
        return audit_exercise(engine, exercise, None, variants=variants)
    finally:
        engine.close()


def test_the_audit_classifies_and_counts_graded_mutants(tmp_path):
    variants = [
        Mutant("wrong", HEAD + PAD.format(index="0, 0").replace("mode='reflect')\n", "mode='replicate')\n"), "-a\n+b"),
        # the batch and channel axes have one element each: -1 is 0 there, on every input
        Mutant("equivalent", HEAD + PAD.format(index="-1, 0"), "-c\n+d"),
        # an accepted variant the checks let through by design: it behaves differently, so it is a survivor
        Mutant("variant", SYMMETRIC, "-e\n+f"),
    ]
    audited = audited_variants("7.3/3", variants)
    verdicts = {o.operator: o.verdict for o in audited.outcomes}
    assert verdicts == {"wrong": "killed", "equivalent": "equivalent", "variant": "survived"}, audited.outcomes
    assert audited.outcomes[0].killed_by.startswith("7.3/3")
    section = SectionAudit("7.3", [audited], 1.0)
    doc = report.to_json([section])["sections"]["7.3"]
    assert (doc["mutants"], doc["killed"], doc["equivalent"]) == (3, 1, 1)
    assert doc["survivors"] == [{"exercise": "7.3/3", "operator": "variant", "diff": "-e\n+f"}]
    text = report.markdown([section], command="test", not_audited={"7.4": "not run"})
    assert "| 7.3 | 7.3/3 | 3 | 1 | 1 | 0 | 1 | 50.0 % |" in text and "- 7.4: not run" in text
    # a hand-written Notes section survives a rewrite of the record
    (tmp_path / "AUDIT.md").write_text("old table\n\n## Notes\n\n- 7.3/3: triaged\n")
    report.write_markdown(tmp_path / "AUDIT.md", text)
    written = (tmp_path / "AUDIT.md").read_text()
    assert written.startswith(text) and written.endswith("## Notes\n\n- 7.3/3: triaged\n") and "old table" not in written
    # the record keeps each section's figures, so per-section runs add up
    store = report.save_store(tmp_path / "AUDIT.json", [section])
    assert report.load_store(store)[0].count("survived") == 1


@pytest.mark.parametrize("args, words", [
    (["--audit", "7.3/3"], "takes whole sections"),
    (["--audit", "9.9"], "there is no section '9.9'"),
    (["--audit", "7.3", "--audit-limit", "0"], "--audit-limit must be at least 1"),
])
def test_audit_user_errors_are_one_sentence(args, words, capsys):
    from d2lgrade.cli import main
    assert main(args) == 2
    err = capsys.readouterr().err
    assert words in err and err.startswith("error: ") and len(err.strip().splitlines()) == 1, err


def test_equivalence_redraws_float_inputs_at_several_scales_and_keeps_the_rest():
    import torch
    from d2lgrade.audit.equivalence import provable, random_requests
    log = [({"op": "call", "name": "f", "calls": [[[torch.ones(50), 3, torch.arange(4)], {}]]}, {"ok": True}),
           ({"op": "get", "names": ["k"]}, {"ok": True})]
    fresh = random_requests(log)
    sizes = sorted(float(r["calls"][0][0][0].abs().max()) for r in fresh)
    assert len(fresh) == 4 and sizes[0] < 0.1 and sizes[-1] > 100      # 1e-3 and 1e3 scales among them
    for r in fresh:
        args = r["calls"][0][0]
        assert args[0].shape == (50,) and args[1] == 3 and torch.equal(args[2], torch.arange(4))
    assert provable(log)
    # a call with nothing to redraw cannot show more than the checks did
    assert not provable([({"op": "call", "name": "f", "calls": [[[3], {}]]}, {"ok": True})])


def test_auditing_one_section_keeps_the_other_sections_rows(tmp_path, monkeypatch, capsys):
    """Sections are audited one command at a time (CI-sized runs): each run replaces its own section's
    figures in the record and keeps every other section's, and the hand-written Notes stay."""
    from d2lgrade.audit import run
    from d2lgrade.audit.run import ExerciseAudit, Outcome
    from d2lgrade.cli import main

    def fake_audit(section_id, *, limit=None, **_):
        verdict = "survived" if section_id == "7.3" else "killed"
        return SectionAudit(section_id, [ExerciseAudit(f"{section_id}/1", [Outcome(f"{section_id}/1", "constant", "-a\n+b", verdict)])],
                            1.0, limit)
    monkeypatch.setattr(run, "audit_section", fake_audit)
    record = tmp_path / "AUDIT.md"
    record.write_text("old\n\n## Notes\n\n- triaged by hand\n")
    assert main(["--audit", "7.3", "--audit-md", str(record)]) == 0
    assert main(["--audit", "8.5", "--audit-limit", "2", "--audit-md", str(record)]) == 0
    assert main(["--audit", "7.3", "--audit-md", str(record)]) == 0      # a rerun replaces, never duplicates
    capsys.readouterr()
    text = record.read_text()
    assert "| 7.3 | 7.3/1 | 1 | 0 | 0 | 0 | 1 | 0.0 % |" in text and "| 8.5 | 8.5/1 | 1 | 1 | 0 | 0 | 0 | 100.0 % |" in text
    assert text.count("| 7.3 | 7.3/1 |") == 1 and "| 8.5 | 1 | 1 | 0 | 0 | 0 | 100.0 % | 1 | at most 2 |" in text
    assert "Overall: 2 mutants, 1 killed, 0 equivalent, 0 other correct answers, 1 holes" in text
    assert "- 8.4: not audited yet" in text and "- 8.5: not audited" not in text
    assert text.endswith("## Notes\n\n- triaged by hand\n")


# -- another correct answer: an open exercise's declared property, re-measured by the audit ------------------
def conv_bn_lenet(lr="0.1", last_act="nn.Sigmoid()", extra_dense=""):
    return f"""
class ConvBNLeNet(d2l.Classifier):
    def __init__(self, lr={lr}, num_classes=10):
        super().__init__()
        self.save_hyperparameters()
        self.net = nn.Sequential(
            nn.LazyConv2d(6, kernel_size=5), nn.LazyBatchNorm2d(), nn.Sigmoid(), nn.AvgPool2d(kernel_size=2, stride=2),
            nn.LazyConv2d(16, kernel_size=5), nn.LazyBatchNorm2d(), nn.Sigmoid(), nn.AvgPool2d(kernel_size=2, stride=2),
            nn.Flatten(), nn.LazyLinear(120), nn.Sigmoid(), {extra_dense}nn.LazyLinear(84), {last_act},
            nn.LazyLinear(num_classes))
"""


def test_a_survivor_of_an_open_exercise_is_another_answer_only_with_the_exercises_property(tmp_path):
    variants = [
        Mutant("another-rate", conv_bn_lenet(lr="1.1"), "-a\n+b"),
        # the checks pass it, but the section's LeNet has three dense layers: the property does not cover it
        Mutant("extra-layer", conv_bn_lenet(extra_dense="nn.LazyLinear(100), nn.Sigmoid(), "), "-c\n+d"),
        Mutant("identity", conv_bn_lenet(last_act="nn.Identity()"), "-e\n+f"),
    ]
    audited = audited_variants("8.5/3", variants)
    verdicts = {o.operator: o.verdict for o in audited.outcomes}
    assert verdicts == {"another-rate": "accepted", "extra-layer": "survived", "identity": "killed"}, audited.outcomes
    assert "batch norm after the convolutions only" in audited.outcomes[0].accepted
    section = SectionAudit("8.5", [audited], 1.0)
    doc = report.to_json([section])["sections"]["8.5"]
    assert (doc["mutants"], doc["killed"], doc["accepted"]) == (3, 1, 1)
    assert [s["operator"] for s in doc["survivors"]] == ["extra-layer"]
    assert [s["operator"] for s in doc["other_answers"]] == ["another-rate"]
    text = report.markdown([section], command="test", not_audited={})
    # the kill rate counts only wrong answers: one killed of two
    assert "| 8.5 | 8.5/3 | 3 | 1 | 0 | 1 | 1 | 50.0 % |" in text
    assert "## Other correct answers" in text and "- 8.5/3 `another-rate`: the section's LeNet" in text


def test_every_declared_property_holds_for_the_summaries_of_right_networks():
    from d2lgrade.audit import accepts
    def net(*kinds, output=(2, 10), params=10, flops=10.0):
        return {"output": list(output), "calls": [[k, [2, 4, 5, 5]] for k in kinds], "params": params, "flops": flops}
    lenet = ["Conv2d", "BatchNorm2d", "Sigmoid", "AvgPool2d", "Conv2d", "BatchNorm2d", "Sigmoid", "AvgPool2d", "Flatten",
             "Linear", "Sigmoid", "Linear", "Sigmoid", "Linear"]
    conv_only = accepts.ACCEPTS["8.5/3"].problem
    assert conv_only({"net": net(*lenet)}) == ""
    assert conv_only({"net": net(*lenet[:12], "Identity", "Linear")}) == "a weighted layer without an activation"
    assert conv_only({"net": net(*lenet[:7], *lenet[8:])}) == "a convolution not pooled"
    assert conv_only({"net": net(*lenet[:10], "BatchNorm1d", *lenet[10:])}) == "batch norm elsewhere"
    assert accepts.ACCEPTS["8.5/2"].problem({"net": net(*lenet)}) == "batch norm elsewhere"
    relu = [k.replace("Sigmoid", "ReLU").replace("BatchNorm2d", "Dropout") for k in lenet]
    book = net(params=100, flops=100.0)
    assert accepts.ACCEPTS["8.1/5.1"].problem({"net": net(*relu), "book": book}) == ""
    assert accepts.ACCEPTS["8.1/5.1"].problem({"net": net(*lenet), "book": book}) == "a weighted layer without ReLU"
    assert accepts.ACCEPTS["8.1/5.1"].problem({"net": net(*relu, params=100), "book": book}) == \
        "not cheaper than the book's AlexNet"
    counterexample = accepts.ACCEPTS["7.5/2"].problem
    assert counterexample({"max_nonlinear_counterexample": ([2, 0], [0, 1])}) == ""
    assert counterexample({"max_nonlinear_counterexample": ([1, 0], [2, 1])}) == "max(x + y) = max(x) + max(y)"
    levels = accepts.ACCEPTS["7.5/3.3"].problem
    assert levels({"relu_levels_2x2": 2, "relu_levels_3x3": 3}) == levels({"relu_levels_2x2": 2, "relu_levels_3x3": 4}) == ""
    assert levels({"relu_levels_2x2": 2, "relu_levels_3x3": 2}) == "2 levels for 9 values"
    anynet = {"depths": [1, 1, 2, 2], "widths": [16, 32, 32, 64], "group_widths": [16] * 4, "bot_muls": [1.0] * 4}
    assert accepts._anynet_problems(anynet) == []
    assert accepts._anynet_problems(dict(anynet, depths=[2, 2, 1, 1], group_widths=[16, 8, 16, 8])) == ["group_width", "depths"]
    assert accepts._anynet_problems(dict(anynet, widths=[16, 24, 32, 64])) == ["invalid"]     # 24 channels, groups of 16
    memory = accepts.ACCEPTS["7.4/2.3"].problem
    assert memory({"backward_memory": f"2*({accepts.FORWARD_MEMORY}) + 2*c_o"}) == ""
    assert memory({"backward_memory": f"3*({accepts.FORWARD_MEMORY})"}) == "backward_memory not a counted form"
    split, nin = accepts.ACCEPTS["8.1/1.2"].problem, accepts.ACCEPTS["8.3/4"].problem
    alexnet = {"flops": 1_000_000.0, "conv_flops": 900_000.0}
    assert split({"net": alexnet, "alexnet_flop_split": {"conv": 900_001, "fc": 100_000, "unit": "FLOPs"}}) == ""
    assert split({"net": alexnet, "alexnet_flop_split": {"conv": 450_000, "fc": 50_000, "unit": "MACs"}}) == ""
    assert split({"net": alexnet, "alexnet_flop_split": {"conv": 450_000, "fc": 50_000, "unit": "FLOPs"}}) == \
        "the convolutions' FLOPs are off"
    assert split({"net": alexnet, "alexnet_flop_split": {"conv": 900_000, "fc": 90_000}}) == "the dense layers' FLOPs are off"
    assert nin({"net": {"params": 7, "flops": 100.0}, "nin_params": 7, "nin_flops": {"total": 104, "unit": "FLOPs"}}) == ""
    assert nin({"net": {"params": 7, "flops": 100.0}, "nin_params": 8, "nin_flops": {"total": 100}}) == "not the parameter count"
    assert nin({"net": {"params": 7, "flops": 100.0}, "nin_params": 7, "nin_flops": {"total": 100, "unit": "MACs"}}) == \
        "the FLOPs are off"


@pytest.mark.parametrize("exercise", ["7.4/2.1", "7.4/2.3", "7.5/2", "7.5/3.3", "7.6/1", "7.6/2", "8.1/1.2", "8.1/5.1",
                                      "8.1/5.2", "8.1/7", "8.2/4", "8.3/4", "8.3/6", "8.4/3", "8.5/2", "8.5/3", "8.8/3"])
def test_each_reference_has_its_exercises_declared_property(exercise):
    """A property the reference lacks would accept nothing (the audit says so); measured here in-process."""
    import importlib
    from d2lgrade.audit import accepts
    from graders.probes.audit_properties import answers, summary
    ns = vars(importlib.import_module("reference.section_" + exercise.split("/")[0].replace(".", "_")))
    declared = accepts.ACCEPTS[exercise]
    measured = {label: summary(ns, name, kwargs, shape) for label, (name, kwargs, shape) in declared.networks.items()}
    called = {label: answers(ns, name, calls) for label, (name, calls) in (declared.calls or {}).items()}
    assert declared.problem({**measured, **called, **{name: ns[name] for name in declared.values}}) == ""
