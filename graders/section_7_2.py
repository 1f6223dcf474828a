"""Checks for 7.2 Convolutions for images.

The grader computes the cross-correlations itself with `_xcorr` (float64); the section's corr2d, the
kernel matrix and the short answers come from the reference through the seam (d2lgrade/values/expected.py).
Hand-designed kernels (edge, second derivative, blur) are judged by properties on images the grader
builds, not against one fixed answer.
"""
import math

import torch
from torch.nn import functional as F

from d2lgrade.core.checks import StudentError, WrongAnswer, check, fail
from d2lgrade.compare.formulas import Domain, expect_formula
from d2lgrade.compare.implementation_rules import CONVOLUTION
from d2lgrade.compare.inputs import randint, shape_text, tensor
from d2lgrade.compare.tensors import describe, expect_close, expect_tensor
from graders.matrix_products import MATMUL_OPS
from graders.probes.matrix_products import call_with_noisy_products
from d2lgrade.values.expected import reference

ref = reference("7.2")

MAX_KERNEL = 9                      # "a small kernel": anything larger is rejected before probing images
DTYPE_ERROR = ("dtype", "float != double", "double != float", "Float", "Double")


def _xcorr(X: torch.Tensor, K: torch.Tensor) -> torch.Tensor:
    """The grader's own cross-correlation, in float64 (what corr2d computes, without its float32 output)."""
    return F.conv2d(X.double()[None, None], K.double()[None, None])[0, 0]


def _as_tensor(value, what: str) -> torch.Tensor:
    """A returned image or kernel as a float64 tensor; numpy arrays and integer tensors are accepted."""
    try:
        import numpy
        if isinstance(value, numpy.ndarray):
            value = torch.from_numpy(value)
    except ImportError:
        pass
    value = expect_tensor(value, what)
    if value.is_complex() or value.dtype == torch.bool:
        fail(f"{what} returned {describe(value)}; a real-valued tensor was expected.")
    if value.dim() != 2:
        fail(f"{what} returned a tensor of shape {tuple(value.shape)}; a 2-D tensor was expected.")
    value = value.double()
    if not torch.isfinite(value).all():
        fail(f"{what} contains inf or nan.")
    return value


def _small_kernel(value, what: str) -> torch.Tensor:
    K = _as_tensor(value, what)
    if K.numel() == 0 or max(K.shape) > MAX_KERNEL:
        fail(f"{what} returned a kernel of shape {tuple(K.shape)}; keep it small (at most {MAX_KERNEL} × {MAX_KERNEL}).")
    return K


def _num(x: float) -> str:
    return f"{x:.3g}" if abs(x) >= 5e-4 else "0"


def _combo(*terms: tuple[float, str]) -> str:
    """A linear combination for a message: _combo((1, "a"), (-1, "b"), (0.5, "")) is "1·a − 1·b + 0.5"."""
    text = ""
    for i, (coef, name) in enumerate(terms):
        value = _num(abs(coef) if i else coef) + (f"·{name}" if name else "")
        text += value if not i else f" {'−' if coef < 0 else '+'} {value}"
    return text


# -- 7.2/1 ------------------------------------------------------------------------------------------
EDGE_K = torch.tensor([[1.0, -1.0]])


@check("7.2/1", name="diagonal", points=2, title="An image with a diagonal edge", uses=("diagonal_image",),
       expected="an n × n image whose responses to [[1, -1]] move one column per row")
