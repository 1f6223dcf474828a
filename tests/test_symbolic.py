"""Symbolic answers: whitelist parsing (nothing executes) and comparison with counterexamples."""
import os
import re
import signal
import threading
import time
from fractions import Fraction

import pytest
import sympy
from hypothesis import given, settings, strategies as st

from d2lgrade.compare.comparison import Comparison
from d2lgrade.compare.equality import compare_expressions
from d2lgrade.compare.symbolic import (DEFAULT_FUNCTIONS, DEFAULT_SYMBOLS, Domain, SymbolicAnswerError, format_assignment,
                                       format_value, parse_answer)

REAL = {"a": Domain("real", -3, 3), "b": Domain("real", -3, 3)}
SHAPE = "floor((n_h + 2*p_h - k_h)/s_h) + 1"
PWNED = "/tmp/pwned"


def fits(v):
    """The kernel fits into the padded input."""
    return v["k_h"] <= v["n_h"] + 2 * v["p_h"]


def sym(name):
    return sympy.Symbol(name, real=True)


def value_at(text, point):
    """Evaluate a formula at a counterexample independently of the module's evaluator."""
    return parse_answer(text).xreplace({sym(k): sympy.sympify(v) for k, v in point.items()})


# ---------------------------------------------------------------------------------------------
# Known-wrong answers from the course
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("student, expected, domains, constraint", [
    ("(a + b + relu(a - b))/2", "b + relu(a - b)", REAL, None),    # max via ReLU, half-finished
    ("2*d + 1", "d + 1", None, None),                                 # minimum kernel size
    ("ceiling((n_h + 2*p_h - k_h)/s_h) + 1", SHAPE, None, fits),     # ceiling instead of floor
    ("floor((n_h + p_h - k_h)/s_h) + 1", SHAPE, None, fits),         # forgot the 2 in 2*p_h
])
def test_wrong_answers_get_a_real_counterexample(student, expected, domains, constraint):
    result = compare_expressions(student, expected, domains=domains, constraint=constraint)
    assert isinstance(result, Comparison)
    assert result.verdict == "different", result.message
    got, want = value_at(student, result.counterexample), value_at(expected, result.counterexample)
    assert got != want
    assert (got, want) == (result.student_value, result.expected_value)
    if constraint is not None:
        assert constraint(result.counterexample)
    assert result.message == (f"at {format_assignment(result.counterexample)} your formula gives "
                               f"{format_value(got)} but the correct value is {format_value(want)}.")


def test_relu_counterexample_is_the_simplest_point():
    result = compare_expressions("(a + b + relu(a - b))/2", "b + relu(a - b)", domains=REAL)
    assert result.counterexample == {"a": 0, "b": 1}
    assert result.message == "at a=0, b=1 your formula gives 1/2 but the correct value is 1."


def test_counterexample_for_integer_symbols_uses_the_default_domain():
    result = compare_expressions("2*d + 1", "d + 1")
    assert result.message == "at d=1 your formula gives 3 but the correct value is 2."
    # A difference only at the top of the default domain [1, 12] is still found.
    assert compare_expressions("Min(d, 11)", "d").counterexample == {"d": 12}
    # ... and so is one beyond it: sampling also tries book sizes and large values (issue 8, section 4)
    assert compare_expressions("Min(d, 12)", "d").counterexample == {"d": 13}
    narrow = compare_expressions("Min(d, 12)", "d", domains={"d": Domain("int", 1, 12, wide=False)})
    assert narrow.verdict == "equal" and "every point of the (small) domain" in narrow.message
    assert "proved" not in narrow.message.replace("not proved", "")


@pytest.mark.parametrize("student, expected, domains", [
    # a term that vanishes for the sizes a narrow domain holds
    ("floor((n_h + 2*p_h - k_h)/s_h) + 1 - floor(n_h/25)", SHAPE, None),
    ("floor((n_h + 2*p_h - k_h)/s_h) + 1 - floor(n_h/225)", SHAPE, None),
    # a ReLU clipped beyond |a - b| > 20, on a domain of reals in [-10, 10]
    ("b + relu(a - b) - relu(a - b - 20)", "Max(a, b)", {"a": Domain("real", -10, 10), "b": Domain("real", -10, 10)}),
    # a term too small to matter for ordinary magnitudes
    ("a + b", "a + b + floor(Abs(a)/100)", {"a": Domain("real", -3, 3), "b": Domain("real", -3, 3)}),
])
def test_terms_that_vanish_on_the_narrow_domain_are_caught(student, expected, domains):
    result = compare_expressions(student, expected, domains=domains, constraint=fits if expected is SHAPE else None,
                                 functions=("relu", "floor", "Max", "Abs"))
    assert result.verdict == "different", result.message


