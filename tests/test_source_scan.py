"""The static scan and the trace judgement of "implement it yourself" exercises, without a runtime:
evasions are named, honest code in several styles gives no finding."""
import pytest

from d2lgrade.compare.implementation_rules import CONVOLUTION, MAX_POOLING_VIA_RELU
from d2lgrade.compare.source_scan import FORBIDDEN, UNVERIFIABLE, scan_source
from d2lgrade.compare.trace_judge import judge_trace
from d2lgrade.load import load_submission
from d2lgrade.core.sections import find_section

SETUP = ("cell 1", "import torch\nfrom torch import nn\nfrom torch.nn import functional as F\n")


def findings(code, entry="conv1d", rules=CONVOLUTION):
    return [(f.kind, f.what) for f in scan_source([SETUP, ("cell 2", code)], (entry,), rules).findings]


@pytest.mark.parametrize("code, kind, words", [
    ("def conv1d(x, w):\n    return F.conv1d(x[None, None], w[None, None])[0, 0]", FORBIDDEN, "`F.conv1d`"),
    ("from torch.nn.functional import conv1d as c\ndef conv1d(x, w):\n    return c(x, w)", FORBIDDEN, "`F.conv1d`"),
    ("import numpy as np\ndef conv1d(x, w):\n    return np.convolve(x, w)", FORBIDDEN, "`numpy.convolve`"),
    ("import scipy.signal as ss\ndef conv1d(x, w):\n    return ss.correlate(x, w)", FORBIDDEN, "scipy.signal.correlate"),
    ("def conv1d(x, w):\n    return torch._C._nn.slow_conv2d(x, w)", FORBIDDEN, "torch._C._nn.slow_conv2d"),
    ("def conv1d(x, w):\n    return getattr(F, 'conv' + '1d')(x, w)", UNVERIFIABLE, "`getattr` with a name computed"),
    ("def conv1d(x, w):\n    return eval('x')", UNVERIFIABLE, "eval()"),
    ("def conv1d(x, w):\n    return torch.ops.aten.mm(x, w)", UNVERIFIABLE, "`torch.ops.aten.mm`"),
    ("def conv1d(x, w):\n    return torch._foo(x, w)", UNVERIFIABLE, "private entry point `torch._foo`"),
    ("globals()['helper'] = len\ndef conv1d(x, w):\n    return helper(x)", UNVERIFIABLE, "no cell defines"),
    ("import numpy as np\ndef conv1d(x, w):\n    return np.dot(x, w)", UNVERIFIABLE, "outside PyTorch"),
    ("torch.Tensor.__matmul__ = len\ndef conv1d(x, w):\n    return x @ w", UNVERIFIABLE, "replaces `torch.Tensor.__matmul__`"),
    ("import _d2lgrade_agent\ndef conv1d(x, w):\n    return x", UNVERIFIABLE, "operator trace"),
    ("op = len\ndef conv1d(x, w):\n    return op(x)\nexec('op = F.conv1d')", UNVERIFIABLE, None),
    # the book's cross-correlation, however it is reached
    ("from d2l import torch as d2l\ndef conv1d(x, w):\n    return d2l.corr2d(x[None], w[None])[0]", FORBIDDEN,
     "the book's `d2l.corr2d`"),
    ("import d2l.torch as book\ndef conv1d(x, w):\n    return book.corr2d_multi_in(x[None, None], w[None, None])",
     FORBIDDEN, "`d2l.corr2d_multi_in`"),
    ("from d2l.torch import corr2d as c\ndef conv1d(x, w):\n    return c(x[None], w[None])[0]", FORBIDDEN,
     "the book's `d2l.corr2d`"),
    ("from d2l import torch as d2l\ndef conv1d(x, w):\n    return getattr(d2l, 'corr2d')(x[None], w[None])[0]",
     FORBIDDEN, "the book's `d2l.corr2d`"),
    ("from d2l import torch as d2l\nlib = d2l\ndef conv1d(x, w):\n    return lib.corr2d(x[None], w[None])[0]",
     FORBIDDEN, "`.corr2d`"),
    # a library's namespace read as a dictionary reaches any routine under a computed name
    ("from d2l import torch as d2l\ndef conv1d(x, w):\n    return d2l.__dict__['corr' + '2d'](x[None], w[None])[0]",
     UNVERIFIABLE, "`d2l.__dict__`"),
    ("def conv1d(x, w):\n    return F.__dict__['con' + 'v1d'](x[None, None], w[None, None])[0, 0]", UNVERIFIABLE,
     "`F.__dict__`"),
])
def test_evasions_are_named(code, kind, words):
    found = findings(code)
    assert any(k == kind and (words is None or words in what) for k, what in found), found


def test_a_helper_reached_through_module_names_is_scanned():
    code = "_impl = F.conv1d\ndef helper(x, w):\n    return _impl(x, w)\ndef conv1d(x, w):\n    return helper(x, w)"
    assert (FORBIDDEN, "`F.conv1d` (cell 2, line 1)") in findings(code)
    # ... but what the exercise's function never reaches is none of its business
    assert findings("def other(x):\n    return F.conv1d(x, x)\ndef conv1d(x, w):\n    return x.unfold(0, len(w), 1) @ w") == []


