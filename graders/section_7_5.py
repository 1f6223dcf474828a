"""Checks for 7.5 Pooling."""
import math

import torch
from torch.nn import functional as F

from d2lgrade.core.checks import NotAttempted, StudentError, check, fail
from d2lgrade.compare.formulas import Domain, expect_formula_among
from d2lgrade.compare.implementation_rules import AVERAGE_POOLING, MAX_POOLING_VIA_RELU
from d2lgrade.compare.inputs import randint, shape_text, tensor
from d2lgrade.compare.tensors import describe, expect_diagnosed
from graders.probes.section_7_5 import run_max_pool
from d2lgrade.values.expected import reference

ref = reference("7.5")


def _pair(v):
    return (v, v) if isinstance(v, int) else tuple(v)


# -- 7.5/1 ------------------------------------------------------------------------------------------
def _avg_cases(rng, explicit_stride: bool):
    cases = []
    for i in range(10):
        k = randint(rng, 1, 3) if i % 2 else (randint(rng, 1, 3), randint(rng, 1, 3))
        if i == 0:
            k = 2
        k_h, k_w = _pair(k)
        stride = None
        if explicit_stride:
            stride = randint(rng, 1, 3) if i % 3 else (randint(rng, 1, 3), randint(rng, 1, 3))
            if i == 0:
                stride = 1
        shape = (randint(rng, 1, 2), randint(rng, 2, 3) if i < 6 else 1,
                 k_h + randint(rng, 0, 6), k_w + randint(rng, 0, 6))
        dtype = torch.float64 if i % 4 == 1 else torch.float32
        cases.append((tensor(rng, *shape, dtype=dtype), k, stride))
    return cases


def _avg_check(p, explicit_stride):
    cases = _avg_cases(p.rng, explicit_stride)
    calls = [((X, k), {} if s is None else {"stride": s}) for X, k, s in cases]
    labels = [f"avg_pool_via_conv(X of shape {shape_text(X)}, {k!r}" + ("" if s is None else f", stride={s!r}") + ")"
              for X, k, s in cases]
    got = p.map("avg_pool_via_conv", calls, labels=labels, implement=AVERAGE_POOLING)
    for (X, k, s), value, label in zip(cases, got, labels):
        expected = F.avg_pool2d(X, k, s)
        k_h, k_w = _pair(k)
        known = [(expected * (k_h * k_w) if k_h * k_w > 1 else None,
                  f"every value is {k_h * k_w} times too large: that is the window's sum; the kernel's entries "
                  f"must be 1/(p_h*p_w)."),
                 (expected.mean(1, keepdim=True).expand_as(expected) if X.shape[1] > 1 else None,
                  "the channels are averaged together; pooling treats every channel on its own "
                  "(a depthwise convolution: groups = C, or fold the channels into the batch)."),
                 (expected.sum(1, keepdim=True).expand_as(expected) if X.shape[1] > 1 else None,
                  "the channels are summed together; pooling treats every channel on its own "
                  "(a depthwise convolution: groups = C, or fold the channels into the batch).")]

        def hint(value, X=X, k=k, s=s, expected=expected):
            if not isinstance(value, torch.Tensor) or tuple(value.shape) == tuple(expected.shape):
                return None
            if s is None and tuple(value.shape) == tuple(F.avg_pool2d(X, k, 1).shape):
                return "with stride=None the stride is the window size, as in F.avg_pool2d."
            if s is not None and tuple(value.shape) in (tuple(F.avg_pool2d(X, k).shape),
                                                        tuple(F.avg_pool2d(X, k, 1).shape)):
                return "the stride argument is ignored."
            if value.dim() == 4 and value.shape[1] != X.shape[1]:
                return f"pooling keeps the {X.shape[1]} channels."
            return None
        expect_diagnosed(value, expected, label, known, hint)
    return f"equals F.avg_pool2d on {len(cases)} random batches" + (" with explicit strides" if explicit_stride else "")


@check("7.5/1", points=2, title="Average pooling as a convolution", uses=("avg_pool_via_conv",),
       expected="F.avg_pool2d(X, pool_size): a depthwise convolution with the kernel 1/(p_h*p_w), stride = window")
def avg_pool(p):
    return _avg_check(p, explicit_stride=False)


@check("7.5/1", name="stride", points=1, title="Average pooling with an explicit stride", uses=("avg_pool_via_conv",),
       expected="F.avg_pool2d(X, pool_size, stride)")
def avg_pool_stride(p):
    return _avg_check(p, explicit_stride=True)


