"""Whether two formulas agree: both evaluated exactly at the sample points of their domains (symbolic.py draws
them; breakpoints.py adds the gaps between them and the breakpoints of Max, floor and the like), the simplest
point where they differ as the counterexample, else a sympy proof; all under a CPU-time budget, so that a
pathological formula cannot hang the grader."""
from __future__ import annotations

import math
import signal
import threading
import time
from dataclasses import dataclass
from typing import Iterable

import sympy

from d2lgrade.compare import breakpoints
from d2lgrade.compare.parse import SymbolicAnswerError, parse_answer, shorten
from d2lgrade.compare.symbolic import (Evaluator, Point, PointSource, Skip, Undefined, exact_number, format_assignment,
                                       format_value, point_key, values_agree)


# --------------------------------------------------------------------------------------------
# Time budget
# --------------------------------------------------------------------------------------------

class _BudgetExceeded(BaseException):
    """Raised when the time budget is spent; a BaseException so sympy's `except Exception` can't eat it."""


class _Deadline:
    """A budget of this process's CPU time, enforced by SIGPROF in the main thread and by explicit checks
    everywhere. CPU time, not wall time: whether a formula is proved or left to a person must not depend on how
    loaded the grader's machine is."""

    def __init__(self, seconds: float):
        self.seconds = seconds
        self.start = time.process_time()
        self.end = self.start + seconds
        self.uses_signal = (threading.current_thread() is threading.main_thread()
                            and hasattr(signal, "setitimer"))
        self._armed = False
        self._previous_handler = None
        self._previous_timer = (0.0, 0.0)

    def remaining(self) -> float:
        return self.end - time.process_time()

    def check(self) -> None:
        if self.remaining() <= 0:
            raise _BudgetExceeded()

    def _on_alarm(self, signum, frame):
        if self._armed:
            self._armed = False
            raise _BudgetExceeded()

    def __enter__(self) -> "_Deadline":
        if self.uses_signal and self.seconds > 0:
            try:
                self._previous_handler = signal.signal(signal.SIGPROF, self._on_alarm)
            except ValueError:  # signals unavailable here (e.g. a sub-interpreter): checks only
                self.uses_signal = False
                return self
            self._armed = True
            self._previous_timer = signal.setitimer(signal.ITIMER_PROF, self.seconds)
        return self

    def __exit__(self, *exc_info) -> None:
        if not (self.uses_signal and self.seconds > 0):
            return
        try:
            self._armed = False
        finally:
            signal.setitimer(signal.ITIMER_PROF, 0)
            previous = self._previous_handler
            signal.signal(signal.SIGPROF, previous if previous is not None else signal.SIG_DFL)
            delay, interval = self._previous_timer
            if delay > 0:  # an enclosing CPU-time limit keeps running
                elapsed = time.process_time() - self.start
                signal.setitimer(signal.ITIMER_PROF, max(delay - elapsed, 1e-3), interval)


# --------------------------------------------------------------------------------------------
# Comparison
# --------------------------------------------------------------------------------------------

@dataclass
class Comparison:
    """The outcome of :func:`compare_expressions`.

    "equal": proven (the message says "proved"), or equal at every sampled point (at least ``samples``
    of them, book sizes and wide magnitudes included; or every point of a small domain declared with
    wide=False); the message then says how many points, never "proved"; "different": a concrete
    counterexample; "unknown": the time
    budget ran out or too few points could be evaluated, so a person should look.
    """
    verdict: str                 # "equal" | "different" | "unknown"
    message: str                 # one sentence for the student
    counterexample: dict[str, object] | None = None   # symbol -> value where they differ
    student_value: object | None = None
    expected_value: object | None = None


def _out_of_time(time_budget: float) -> Comparison:
    return Comparison("unknown", f"could not verify this formula within {time_budget:g} s; "
                                 f"an instructor will look at it.")


def _canonical(expr: sympy.Expr) -> sympy.Expr:
    """Same name -> same real Symbol, so a grader's plain Symbol('a') matches the student's `a`."""
    return expr.xreplace({s: sympy.Symbol(s.name, real=True) for s in expr.free_symbols
                          if isinstance(s, sympy.Symbol)})