def test_messages_say_proved_only_for_a_proof():
    proved = compare_expressions("(d + 1)**2", "d**2 + 2*d + 1")
    assert proved.verdict == "equal" and proved.message.startswith("proved")
    sampled = compare_expressions("ceiling((n_h + 2*p_h - k_h + 1)/s_h)", SHAPE, constraint=fits)
    assert sampled.verdict == "equal" and "proved" not in sampled.message.replace("not proved", "")


def test_counterexample_is_shrunk_to_the_smallest_values():
    # 100**3 points are sampled, not enumerated; the smallest failing point still comes out.
    domains = {n: Domain("int", 1, 100) for n in "abc"}
    result = compare_expressions("floor(a/7) + b*c", "b*c", domains=domains)
    assert result.counterexample == {"a": 7, "b": 1, "c": 1}


def test_student_formula_undefined_where_the_answer_exists():
    result = compare_expressions("floor((x**2 - 1)/(x - 1))", "x + 1")
    assert result.verdict == "different"
    assert result.counterexample == {"x": 1}
    assert "undefined" in result.message and "2" in result.message


def test_comparison_is_deterministic():
    runs = [compare_expressions("floor((n_h + p_h - k_h)/s_h) + 1", SHAPE, constraint=fits, seed=7)
            for _ in range(2)]
    assert runs[0] == runs[1]


# ---------------------------------------------------------------------------------------------
# Equivalent forms
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("student, expected, domains", [
    ("(a + b + relu(a - b) + relu(b - a))/2", "b + relu(a - b)", REAL),
    ("a + relu(b - a)", "b + relu(a - b)", REAL),
    ("Max(a, b)", "b + relu(a - b)", REAL),
    ("0.5*(a+b+Abs(a-b))", "Max(a, b)", REAL),
    ("floor((n_h - k_h + 2*p_h + s_h)/s_h)", SHAPE, None),
    ("(n_h + 2*p_h - k_h)//s_h + 1", SHAPE, None),
    ("k1+k2-1", "k2 + k1 - 1", None),
    ("c_o*c_i*k_h*k_w", "k_w*c_i*k_h*c_o", None),
    ("k_h*c_o*k_w*c_i", "c_o*c_i*k_h*k_w", None),
    ("x^2", "x**2", None),
    ("(a**2 - b**2)/(a - b)", "a + b", REAL),   # removable singularity: proven symbolically
])
def test_equivalent_forms_are_accepted(student, expected, domains):
    result = compare_expressions(student, expected, domains=domains)
    assert result.verdict == "equal", result.message
    assert result.counterexample is None


def test_identity_that_only_holds_for_integers_is_accepted_by_sampling():
    # ceil((m + 1)/s) == floor(m/s) + 1 for integers only, so sympy can not prove it over the reals.
    result = compare_expressions("ceiling((n_h + 2*p_h - k_h + 1)/s_h)", SHAPE, constraint=fits)
    assert result.verdict == "equal"
    found = re.fullmatch(r"your formula agrees with the expected formula at (\d+) sampled points, book sizes and "
                         r"large and small values included \(not proved symbolically\)\.", result.message)
    assert found and int(found.group(1)) >= 400
    # ... and over the reals it is wrong, which sampling finds.
    real = {n: Domain("real", 1, 12) for n in ("n_h", "p_h", "k_h", "s_h")}
    assert compare_expressions("ceiling((n_h + 2*p_h - k_h + 1)/s_h)", SHAPE, domains=real).verdict == "different"


def test_floats_in_a_reference_expression_compare_with_tolerance():
    a = sympy.Symbol("a")  # a plain Symbol: matched to the student's real `a` by name
    assert compare_expressions("a/2", sympy.Float(0.5) * a, domains=REAL).verdict == "equal"
    assert compare_expressions("a", sympy.Float(1 + 1e-13) * a, domains=REAL).verdict == "equal"
    wrong = compare_expressions("a/3", sympy.Float(0.33) * a, domains=REAL)
    assert wrong.verdict == "different" and "0.33" in wrong.message


