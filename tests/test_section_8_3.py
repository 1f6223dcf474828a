"""8.3 NiN: the reference earns full marks; wrong networks and counts lose points, and say why."""
import pytest

from d2lgrade.load import load_submission
from d2lgrade.core.sections import find_section
from d2lgrade.testing import assert_reference_earns_full_marks, assert_right, assert_wrong
from graders import section_8_3 as graders

SECTION = find_section("8.3")


def by_id(results):
    return {r.id: r for r in results}


# -- the whole pipeline ------------------------------------------------------------------------------------
def test_reference_earns_full_marks():
    assert_reference_earns_full_marks(SECTION, {"8.3/1", "8.3/2", "8.3/3", "8.3/4", "8.3/5"})


def test_starter_is_not_attempted_everywhere(runner):
    cells = [c.source for c in load_submission(SECTION.starter_path).code_cells]
    results = runner.grade("\n\n".join(cells), "8.3")
    assert {r.status for r in results} == {"not_attempted"}, [(r.id, r.status, r.message) for r in results]
    for r in results:
        assert any(name in r.message for name in ("nin", "nin_params", "nin_flops", "nin_family")), r.message


def test_reference_counts_agree_with_the_catalogue():
    """A cross-check of the reference (the graders never use these figures): counted from the book's code."""
    nin = graders._reference("NiN")
    assert nin["params"] == 1_992_166 and sum(nin["flops"].values()) == 1_524_594_704
    assert graders._reference("nin", head="fc")["params"] - nin["params"] == 10 * 10 * 5 * 5 + 10


# -- 8.3/1-3 ----------------------------------------------------------------------------------------------
PLAIN_NIN = """
def block(c_in, c_out, k, s, p, n_1x1, k1):   # explicit in-channels, no lazy layers
    layers = [nn.Conv2d(c_in, c_out, k, s, p), nn.ReLU()]
    for _ in range(n_1x1):
        layers += [nn.Conv2d(c_out, c_out, k1, padding=(k1 - 1) // 2), nn.ReLU()]
    return nn.Sequential(*layers)

class MyNiN(nn.Module):
    def __init__(self, n_1x1, kernel_1x1, head, num_classes):
        super().__init__()
        b = lambda *a: block(*a, n_1x1, kernel_1x1)
        self.features = nn.Sequential(
            b(1, 96, 11, 4, 0), nn.MaxPool2d(3, 2), b(96, 256, 5, 1, 2), nn.MaxPool2d(3, 2),
            b(256, 384, 3, 1, 1), nn.MaxPool2d(3, 2), nn.Dropout(0.5), b(384, num_classes, 3, 1, 1))
        self.head = head
        self.fc = nn.Linear(num_classes * 25, num_classes) if head == "fc" else None
        self.gap = nn.AdaptiveAvgPool2d(1)

    def forward(self, X):
        X = self.features(X)
        return self.fc(X.flatten(1)) if self.head == "fc" else self.gap(X).flatten(1)

def nin(n_1x1=2, kernel_1x1=1, head="gap", num_classes=10):
    return MyNiN(n_1x1, kernel_1x1, head, num_classes)
"""

BOOK_STYLE_NIN = """
def nin_block(out_channels, kernel_size, strides, padding, n_1x1=2, kernel_1x1=1):
    layers = [nn.LazyConv2d(out_channels, kernel_size, strides, padding), nn.ReLU()]
    layers += [m for _ in range(n_1x1)
               for m in (nn.LazyConv2d(out_channels, kernel_1x1, padding="same"), nn.ReLU())]
    return nn.Sequential(*layers)

class NiN(d2l.Classifier):
    def __init__(self, lr=0.1, num_classes=10, **knobs):
        super().__init__()
        self.save_hyperparameters()
        head = knobs.pop("head", "gap")
        self.net = nn.Sequential(
            nin_block(96, 11, 4, 0, **knobs), nn.MaxPool2d(3, stride=2),
            nin_block(256, 5, 1, 2, **knobs), nn.MaxPool2d(3, stride=2),
            nin_block(384, 3, 1, 1, **knobs), nn.MaxPool2d(3, stride=2), nn.Dropout(0.5),
            nin_block(num_classes, 3, 1, 1, **knobs))
        self.net.append(nn.Sequential(nn.Flatten(), nn.LazyLinear(num_classes)) if head == "fc" else
                        nn.Sequential(nn.AdaptiveAvgPool2d((1, 1)), nn.Flatten()))
        self.net.apply(d2l.init_cnn)

def nin(n_1x1=2, kernel_1x1=1, head="gap", num_classes=10):
    return NiN(num_classes=num_classes, n_1x1=n_1x1, kernel_1x1=kernel_1x1, head=head)
"""