# -- 7.5/2 ------------------------------------------------------------------------------------------
def _numbers(value, what):
    if isinstance(value, torch.Tensor):
        value = value.reshape(-1).tolist()
    if not isinstance(value, (list, tuple)) or not value or \
            not all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in value):
        fail(f"{what} should be a non-empty list of finite numbers, not {describe(value)}.")
    return [float(v) for v in value]


@check("7.5/2", points=1, title="A pair that max does not add up on", uses=("max_nonlinear_counterexample",),
       expected="x, y of the same length with max(x + y) != max(x) + max(y)")
def nonlinear_counterexample(p):
    value = p.value("max_nonlinear_counterexample")
    p.answer = repr(value)
    if not isinstance(value, (list, tuple)) or len(value) != 2:
        fail(f"`max_nonlinear_counterexample` should be a pair (x, y) of lists, not {describe(value)}.")
    x, y = _numbers(value[0], "x"), _numbers(value[1], "y")
    if len(x) != len(y):
        fail(f"x has {len(x)} entries and y has {len(y)}; the element-wise sum x + y needs the same length.")
    total, separate = max(a + b for a, b in zip(x, y)), max(x) + max(y)
    if math.isclose(total, separate, rel_tol=1e-9, abs_tol=1e-9):
        fail(f"for your x and y, max(x + y) = {total:g} = max(x) + max(y): this pair does not show that max is "
             "nonlinear; choose x and y whose largest entries sit at different positions.")
    return f"max(x + y) = {total:g} but max(x) + max(y) = {separate:g}"


# -- 7.5/3.1 ----------------------------------------------------------------------------------------
@check("7.5/3.1", points=1, title="max(a, b) through ReLU", uses=("max_via_relu",),
       expected=f"{ref.formula('max_via_relu')}, or any formula in relu that equals max(a, b)", reveals=True)
def max_via_relu(p):
    p.answer = p.text("max_via_relu")
    # max(a, b) is what the exercise asks for (the question, not its answer): the answer is compared with it.
    return expect_formula_among(p.answer, [("Max(a, b)", None)], what="`max_via_relu`",
                                domains={"a": Domain("real", -10, 10), "b": Domain("real", -10, 10)},
                                symbols=("a", "b"), functions=("relu",))


# -- 7.5/3.2 ----------------------------------------------------------------------------------------
def _tree(values, pair):
    while len(values) > 1:
        merged = [pair(a, b) for a, b in zip(values[0::2], values[1::2])]
        values = merged + values[len(merged) * 2:]
    return values[0]


def _windows(X, k):
    """The k_h·k_w pixels of every window, as a list of (N, C, h_o, w_o) maps."""
    k_h, k_w = _pair(k)
    n, c, h, w = X.shape
    cols = F.unfold(X.reshape(n * c, 1, h, w), (k_h, k_w), stride=(k_h, k_w))
    h_o, w_o = (h - k_h) // k_h + 1, (w - k_w) // k_w + 1
    return [col.reshape(n, c, h_o, w_o) for col in cols.unbind(1)]


def _max_pool_cases(rng, k):
    k_h, k_w = _pair(k)
    shapes = [(1, 1, 2 * k_h, 2 * k_w), (2, 3, 3 * k_h, 2 * k_w + 1), (1, 2, 2 * k_h + 1, 3 * k_w)]
    inputs = [tensor(rng, *s) for s in shapes]
    inputs.append(-tensor(rng, 1, 2, 2 * k_h, 2 * k_w).abs() - 0.1)           # every window negative
    inputs.append(tensor(rng, 2, 2, 2 * k_h, 3 * k_w, dtype=torch.float64))
    return inputs