def _as_expression(value, symbols, functions, *, reference: bool) -> sympy.Expr:
    if isinstance(value, sympy.Basic):
        if not isinstance(value, sympy.Expr):
            raise (TypeError if reference else SymbolicAnswerError)(
                f"expected a formula, not {type(value).__name__}")
        return _canonical(value)
    if not reference:
        return parse_answer(value, symbols=symbols, functions=functions)
    try:  # the reference is trusted not to be hostile, so long formulas are fine
        return parse_answer(value, symbols=symbols, functions=functions, max_length=100_000)
    except SymbolicAnswerError as exc:  # the grader's own formula is broken: not the student's fault
        raise ValueError(f"the reference formula `{shorten(str(value))}` is invalid: {exc}") from None


def _merge(*groups: Iterable[str]) -> tuple[str, ...]:
    out: list[str] = []
    for group in groups:
        out.extend(name for name in group if name not in out)
    return tuple(out)


@dataclass
class _Sampling:
    """What the sampling phase found."""
    checked: int = 0                       # valid points where both formulas agree
    exhaustive: bool = False               # every point of the domain was looked at
    unevaluable: int = 0                   # points skipped because their values were too large
    difference: tuple | None = None        # (point, student value, expected value)
    student_undefined: tuple | None = None  # (point, expected value)


def _on_domain(difference: sympy.Expr, source: "PointSource") -> tuple[sympy.Expr, str]:
    """`difference` with each symbol assumed to be what its domain samples (a whole number, positive or at least 0),
    and those assumptions in words; a proof under them is a proof for every value the comparison could visit.
    Max(b, 1) equals b for every b >= 1, which no proof over all reals can show."""
    replace, words = {}, []
    for name, domain, (lo, _), wide in zip(source.names, source.domains, source.bounds, source.wide):
        low = min([lo, *wide])
        facts = {"integer": True} if domain.kind == "int" else {}
        if low > 0:
            facts["positive"] = True
        elif low == 0:
            facts["nonnegative"] = True
        if not facts:
            continue
        replace[sympy.Symbol(name, real=True)] = sympy.Symbol(name, real=True, **facts)
        kind = "a whole number" if domain.kind == "int" else "a number"
        words.append(f"{name} {kind}" + (f" >= {format_value(low)}" if low >= 0 and domain.kind == "int" else
                                          " > 0" if low > 0 else " >= 0" if low == 0 else ""))
    return difference.xreplace(replace), ", ".join(words)


def _sample(student: Evaluator, expected: Evaluator, source: PointSource, constraint,
            samples: int, deadline: _Deadline, kinks=()) -> _Sampling:
    """Evaluate both formulas at the source's points until they differ; last, in the gaps between the fixed
    values and around the breakpoints of the piecewise terms of `kinks` (formulas)."""
    found = _Sampling()

    def outcome(point: Point):
        """('agree'|'differ'|'student-undefined'|'skip'|'unevaluable', student value, expected value)."""
        env = dict(zip(source.names, point))
        named = _named(source.names, point)
        try:
            if constraint is not None and not constraint(named):
                return "skip", None, None
        except ArithmeticError:  # e.g. the constraint divides by a symbol that is 0 here
            return "skip", None, None
        try:
            e = expected(env)
        except Undefined:  # outside the reference formula's domain: not a valid point
            return "skip", None, None
        except Skip:
            return "unevaluable", None, None
        try:
            s = student(env)
        except Undefined:
            return "student-undefined", None, e
        except Skip:
            return "unevaluable", None, None
        try:
            return ("agree" if values_agree(s, e) else "differ"), s, e
        except Skip:
            return "unevaluable", None, None

    def run(points: list[Point]) -> bool:
        """Evaluate points in order; True once a difference is found."""
        for point in points:
            deadline.check()
            kind, s, e = outcome(point)
            if kind == "agree":
                found.checked += 1
            elif kind == "differ":
                found.difference = _shrink(point, (s, e), source, outcome, deadline)
                return True
            elif kind == "student-undefined" and found.student_undefined is None:
                found.student_undefined = (point, e)
            elif kind == "unevaluable":
                found.unevaluable += 1
        return False

    # Small all-integer domains are checked completely: that is a proof on the domain.
    if source.space is not None and source.space <= samples:
        found.exhaustive = True
        run(source.all_points())
        return found
    seen: set[Point] = set()
    for round_ in range(10):  # later rounds make up for points the constraint rejected
        missing = samples - found.checked
        if missing <= 0 or (round_ >= 3 and found.checked == 0):  # nothing valid so far: hopeless
            break
        batch = source.batch(missing if round_ == 0 else 2 * missing, seen, first=round_ == 0)
        if not batch or run(batch):
            break
    if found.difference is None:
        # After the points above, never instead of them: a difference they find, and its message, stay as they were.
        extra = [p for p in breakpoints.gap_points(source) + breakpoints.kink_points(source, kinks, deadline)
                 if p not in seen and not seen.add(p)]
        run(sorted(extra, key=point_key))
    return found


