"""Sample points where the fixed ones miss: in the gaps between the wide values, and at and around the places
where a formula's Max/Min/Abs/floor/ceiling/Piecewise terms change their rule.

A term such as Max(0, 7 - h)*Max(0, h - 5) is non-zero only between 5 and 7; if no fixed or random point
falls there, it passes. Its own breakpoints (h = 5, h = 7) say where to look. Gap points depend only on the
symbols, their domains and the seed, so a release records the expected values there (d2lgrade/compare/sampled);
breakpoints come from the formula being judged.
"""
from __future__ import annotations

import math
import random
from fractions import Fraction

import sympy

from d2lgrade.compare import symbolic as S

GAP_POINTS = 120        # points with coordinates drawn inside the gaps between fixed values
KINK_POINTS = 360       # at most this many points around breakpoints
KINK_BASES = 12         # points whose other coordinates a breakpoint is solved for
MAX_KINKS = 40          # (kink, symbol) pairs solved per formula
_STEP = Fraction(1, 16)  # how far beside a breakpoint of a real symbol to look


def _rng(source) -> random.Random:
    """Its own generator: the main sampling draws a number of points that depends on the formulas, and these
    points must not (a student kit replays the expected values recorded at them). Seeded by the symbols' names,
    never by a formula's text or the clock."""
    return random.Random(f"d2lgrade gaps {source.seed} {','.join(source.names)}")


def _allowed(source, i: int, v: Fraction) -> bool:
    """Whether the sampling could visit value v for symbol i: [lo, hi], and beyond it where the domain is wide."""
    domain, (lo, hi) = source.domains[i], source.bounds[i]
    if domain.kind == "int" and v.denominator != 1:
        return False
    if lo <= v <= hi:
        return True
    if not source.wide[i]:
        return False
    if domain.kind == "int":
        return v > hi or lo < 0
    return True


def _gaps(source, i: int) -> list[tuple[Fraction, Fraction]]:
    """Consecutive fixed values of symbol i with room between them, inside what the sampling may visit."""
    fixed = sorted({*source.bounds[i], *source.specials[i], *source.wide[i]})
    integer = source.domains[i].kind == "int"
    return [(u, v) for u, v in zip(fixed, fixed[1:])
            if (v - u > 1 if integer else v > u) and _allowed(source, i, u + 1 if integer else (u + v) / 2)]


def _inside(rng: random.Random, u: Fraction, v: Fraction, integer: bool) -> Fraction:
    if integer:
        return Fraction(rng.randint(int(u) + 1, int(v) - 1))
    den = rng.choice((2, 3, 4, 8, 16, 100, 997))
    return u + (v - u) * Fraction(rng.randint(1, den - 1), den)


def gap_points(source) -> list[S.Point]:
    """Points whose coordinates lie, each with probability 1/2, strictly between two consecutive fixed values."""
    rng = _rng(source)
    gaps = [_gaps(source, i) for i in range(len(source.names))]
    if not any(gaps):
        return []
    out = []
    for _ in range(GAP_POINTS):
        base = list(source.random_point(rng))
        for i, choices in enumerate(gaps):
            if choices and rng.random() < 0.5:
                u, v = rng.choice(choices)
                base[i] = _inside(rng, u, v, source.domains[i].kind == "int")
        out.append(tuple(base))
    return out


def _kinks(expr: sympy.Expr) -> list[tuple[sympy.Expr, bool]]:
    """(expression, integer crossings?) pairs: where the first is 0 (or, with the flag, an integer) a term of
    `expr` changes its rule."""
    found = []
    for node in sympy.preorder_traversal(expr):
        if isinstance(node, (sympy.Max, sympy.Min)):
            args = node.args[:6]
            found += [(a - b, False) for k, a in enumerate(args) for b in args[k + 1:]]
        elif isinstance(node, (sympy.Abs, sympy.sign, sympy.Heaviside)):
            found.append((node.args[0], False))
        elif isinstance(node, (sympy.floor, sympy.ceiling)):
            found.append((node.args[0], True))
        elif isinstance(node, sympy.core.relational.Relational):
            found.append((node.lhs - node.rhs, False))
    return list(dict.fromkeys(found))


def _roots(expr: sympy.Expr, names: list[str]):
    """[(index of a symbol, evaluator of its breakpoint given the others and the level m, evaluator of the kink's
    expression, integer crossings?)] for each kink that is linear in that symbol."""
    level = sympy.Symbol("_m", real=True)
    out = []
    for kink, integer in _kinks(expr):
        for symbol in sorted(kink.free_symbols, key=lambda s: s.name):
            if symbol.name not in names or len(out) >= MAX_KINKS:
                continue
            try:
                poly = sympy.Poly(kink - level, symbol)
            except sympy.PolynomialError:
                continue
            if poly.degree() != 1:
                continue
            slope, offset = poly.all_coeffs()
            out.append((names.index(symbol.name), S.Evaluator(-offset / slope), S.Evaluator(kink), integer))
    return out


def _near(value: Fraction, integer: bool) -> list[Fraction]:
    if integer:
        low = Fraction(math.floor(value))
        return [low - 1, low, low + 1, low + 2] if value.denominator != 1 else [value - 1, value, value + 1]
    return [value - _STEP, value, value + _STEP]


def kink_points(source, exprs, deadline) -> list[S.Point]:
    """Points at and beside the breakpoints of `exprs`' piecewise terms, and midway between neighbouring ones,
    solved for one symbol at a time with the others at a few fixed and random points."""
    roots = [r for e in exprs for r in _roots(e, source.names)]
    if not roots:
        return []
    rng = _rng(source)
    bases = source.structured_points()[:KINK_BASES // 2]
    bases += [source.random_point(rng) for _ in range(KINK_BASES - len(bases))]
    out: list[S.Point] = []
    for base in bases:
        env = dict(zip(source.names, base))
        per_symbol: dict[int, set[Fraction]] = {}
        for i, root, kink, integer in roots:
            deadline.check()
            try:
                levels = [Fraction(0)]
                if integer:
                    at = kink(env)
                    if not isinstance(at, Fraction):
                        continue
                    levels = [Fraction(math.floor(at) + k) for k in (-1, 0, 1, 2)]
                for m in levels:
                    value = root({**env, "_m": m})
                    if isinstance(value, Fraction):
                        per_symbol.setdefault(i, set()).add(value)
            except (S.Undefined, S.Skip, ArithmeticError, TypeError):
                continue
        for i, values in sorted(per_symbol.items()):
            ordered = sorted(values)
            candidates = {c for v in ordered for c in _near(v, source.domains[i].kind == "int")}
            candidates |= {(a + b) / 2 for a, b in zip(ordered, ordered[1:])}
            if source.domains[i].kind == "int":   # midway between two whole breakpoints may be a half
                candidates |= {Fraction(math.floor(c)) for c in list(candidates)}
            for c in sorted(candidates):
                if _allowed(source, i, c) and len(out) < KINK_POINTS:
                    out.append(base[:i] + (c,) + base[i + 1:])
    return list(dict.fromkeys(out))
