"""Formulas known by their values: how a student kit compares a formula without holding the expected one.

At release (d2lgrade/values/expected.RecordingFormula) the comparison writes down the expected formula's exact value
at every point it evaluates, keyed by the values of the formula's own symbols; a self-comparison adds every
point the sampling would visit, and the simplest points a counterexample shrinks to. In a kit
(d2lgrade/values/expected.RecordedFormula) the same sampling reads those values back: the points are the same (they
depend on the symbols, the domains and the seed, not on the formula's text), so a wrong formula meets the
same counterexample; only the proof is missing, and the message says so.
"""
from __future__ import annotations

import math
from fractions import Fraction

from d2lgrade.core import recording
from d2lgrade.compare import breakpoints
from d2lgrade.compare import comparison as C
from d2lgrade.compare import symbolic as S

SHRINK_FROM = 60   # the first sample points whose one-coordinate simplifications are recorded too


def _key(env, names) -> str:
    return ",".join(str(Fraction(env[n])) for n in names)


class RecordingEvaluator:
    """The expected formula's evaluator, writing down each value it computes (by the formula's own symbols)."""

    def __init__(self, inner, names: list[str], seen: dict):
        self.inner, self.names, self.seen = inner, names, seen
        self.visited: list | None = None      # every env asked for, while the release samples

    def __call__(self, env):
        if self.visited is not None:
            self.visited.append(dict(env))
        key = _key(env, self.names)
        try:
            value = self.inner(env)
        except S.Undefined:
            self.seen[key] = "undefined"
            raise
        except S.Skip:
            self.seen[key] = "skip"
            raise
        self.seen[key] = recording.encode(value)
        return value


class ReplayedEvaluator:
    """Answers from a recording; a point the release never evaluated cannot be used (it is skipped)."""

    def __init__(self, formula):
        self.names, self.points = formula.names, formula.points

    def __call__(self, env):
        data = self.points.get(_key(env, self.names))
        if data is None:
            raise S.Skip("not recorded")
        if data == "undefined":
            raise S.Undefined("recorded as undefined")
        if data == "skip":
            raise S.Skip("recorded as not evaluable")
        return recording.decode(data)


def expected_names(expected_expr) -> list[str]:
    return sorted(s.name for s in expected_expr.free_symbols)


def record_points(expected_expr, domains, constraint, samples: int, seed: int, seen: dict) -> None:
    """Evaluate the expected formula at every point a comparison could visit, writing each value into `seen`:
    over its own symbols, and over its symbols plus any one other declared symbol (a student's formula that
    uses one symbol too many is sampled over both, as in the course folder)."""
    names = expected_names(expected_expr)
    evaluator = RecordingEvaluator(S.Evaluator(expected_expr), names, seen)
    deadline = C._Deadline(300.0)
    with deadline:
        for extra in [()] + [(n,) for n in sorted(domains) if n not in names]:
            union = sorted({*names, *extra})
            source = S.PointSource(union, [domains.get(n, S.DEFAULT_DOMAIN) for n in union], seed)
            evaluator.visited = []
            found = C._sample(evaluator, evaluator, source, constraint, samples, deadline)
            if not extra:
                seen["#sampled"] = found.checked   # how many valid points the sampling finds (few in a small domain)
            starts = list(dict.fromkeys(tuple(env[n] for n in union) for env in evaluator.visited))[:SHRINK_FROM]
            evaluator.visited = None
            # Its own breakpoints too (not counted above: a right answer without them never visits them), so that a
            # kit evaluates a right answer written with the same Max/floor terms there.
            kinks = breakpoints.kink_points(source, [expected_expr], deadline) if source.space is None or \
                source.space > samples else []
            for point in _shrink_candidates(source, starts) + kinks:
                try:
                    if constraint is None or constraint(C._named(union, point)):
                        evaluator(dict(zip(union, point)))
                except (S.Undefined, S.Skip, ArithmeticError):
                    pass


def _shrink_candidates(source, starts) -> list:
    """Where a counterexample found at one of `starts` can shrink to: the simplest grid, and every
    one-coordinate simplification."""
    candidates = []
    simplest = [sp[:4] for sp in source.specials]
    if math.prod(len(v) for v in simplest) <= 256:
        grid = [()]
        for values in simplest:
            grid = [p + (v,) for p in grid for v in values]
        candidates += grid
    for point in starts:
        for i in range(len(point)):
            candidates += [point[:i] + (v,) + point[i + 1:] for v in source.simpler_values(i, point[i])]
    return candidates


def compare_recorded(student, formula, domains, constraint, samples, seed, deadline, symbols, functions):
    """compare_expressions for a RecordedFormula: the same sampling, against recorded values."""
    if not formula.recorded:
        from d2lgrade.values.expected import NotRecorded
        raise NotRecorded(f"the formula `{formula.key}`")
    names = list(formula.names)
    allowed = C._merge(symbols, domains, names)
    student_expr = C._as_expression(student, allowed, functions, reference=False)
    extra = sorted({s.name for s in student_expr.free_symbols} - set(names))
    student_eval = S.Evaluator(student_expr)
    if len(extra) == 1 and extra[0] in domains:   # recorded over the union too (record_points): as in the course folder
        names, extra = sorted({*names, *extra}), []
    source = S.PointSource(names, [domains.get(n, S.DEFAULT_DOMAIN) for n in names], seed)
    if extra:   # more symbols the expected formula does not have: give them values of their domains in turn
        extra_source = S.PointSource(extra, [domains.get(n, S.DEFAULT_DOMAIN) for n in extra], seed)
        turn = [0]

        def student_eval(env, inner=student_eval):
            turn[0] += 1
            bound = {n: sp[turn[0] % len(sp)] for n, sp in zip(extra, extra_source.specials)}  # noqa: B023
            return inner({**env, **bound})
    found = C._sample(student_eval, ReplayedEvaluator(formula), source, constraint, samples, deadline,
                      kinks=[student_expr])
    if found.difference is not None:
        return C._different(names, *found.difference)
    if found.student_undefined is not None:
        point, expected_value = found.student_undefined
        return C.Comparison(
            "different",
            f"at {S.format_assignment(C._named(names, point))} your formula is undefined (it divides by zero) "
            f"but the correct value is {S.format_value(expected_value)}.",
            counterexample=C._named(names, point), student_value=None, expected_value=S.exact_number(expected_value))
    # The release's own sampling found this many valid points; a small domain (one integer symbol) has few.
    available = int(formula.points.get("#sampled", samples))
    if found.checked > 0 and found.checked >= min(samples, available):
        where = "every point of the (small) domain" if found.exhaustive else \
            "sampled points, book sizes and large and small values included"
        return C.Comparison("equal", f"your formula agrees with the expected values at {found.checked} {where} "
                                     "(the student kit checks samples, not a proof; the instructor's grading "
                                     "proves it).")
    return C.Comparison("unknown", f"the student kit could only check {C._points(found.checked, 'sample')}; "
                                   "the instructor's grading will decide.")