def _points(count: int, what: str = "sample") -> str:
    return f"{count} {what} point{'' if count == 1 else 's'}"


def _shrink(point: Point, values: tuple, source: PointSource, outcome, deadline: _Deadline) -> tuple:
    """Simplify a counterexample coordinate by coordinate while it stays a counterexample; first try
    the simplest points outright (a few symbols), since moving one coordinate at a time can get stuck."""
    best, (s_best, e_best) = point, values
    simplest = [sp[:4] for sp in source.specials]
    if math.prod(len(v) for v in simplest) <= 256:
        grid: list[Point] = [()]
        for vs in simplest:
            grid = [p + (v,) for p in grid for v in vs]
        for candidate in sorted(grid, key=point_key):
            if point_key(candidate) >= point_key(best) or deadline.remaining() <= 0:
                break
            kind, s, e = outcome(candidate)
            if kind == "differ":
                best, s_best, e_best = candidate, s, e
                break
    for _ in range(4):
        improved = False
        for i in range(len(best)):
            for v in source.simpler_values(i, best[i]):
                if deadline.remaining() <= 0:
                    return best, s_best, e_best
                candidate = best[:i] + (v,) + best[i + 1:]
                kind, s, e = outcome(candidate)
                if kind == "differ":
                    best, s_best, e_best, improved = candidate, s, e, True
                    break
        if not improved:
            break
    return best, s_best, e_best


def _try_proof(difference: sympy.Expr, deadline: _Deadline) -> bool:
    """True when sympy proves ``difference == 0``; False when it can't (or runs out of time)."""
    if difference == 0:
        return True
    # Without SIGALRM a long simplify can not be interrupted, so only start it with time to spare.
    if not deadline.uses_signal and deadline.remaining() < deadline.seconds / 2:
        return False
    try:
        deadline.check()
        if sympy.simplify(difference) == 0:
            return True
        if difference.has(sympy.Max, sympy.Min, sympy.Abs, sympy.sign, sympy.Heaviside):
            deadline.check()
            # Max/relu/Abs become case distinctions that simplify can fold to 0.
            folded = sympy.piecewise_fold(difference.rewrite(sympy.Piecewise))
            if sympy.simplify(folded) == 0:
                return True
    except _BudgetExceeded:
        return False
    except Exception:  # sympy gave up on an odd expression: no proof, sampling decides
        return False
    return False


def _different(names: list[str], point: Point, student_value, expected_value) -> Comparison:
    assignment = _named(names, point)
    shown_student, shown_expected = format_value(student_value), format_value(expected_value)
    for digits in (7, 10, 15, 30):  # values that only differ past 4 significant digits
        if shown_student != shown_expected:
            break
        shown_student, shown_expected = format_value(student_value, digits), format_value(expected_value, digits)
    return Comparison(
        "different",
        f"at {format_assignment(assignment)} your formula gives {shown_student} "
        f"but the correct value is {shown_expected}.",
        counterexample=assignment, student_value=exact_number(student_value), expected_value=exact_number(expected_value))


def _named(names: list[str], point: Point) -> dict[str, object]:
    return {name: exact_number(v) for name, v in zip(names, point)}


