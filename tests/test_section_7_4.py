"""7.4 Multiple input and multiple output channels: the reference earns full marks; wrong answers lose
points, and say why."""
import pytest

from d2lgrade.core.sections import find_section
from d2lgrade.testing import assert_reference_earns_full_marks, assert_right, assert_starter_not_attempted, assert_wrong

SECTION = find_section("7.4")


def test_reference_earns_full_marks():
    assert_reference_earns_full_marks(SECTION, {
        "7.4/1.1", "7.4/1.3", "7.4/3", "7.4/4", "7.4/6", "7.4/7.1", "7.4/7.2"})


def test_starter_is_not_attempted_everywhere():
    assert_starter_not_attempted(SECTION)


def by_id(results):
    return {r.id: r for r in results}


# -- 7.4/1.1 ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("source, words", [
    # full cross-correlation of the kernels (K2 not reversed)
    ("""
def compose_kernels(K1, K2):
    a2, b2 = K2.shape
    return F.conv2d(F.pad(K1, (b2 - 1, b2 - 1, a2 - 1, a2 - 1))[None, None], K2[None, None])[0, 0]
""", "without reversing"),
    ("def compose_kernels(K1, K2):\n    return K1 @ K2", ["has shape (4, 4)", "the size of 7.4/1.2"]),
    ("""
def compose_kernels(K1, K2):
    a1, b1 = K1.shape; a2, b2 = K2.shape
    K = K1.new_zeros((a1 + a2 - 1, b1 + b2 - 1))
    for i in range(a2):
        for j in range(b2):
            K[i:i + a1, j:j + b1] += K2[i, j] * K1
    return K.flip(0, 1)
""", "reversed"),
    ("def compose_kernels(K1, K2):\n    return torch.outer(K1.flatten(), K2.flatten())", "the size of 7.4/1.2"),
])
def test_compose_wrong(runner, source, words):
    assert_wrong(runner.grade(source, "7.4/1.1")[0], words)


@pytest.mark.parametrize("source", [
    """
def compose_kernels(K1, K2):   # a full convolution is a cross-correlation with the flipped kernel
    a2, b2 = K2.shape
    return F.conv2d(F.pad(K1, (b2 - 1, b2 - 1, a2 - 1, a2 - 1))[None, None], K2.flip(0, 1)[None, None])[0, 0]
""",
    """
def compose_kernels(K1, K2):   # K[u, v] = sum_{c, d} K1[c, d] K2[u - c, v - d]
    (a1, b1), (a2, b2) = K1.shape, K2.shape
    K = torch.zeros(a1 + a2 - 1, b1 + b2 - 1, dtype=K1.dtype)
    for u in range(a1 + a2 - 1):
        for v in range(b1 + b2 - 1):
            for c in range(a1):
                for d in range(b1):
                    if 0 <= u - c < a2 and 0 <= v - d < b2:
                        K[u, v] += K1[c, d] * K2[u - c, v - d]
    return K
""",
])
def test_compose_right(runner, source):
    assert_right(runner.grade(source, "7.4/1.1"))


# -- 7.4/1.2 ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("source, words", [
    ('composed_size = "k1 + k2"', ["your formula gives", "count the possible values"]),
    ('composed_size = "k1*k2"', "your formula gives"),
    ('composed_size = "max(k1, k2)"', "your formula gives"),
])
def test_composed_size_wrong(runner, source, words):
    assert_wrong(runner.grade(source, "7.4/1.2")[0], words)


@pytest.mark.parametrize("source", ['composed_size = "k2 - 1 + k1"', 'composed_size = "(k1 - 1) + (k2 - 1) + 1"'])
def test_composed_size_right(runner, source):
    assert_right(runner.grade(source, "7.4/1.2"))


