"""Inputs that find mistakes (issue 22, hole 5): formulas sampled between and around their breakpoints, structured
kernels for 7.4/1.3, several sigmas for 7.2/2.3, realistic batches and moved γ, β for 8.5. Each grader is tested
both ways: the mistake loses its points with a message naming it; a right answer in another style keeps them."""
import json
import os
import subprocess
import sys

import pytest

from d2lgrade.values import expected
from d2lgrade.core import results as R
from d2lgrade.core.checks import WrongAnswer
from d2lgrade.compare.formulas import CouldNotVerify, Domain, expect_formula, expect_formula_among
from d2lgrade.compare import symbolic
from d2lgrade.compare.equality import compare_expressions
from d2lgrade.testing import assert_right, assert_wrong


def one(runners, source, check_id):
    section_id = check_id.split("/")[0]
    [result] = [r for r in runners(section_id).grade(source, check_id) if r.id == check_id]
    return result


# -- 7.4/1.3: structured kernels ------------------------------------------------------------------------
SVD = "def is_separable(K):\n    s = torch.linalg.svdvals(K.double())\n    return bool(s.numel() < 2 or {test})\n"


@pytest.mark.parametrize("test, words", [
    ("s[1] <= 1e-05 / s[0]", ["scaled by", "relative"]),           # the audit's surviving mutant
    ("s[1] <= 1e-6", ["scaled by"]),                                # an absolute tolerance
], ids=["threshold-not-scaled", "absolute-tolerance"])
def test_separability_thresholds_that_do_not_scale_fail(runners, test, words):
    assert_wrong(one(runners, SVD.format(test=test), "7.4/1.3"), words)


MINOR = """
def is_separable(K):   # only the top-left 2 x 2 minor
    K = K.double()
    if min(K.shape) < 2:
        return True
    return bool(abs(K[0, 0] * K[1, 1] - K[0, 1] * K[1, 0]) <= 1e-5 * K.abs().max() ** 2)
"""
FIRST_ROW = """
def is_separable(K):   # every row a multiple of the first, read off its first entry
    K = K.double()
    approx = K[:, :1] * K[:1, :] / K[0, 0]
    return bool(torch.allclose(approx, K, rtol=1e-5, atol=1e-6 * float(K.abs().max())))
"""


@pytest.mark.parametrize("source, words", [
    (MINOR, ["top-left 2 × 2 block has rank 1", "not an outer product"]),
    (FIRST_ROW, ["zero"]),
], ids=["one-minor", "divides-by-corner"])
def test_separability_shortcuts_fail(runners, source, words):
    assert_wrong(one(runners, source, "7.4/1.3"), words)


PIVOT_SEPARATE = """
def separate(K):   # the pivot row and column: K[0, 0] may be zero
    K = K.double()
    i, j = divmod(int(K.abs().argmax()), K.shape[1])
    return K[:, j] / K[i, j], K[i, :]
"""


def test_separate_by_the_corner_fails_and_by_the_pivot_passes(runners):
    corner = "def separate(K):\n    return K[:, 0] / K[0, 0], K[0, :].clone()\n"
    assert_wrong(one(runners, corner, "7.4/1.3:separate"), "zero")
    assert_right(one(runners, PIVOT_SEPARATE, "7.4/1.3:separate"))


@pytest.mark.parametrize("source", [
    SVD.format(test="s[1] <= 1e-5 * s[0]"),
    "def is_separable(K):\n    return bool(torch.linalg.matrix_rank(K.double(), rtol=1e-5) == 1)",
    """
def is_separable(K):   # normalise first, then an absolute tolerance is a relative one
    K = K.double() / K.abs().max()
    s = torch.linalg.svdvals(K)
    return len(s) < 2 or bool(s[1] < 1e-6)
""",
], ids=["relative-svd", "matrix-rank", "normalised"])
def test_separability_in_other_styles_passes(runners, source):
    assert_right(one(runners, source, "7.4/1.3"))


