"""7.3 Padding and stride: the reference earns full marks; wrong answers lose points, and say why."""
import pytest

from d2lgrade.core.sections import find_section
from d2lgrade.testing import assert_reference_earns_full_marks, assert_starter_not_attempted

SECTION = find_section("7.3")


def score(results):
    return sum(r.points for r in results), sum(r.max_points for r in results)


def test_reference_earns_full_marks():
    assert_reference_earns_full_marks(SECTION, {"7.3/2", "7.3/4", "7.3/5", "7.3/6"})


def test_starter_is_not_attempted_everywhere():
    assert_starter_not_attempted(SECTION)


# -- 7.3/1 ------------------------------------------------------------------------------------
@pytest.mark.parametrize("source, words", [
    # the seed computed the width with the height's stride: right number (2) by luck, wrong formula
    ('output_shape = ("floor((n_h + 2*p_h - k_h)/s_h) + 1", "floor((n_w + 2*p_w - k_w)/s_h) + 1")', "width formula"),
    ('output_shape = "ceiling((n_h + 2*p_h - k_h)/s_h) + 1"', "your formula gives"),
    ('output_shape = "floor((n_h + p_h - k_h)/s_h) + 1"', "your formula gives"),
    ('output_shape = "(n_h + 2*p_h - k_h)/s_h + 1"', "your formula gives"),
    ('output_shape = "__import__(\'os\').system(\'true\')"', "not allowed"),
])
def test_wrong_output_shape_formulas(runner, source, words):
    result = runner.grade(source, "7.3/1", only={"7.3/1"})[0]
    assert result.status == "failed" and result.points == 0
    assert words in result.message, result.message


@pytest.mark.parametrize("source", [
    'output_shape = "floor((n_h - k_h + 2*p_h + s_h)/s_h)"',
    'output_shape = ["floor((n_h+2*p_h-k_h)/s_h)+1", "floor((n_w - k_w + 2*p_w)/s_w) + 1"]',
])
def test_equivalent_output_shape_formulas(runner, source):
    [result] = runner.grade(source, "7.3/1", only={"7.3/1"})
    assert result.status == "passed", result.message


def test_example_shape(runner):
    by_id = {r.id: r for r in runner.grade("example_shape = (2, 3)", "7.3/1")}
    assert by_id["7.3/1:example"].status == "failed" and "stride 4" in by_id["7.3/1:example"].message
    by_id = {r.id: r for r in runner.grade("import torch\nexample_shape = torch.Size([2, 2])", "7.3/1")}
    assert by_id["7.3/1:example"].status == "passed"


# -- 7.3/3 ------------------------------------------------------------------------------------
WRONG_PADS = {
    "replicate": ("def mirror_pad(X, p):\n    return F.pad(X[None, None] if X.dim() == 2 else X, (p,)*4, mode='replicate')"
                  ".reshape(*X.shape[:-2], X.shape[-2] + 2*p, X.shape[-1] + 2*p)", "replicate padding"),
    "zeros": ("def mirror_pad(X, p):\n    return F.pad(X, (p, p, p, p))", "zero padding"),
    "circular": ("def mirror_pad(X, p):\n    h, w = X.shape[-2:]\n"
                 "    return X.repeat(*[1] * (X.dim() - 2), 3, 3)[..., h - p:2 * h + p, w - p:2 * w + p]",
                 "circular padding"),
    "reflect, declared symmetric": ('mirror_mode = "symmetric"\ndef mirror_pad(X, p):\n'
                                    '    return F.pad(X[None, None] if X.dim() == 2 else X, (p,)*4, mode="reflect")'
                                    '.reshape(*X.shape[:-2], X.shape[-2] + 2*p, X.shape[-1] + 2*p)', "set mirror_mode"),
    "symmetric, undeclared": ("""
def mirror_pad(X, p):
    top, bottom = X[..., :p, :].flip(-2), X[..., -p:, :].flip(-2)
    X = torch.cat([top, X, bottom], dim=-2)
    left, right = X[..., :, :p].flip(-1), X[..., :, -p:].flip(-1)
    return torch.cat([left, X, right], dim=-1)
""", "symmetric padding"),
    "one side only": ("def mirror_pad(X, p):\n    return F.pad(X[None, None], (p, 0, p, 0), mode='reflect')[0, 0]",
                      "has shape"),
    "float32 always": ("def mirror_pad(X, p):\n    return F.pad(X[None, None].float(), (p,)*4, mode='reflect')[0, 0]",
                       "dtype"),
}


