"""Checks for 7.4 Multiple input and multiple output channels."""
import math

import torch
from torch.nn import functional as F

from d2lgrade.core.checks import check, fail
from d2lgrade.compare.formulas import Domain, expect_formula_among
from d2lgrade.compare.implementation_rules import CONVOLUTION
from d2lgrade.compare.inputs import randint, shape_text, tensor
from d2lgrade.compare.tensors import describe, expect_close, expect_diagnosed, same_values
from d2lgrade.values.expected import reference
from graders.matrix_products import expect_matrix_product

ref = reference("7.4")


# -- formulas -----------------------------------------------------------------------------------------
def lacks_floor(expr) -> str | None:
    """A count of output positions written without floor is fractional whenever the stride does not
    divide the span."""
    import sympy
    if expr.has(sympy.floor) or expr.has(sympy.ceiling):
        return None
    return ("The number of output rows is floor((h + 2*p_h - k_h)/s_h) + 1: without floor the count is "
            "fractional whenever the stride does not divide the span.")


CONV_SYMBOLS = ("c_i", "c_o", "h", "w", "k_h", "k_w", "p_h", "p_w", "s_h", "s_w")
CONV_DOMAINS = {"c_i": Domain("int", 1, 6), "c_o": Domain("int", 1, 6), "h": Domain("int", 1, 20),
                "w": Domain("int", 1, 20), "k_h": Domain("int", 1, 7), "k_w": Domain("int", 1, 7),
                "p_h": Domain("int", 0, 3), "p_w": Domain("int", 0, 3), "s_h": Domain("int", 1, 4),
                "s_w": Domain("int", 1, 4)}
# The exercise's own shorthands: its prompt defines h_o as exactly this expression, "and likewise for the
# width" (question, not answer).
H_O = "(floor((h + 2*p_h - k_h)/s_h) + 1)"
W_O = H_O.replace("h", "w")
SHORTHANDS = {"h_o": H_O, "w_o": W_O}


def _kernel_fits(v):
    return v.get("k_h", 1) <= v.get("h", 1) + 2 * v.get("p_h", 0) and \
        v.get("k_w", 1) <= v.get("w", 1) + 2 * v.get("p_w", 0)


INPUT_FOR_OUTPUT = ("That uses the input's size h·w where the output's belongs: the output has one value per "
                    f"window position, h_o·w_o = {H_O}·{W_O}.")


def _formula(key: str):
    """A formula of the reference by its key: an answer, one of its other accepted forms or a named mistake
    (reference/section_7_4.py keeps the last two, so that the kit holds none of their text)."""
    if key in ANSWERS:
        return ref.formula(key)
    return ref.formula("_accepted_forms" if key in ACCEPTED_FORMS else "_mistakes", key)


ANSWERS = ("forward_mults", "forward_adds", "forward_memory", "backward_memory", "backward_cost")
ACCEPTED_FORMS = ("forward_memory with bias", "backward_memory, everything held", "backward_memory with bias",
                  "backward_memory, everything held, with bias", "backward_cost with additions")


NO_OUTPUT_SIZE = {"multiplications without floor"}   # no h_o in it: nothing to swap


def conv_formula(p, name, accepted, diagnoses=(), mistakes=()):
    """`accepted`, `diagnoses`: (key of a reference formula, note) pairs; `mistakes`: keys of more known wrong
    formulas, recorded at release so that a kit reproduces their counterexamples."""
    p.answer = p.text(name)
    # h·w in place of the output size is a mistake of its own: name it before "floor is missing".
    swapped = [(ref.formula("_input_size_for_output", key), INPUT_FOR_OUTPUT) for key, _ in accepted]
    swapped += [(ref.formula("_input_size_for_output", key), f"{INPUT_FOR_OUTPUT} {why}") for key, why in diagnoses
                if key not in NO_OUTPUT_SIZE]
    return expect_formula_among(p.answer, [(_formula(key), note) for key, note in accepted], what=f"`{name}`",
                         domains=CONV_DOMAINS, constraint=_kernel_fits, symbols=CONV_SYMBOLS, shorthands=SHORTHANDS,
                         diagnoses=(*swapped, *[(_formula(key), why) for key, why in diagnoses], lacks_floor),
                         mistakes=[_formula(key) for key in mistakes])


