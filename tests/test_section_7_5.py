"""7.5 Pooling: the reference earns full marks; wrong answers lose points, and say why."""
import pytest

from d2lgrade.core.sections import find_section
from d2lgrade.testing import assert_reference_earns_full_marks, assert_right, assert_starter_not_attempted, assert_wrong

SECTION = find_section("7.5")


def test_reference_earns_full_marks():
    assert_reference_earns_full_marks(SECTION, {
        "7.5/2", "7.5/3.3", "7.5/5", "7.5/6", "7.5/7"})


def test_starter_is_not_attempted_everywhere():
    report = assert_starter_not_attempted(SECTION)
    pooling = [c for c in report.checks if c.exercise == "7.5/3.2"]
    assert all("MaxPoolViaReLU" in c.message for c in pooling), [c.message for c in pooling]


# -- 7.5/1 ------------------------------------------------------------------------------------------
AVG_HEAD = """
def avg_pool_via_conv(X, pool_size, stride=None):
    k = (pool_size, pool_size) if isinstance(pool_size, int) else tuple(pool_size)
    s = k if stride is None else ((stride, stride) if isinstance(stride, int) else tuple(stride))
    C = X.shape[1]
"""


@pytest.mark.parametrize("source, words", [
    (AVG_HEAD + "    return F.conv2d(X, X.new_ones((C, 1, *k)), stride=s, groups=C)", "times too large"),
    (AVG_HEAD + "    return F.conv2d(X, X.new_full((C, C, *k), 1 / (k[0] * k[1])), stride=s)", "channels are summed"),
    (AVG_HEAD + "    return F.conv2d(X, X.new_full((C, 1, *k), 1 / (k[0] * k[1])), groups=C)",
     "stride is the window size"),
    ("def avg_pool_via_conv(X, pool_size, stride=None):\n    return F.avg_pool2d(X, pool_size, stride)",
     "implement yourself"),
    ("def avg_pool_via_conv(X, pool_size, stride=None):\n    return nn.AvgPool2d(pool_size, stride)(X)",
     "implement yourself"),
    ("def avg_pool_via_conv(X, pool_size, stride=None):\n    return torch._C._nn.avg_pool2d(X, pool_size, stride)",
     "implement yourself"),
    ("def avg_pool_via_conv(X, pool_size, stride=None):\n"
     "    return F.interpolate(X, scale_factor=1 / (pool_size if stride is None else stride), mode='area')",
     "F.interpolate"),
])
def test_avg_pool_wrong(runner, source, words):
    default, explicit = runner.grade(source, "7.5/1")
    assert_wrong(default, words)
    assert_wrong(explicit, "stride argument is ignored" if "window size" in words else words)


@pytest.mark.parametrize("source", [
    AVG_HEAD + """    N, _, H, W = X.shape
    Y = F.conv2d(X.reshape(N * C, 1, H, W), X.new_ones((1, 1, *k)) / (k[0] * k[1]), stride=s)
    return Y.reshape(N, C, *Y.shape[-2:])
""",
    AVG_HEAD + """    N, _, H, W = X.shape
    h_o, w_o = (H - k[0]) // s[0] + 1, (W - k[1]) // s[1] + 1
    cols = F.unfold(X.reshape(N * C, 1, H, W), k, stride=s)        # (N*C, k_h*k_w, h_o*w_o)
    return cols.mean(1).reshape(N, C, h_o, w_o)
""",
])
def test_avg_pool_right(runner, source):
    assert_right(runner.grade(source, "7.5/1"))


# -- 7.5/2 ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("source, words", [
    ("max_nonlinear_counterexample = ([1, 2], [1, 2])", "does not show"),
    ("max_nonlinear_counterexample = ([1], [2, 3])", "same length"),
    ("max_nonlinear_counterexample = 'max is not linear'", "should be a pair"),
])
def test_counterexample_wrong(runner, source, words):
    assert_wrong(runner.grade(source, "7.5/2")[0], words)


@pytest.mark.parametrize("source", [
    "max_nonlinear_counterexample = ([1, 0], [0, 1])",
    "max_nonlinear_counterexample = (torch.tensor([3.0, -1.0]), [-5, 2])",
])
def test_counterexample_right(runner, source):
    assert_right(runner.grade(source, "7.5/2"))


# -- 7.5/3.1 ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("source, words", [
    # the seed: half of a + b + relu(a - b); at a=0, b=1 it gives 1/2
    ('max_via_relu = "(a + b + relu(a - b))/2"', ["your formula gives 1/2", "the correct value is 1"]),
    ('max_via_relu = "relu(a) + relu(b)"', "your formula gives"),
    ('max_via_relu = "max(a, b)"', ["not allowed", "relu"]),
    ('max_via_relu = "(a + b + abs(a - b))/2"', "not allowed"),
])
def test_max_via_relu_wrong(runner, source, words):
    assert_wrong(runner.grade(source, "7.5/3.1")[0], words)