# The checks of the exercises about the network (8.3/1 to 8.3/3), without the section's training and counts.
NIN_CHECKS = {c.id for c in SECTION.checks if c.exercise in ("8.3/1", "8.3/2", "8.3/3")}


@pytest.mark.parametrize("source", [PLAIN_NIN, BOOK_STYLE_NIN], ids=["plain-conv2d", "book-style-padding-same"])
def test_nin_right(runner, source):
    results = [r for r in runner.grade(source, "8.3", only=NIN_CHECKS) if r.status != "manual"]
    assert len(results) == 4
    assert_right(results)


def test_book_nin_without_knobs_passes_only_the_book_check(runner):
    """The book's NiN typed as it is, wrapped without using the knobs: only `nin()` is right."""
    source = BOOK_STYLE_NIN.replace("n_1x1=n_1x1, kernel_1x1=kernel_1x1, head=head", "")
    checks = by_id(runner.grade(source, "8.3", only=NIN_CHECKS))
    assert checks["8.3/1:book"].status == "passed"
    assert_wrong(checks["8.3/1"], ["nin(n_1x1=1)", "convolution #3", "96 channels, 1×1 window",
                                   "256 channels, 5×5 window"])
    assert_wrong(checks["8.3/2"], ["kernel_1x1=3)", "1×1 window", "3×3 window"])
    assert_wrong(checks["8.3/3"], ['nin(head="fc")', "still runs a global average pooling"])


@pytest.mark.parametrize("change, check_id, words", [
    ("(k1 - 1) // 2", "8.3/2", ["padding 0", "padding 1"]),
    ("c_out, k1, padding", "8.3/1:book", ["the count without the biases"]),
    ("num_classes * 25, num_classes", "8.3/3", ["runs no fully connected layer"]),
], ids=["3x3-without-padding", "no-biases", "fc-head-is-pooling"])
def test_nin_wrong(runner, change, check_id, words):
    source = {
        "(k1 - 1) // 2": PLAIN_NIN.replace("padding=(k1 - 1) // 2", "padding=0"),
        "c_out, k1, padding": PLAIN_NIN.replace("c_out, c_out, k1, padding=(k1 - 1) // 2",
                                                "c_out, c_out, k1, padding=(k1 - 1) // 2, bias=False")
                                       .replace("nn.Conv2d(c_in, c_out, k, s, p)", "nn.Conv2d(c_in, c_out, k, s, p, bias=False)"),
        "num_classes * 25, num_classes": PLAIN_NIN.replace(
            'return self.fc(X.flatten(1)) if self.head == "fc" else self.gap(X).flatten(1)',
            "return F.avg_pool2d(X, X.shape[-1]).flatten(1)"),
    }[change]
    assert_wrong(by_id(runner.grade(source, check_id.split(":")[0], only={check_id}))[check_id], words)


# -- 8.3/4 ----------------------------------------------------------------------------------------------
COMPUTED_COUNTS = """
from torch.utils.flop_counter import FlopCounterMode
_model = nn.Sequential(   # the book's NiN, counted rather than typed
    *[m for c, k, s, p in ((96, 11, 4, 0), (256, 5, 1, 2), (384, 3, 1, 1), (10, 3, 1, 1))
      for m in (nn.LazyConv2d(c, k, s, p), nn.ReLU(), nn.LazyConv2d(c, 1), nn.ReLU(), nn.LazyConv2d(c, 1), nn.ReLU(),
                nn.MaxPool2d(3, 2))][:-1], nn.AdaptiveAvgPool2d(1), nn.Flatten())
_model(torch.zeros(1, 1, 224, 224))
nin_params = sum(p.numel() for p in _model.parameters())
with FlopCounterMode(display=False) as _counter:
    _model(torch.zeros(1, 1, 224, 224))
nin_flops = {"total": _counter.get_total_flops() / 2, "unit": "MACs"}
"""