# -- 7.2/2.3: sigma is the blur's standard deviation ----------------------------------------------------------
GAUSS = """
def blur_kernel(size, sigma):
    r = torch.arange(size, dtype=torch.float64) - (size - 1) / 2
    g = torch.exp(-r ** 2 / ({denominator}))
    K = g[:, None] * g[None, :]
    return (K / K.sum()).float()
"""


@pytest.mark.parametrize("denominator", [
    "2 / sigma ** 2", "2 * (sigma * 2)", "3 * sigma ** 2", "1 * sigma ** 2", "2 * sigma ** 3", "2 * sigma",
    "sigma ** 2"])
def test_sigma_in_the_wrong_place_fails(runners, denominator):
    assert_wrong(one(runners, GAUSS.format(denominator=denominator), "7.2/2.3"),
                 ["times as far as a Gaussian with standard deviation sigma", "exponent"])


@pytest.mark.parametrize("denominator", ["1", "2"])
def test_a_gaussian_without_sigma_fails(runners, denominator):
    assert_wrong(one(runners, GAUSS.format(denominator=denominator), "7.2/2.3"), ["same weights for every sigma"])


@pytest.mark.parametrize("source", [
    GAUSS.format(denominator="2 * sigma ** 2"),
    # the Gaussian integrated over each pixel (a little wider than the sampled one)
    """
import math
def blur_kernel(size, sigma):
    r = torch.arange(size, dtype=torch.float64) - (size - 1) / 2
    cdf = lambda x: 0.5 * (1 + torch.erf(x / (sigma * math.sqrt(2))))
    g = cdf(r + 0.5) - cdf(r - 0.5)
    return torch.outer(g, g) / g.sum() ** 2
""",
    # isotropic in 2-D, with the continuous normalisation then renormalised
    """
def blur_kernel(size, sigma):
    c = size // 2
    y, x = torch.meshgrid(torch.arange(size) - c, torch.arange(size) - c, indexing="ij")
    K = torch.exp(-(x ** 2 + y ** 2) / (2 * sigma ** 2)) / (2 * math.pi * sigma ** 2)
    return K / K.sum()
""",
    "def blur_kernel(size, sigma):\n    return torch.full((size, size), 1.0 / size ** 2)",   # a box ignores sigma
], ids=["sampled", "integrated", "isotropic", "box"])
def test_gaussians_in_other_styles_and_the_box_pass(runners, source):
    assert_right(one(runners, source, "7.2/2.3"))


# -- formulas: the gaps between the fixed values, and the breakpoints of piecewise terms -------------------------
SIZE = "k1 + k2 - 1"
KERNELS = {"k1": Domain("int", 1, 12), "k2": Domain("int", 1, 12)}         # for expect_formula
SYMBOLIC = {name: symbolic.Domain(d.kind, d.low, d.high) for name, d in KERNELS.items()}   # for compare_expressions


@pytest.mark.parametrize("student, where", [
    (f"{SIZE} + Max(0, 20 - k1)*Max(0, k1 - 18)", {"k1": 19}),          # between the book sizes 13 and 25
    (f"{SIZE} + Max(0, 3000 - k2)*Max(0, k2 - 2998)", {"k2": 2999}),    # between 1000 and 4096
    (f"{SIZE} + floor(k1/37) - floor((k1 - 1)/37)", {"k1": 37}),        # a step at multiples of 37 only
    (f"{SIZE} + relu(1 - Abs(k2 - 500))", {"k2": 500}),
], ids=["bump-19", "bump-2999", "floor-steps", "relu-spike"])
def test_a_term_between_the_fixed_values_is_found(student, where):
    result = compare_expressions(student, SIZE, domains=SYMBOLIC)
    assert result.verdict == "different", result.message
    assert all(result.counterexample[k] == v for k, v in where.items()), result.message


def test_a_narrow_real_bump_beyond_the_range_is_found():
    domains = {"a": symbolic.Domain("real", -3, 3), "b": symbolic.Domain("real", -3, 3)}
    result = compare_expressions("Max(a, b) + Max(0, 1/100 - Abs(a - 7))", "Max(a, b)", domains=domains)
    assert result.verdict == "different" and result.counterexample["a"] == 7, result.message


