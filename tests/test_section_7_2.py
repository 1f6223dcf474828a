"""7.2 Convolutions for images: the reference earns full marks; wrong answers lose points, and say why."""
import pytest

from d2lgrade.core.sections import find_section
from d2lgrade.testing import assert_reference_earns_full_marks, assert_right, assert_starter_not_attempted, assert_wrong

SECTION = find_section("7.2")

BOOK_CORR2D = """
def corr2d(X, K):
    h, w = K.shape
    Y = torch.zeros((X.shape[0] - h + 1, X.shape[1] - w + 1))
    for i in range(Y.shape[0]):
        for j in range(Y.shape[1]):
            Y[i, j] = (X[i:i + h, j:j + w] * K).sum()
    return Y
"""


def one(runner, source, check_id):
    [result] = runner.grade(source, check_id, only={check_id})
    return result


# -- whole section ----------------------------------------------------------------------------------
def test_reference_earns_full_marks():
    assert_reference_earns_full_marks(SECTION, {"7.2/1", "7.2/2.2", "7.2/2.3", "7.2/3"})


def test_starter_is_not_attempted_everywhere():
    assert_starter_not_attempted(SECTION)


# -- 7.2/1 ------------------------------------------------------------------------------------------
def _which_edges(K) -> str:
    """The edges a difference kernel responds to, measured on one horizontal and one vertical step."""
    import torch
    from graders.section_7_2 import _xcorr
    step_down = torch.zeros(6, 6)
    step_down[3:] = 1            # brightness changes from one row to the next: a horizontal edge
    step_right = step_down.T     # ... from one column to the next: a vertical edge
    horizontal, vertical = _xcorr(step_down, K).abs().sum() > 0, _xcorr(step_right, K).abs().sum() > 0
    return "horizontal" if horizontal and not vertical else "vertical" if vertical and not horizontal else "both"


def test_transposed_kernel_answer_matches_a_measurement():
    """The grader takes the expected answer from the reference (the kit has no reference): measured on two
    step edges, K = [[1, -1]] sees the vertical one and K.T the one the reference names."""
    from graders.section_7_2 import EDGE_K
    from reference import section_7_2 as reference_module
    assert _which_edges(EDGE_K) == "vertical"
    assert _which_edges(EDGE_K.T) == reference_module.kernel_t_detects


def test_seed_reverses_which_edges_the_transposed_kernel_detects(runner):
    # the seed: "transposing K changes from detecting horizontal edges to detecting vertical edges"
    result = one(runner, 'kernel_t_detects = "vertical"', "7.2/1:transpose_k")
    assert_wrong(result, "not right", "detects horizontal edges")
    assert_right(one(runner, 'kernel_t_detects = "Horizontal edges"', "7.2/1:transpose_k"))
    assert_wrong(one(runner, 'kernel_t_detects = "both"', "7.2/1:transpose_k"), '"horizontal" or "vertical"')


DIAGONALS_RIGHT = {
    "eye": "def diagonal_image(n):\n    return torch.eye(n)",
    # the seed's image, as integers, built for any n
    "int eye": "def diagonal_image(n):\n    return torch.tensor([[int(i == j) for j in range(n)] for i in range(n)])",
    "lower triangle": "def diagonal_image(n):\n    return torch.ones(n, n).tril()",
    "anti-diagonal": "def diagonal_image(n):\n    return torch.ones(n, n, dtype=torch.float64).triu().flip(1)",
    "soft edge": ("def diagonal_image(n):\n    i = torch.arange(n)\n"
                  "    return torch.sigmoid((i[None, :] - i[:, None]).float())"),
}


@pytest.mark.parametrize("name", DIAGONALS_RIGHT)
def test_diagonal_images_accepted(runner, name):
    assert_right(one(runner, DIAGONALS_RIGHT[name], "7.2/1:diagonal"))


@pytest.mark.parametrize("source, words", [
    ("def diagonal_image(n):\n    X = torch.ones(n, n)\n    X[:, 2:] = 0\n    return X", "same in every row"),
    ("def diagonal_image(n):\n    X = torch.zeros(n, n)\n    X[n // 2:] = 1\n    return X", "0 everywhere"),
    ("def diagonal_image(n):\n    return torch.eye(5)", "shape"),
    ("def diagonal_image(n):\n    X = torch.eye(n)\n    X[n // 2, 0] = 1\n    return X", "do not move over by one column"),
    # written to beat the check: a checkerboard's responses also move one column per row
    ("def diagonal_image(n):\n    i = torch.arange(n)\n    return ((i[:, None] + i[None, :]) % 2).float()",
     ["change sign", "checkerboard"]),
    ("def diagonal_image(n):\n    i = torch.arange(n)\n    return ((i[None, :] - i[:, None]) % 3 == 0).float()",
     "several edges"),
])
def test_diagonal_images_rejected(runner, source, words):
    assert_wrong(one(runner, source, "7.2/1:diagonal"), words)


