"""Safe parsing and comparison of students' symbolic answers.

A student answers an exercise such as "output size of a pooling window" with a
string like ``floor((n - k)/s) + 1``.  That string is untrusted:
it is never given to ``eval``/``sympify``.  Instead :func:`parse_answer` walks
Python's ``ast`` with a whitelist and builds the sympy expression node by node.

:func:`compare_expressions` then decides whether the student's formula equals
the reference: it evaluates both *exactly* (fractions, not floats) at many
deterministic sample points, reports the simplest point where they differ, and
otherwise tries a symbolic proof.  Everything runs under a time budget so a
pathological formula can not hang the grader.
"""
from __future__ import annotations

import ast
import difflib
import io
import math
import random
import re
import signal
import threading
import time
import tokenize
import warnings
from dataclasses import dataclass
from fractions import Fraction
from typing import Callable, Iterable, Mapping

import sympy

__all__ = [
    "DEFAULT_SYMBOLS", "DEFAULT_FUNCTIONS", "SymbolicAnswerError", "Domain", "Comparison",
    "parse_answer", "compare_expressions", "format_assignment", "format_value",
]

DEFAULT_SYMBOLS: tuple[str, ...] = (
    "n_h", "n_w", "k_h", "k_w", "p_h", "p_w", "s_h", "s_w", "c_i", "c_o",
    "h", "w", "k", "k1", "k2", "d", "a", "b", "x", "t", "tau", "c",
)
DEFAULT_FUNCTIONS: tuple[str, ...] = ("relu", "floor", "ceiling", "Max", "Min", "Abs")

# Spellings students commonly use; an alias works only when its target is whitelisted.
_ALIASES = {"ceil": "ceiling", "max": "Max", "min": "Min", "abs": "Abs"}


def _relu(x: sympy.Expr) -> sympy.Expr:
    return sympy.Max(0, x)


# Every function a whitelist may name: builder, minimum and maximum number of arguments.
_FUNCTION_TABLE: dict[str, tuple[Callable[..., sympy.Expr], int, int | None]] = {
    "relu": (_relu, 1, 1),
    "floor": (sympy.floor, 1, 1),
    "ceiling": (sympy.ceiling, 1, 1),
    "Max": (sympy.Max, 1, None),
    "Min": (sympy.Min, 1, None),
    "Abs": (sympy.Abs, 1, 1),
    "sqrt": (sympy.sqrt, 1, 1),
    "exp": (sympy.exp, 1, 1),
    "log": (sympy.log, 1, 1),
}

MAX_EXPONENT = 64      # |numeric exponent| allowed in a formula; x**1000 is never a course answer
MAX_DEPTH = 50         # nesting levels (a flat a+b+c+... chain counts as one level)
MAX_BITS = 10_000      # largest exact number we are willing to compute, in bits
_SNIPPET_CHARS = 40    # how much of an offending piece of input a message quotes


class SymbolicAnswerError(ValueError):
    """The student's formula can not be accepted; ``str(e)`` is one sentence for the student."""


# --------------------------------------------------------------------------------------------
# Parsing
# --------------------------------------------------------------------------------------------

def parse_answer(text, *, symbols: Iterable[str] = DEFAULT_SYMBOLS,
                 functions: Iterable[str] = DEFAULT_FUNCTIONS, max_length: int = 500) -> sympy.Expr:
    """Turn an untrusted answer into a sympy expression without executing anything.

    ``text`` is a formula string; a plain int, float or Fraction is accepted too.
    Raises :class:`SymbolicAnswerError` with a one-sentence message on anything else.
    """
    if isinstance(text, bool) or text is None or not isinstance(text, (str, int, float, Fraction)):
        raise SymbolicAnswerError(
            f"the answer must be a formula written as text, not {type(text).__name__}.")
    if not isinstance(text, str):
        return _number(text, str(text))
    if len(text) > max_length:
        raise SymbolicAnswerError(
            f"the formula is too long ({len(text)} characters; at most {max_length} are allowed).")
    if not text.strip():
        raise SymbolicAnswerError("the answer is empty; write a formula such as `floor((n_h - k_h)/s_h) + 1`.")

    source = _carets_to_powers(text.strip())
    tree = _parse_python(source, text.strip())
    builder = _FormulaBuilder(source, tuple(symbols), tuple(functions))
    try:
        expr = builder.build(tree.body, depth=1)
    except SymbolicAnswerError:
        raise
    except RecursionError:
        raise SymbolicAnswerError(f"the formula is nested too deeply (more than {MAX_DEPTH} levels).") from None
    except Exception as exc:  # sympy refusing an odd but whitelisted combination
        raise SymbolicAnswerError(
            f"could not read the formula `{_shorten(text)}`: {_one_line(str(exc)) or type(exc).__name__}.") from None
    if not isinstance(expr, sympy.Expr) or expr.has(sympy.zoo, sympy.nan, sympy.oo, -sympy.oo):
        raise SymbolicAnswerError("the formula is undefined (it divides by zero).")
    return expr