def test_values_that_differ_only_in_late_digits_are_shown_distinctly():
    result = compare_expressions("x", "x + 0.000000000001")
    assert result.verdict == "different"
    assert result.message == "at x=1 your formula gives 1 but the correct value is 1.000000000001."


def test_no_valid_point_gives_unknown():
    result = compare_expressions("n_h", "n_h + 1", constraint=lambda v: False)
    assert result.verdict == "unknown"
    assert "instructor" in result.message


def test_constraint_sees_plain_numbers():
    seen = []

    def record(v):
        seen.append(v)
        return True

    narrow = {name: Domain("real", -3, 3, wide=False) for name in REAL}
    result = compare_expressions("a + b", "b + a + floor(Abs(a)/100)", domains=narrow, constraint=record, samples=50)
    assert result.verdict == "equal"
    assert seen and all(set(v) == {"a", "b"} for v in seen)
    assert all(isinstance(x, (int, Fraction)) for v in seen for x in v.values())
    assert any(isinstance(x, Fraction) for v in seen for x in v.values())  # real domains give fractions


def test_bad_reference_is_the_graders_error_not_the_students():
    with pytest.raises(ValueError) as err:
        compare_expressions("a", "a +")
    assert not isinstance(err.value, SymbolicAnswerError)


def test_students_parse_error_propagates():
    with pytest.raises(SymbolicAnswerError):
        compare_expressions("__import__('os')", "a")


# ---------------------------------------------------------------------------------------------
# Parsing
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("text, expected", [
    ("x^2", sym("x") ** 2),
    ("x^2 + 1", sym("x") ** 2 + 1),              # ^ binds like **, not like Python's xor
    ("2^3^2", sympy.Integer(512)),                # right-associative like **
    ("-x^2", -sym("x") ** 2),
    ("0.5", sympy.Rational(1, 2)),
    ("0.1 + 0.2", sympy.Rational(3, 10)),
    ("relu(a - b)", sympy.Max(0, sym("a") - sym("b"))),
    ("a // b", sympy.floor(sym("a") / sym("b"))),
    ("ceil(x) + max(a, b) + min(a, 1) + abs(c)",
     sympy.ceiling(sym("x")) + sympy.Max(sym("a"), sym("b")) + sympy.Min(sym("a"), 1) + sympy.Abs(sym("c"))),
    ("  +k1 - -k2  ", sym("k1") + sym("k2")),
    ("+".join(["a"] * 200), 200 * sym("a")),      # a long flat sum is not "deep nesting"
])
def test_parse_builds_the_expected_expression(text, expected):
    assert parse_answer(text) == expected


def test_symbols_are_real_and_numbers_are_accepted():
    assert all(s.is_real for s in parse_answer("n_h + k_h").free_symbols)
    assert parse_answer(3) == 3 and parse_answer(0.25) == sympy.Rational(1, 4)
    assert parse_answer("q", symbols=("q",)) == sym("q")
    with pytest.raises(SymbolicAnswerError):
        parse_answer("relu(q)", symbols=("q",), functions=("floor",))


@pytest.mark.parametrize("text, must_mention", [
    (f"__import__('os').system('touch {PWNED}')", "`__import__`"),
    ("(lambda: 1)()", "lambda"),
    ("a.__class__", "attribute"),
    ('"abc"', "quotes"),
    ("[x for x in ()]", "comprehension"),
    ("open('x')", "`open`"),
    ("eval('1')", "`eval`"),
    ("x if a else b", "if/else"),
    ("x[0]", "indexing"),
    ("f(x)", "`f`"),
    ("y + 1", "`y`"),
    ("floor(x=1)", "keyword"),
    ("a < b", "comparison"),
    ("a % b", "`%`"),
    ("(a := 1)", "assignment"),
    ("Max(*a)", "unpacking"),
    ("s_h(k_h - 1)", "s_h*(...)"),
    ("floor", "parentheses"),
    ("relu(a, b)", "exactly 1"),
    ("1j", "imaginary"),
    ("x ** 1000", "exponent"),
    ("x ** 65", "exponent"),
    ("9**9**9", "exponent"),
    ("(10**64)**64", "too large"),
    ("1e999", "too large"),
    ("1/0", "undefined"),
    ("", "empty"),
    ("   ", "empty"),
    ("a" * 501, "too long"),
    ("relu(" * 60 + "a" + ")" * 60, "nested too deeply"),
    ("2a", "could not read the formula"),
    ("floor(x", "could not read the formula"),
])
def test_whitelist_rejects(text, must_mention):
    existed = os.path.exists(PWNED)
    with pytest.raises(SymbolicAnswerError) as err:
        parse_answer(text)
    message = str(err.value)
    assert must_mention in message
    assert "\n" not in message and message.count(". ") == 0  # one sentence
    assert existed or not os.path.exists(PWNED)


