"""Symbolic answers: parse an untrusted formula string through an AST whitelist, then compare it
with the reference by exact evaluation at sample points (a counterexample when they differ) and,
when every sample agrees, by a sympy proof within a time budget.

Nothing in the student's string is ever evaluated: the AST is walked and the sympy expression is
built node by node, so `__import__('os').system(...)`, lambdas and attribute access never run.
"""
from __future__ import annotations

import ast
import random
import signal
import threading
import time
from dataclasses import dataclass
from fractions import Fraction

import sympy

DEFAULT_SYMBOLS: tuple[str, ...] = ("n_h", "n_w", "k_h", "k_w", "p_h", "p_w", "s_h", "s_w", "c_i", "c_o", "h", "w",
                                    "k", "k1", "k2", "d", "a", "b", "x", "t", "tau", "c")
DEFAULT_FUNCTIONS: tuple[str, ...] = ("relu", "floor", "ceiling", "Max", "Min", "Abs")
ALIASES = {"ceil": "ceiling", "max": "Max", "min": "Min", "abs": "Abs"}
MAX_EXPONENT = 64
MAX_DEPTH = 50


class SymbolicAnswerError(ValueError):
    """The answer is not a formula we accept; str() is one sentence for the student."""


def _relu(x):
    return sympy.Max(0, x)


FUNCTIONS = {"relu": _relu, "floor": sympy.floor, "ceiling": sympy.ceiling, "Max": sympy.Max,
             "Min": sympy.Min, "Abs": sympy.Abs}


def parse_answer(text, *, symbols=DEFAULT_SYMBOLS, functions=DEFAULT_FUNCTIONS, max_length=500) -> sympy.Expr:
    if isinstance(text, bool) or text is None:
        raise SymbolicAnswerError(f"expected a formula string, got {text!r}.")
    if isinstance(text, int):
        return sympy.Integer(text)
    if isinstance(text, float):
        return sympy.nsimplify(text, rational=True)
    if not isinstance(text, str):
        raise SymbolicAnswerError(f"expected a formula string, got a {type(text).__name__}.")
    if not text.strip():
        raise SymbolicAnswerError("the formula is empty.")
    if len(text) > max_length:
        raise SymbolicAnswerError(f"the formula is {len(text)} characters long; the limit is {max_length}.")
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except SyntaxError as exc:
        raise SymbolicAnswerError(f"could not read the formula {text.strip()!r}: {exc.msg}.") from None
    return _Builder(symbols, functions).build(tree.body, 0)


class _Builder:
    def __init__(self, symbols, functions):
        self.symbols = {name: sympy.Symbol(name, real=True) for name in symbols}
        allowed = set(functions)
        self.functions = {name: FUNCTIONS[name] for name in allowed if name in FUNCTIONS}
        for alias, target in ALIASES.items():
            if target in allowed:
                self.functions[alias] = FUNCTIONS[target]
        self.allowed_text = (f"use only the symbols {', '.join(symbols)} and the functions "
                             f"{', '.join(sorted(allowed))}")

    def reject(self, what: str):
        raise SymbolicAnswerError(f"{what} is not allowed in a formula; {self.allowed_text}.")

    def build(self, node, depth):
        if depth > MAX_DEPTH:
            raise SymbolicAnswerError("the formula is nested too deeply.")
        if isinstance(node, ast.Constant):
            if isinstance(node.value, bool) or not isinstance(node.value, (int, float)):
                self.reject(f"the constant {node.value!r}")
            return sympy.Integer(node.value) if isinstance(node.value, int) else \
                sympy.Rational(Fraction(node.value).limit_denominator(10**6))
        if isinstance(node, ast.Name):
            if node.id not in self.symbols:
                self.reject(f"the name `{node.id}`")
            return self.symbols[node.id]
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.UAdd, ast.USub)):
            value = self.build(node.operand, depth + 1)
            return -value if isinstance(node.op, ast.USub) else value
        if isinstance(node, ast.BinOp):
            return self.binop(node, depth)
        if isinstance(node, ast.Call):
            name = node.func.id if isinstance(node.func, ast.Name) else None
            if name is None or name not in self.functions:
                self.reject(f"calling `{ast.unparse(node.func)}`")
            if node.keywords:
                self.reject("a keyword argument")
            if not node.args or any(isinstance(a, ast.Starred) for a in node.args):
                self.reject(f"`{name}` without plain arguments")
            return self.functions[name](*[self.build(a, depth + 1) for a in node.args])
        self.reject(_describe(node))

    def binop(self, node, depth):
        left, right = self.build(node.left, depth + 1), self.build(node.right, depth + 1)
        op = node.op
        if isinstance(op, ast.Add):
            return left + right
        if isinstance(op, ast.Sub):
            return left - right
        if isinstance(op, ast.Mult):
            return left * right
        if isinstance(op, ast.Div):
            return left / right
        if isinstance(op, ast.FloorDiv):
            return sympy.floor(left / right)
        if isinstance(op, (ast.Pow, ast.BitXor)):   # `^` as power: students write x^2
            if right.is_number and abs(right) > MAX_EXPONENT:
                raise SymbolicAnswerError(f"the exponent {right} is too large (at most {MAX_EXPONENT}).")
            return left ** right
        self.reject(f"the operator `{type(op).__name__}`")