def diagonal_image(p):
    sizes = [4, 5, 7, 10]
    got = p.map("diagonal_image", [((n,), {}) for n in sizes], labels=[f"diagonal_image({n})" for n in sizes])
    for n, X in zip(sizes, got):
        what = f"diagonal_image({n})"
        X = _as_tensor(X, what)
        if tuple(X.shape) != (n, n):
            fail(f"{what} has shape {tuple(X.shape)}; an image of shape ({n}, {n}) was expected.")
        Y = _xcorr(X, EDGE_K)
        scale = float(Y.abs().max())
        if scale <= 1e-12:
            fail(f"corr2d({what}, [[1, -1]]) is 0 everywhere: the image has no edge this kernel can see "
                 "(it is constant, or its edges are all horizontal).")
        tol = 1e-6 * scale
        if n > 1 and torch.allclose(Y[1:], Y[:-1], rtol=0, atol=tol):
            fail(f"corr2d({what}, [[1, -1]]) is the same in every row, which is what a vertical edge (or a ramp) "
                 "gives; along a diagonal edge the responses move over by one column per row.")
        down_right = torch.allclose(Y[1:, 1:], Y[:-1, :-1], rtol=0, atol=tol)
        down_left = torch.allclose(Y[1:, :-1], Y[:-1, 1:], rtol=0, atol=tol)
        if not (down_right or down_left):
            fail(f"the responses of [[1, -1]] on {what} do not move over by one column from each row to the "
                 "next, so its edge is not a (single) diagonal one.")
        # One edge (or one line: its two sides) crosses each row once, so along a row the responses change
        # sign at most once; a checkerboard or a texture moves diagonally too but changes sign at every pixel.
        for r, row in enumerate(Y):
            signs = torch.sign(row[row.abs() > tol])
            changes = int((signs[1:] != signs[:-1]).sum())
            if changes > 1:
                fail(f"the responses of [[1, -1]] on row {r} of {what} change sign {changes} times: the image has "
                     "several edges across that row (a checkerboard, stripes or a texture), not one diagonal edge.")
    return "the responses of [[1, -1]] move one column per row for n = 4, 5, 7, 10"


@check("7.2/1", name="corr2d", points=1, title="The section's corr2d", uses=("corr2d",),
       expected="the section's loop: Y[i, j] = (X[i:i + h, j:j + w] * K).sum()")
def corr2d_check(p):
    X0 = torch.arange(9.0).reshape(3, 3)          # the expected values are the reference's, computed before the answer's
    K0 = torch.tensor([[0.0, 1.0], [2.0, 3.0]])
    calls, expected, labels = [((X0, K0), {})], [ref.corr2d(X0, K0)], ["corr2d(X, K) on the section's example"]
    for _ in range(10):
        h, w = randint(p.rng, 1, 8), randint(p.rng, 1, 8)
        X, K = tensor(p.rng, h, w), tensor(p.rng, randint(p.rng, 1, h), randint(p.rng, 1, w))
        calls.append(((X, K), {}))
        expected.append(ref.corr2d(X, K))
        labels.append(f"corr2d(X of shape {shape_text(X)}, K of shape {shape_text(K)})")
    got = p.map("corr2d", calls, labels=labels, implement=CONVOLUTION)
    for g, e, label in zip(got, expected, labels):
        expect_close(g, e, label, rtol=1e-5, atol=1e-4)
    return "matches the section's corr2d on its example and 10 random shapes"


@check("7.2/1", name="transpose_k", points=1, title="Which edges K.T detects", uses=("kernel_t_detects",),
       expected='the kind of edges K.T = [[1], [-1]] detects: "horizontal" or "vertical"')
def kernel_t_detects(p):
    expected = ref.kernel_t_detects.strip().lower()
    answer = p.value("kernel_t_detects")
    p.answer = repr(answer)
    text = answer.strip().lower() if isinstance(answer, str) else ""
    said = {w for w in ("horizontal", "vertical") if w in text}
    if len(said) != 1:
        fail(f'`kernel_t_detects` should be "horizontal" or "vertical", not {answer!r}.')
    if said != {expected}:
        # the named mistake (the seed's answer): what K and K.T detect, the other way round
        fail("not right: K = [[1, -1]] subtracts a pixel and its right-hand neighbour, so it detects vertical edges; "
             "work out which two pixels K.T = [[1], [-1]] subtracts, and where in an image that difference is large.",
             reveal="K.T subtracts a pixel and the one below it, so it responds where brightness changes from one "
                    f"row to the next, i.e. it detects {expected} edges. Transposing K turns the vertical-edge "
                    f"detector into a {expected}-edge detector, not the other way round.")
    return f"K.T = [[1], [-1]] detects {expected} edges"