def _carets_to_powers(source: str) -> str:
    """Treat ``^`` as power with the precedence of ``**``.

    Swapping the ``ast.BitXor`` node alone would be wrong: Python binds ``^``
    more loosely than ``+``, so ``x^2 + 1`` would become ``x**(2 + 1)``.  We
    rewrite the ``^`` *operator tokens* (never the inside of a string) so that
    the parser sees ``**`` and gives it the usual mathematical precedence.
    """
    if "^" not in source:
        return source
    try:
        lines = io.StringIO(source).readlines()  # same line splitting as tokenize
        tokens = list(tokenize.generate_tokens(io.StringIO(source).readline))
    except Exception:  # unbalanced brackets etc.: ast.parse will report the real problem
        return source
    line_starts = [0]
    for line in lines:
        line_starts.append(line_starts[-1] + len(line))
    carets = [line_starts[tok.start[0] - 1] + tok.start[1]
              for tok in tokens if tok.type == tokenize.OP and tok.string == "^"]
    for pos in reversed(carets):
        source = source[:pos] + "**" + source[pos + 1:]
    return source


def _parse_python(source: str, original: str) -> ast.Expression:
    try:
        with warnings.catch_warnings():  # e.g. "invalid escape sequence" in a string we reject anyway
            warnings.simplefilter("ignore")
            return ast.parse(source, mode="eval")
    except SyntaxError as exc:
        reason = _one_line(exc.msg or "invalid syntax").rstrip(".")
    except (ValueError, MemoryError, RecursionError) as exc:  # null bytes, parser stack overflow
        reason = _one_line(str(exc)).rstrip(".") or "the formula is too complicated"
    hint = ""
    if re.search(r"\d[A-Za-z_(]|\)\s*[A-Za-z_(\d]", original):
        hint = " (write `*` for multiplication, like `2*a`)"
    raise SymbolicAnswerError(f"could not read the formula `{_shorten(original)}`: {reason}{hint}.")


# What to call a forbidden construct in a message.
_FORBIDDEN_NODES: dict[type, str] = {
    ast.Attribute: "attribute access",
    ast.Subscript: "indexing with [...]",
    ast.Lambda: "a lambda",
    ast.ListComp: "a comprehension",
    ast.SetComp: "a comprehension",
    ast.DictComp: "a comprehension",
    ast.GeneratorExp: "a comprehension",
    ast.IfExp: "an if/else expression",
    ast.Compare: "a comparison",
    ast.BoolOp: "`and`/`or`",
    ast.List: "a list",
    ast.Tuple: "a list of several values",
    ast.Set: "a set",
    ast.Dict: "a dictionary",
    ast.NamedExpr: "an assignment",
    ast.JoinedStr: "text in quotes",
    ast.Starred: "unpacking with `*`",
    ast.Await: "`await`",
    ast.Yield: "`yield`",
    ast.YieldFrom: "`yield`",
}

