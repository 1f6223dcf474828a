"""Exact evaluation of a parsed formula (fractions, not floats), the deterministic sample points of a
domain, and how values are shown. Parsing is parse.py, whose entry points this module also offers
(`symbolic.parse_answer`, the names graders and tests have always used); deciding whether two formulas agree
is comparison.py (sampling, counterexamples, proofs under a time budget) and equality.py (`compare_expressions`).
"""
from __future__ import annotations

import math
import random
from fractions import Fraction
from typing import Callable, Mapping

import sympy

from d2lgrade.compare.domain import DEFAULT_DOMAIN, WIDE_INTS, WIDE_REALS, Domain  # noqa: F401
from d2lgrade.compare.parse import (FUNCTION_TABLE, DEFAULT_FUNCTIONS, DEFAULT_SYMBOLS, MAX_BITS,  # noqa: F401
                                    SymbolicAnswerError, _one_line, _power_bits, shorten, parse_answer)

__all__ = ["DEFAULT_SYMBOLS", "DEFAULT_FUNCTIONS", "SymbolicAnswerError", "Domain", "parse_answer",
           "format_assignment", "format_value"]


# --------------------------------------------------------------------------------------------
# Exact evaluation at a point
# --------------------------------------------------------------------------------------------

class _NotRational(Exception):
    """The value leaves the rationals (sqrt(2), pi, floats...): use the sympy evaluator."""


class Undefined(Exception):
    """The expression has no value at this point (division by zero, log(0), ...)."""


class Skip(Exception):
    """The point can not be evaluated safely (astronomically large, undecidable): skip it."""


Env = Mapping[str, Fraction]

_RELATIONS = {"<": lambda x, y: x < y, "<=": lambda x, y: x <= y, ">": lambda x, y: x > y,
              ">=": lambda x, y: x >= y, "==": lambda x, y: x == y, "!=": lambda x, y: x != y}


def _compile(expr: sympy.Basic) -> Callable[[Env], object]:
    """Compile ``expr`` into a closure computing its exact value with ``Fraction``.

    This is ~100x faster than sympy's ``subs`` and still exact.  Raises _NotRational
    (at compile time or per point) for anything outside exact rational arithmetic.
    """
    if expr.is_Rational:
        const = Fraction(int(expr.p), int(expr.q))
        return lambda env: const
    if expr.is_Symbol:
        name = expr.name
        return lambda env: env[name]
    if expr is sympy.true or expr is sympy.false:
        flag = bool(expr)
        return lambda env: flag
    parts = [_compile(arg) for arg in expr.args] if not isinstance(expr, sympy.Piecewise) else []
    if isinstance(expr, sympy.Add):
        return lambda env: sum(part(env) for part in parts)
    if isinstance(expr, sympy.Mul):
        return lambda env: math.prod(part(env) for part in parts)
    if isinstance(expr, sympy.Pow):
        base, exponent = parts
        return lambda env: _rational_power(base(env), exponent(env))
    simple = _SIMPLE_FUNCTIONS.get(type(expr))
    if simple is not None:
        return lambda env: simple(*(part(env) for part in parts))
    if isinstance(expr, sympy.core.relational.Relational) and expr.rel_op in _RELATIONS:
        relation, (lhs, rhs) = _RELATIONS[expr.rel_op], parts
        return lambda env: relation(lhs(env), rhs(env))
    if isinstance(expr, sympy.Piecewise):
        branches = [(_compile(e), _compile(c)) for e, c in expr.args]
        return lambda env: _first_branch(branches, env)
    raise _NotRational(type(expr).__name__)


def _rational_power(base: Fraction, exponent: Fraction) -> Fraction:
    if exponent.denominator != 1:
        raise _NotRational("fractional power")
    if _power_bits(base, exponent) > MAX_BITS:
        raise Skip("too large")
    return base ** int(exponent)  # 0 ** negative raises ZeroDivisionError -> undefined


def _first_branch(branches, env):
    for value, condition in branches:
        if condition(env):
            return value(env)
    raise Undefined("no Piecewise branch applies")


def _mod(x: Fraction, y: Fraction) -> Fraction:
    return x % y  # Python's % has sympy's sign convention; y == 0 raises ZeroDivisionError


_SIMPLE_FUNCTIONS: dict[type, Callable[..., object]] = {
    sympy.Max: max,
    sympy.Min: min,
    sympy.Abs: abs,
    sympy.floor: lambda v: Fraction(math.floor(v)),
    sympy.ceiling: lambda v: Fraction(math.ceil(v)),
    sympy.sign: lambda v: Fraction((v > 0) - (v < 0)),
    sympy.Mod: _mod,
    sympy.And: lambda *vs: all(vs),
    sympy.Or: lambda *vs: any(vs),
    sympy.Not: lambda v: not v,
}