# -- 7.4/1.1 ----------------------------------------------------------------------------------------
def _corr2d(X, K):
    return F.conv2d(X[None, None], K[None, None])[0, 0]


@check("7.4/1.1", points=2, title="One kernel for two cross-correlations", uses=("compose_kernels",),
       expected="the one kernel K with corr2d(X, K) == corr2d(corr2d(X, K1), K2)")
def compose(p):
    calls, labels, cases = [], [], []
    for i in range(10):
        a1, b1, a2, b2 = (randint(p.rng, 1, 4) for _ in range(4))
        if i == 0:
            a1, b1, a2, b2 = 2, 3, 3, 2
        dtype = torch.float64 if i % 2 else torch.float32
        K1, K2 = tensor(p.rng, a1, b1, dtype=dtype), tensor(p.rng, a2, b2, dtype=dtype)
        calls.append(((K1, K2), {}))
        labels.append(f"compose_kernels(K1 of shape {shape_text(K1)}, K2 of shape {shape_text(K2)})")
        cases.append((K1, K2))
    # The first case alone, then the rest: a call that raises ends its batch, and the first case has
    # shapes for which common wrong formulas (K1 @ K2) still run and can be named.
    for part in (slice(0, 1), slice(1, None)):
        got = p.map("compose_kernels", calls[part], labels=labels[part])
        for (K1, K2), K, label in zip(cases[part], got, labels[part]):
            _check_composed(p, K1, K2, K, label)
    return "corr2d(X, K) equals corr2d(corr2d(X, K1), K2) for 10 random pairs of kernels"


def _check_composed(p, K1, K2, K, label):
    expected = ref.compose_kernels(K1, K2)
    size = tuple(expected.shape)
    if not isinstance(K, torch.Tensor) or K.dim() != 2 or tuple(K.shape) != size:
        fail(f"{label} returned {describe(K)}; a kernel equivalent to both has shape {size} "
             "(along each axis: the size of 7.4/1.2).")
    X = tensor(p.rng, size[0] + randint(p.rng, 0, 4), size[1] + randint(p.rng, 0, 4), dtype=torch.float64)
    two_steps = _corr2d(_corr2d(X, K1.double()), K2.double())
    wrong = [(ref.compose_kernels(K1, K2.flip(0, 1)),
              "K2 is used without reversing it (that is a cross-correlation of the kernels); the combined "
              "kernel is their full convolution, K[u, v] = sum K1[c, d] K2[u - c, v - d]."),
             (expected.flip(0, 1),
              "the combined kernel is reversed (rotated by 180°).")]
    expect_diagnosed(K, expected, label, wrong)
    expect_close(_corr2d(X, K.double()), two_steps,
                 f"corr2d(X, compose_kernels(K1, K2)) vs. corr2d(corr2d(X, K1), K2) for X of shape {shape_text(X)}",
                 rtol=1.3e-6 if K.dtype == torch.float64 else 1e-5, atol=1e-5)


# -- 7.4/1.2 ----------------------------------------------------------------------------------------
@check("7.4/1.2", points=1, title="Size of the combined kernel", uses=("composed_size",),
       expected=ref.formula("composed_size"), reveals=True)
def composed_size(p):
    p.answer = p.text("composed_size")
    return expect_formula_among(p.answer, [(ref.formula("composed_size"), None)], what="`composed_size`",
                         domains={"k1": Domain("int", 1, 12), "k2": Domain("int", 1, 12)},
                         diagnoses=[(_formula("composed size without - 1"), "The combined kernel has one tap for every offset a + c with "
                                     "0 <= a < k1 and 0 <= c < k2: count the possible values of a + c.")])