def test_counts_right(runner):
    assert_right(runner.grade(COMPUTED_COUNTS, "8.3/4"))
    assert_right(runner.grade('nin_params = 1.99e6\nnin_flops = {"total": 1.5e9, "unit": "flops"}', "8.3/4"))


@pytest.mark.parametrize("source, check_id, words", [
    ("nin_params = 7_416_376", "8.3/4:params", ["1000 classes"]),
    ("nin_params = 1.99e9", "8.3/4:params", ["3 orders of magnitude above", "1.99 M"]),
    # within 1 % but a precise miscount: the tolerance is for rounded figures, a count has one right value
    ("nin_params = 1_992_167", "8.3/4:params", ["1,992,167", "neither an exact count (with or without biases) nor a rounding"]),
    ('nin_flops = {"total": 762_297_352, "unit": "FLOPs"}', "8.3/4:flops", ["in MACs labelled as FLOPs"]),
    ('nin_flops = {"total": 1_100_000_000}', "8.3/4:flops", ['"unit": "FLOPs" or "MACs"']),
    ('nin_flops = 1_524_594_704', "8.3/4:flops", ["should be a dict"]),
], ids=["1000-classes", "off-by-1000", "precise-miscount", "macs-as-flops", "no-unit", "bare-number"])
def test_counts_wrong(runner, source, check_id, words):
    other = "nin_flops = None" if "params" in check_id else "nin_params = None"
    assert_wrong(by_id(runner.grade(source + "\n" + other, "8.3/4", only={check_id}))[check_id], words)


# -- 8.3/6 ----------------------------------------------------------------------------------------------
DEEPER_STAGES = """
def nin_family(depth, num_classes=10):   # extra 1×1 layers go to the wide later stages first, as VGG does
    per_block = {12: (2, 2, 2, 2), 16: (2, 2, 4, 4), 20: (2, 4, 5, 5)}[depth]
    stages = ((96, 11, 4, 0), (256, 5, 1, 2), (384, 3, 1, 1), (num_classes, 3, 1, 1))
    layers = []
    for (c, k, s, p), n in zip(stages, per_block):
        layers += [nn.LazyConv2d(c, k, s, p), nn.ReLU()]
        layers += [m for _ in range(n) for m in (nn.LazyConv2d(c, 1), nn.ReLU())]
        layers.append(nn.MaxPool2d(3, 2) if c != num_classes else nn.AdaptiveAvgPool2d(1))
    return nn.Sequential(*layers, nn.Flatten())
"""

SMALL_HEAD = DEEPER_STAGES.replace("20: (2, 4, 5, 5)}", "20: (2, 4, 5, 4)}").replace(
    "return nn.Sequential(*layers, nn.Flatten())",
    "layers += [nn.Flatten(), nn.LazyLinear(num_classes)] if depth == 20 else [nn.Flatten()]\n"
    "    return nn.Sequential(*layers)")


@pytest.mark.parametrize("source", [DEEPER_STAGES, SMALL_HEAD], ids=["deeper-later-stages", "small-dense-head"])
def test_family_right(runner, source):
    assert_right(runner.grade(source, "8.3/6"))


@pytest.mark.parametrize("source, words", [
    (DEEPER_STAGES.replace("[depth]", "[12]"), ["nin_family(16)", "runs 12 weight layers"]),
    (DEEPER_STAGES.replace("layers += [m for _ in range(n)", "layers += [m for _ in range(n + 1)"),
     ["nin_family(12)", "runs 16 weight layers"]),
    (DEEPER_STAGES.replace("nn.LazyConv2d(c, 1)", "nn.LazyConv2d(c, 3, padding=1)"), ["no 1×1 convolution"]),
    (DEEPER_STAGES.replace("20: (2, 4, 5, 5)}", "20: (2, 4, 5, 2)}").replace(
        "return nn.Sequential(*layers, nn.Flatten())",
        "layers += [nn.Flatten(), nn.LazyLinear(4096), nn.ReLU(), nn.LazyLinear(4096), nn.ReLU(), "
        "nn.LazyLinear(num_classes)] if depth == 20 "
        "else [nn.Flatten()]\n    return nn.Sequential(*layers)"), ["nin_family(20)", "dense layers hold", "VGG"]),
], ids=["ignores-depth", "counts-only-1x1", "no-1x1", "vgg-head"])
def test_family_wrong(runner, source, words):
    assert_wrong(runner.grade(source, "8.3/6")[0], words)
