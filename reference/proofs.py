"""Machine-checked facts behind the answers of 7.1, 7.4 and 7.5 (sympy proofs, and exhaustive or random
comparisons with PyTorch where a statement is about PyTorch's layers).

`run_all()` yields (name, ok, message); `python grade.py --check-references` runs it. Every proof is a
function of the statement it checks (a formula, or a choice such as keeping the integration limits), so
the same machinery reports a wrong statement as not ok: tests/test_proofs.py feeds it broken ones.
"""
from __future__ import annotations

import functools
import itertools
import math
import random

import sympy as sp
import torch
from torch import nn
from torch.nn import functional as F

from reference import section_7_4 as ref74
from reference import section_7_5 as ref75

_NAMES = ("n_h n_w k_h k_w p_h p_w s_h s_w c_i c_o h w k k1 k2 d a b x t tau c m").split()
SYMBOLS = {name: sp.Symbol(name, real=True) for name in _NAMES}


def formula(text: str) -> sp.Expr:
    """A trusted formula string of the project (same names and functions as the students')."""
    local = dict(SYMBOLS, relu=lambda e: sp.Max(0, e), floor=sp.floor, ceiling=sp.ceiling, Max=sp.Max,
                 Min=sp.Min, Abs=sp.Abs)
    return sp.sympify(text, locals=local)


def _value(expr: sp.Expr, **values) -> int:
    result = expr.subs({SYMBOLS[k]: v for k, v in values.items()})
    return int(result)


def is_zero(expr: sp.Expr) -> bool:
    """simplify, then once more with every exponent brought to one canonical form."""
    expr = sp.simplify(expr)
    if expr == 0:
        return True
    expr = expr.replace(lambda e: isinstance(e, sp.exp), lambda e: sp.exp(sp.factor(sp.expand(e.args[0]))))
    return sp.simplify(expr) == 0


# -- 7.1/6: commutativity ---------------------------------------------------------------------------
def discrete_commutativity(max_length: int = 6, substitution: str = "n - m"):
    """(f*g)[n] = sum_m f[m] g[n-m] equals (g*f)[n] for symbolic sequences of every length pair up to
    max_length (term by term, and as the coefficients of a product of polynomials); and in general by
    the index substitution m -> `substitution`, which must map the summation range onto itself."""
    x = sp.Symbol("x")
    for n, m in itertools.product(range(1, max_length + 1), repeat=2):
        f, g = sp.symbols(f"f0:{n}"), sp.symbols(f"g0:{m}")

        def conv(u, v):
            return [sp.Add(*[u[i] * v[k - i] for i in range(len(u)) if 0 <= k - i < len(v)])
                    for k in range(len(u) + len(v) - 1)]
        fg, gf = conv(f, g), conv(g, f)
        if any(sp.expand(a - b) != 0 for a, b in zip(fg, gf)):
            return False, f"f*g != g*f for lengths {n} and {m}"
        product = sp.Poly(sp.Add(*[c * x**i for i, c in enumerate(f)]) * sp.Add(*[c * x**i for i, c in enumerate(g)]), x)
        if any(sp.expand(a - b) != 0 for a, b in zip(reversed(product.all_coeffs()), fg)):
            return False, f"f*g is not the coefficient list of the polynomial product for lengths {n} and {m}"
    mm, nn_, j = sp.symbols("m n j", integer=True)
    fn, gn = sp.Function("f"), sp.Function("g")
    trafo = sp.sympify(substitution, locals={"n": nn_, "m": mm})
    moved = sp.Sum(fn(mm) * gn(nn_ - mm), (mm, -sp.oo, sp.oo)).change_index(mm, trafo, j)
    target = sp.Sum(gn(j) * fn(nn_ - j), (j, -sp.oo, sp.oo))
    if sp.simplify(moved.function - target.function) != 0 or moved.limits != target.limits:
        return False, f"the substitution m -> {substitution} gives {moved}, not (g*f)[n]"
    return True, (f"term by term for all lengths up to {max_length}, as polynomial coefficients, and by "
                  "m -> n - m over all integers")