# -- 7.4/1.3 ----------------------------------------------------------------------------------------
def _separable_cases(rng):
    """(kernel, separable?, description). Separable ones are rank one up to rounding (second singular value
    below 1e-6 of the first); the others are far from it (above 1e-2)."""
    cases = []
    for shape in [(3, 3), (2, 5), (4, 1), (5, 3)]:
        col, row = tensor(rng, shape[0]), tensor(rng, shape[1])
        col[col == 0], row[row == 0] = 0.5, -0.25
        cases.append((col[:, None] * row[None, :], True, "a random outer product"))
    # The structured kernels are drawn from the seed too (and their values never printed), so that an
    # answer cannot recognise a fixed Gaussian, Sobel or Laplacian instead of testing the rank.
    radius = randint(rng, 1, 3)
    sigma = 0.6 + 2 * float(torch.rand((), generator=rng))
    x = torch.arange(-radius, radius + 1, dtype=torch.float32)
    g = torch.exp(-(x[:, None] ** 2 + x[None, :] ** 2) / (2 * sigma ** 2))
    cases.append((g / g.sum(), True, f"a {2 * radius + 1} × {2 * radius + 1} Gaussian"))
    a, b = (0.5 + float(t) for t in torch.rand(2, generator=rng))
    cases.append((torch.tensor([a, b, a])[:, None] * torch.tensor([1., 0., -1.])[None, :] * (1 + randint(rng, 0, 3)),
                  True, "a Sobel-type kernel"))
    c, e = 0.5 + float(torch.rand((), generator=rng)), float(torch.rand((), generator=rng))
    cases.append((torch.tensor([[0., c, 0.], [c, -4 * c + e, c], [0., c, 0.]]), False, "a Laplacian-type kernel"))
    for shape in [(3, 3), (2, 2), (4, 3), (2, 5)]:
        K = tensor(rng, *shape, dtype=torch.float64)
        s = torch.linalg.svdvals(K)
        if s[1] < 1e-2 * s[0]:
            K[0, 0] += 1.0
        cases.append((K, False, f"a random {shape[0]} × {shape[1]} kernel"))
    return cases + _structured_separable_cases(rng)


def _structured_separable_cases(rng):
    """Kernels that defeat shortcuts: a zero row or column and a zero top-left corner (for tests that divide by
    K[0, 0] or by the first row), exact outer products scaled by large and tiny factors (for an absolute
    tolerance, or a threshold that does not scale with s[0]), and rank-2 kernels whose top-left 2 × 2 block has
    rank one (for a test of one minor)."""
    def factors(n):
        v = tensor(rng, n)
        v[v == 0] = 0.75
        return v

    cases = []
    col, row = factors(4), factors(3)
    col[randint(rng, 0, 3)], row[0] = 0.0, 0.0
    cases.append((col[:, None] * row[None, :], True, "an outer product with a zero row and a zero first column"))
    col, row = factors(3), factors(4)
    col[0] = 0.0
    cases.append((col[:, None] * row[None, :], True, "an outer product whose top row is zero"))
    big, tiny = 10.0 ** randint(rng, 4, 5), 10.0 ** -randint(rng, 7, 8)
    col, row = factors(3), factors(5)
    cases.append((col[:, None] * row[None, :] * big, True, f"an outer product scaled by {big:.0e}"))
    col, row = factors(4), factors(4)
    cases.append((col[:, None] * row[None, :] * tiny, True, f"an outer product scaled by {tiny:.0e}"))
    for shape, scale in [((3, 3), 1.0), ((4, 3), tiny), ((3, 4), big)]:
        col, row = factors(shape[0]), factors(shape[1])
        K = (col[:, None] * row[None, :]).double()
        K[-1, -1] += 1.5 * float(K.abs().max()) * (1 if K[-1, -1] >= 0 else -1)
        cases.append(((K * scale).float(), False,
                      f"a rank-2 kernel{'' if scale == 1 else f' scaled by {scale:.0e}'} whose top-left 2 × 2 block "
                      "has rank 1"))
    return cases


def _as_bool(value, what):
    if isinstance(value, bool):
        return value
    if isinstance(value, torch.Tensor) and value.numel() == 1 and (value.dtype == torch.bool or value.item() in (0, 1)):
        return bool(value.item())
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    fail(f"{what} returned {describe(value)}; return True or False.")


@check("7.4/1.3", points=1, title="Recognising separable kernels", uses=("is_separable",),
       expected="True exactly for the kernels of rank one (up to rounding)")
def separable(p):
    cases = _separable_cases(p.rng)
    labels = [f"is_separable({what} of shape {shape_text(K)})" for K, _, what in cases]
    got = p.map("is_separable", [((K,), {}) for K, _, _ in cases], labels=labels)
    for (K, truth, what), value, label in zip(cases, got, labels):
        answer = _as_bool(value, label)
        if answer == truth:
            continue
        s = torch.linalg.svdvals(K.double())
        if truth:
            fail(f"{label} is {answer}, but that kernel is an outer product (its second singular value is "
                 f"{s[1] / s[0]:.1g} times the first, i.e. rounding error): compare with a tolerance relative to the "
                 "kernel's size, not exactly and not with a fixed one.")
        fail(f"{label} is {answer}, but that kernel has rank {int((s > 1e-5 * s[0]).sum())}: its second singular "
             f"value is {s[1] / s[0]:.2g} times the first, so it is not an outer product.")
    return f"right on {len(cases)} kernels (separable and not)"