# -- 7.2/2.1 ----------------------------------------------------------------------------------------
def _directions(p) -> list[tuple[float, float]]:
    """The two axes, then random unit vectors (including both signs of each component)."""
    vs = [(1.0, 0.0), (0.0, 1.0)]
    for _ in range(6):
        angle = float(torch.rand((), generator=p.rng, dtype=torch.float64)) * 2 * math.pi
        vs.append((math.cos(angle), math.sin(angle)))
    return vs


def _edge_kernels(p):
    vs = _directions(p)
    labels = [f"edge_kernel(v=({_num(v[0])}, {_num(v[1])}))" for v in vs]
    got = p.map("edge_kernel", [((v,), {}) for v in vs], labels=labels)
    return [(v, _small_kernel(K, label), label) for v, K, label in zip(vs, got, labels)]


def _ramp(a: float, b: float, h: int = 12, w: int = 12) -> torch.Tensor:
    y, x = torch.meshgrid(torch.arange(h, dtype=torch.float64), torch.arange(w, dtype=torch.float64), indexing="ij")
    return a * x + b * y


@check("7.2/2.1", name="flat", points=1, title="Edge kernel: no response on a flat image", uses=("edge_kernel",),
       expected="corr2d(constant image, K) = 0 (the weights add up to 0)")
def edge_kernel_flat(p):
    for v, K, label in _edge_kernels(p):
        c = 0.5 + 2.5 * float(torch.rand((), generator=p.rng, dtype=torch.float64))
        Y = _xcorr(torch.full((12, 12), c, dtype=torch.float64), K)
        if Y.abs().max() > 1e-5 * c * max(1.0, float(K.abs().sum())):
            fail(f"{label} responds to a constant image (brightness {c:.3g} gives {float(Y[0, 0]):.3g}): its weights "
                 f"add up to {_num(float(K.sum()))} instead of 0, so flat regions look like edges.")
    return "gives 0 on constant images for 8 directions"


@check("7.2/2.1", points=2, title="Edge kernel: the derivative along v", uses=("edge_kernel",),
       expected="on every ramp a·x + b·y the output is constant and equals c·(v1·a + v2·b), one c > 0")
