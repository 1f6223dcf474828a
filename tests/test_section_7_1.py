"""7.1 From fully connected layers to convolutions: the reference earns full marks; wrong answers lose
points, and say why."""
import pytest

from d2lgrade.core.sections import find_section
from d2lgrade.testing import assert_reference_earns_full_marks, assert_right, assert_starter_not_attempted, assert_wrong

SECTION = find_section("7.1")


def test_reference_earns_full_marks():
    assert_reference_earns_full_marks(SECTION, {
        "7.1/1", "7.1/2.1", "7.1/2.2", "7.1/2.3", "7.1/3", "7.1/4", "7.1/5", "7.1/6"})


def test_starter_is_not_attempted_everywhere():
    assert_starter_not_attempted(SECTION)


def test_proof_rubric_points_at_the_limits():
    """The seed kept the limits after u = t - tau and then dropped the minus sign: the rubric says why."""
    rubric = " ".join(SECTION.spec.exercise("7.1/6").rubric)
    assert "limits" in rubric and "SWAP" in rubric and "dτ = −du" in rubric


# -- 7.1/1 ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("source, words", [
    ("def one_by_one_as_linear(X, W):\n    return torch.einsum('co,nchw->nohw', W, X)", "W transposed"),
    ("def one_by_one_as_linear(X, W):\n    n, c, h, w = X.shape\n"
     "    return (X.reshape(n, h * w, c) @ W.T).reshape(n, -1, h, w)", "mixes up pixels and channels"),
    ("def one_by_one_as_linear(X, W):\n    return X.permute(0, 2, 3, 1) @ W.T", "channels last"),
    ("def one_by_one_as_linear(X, W):\n    return F.conv2d(X, W[:, :, None, None])", "implement yourself"),
    ("def one_by_one_as_linear(X, W):\n    return nn.functional.conv2d(X, W.unsqueeze(-1).unsqueeze(-1))",
     "implement yourself"),
])
def test_one_by_one_wrong(runner, source, words):
    assert_wrong(runner.grade(source, "7.1/1")[0], words)


@pytest.mark.parametrize("source", [
    "def one_by_one_as_linear(X, W):\n    return F.linear(X.permute(0, 2, 3, 1), W).permute(0, 3, 1, 2)",
    """
def one_by_one_as_linear(X, W):
    n, c_i, h, w = X.shape
    Y = W @ X.reshape(n, c_i, h * w)          # (c_o, c_i) @ (n, c_i, h*w) broadcasts over the batch
    return Y.reshape(n, W.shape[0], h, w)
""",
])
def test_one_by_one_right(runner, source):
    assert_right(runner.grade(source, "7.1/1"))


# -- 7.1/2.2 ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("source, words", [
    ("def conv1d(x, w):\n    k = len(w)\n    return torch.stack([(x[i:i + k] * w.flip(0)).sum() for i in range(len(x) - k + 1)])",
     "reverses the kernel"),
    ("def conv1d(x, w):\n    k = len(w)\n    y = torch.zeros(len(x) - k, dtype=x.dtype)\n"
     "    for i in range(len(x) - k):\n        y[i] = (x[i:i + k] * w).sum()\n    return y", "one value short"),
    ("def conv1d(x, w):\n    k = len(w)\n    xp = F.pad(x, (k - 1, k - 1))\n"
     "    return torch.stack([(xp[i:i + k] * w).sum() for i in range(len(x) + k - 1)])", "full convolution"),
    ("def conv1d(x, w):\n    return F.conv1d(x[None, None], w[None, None])[0, 0]", "implement yourself"),
    # evasions: an operator that is not called "convolution", the gradient of a convolution, the same
    # operator under a name no scan can read (the trace names it), a NumPy routine
    ("def conv1d(x, w):\n    return torch.conv_tbc(x[:, None, None], w[:, None, None], x.new_zeros(1), 0)[:, 0, 0]",
     "torch.conv_tbc"),
    ("def conv1d(x, w):\n    return torch.nn.grad.conv1d_weight(x[None, None], w.shape[None, None], w[None, None])",
     "conv1d_weight"),
    ("def conv1d(x, w):\n    op = vars(torch)[''.join(reversed('cbt_vnoc'))]\n"
     "    return op(x[:, None, None], w[:, None, None], x.new_zeros(1), 0)[:, 0, 0]", "runs the operator conv_tbc"),
    ("import numpy as np\ndef conv1d(x, w):\n    return torch.from_numpy(np.correlate(x.numpy(), w.numpy()))",
     "numpy.correlate"),
])
def test_conv1d_wrong(runner, source, words):
    assert_wrong(runner.grade(source, "7.1/2.2")[0], words)


