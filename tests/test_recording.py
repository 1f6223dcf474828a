"""The pieces of the student kit that need no kit: safe recordings, the seam's three modes, the kit's layout."""
from __future__ import annotations

import gzip
import json
import tomllib
from fractions import Fraction

import pytest
import sympy
import torch

from d2lgrade.core import course, recording
from d2lgrade.values import expected
from d2lgrade.compare.formulas import Domain, expect_formula
from d2lgrade.core.checks import WrongAnswer
from d2lgrade.release import layout
from d2lgrade.core.sections import ROOT


def test_recordings_round_trip_tensors_and_exact_numbers():
    value = {"x": torch.arange(6, dtype=torch.float64).reshape(2, 3), "i": torch.tensor([1, -2]), "b": torch.tensor([True]),
             "t": (1, 2.5, "vertical", None), "big": 10**30, "frac": Fraction(3, 7), "root": sympy.sqrt(2),
             "dtype": torch.float32, "size": torch.Size([1, 2]), "empty": torch.zeros(0, 3)}
    back = recording.decode(json.loads(json.dumps(recording.encode(value))))
    assert torch.equal(back["x"], value["x"]) and back["x"].dtype == torch.float64
    assert torch.equal(back["i"], value["i"]) and torch.equal(back["b"], value["b"])
    assert back["t"] == value["t"] and back["big"] == 10**30 and back["frac"] == Fraction(3, 7)
    assert abs(float(back["root"]) - 2 ** 0.5) < 1e-15
    assert back["dtype"] is torch.float32 and back["size"] == torch.Size([1, 2]) and back["empty"].shape == (0, 3)


@pytest.mark.parametrize("unsafe", [torch.nn.Linear(2, 2), len, type, lambda: 1, object()])
def test_recordings_refuse_code(unsafe):
    with pytest.raises(recording.NotSafeData):
        recording.encode(unsafe)


def test_digest_names_the_inputs_not_their_identity():
    a = torch.arange(4.0)
    assert recording.digest((a, 2)) == recording.digest((a.clone(), 2))
    assert recording.digest((a, 2)) != recording.digest((a.double(), 2))      # the dtype is part of the input
    assert recording.digest((a, 2)) != recording.digest((a, 3))


def test_the_course_secret_decides_every_checks_inputs():
    seeds = {}
    for key in (b"course A", b"course B"):
        with course.using_key(key):
            seeds[key] = course.check_seed("7.3/3")
            assert course.check_seed("7.3/3") == seeds[key]                   # repeatable
    assert seeds[b"course A"] != seeds[b"course B"]


def test_a_course_folder_is_never_a_kit(tmp_path):
    assert (ROOT / "reference").is_dir() and not course.is_kit() and expected.mode() == "live"


def test_record_then_replay_a_call_a_value_and_a_formula(monkeypatch):
    ref = expected.reference("7.3")
    X = torch.arange(12.0).reshape(3, 4)
    recorder = expected.Recorder()
    with expected.record_into(recorder), expected.checking("7.3/3"):
        live = ref.mirror_pad(X, 1)
        shape = ref.example_shape
        formula = ref.formula("stride_speedup")
        expect_formula("s_w*s_h", formula, what="x", domains={"s_h": Domain("int", 1, 8), "s_w": Domain("int", 1, 8)})
    payload = json.loads(json.dumps(recorder.payload("7.3")))
    assert "s_h*s_w" not in json.dumps(payload)                               # the formula's text is not recorded

    monkeypatch.setattr(expected, "mode", lambda: "replay")
    monkeypatch.setattr(expected, "_replayed", lambda section: payload)
    assert torch.equal(ref.mirror_pad(X, 1), live) and ref.example_shape == shape
    with pytest.raises(expected.NotRecorded):
        ref.mirror_pad(X, 2)                                                  # never recorded: no verdict
    kit_formula = ref.formula("stride_speedup")
    assert "s_h" not in str(kit_formula)
    domains = {"s_h": Domain("int", 1, 8), "s_w": Domain("int", 1, 8)}
    assert "not a proof" in expect_formula("s_h*s_w", kit_formula, what="x", domains=domains)
    with pytest.raises(WrongAnswer, match="your formula gives 2 but the correct value is 1"):
        expect_formula("s_h+s_w", kit_formula, what="x", domains=domains)


def test_specs_lose_their_rubrics_and_nothing_else():
    for spec in sorted((ROOT / "exercises").glob("*.toml")):
        before, after = tomllib.loads(spec.read_text()), tomllib.loads(layout.without_rubrics(spec.read_text()))
        assert [e["id"] for e in after["exercise"]] == [e["id"] for e in before["exercise"]]
        assert not any("rubric" in e for e in after["exercise"])
        assert [e.get("prompt") for e in after["exercise"]] == [e.get("prompt") for e in before["exercise"]]


def test_hidden_checks_are_cut_out_of_a_kits_grader():
    source = '''from d2lgrade.core.checks import check


@check("9.1/1", points=1, title="public")
def public(p):
    return "ok"


@check("9.1/2", points=1, title="secret", hidden=True)
def secret(p):
    return p.call("f", 12345)  # the hidden input


def helper():
    return 1
'''
    cut = layout.without_hidden_checks(source)
    assert layout.hidden_checks(source) == ["secret"]
    assert "12345" not in cut and "def public" in cut and "def helper" in cut
    compile(cut, "<kit grader>", "exec")


def test_reference_bodies_are_found_wherever_they_are_copied(tmp_path):
    bodies = layout.reference_bodies(ROOT)
    name, body = next(iter(bodies.items()))
    (tmp_path / "a.py").write_text("def copied():\n    " + body.replace("\n", "\n    ") + "\n")
    with gzip.open(tmp_path / "b.json.gz", "wt") as file:
        file.write("nothing here")
    assert layout.leaks(tmp_path, bodies) == [name]