@functools.lru_cache(maxsize=None)
def _gaussian_family():
    """f(τ) = τ·exp(−aτ²) (odd, so f*g ≠ g*f would show) and g(τ) = exp(−bτ²), a ≠ b."""
    tau, u, t = sp.symbols("tau u t", real=True)
    a, b = sp.symbols("a b", positive=True)
    f = sp.Lambda(tau, tau * sp.exp(-a * tau**2))
    g = sp.Lambda(tau, sp.exp(-b * tau**2))
    fg = sp.integrate(f(tau) * g(t - tau), (tau, -sp.oo, sp.oo))
    gf = sp.integrate(g(tau) * f(t - tau), (tau, -sp.oo, sp.oo))
    return tau, u, t, f, g, fg, gf


def continuous_commutativity(keep_limits: bool = False):
    """(f∗g)(t) = ∫ f(τ) g(t−τ) dτ = (g∗f)(t) by u = t − τ: dτ = −du, and τ = ∓∞ becomes u = ±∞, so the
    limits swap. With `keep_limits=True` the substitution is done the seed's way (limits unchanged),
    which this proof must reject."""
    fs, gs = sp.Function("f"), sp.Function("g")
    tau, u, t, f, g, fg, gf = _gaussian_family()
    general = sp.Integral(fs(tau) * gs(t - tau), (tau, -sp.oo, sp.oo)).transform(tau, (t - u, u))
    if general != sp.Integral(fs(t - u) * gs(u), (u, -sp.oo, sp.oo)):
        return False, f"sympy's change of variables gives {general}"
    if not is_zero(fg - gf):
        return False, "f*g and g*f differ on the Gaussian family"
    if is_zero(fg):
        return False, "the test family is degenerate (f*g = 0)"
    dtau_du = sp.diff(t - u, u)                                    # τ = t − u
    lower, upper = sp.limit(t - tau, tau, -sp.oo), sp.limit(t - tau, tau, sp.oo)   # +∞, −∞
    if keep_limits:
        lower, upper = -sp.oo, sp.oo
    substituted = sp.integrate(f(t - u) * g(u) * dtau_du, (u, lower, upper))
    if not is_zero(substituted - fg):
        if is_zero(substituted + gf):
            return False, (f"with the limits kept at ({lower}, {upper}) the substituted integral is −(g∗f), "
                           "not f∗g: the limits must swap, which cancels the minus sign of dτ = −du")
        return False, "the substituted integral is not f∗g"
    return True, ("u = t − τ maps (−∞, ∞) to (∞, −∞); swapping the limits back cancels dτ = −du "
                  "(general change of variables, and the Gaussian family τe^{−aτ²} ∗ e^{−bτ²} integrated both ways)")


# -- 7.5/3.1: max through ReLU ----------------------------------------------------------------------
def max_via_relu(text: str = ref75.max_via_relu):
    """`text` equals max(a, b) for all real a, b: with a = b + s, the cases s > 0 and s <= 0."""
    a, b = SYMBOLS["a"], SYMBOLS["b"]
    expr = formula(text)
    for name, s in (("a > b", sp.Symbol("s", positive=True)), ("a <= b", sp.Symbol("s", nonpositive=True))):
        case = sp.simplify(expr.subs(a, b + s) - sp.Max(b + s, b))
        if case != 0:
            return False, f"for {name} (a = b + s) the formula is off by {case}"
    return True, f"{text} = max(a, b) in both cases a > b and a <= b"