@pytest.mark.parametrize("student", ["Max(k1 + k2 - 1, 1)", "(k1 - 1) + (k2 - 1) + 1", "k1 + k2 - Min(k1, k2, 1)"])
def test_right_formulas_with_piecewise_terms_stay_right(student):
    assert compare_expressions(student, SIZE, domains=SYMBOLIC).verdict == "equal"


def test_the_extra_points_do_not_depend_on_string_hashing():
    student = "k1 + k2 - 1 + Max(0, 3000 - k1*k2)*Max(0, k1*k2 - 2990)"
    code = ("from d2lgrade.compare.equality import compare_expressions\nfrom d2lgrade.compare.symbolic import Domain\n"
            "d = {'k1': Domain('int', 1, 12), 'k2': Domain('int', 1, 12)}\n"
            f"print(compare_expressions({student!r}, 'k1 + k2 - 1', domains=d).message)")
    other = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                           env={**os.environ, "PYTHONHASHSEED": "1" if os.environ.get("PYTHONHASHSEED") != "1" else "2"})
    here = compare_expressions(student, SIZE, domains=SYMBOLIC).message
    assert other.stdout.strip() == here and "your formula gives" in here


def test_a_kit_finds_a_gap_term_from_the_recorded_values(monkeypatch):
    recorder = expected.Recorder()
    with expected.record_into(recorder), expected.checking("7.4/1.2"):
        expect_formula(SIZE, expected.reference("7.4").formula("composed_size"), what="x", domains=KERNELS)
    payload = json.loads(json.dumps(recorder.payload("7.4")))
    monkeypatch.setattr(expected, "mode", lambda: "replay")
    monkeypatch.setattr(expected, "_replayed", lambda section: payload)
    kit_formula = expected.reference("7.4").formula("composed_size")
    with pytest.raises(WrongAnswer, match="at k1=19"):
        expect_formula(f"{SIZE} + Max(0, 20 - k1)*Max(0, k1 - 18)", kit_formula, what="x", domains=KERNELS)
    assert "not a proof" in expect_formula("k2 + k1 - 1", kit_formula, what="x", domains=KERNELS)


def test_composed_size_with_a_bump_loses_its_point(runners):
    assert_wrong(one(runners, f'composed_size = "{SIZE} + Max(0, 20 - k1)*Max(0, k1 - 18)"', "7.4/1.2"),
                 ["at k1=19", "your formula gives"])


# -- formulas: too few points is not a timeout ----------------------------------------------------------------
def test_max_b_1_is_the_speed_up(runners):
    result = one(runners, 'block_speedup = "Max(b, 1)"', "7.4/7.1")
    assert_right(result)
    assert "whole number" in result.message


def test_a_shortage_of_points_is_could_not_verify_not_a_timeout():
    # valid only for b >= 7: too few points, and no proof (Max(b, 7) is b only there, which the domain does not say)
    with pytest.raises(CouldNotVerify, match=r"could only check \d+ valid sample points") as raised:
        expect_formula_among("Max(b, 7)", [("b", None)], what="`x`", domains={"b": Domain("int", 1, 64)},
                             constraint=lambda v: v["b"] >= 7, symbols=("b",))
    assert raised.value.status == R.MANUAL
    with pytest.raises(CouldNotVerify, match="could not verify this formula within") as raised:
        expect_formula_among("b + relu(a - b)", [("Max(a, b)", None)], what="`x`", time_budget=1e-4,
                             domains={"a": Domain("real", -3, 3), "b": Domain("real", -3, 3)}, symbols=("a", "b"))
    assert raised.value.status == R.MANUAL


# -- 8.5: realistic batch sizes, γ and β moved away from 1 and 0 ----------------------------------------------
BATCH_NORM_FN = """
def batch_norm(X, gamma, beta, moving_mean, moving_var, eps, momentum):
    dims = (0,) if X.dim() == 2 else (0, 2, 3)
    if not torch.is_grad_enabled(){switch}:
        X_hat = (X - moving_mean) / torch.sqrt(moving_var + eps)
    else:
        mean, var = X.mean(dims, keepdim=True), X.var(dims, unbiased=False, keepdim=True)
        X_hat = (X - mean) / torch.sqrt(var + eps)
        moving_mean = (1 - momentum) * moving_mean + momentum * mean
        moving_var = (1 - momentum) * moving_var + momentum * var
    return gamma * X_hat + beta, moving_mean.detach(), moving_var.detach()
"""


