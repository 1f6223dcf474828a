"""Parsing students' symbolic answers safely.

A student answers an exercise such as "output size of a pooling window" with a
string like ``floor((n - k)/s) + 1``.  That string is untrusted:
it is never given to ``eval``/``sympify``.  Instead :func:`parse_answer` walks
Python's ``ast`` with a whitelist and builds the sympy expression node by node.
Evaluating it is symbolic.py; comparing two formulas is comparison.py and equality.py.
"""
from __future__ import annotations

import ast
import difflib
import io
import math
import re
import tokenize
import warnings
from fractions import Fraction
from typing import Callable, Iterable

import sympy

__all__ = ["DEFAULT_SYMBOLS", "DEFAULT_FUNCTIONS", "SymbolicAnswerError", "parse_answer"]

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
FUNCTION_TABLE: dict[str, tuple[Callable[..., sympy.Expr], int, int | None]] = {
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
            f"could not read the formula `{shorten(text)}`: {_one_line(str(exc)) or type(exc).__name__}.") from None
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
    raise SymbolicAnswerError(f"could not read the formula `{shorten(original)}`: {reason}{hint}.")


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
        unknown = [f for f in functions if f not in FUNCTION_TABLE]
        if unknown:  # a grader bug, not the student's fault
            raise ValueError(f"no builder for whitelisted function(s) {unknown}; known: {sorted(FUNCTION_TABLE)}")
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
        return self._reject(f"`{shorten(name)}`{hint}")

    def _snippet(self, node: ast.AST) -> str:
        text = ast.get_source_segment(self.source, node)
        if text is None:
            try:
                text = ast.unparse(node)
            except Exception:
                text = type(node).__name__
        return shorten(text)

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
        builder, min_args, max_args = FUNCTION_TABLE[canonical]
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
            raise SymbolicAnswerError(f"the number `{shorten(shown)}` is too large.")
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


def shorten(text: str) -> str:
    text = _one_line(text)
    return text if len(text) <= _SNIPPET_CHARS else text[:_SNIPPET_CHARS - 3] + "..."