@check("7.4/1.3", name="separate", points=2, title="Splitting a separable kernel", uses=("separate",),
       expected="(col, row) with col[:, None] * row[None, :] == K")
def separate(p):
    cases = [(K, what) for K, truth, what in _separable_cases(p.rng) if truth]
    labels = [f"separate({what} of shape {shape_text(K)})" for K, what in cases]
    got = p.map("separate", [((K,), {}) for K, _ in cases], labels=labels)
    for (K, _), value, label in zip(cases, got, labels):
        if not isinstance(value, (tuple, list)) or len(value) != 2 or \
                not all(isinstance(v, torch.Tensor) for v in value):
            fail(f"{label} returned {describe(value)}; return a pair (col, row) of 1-D tensors.")
        col, row = value
        if (col.numel(), row.numel()) == (K.shape[1], K.shape[0]) and K.shape[0] != K.shape[1]:
            fail(f"{label} returned vectors of lengths ({col.numel()}, {row.numel()}): that is (row, col); "
                 f"col has one entry per row of K ({K.shape[0]}), row one per column ({K.shape[1]}).")
        if (col.numel(), row.numel()) != tuple(K.shape):
            fail(f"{label} returned vectors of lengths ({col.numel()}, {row.numel()}); the outer product of "
                 f"a column of length {K.shape[0]} and a row of length {K.shape[1]} is needed.")
        outer = col.reshape(-1, 1).double() * row.reshape(1, -1).double()
        if same_values(outer.T, K) and not same_values(outer, K):
            fail(f"{label}: the outer product of your vectors is K transposed: that is (row, col); col must "
                 "hold K's column direction (one entry per row of K).")
        ratio = (outer * K.double()).sum() / (K.double() ** 2).sum()
        scaled = ratio * K.double()
        if not torch.allclose(outer, K.double(), rtol=1e-4, atol=1e-5 * float(K.abs().max())) and \
                torch.allclose(outer, scaled, rtol=1e-4, atol=1e-5 * float(K.abs().max())):
            fail(f"{label}: the outer product of your vectors is K times {float(ratio):.4g}; a scale factor "
                 "(e.g. the singular value, split between the two vectors) is missing.")
        expect_close(outer, K.double(), f"the outer product col[:, None] * row[None, :] of {label}",
                     rtol=1e-4, atol=1e-5 * float(K.abs().max()))
    return f"the outer product gives back each of {len(cases)} separable kernels"


@check("7.4/1.3", name="gaussian", points=1, title="Is a 2-D Gaussian separable?", uses=("gaussian_separable",),
       expected="whether exp(-(x² + y²)/(2σ²)) is the outer product of two vectors")
def gaussian(p):
    value = p.value("gaussian_separable")
    p.answer = repr(value)
    if value is not True and value is not False:
        fail(f"`gaussian_separable` should be True or False, not {value!r}.")
    if value != ref.gaussian_separable:
        fail("`gaussian_separable` is not right: try writing exp(-(x² + y²)/(2σ²)) as a function of x times a "
             "function of y, and see what that makes the kernel's matrix.",
             reveal="exp(-(x² + y²)/(2σ²)) = exp(-x²/(2σ²)) · exp(-y²/(2σ²)) is the outer product of two 1-D "
                    "Gaussians: it is separable (rank one).")
    return "a Gaussian is the outer product of two 1-D Gaussians"


# -- 7.4/2 ------------------------------------------------------------------------------------------
@check("7.4/2.1", points=1, title="Multiplications of the forward pass", uses=("forward_mults",),
       expected=ref.formula("forward_mults"), reveals=True)
def forward_mults(p):
    return conv_formula(p, "forward_mults", [("forward_mults", None)], mistakes=["multiplications without floor"])


@check("7.4/2.1", name="adds", points=1, title="Additions of the forward pass", uses=("forward_adds",),
       expected=f"{ref.formula('forward_adds')}\n(or one more per output with a bias)", reveals=True)