_BINARY_OPS: dict[type, Callable[[sympy.Expr, sympy.Expr], sympy.Expr]] = {
    ast.Add: lambda x, y: x + y,
    ast.Sub: lambda x, y: x - y,
    ast.Mult: lambda x, y: x * y,
    ast.Div: lambda x, y: x / y,
    ast.FloorDiv: lambda x, y: sympy.floor(x / y),
}
# Operators of one "family": a left-leaning chain of them is flat, not nested.
_FAMILY = {ast.Add: "sum", ast.Sub: "sum", ast.Mult: "product", ast.Div: "product"}


class _FormulaBuilder:
    """Builds a sympy expression from a whitelisted subset of Python's ast."""

    def __init__(self, source: str, symbols: tuple[str, ...], functions: tuple[str, ...]):
        self.source = source
        self.symbol_names = symbols
        self.symbols = {name: sympy.Symbol(name, real=True) for name in symbols}
        unknown = [f for f in functions if f not in _FUNCTION_TABLE]
        if unknown:  # a grader bug, not the student's fault
            raise ValueError(f"no builder for whitelisted function(s) {unknown}; known: {sorted(_FUNCTION_TABLE)}")
        self.function_names = functions
        self.functions = {f: f for f in functions}
        for alias, target in _ALIASES.items():
            if target in self.functions:
                self.functions.setdefault(alias, target)

    # -- messages ---------------------------------------------------------------------------
    def _allowed(self) -> str:
        funcs = f" and the functions {', '.join(self.function_names)}" if self.function_names else ""
        return f"use only the symbols {', '.join(self.symbol_names)}{funcs}"

    def _reject(self, what: str) -> SymbolicAnswerError:
        return SymbolicAnswerError(f"{what} is not allowed in a formula; {self._allowed()}.")

    def _reject_name(self, name: str) -> SymbolicAnswerError:
        known = list(self.symbol_names) + list(self.functions)
        close = [k for k in known if k.lower() == name.lower()][:1]  # case slips: N_h, FLOOR
        if not close:
            close = difflib.get_close_matches(name, known, n=1)
        hint = f" (did you mean `{close[0]}`?)" if close else ""
        return self._reject(f"`{_shorten(name)}`{hint}")

    def _snippet(self, node: ast.AST) -> str:
        text = ast.get_source_segment(self.source, node)
        if text is None:
            try:
                text = ast.unparse(node)
            except Exception:
                text = type(node).__name__
        return _shorten(text)

    # -- the walk ---------------------------------------------------------------------------
    def build(self, node: ast.AST, depth: int) -> sympy.Expr:
        if depth > MAX_DEPTH:
            raise SymbolicAnswerError(f"the formula is nested too deeply (more than {MAX_DEPTH} levels).")
        if isinstance(node, ast.Constant):
            return self._constant(node)
        if isinstance(node, ast.Name):
            return self._name(node)
        if isinstance(node, ast.BinOp):
            return self._binop(node, depth)
        if isinstance(node, ast.UnaryOp):
            return self._unary(node, depth)
        if isinstance(node, ast.Call):
            return self._call(node, depth)
        if isinstance(node, (ast.Attribute, ast.Subscript)):
            # Name the root offender first: in __import__('os').system, that is __import__.
            self.build(node.value, depth + 1)
        what = _FORBIDDEN_NODES.get(type(node), "this construct")
        raise self._reject(f"{what} (`{self._snippet(node)}`)")

    def _constant(self, node: ast.Constant) -> sympy.Expr:
        value = node.value
        if isinstance(value, (str, bytes)):
            raise self._reject(f"text in quotes (`{self._snippet(node)}`)")
        if isinstance(value, complex):
            raise self._reject(f"the imaginary number `{self._snippet(node)}`")
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise self._reject(f"`{self._snippet(node)}`")
        return _number(value, self._snippet(node))

    def _name(self, node: ast.Name) -> sympy.Expr:
        if node.id in self.symbols:
            return self.symbols[node.id]
        if node.id in self.functions:
            raise SymbolicAnswerError(
                f"`{node.id}` is a function; write it with parentheses, like `{node.id}(...)`.")
        raise self._reject_name(node.id)

    def _binop(self, node: ast.BinOp, depth: int) -> sympy.Expr:
        op = type(node.op)
        same_family = (isinstance(node.left, ast.BinOp) and op in _FAMILY
                       and _FAMILY.get(type(node.left.op)) == _FAMILY[op])
        left = self.build(node.left, depth if same_family else depth + 1)
        right = self.build(node.right, depth + 1)
        if op in (ast.Pow, ast.BitXor):  # BitXor only if tokenizing failed; precedence then is Python's
            return self._power(left, right, node)
        if op in _BINARY_OPS:
            return _BINARY_OPS[op](left, right)
        symbol = {ast.Mod: "%", ast.MatMult: "@", ast.LShift: "<<", ast.RShift: ">>",
                  ast.BitOr: "|", ast.BitAnd: "&"}.get(op, type(node.op).__name__)
        raise self._reject(f"the `{symbol}` operator")

    def _power(self, base: sympy.Expr, exponent: sympy.Expr, node: ast.AST) -> sympy.Expr:
        # sympy computes numeric powers eagerly, so towers like 9**9**9 must be stopped *before*
        # sympy.Pow is called: cap the exponent and the size of the exact result.
        if exponent.is_Number:
            if abs(exponent) > MAX_EXPONENT:
                raise SymbolicAnswerError(
                    f"the exponent in `{self._snippet(node)}` is too large (at most {MAX_EXPONENT} is allowed).")
            if base.is_Rational and exponent.is_Rational and _power_bits(base, exponent) > MAX_BITS:
                raise SymbolicAnswerError(f"the number `{self._snippet(node)}` is too large.")
        return sympy.Pow(base, exponent)

    def _unary(self, node: ast.UnaryOp, depth: int) -> sympy.Expr:
        operand = self.build(node.operand, depth + 1)
        if isinstance(node.op, ast.USub):
            return -operand
        if isinstance(node.op, ast.UAdd):
            return operand
        raise self._reject(f"`{self._snippet(node)}`")

    def _call(self, node: ast.Call, depth: int) -> sympy.Expr:
        if not isinstance(node.func, ast.Name):
            # Report what is being called ((lambda: 1)(), a.b(), ...) rather than the call.
            self.build(node.func, depth + 1)
            raise self._reject(f"calling `{self._snippet(node.func)}`")
        name = node.func.id
        if name not in self.functions:
            if name in self.symbols:
                raise SymbolicAnswerError(
                    f"`{name}` is a symbol, not a function, so `{self._snippet(node)}` is not allowed; "
                    f"write `{name}*(...)` to multiply.")
            raise self._reject_name(name)
        if node.keywords:
            raise self._reject(f"a keyword argument (`{self._snippet(node)}`)")
        canonical = self.functions[name]
        builder, min_args, max_args = _FUNCTION_TABLE[canonical]
        if len(node.args) < min_args or (max_args is not None and len(node.args) > max_args):
            wanted = (f"exactly {min_args} argument{'s' if min_args > 1 else ''}" if min_args == max_args
                      else f"at least {min_args} argument{'s' if min_args > 1 else ''}")
            raise SymbolicAnswerError(f"`{name}` takes {wanted}, but `{self._snippet(node)}` has {len(node.args)}.")
        args = [self.build(arg, depth + 1) for arg in node.args]
        return builder(*args)