def _max_pool_check(p, k):
    inputs = _max_pool_cases(p.rng, k)
    try:
        # Five forward passes of a module the student built: a few calls' worth, never more than the limit allows.
        reply = p.run(run_max_pool, inputs, k, timeout=3 * p.options.limits.call_seconds)
    except NotAttempted as exc:   # p.run names the probe function; the student knows their class
        raise NotAttempted(exc.message.replace("`run_max_pool`", "`MaxPoolViaReLU`"), exc.detail) from None
    except StudentError as exc:
        raise StudentError(exc.message.replace("the probe run_max_pool", "`MaxPoolViaReLU`"), exc.detail) from None
    if not isinstance(reply, dict) or not isinstance(reply.get("results"), list):
        raise StudentError("the runtime gave no readable answer for MaxPoolViaReLU.")
    name = "MaxPoolViaReLU" if reply.get("kind") == "module" else "max_pool_via_relu"
    call = f"MaxPoolViaReLU(pool_size={k!r})" if name == "MaxPoolViaReLU" else f"max_pool_via_relu(X, {k!r})"
    p.implemented((name,), MAX_POOLING_VIA_RELU)
    first = next((r.get("value") for r in reply["results"] if isinstance(r, dict) and r.get("ok")), None)
    p.traced(name, reply, first, MAX_POOLING_VIA_RELU)
    for X, outcome in zip(inputs, reply["results"]):
        label = f"{call} on X of shape {shape_text(X)}"
        if not isinstance(outcome, dict) or not outcome.get("ok"):
            error = outcome.get("error", "Error") if isinstance(outcome, dict) else "Error"
            raise StudentError(f"{label} raised {error}: {outcome.get('message', '') if isinstance(outcome, dict) else ''}"
                               .rstrip(": ") + ".")
        value, expected = outcome.get("value"), F.max_pool2d(X, k)
        if isinstance(value, torch.Tensor) and value.dim() == 4 and value.shape[1] != X.shape[1]:
            fail(f"{label} returns {value.shape[1]} channels (shape {tuple(value.shape)}) for an input with "
                 f"{X.shape[1]}: max pooling keeps every channel and returns one value per window, the maximum "
                 f"of its pixels, so the expected shape is {tuple(expected.shape)}.")
        windows = _windows(X, k)
        known = [(F.relu(expected), "negative maxima come out as 0: relu(x) clips the values themselves; "
                                    "use it on differences of the values, as in your max_via_relu of 7.5/3.1."),
                 (_tree(windows, lambda a, b: (a + b + F.relu(a - b)) / 2),
                  "it uses (a + b + relu(a - b))/2, which is not max(a, b) when a < b (it gives (a + b)/2)."),
                 (F.avg_pool2d(X, k), "that is average pooling.")]
        expect_diagnosed(value, expected, label, known)
    return f"equals F.max_pool2d with a {k!r} window on {len(inputs)} inputs, negative values included"


@check("7.5/3.2", points=2, title="Max pooling from convolutions and ReLU, 2 × 2",
       uses=("MaxPoolViaReLU", "max_pool_via_relu"),
       expected="F.max_pool2d(X, 2), built from convolutions and the ReLU formula for max(a, b) of 7.5/3.1")
def max_pool_2(p):
    return _max_pool_check(p, 2)


@check("7.5/3.2", name="3x3", points=1, title="Max pooling from convolutions and ReLU, 3 × 3",
       uses=("MaxPoolViaReLU", "max_pool_via_relu"), expected="F.max_pool2d(X, 3)")
def max_pool_3(p):
    return _max_pool_check(p, 3)


# -- 7.5/3.3 ----------------------------------------------------------------------------------------
def _level_count(p, name):
    value = p.value(name)
    p.answer = repr(value)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) \
            or value != int(value):
        fail(f"`{name}` should be a whole number of ReLU layers, not {value!r}.")
    return int(value)


@check("7.5/3.3", points=1, title="ReLU layers for a 2 × 2 window", uses=("relu_levels_2x2",),
       expected="the number of levels of pairwise maxima that reduce four values to one")
def levels_2x2(p):
    levels = _level_count(p, "relu_levels_2x2")
    expected = ref.relu_levels_2x2
    if levels < expected:
        fail(f"`relu_levels_2x2` is {levels}: one ReLU layer gives the maximum of a pair (7.5/3.1), and a "
             "single hidden ReLU layer cannot compute the maximum of more than two numbers; a window of four "
             "needs the maximum of two such maxima.")
    if levels > expected:
        fail(f"`relu_levels_2x2` is {levels}: pair the four values up; how many rounds of pairwise maxima "
             "reduce four values to one?")


@check("7.5/3.3", name="3x3", points=1, title="ReLU layers for a 3 × 3 window", uses=("relu_levels_3x3",),
       expected="the number of levels of pairwise maxima that reduce nine values to one; a known cleverer "
                "construction's count is accepted too")
def levels_3x3(p):
    levels = _level_count(p, "relu_levels_3x3")
    tree, clever = ref.relu_levels_3x3, ref._relu_levels_3x3_clever
    if levels in (tree, clever):
        return f"pairwise maxima reduce nine values to one in {levels} levels" if levels == tree else \
            f"{levels} layers, as a cleverer construction than the pairwise tree achieves"
    if levels < min(tree, clever):
        fail(f"`relu_levels_3x3` is {levels}: each level of pairwise maxima at most halves the number of "
             f"candidates, so {levels} level(s) reduce at most {2 ** levels} values to one, not nine "
             "(and one hidden ReLU layer cannot compute the maximum of three numbers).")
    fail(f"`relu_levels_3x3` is {levels}: each round of pairwise maxima halves the number of candidates "
         "(rounding up) until one is left; count them.")