def _sympy_value(expr: sympy.Basic, env: Mapping[str, sympy.Rational]) -> sympy.Basic:
    """Exact value of ``expr`` with sympy, bottom-up, so that huge powers are caught first."""
    if expr.is_Symbol:
        return env[expr.name]
    if expr.is_Atom:
        return expr
    if isinstance(expr, sympy.Piecewise):
        for value, condition in expr.args:
            decided = _sympy_value(condition, env)
            if decided is sympy.true:
                return _sympy_value(value, env)
            if decided is not sympy.false:
                raise Skip("undecidable condition")
        raise Undefined("no Piecewise branch applies")
    args = [_sympy_value(arg, env) for arg in expr.args]
    if isinstance(expr, sympy.Pow):
        base, exponent = args
        if base.is_Rational and exponent.is_Rational and _power_bits(base, exponent) > MAX_BITS:
            raise Skip("too large")
        if exponent.is_Number and abs(exponent) > 1000:
            raise Skip("too large")
    return expr.func(*args)


class Evaluator:
    """Exact value of one expression at sample points."""

    def __init__(self, expr: sympy.Expr):
        self.expr = expr
        try:
            self.fast: Callable[[Env], object] | None = _compile(expr)
        except _NotRational:
            self.fast = None

    def __call__(self, point: Env):
        """Return a Fraction or an exact sympy number; raise Undefined or Skip."""
        if self.fast is not None:
            try:
                return self.fast(point)
            except ZeroDivisionError:
                raise Undefined("division by zero") from None
            except _NotRational:
                pass
        env = {name: sympy.Rational(v.numerator, v.denominator) for name, v in point.items()}
        try:
            value = _sympy_value(self.expr, env)
        except (TypeError, ValueError, ArithmeticError, AttributeError) as exc:
            raise Skip(str(exc)) from None
        if value.has(sympy.zoo, sympy.nan, sympy.oo, -sympy.oo) or value.is_finite is False:
            raise Undefined("not finite")
        if not value.is_number:
            raise Skip("no numeric value")
        return value


def _to_sympy(value) -> sympy.Basic:
    if isinstance(value, Fraction):
        return sympy.Rational(value.numerator, value.denominator)
    return value


def values_agree(student, expected) -> bool:
    """Exact equality for rationals; 1e-9 relative tolerance once floats or irrationals appear."""
    if isinstance(student, Fraction) and isinstance(expected, Fraction):
        return student == expected
    s, e = _to_sympy(student), _to_sympy(expected)
    if s.is_Rational and e.is_Rational:
        return s == e
    try:
        sn, en = sympy.N(s, 30), sympy.N(e, 30)
        close = abs(sn - en) <= sympy.Float("1e-9") * sympy.Max(1, abs(sn), abs(en))
        return bool(close)
    except (TypeError, ValueError, ArithmeticError) as exc:
        raise Skip(f"can not compare: {exc}") from None


# --------------------------------------------------------------------------------------------
# Sample points
# --------------------------------------------------------------------------------------------


Point = tuple[Fraction, ...]


def _value_key(v: Fraction) -> tuple:
    """Simpler first: integers, small magnitude, positive."""
    return (v.denominator != 1, abs(v), v < 0, v)


def point_key(point: Point) -> tuple:
    return (sum(v.denominator != 1 for v in point), sum(abs(v) for v in point),
            sum(v < 0 for v in point), tuple(sorted((abs(v) for v in point), reverse=True)), point)


def _special_values(domain: Domain, lo: Fraction, hi: Fraction) -> list[Fraction]:
    """Values where formulas typically go wrong: 0, +-1, +-1/2, the ends of the domain."""
    wanted = [0, 1, -1, 2, -2, lo, hi, lo + 1]
    if domain.kind == "real":
        wanted += [Fraction(1, 2), Fraction(-1, 2)]
    return sorted({Fraction(v) for v in wanted if lo <= v <= hi}, key=_value_key)