def _number(value, shown: str) -> sympy.Expr:
    """An exact sympy number; floats go through their shortest repr so 0.1 == 1/10."""
    if isinstance(value, float):
        if not math.isfinite(value):
            raise SymbolicAnswerError(f"the number `{_shorten(shown)}` is too large.")
        return sympy.Rational(repr(value))
    if isinstance(value, Fraction):
        return sympy.Rational(value.numerator, value.denominator)
    return sympy.Integer(value)


def _power_bits(base, exponent) -> float:
    """Rough size in bits of base**exponent for a rational (Fraction or sympy) base."""
    if isinstance(base, Fraction):
        p, q = base.numerator, base.denominator
    else:
        p, q = int(base.p), int(base.q)
    if q == 1 and abs(p) <= 1:
        return 0
    if abs(exponent) > MAX_BITS:  # every non-trivial base has >= 2 bits; avoids float overflow
        return math.inf
    return max(p.bit_length(), q.bit_length()) * abs(float(exponent))


def _one_line(text: str) -> str:
    text = "".join(ch if ch.isprintable() or ch.isspace() else "?" for ch in str(text))
    return " ".join(text.split())


def _shorten(text: str) -> str:
    text = _one_line(text)
    return text if len(text) <= _SNIPPET_CHARS else text[:_SNIPPET_CHARS - 3] + "..."