def edge_kernel_derivative(p):
    for v, K, label in _edge_kernels(p):
        v1, v2 = v
        scale = max(float(K.abs().sum()), 1e-300)
        ramps = [(1.0, 0.0), (0.0, 1.0)] + [tuple(float(t) for t in 4 * torch.rand(2, generator=p.rng, dtype=torch.float64) - 2)
                                            for _ in range(3)]
        response = {}
        for a, b in ramps:
            Y = _xcorr(_ramp(a, b), K)
            if float(Y.max() - Y.min()) > 1e-6 * scale * 12 * (abs(a) + abs(b)):
                fail(f"{label}: on the ramp I = {_combo((a, 'x'), (b, 'y'))} its output changes from place to place "
                     f"(from {float(Y.min()):.3g} to {float(Y.max()):.3g}); the derivative of a ramp is the same "
                     "everywhere, so the kernel's weights must add up to 0.")
            response[(a, b)] = float(Y.mean())
        mx, my = response[(1.0, 0.0)], response[(0.0, 1.0)]
        norm = math.hypot(mx, my)
        if norm <= 1e-9 * scale:
            fail(f"{label} gives 0 on every ramp: it measures no derivative at all, so it cannot find edges.")
        c = mx * v1 + my * v2
        if c <= 0 or math.hypot(mx - c * v1, my - c * v2) > 1e-5 * norm:
            if math.hypot(mx + norm * v1, my + norm * v2) <= 1e-5 * norm:
                why = " It measures the derivative along −v: flip its sign."
            elif abs(c) <= 1e-5 * norm:
                why = " It measures the change across v, so it finds edges parallel to v instead of orthogonal to it."
            else:
                why = ""
            fail(f"{label} does not respond like the derivative along v: on a ramp I = a·x + b·y it gives "
                 f"{_combo((mx, 'a'), (my, 'b'))}, which is not a positive multiple of v1·a + v2·b = "
                 f"{_combo((v1, 'a'), (v2, 'b'))} (x runs along the columns, y down the rows).{why}")
        for (a, b), r in response.items():
            if abs(r - c * (v1 * a + v2 * b)) > 1e-5 * norm * (abs(a) + abs(b)):
                fail(f"{label}: on the ramp I = {_combo((a, 'x'), (b, 'y'))} it gives {r:.4g}, "
                     f"not {c * (v1 * a + v2 * b):.4g} = c·(v1·a + v2·b) with the c of the other ramps.")
        # Exact on ramps is not enough: adding a second difference across v keeps every ramp's response and
        # makes the kernel fire on edges that run along v. Compare the two edges through the same point.
        along, across = _edge_image((-v2, v1)), _edge_image((v1, v2))
        ratio = float(_xcorr(along, K).abs().max() / _xcorr(across, K).abs().max().clamp_min(1e-300))
        if ratio > PARALLEL_EDGE_RATIO:
            fail(f"{label} responds to an edge running along v {ratio:.0%} as strongly as to an edge across v: a "
                 "derivative along v barely sees brightness that is constant along v (it should detect only edges "
                 "orthogonal to v, not those parallel to it).")
    return "responds like c·(derivative along v), c > 0, for 8 directions and 5 ramps each, and hardly to edges along v"


PARALLEL_EDGE_RATIO = 0.5     # forward differences reach 0.24 on oblique edges, a Sobel-type kernel 0.02


def _edge_image(normal, size: int = 16, softness: float = 0.5) -> torch.Tensor:
    """A slightly smoothed step edge through the image's centre, with the given normal."""
    y, x = torch.meshgrid(torch.arange(size, dtype=torch.float64), torch.arange(size, dtype=torch.float64), indexing="ij")
    c = (size - 1) / 2
    return torch.sigmoid(((x - c) * normal[0] + (y - c) * normal[1]) / softness)


# -- 7.2/2.2 ----------------------------------------------------------------------------------------
@check("7.2/2.2", points=2, title="Second-derivative kernel", uses=("second_derivative_kernel",),
       expected="1×k or k×1; corr2d on samples of x² (along its axis) gives 2 everywhere, on ramps 0")
def second_derivative(p):
    what = "second_derivative_kernel()"
    K = _small_kernel(p.call("second_derivative_kernel"), what)
    if K.shape[0] != 1 and K.shape[1] != 1:
        fail(f"{what} has shape {tuple(K.shape)}; return the kernel along one axis, shape (1, k) (along x) or "
             "(k, 1) (along y). A 2-D version such as the Laplacian belongs in the written answer.")
    along_x = K.shape[0] == 1
    axis = "x (along the columns)" if along_x else "y (down the rows)"
    h, w = 10, 11
    for _ in range(3):
        a, b, d = (float(t) for t in 4 * torch.rand(3, generator=p.rng, dtype=torch.float64) - 2)
        ramp = _ramp(a, b, h, w) + d
        Y = _xcorr(ramp, K)
        if Y.abs().max() > 1e-6 * float(ramp.abs().max()) * float(K.abs().sum()) + 1e-9:
            fail(f"{what} responds to the linear ramp {_combo((a, 'x'), (b, 'y'), (d, ''))} (up to "
                 f"{float(Y.abs().max()):.3g}); the second derivative of a ramp is 0.")
    for _ in range(3):
        s, g, d = (float(t) for t in 6 * torch.rand(3, generator=p.rng, dtype=torch.float64) - 3)
        y, x = torch.meshgrid(torch.arange(h, dtype=torch.float64), torch.arange(w, dtype=torch.float64), indexing="ij")
        image = (x - s) ** 2 + g * y + d if along_x else (y - s) ** 2 + g * x + d
        Y = _xcorr(image, K)
        tol = 1e-6 * float(image.abs().max()) * float(K.abs().sum()) + 1e-9
        if float(Y.max() - Y.min()) > tol:
            fail(f"{what} gives values from {float(Y.min()):.3g} to {float(Y.max()):.3g} on samples of a parabola "
                 f"along {axis}; its second derivative is 2 everywhere.")
        if abs(float(Y.mean()) - 2) > tol:
            fail(f"{what} gives {float(Y.mean()):.4g} on samples of x² along {axis}, but the second derivative of x² "
                 "is 2: check the kernel's scale and sign.")
    return f"gives 2 on parabolas and 0 on ramps (along {axis.split()[0]})"