# -- 7.3 / 7.5: output shapes ---------------------------------------------------------------------
def output_shapes(conv_formula: str = "floor((n_h + 2*p_h - k_h)/s_h) + 1",
                  pool_formula: str = "floor((h + p_h)/s_h) + 1"):
    """The convolution shape formula against nn.Conv2d and nn.MaxPool2d on a grid; the 7.5/4 layer
    (padding = window, which PyTorch refuses) against explicit −∞ padding followed by unpadded pooling."""
    conv = formula(conv_formula)
    checked = 0
    for k, pad, s in itertools.product(range(1, 6), range(0, 4), range(1, 5)):
        layer = nn.Conv2d(1, 1, k, stride=s, padding=pad, bias=False)
        pool = nn.MaxPool2d(k, stride=s, padding=pad) if pad <= k // 2 else None
        for n in range(max(1, k - 2 * pad), 11):
            want = _value(conv, n_h=n, k_h=k, p_h=pad, s_h=s)
            X = torch.zeros(1, 1, n, n)
            with torch.no_grad():
                got = layer(X).shape[-1]
            if got != want:
                return False, f"nn.Conv2d(kernel {k}, padding {pad}, stride {s}) on {n}×{n} gives {got}, the formula {want}"
            if pool is not None and pool(X).shape[-1] != want:
                return False, f"nn.MaxPool2d(kernel {k}, padding {pad}, stride {s}) on {n}×{n} gives {pool(X).shape[-1]}, the formula {want}"
            checked += 1
    pooled = formula(pool_formula)
    try:
        nn.MaxPool2d(2, padding=2)(torch.zeros(1, 1, 4, 4))
        return False, "PyTorch accepted padding = window; the exercise's remark about it is out of date"
    except RuntimeError:
        pass
    for p_h, s_h, h in itertools.product(range(1, 5), range(1, 5), range(1, 13)):
        X = F.pad(torch.zeros(1, 1, h, 3), (0, 0, p_h, p_h), value=-math.inf)
        got = F.max_pool2d(X, (p_h, 1), stride=(s_h, 1)).shape[-2]
        want = _value(pooled, h=h, p_h=p_h, s_h=s_h)
        if got != want:
            return False, f"window {p_h}, padding {p_h}, stride {s_h} on height {h}: {got} rows, the formula {want}"
        checked += 1
    return True, f"{checked} layer shapes agree (conv, max-pool, and pooling with padding = window)"


def pool_cost(text: str = ref75.pool_cost, trials: int = 40):
    """c·(window positions)·p_h·p_w: the windows, counted by unfolding the −∞-padded input."""
    cost = formula(text)
    rng = random.Random(75)
    for _ in range(trials):
        c, h, w = rng.randint(1, 3), rng.randint(1, 12), rng.randint(1, 12)
        p_h, p_w, s_h, s_w = (rng.randint(1, 4) for _ in range(4))
        X = F.pad(torch.zeros(1, c, h, w), (p_w, p_w, p_h, p_h), value=-math.inf)
        looked_at = F.unfold(X, (p_h, p_w), stride=(s_h, s_w)).numel()      # (c·p_h·p_w) × positions
        want = _value(cost, c=c, h=h, w=w, p_h=p_h, p_w=p_w, s_h=s_h, s_w=s_w)
        if looked_at != want:
            return False, (f"c={c}, h={h}, w={w}, window ({p_h}, {p_w}), stride ({s_h}, {s_w}): the windows hold "
                           f"{looked_at} values, the formula says {want}")
    return True, f"the formula counts the values the windows look at in {trials} random layers"