# --------------------------------------------------------------------------------------------
# Exact evaluation at a point
# --------------------------------------------------------------------------------------------

class _NotRational(Exception):
    """The value leaves the rationals (sqrt(2), pi, floats...): use the sympy evaluator."""


class _Undefined(Exception):
    """The expression has no value at this point (division by zero, log(0), ...)."""


class _Skip(Exception):
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
        raise _Skip("too large")
    return base ** int(exponent)  # 0 ** negative raises ZeroDivisionError -> undefined


def _first_branch(branches, env):
    for value, condition in branches:
        if condition(env):
            return value(env)
    raise _Undefined("no Piecewise branch applies")


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
                raise _Skip("undecidable condition")
        raise _Undefined("no Piecewise branch applies")
    args = [_sympy_value(arg, env) for arg in expr.args]
    if isinstance(expr, sympy.Pow):
        base, exponent = args
        if base.is_Rational and exponent.is_Rational and _power_bits(base, exponent) > MAX_BITS:
            raise _Skip("too large")
        if exponent.is_Number and abs(exponent) > 1000:
            raise _Skip("too large")
    return expr.func(*args)


class _Evaluator:
    """Exact value of one expression at sample points."""

    def __init__(self, expr: sympy.Expr):
        self.expr = expr
        try:
            self.fast: Callable[[Env], object] | None = _compile(expr)
        except _NotRational:
            self.fast = None

    def __call__(self, point: Env):
        """Return a Fraction or an exact sympy number; raise _Undefined or _Skip."""
        if self.fast is not None:
            try:
                return self.fast(point)
            except ZeroDivisionError:
                raise _Undefined("division by zero") from None
            except _NotRational:
                pass
        env = {name: sympy.Rational(v.numerator, v.denominator) for name, v in point.items()}
        try:
            value = _sympy_value(self.expr, env)
        except (TypeError, ValueError, ArithmeticError, AttributeError) as exc:
            raise _Skip(str(exc)) from None
        if value.has(sympy.zoo, sympy.nan, sympy.oo, -sympy.oo) or value.is_finite is False:
            raise _Undefined("not finite")
        if not value.is_number:
            raise _Skip("no numeric value")
        return value


def _to_sympy(value) -> sympy.Basic:
    if isinstance(value, Fraction):
        return sympy.Rational(value.numerator, value.denominator)
    return value


def _agree(student, expected) -> bool:
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
        raise _Skip(f"can not compare: {exc}") from None


# --------------------------------------------------------------------------------------------
# Sample points
# --------------------------------------------------------------------------------------------

@dataclass
class Domain:
    """How to sample one symbol: integers or rationals in [low, high], and, unless `wide` is False, also
    book sizes and large and small magnitudes beyond it (a term that vanishes on [low, high] but not
    on the sizes the formula is for must be caught)."""
    kind: str   # "int" or "real"
    low: float
    high: float
    wide: bool = True

    def wide_values(self) -> list[Fraction]:
        """Values outside [low, high] (or, for reals, tiny ones inside it) that sampling also tries."""
        if not self.wide:
            return []
        lo, hi = self.bounds()
        if self.kind == "int":
            out = [Fraction(v) for v in WIDE_INTS if v > hi]
            out += [Fraction(-v) for v in WIDE_INTS if lo < 0 and -v < lo]
        else:
            out = [Fraction(v) for v in WIDE_REALS if v > hi or (0 < v < 1 and lo <= v <= hi)]
            out += [Fraction(-v) for v in WIDE_REALS if -v < lo or (0 < v < 1 and lo <= -v <= hi)]
        return out

    def __post_init__(self):
        if self.kind not in ("int", "real"):
            raise ValueError(f"Domain kind must be 'int' or 'real', not {self.kind!r}")
        if self.bounds()[0] > self.bounds()[1]:
            raise ValueError(f"empty domain {self}")

    def bounds(self) -> tuple[Fraction, Fraction]:
        lo, hi = Fraction(str(self.low)), Fraction(str(self.high))
        if self.kind == "int":
            return Fraction(math.ceil(lo)), Fraction(math.floor(hi))
        return lo, hi


