"""Library routines include the book's: in "write it yourself" exercises d2l's cross-correlation is refused like
F.conv2d, however it is reached (the source scan, and the runtime's record of the book's routines on the
stack); 7.4/5 needs a matrix product that does the work; honest tensor algebra (outer products, index_add_,
scatter_add_, einsum, a Toeplitz matrix) is verified and earns full marks."""
import pytest

from d2lgrade.testing import assert_right, assert_wrong

D2L = "from d2l import torch as d2l\n"


@pytest.fixture
def runner_7_1(runners):
    return runners("7.1")


@pytest.fixture
def runner_7_4(runners):
    return runners("7.4")


def refused(result, *words, status="failed"):
    assert result.status == status and result.points == 0, (result.id, result.status, result.message)
    assert all(w in result.message for w in words), result.message


# -- the book's cross-correlation inside a "write it yourself" answer --------------------------------
# d2l.corr2d builds its output in the default dtype: these answers switch it to their input's, so that
# the values are right to the last bit and only the routine that computed them can cost the points.
FULL_VIA_BOOK = """
def conv1d_full(f, g):
    k = len(g)
    padded = torch.cat([f.new_zeros(k - 1), f, f.new_zeros(k - 1)])
    before = torch.get_default_dtype()
    torch.set_default_dtype(f.dtype)
    try:
        return {corr}(padded[None], g.flip(0)[None])[0]
    finally:
        torch.set_default_dtype(before)
"""


@pytest.mark.parametrize("head, corr, words, status", [
    (D2L, "d2l.corr2d", ["the book's `d2l.corr2d`", "implement yourself"], "failed"),
    ("from d2l.torch import corr2d as xc\n", "xc", ["the book's `d2l.corr2d`"], "failed"),
    ("import d2l.torch\nlib = d2l.torch\n", "lib.corr2d", ["`.corr2d`"], "failed"),
    (D2L, "getattr(d2l, 'corr2d')", ["the book's `d2l.corr2d`"], "failed"),
    # a name the scan cannot read: the runtime saw the book's routine run
    (D2L, "getattr(d2l, ''.join(['co', 'rr', '2d']))", ["calls the book's d2l.corr2d"], "failed"),
    ("from d2l.torch import *\n", "corr2d", ["calls the book's d2l.corr2d"], "failed"),
    # a class of the student's with a method of that name does not hide the library's behind it
    (D2L + "class Ops:\n    def corr2d(self):\n        return None\n", "(Ops and d2l).corr2d",
     ["calls the book's d2l.corr2d"], "failed"),
    # its code under globals of the student's: the code object still says which file it came from
    ("import types\n" + D2L, "types.FunctionType(getattr(d2l, 'co' + 'rr2d').__code__, dict(globals(), d2l=d2l))",
     ["calls the book's d2l.corr2d"], "failed"),
])
def test_the_books_corr2d_is_refused(runner_7_1, head, corr, words, status):
    results = runner_7_1.grade(head + FULL_VIA_BOOK.format(corr=corr), "7.1/6")
    assert len(results) == 2
    for result in results:
        refused(result, *words, status=status)


def test_the_books_corr2d_is_refused_in_1d_cross_correlation(runner_7_1):
    source = D2L + """
def conv1d(x, w):
    torch.set_default_dtype(x.dtype)
    y = d2l.corr2d(x[None], w[None])[0]
    torch.set_default_dtype(torch.float32)
    return y
"""
    refused(runner_7_1.grade(source, "7.1/2.2")[0], "the book's `d2l.corr2d`")


def test_other_book_helpers_are_fine(runner_7_1):
    """d2l's tensor aliases do no convolution: an answer may use them."""
    source = D2L + """
def conv1d(x, w):
    k = len(w)
    return d2l.reshape(torch.stack([(x[i:i + k] * w).sum() for i in range(len(x) - k + 1)]), (-1,))
"""
    assert_right(runner_7_1.grade(source, "7.1/2.2"))