@pytest.mark.parametrize("source", [
    'max_via_relu = "a + relu(b - a)"',
    'max_via_relu = "(a + b + relu(a - b) + relu(b - a))/2"',
])
def test_max_via_relu_right(runner, source):
    assert_right(runner.grade(source, "7.5/3.1"))


# -- 7.5/3.2 ----------------------------------------------------------------------------------------
# The seed's module (its weight tensor's brackets repaired, as the seed's output shows it ran): a conv
# that extracts the four pixels of each window into four channels, then ReLU.
SEED_MODULE = """
class MaxPoolingWithReLU(nn.Module):
    def __init__(self):
        super(MaxPoolingWithReLU, self).__init__()
        # Using a 2x2 kernel with stride 2 and padding 0
        self.conv = nn.Conv2d(in_channels=1, out_channels=4, kernel_size=2, stride=2, padding=0, bias=False)

        # Initialize weights manually to simulate max-pooling
        # Each input value is treated as separate channels
        with torch.no_grad():
            self.conv.weight = nn.Parameter(torch.tensor([[[[1.0, 0.0], [0.0, 0.0]]],
                                                          [[[0.0, 1.0], [0.0, 0.0]]],
                                                          [[[0.0, 0.0], [1.0, 0.0]]],
                                                          [[[0.0, 0.0], [0.0, 1.0]]]], dtype=torch.float32))

    def forward(self, x):
        x = self.conv(x) # Perform convolution
        return nn.ReLU()(x) # Apply ReLU activation

MaxPoolViaReLU = MaxPoolingWithReLU
"""

TREE_MODULE = """
class MaxPoolViaReLU(nn.Module):
    def __init__(self, pool_size=2):
        super().__init__()
        self.k = pool_size

    def forward(self, X):
        n, c, h, w = X.shape
        k = self.k
        cols = F.unfold(X.reshape(n * c, 1, h, w), k, stride=k)          # (n*c, k*k, L)
        values = list(PREPARE(cols).unbind(1))
        while len(values) > 1:
            merged = [PAIR for a, b in zip(values[0::2], values[1::2])]
            values = merged + values[2 * len(merged):]
        return values[0].reshape(n, c, (h - k) // k + 1, (w - k) // k + 1)
"""


def tree(pair, prepare="cols"):
    return TREE_MODULE.replace("PAIR", pair).replace("PREPARE(cols)", prepare)


MAXPOOL_WRONG = {
    "seed: four pixel channels then ReLU": (SEED_MODULE, ["returns 4 channels", "keeps every channel"]),
    "seed's formula (a + b + relu(a - b))/2": (tree("(a + b + F.relu(a - b)) / 2"), "not max(a, b) when a < b"),
    "ReLU on the pixels themselves": (tree("b + F.relu(a - b)", prepare="F.relu(cols)"), "negative maxima come out as 0"),
    "F.max_pool2d inside": ("class MaxPoolViaReLU(nn.Module):\n    def __init__(self, pool_size=2):\n"
                            "        super().__init__(); self.k = pool_size\n"
                            "    def forward(self, X):\n        return F.max_pool2d(X, self.k)", "implement yourself"),
    "amax over the windows": (tree("b", prepare="cols.amax(1, keepdim=True)"), "implement yourself"),
    # evasions: comparisons and selection instead of ReLU, and a maximum under a name built at run time
    "argmax and gather": (tree("b", prepare="cols.gather(1, cols.argmax(1, keepdim=True))"), "implement yourself"),
    "torch.where": (tree("torch.where(a > b, a, b)"), "torch.where"),
    "a mask from a comparison": (tree("a * (a >= b) + b * (a < b)"), "runs the operator"),
    "a maximum through __getattribute__": (tree("a.__getattribute__('ma' + 'ximum')(b)"), "runs the operator maximum"),
}


@pytest.mark.parametrize("name", MAXPOOL_WRONG)
def test_max_pool_wrong(runner, name):
    source, words = MAXPOOL_WRONG[name]
    first = runner.grade(source, "7.5/3.2", only={"7.5/3.2"})[0]
    assert_wrong(first, words)


def test_seed_module_cannot_take_a_3x3_window(runner):
    results = {r.id: r for r in runner.grade(SEED_MODULE, "7.5/3.2")}
    assert_wrong(results["7.5/3.2:3x3"], "pool_size=3")


MAXPOOL_RIGHT = {
    "reference": None,
    "max(a, b) = (a + b + |a - b|)/2": tree("(a + b + (a - b).abs()) / 2"),
    "ReLU as clamp(min=0)": tree("b + torch.clamp(a - b, min=0)"),
    "tree of a + relu(b - a) over unfolded windows": tree("a + F.relu(b - a)"),
    "function, with the starter's class left in place": SECTION.spec.exercise("7.5/3.2").starter + """
def max_pool_via_relu(X, pool_size):
    n, c, h, w = X.shape
    k = pool_size
    pick = torch.eye(k * k, dtype=X.dtype).reshape(k * k, 1, k, k)
    values = list(F.conv2d(X.reshape(n * c, 1, h, w), pick, stride=k).unbind(1))
    while len(values) > 1:
        values = [b + F.relu(a - b) for a, b in zip(values[0::2], values[1::2])] + values[len(values) // 2 * 2:]
    return values[0].reshape(n, c, *values[0].shape[-2:])
""",
}