# The book's image sizes (Fashion-MNIST 28, CIFAR 32, 96 and ImageNet's 224/227), then large ones.
WIDE_INTS = (13, 25, 28, 32, 64, 96, 100, 224, 227, 1000, 4096, 10**6)
WIDE_REALS = (Fraction(1, 10**6), Fraction(1, 1000), 25, 100, 1000, 10**6)
DEFAULT_DOMAIN = Domain("int", 1, 12)

Point = tuple[Fraction, ...]


def _value_key(v: Fraction) -> tuple:
    """Simpler first: integers, small magnitude, positive."""
    return (v.denominator != 1, abs(v), v < 0, v)


def _point_key(point: Point) -> tuple:
    return (sum(v.denominator != 1 for v in point), sum(abs(v) for v in point),
            sum(v < 0 for v in point), tuple(sorted((abs(v) for v in point), reverse=True)), point)


def _special_values(domain: Domain, lo: Fraction, hi: Fraction) -> list[Fraction]:
    """Values where formulas typically go wrong: 0, +-1, +-1/2, the ends of the domain."""
    wanted = [0, 1, -1, 2, -2, lo, hi, lo + 1]
    if domain.kind == "real":
        wanted += [Fraction(1, 2), Fraction(-1, 2)]
    return sorted({Fraction(v) for v in wanted if lo <= v <= hi}, key=_value_key)


class _PointSource:
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
        return sorted(points, key=_point_key)

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
        return sorted(out, key=_point_key)

    def simpler_values(self, index: int, current: Fraction) -> list[Fraction]:
        """Candidate replacements for one coordinate when shrinking a counterexample."""
        lo, hi = self.bounds[index]
        bound = min(int(abs(current)) + 1, 24)
        values = set(self.specials[index])
        values.update(Fraction(v) for v in range(-bound, bound + 1) if lo <= v <= hi)
        key = _value_key(current)
        return sorted((v for v in values if _value_key(v) < key), key=_value_key)


# --------------------------------------------------------------------------------------------
# Time budget
# --------------------------------------------------------------------------------------------

class _BudgetExceeded(BaseException):
    """Raised when the time budget is spent; a BaseException so sympy's `except Exception` can't eat it."""


class _Deadline:
    """A wall-clock budget, enforced by SIGALRM in the main thread and by explicit checks everywhere."""

    def __init__(self, seconds: float):
        self.seconds = seconds
        self.start = time.monotonic()
        self.end = self.start + seconds
        self.uses_signal = (threading.current_thread() is threading.main_thread()
                            and hasattr(signal, "setitimer"))
        self._armed = False
        self._previous_handler = None
        self._previous_timer = (0.0, 0.0)

    def remaining(self) -> float:
        return self.end - time.monotonic()

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
                self._previous_handler = signal.signal(signal.SIGALRM, self._on_alarm)
            except ValueError:  # signals unavailable here (e.g. a sub-interpreter): checks only
                self.uses_signal = False
                return self
            self._armed = True
            self._previous_timer = signal.setitimer(signal.ITIMER_REAL, self.seconds)
        return self

    def __exit__(self, *exc_info) -> None:
        if not (self.uses_signal and self.seconds > 0):
            return
        try:
            self._armed = False
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
            previous = self._previous_handler
            signal.signal(signal.SIGALRM, previous if previous is not None else signal.SIG_DFL)
            delay, interval = self._previous_timer
            if delay > 0:  # someone else's alarm (e.g. pytest-timeout) keeps running
                elapsed = time.monotonic() - self.start
                signal.setitimer(signal.ITIMER_REAL, max(delay - elapsed, 1e-3), interval)


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
    from d2lgrade.compare import sampled
    from d2lgrade.expected import RecordedFormula, RecordingFormula
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
            expr = _as_expression(expected, _merge(symbols, domains), _merge(functions, _FUNCTION_TABLE), reference=True)
            sampled.record_points(expr, domains, constraint, samples, seed, seen)
            expected.record(sampled.expected_names(expr), seen)