@check("7.2/2.2", name="size", points=1, title="Smallest second-derivative kernel",
       uses=("min_size_second_derivative",),
       expected="the number of taps of the shortest kernel that estimates a second derivative")
def second_derivative_size(p):
    expected = ref.min_size_second_derivative
    answer = p.value("min_size_second_derivative")
    p.answer = repr(answer)
    if isinstance(answer, bool) or not isinstance(answer, (int, float)):
        fail(f"`min_size_second_derivative` should be a number of taps (an int), not {describe(answer)}.")
    if answer != expected:
        fail(f"`min_size_second_derivative` is {answer!r}, which is not right: count the samples the shortest "
             "finite difference for a second derivative combines (it must vanish on lines, not only on constants).")


# -- 7.2/2.3 ----------------------------------------------------------------------------------------
SPREAD_SIZE = 9          # wide enough that the tails of the spread probes' Gaussians are not cut off much
SPREAD_TOLERANCE = 0.12  # a Gaussian integrated over each pixel is 8 % wider at sigma 0.65; sigma-formula slips are 15-100 %


def _spread(K: torch.Tensor) -> float:
    """The standard deviation, in pixels, of the kernel's weights along its rows."""
    p = K.double().sum(1)
    r = torch.arange(K.shape[0], dtype=torch.float64) - (K.shape[0] - 1) / 2
    return float((p * r ** 2).sum() / p.sum()) ** 0.5


def _gaussian_spread(size: int, sigma: float) -> float:
    """The spread of the exercise's Gaussian with standard deviation sigma, cut to size × size."""
    r = torch.arange(size, dtype=torch.float64) - (size - 1) / 2
    g = torch.exp(-r ** 2 / (2 * sigma ** 2))
    return _spread(g[:, None] * g[None, :])


def _judge_blur(p, size, value, label) -> torch.Tensor:
    K = _small_kernel(value, label)
    if tuple(K.shape) != (size, size):
        fail(f"{label} has shape {tuple(K.shape)}; a ({size}, {size}) kernel was expected.")
    if K.min() < -1e-7:
        fail(f"{label} has negative weights (the smallest is {float(K.min()):.3g}); a blur is an average, "
             "so every weight must be at least 0.")
    total = float(K.sum())
    if abs(total - 1) > 1e-4:
        fail(f"{label}: its weights add up to {total:.4g}, not 1, so an image would come out {total:.3g} "
             "times as bright.")
    tol = 1e-6 * float(K.abs().max())
    for flipped, how in ((K.flip(1), "left to right"), (K.flip(0), "upside down"), (K.T, "across the diagonal")):
        if not torch.allclose(K, flipped, rtol=0, atol=tol):
            fail(f"{label} is not symmetric: mirroring it {how} changes it, so it would shift the image or blur "
                 "some directions more than others.")
    c = 0.5 + float(torch.rand((), generator=p.rng, dtype=torch.float64))
    Y = _xcorr(torch.full((size + 6, size + 6), c, dtype=torch.float64), K)
    if not torch.allclose(Y, torch.full_like(Y, c), rtol=1e-4, atol=0):
        fail(f"{label} changes a constant image of brightness {c:.3g} (to {float(Y.mean()):.4g}).")
    noise = torch.randn(64, 64, generator=p.rng, dtype=torch.float64)
    kept = float(_xcorr(noise, K).var() / noise.var())
    if kept > 0.9:
        fail(f"{label} does not smooth: random noise keeps {kept:.0%} of its variance after it; a blur averages "
             "several pixels with comparable weights.")
    return K