def test_a_wrong_value_before_a_crash_is_reported_as_the_mistake(runner):
    """The runtime stops at the first call that raises; a wrong value returned before it is the
    mistake to name, not the crash."""
    source = ("def conv1d(x, w):\n    assert len(x) < 9, 'long inputs are not supported'\n"
              "    k = len(w)\n    return torch.stack([(x[i:i + k] * w.flip(0)).sum() for i in range(len(x) - k + 1)])")
    assert_wrong(runner.grade(source, "7.1/2.2")[0], "reverses the kernel")
    crash_only = source.replace("w.flip(0)", "w")
    result = runner.grade(crash_only, "7.1/2.2")[0]
    assert result.status == "error" and "long inputs are not supported" in result.message, result


@pytest.mark.parametrize("source", [
    "def conv1d(x, w):\n    return x.unfold(0, len(w), 1) @ w",
    """
def conv1d(x, w):
    n, k = len(x), len(w)
    y = torch.zeros(n - k + 1, dtype=x.dtype)
    for i in range(n - k + 1):
        for a in range(k):
            y[i] += w[a] * x[i + a]
    return y
""",
])
def test_conv1d_right(runner, source):
    assert_right(runner.grade(source, "7.1/2.2"))


# -- 7.1/6 ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("source, words", [
    # cross-correlation instead of convolution
    ("""
def conv1d_full(f, g):
    out = f.new_zeros(len(f) + len(g) - 1)
    for m in range(len(f)):
        out[m:m + len(g)] += f[m] * g.flip(0)
    return out
""", "g is not reversed"),
    # only the valid part
    ("""
def conv1d_full(f, g):
    if len(f) < len(g):
        f, g = g, f
    return torch.stack([(f[i:i + len(g)] * g.flip(0)).sum() for i in range(len(f) - len(g) + 1)])
""", "only the valid part"),
    # a loop written for a long f and a short g: wrong lengths when f is the shorter one
    ("""
def conv1d_full(f, g):
    out = f.new_zeros(len(f) + len(g) - 1)
    for n in range(len(f)):
        for m in range(len(g)):
            if n - m >= 0:
                out[n] += g[m] * f[n - m]
    return out
""", "values are wrong"),
    ("import numpy as np\ndef conv1d_full(f, g):\n    return F.conv1d(F.pad(f, (len(g) - 1, len(g) - 1))[None, None],"
     " g.flip(0)[None, None])[0, 0]", "implement yourself"),
])
def test_full_convolution_wrong(runner, source, words):
    assert_wrong(runner.grade(source, "7.1/6", only={"7.1/6"})[0], words)


def test_non_commutative_loop_is_reported_as_such(runner):
    source = """
def conv1d_full(f, g):            # assumes len(f) >= len(g): drops the tail when f is shorter
    out = f.new_zeros(len(f) + len(g) - 1)
    for n in range(len(f)):
        for m in range(len(g)):
            if n - m >= 0:
                out[n] += g[m] * f[n - m]
    return out
"""
    commutative = runner.grade(source, "7.1/6", only={"7.1/6:commutative"})[0]
    assert commutative.status == "failed" and "not commutative" in commutative.message, commutative.message


@pytest.mark.parametrize("source", [
    """
def conv1d_full(f, g):
    n, m = len(f), len(g)
    out = torch.zeros(n + m - 1, dtype=f.dtype)
    for k in range(n + m - 1):
        for i in range(max(0, k - m + 1), min(n, k + 1)):
            out[k] += f[i] * g[k - i]
    return out
""",
    """
def conv1d_full(f, g):            # NumPy arrays only to hold the numbers: the loop does the work
    import numpy as np
    out = np.zeros(len(f) + len(g) - 1)
    for i, a in enumerate(f.tolist()):
        for j, b in enumerate(g.tolist()):
            out[i + j] += a * b
    return torch.from_numpy(out)
""",
    """
def conv1d_full(f, g):            # coefficients of the product of two polynomials: sum over i + j = k
    products = (f[:, None] * g[None, :]).flip(0)        # anti-diagonals become diagonals
    return torch.stack([products.diagonal(offset=o).sum() for o in range(1 - len(f), len(g))])
""",
])
def test_full_convolution_right(runner, source):
    assert_right(runner.grade(source, "7.1/6"))