def _describe(node) -> str:
    names = {ast.Attribute: "attribute access", ast.Subscript: "indexing", ast.Lambda: "a lambda",
             ast.ListComp: "a comprehension", ast.GeneratorExp: "a comprehension", ast.SetComp: "a comprehension",
             ast.DictComp: "a comprehension", ast.IfExp: "a conditional expression", ast.Compare: "a comparison",
             ast.BoolOp: "a boolean operator", ast.List: "a list", ast.Tuple: "a tuple", ast.Dict: "a dict",
             ast.Set: "a set", ast.NamedExpr: "an assignment", ast.JoinedStr: "a string", ast.Await: "await"}
    return names.get(type(node), f"`{type(node).__name__}`")


@dataclass
class Domain:
    kind: str        # "int" | "real"
    low: float
    high: float


@dataclass
class Comparison:
    verdict: str                 # "equal" | "different" | "unknown"
    message: str
    counterexample: dict | None = None
    student_value: object | None = None
    expected_value: object | None = None


class _OutOfTime(Exception):
    pass


def compare_expressions(student, expected, *, domains: dict[str, Domain] | None = None, constraint=None,
                        samples: int = 400, seed: int = 0, time_budget: float = 3.0) -> Comparison:
    student = parse_answer(student) if not isinstance(student, sympy.Basic) else student
    expected = parse_answer(expected) if not isinstance(expected, sympy.Basic) else expected
    deadline = time.monotonic() + time_budget
    free = sorted((student.free_symbols | expected.free_symbols), key=lambda s: s.name)
    domains = domains or {}
    try:
        with _alarm(time_budget):
            checked, difference = _sample(student, expected, free, domains, constraint, samples, seed, deadline)
            if difference:
                point, got, want = difference
                return Comparison("different", f"at {format_assignment(point)} your formula gives {_show(got)} "
                                               f"but the correct value is {_show(want)}.", point, got, want)
            if checked == 0:
                return Comparison("unknown", "could not evaluate the formula at any valid point; "
                                             "an instructor will look at it.")
            if checked >= min(samples, 50) or _proved_equal(student, expected, deadline):
                return Comparison("equal", f"agrees with the expected formula at {checked} sample points.")
    except _OutOfTime:
        pass
    return Comparison("unknown", f"could not verify this formula within {time_budget:g} s; "
                                 "an instructor will look at it.")


def _points(free, domains, rng, samples):
    """Simple points first (readable counterexamples), then random ones."""
    def draw(sym, simple):
        d = domains.get(sym.name, Domain("int", 1, 12))
        if d.kind == "int":
            lo, hi = int(d.low), int(d.high)
            return sympy.Integer(rng.randint(lo, min(hi, lo + 3)) if simple else rng.randint(lo, hi))
        if simple:
            return sympy.Integer(rng.choice([v for v in (0, 1, -1, 2, -2) if d.low <= v <= d.high] or [int(d.low)]))
        return sympy.Rational(rng.randint(int(d.low * 8), int(d.high * 8)), 8)
    for i in range(samples):
        yield {s: draw(s, i < samples // 4) for s in free}


def _sample(student, expected, free, domains, constraint, samples, seed, deadline):
    rng = random.Random(seed)
    checked, differences = 0, []
    for point in _points(free, domains, rng, samples):
        if time.monotonic() > deadline:
            raise _OutOfTime
        if constraint and not constraint({s.name: int(v) if v.is_integer else float(v) for s, v in point.items()}):
            continue
        try:
            got, want = student.xreplace(point), expected.xreplace(point)
            if not (got.is_number and want.is_number) or got.has(sympy.zoo, sympy.nan) or want.has(sympy.zoo, sympy.nan):
                continue
            same = sympy.simplify(got - want) == 0 if (got.has(sympy.Float) or want.has(sympy.Float)) else got == want
        except (ZeroDivisionError, TypeError, ValueError):
            continue
        checked += 1
        if not same:
            differences.append(({s.name: v for s, v in point.items()}, got, want))
    if differences:
        # Whole numbers read best in a message, then the smallest ones.
        differences.sort(key=lambda d: (sum(not v.is_integer for v in d[0].values()), sum(abs(v) for v in d[0].values())))
        return checked, differences[0]
    return checked, None


def _proved_equal(student, expected, deadline) -> bool:
    if time.monotonic() > deadline:
        return False
    diff = sympy.simplify(student - expected)
    if diff == 0:
        return True
    return sympy.simplify(sympy.piecewise_fold(diff.rewrite(sympy.Piecewise))) == 0


class _alarm:
    """SIGALRM after `seconds`, only in the main thread (signals cannot target other threads)."""

    def __init__(self, seconds):
        self.seconds = seconds
        self.active = threading.current_thread() is threading.main_thread()

    def __enter__(self):
        if self.active:
            self.previous = signal.signal(signal.SIGALRM, self._fire)
            signal.setitimer(signal.ITIMER_REAL, self.seconds)
        return self

    def __exit__(self, *exc):
        if self.active:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, self.previous)
        return False

    @staticmethod
    def _fire(signum, frame):
        raise _OutOfTime


def format_assignment(point: dict) -> str:
    return ", ".join(f"{k}={_show(v)}" for k, v in sorted(point.items()))


def _show(value) -> str:
    value = sympy.nsimplify(value) if isinstance(value, sympy.Float) else value
    if isinstance(value, (int, sympy.Integer)):
        return str(int(value))
    if isinstance(value, sympy.Rational):
        return f"{value.p}/{value.q}"
    try:
        return f"{float(value):.4g}"
    except (TypeError, ValueError):
        return str(value)