@pytest.mark.parametrize("code", [
    "def conv1d(x, w):\n    return x.unfold(0, len(w), 1) @ w",
    "def conv1d(x, w):\n    return torch.stack([(x[i:i + len(w)] * w).sum() for i in range(len(x) - len(w) + 1)])",
    "import numpy as np\ndef conv1d(x, w):\n    out = np.zeros(len(x) - len(w) + 1)\n"
    "    for i in range(len(out)):\n        out[i] = float((x[i:i + len(w)] * w).sum())\n    return torch.from_numpy(out)",
    "class Conv:\n    def __init__(self, w):\n        self._w = w\n    def __call__(self, x):\n"
    "        return x.unfold(0, len(self._w), 1) @ self._w\ndef conv1d(x, w):\n    return Conv(w)(x)",
    # the book's helpers that do no convolution, and a corr2d of the student's own
    "from d2l import torch as d2l\ndef conv1d(x, w):\n    return d2l.reshape(x.unfold(0, len(w), 1) @ w, (-1,))",
    "def corr2d(X, K):\n    return (X.unfold(0, K.shape[0], 1).unfold(1, K.shape[1], 1) * K).sum((-2, -1))\n"
    "def conv1d(x, w):\n    return corr2d(x[None], w[None])[0]",
    "class Ops:\n    @staticmethod\n    def corr2d(X, K):\n"
    "        return (X.unfold(0, K.shape[0], 1).unfold(1, K.shape[1], 1) * K).sum((-2, -1))\n"
    "def conv1d(x, w):\n    return Ops.corr2d(x[None], w[None])[0]",
])
def test_honest_code_gives_no_finding(code):
    assert findings(code) == []


@pytest.mark.parametrize("section, names, rules", [
    ("7.1", ("conv1d",), CONVOLUTION), ("7.1", ("conv1d_full",), CONVOLUTION),
    ("7.2", ("corr2d",), CONVOLUTION), ("7.4", ("conv2d_im2col",), CONVOLUTION),
    ("7.5", ("MaxPoolViaReLU",), MAX_POOLING_VIA_RELU),
])
def test_the_references_give_no_finding(section, names, rules):
    cells = load_submission(find_section(section).reference_path).code_cells
    assert scan_source([(f"cell {c.index}", c.source) for c in cells], names, rules).findings == []


def test_the_trace_is_an_allow_list():
    assert judge_trace(["mv", "unfold"], True, CONVOLUTION).unverifiable == ""
    assert judge_trace(["convolution"], True, CONVOLUTION).forbidden == ["convolution"]
    assert judge_trace(["_slow_conv2d_forward"], True, CONVOLUTION).forbidden
    assert "switched off" in judge_trace(["mv"], False, CONVOLUTION).unverifiable
    assert "recorded no operation" in judge_trace([], True, CONVOLUTION).unverifiable
    assert "_fft_r2c" in judge_trace(["_fft_r2c", "mul"], True, CONVOLUTION).unverifiable
    assert judge_trace(["relu", "sub", "add", "convolution"], True, MAX_POOLING_VIA_RELU).unverifiable == ""
    assert judge_trace(["gt", "mul"], True, MAX_POOLING_VIA_RELU).forbidden == ["gt"]


def test_cells_the_grader_cannot_parse():
    magic = "%time _ = 1\ndef conv1d(x, w):\n    return x.unfold(0, len(w), 1) @ w"
    assert findings(magic) == []          # read as IPython runs it
    broken = [SETUP, ("cell 2", "def conv1d(x, w):\n    return x.unfold(0, len(w), 1) @ w"),
              ("cell 3", "conv1d = F.conv1d if True else\n")]
    found = scan_source(broken, ("conv1d",), CONVOLUTION).findings
    assert [f.kind for f in found] == [UNVERIFIABLE] and "cannot parse" in found[0].what
    unrelated = broken[:2] + [("cell 3", "print(\n")]
    assert scan_source(unrelated, ("conv1d",), CONVOLUTION).findings == []


def test_the_book_routines_on_the_stack():
    """The runtime names the book's routines that ran operators: its cross-correlation is refused, its other
    helpers are not."""
    verdict = judge_trace(["mul", "sum", "zeros"], True, CONVOLUTION, book=["d2l.torch.corr2d"])
    assert verdict.book == ["d2l.corr2d"]
    assert judge_trace(["mul", "sum"], True, CONVOLUTION, book=["d2l.torch.<lambda>"]) == judge_trace(
        ["mul", "sum"], True, CONVOLUTION)


@pytest.mark.parametrize("ops", [
    ["arange", "index_add_", "mul", "unsqueeze", "view", "zeros"],        # outer product, then index_add_
    ["arange", "scatter_add_", "mul", "zeros"],
    ["bincount", "mul", "arange"],
    ["promote_types", "zeros", "slice", "copy_", "mv", "_to_copy"],      # a Toeplitz matrix in the promoted dtype
    ["addr", "diagonal", "flip", "stack", "sum"],
    ["bmm", "index_put_", "permute", "lift_fresh"],                      # einsum with a selection tensor
])
def test_honest_tensor_algebra_is_verified(ops):
    assert judge_trace(ops, True, CONVOLUTION).unverifiable == ""


def test_reductions_that_can_select_stay_out_of_max_pooling():
    assert judge_trace(["scatter_reduce", "add"], True, MAX_POOLING_VIA_RELU).unverifiable
    assert judge_trace(["index_reduce_", "add"], True, MAX_POOLING_VIA_RELU).unverifiable