def test_corr2d(runner):
    assert_right(one(runner, BOOK_CORR2D, "7.2/1:corr2d"))


@pytest.mark.parametrize("source, words, status", [
    ("def corr2d(X, K):\n    return F.conv2d(X[None, None], K[None, None])[0, 0]", "`F.conv2d`", "failed"),
    # the library's convolution under a name built at run time: the operator trace still sees it
    ("def corr2d(X, K):\n    op = getattr(torch, 'con' + 'v2d')\n    return op(X[None, None], K[None, None])[0, 0]",
     "runs the operator convolution", "failed"),
    # ... and with the trace switched off as well: nothing says what ran, so no points until a review
    ("""
def corr2d(X, K):
    op = getattr(torch, 'con' + 'v2d')
    with torch.utils._python_dispatch._disable_current_modes():
        return op(X[None, None], K[None, None])[0, 0]
""", ["could not verify", "getattr", "no operation"], "manual"),
])
def test_corr2d_from_the_library(runner, source, words, status):
    result = one(runner, source, "7.2/1:corr2d")
    assert result.status == status and result.points == 0, result
    assert all(w in result.message for w in ([words] if isinstance(words, str) else words)), result.message
    unfold = ("def corr2d(X, K):\n    h, w = K.shape\n    P = X.unfold(0, h, 1).unfold(1, w, 1)\n"
              "    return (P * K).sum((-2, -1))")
    assert_right(one(runner, unfold, "7.2/1:corr2d"))
    flipped = BOOK_CORR2D.replace("* K).sum()", "* K.flip(0, 1)).sum()")    # a true convolution
    assert_wrong(one(runner, flipped, "7.2/1:corr2d"), "values are wrong")
    short = BOOK_CORR2D.replace("- h + 1, X.shape[1] - w + 1", "- h, X.shape[1] - w")
    assert_wrong(one(runner, short, "7.2/1:corr2d"), "has shape")


# -- 7.2/2.1 ----------------------------------------------------------------------------------------
SEED_GEN_K = """
def gen_K(v):
    v = torch.tensor(v, dtype=torch.float32)

    u = v / torch.norm(v)
    K = torch.tensor([[ -u[1], u[0]], [ -u[0], -u[1]]], dtype=torch.float32)
    return K

edge_kernel = gen_K
"""


def test_seed_edge_kernel_is_not_a_directional_derivative(runner):
    results = {r.id: r for r in runner.grade(SEED_GEN_K, "7.2/2.1")}
    assert_wrong(results["7.2/2.1"], "does not respond like the derivative along v", "v=(1, 0)")
    assert_wrong(results["7.2/2.1:flat"], "constant image")


EDGES_RIGHT = {
    "forward differences 2x2": "def edge_kernel(v):\n    v1, v2 = v\n    return torch.tensor([[-(v1 + v2), v1], [v2, 0.0]])",
    "central differences": """
def edge_kernel(v):
    Dx = torch.tensor([[0., 0., 0.], [-1., 0., 1.], [0., 0., 0.]], dtype=torch.float64) / 2
    return v[0] * Dx + v[1] * Dx.T
""",
    "sobel": """
def edge_kernel(v):
    Sx = torch.tensor([[-1., 0., 1.], [-2., 0., 2.], [-1., 0., 1.]])
    return v[0] * Sx + v[1] * Sx.T
""",
    "normalised per direction": """
def edge_kernel(v):
    K = torch.tensor([[-(v[0] + v[1]), v[0]], [v[1], 0.0]])
    return K / K.norm()
""",
}


@pytest.mark.parametrize("name", EDGES_RIGHT)
def test_edge_kernels_accepted(runner, name):
    for result in runner.grade(EDGES_RIGHT[name], "7.2/2.1"):
        assert_right(result)