class PointSource:
    """Deterministic sample points for the symbols ``names``."""

    def __init__(self, names: list[str], domains: list[Domain], seed: int):
        self.names, self.domains, self.seed = names, domains, seed
        self.rng = random.Random(seed)
        self.bounds = [d.bounds() for d in domains]  # cached: Fraction(str(...)) is slow
        self.specials = [_special_values(d, lo, hi) for d, (lo, hi) in zip(domains, self.bounds)]
        self.wide = [d.wide_values() for d in domains]
        self.space: int | None = None  # number of points when every symbol is a narrow integer
        if all(d.kind == "int" for d in domains) and not any(self.wide):
            self.space = math.prod(int(hi - lo) + 1 for lo, hi in self.bounds)

    def all_points(self) -> list[Point]:
        """Every point of a small all-integer domain, simplest first."""
        ranges = [[Fraction(v) for v in range(int(lo), int(hi) + 1)] for lo, hi in self.bounds]
        points: list[Point] = [()]
        for values in ranges:
            points = [p + (v,) for p in points for v in values]
        return sorted(points, key=point_key)

    def structured_points(self) -> list[Point]:
        """All symbols equal to one special value (catches a=b ties and the all-zero point)."""
        values = sorted({v for vs in self.specials for v in vs}, key=_value_key)
        points = [tuple(v if v in sp else sp[0] for sp in self.specials) for v in values]
        points.append(tuple(lo for lo, _ in self.bounds))
        points.append(tuple(hi for _, hi in self.bounds))
        # every symbol at one wide value (28, 224, 10**6, ...) where it has one, else at its upper end
        values = sorted({v for vs in self.wide for v in vs}, key=_value_key)
        points += [tuple(v if v in wide else hi for wide, (_, hi) in zip(self.wide, self.bounds)) for v in values]
        return points

    def _random_value(self, index: int, rng: random.Random) -> Fraction:
        lo, hi = self.bounds[index]
        if self.domains[index].kind == "int":
            return Fraction(rng.randint(int(lo), int(hi)))
        # Mostly small denominators (readable messages); some large ones so that even a single
        # real symbol has far more than `samples` distinct values.
        den = rng.choice((1, 1, 2, 3, 4, 5, 8, 10)) if rng.random() < 0.7 else rng.randint(11, 997)
        return Fraction(rng.randint(math.ceil(lo * den), math.floor(hi * den)), den)

    def random_point(self, rng: random.Random | None = None) -> Point:
        rng = rng or self.rng
        values: list[Fraction] = []
        for i, (lo, hi) in enumerate(self.bounds):
            roll = rng.random()
            if self.wide[i] and rng.random() < 0.3:
                values.append(rng.choice(self.wide[i]))
                continue
            if roll < 0.25:
                values.append(rng.choice(self.specials[i]))
                continue
            if roll < 0.4 and values:  # the same value as another symbol: ties like a=b
                tie = rng.choice(values)
                if lo <= tie <= hi:
                    values.append(tie)
                    continue
            values.append(self._random_value(i, rng))
        return tuple(values)

    def batch(self, size: int, seen: set[Point], first: bool) -> list[Point]:
        """Up to ``size`` new distinct points, simplest first (so a counterexample is readable)."""
        out: list[Point] = []
        for p in self.structured_points() if first else []:
            if p not in seen and len(out) < size:
                seen.add(p)
                out.append(p)
        tries = 0
        while len(out) < size and tries < 20 * size:
            if self.space is not None and len(seen) >= self.space:
                break  # every point has been drawn already
            tries += 1
            p = self.random_point()
            if p not in seen:
                seen.add(p)
                out.append(p)
        return sorted(out, key=point_key)

    def simpler_values(self, index: int, current: Fraction) -> list[Fraction]:
        """Candidate replacements for one coordinate when shrinking a counterexample."""
        lo, hi = self.bounds[index]
        bound = min(int(abs(current)) + 1, 24)
        values = set(self.specials[index])
        values.update(Fraction(v) for v in range(-bound, bound + 1) if lo <= v <= hi)
        key = _value_key(current)
        return sorted((v for v in values if _value_key(v) < key), key=_value_key)


def exact_number(value):
    """int for integers, Fraction for other rationals, the exact sympy number otherwise."""
    if isinstance(value, sympy.Basic) and value.is_Rational:
        value = Fraction(int(value.p), int(value.q))
    if isinstance(value, Fraction) and value.denominator == 1:
        return int(value)
    return value


# --------------------------------------------------------------------------------------------
# Formatting
# --------------------------------------------------------------------------------------------

def format_value(value, digits: int = 4) -> str:
    """An int as is, a short fraction as p/q, anything else to ``digits`` significant digits."""
    value = exact_number(value)
    if isinstance(value, int):
        text = str(value)
        return text if len(text) <= 20 else _decimal(value, digits)
    if isinstance(value, Fraction) and abs(value.numerator) < 1000 and value.denominator < 1000:
        return f"{value.numerator}/{value.denominator}"
    return _decimal(value, digits)


def _decimal(value, digits: int) -> str:
    if digits <= 15:  # a float holds 15 significant digits exactly
        try:
            return f"{float(value):.{digits}g}"
        except (OverflowError, TypeError, ValueError):
            pass
    try:
        return _one_line(str(sympy.N(_to_sympy(value), digits)))
    except Exception:
        return shorten(str(value))


def format_assignment(point: Mapping) -> str:
    """``{"a": 0, "b": 1}`` -> ``"a=0, b=1"``."""
    return ", ".join(f"{name}={format_value(value)}" for name, value in point.items())