def _judge_sigma(p) -> str:
    """sigma is the blur's standard deviation: a kernel that follows sigma must spread as far as the exercise's
    Gaussian at several sigmas (one below 1, two above, so that exp(-r²/(2σ²)) with σ, σ², σ³ or no σ in the
    wrong place differs at one of them); a kernel that ignores sigma must be the box filter the exercise allows."""
    draws = torch.rand(3, generator=p.rng, dtype=torch.float64)
    sigmas = [round(lo + width * float(u), 2) for (lo, width), u in zip(((0.65, 0.15), (1.2, 0.2), (1.6, 0.3)), draws)]
    labels = [f"blur_kernel({SPREAD_SIZE}, sigma) for one of the hidden sigma values"] * len(sigmas)
    got = p.map("blur_kernel", [((SPREAD_SIZE, s), {}) for s in sigmas], labels=labels)
    kernels = [_judge_blur(p, SPREAD_SIZE, value, label) for value, label in zip(got, labels)]
    if all(torch.allclose(K.double(), kernels[0].double(), rtol=1e-4, atol=1e-7) for K in kernels[1:]):
        box = torch.full_like(kernels[0].double(), 1 / kernels[0].numel())
        if not torch.allclose(kernels[0].double(), box, rtol=1e-4, atol=1e-7):
            fail(f"blur_kernel({SPREAD_SIZE}, sigma) returns the same weights for every sigma: a blur that is not a "
                 "box filter should spread as far as sigma says (its standard deviation).")
        return "a box filter (it ignores sigma, which the exercise allows)"
    for K, sigma in zip(kernels, sigmas):
        ratio = _spread(K) / _gaussian_spread(SPREAD_SIZE, sigma)
        if abs(ratio - 1) > SPREAD_TOLERANCE:
            fail(f"blur_kernel({SPREAD_SIZE}, sigma) for one of the hidden sigma values spreads {ratio:.2f} times as "
                 "far as a Gaussian with standard deviation sigma: check where sigma enters the exponent, "
                 "exp(-r²/(2σ²)).")
    return f"spreads as far as a Gaussian with standard deviation sigma, for {len(sigmas)} sigmas"


@check("7.2/2.3", points=2, title="Blur kernel", uses=("blur_kernel",),
       expected="size × size, weights ≥ 0 adding up to 1, symmetric; constant images unchanged, noise variance smaller; "
                "a kernel that depends on sigma spreads as far as a Gaussian with standard deviation sigma")
def blur(p):
    # Drawn from the check's seed, sigma never printed: an answer cannot special-case the pairs it is asked for.
    cases = [(2 * randint(p.rng, 1, 3) + 1, round(0.6 + 2 * float(torch.rand((), generator=p.rng)), 2)) for _ in range(6)]
    labels = [f"blur_kernel({s}, sigma) for one of the hidden sigma values" for s, _ in cases]
    got = p.map("blur_kernel", [((s, sigma), {}) for s, sigma in cases], labels=labels)
    for (size, _), value, label in zip(cases, got, labels):
        _judge_blur(p, size, value, label)
    how = _judge_sigma(p)
    return f"nonnegative, sums to 1, symmetric, keeps constants and reduces noise for {len(cases)} random (size, sigma) pairs; {how}"


# -- 7.2/2.4 ----------------------------------------------------------------------------------------
@check("7.2/2.4", points=1, title="Kernel size for a derivative of order d", uses=("min_kernel_size_derivative",),
       expected=f"{ref.formula('min_kernel_size_derivative')}", reveals=True)