def forward_adds(p):
    return conv_formula(p, "forward_adds", [
        ("forward_adds", None),
        ("forward_mults", "right, counting the addition of a bias once per output"),
    ], diagnoses=[("additions per channel",
                   "Summing n products takes n - 1 additions, with n = c_i*k_h*k_w per output.")])


@check("7.4/2.2", points=1, title="Memory of the forward pass", uses=("forward_memory",),
       expected=f"{ref.formula('forward_memory')}\n(+ c_o with a bias)", reveals=True)
def forward_memory(p):
    return conv_formula(p, "forward_memory", [
        ("forward_memory", None),
        ("forward_memory with bias", "right, counting a bias of c_o values"),
    ], diagnoses=[("memory without the input",
                   "The input (c_i*h*w values) is held too: it is read while the output is computed.")])


@check("7.4/2.3", points=1, title="Memory of the backward pass", uses=("backward_memory",),
       expected=f"the gradients alone: {ref.formula('backward_memory')}\n"
                f"or everything held: 2*({ref.formula('forward_memory')})", reveals=True)
def backward_memory(p):
    return conv_formula(p, "backward_memory", [
        ("backward_memory", "right: one gradient of the size of each forward tensor"),
        ("backward_memory, everything held", "right: the forward tensors plus a gradient of the same size for each"),
        ("backward_memory with bias", "right, with the bias's gradient"),
        ("backward_memory, everything held, with bias", "right, with the bias and its gradient"),
    ])


@check("7.4/2.4", points=1, title="Cost of the backward pass", uses=("backward_cost",),
       expected=f"{ref.formula('backward_cost')}\n(a gradient for the input and one for the weights)", reveals=True)
def backward_cost(p):
    same_as_forward = ("That is the cost of the forward pass; the backward pass computes two gradients, one with "
                       "respect to the input and one with respect to the weights, each as expensive as the "
                       "forward pass.")
    return conv_formula(p, "backward_cost", [
        ("backward_cost", None),
        ("backward_cost with additions", "right (counting multiplications and additions)"),
    ], diagnoses=[("forward_mults", same_as_forward), ("multiplications without floor", same_as_forward),
                  ("forward cost", same_as_forward)])


# -- 7.4/3 ------------------------------------------------------------------------------------------
@check("7.4/3", points=1, title="Doubling both channel counts", uses=("channel_factor",),
       expected="the factor by which the multiplications of 7.4/2.1 grow")
def channel_factor(p):
    value = p.value("channel_factor")
    p.answer = repr(value)
    try:
        number = float(value)
    except (TypeError, ValueError):
        fail(f"`channel_factor` should be a number, not {value!r}.")
    if not math.isclose(number, float(ref.channel_factor)):
        fail(f"`channel_factor` is {value!r}; the cost (7.4/2.1's multiplications) has one factor c_i and one "
             "factor c_o: what happens to it when both double?")


# -- 7.4/5 ------------------------------------------------------------------------------------------
def _pair(v):
    return (v, v) if isinstance(v, int) else tuple(v)


def _im2col_cases(rng, general: bool, count: int):
    cases = []
    for i in range(count):
        c_i, c_o = randint(rng, 1, 3), randint(rng, 1, 3)
        k_h, k_w = randint(rng, 1, 4), randint(rng, 1, 4)
        stride = padding = None
        if general:
            stride = randint(rng, 1, 3) if i % 2 else (randint(rng, 1, 3), randint(rng, 1, 3))
            padding = randint(rng, 0, 2) if i % 3 else (randint(rng, 0, 2), randint(rng, 0, 2))
            if i == 0:
                stride, padding = (2, 3), (1, 0)
        s, pad = _pair(stride or 1), _pair(padding or 0)
        h = max(randint(rng, 1, 9), k_h - 2 * pad[0])
        w = max(randint(rng, 1, 9), k_w - 2 * pad[1])
        dtype = torch.float64 if i % 4 == 3 else torch.float32
        X, K = tensor(rng, c_i, h, w, dtype=dtype), tensor(rng, c_o, c_i, k_h, k_w, dtype=dtype)
        kwargs = {} if not general else {"stride": stride, "padding": padding}
        cases.append((X, K, kwargs, s, pad))
    return cases


