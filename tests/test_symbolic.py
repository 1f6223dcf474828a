"""Symbolic answers: whitelist parsing (nothing executes) and comparison with counterexamples."""
import os
import time

import pytest
import sympy
from hypothesis import given, settings, strategies as st

from d2lgrade.compare.symbolic import (Domain, SymbolicAnswerError, compare_expressions, format_assignment,
                                       parse_answer)

REAL = {"a": Domain("real", -3, 3), "b": Domain("real", -3, 3)}
SHAPE = "floor((n_h + 2*p_h - k_h)/s_h) + 1"


def fits(v):
    return v["k_h"] <= v["n_h"] + 2 * v["p_h"]


@pytest.mark.parametrize("student, expected, domains, constraint", [
    ("(a + b + relu(a - b))/2", "b + relu(a - b)", REAL, None),      # the seed's max via ReLU
    ("2*d + 1", "d + 1", None, None),                                   # the seed's minimum kernel size
    ("ceiling((n_h + 2*p_h - k_h)/s_h) + 1", SHAPE, None, fits),
    ("floor((n_h + p_h - k_h)/s_h) + 1", SHAPE, None, fits),
])
def test_wrong_answers_get_a_real_counterexample(student, expected, domains, constraint):
    result = compare_expressions(student, expected, domains=domains, constraint=constraint)
    assert result.verdict == "different"
    point = {sympy.Symbol(k, real=True): v for k, v in result.counterexample.items()}
    got, want = parse_answer(student).xreplace(point), parse_answer(expected).xreplace(point)
    assert got != want and (got, want) == (result.student_value, result.expected_value)
    assert format_assignment(result.counterexample) in result.message
    assert "your formula gives" in result.message


def test_seed_max_counterexample_is_readable():
    result = compare_expressions("(a + b + relu(a - b))/2", "b + relu(a - b)", domains=REAL)
    assert all(float(v).is_integer() for v in result.counterexample.values()), result.message


@pytest.mark.parametrize("student, expected, domains", [
    ("(a + b + relu(a - b) + relu(b - a))/2", "b + relu(a - b)", REAL),
    ("a + relu(b - a)", "b + relu(a - b)", REAL),
    ("Max(a, b)", "b + relu(a - b)", REAL),
    ("0.5*(a+b+Abs(a-b))", "Max(a, b)", REAL),
    ("floor((n_h - k_h + 2*p_h + s_h)/s_h)", SHAPE, None),
    ("k2 + k1 - 1", "k1 + k2 - 1", None),
    ("k_w*c_i*k_h*c_o", "c_o*c_i*k_h*k_w", None),
    ("x^2", "x**2", None),
    ("(n_h + 2*p_h - k_h)//s_h + 1", SHAPE, None),
])
def test_equivalent_forms_are_accepted(student, expected, domains):
    assert compare_expressions(student, expected, domains=domains).verdict == "equal"


@pytest.mark.parametrize("text", [
    "__import__('os').system('touch /tmp/d2lgrade-pwned')", "(lambda: 1)()", "a.__class__", '"abc"',
    "[x for x in ()]", "open('x')", "eval('1')", "x if a else b", "x[0]", "f(x)", "floor(x=1)", "x ** 1000",
    "", "   ", "y + 1", "a < b", "relu(" * 60 + "a" + ")" * 60,
])
def test_whitelist_rejects(text):
    with pytest.raises(SymbolicAnswerError) as err:
        parse_answer(text)
    assert "\n" not in str(err.value)
    assert not os.path.exists("/tmp/d2lgrade-pwned")


@pytest.mark.parametrize("value", [None, [1], {"a": 1}, True])
def test_non_strings_are_rejected(value):
    with pytest.raises(SymbolicAnswerError):
        parse_answer(value)


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=40))
def test_any_text_parses_or_is_rejected_cleanly(text):
    try:
        assert isinstance(parse_answer(text), sympy.Basic)
    except SymbolicAnswerError:
        pass


def test_time_budget_is_kept():
    heavy = " + ".join(f"(a + {i}*b)**60 * floor(a**60/(b**2 + 1))" for i in range(6))
    started = time.monotonic()
    result = compare_expressions(heavy, heavy + " + 0", domains=REAL, time_budget=0.2)
    assert time.monotonic() - started < 1.5
    assert result.verdict in ("equal", "unknown")
    if result.verdict == "unknown":
        assert "could not verify" in result.message