def derivative_size(p):
    p.answer = p.text("min_kernel_size_derivative")
    # d up to 64: with the wide values, 71 distinct points, enough for a student kit (which samples, needing 50);
    # 1..12 gives only 24 (the course folder proves the formula either way)
    domains = {"d": Domain("int", 1, 64)}
    try:
        how = expect_formula(p.answer, ref.formula("min_kernel_size_derivative"), what="`min_kernel_size_derivative`",
                             domains=domains)
    except WrongAnswer as wrong:
        try:       # a named wrong formula: the centred stencil's bound
            expect_formula(p.answer, "2*d + 1", what="", domains=domains)
        except WrongAnswer:
            raise wrong from None
        fail(f"{wrong.message} 2d + 1 taps is what a stencil symmetric around the centre needs at most; a one-sided "
             "difference needs only enough samples to fit a polynomial of degree d.")
    return f"the number of taps: {how}"


# -- 7.2/4 ------------------------------------------------------------------------------------------
def _column_major(got, expected: torch.Tensor) -> bool:
    """True when `got` holds the right values in column-major order (row and column indices swapped)."""
    if not isinstance(got, torch.Tensor) or got.numel() != expected.numel() or min(expected.shape) < 2 \
            or not got.dtype.is_floating_point:
        return False
    return torch.allclose(got.double().reshape(-1), expected.double().T.reshape(-1), rtol=1e-4, atol=1e-4)


def _tolerance(dtype):
    return (1e-5, 1e-4) if dtype == torch.float32 else (None, None)


@check("7.2/4", name="corr2d_matmul", points=2, title="Cross-correlation as a matrix product", uses=("corr2d_matmul",),
       expected="corr2d(X, K) in X's dtype (float32 and float64), computed with a matrix product")
def corr2d_matmul(p):
    calls, expected, labels = [], [], []
    for i in range(12):
        dtype = (torch.float32, torch.float64)[i % 2]
        h, w = randint(p.rng, 1, 9), randint(p.rng, 1, 9)
        X = tensor(p.rng, h, w, dtype=dtype)
        K = tensor(p.rng, randint(p.rng, 1, h), randint(p.rng, 1, w), dtype=dtype)
        calls.append(((X, K), {}))
        expected.append(_xcorr(X, K).to(dtype))
        labels.append(f"corr2d_matmul(X {str(dtype)[6:]} of shape {shape_text(X)}, K of shape {shape_text(K)})")
    try:
        got = p.map("corr2d_matmul", calls, labels=labels, implement=CONVOLUTION)
    except StudentError as error:
        if any(word in error.message for word in DTYPE_ERROR):
            raise StudentError(f"{error.message[:-1]}: your function mixes dtypes. Keep the dtype of X and K "
                               "(do not cast the kernel or its matrix to float32 with .float()/.type(torch.float32); "
                               "build it with X.dtype).", detail=error.detail) from None
        raise
    for g, e, label in zip(got, expected, labels):
        if _column_major(g, e) and not (isinstance(g, torch.Tensor) and g.shape == e.shape and
                                        torch.allclose(g.double(), e.double(), rtol=1e-4, atol=1e-4)):
            fail(f"{label} holds the right values in the wrong order: they are the transpose of corr2d's "
                 "(row and column indices swapped, column-major instead of row-major).")
        rtol, atol = _tolerance(e.dtype)
        expect_close(g, e, label, rtol=rtol, atol=atol)
    # a shape where nothing degenerates (a 1×1 kernel or a single output turns a product into a plain mul)
    X, K = tensor(p.rng, 6, 7, dtype=torch.float64), tensor(p.rng, 2, 3, dtype=torch.float64)
    ops, poisoned = p.run(call_with_noisy_products, "corr2d_matmul", X, K)
    if not set(ops) & MATMUL_OPS:
        fail(f"`corr2d_matmul` gives the right values but computes them without a matrix product (it runs only "
             f"{', '.join(sorted(ops)[:6]) or 'no tensor operations'}); build a matrix from the input or the kernel and "
             "multiply it (`@`, torch.matmul).")
    if isinstance(poisoned, torch.Tensor) and poisoned.shape == (5, 5):
        untouched = int(torch.isclose(poisoned.double(), _xcorr(X, K), rtol=1e-9, atol=1e-12).sum())
        if untouched:
            fail(f"`corr2d_matmul` runs a matrix product, but {untouched} of the 25 output values do not come from it "
                 "(when the grader adds noise to every product's result, those values stay the same): the product "
                 "must compute the cross-correlation, not sit beside a loop that does.")
    return "equals corr2d on 12 random shapes in float32 and float64, through a matrix product"