@pytest.mark.parametrize("name", WRONG_PADS)
def test_wrong_mirror_padding(runner, name):
    source, words = WRONG_PADS[name]
    [result, _batched] = runner.grade(source, "7.3/3")
    assert result.status in ("failed", "error") and result.points == 0
    assert words in result.message, result.message


CORRECT_PADS = {
    "flip and concatenate": """
def mirror_pad(X, p):
    top, bottom = X[..., 1:p + 1, :].flip(-2), X[..., -p - 1:-1, :].flip(-2)
    X = torch.cat([top, X, bottom], dim=-2)
    left, right = X[..., :, 1:p + 1].flip(-1), X[..., :, -p - 1:-1].flip(-1)
    return torch.cat([left, X, right], dim=-1)
""",
    "index arithmetic": """
def mirror_pad(X, p):
    def idx(n):
        i = torch.arange(-p, n + p).abs()
        return torch.where(i >= n, 2 * (n - 1) - i, i)
    return X[..., idx(X.shape[-2])[:, None], idx(X.shape[-1])]
""",
    "symmetric, declared": 'mirror_mode = "symmetric"\n' + WRONG_PADS["symmetric, undeclared"][0],
}


@pytest.mark.parametrize("name", CORRECT_PADS)
def test_correct_mirror_padding(runner, name):
    results = runner.grade(CORRECT_PADS[name], "7.3/3")
    assert [r.status for r in results] == ["passed", "passed"], [r.message for r in results]


# -- 7.3/4 ------------------------------------------------------------------------------------
def test_stride_speedup(runner):
    assert runner.grade('stride_speedup = "s_w * s_h"', "7.3/4")[0].status == "passed"
    wrong = runner.grade('stride_speedup = "s_h + s_w"', "7.3/4")[0]
    assert wrong.status == "failed" and "your formula gives" in wrong.message


# -- 7.3/6 ------------------------------------------------------------------------------------
LOOP_TRANSPOSED = """
def upsample_stride_half(X, K):
    n, c_in, h, w = X.shape
    _, c_out, kh, kw = K.shape
    Y = X.new_zeros((n, c_out, 2 * (h - 1) + kh, 2 * (w - 1) + kw))
    for i in range(h):
        for j in range(w):
            Y[:, :, 2*i:2*i + kh, 2*j:2*j + kw] += torch.einsum('nc,cokl->nokl', X[:, :, i, j], K)
    return Y
"""


def test_stride_half_correct_variants(runner):
    assert runner.grade(LOOP_TRANSPOSED, "7.3/6")[0].status == "passed"
    from pathlib import Path
    ref = Path(SECTION.reference_path).read_text()
    start = ref.index("def upsample_stride_half")
    assert runner.grade(ref[start:ref.index("# %% [markdown] 7.3/6")], "7.3/6")[0].status == "passed"


@pytest.mark.parametrize("source, words", [
    ("def upsample_stride_half(X, K):\n    return F.conv_transpose2d(X, K, stride=2)", "implement yourself"),
    ("def upsample_stride_half(X, K):\n    return nn.ConvTranspose2d(1, 1, 1)(X) if False else "
     "torch.conv_transpose2d(X, K, stride=2)", "implement yourself"),
    ("""
def upsample_stride_half(X, K):   # forgets to flip the kernel
    n, c, h, w = X.shape
    spread = X.new_zeros((n, c, 2*h - 1, 2*w - 1)); spread[:, :, ::2, ::2] = X
    return F.conv2d(spread, K.transpose(0, 1), padding=(K.shape[2] - 1, K.shape[3] - 1))
""", "not flipped"),
    # evasions: the input gradient of a convolution is a transposed convolution; the library's routine
    # under a name built at run time is still seen by the operator trace
    ("""
def upsample_stride_half(X, K):
    n, _, h, w = X.shape
    size = (n, K.shape[1], 2 * (h - 1) + K.shape[2], 2 * (w - 1) + K.shape[3])
    return torch.nn.grad.conv2d_input(size, K, X, stride=2)
""", "conv2d_input"),
    ("def upsample_stride_half(X, K):\n    return vars(F)['conv_' + 'transpose2d'](X, K, stride=2)",
     "runs the operator convolution_transposed"),
    ("def upsample_stride_half(X, K):\n    return F.interpolate(X, scale_factor=2)", "has shape"),
])
def test_stride_half_wrong_variants(runner, source, words):
    result = runner.grade(source, "7.3/6")[0]
    assert result.status == "failed" and result.points == 0
    assert words in result.message, result.message
