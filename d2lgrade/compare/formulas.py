"""Symbolic answers in a check: read the student's string, compare it with sympy, explain."""
from __future__ import annotations

from dataclasses import dataclass

from d2lgrade.checks import StudentTimeout, fail


@dataclass(frozen=True)
class Domain:
    """How to sample one symbol; graders declare these at import, before sympy is loaded."""
    kind: str      # "int" | "real"
    low: float
    high: float


def expect_formula(answer: str, expected: str, *, what: str, domains: dict | None = None,
                   constraint=None, symbols=None) -> str:
    """Fail unless `answer` equals `expected` for every valid value of the symbols."""
    from d2lgrade.compare.symbolic import SymbolicAnswerError, compare_expressions, parse_answer
    try:
        student = parse_answer(answer, **({"symbols": symbols} if symbols else {}))
    except SymbolicAnswerError as exc:
        fail(f"{what}: {exc}")
    from d2lgrade.compare import symbolic
    domains = {k: symbolic.Domain(d.kind, d.low, d.high) for k, d in (domains or {}).items()}
    comparison = compare_expressions(student, expected, domains=domains, constraint=constraint)
    if comparison.verdict == "different":
        fail(f"{what} is not right: {comparison.message}")
    if comparison.verdict == "unknown":
        raise StudentTimeout(f"{what}: {comparison.message}")
    return comparison.message