PROVED = "proved: your formula is equivalent to the expected formula (sympy reduces their difference to 0)."


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
        raise ValueError(f"the reference formula `{_shorten(str(value))}` is invalid: {exc}") from None


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


def _compare(student, expected, domains, constraint, samples, seed, deadline: _Deadline,
             symbols: tuple[str, ...], functions: tuple[str, ...], seen: dict | None = None) -> Comparison:
    expected_expr = _as_expression(expected, _merge(symbols, domains), _merge(functions, _FUNCTION_TABLE),
                                   reference=True)
    allowed = _merge(symbols, domains, sorted(s.name for s in expected_expr.free_symbols))
    student_expr = _as_expression(student, allowed, functions, reference=False)

    if student_expr - expected_expr == 0:  # same canonical form: no sampling needed
        return Comparison("equal", PROVED)
    names = sorted({s.name for s in student_expr.free_symbols | expected_expr.free_symbols})
    source = _PointSource(names, [domains.get(n, DEFAULT_DOMAIN) for n in names], seed)
    expected_eval = _Evaluator(expected_expr)
    if seen is not None:
        from d2lgrade.compare.sampled import RecordingEvaluator, expected_names
        expected_eval = RecordingEvaluator(expected_eval, expected_names(expected_expr), seen)
    found = _sample(_Evaluator(student_expr), expected_eval, source, constraint, samples, deadline, kinks=[student_expr])

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
            counterexample=_named(names, point), student_value=None, expected_value=_plain(expected_value))
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


def _on_domain(difference: sympy.Expr, source: "_PointSource") -> tuple[sympy.Expr, str]:
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


def _sample(student: _Evaluator, expected: _Evaluator, source: _PointSource, constraint,
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
        except _Undefined:  # outside the reference formula's domain: not a valid point
            return "skip", None, None
        except _Skip:
            return "unevaluable", None, None
        try:
            s = student(env)
        except _Undefined:
            return "student-undefined", None, e
        except _Skip:
            return "unevaluable", None, None
        try:
            return ("agree" if _agree(s, e) else "differ"), s, e
        except _Skip:
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
        from d2lgrade.compare import breakpoints
        extra = [p for p in breakpoints.gap_points(source) + breakpoints.kink_points(source, kinks, deadline)
                 if p not in seen and not seen.add(p)]
        run(sorted(extra, key=_point_key))
    return found


def _points(count: int, what: str = "sample") -> str:
    return f"{count} {what} point{'' if count == 1 else 's'}"


def _shrink(point: Point, values: tuple, source: _PointSource, outcome, deadline: _Deadline) -> tuple:
    """Simplify a counterexample coordinate by coordinate while it stays a counterexample; first try
    the simplest points outright (a few symbols), since moving one coordinate at a time can get stuck."""
    best, (s_best, e_best) = point, values
    simplest = [sp[:4] for sp in source.specials]
    if math.prod(len(v) for v in simplest) <= 256:
        grid: list[Point] = [()]
        for vs in simplest:
            grid = [p + (v,) for p in grid for v in vs]
        for candidate in sorted(grid, key=_point_key):
            if _point_key(candidate) >= _point_key(best) or deadline.remaining() <= 0:
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
        counterexample=assignment, student_value=_plain(student_value), expected_value=_plain(expected_value))


def _named(names: list[str], point: Point) -> dict[str, object]:
    return {name: _plain(v) for name, v in zip(names, point)}


def _plain(value):
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
    value = _plain(value)
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
        return _shorten(str(value))


def format_assignment(point: Mapping) -> str:
    """``{"a": 0, "b": 1}`` -> ``"a=0, b=1"``."""
    return ", ".join(f"{name}={format_value(value)}" for name, value in point.items())