# -- 7.4/2: cost and memory -------------------------------------------------------------------------
def conv_costs(mults: str = ref74.forward_mults, adds: str = ref74.forward_adds,
               memory: str = ref74.forward_memory, backward: str = ref74.backward_cost,
               backward_memory: str = ref74.backward_memory, trials: int = 25):
    """Against PyTorch's own FLOP counter (2 FLOPs per multiply-add) for the forward and the backward
    pass, the im2col matrix product for additions, and the tensors autograd creates for memory."""
    from torch.utils.flop_counter import FlopCounterMode
    exprs = {name: formula(text) for name, text in
             (("mults", mults), ("adds", adds), ("memory", memory), ("backward", backward), ("bmem", backward_memory))}
    rng = random.Random(74)
    for _ in range(trials):
        v = dict(c_i=rng.randint(1, 4), c_o=rng.randint(1, 4), h=rng.randint(1, 10), w=rng.randint(1, 10),
                 k_h=rng.randint(1, 4), k_w=rng.randint(1, 4), p_h=rng.randint(0, 2), p_w=rng.randint(0, 2),
                 s_h=rng.randint(1, 3), s_w=rng.randint(1, 3))
        if v["k_h"] > v["h"] + 2 * v["p_h"] or v["k_w"] > v["w"] + 2 * v["p_w"]:
            continue
        X = torch.randn(1, v["c_i"], v["h"], v["w"], requires_grad=True)
        W = torch.randn(v["c_o"], v["c_i"], v["k_h"], v["k_w"], requires_grad=True)
        stride, padding = (v["s_h"], v["s_w"]), (v["p_h"], v["p_w"])
        with FlopCounterMode(display=False) as forward:
            Y = F.conv2d(X, W, stride=stride, padding=padding)
        with FlopCounterMode(display=False) as backward_pass:
            Y.backward(torch.ones_like(Y))
        columns = F.unfold(X.detach(), (v["k_h"], v["k_w"]), padding=padding, stride=stride)[0]
        taps, positions = columns.shape                               # (c_i·k_h·k_w, h_o·w_o)
        facts = {
            "mults": forward.get_total_flops() // 2,
            "adds": v["c_o"] * (taps - 1) * positions,
            "memory": X.numel() + W.numel() + Y.numel(),
            "backward": backward_pass.get_total_flops() // 2,
            "bmem": X.grad.numel() + W.grad.numel() + Y.numel(),      # dL/dX, dL/dW and dL/dY
        }
        for name, fact in facts.items():
            if _value(exprs[name], **v) != fact:
                return False, f"{name} at {v}: PyTorch counts {fact}, the formula gives {_value(exprs[name], **v)}"
    return True, ("multiplications and backward cost agree with torch.utils.flop_counter, additions with the "
                  f"im2col product, memory with the tensors, on {trials} random layers")


# -- 7.4/1.2: composed kernel size ------------------------------------------------------------------
def composed_size(text: str = ref74.composed_size, trials: int = 30):
    """Two valid cross-correlations shrink the input as one kernel of size `text` does, that kernel is
    compose_kernels(K1, K2), and its corners are nonzero (no smaller kernel will do)."""
    size = formula(text)
    g = torch.Generator().manual_seed(741)
    for _ in range(trials):
        a1, b1, a2, b2 = (int(torch.randint(1, 6, (1,), generator=g)) for _ in range(4))
        K1 = torch.randn(a1, b1, generator=g, dtype=torch.float64)
        K2 = torch.randn(a2, b2, generator=g, dtype=torch.float64)
        X = torch.randn(12, 13, generator=g, dtype=torch.float64)
        two = ref74.corr2d(ref74.corr2d(X, K1), K2)
        want = (_value(size, k1=a1, k2=a2), _value(size, k1=b1, k2=b2))
        effective = (X.shape[0] - two.shape[0] + 1, X.shape[1] - two.shape[1] + 1)
        if effective != want:
            return False, f"kernels {a1}×{b1} and {a2}×{b2} act like a {effective[0]}×{effective[1]} kernel, the formula says {want}"
        K = ref74.compose_kernels(K1, K2)
        if tuple(K.shape) != effective or not torch.allclose(ref74.corr2d(X, K), two):
            return False, f"compose_kernels does not reproduce the two steps for {a1}×{b1} and {a2}×{b2}"
        if min(abs(K[0, 0]), abs(K[-1, -1])) == 0:
            return False, "a corner of the combined kernel vanished"
    return True, f"{trials} random pairs of kernels act as one kernel of size {text}"


