"""`compare_expressions`: does a student's formula equal the expected one? Parsing is parse.py, exact
evaluation symbolic.py, sampling and proofs comparison.py; a release writes the expected formula's values
down and a student kit compares with those values only (sampled.py)."""
from __future__ import annotations

from typing import Callable, Iterable

from d2lgrade.compare import sampled
from d2lgrade.compare.comparison import (Comparison, _as_expression, _BudgetExceeded, _Deadline, _different, _merge,
                                         _named, _on_domain, _out_of_time, _points, _sample, _try_proof)
from d2lgrade.compare.parse import FUNCTION_TABLE, DEFAULT_FUNCTIONS, DEFAULT_SYMBOLS
from d2lgrade.compare.symbolic import (DEFAULT_DOMAIN, Domain, Evaluator, exact_number, PointSource, format_assignment,
                                       format_value)


def compare_expressions(student, expected, *, domains: dict[str, Domain] | None = None,
                        constraint: Callable[[dict[str, object]], bool] | None = None,
                        samples: int = 400, seed: int = 0, time_budget: float = 3.0,
                        symbols: Iterable[str] = DEFAULT_SYMBOLS,
                        functions: Iterable[str] = DEFAULT_FUNCTIONS) -> Comparison:
    """Decide whether the student's formula equals the expected one.

    ``student``/``expected`` are strings or sympy expressions.  A student string may use
    ``symbols``, the names in ``domains`` and the names in the expected formula.  A
    SymbolicAnswerError from parsing the student's string propagates to the caller.
    Symbols missing from ``domains`` are integers in [1, 12]; ``constraint`` receives
    {name: int or Fraction} and returns False for points that make no sense.
    """
    if samples < 1:
        raise ValueError("samples must be at least 1")
    domains = {str(name): domain for name, domain in (domains or {}).items()}  # Symbol keys work too
    for name, domain in domains.items():
        if not isinstance(domain, Domain):
            raise TypeError(f"domain of {name!r} must be a Domain, not {type(domain).__name__}")
    from d2lgrade.values.expected import RecordedFormula, RecordingFormula
    seen = {} if isinstance(expected, RecordingFormula) else None   # a release writes the values down
    deadline = _Deadline(time_budget)
    try:
        with deadline:
            if isinstance(expected, RecordedFormula):   # a student kit: values only, no text
                return sampled.compare_recorded(student, expected, domains, constraint, samples, seed, deadline,
                                                tuple(symbols), tuple(functions))
            return _compare(student, expected, domains, constraint, samples, seed, deadline,
                            tuple(symbols), tuple(functions), seen)
    except _BudgetExceeded:
        return _out_of_time(time_budget)
    finally:
        if seen is not None:
            expr = _as_expression(expected, _merge(symbols, domains), _merge(functions, FUNCTION_TABLE), reference=True)
            sampled.record_points(expr, domains, constraint, samples, seed, seen)
            expected.record(sampled.expected_names(expr), seen)


PROVED = "proved: your formula is equivalent to the expected formula (sympy reduces their difference to 0)."


def _compare(student, expected, domains, constraint, samples, seed, deadline: _Deadline,
             symbols: tuple[str, ...], functions: tuple[str, ...], seen: dict | None = None) -> Comparison:
    expected_expr = _as_expression(expected, _merge(symbols, domains), _merge(functions, FUNCTION_TABLE),
                                   reference=True)
    allowed = _merge(symbols, domains, sorted(s.name for s in expected_expr.free_symbols))
    student_expr = _as_expression(student, allowed, functions, reference=False)

    if student_expr - expected_expr == 0:  # same canonical form: no sampling needed
        return Comparison("equal", PROVED)
    names = sorted({s.name for s in student_expr.free_symbols | expected_expr.free_symbols})
    source = PointSource(names, [domains.get(n, DEFAULT_DOMAIN) for n in names], seed)
    expected_eval = Evaluator(expected_expr)
    if seen is not None:
        expected_eval = sampled.RecordingEvaluator(expected_eval, sampled.expected_names(expected_expr), seen)
    found = _sample(Evaluator(student_expr), expected_eval, source, constraint, samples, deadline, kinks=[student_expr])

    if found.difference is not None:
        return _different(names, *found.difference)
    # A complete enumeration proves equality on the domain, but only if no point was skipped.
    enough = found.checked >= samples or (found.exhaustive and found.checked > 0 and not found.unevaluable)
    proven = _try_proof(student_expr - expected_expr, deadline)
    if proven:
        return Comparison("equal", PROVED)
    if found.student_undefined is not None:
        point, expected_value = found.student_undefined
        return Comparison(
            "different",
            f"at {format_assignment(_named(names, point))} your formula is undefined (it divides by zero) "
            f"but the correct value is {format_value(expected_value)}.",
            counterexample=_named(names, point), student_value=None, expected_value=exact_number(expected_value))
    # Too few points to decide by sampling (a narrow or constrained domain): a proof that uses what the
    # domain guarantees (whole numbers, positive) decides instead.
    on_domain, assumed = _on_domain(student_expr - expected_expr, source) if not enough else (None, "")
    if assumed and _try_proof(on_domain, deadline):
        return Comparison("equal", f"proved: your formula is equivalent to the expected formula for the values "
                                   f"this answer is about ({assumed}; sympy reduces their difference to 0 there).")
    if enough:
        where = "every point of the (small) domain" if found.exhaustive else "sampled points, book sizes and " \
            "large and small values included"
        return Comparison("equal", f"your formula agrees with the expected formula at {found.checked} {where} "
                                   "(not proved symbolically).")
    if found.checked == 0:
        return Comparison("unknown", "could not evaluate the formulas at any valid sample point; "
                                     "an instructor will look at it.")
    return Comparison("unknown", f"could only check {_points(found.checked, 'valid sample')}; "
                                 f"an instructor will look at it.")