@pytest.mark.parametrize("source, words", [
    ("def edge_kernel(v):\n    return torch.tensor([[v[0] + v[1], -v[0]], [-v[1], 0.0]])", "derivative along −v"),
    ("def edge_kernel(v):\n    return torch.tensor([[-(v[1] - v[0]), v[1]], [-v[0], 0.0]])", "parallel to v"),
    ("def edge_kernel(v):\n    return torch.tensor([[-1., 0., 1.], [-2., 0., 2.], [-1., 0., 1.]])",
     "does not respond like the derivative along v"),
    ("def edge_kernel(v):\n    return torch.tensor([[v[0], v[1]]])", "changes from place to place"),
    ("def edge_kernel(v):\n    return torch.zeros(2, 2)", "gives 0 on every ramp"),
    # exact on every ramp, yet a second difference across v makes it fire on edges running along v
    ("""
def edge_kernel(v):
    v1, v2 = float(v[0]), float(v[1])
    D = torch.tensor([[0., 0., 0.], [-0.5, 0., 0.5], [0., 0., 0.]])
    Dxx = torch.tensor([[0., 0., 0.], [1., -2., 1.], [0., 0., 0.]])
    Dxy = torch.tensor([[1., 0., -1.], [0., 0., 0.], [-1., 0., 1.]]) / 4
    return v1 * D + v2 * D.T + 2 * (v2 * v2 * Dxx + v1 * v1 * Dxx.T - 2 * v1 * v2 * Dxy)
""", "edge running along v"),
])
def test_edge_kernels_rejected(runner, source, words):
    assert_wrong(one(runner, source, "7.2/2.1"), words)


# -- 7.2/2.2 ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("source", [
    "def second_derivative_kernel():\n    return torch.tensor([[1, -2, 1]])",     # the seed's kernel (int64)
    "def second_derivative_kernel():\n    return torch.tensor([[1.], [-2.], [1.]])",
    "def second_derivative_kernel():\n    return torch.tensor([[-1., 16., -30., 16., -1.]]) / 12",
])
def test_second_derivative_kernels_accepted(runner, source):
    assert_right(one(runner, source, "7.2/2.2"))


@pytest.mark.parametrize("source, words", [
    ("def second_derivative_kernel():\n    return torch.tensor([[-1., 2., -1.]])", "scale and sign"),
    ("def second_derivative_kernel():\n    return torch.tensor([[0., 1., 0.], [1., -4., 1.], [0., 1., 0.]])",
     "Laplacian"),
    ("def second_derivative_kernel():\n    return torch.tensor([[-1., 1.]])", "linear ramp"),
    ("def second_derivative_kernel():\n    return torch.tensor([1., -2., 1.])", "2-D"),
    ("def second_derivative_kernel():\n    return torch.tensor([[1., -1., -1., 1.]])", "gives 4"),
])
def test_second_derivative_kernels_rejected(runner, source, words):
    assert_wrong(one(runner, source, "7.2/2.2"), words)


def test_min_size_second_derivative(runner):
    assert_right(one(runner, "min_size_second_derivative = 3", "7.2/2.2:size"))
    assert_wrong(one(runner, "min_size_second_derivative = 2", "7.2/2.2:size"), "not right")
    assert_wrong(one(runner, "min_size_second_derivative = '3'", "7.2/2.2:size"), "a number of taps")


# -- 7.2/2.3 ----------------------------------------------------------------------------------------
SEED_GAUSSIAN = """
import numpy as np
def gaussian_kernel(size, sigma):
    kernel = np.fromfunction(
        lambda x, y: (1/(2*np.pi*sigma**2)) * np.exp(-((x-size//2)**2 + (y-size//2)**2) / (2*sigma**2)),
        (size, size)
    )
    kernel /= np.sum(kernel)
    return kernel

blur_kernel = gaussian_kernel
"""


@pytest.mark.parametrize("source", [
    SEED_GAUSSIAN,     # the seed's Gaussian (a numpy array) is right
    "def blur_kernel(size, sigma):\n    return torch.full((size, size), 1.0 / size**2)",
    """
def blur_kernel(size, sigma):
    g = torch.exp(-(torch.arange(size) - size // 2) ** 2 / (2 * sigma ** 2))
    return torch.outer(g, g) / g.sum() ** 2
""",
])
def test_blur_kernels_accepted(runner, source):
    assert_right(one(runner, source, "7.2/2.3"))


