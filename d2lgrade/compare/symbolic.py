"""Safe parsing and comparison of students' symbolic answers.

A student answers an exercise such as "output size of a pooling window" with a
string like ``floor((n - k)/s) + 1``.  That string is untrusted:
it is never given to ``eval``/``sympify``.  Instead :func:`parse_answer` walks
Python's ``ast`` with a whitelist and builds the sympy expression node by node.

This module also evaluates a formula *exactly* (fractions, not floats), draws the
deterministic sample points of a domain, and formats values. Deciding whether two
formulas agree is compare/comparison.py (sampling, counterexamples, proofs under a
time budget) and compare/equality.py (`compare_expressions`, the entry point).
"""
from __future__ import annotations

import ast
import difflib
import io
import math
import random
import re
import tokenize
import warnings
from dataclasses import dataclass
from fractions import Fraction
from typing import Callable, Iterable, Mapping

import sympy

__all__ = [
    "DEFAULT_SYMBOLS", "DEFAULT_FUNCTIONS", "SymbolicAnswerError", "Domain",
    "parse_answer", "format_assignment", "format_value",
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