# -- 7.4/1.3 ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("source, words", [
    # exact rank: rounding makes a float32 outer product rank 2
    ("def is_separable(K):\n    return bool(torch.linalg.matrix_rank(K, atol=0.0, rtol=0.0) == 1)", "with a tolerance"),
    # det = 0 only says "rank < n"
    ("def is_separable(K):\n    return K.shape[0] != K.shape[1] or bool(abs(torch.linalg.det(K)) < 1e-5)",
     ["has rank 2", "not an outer product"]),
    ("def is_separable(K):\n    return True", "not an outer product"),
    # rows proportional to the first, which breaks on zeros, and the book's fixed Sobel kernel special-cased:
    # it passed while the grader's kernels were fixed; they are drawn from the seed now
    ("""
SOBEL = torch.tensor([[1., 0., -1.], [2., 0., -2.], [1., 0., -1.]])
def is_separable(K):
    if K.shape == SOBEL.shape and torch.equal(K.float(), SOBEL):
        return True
    ratios = K / K[0]
    return bool(torch.allclose(ratios, ratios[:, :1].expand_as(ratios)))
""", ["Sobel-type", "outer product"]),
])
def test_is_separable_wrong(runner, source, words):
    assert_wrong(by_id(runner.grade(source, "7.4/1.3", only={"7.4/1.3"}))["7.4/1.3"], words)


@pytest.mark.parametrize("source", [
    "def is_separable(K):\n    return bool(torch.linalg.matrix_rank(K.double(), rtol=1e-5) == 1)",
    """
def is_separable(K):            # K equals the outer product of its pivot column and row
    K = K.double()
    i, j = divmod(int(K.abs().argmax()), K.shape[1])
    approx = K[:, j:j + 1] * K[i:i + 1, :] / K[i, j]
    return bool((K - approx).abs().max() <= 1e-5 * K.abs().max())
""",
])
def test_is_separable_right(runner, source):
    assert by_id(runner.grade(source, "7.4/1.3", only={"7.4/1.3"}))["7.4/1.3"].status == "passed"


@pytest.mark.parametrize("source, words", [
    ("def separate(K):\n    U, S, Vh = torch.linalg.svd(K)\n    return U[:, 0], Vh[0]", "scale factor"),
    ("def separate(K):\n    U, S, Vh = torch.linalg.svd(K)\n    return Vh[0] * S[0], U[:, 0]", "that is (row, col)"),
    ("def separate(K):\n    return K[:, 0], K[0, :]", "K times"),
    ("def separate(K):\n    return torch.ones(K.shape[0], dtype=K.dtype), K.mean(0)", "values are wrong"),
])
def test_separate_wrong(runner, source, words):
    assert_wrong(by_id(runner.grade(source, "7.4/1.3", only={"7.4/1.3:separate"}))["7.4/1.3:separate"], words)


@pytest.mark.parametrize("source", [
    """
def separate(K):
    U, S, Vh = torch.linalg.svd(K)
    return U[:, 0] * S[0], Vh[0]
""",
    """
def separate(K):
    i, j = divmod(int(K.abs().argmax()), K.shape[1])
    return K[:, j].clone(), K[i, :] / K[i, j]
""",
])
def test_separate_right(runner, source):
    assert by_id(runner.grade(source, "7.4/1.3", only={"7.4/1.3:separate"}))["7.4/1.3:separate"].status == "passed"


def test_gaussian_fact(runner):
    # the seed: "a Gaussian kernel in two dimensions" is its example of a non-separable kernel
    assert_wrong(runner.grade("gaussian_separable = False", "7.4/1.3:gaussian")[0],
                 ["outer product of two 1-D Gaussians", "separable"])
    assert runner.grade("gaussian_separable = True", "7.4/1.3:gaussian")[0].status == "passed"


# -- 7.4/2 ------------------------------------------------------------------------------------------
SEED_H = "((h + 2*p_h - k_h)/s_h + 1)"
SEED_W = "((w + 2*p_w - k_w)/s_w + 1)"
SEED_MULTS = f"c_o*{SEED_H}*{SEED_W}*c_i*k_h*k_w"