def test_unknown_names_are_named_and_the_allowed_ones_listed():
    message = str(pytest.raises(SymbolicAnswerError, parse_answer, "N_h + 1").value)
    assert "`N_h`" in message and "`n_h`" in message  # did-you-mean hint
    assert all(name in message for name in DEFAULT_SYMBOLS + DEFAULT_FUNCTIONS)


@pytest.mark.parametrize("value", [None, [1], {"a": 1}, True, float("nan"), b"a"])
def test_non_strings_are_rejected(value):
    with pytest.raises(SymbolicAnswerError):
        parse_answer(value)


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=40))
def test_any_printable_text_parses_or_is_rejected_cleanly(text):
    started = time.monotonic()
    try:
        assert isinstance(parse_answer(text), sympy.Expr)
    except SymbolicAnswerError as err:
        assert "\n" not in str(err)
    assert time.monotonic() - started < 1.0


@settings(max_examples=100, deadline=None)
@given(st.text(alphabet="ab+-*/^()1203., ", max_size=30))
def test_formula_like_text_parses_or_is_rejected_cleanly(text):
    try:
        assert isinstance(parse_answer(text), sympy.Expr)
    except SymbolicAnswerError:
        pass


# ---------------------------------------------------------------------------------------------
# Time budget
# ---------------------------------------------------------------------------------------------

# Whitelisted but nasty: irrational powers force slow exact arithmetic inside nested floors.
_POWERS = "Max(" + ", ".join(f"(a+{i})**(b/(c+{i}))" for i in range(8)) + ")"
PATHOLOGICAL = "floor(" * 12 + _POWERS + ")" * 12


def _timed(*args, **kwargs):
    started = time.monotonic()
    result = compare_expressions(*args, **kwargs)
    return time.monotonic() - started, result


def test_time_budget_is_kept():
    elapsed, result = _timed(PATHOLOGICAL, PATHOLOGICAL + " + floor(a/100)", time_budget=0.5)
    assert elapsed < 0.5 + 1.0
    assert result.verdict == "unknown"
    assert result.message == "could not verify this formula within 0.5 s; an instructor will look at it."


def test_time_budget_is_kept_outside_the_main_thread():
    out = []
    worker = threading.Thread(
        target=lambda: out.append(_timed(PATHOLOGICAL, PATHOLOGICAL + " + floor(a/100)", time_budget=0.5)))
    worker.start()
    worker.join(10)
    elapsed, result = out[0]
    assert elapsed < 0.5 + 1.0 and result.verdict == "unknown"


def test_towers_of_symbolic_powers_do_not_hang():
    elapsed, result = _timed("x**x**x**x**x", "x**x**x**x**x + floor(x/100)", time_budget=1.0)
    assert elapsed < 2.0
    assert result.verdict == "unknown"  # only x=1 can be evaluated exactly


def test_previous_alarm_handler_and_timer_are_restored():
    def theirs(signum, frame):
        pass

    previous = signal.signal(signal.SIGALRM, theirs)
    try:
        signal.setitimer(signal.ITIMER_REAL, 60)
        compare_expressions("Min(d, 12)", "d")
        compare_expressions(PATHOLOGICAL, PATHOLOGICAL + " + floor(a/100)", time_budget=0.2)  # times out
        assert signal.getsignal(signal.SIGALRM) is theirs
        assert 50 < signal.getitimer(signal.ITIMER_REAL)[0] <= 60
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


# ---------------------------------------------------------------------------------------------
# Formatting helpers
# ---------------------------------------------------------------------------------------------

def test_format_assignment_and_values():
    assert format_assignment({"a": 0, "b": 1}) == "a=0, b=1"
    assert format_assignment({"x": Fraction(-1, 2), "y": sympy.Integer(3)}) == "x=-1/2, y=3"
    assert format_value(Fraction(12345, 678)) == "18.21"
    assert format_value(sympy.sqrt(2)) == "1.414"
    assert format_value(sympy.Rational(6, 3)) == "2"