@pytest.mark.parametrize("source, words", [
    ("def blur_kernel(size, sigma):\n    return torch.ones(size, size)", "add up to"),
    ("def blur_kernel(size, sigma):\n    K = torch.zeros(size, size)\n    K[size // 2, size // 2] = 1\n    return K",
     "does not smooth"),
    ("def blur_kernel(size, sigma):\n    K = -torch.ones(size, size) / size**2\n    K[size // 2, size // 2] += 2\n"
     "    return K", "negative weights"),
    ("""
def blur_kernel(size, sigma):   # centred half a pixel off
    g = torch.exp(-(torch.arange(size) - size / 2) ** 2 / (2 * sigma ** 2))
    return torch.outer(g, g) / g.sum() ** 2
""", "not symmetric"),
    ("def blur_kernel(size, sigma):\n    return torch.full((3, 3), 1 / 9)", "shape"),
    # special-cases the pairs the check used to print, and returns nonsense for any other
    ("""
def blur_kernel(size, sigma):
    if (size, sigma) in [(3, 1.0), (5, 1.0), (5, 2.0), (7, 1.5), (3, 0.8)]:
        return torch.full((size, size), 1.0 / size**2)
    return torch.ones(size, size)
""", "add up to"),
])
def test_blur_kernels_rejected(runner, source, words):
    assert_wrong(one(runner, source, "7.2/2.3"), words)


# -- 7.2/2.4 ----------------------------------------------------------------------------------------
def test_derivative_kernel_size(runner):
    # the seed answered 2d + 1
    assert_wrong(one(runner, 'min_kernel_size_derivative = "2*d + 1"', "7.2/2.4"), "at d=1", "centre")
    assert_wrong(one(runner, 'min_kernel_size_derivative = "2d + 1"', "7.2/2.4"), "write `*`")
    assert_wrong(one(runner, 'min_kernel_size_derivative = "d"', "7.2/2.4"), "your formula gives")
    assert_right(one(runner, 'min_kernel_size_derivative = "1 + d"', "7.2/2.4"))


# -- 7.2/4 ------------------------------------------------------------------------------------------
SEED_MATMUL = """
def corr2d_matmul(pic, K):
    pad_K = F.pad(K, (0, pic.shape[1]-K.shape[1], 0, pic.shape[0]-K.shape[0])).type(torch.float32)
    l = []
    for i in range(pic.shape[0]-K.shape[0]+1):
        for j in range(pic.shape[1]-K.shape[1]+1):
            l.append(torch.roll(pad_K, (i, j), (0, 1)).reshape(1, -1))
    print(torch.cat(l, dim=0))
    return (torch.cat(l, dim=0)@pic.reshape(-1, 1)).reshape(pic.shape[0]-K.shape[0]+1, pic.shape[1]-K.shape[1]+1)
"""

ROLL_UNPADDED = """
def kernel_matrix(K, X_shape):      # rolls the flat kernel: its rows run on into the next input row
    h, w = X_shape
    kh, kw = K.shape
    flat = K.new_zeros(h * w)
    flat[:kh * kw] = K.reshape(-1)
    return torch.stack([torch.roll(flat, i * w + j) for i in range(h - kh + 1) for j in range(w - kw + 1)])

def corr2d_matmul(X, K):
    oh, ow = X.shape[0] - K.shape[0] + 1, X.shape[1] - K.shape[1] + 1
    return (kernel_matrix(K, X.shape) @ X.reshape(-1)).reshape(oh, ow)
"""

TRANSPOSED = """
def kernel_matrix(K, X_shape):      # rows in column-major order of the output
    h, w = X_shape
    kh, kw = K.shape
    oh, ow = h - kh + 1, w - kw + 1
    W = K.new_zeros((oh * ow, h * w))
    for i in range(oh):
        for j in range(ow):
            W[j * oh + i].view(h, w)[i:i + kh, j:j + kw] = K
    return W

def corr2d_matmul(X, K):
    oh, ow = X.shape[0] - K.shape[0] + 1, X.shape[1] - K.shape[1] + 1
    return (kernel_matrix(K, X.shape) @ X.reshape(-1)).reshape(oh, ow)
"""

ALL_ROLLS = """
def kernel_matrix(K, X_shape):      # one row per input pixel instead of per output position
    h, w = X_shape
    padded = F.pad(K, (0, w - K.shape[1], 0, h - K.shape[0]))
    return torch.stack([torch.roll(padded, (i, j), (0, 1)).reshape(-1) for i in range(h) for j in range(w)])
"""