@pytest.mark.parametrize("selector, source, words", [
    # the seed's h_out has no floor
    ("7.4/2.1", f'forward_mults = "{SEED_MULTS}"', ["your formula gives", "without floor"]),
    ("7.4/2.1", 'forward_mults = "c_o*ceiling((h + 2*p_h - k_h)/s_h)*ceiling((w + 2*p_w - k_w)/s_w)*c_i*k_h*k_w"',
     "your formula gives"),
    ("7.4/2.1", 'forward_mults = "h_o*w_o*c_i*k_h*k_w"', "your formula gives"),
    ("7.4/2.1:adds", 'forward_adds = "c_o*h_o*w_o*(c_i - 1)*k_h*k_w"', ["your formula gives", "n - 1 additions"]),
    ("7.4/2.2", 'forward_memory = "c_o*c_i*k_h*k_w + c_o*h_o*w_o"', ["your formula gives", "input"]),
    ("7.4/2.3", 'backward_memory = "c_o*c_i*k_h*k_w"', "your formula gives"),
    # the seed: the backward pass costs as much as the forward pass
    ("7.4/2.4", f'backward_cost = "{SEED_MULTS}"', ["your formula gives", "two gradients"]),
    ("7.4/2.4", 'backward_cost = "c_o*h_o*w_o*c_i*k_h*k_w"', ["your formula gives", "two gradients"]),
    ("7.4/2.4", 'backward_cost = "3*c_o*h_o*w_o*c_i*k_h*k_w"', "your formula gives"),
    ("7.4/2.4", 'backward_cost = "import os"', "could not read"),
    # the input's size where the output's belongs: named as such, not as a missing floor
    ("7.4/2.2", 'forward_memory = "c_i*h*w + c_o*c_i*k_h*k_w + c_o*h*w"', ["your formula gives", "input's size h·w"]),
    ("7.4/2.4", 'backward_cost = "2*c_o*c_i*k_h*k_w*h*w"', ["your formula gives", "input's size h·w"]),
    ("7.4/2.4", 'backward_cost = "c_o*c_i*k_h*k_w*h*w"', ["input's size h·w", "two gradients"]),
    ("7.4/2.1", 'forward_mults = "c_o*c_i*k_h*k_w*h*w"', ["input's size h·w"]),
])
def test_cost_formulas_wrong(runner, selector, source, words):
    assert_wrong(by_id(runner.grade(source, selector.split(":")[0], only={selector}))[selector], words)


@pytest.mark.parametrize("selector, source", [
    ("7.4/2.1", 'forward_mults = "c_i*c_o*k_h*k_w*((h - k_h + 2*p_h)//s_h + 1)*((w - k_w + 2*p_w)//s_w + 1)"'),
    ("7.4/2.1", 'forward_mults = "c_o*c_i*k_h*k_w*h_o*w_o"'),
    ("7.4/2.1:adds", 'forward_adds = "c_o*h_o*w_o*c_i*k_h*k_w - c_o*h_o*w_o"'),
    ("7.4/2.1:adds", 'forward_adds = "c_o*h_o*w_o*c_i*k_h*k_w"'),     # with a bias (also the seed's count)
    ("7.4/2.2", 'forward_memory = "c_i*h*w + c_o*(c_i*k_h*k_w + h_o*w_o)"'),
    ("7.4/2.3", 'backward_memory = "2*(c_i*h*w + c_o*c_i*k_h*k_w + c_o*h_o*w_o)"'),
    # the seed's answer: the same as the forward memory (the gradients alone), which the spec accepts
    ("7.4/2.3", f'backward_memory = "c_i*h*w + c_o*c_i*k_h*k_w + c_o*floor((h + 2*p_h - k_h)/s_h + 1)*floor((w + 2*p_w - k_w)/s_w + 1)"'),
    ("7.4/2.4", 'backward_cost = "2*c_o*c_i*k_h*k_w*h_o*w_o"'),
    ("7.4/2.4", 'backward_cost = "c_o*h_o*w_o*c_i*k_h*k_w + c_i*k_h*k_w*c_o*h_o*w_o"'),
])
def test_cost_formulas_right(runner, selector, source):
    result = by_id(runner.grade(source, selector.split(":")[0], only={selector}))[selector]
    assert result.status == "passed", result.message


# -- 7.4/3 ------------------------------------------------------------------------------------------
def test_channel_factor(runner):
    assert_wrong(runner.grade("channel_factor = 2", "7.4/3")[0], "both double")
    assert_wrong(runner.grade("channel_factor = 'four'", "7.4/3")[0], "should be a number")
    assert runner.grade("channel_factor = 4.0", "7.4/3")[0].status == "passed"
    assert runner.grade("channel_factor = 2 * 2", "7.4/3")[0].status == "passed"


# -- 7.4/5 ------------------------------------------------------------------------------------------
IM2COL_HEAD = """
def conv2d_im2col(X, K, stride=1, padding=0):
    s = (stride, stride) if isinstance(stride, int) else tuple(stride)
    p = (padding, padding) if isinstance(padding, int) else tuple(padding)
    c_o, c_i, k_h, k_w = K.shape
    h_o = (X.shape[1] + 2 * p[0] - k_h) // s[0] + 1
    w_o = (X.shape[2] + 2 * p[1] - k_w) // s[1] + 1
"""