@pytest.mark.parametrize("name", MAXPOOL_RIGHT)
def test_max_pool_right(runner, name):
    source = MAXPOOL_RIGHT[name]
    if source is None:
        text = SECTION.reference_path.read_text()
        source = text[text.index("def _pair"):text.index("# %% 7.5/3.3")]
    assert_right(runner.grade(source, "7.5/3.2"))


# -- 7.5/3.3 ----------------------------------------------------------------------------------------
def test_relu_levels(runner):
    # the seed: one layer for both windows
    seed = {r.id: r for r in runner.grade("relu_levels_2x2 = 1\nrelu_levels_3x3 = 1", "7.5/3.3")}
    assert_wrong(seed["7.5/3.3"], "cannot compute the maximum of more than two numbers")
    assert_wrong(seed["7.5/3.3:3x3"], "not nine")
    wrong = {r.id: r for r in runner.grade("relu_levels_2x2 = 3\nrelu_levels_3x3 = 9", "7.5/3.3")}
    assert_wrong(wrong["7.5/3.3"], "pair the four values up")
    assert_wrong(wrong["7.5/3.3:3x3"], "count them")
    assert_wrong(runner.grade("relu_levels_2x2 = '2'\nrelu_levels_3x3 = 4", "7.5/3.3", only={"7.5/3.3"})[0],
                 "whole number")
    assert_right(runner.grade("relu_levels_2x2 = 2\nrelu_levels_3x3 = 3", "7.5/3.3"))
    assert_right(runner.grade("relu_levels_2x2 = 2.0\nrelu_levels_3x3 = 4", "7.5/3.3"))


# -- 7.5/4 ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("source, words", [
    # the seed: ceiling instead of floor + 1, and no p_h*p_w work per window
    ('pool_cost = "c*ceiling((h + 2*p_h - p_h)/s_h)*ceiling((w + 2*p_w - p_w)/s_w)"',
     ["your formula gives", "ceiling(...) misses one", "no factor p_h*p_w"]),
    ('pool_cost = "c*p_h*p_w*ceiling((h + p_h)/s_h)*ceiling((w + p_w)/s_w)"', ["your formula gives", "ceiling"]),
    ('pool_cost = "c*(floor((h + p_h)/s_h) + 1)*(floor((w + p_w)/s_w) + 1)"', ["your formula gives", "p_h*p_w"]),
    ('pool_cost = "c*p_h*p_w*(floor((h - p_h)/s_h) + 1)*(floor((w - p_w)/s_w) + 1)"', "your formula gives"),
])
def test_pool_cost_wrong(runner, source, words):
    assert_wrong(runner.grade(source, "7.5/4")[0], words)


@pytest.mark.parametrize("source", [
    'pool_cost = "c*p_h*p_w*((h + p_h)//s_h + 1)*((w + p_w)//s_w + 1)"',
    'pool_cost = "c*(p_h*p_w - 1)*(floor((h + 2*p_h - p_h)/s_h) + 1)*(floor((w + 2*p_w - p_w)/s_w) + 1)"',
])
def test_pool_cost_right(runner, source):
    assert_right(runner.grade(source, "7.5/4"))


# -- 7.5/6 ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("source, words", [
    ("def min_pool(X, pool_size):\n    return -F.max_pool2d(X, pool_size)", "negate the input"),
    ("def min_pool(X, pool_size):\n    return F.max_pool2d(-X, pool_size)", "the sign is wrong"),
    ("def min_pool(X, pool_size):\n    return -F.max_pool2d(-X, pool_size, stride=1)", "stride must be the window"),
    ("def min_pool(X, pool_size):\n    return F.avg_pool2d(X, pool_size)", "average pooling"),
])
def test_min_pool_wrong(runner, source, words):
    assert_wrong(runner.grade(source, "7.5/6")[0], words)


@pytest.mark.parametrize("source", [
    "def min_pool(X, pool_size):\n    return nn.MaxPool2d(pool_size)(X.neg()).neg()",
    """
def min_pool(X, pool_size):
    k = (pool_size, pool_size) if isinstance(pool_size, int) else pool_size
    n, c, h, w = X.shape
    cols = F.unfold(X.reshape(n * c, 1, h, w), k, stride=k)
    return cols.amin(1).reshape(n, c, (h - k[0]) // k[0] + 1, (w - k[1]) // k[1] + 1)
""",
])
def test_min_pool_right(runner, source):
    assert_right(runner.grade(source, "7.5/6"))