@check("7.2/4", name="kernel_matrix", points=2, title="The kernel as a matrix", uses=("kernel_matrix",),
       expected="W of shape (n_out, n_h·n_w), row-major, W @ X.reshape(-1) == corr2d(X, K).reshape(-1), ≤ k_h·k_w nonzeros per row")
def kernel_matrix(p):
    calls, shapes, labels, expected = [], [], [], []
    for i in range(10):
        dtype = (torch.float32, torch.float64)[i % 2]
        h, w = randint(p.rng, 1, 8), randint(p.rng, 1, 8)
        K = tensor(p.rng, randint(p.rng, 1, h), randint(p.rng, 1, w), dtype=dtype)
        K[K == 0] = 0.5          # every kernel weight nonzero: the count of nonzeros per row is then exact
        calls.append(((K, (h, w)), {}))
        shapes.append((h, w))
        labels.append(f"kernel_matrix(K {str(dtype)[6:]} of shape {shape_text(K)}, X_shape=({h}, {w}))")
        expected.append(ref.kernel_matrix(K, (h, w)))
    got = p.map("kernel_matrix", calls, labels=labels)
    for W, ((K, _), _), (h, w), label, W_ref in zip(got, calls, shapes, labels, expected):
        kh, kw = K.shape
        n_out, n_in = (h - kh + 1) * (w - kw + 1), h * w
        W = expect_tensor(W, label)
        if W.dim() != 2:
            fail(f"{label} returned a tensor of shape {tuple(W.shape)}; W must be a matrix of shape "
                 f"(number of outputs, number of inputs) = ({n_out}, {n_in}).")
        if W.shape[1] != n_in:
            fail(f"{label} has {W.shape[1]} columns; it needs one column per input pixel, {h}·{w} = {n_in}.")
        if W.shape[0] != n_out:
            fail(f"{label} has {W.shape[0]} rows; it needs one row per output position, "
                 f"({h} − {kh} + 1)·({w} − {kw} + 1) = {n_out}.")
        X = torch.randn(h, w, generator=p.rng, dtype=torch.float64)
        product = W.double() @ X.reshape(-1)
        target = _xcorr(X, K).reshape(-1)
        if not torch.allclose(product, target, rtol=1e-5, atol=1e-6):
            wrong = int((~torch.isclose(product, target, rtol=1e-5, atol=1e-6)).sum())
            order = _column_major(product, target.reshape(h - kh + 1, w - kw + 1))
            fail(f"{label}: W @ X.reshape(-1) differs from corr2d(X, K).reshape(-1) in {wrong} of {n_out} positions"
                 + (" (its rows are in column-major order: row i·n_w_out + j must hold output (i, j))." if order else
                    "; each row must hold the kernel's rows at the input columns they cover, with the gaps of the "
                    "input's width between them."))
        nonzeros = (W != 0).sum(1)
        if int(nonzeros.max()) > kh * kw:
            row = int(nonzeros.argmax())
            fail(f"{label}: row {row} has {int(nonzeros[row])} nonzeros; each row holds only the {kh}·{kw} kernel weights.")
        expect_close(W, W_ref, label)
    return "the right matrix for 10 random shapes in float32 and float64"
