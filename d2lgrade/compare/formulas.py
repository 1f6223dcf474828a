"""Symbolic answers in a check: read the student's string, compare it with sympy, explain."""
from __future__ import annotations

from d2lgrade.core import results
from d2lgrade.compare.domain import Domain
from d2lgrade.core.checks import Verdict, fail


class CouldNotVerify(Verdict):
    """Neither a proof nor enough sample points decided the formula: a person decides, which is not a timeout of
    the student's code."""
    status = results.MANUAL


def expect_formula(answer: str, expected: str, *, what: str, domains: dict | None = None,
                   constraint=None, symbols=None) -> str:
    """Fail unless `answer` equals `expected`: proved by sympy, or equal at every sampled point (the
    returned message says which)."""
    from d2lgrade.compare.equality import compare_expressions
    from d2lgrade.compare.symbolic import SymbolicAnswerError, parse_answer
    try:
        student = parse_answer(answer, **({"symbols": symbols} if symbols else {}))
    except SymbolicAnswerError as exc:
        fail(f"{what}: {exc}")
    from d2lgrade.compare import symbolic
    domains = dict(domains or {})
    comparison = compare_expressions(student, expected, domains=domains, constraint=constraint)
    if comparison.verdict == "different":
        fail(f"{what} is not right: {comparison.message}")
    if comparison.verdict == "unknown":
        raise CouldNotVerify(f"{what}: {comparison.message}")
    return comparison.message


def expect_formula_among(answer, accepted, *, what, domains, constraint=None, symbols=None, functions=None,
                         shorthands=None, diagnoses=(), mistakes=(), time_budget=3.0):
    """Pass when `answer` equals one of the `accepted` (formula, note) pairs; return that note.

    Extends expect_formula for answers with several accepted forms or a restricted vocabulary.

    shorthands: {name: formula} substituted into the student's formula before comparing.
    diagnoses: (formula, sentence) pairs, or callables expr -> sentence | None, consulted when the
    answer is wrong; the first that applies is added to the counterexample.
    mistakes: more known wrong formulas, used only at release (record_every_form)."""
    from d2lgrade.compare import equality, symbolic   # sympy loads on first use, not when graders are imported
    import sympy

    names = tuple(symbols or symbolic.DEFAULT_SYMBOLS) + tuple(shorthands or ())
    funcs = tuple(functions or symbolic.DEFAULT_FUNCTIONS)
    try:
        expr = symbolic.parse_answer(answer, symbols=names, functions=funcs)
    except symbolic.SymbolicAnswerError as exc:
        fail(f"{what}: {exc}")
    if shorthands:
        expr = expr.xreplace({sympy.Symbol(k, real=True): symbolic.parse_answer(v, max_length=10_000)
                              for k, v in shorthands.items()})
    sdomains = dict(domains)
    record_every_form(accepted, [*diagnoses, *((m, "") for m in mistakes)], sdomains, constraint, names, funcs,
                      shorthands)

    def compare(formula, budget=time_budget):
        return equality.compare_expressions(expr, formula, domains=sdomains, constraint=constraint,
                                            symbols=names, functions=funcs, time_budget=budget)

    outcomes = []
    for formula, note in accepted:
        outcome = compare(formula)
        if outcome.verdict == "equal":
            return note or outcome.message
        outcomes.append(outcome)
    different = [o for o in outcomes if o.verdict == "different"]
    if not different:
        raise CouldNotVerify(f"{what}: {outcomes[0].message}")
    why = ""
    for diagnosis in diagnoses:
        if callable(diagnosis):
            why = diagnosis(expr) or ""
        elif compare(diagnosis[0], budget=1.5).verdict == "equal":
            why = diagnosis[1]
        if why:
            break
    fail(f"{what} is not right: {different[0].message}" + (f" {why}" if why else ""))


def record_every_form(accepted, diagnoses, domains, constraint, names, functions, shorthands) -> None:
    """At release only: a right answer stops at the first accepted form, so record every reference formula here
    (each against itself), and each named mistake against each accepted form, so that in a kit a student who
    makes that mistake meets the course folder's counterexample."""
    from d2lgrade.values import expected
    if expected.mode() != "record":
        return
    from d2lgrade.compare import equality, symbolic
    import sympy
    forms = [f for f, _ in accepted] + [d[0] for d in diagnoses if not callable(d)]
    allowed = tuple(dict.fromkeys((*names, *domains)))
    for form in forms:
        if isinstance(form, expected.RecordingFormula):
            equality.compare_expressions(form, form, domains=domains, constraint=constraint, symbols=allowed,
                                         functions=functions, time_budget=60)
    for mistake in (d[0] for d in diagnoses if not callable(d)):
        wrong = symbolic.parse_answer(str(mistake), symbols=allowed, functions=functions, max_length=100_000)
        if shorthands:
            wrong = wrong.xreplace({sympy.Symbol(k, real=True): symbolic.parse_answer(v, max_length=10_000)
                                    for k, v in shorthands.items()})
        for form in (f for f, _ in accepted if isinstance(f, expected.RecordingFormula)):
            equality.compare_expressions(wrong, form, domains=domains, constraint=constraint, symbols=allowed,
                                         functions=functions, time_budget=60)