# -- 7.5/4 ------------------------------------------------------------------------------------------
POOL_DOMAINS = {"c": Domain("int", 1, 4), "h": Domain("int", 1, 16), "w": Domain("int", 1, 16),
                "p_h": Domain("int", 1, 4), "p_w": Domain("int", 1, 4), "s_h": Domain("int", 1, 4),
                "s_w": Domain("int", 1, 4)}


def _pool_mistakes(expr):
    """Name the seed's mistakes: ceiling for the position count, no p_h*p_w work per window."""
    import sympy
    notes = []
    if expr.has(sympy.ceiling):
        notes.append("Count the window positions per axis as a convolution's output size, with the window as the "
                     "kernel: floor(...) + 1; ceiling(...) misses one whenever the stride divides the span.")
    outside = expr.replace(lambda e: isinstance(e, (sympy.floor, sympy.ceiling)), lambda e: sympy.Symbol("n_h"))
    names = {s.name for s in outside.free_symbols}
    if not {"p_h", "p_w"} <= names:
        notes.append("Each output looks at p_h*p_w input values: your formula has no factor p_h*p_w "
                     "(it counts output positions, not operations).")
    return " ".join(notes) or None


@check("7.5/4", points=2, title="Cost of a pooling layer", uses=("pool_cost",),
       expected=f"{ref.formula('pool_cost')}\n(p_h*p_w - 1 comparisons per window is accepted too)", reveals=True)
def pool_cost(p):
    p.answer = p.text("pool_cost")
    return expect_formula_among(
        p.answer, [(ref.formula("pool_cost"), None),
                   (ref.formula("_accepted_forms", "pool_cost, p_h*p_w - 1 comparisons"),
                    "right, counting p_h*p_w - 1 comparisons per window")],
        what="`pool_cost`", domains=POOL_DOMAINS, symbols=tuple(POOL_DOMAINS),
        diagnoses=[_pool_mistakes, (ref.formula("_mistakes", "pooling outputs"),
                                    "That counts the output values; each needs p_h*p_w operations.")],
        mistakes=[ref.formula("_mistakes", "ceiling, no window work"), ref.formula("_mistakes", "ceiling")])


# -- 7.5/6 ------------------------------------------------------------------------------------------
@check("7.5/6", points=2, title="Minimum pooling from max pooling", uses=("min_pool",),
       expected="the smallest value of every window, with the stride of F.max_pool2d(X, pool_size)")
def min_pool(p):
    cases = []
    for i in range(8):
        k = randint(p.rng, 1, 3) if i % 2 else (randint(p.rng, 1, 3), randint(p.rng, 1, 3))
        if i == 0:
            k = 2
        k_h, k_w = _pair(k)
        X = tensor(p.rng, randint(p.rng, 1, 2), randint(p.rng, 1, 3), k_h + randint(p.rng, 0, 5),
                   k_w + randint(p.rng, 0, 5), dtype=torch.float64 if i % 3 == 2 else torch.float32)
        cases.append((X, k))
    labels = [f"min_pool(X of shape {shape_text(X)}, {k!r})" for X, k in cases]
    expected_values = [ref.min_pool(X, k) for X, k in cases]     # before the answer's: one recording serves all
    got = p.map("min_pool", [((X, k), {}) for X, k in cases], labels=labels)
    for (X, k), value, label, expected in zip(cases, got, labels, expected_values):
        known = [(-F.max_pool2d(X, k), "-max(X) is not min(X): negate the input before pooling as well."),
                 (F.max_pool2d(-X, k), "the sign is wrong: negate the pooled result as well."),
                 (F.max_pool2d(X, k), "that is max pooling."),
                 (F.avg_pool2d(X, k), "that is average pooling.")]

        def hint(value, X=X, k=k, expected=expected):
            if isinstance(value, torch.Tensor) and tuple(value.shape) != tuple(expected.shape) and \
                    tuple(value.shape) == tuple(F.max_pool2d(X, k, 1).shape):
                return "the stride must be the window size, as in F.max_pool2d(X, pool_size)."
            return None
        expect_diagnosed(value, expected, label, known, hint)
    return f"equals minimum pooling on {len(cases)} random batches"