NO_MATMUL = """
def corr2d_matmul(X, K):
    h, w = K.shape
    Y = X.new_zeros((X.shape[0] - h + 1, X.shape[1] - w + 1))
    for i in range(Y.shape[0]):
        for j in range(Y.shape[1]):
            Y[i, j] = (X[i:i + h, j:j + w] * K).sum()
    return Y
"""


@pytest.mark.parametrize("source, words", [
    (SEED_MATMUL, "dtype"),                                       # the seed, verbatim
    (ROLL_UNPADDED, "values are wrong"),
    (TRANSPOSED, "transpose"),
    ("def corr2d_matmul(X, K):\n    return F.conv2d(X[None, None], K[None, None])[0, 0]", "implement yourself"),
    ("def corr2d_matmul(X, K):\n    return (F.unfold(X[None, None].float(), K.shape)[0].T @ K.float().reshape(-1))"
     ".reshape(X.shape[0] - K.shape[0] + 1, -1)", "dtype"),
    (NO_MATMUL, "without a matrix product"),
    # a decoy product beside the loop that computes the result
    (NO_MATMUL.replace("    return Y", "    _ = X @ X.T\n    return Y"), "do not come from it"),
    (NO_MATMUL.replace("    return Y", "    return Y + 0 * (X[:1] @ X[:1].T).sum()"), "do not come from it"),
])
def test_wrong_corr2d_matmul(runner, source, words):
    assert_wrong(one(runner, source, "7.2/4:corr2d_matmul"), words)


@pytest.mark.parametrize("source, words", [
    (ROLL_UNPADDED, "differs from corr2d"),
    (TRANSPOSED, "column-major"),
    (ALL_ROLLS, "one row per output position"),
    (ALL_ROLLS.replace("range(h) for j in range(w)", "range(h - K.shape[0] + 2) for j in range(w - K.shape[1] + 2)"),
     "one row per output position"),
])
def test_wrong_kernel_matrix(runner, source, words):
    assert_wrong(one(runner, source, "7.2/4:kernel_matrix"), words)


MATMULS_RIGHT = {
    "seed without the float32 cast": SEED_MATMUL.replace(".type(torch.float32)", "").replace(
        "    print(torch.cat(l, dim=0))\n", "") + """
def kernel_matrix(K, X_shape):
    h, w = X_shape
    padded = F.pad(K, (0, w - K.shape[1], 0, h - K.shape[0]))
    return torch.stack([torch.roll(padded, (i, j), (0, 1)).reshape(-1)
                        for i in range(h - K.shape[0] + 1) for j in range(w - K.shape[1] + 1)])
""",
    "unfold": """
def corr2d_matmul(X, K):
    cols = F.unfold(X[None, None], K.shape)[0]          # (kh*kw, n_out): one patch per column
    return (K.reshape(1, -1) @ cols).reshape(X.shape[0] - K.shape[0] + 1, X.shape[1] - K.shape[1] + 1)

def kernel_matrix(K, X_shape):                          # column k is the response to the k-th unit image
    h, w = X_shape
    basis = torch.eye(h * w, dtype=K.dtype).reshape(h * w, 1, h, w)
    return (F.unfold(basis, K.shape).transpose(1, 2) @ K.reshape(-1)).T
""",
    "stride tricks": """
def corr2d_matmul(X, K):
    (h, w), (kh, kw) = X.shape, K.shape
    X = X.contiguous()
    s0, s1 = X.stride()
    patches = X.as_strided((h - kh + 1, w - kw + 1, kh, kw), (s0, s1, s0, s1))
    return torch.einsum('ijkl,kl->ij', patches, K)

def kernel_matrix(K, X_shape):
    h, w = X_shape
    kh, kw = K.shape
    oh, ow = h - kh + 1, w - kw + 1
    i, j, a, b = torch.meshgrid(torch.arange(oh), torch.arange(ow), torch.arange(kh), torch.arange(kw), indexing='ij')
    W = K.new_zeros(oh * ow, h * w)
    W[(i * ow + j).reshape(-1), ((i + a) * w + (j + b)).reshape(-1)] = K.expand(oh, ow, kh, kw).reshape(-1)
    return W
""",
}


@pytest.mark.parametrize("name", MATMULS_RIGHT)
def test_correct_matmul_variants(runner, name):
    results = runner.grade(MATMULS_RIGHT[name], "7.2/4")
    assert len(results) == 2
    for result in results:
        assert_right(result)