# -- honest styles of 7.1/6 ---------------------------------------------------------------------------
HONEST_FULL = {
    "outer product and index_add_": """
def conv1d_full(f, g):
    n = len(f) + len(g) - 1
    where = (torch.arange(len(f))[:, None] + torch.arange(len(g))[None, :]).reshape(-1)
    out = torch.zeros(n, dtype=torch.result_type(f, g))
    return out.index_add_(0, where, torch.outer(f, g).reshape(-1))
""",
    "broadcast product and scatter_add_": """
def conv1d_full(f, g):
    where = torch.arange(len(f))[:, None] + torch.arange(len(g))
    products = (f[:, None] * g[None, :]).flatten()
    return f.new_zeros(len(f) + len(g) - 1).scatter_add_(0, where.flatten(), products)
""",
    "Toeplitz matrix": """
def conv1d_full(f, g):
    T = torch.zeros(len(f) + len(g) - 1, len(g), dtype=torch.promote_types(f.dtype, g.dtype))
    for j in range(len(g)):
        T[j:j + len(f), j] = f
    return T @ g.type_as(T)
""",
    "einsum with a selection tensor": """
def conv1d_full(f, g):
    i, j = torch.arange(len(f))[:, None], torch.arange(len(g))[None, :]
    S = torch.zeros(len(f), len(g), len(f) + len(g) - 1, dtype=f.dtype)
    S[i, j, i + j] = 1
    return torch.einsum('i,j,ijn->n', f, g, S)
""",
    "weighted bincount": """
def conv1d_full(f, g):
    where = (torch.arange(len(f))[:, None] + torch.arange(len(g))[None, :]).reshape(-1)
    return torch.bincount(where, weights=torch.outer(f, g).reshape(-1), minlength=len(f) + len(g) - 1)
""",
}


@pytest.mark.parametrize("style", sorted(HONEST_FULL))
def test_honest_full_convolutions_earn_full_marks(runner_7_1, style):
    assert_right(runner_7_1.grade(HONEST_FULL[style], "7.1/6"))


# -- 7.4/5: the matrix product does the work ----------------------------------------------------------
IM2COL = """
def conv2d_im2col(X, K, stride=1, padding=0):
    s = (stride, stride) if isinstance(stride, int) else tuple(stride)
    p = (padding, padding) if isinstance(padding, int) else tuple(padding)
    c_o, c_i, k_h, k_w = K.shape
    h_o = (X.shape[1] + 2 * p[0] - k_h) // s[0] + 1
    w_o = (X.shape[2] + 2 * p[1] - k_w) // s[1] + 1
    cols = F.unfold(X[None], (k_h, k_w), padding=p, stride=s)[0]
    W = K.reshape(c_o, -1)
"""


@pytest.mark.parametrize("tail, words", [
    ("    return (W[:, :, None] * cols[None]).sum(1).reshape(c_o, h_o, w_o)", "without a matrix product"),
    # a product computed and multiplied by 0 beside the real work
    ("    decoy = 0 * (W @ cols)\n"
     "    return ((W[:, :, None] * cols[None]).sum(1) + decoy).reshape(c_o, h_o, w_o)", "do not come from it"),
])
def test_im2col_without_a_working_matrix_product(runner_7_4, tail, words):
    for result in runner_7_4.grade(IM2COL + tail, "7.4/5"):
        assert_wrong(result, words)


def test_im2col_from_the_books_corr2d(runner_7_4):
    source = D2L + """
def conv2d_im2col(X, K, stride=1, padding=0):
    s = (stride, stride) if isinstance(stride, int) else tuple(stride)
    p = (padding, padding) if isinstance(padding, int) else tuple(padding)
    X = F.pad(X, (p[1], p[1], p[0], p[0]))
    before = torch.get_default_dtype()
    torch.set_default_dtype(X.dtype)
    try:
        return torch.stack([sum(d2l.corr2d(x, k) for x, k in zip(X, K_o)) for K_o in K])[:, ::s[0], ::s[1]]
    finally:
        torch.set_default_dtype(before)
"""
    for result in runner_7_4.grade(source, "7.4/5"):
        refused(result, "the book's `d2l.corr2d`")


@pytest.mark.parametrize("tail", [
    "    return torch.einsum('ok,kl->ol', W, cols).reshape(c_o, h_o, w_o)",
    "    return (cols.T @ W.T).T.reshape(c_o, h_o, w_o)",
    # one product per input channel, summed: every output still comes from the products
    "    per = cols.reshape(c_i, k_h * k_w, -1)\n"
    "    return sum(K[:, c].reshape(c_o, -1) @ per[c] for c in range(c_i)).reshape(c_o, h_o, w_o)",
])
def test_im2col_through_products_in_other_styles(runner_7_4, tail):
    assert_right(runner_7_4.grade(IM2COL + tail, "7.4/5"))