def test_batch_norm_that_changes_above_16_fails(runners):
    cheat = BATCH_NORM_FN.format(switch=" or X.shape[0] > 16")      # the running averages for large batches
    assert_wrong(one(runners, cheat, "8.5/4:batch_norm"), ["of shape (64", "running averages"])
    assert_right(one(runners, BATCH_NORM_FN.format(switch=""), "8.5/4:batch_norm"))


LAYER = """
class BatchNorm(nn.Module):
    def __init__(self, num_features, num_dims):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(num_features))     # shaped (C,), viewed in forward
        self.bias = nn.Parameter(torch.zeros(num_features))
        self.register_buffer("mean", torch.zeros(num_features))
        self.register_buffer("var", torch.ones(num_features))

    def forward(self, X):
        view = (1, -1) + (1,) * (X.dim() - 2)
        dims = [0] + list(range(2, X.dim()))
        if self.training{switch}:
            mean, var = X.mean(dims), X.var(dims, unbiased=False)
            n = X.numel() // X.shape[1]
            with torch.no_grad():
                self.mean.lerp_(mean, 0.1)
                self.var.lerp_(var * n / (n - 1), 0.1)
        else:
            mean, var = self.mean, self.var
        X_hat = (X - mean.reshape(view)) / torch.sqrt(var.reshape(view) + 1e-5)
        return {output}
"""
AFFINE = "self.weight.reshape(view) * X_hat + self.bias.reshape(view)"


@pytest.mark.parametrize("switch, output, words", [
    ("", "X_hat", ["after γ and β were set to other values", "does not use its own γ and β"]),
    ("", "self.weight.reshape(view) * X_hat", ["does not compute γ·(normalised X) + β"]),
    (" and X.shape[0] <= 16", AFFINE, ["batch of 64", "batch size"]),
], ids=["ignores-gamma-beta", "ignores-beta", "running-stats-above-16"])
def test_norm_layers_that_ignore_gamma_beta_or_large_batches_fail(runners, switch, output, words):
    assert_wrong(one(runners, LAYER.format(switch=switch, output=output), "8.5/4:BatchNorm"), words)


@pytest.mark.parametrize("source", [
    LAYER.format(switch="", output=AFFINE),
    """
class BatchNorm(nn.Module):   # F.batch_norm with its own weight and bias
    def __init__(self, num_features, num_dims):
        super().__init__()
        self.gamma, self.beta = nn.Parameter(torch.ones(num_features)), nn.Parameter(torch.zeros(num_features))
        self.register_buffer("rm", torch.zeros(num_features))
        self.register_buffer("rv", torch.ones(num_features))
    def forward(self, X):
        return F.batch_norm(X, self.rm, self.rv, self.gamma, self.beta, self.training, 0.1, 1e-5)
""",
], ids=["shaped-C", "functional"])
def test_norm_layers_in_other_styles_pass(runners, source):
    assert_right(one(runners, source, "8.5/4:BatchNorm"))


def test_centre_only_must_use_its_shift(runners):
    source = LAYER.replace("class BatchNorm", "class CenterOnlyNorm").replace(
        "        self.weight = nn.Parameter(torch.ones(num_features))     # shaped (C,), viewed in forward\n", "")
    centred = "X - mean.reshape(view)"
    ignores = source.format(switch="", output=centred).replace(
        "X_hat = (X - mean.reshape(view)) / torch.sqrt(var.reshape(view) + 1e-5)", "X_hat = X")
    assert_wrong(one(runners, ignores, "8.5/4:centre"), ["does not use its own β"])
    right = source.format(switch="", output=centred + " + self.bias.reshape(view)").replace(
        "X_hat = (X - mean.reshape(view)) / torch.sqrt(var.reshape(view) + 1e-5)", "X_hat = X")
    assert_right(one(runners, right, "8.5/4:centre"))