# -- 7.2/2.4 (used by 7.1's derivative remark): minimum stencil size --------------------------------
def stencil_exists(d: int, taps: int) -> bool:
    """Is there c_0..c_{taps-1} with sum_j c_j (x + j)^m = 0 for m < d and = d! for m = d?"""
    c = sp.symbols(f"c0:{taps}")
    equations = [sp.Add(*[c[j] * sp.Integer(j) ** m for j in range(taps)]) - (sp.factorial(d) if m == d else 0)
                 for m in range(d + 1)]
    return sp.linsolve(equations, c) != sp.EmptySet


def min_derivative_size(text: str = "d + 1", max_d: int = 6):
    """A kernel of `text` taps computes the d-th derivative exactly on polynomials of degree <= d, and no
    kernel with one tap fewer does (the Vandermonde system of the moments has no solution)."""
    size = formula(text)
    for d in range(1, max_d + 1):
        n = _value(size, d=d)
        if not stencil_exists(d, n):
            return False, f"d={d}: no kernel of {n} taps gives the {d}-th derivative"
        if n > 1 and stencil_exists(d, n - 1):
            return False, f"d={d}: a kernel of {n - 1} taps already gives the {d}-th derivative, so {n} is not the minimum"
    forward = [(-1) ** (3 - j) * math.comb(3, j) for j in range(4)]
    if sum(cj * j**3 for j, cj in enumerate(forward)) != 6:
        return False, "the forward-difference stencil of order 3 is not exact"
    return True, f"d + 1 taps suffice (forward differences) and d taps do not, for d = 1..{max_d}"


# -- 7.4/7.1: block-diagonal speed-up ---------------------------------------------------------------
def block_speedup(text: str = ref74.block_speedup):
    """Dense c×c times a vector: c² multiply-adds; b blocks of (c/b)×(c/b): b·(c/b)²."""
    b, m = sp.symbols("b m", positive=True, integer=True)
    c = b * m
    ratio = sp.simplify(c**2 / (b * m**2))
    claimed = formula(text).subs({SYMBOLS["b"]: b, SYMBOLS["c"]: c})
    if sp.simplify(claimed - ratio) != 0:
        return False, f"dense c² over block-diagonal b·(c/b)² is {ratio}, not {sp.simplify(claimed)}"
    g = torch.Generator().manual_seed(747)
    for blocks, size in [(2, 3), (4, 2), (3, 5)]:
        parts = [torch.randn(size, size, generator=g, dtype=torch.float64) for _ in range(blocks)]
        M, v = torch.block_diag(*parts), torch.randn(blocks * size, generator=g, dtype=torch.float64)
        blockwise = torch.cat([P @ piece for P, piece in zip(parts, v.split(size))])
        if not torch.allclose(M @ v, blockwise) or int((M != 0).sum()) > (blocks * size) ** 2 // blocks:
            return False, f"the block-diagonal product with {blocks} blocks does not need only c²/b products"
    return True, "c² / (b·(c/b)²) = b, and block-wise products agree with the dense block-diagonal matrix"


PROOFS = [
    ("7.1/6 discrete convolution commutes", discrete_commutativity),
    ("7.1/6 continuous convolution commutes (limits swap)", continuous_commutativity),
    ("7.5/3.1 max(a, b) = b + relu(a - b)", max_via_relu),
    ("7.3/1 + 7.5/4 output shapes of convolution and pooling", output_shapes),
    ("7.5/4 cost of pooling", pool_cost),
    ("7.4/2 cost and memory of a convolution", conv_costs),
    ("7.4/1.2 composed kernel size k1 + k2 - 1", composed_size),
    ("7.2/2.4 minimum kernel size d + 1 for a d-th derivative", min_derivative_size),
    ("7.4/7.1 block-diagonal speed-up b", block_speedup),
]


def run_all():
    """Yield (name, ok, message) for every proof; an exception is a failed proof, not a crash."""
    for name, proof in PROOFS:
        try:
            ok, message = proof()
        except Exception as exc:  # report, do not stop the other proofs
            ok, message = False, f"{type(exc).__name__}: {exc}"
        yield name, bool(ok), message