def _im2col_check(p, general):
    cases = _im2col_cases(p.rng, general, 12)
    labels = [f"conv2d_im2col(X of shape {shape_text(X)}, K of shape {shape_text(K)}"
              + "".join(f", {k}={v}" for k, v in kw.items()) + ")" for X, K, kw, _, _ in cases]
    got = p.map("conv2d_im2col", [((X, K), kw) for X, K, kw, _, _ in cases], labels=labels, implement=CONVOLUTION)
    for (X, K, kw, s, pad), value, label in zip(cases, got, labels):
        expected = F.conv2d(X[None], K, stride=s, padding=pad)[0]
        c_o, _, k_h, k_w = K.shape
        columns = F.unfold(X[None], (k_h, k_w), padding=pad, stride=s)[0]
        k_order = K.permute(0, 2, 3, 1).reshape(c_o, -1)       # (k_h, k_w, c_i) order vs. unfold's (c_i, k_h, k_w)
        known = [(F.conv2d(X[None], K.flip(-1, -2), stride=s, padding=pad)[0] if k_h * k_w > 1 else None,
                  "the kernel is flipped: a convolution layer computes a cross-correlation."),
                 ((k_order @ columns).reshape(expected.shape) if X.shape[0] > 1 and k_h * k_w > 1 else None,
                  "the kernel is flattened in a different order from the windows (channels must come first, "
                  "as in K.reshape(c_o, -1) and F.unfold).")]

        def hint(value, X=X, K=K, s=s, pad=pad, expected=expected):
            if not isinstance(value, torch.Tensor) or tuple(value.shape) == tuple(expected.shape):
                return None
            if pad != (0, 0) and tuple(value.shape) == tuple(F.conv2d(X[None], K, stride=s)[0].shape):
                return "the padding is ignored."
            if s != (1, 1) and tuple(value.shape) == tuple(F.conv2d(X[None], K, padding=pad)[0].shape):
                return "the stride is ignored."
            return None
        expect_diagnosed(value, expected, label, known, hint)
    # shapes where nothing degenerates (a 1 × 1 kernel or a single output turns a product into a plain mul)
    X, K = tensor(p.rng, 2, 6, 7, dtype=torch.float64), tensor(p.rng, 3, 2, 2, 3, dtype=torch.float64)
    kwargs = {"stride": (2, 1), "padding": (1, 0)} if general else {}
    expect_matrix_product(p, "conv2d_im2col", (X, K), kwargs, F.conv2d(X[None], K, **kwargs)[0], "the convolution")
    return f"equals F.conv2d on {len(cases)} random inputs" + (" with strides and padding" if general else "") + \
        ", through a matrix product"


@check("7.4/5", points=1, title="im2col convolution, stride 1 and no padding", uses=("conv2d_im2col",),
       expected="F.conv2d(X[None], K)[0], computed as one matrix product")
def im2col_basic(p):
    return _im2col_check(p, general=False)


@check("7.4/5", name="strided", points=2, title="im2col convolution with stride and padding", uses=("conv2d_im2col",),
       expected="F.conv2d(X[None], K, stride=stride, padding=padding)[0]")
def im2col_general(p):
    return _im2col_check(p, general=True)


# -- 7.4/7.1 ----------------------------------------------------------------------------------------
@check("7.4/7.1", points=1, title="Speed-up of a block-diagonal matrix", uses=("block_speedup",),
       expected=ref.formula("block_speedup"), reveals=True)
def block_speedup(p):
    p.answer = p.text("block_speedup")
    return expect_formula_among(
        p.answer, [(ref.formula("block_speedup"), None)], what="`block_speedup`",
        # b up to 64: a formula in b alone has enough distinct points for the kit's sampling (it cannot prove)
        domains={"b": Domain("int", 1, 64), "c": Domain("int", 1, 64)},
        constraint=lambda v: "c" not in v or v["c"] % v.get("b", 1) == 0, symbols=("b", "c"),
        diagnoses=[(_formula("block speed-up against c cubed"), "That compares the block-diagonal cost b·(c/b)² = c²/b with c³; a dense matrix-vector "
                           "product costs c² multiply-adds, not c³."),
                   (_formula("block-diagonal cost"), "That is the cost of the block-diagonal product; the speed-up is the dense cost "
                              "divided by it."),
                   (_formula("block speed-up inverted"), "That is the ratio the wrong way round: dense cost divided by block-diagonal cost.")])