@pytest.mark.parametrize("source, words", [
    ("def conv2d_im2col(X, K, stride=1, padding=0):\n    return F.conv2d(X[None], K, stride=stride, padding=padding)[0]",
     "implement yourself"),
    # a private operator under a name built at run time: the operator trace names it
    ("""
def conv2d_im2col(X, K, stride=1, padding=0):
    s = (stride, stride) if isinstance(stride, int) else tuple(stride)
    p = (padding, padding) if isinstance(padding, int) else tuple(padding)
    op = getattr(getattr(torch, 'op' + 's').aten, ''.join(reversed('drawrof_d2vnoc_wols_')))
    return op(X[None], K, list(K.shape[-2:]), None, list(s), list(p))[0]
""", "runs the operator _slow_conv2d_forward"),
    (IM2COL_HEAD + "    cols = F.unfold(X[None], (k_h, k_w), padding=p, stride=s)[0]\n"
                   "    return (K.flip(-1, -2).reshape(c_o, -1) @ cols).reshape(c_o, h_o, w_o)", "flipped"),
    (IM2COL_HEAD + "    cols = F.unfold(X[None], (k_h, k_w), padding=p, stride=s)[0]\n"
                   "    return (K.permute(0, 2, 3, 1).reshape(c_o, -1) @ cols).reshape(c_o, h_o, w_o)",
     "different order"),
])
def test_im2col_wrong(runner, source, words):
    results = runner.grade(source, "7.4/5")
    for result in results:
        assert_wrong(result, words)


@pytest.mark.parametrize("source, words", [
    (IM2COL_HEAD + "    cols = F.unfold(X[None], (k_h, k_w), stride=s)[0]\n"
                   "    h_o = (X.shape[1] - k_h) // s[0] + 1; w_o = (X.shape[2] - k_w) // s[1] + 1\n"
                   "    return (K.reshape(c_o, -1) @ cols).reshape(c_o, h_o, w_o)", "padding is ignored"),
    (IM2COL_HEAD + "    cols = F.unfold(X[None], (k_h, k_w), padding=p)[0]\n"
                   "    h_o = X.shape[1] + 2 * p[0] - k_h + 1; w_o = X.shape[2] + 2 * p[1] - k_w + 1\n"
                   "    return (K.reshape(c_o, -1) @ cols).reshape(c_o, h_o, w_o)", "stride is ignored"),
])
def test_im2col_partly_wrong(runner, source, words):
    basic, general = runner.grade(source, "7.4/5")
    assert basic.status == "passed", basic.message
    assert_wrong(general, words)


IM2COL_RIGHT = [
    None,   # the reference's own function (F.unfold)
    IM2COL_HEAD + """
    Xp = F.pad(X, (p[1], p[1], p[0], p[0]))
    patches = Xp.unfold(1, k_h, s[0]).unfold(2, k_w, s[1])        # (c_i, h_o, w_o, k_h, k_w)
    cols = patches.permute(0, 3, 4, 1, 2).reshape(c_i * k_h * k_w, h_o * w_o)
    return (K.reshape(c_o, -1) @ cols).reshape(c_o, h_o, w_o)
""",
]


@pytest.mark.parametrize("index", [0, 1])
def test_im2col_right(runner, index):
    source = IM2COL_RIGHT[index]
    if source is None:
        text = SECTION.reference_path.read_text()
        source = text[text.index("def conv2d_im2col"):text.index("# %% [markdown] 7.4/6")]
    assert_right(runner.grade(source, "7.4/5"))


# -- 7.4/7.1 ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("source, words", [
    # the seed compares b*(c/b)^2 with O(c^3)
    ('block_speedup = "c**3/(b*(c/b)**2)"', ["your formula gives", "not c³"]),
    ('block_speedup = "c**2/b"', ["your formula gives", "speed-up is the dense cost"]),
    ('block_speedup = "b**2"', "your formula gives"),
])
def test_block_speedup_wrong(runner, source, words):
    assert_wrong(runner.grade(source, "7.4/7.1")[0], words)


@pytest.mark.parametrize("source", ['block_speedup = "c**2/(b*(c/b)**2)"', 'block_speedup = "b"'])
def test_block_speedup_right(runner, source):
    assert_right(runner.grade(source, "7.4/7.1"))
