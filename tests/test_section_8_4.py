"""8.4 GoogLeNet: the reference earns full marks; wrong blocks, networks and counts lose points, and say why."""
import inspect

import pytest

from d2lgrade.load import load_submission
from d2lgrade.core.sections import find_section
from d2lgrade.testing import assert_reference_earns_full_marks, assert_right, assert_wrong
from graders import section_8_4 as graders
from reference import section_8_4 as ref

SECTION = find_section("8.4")
# The section's code as a student types it: every variant below may build on it.
BOOK = "\n\n".join(inspect.getsource(obj) for obj in (ref.Inception, ref.GoogleNet)) + """
@d2l.add_to_class(GoogleNet)
def b2(self):
    return nn.Sequential(nn.LazyConv2d(64, kernel_size=1), nn.ReLU(), nn.LazyConv2d(192, kernel_size=3, padding=1),
                         nn.ReLU(), nn.MaxPool2d(kernel_size=3, stride=2, padding=1))

@d2l.add_to_class(GoogleNet)
def b3(self):
    return nn.Sequential(Inception(64, (96, 128), (16, 32), 32), Inception(128, (128, 192), (32, 96), 64),
                         nn.MaxPool2d(kernel_size=3, stride=2, padding=1))

@d2l.add_to_class(GoogleNet)
def b4(self):
    return nn.Sequential(Inception(192, (96, 208), (16, 48), 64), Inception(160, (112, 224), (24, 64), 64),
                         Inception(128, (128, 256), (24, 64), 64), Inception(112, (144, 288), (32, 64), 64),
                         Inception(256, (160, 320), (32, 128), 128), nn.MaxPool2d(kernel_size=3, stride=2, padding=1))

@d2l.add_to_class(GoogleNet)
def b5(self):
    return nn.Sequential(Inception(256, (160, 320), (32, 128), 128), Inception(384, (192, 384), (48, 128), 128),
                         nn.AdaptiveAvgPool2d((1,1)), nn.Flatten())

@d2l.add_to_class(GoogleNet)
def __init__(self, lr=0.1, num_classes=10):
    super(GoogleNet, self).__init__()
    self.save_hyperparameters()
    self.net = nn.Sequential(self.b1(), self.b2(), self.b3(), self.b4(), self.b5(), nn.LazyLinear(num_classes))
    self.net.apply(d2l.init_cnn)
"""


def by_id(results):
    return {r.id: r for r in results}


def grade_checks(runner, source, ids):
    """Like runner.grade, for the checks named by id only (a structure check without the training one)."""
    runner.load(source)
    return runner.grade_loaded(ids)


# -- the whole pipeline ------------------------------------------------------------------------------------
def test_reference_earns_full_marks():
    assert_reference_earns_full_marks(SECTION, {"8.4/3", "8.4/4", "8.4/5"})


def test_starter_is_not_attempted_everywhere(runner):
    cells = [c.source for c in load_submission(SECTION.starter_path).code_cells]
    results = runner.grade("\n\n".join(cells), "8.4")
    assert {r.status for r in results} == {"not_attempted"}, [(r.id, r.status, r.message) for r in results]


def test_reference_figures_agree_with_the_catalogue():
    """A cross-check of the reference (the graders never use these figures)."""
    counts = {key: n for key, (n, _) in graders._reference_counts().items()}
    assert counts["GoogLeNet"] == 5_977_530 and counts["NiN"] == 1_992_166
    alexnet = graders.describe_reference(graders.ref, "AlexNet", input_shape=graders.GOOGLENET_IMAGE)["flops"]
    assert (alexnet["conv"], alexnet["linear"]) == (1_790_227_200, 86_065_152)
    assert graders.smallest_googlenet_input() == 1


def test_the_book_code_as_typed_runs_in_the_runtime(runner):
    run = runner.runtime.run_source(BOOK + "\nassert GoogleNet()(torch.zeros(2, 1, 96, 96)).shape == (2, 10)")
    assert run.status == "ok", (run.error, run.traceback)


# -- 8.4/1.1 ----------------------------------------------------------------------------------------------
BN_SUBCLASS = BOOK + """
class InceptionBN(Inception):   # the book's block, convolutions without biases, batch norm before each ReLU
    def __init__(self, c1, c2, c3, c4):
        super().__init__(c1, c2, c3, c4)
        for name in ("b1_1", "b2_1", "b2_2", "b3_1", "b3_2", "b4_2"):
            old = getattr(self, name)
            setattr(self, name, nn.LazyConv2d(old.out_channels, old.kernel_size, padding=old.padding, bias=False))
            setattr(self, name + "_bn", nn.LazyBatchNorm2d())

    def forward(self, x):
        f = lambda name, x: F.relu(getattr(self, name + "_bn")(getattr(self, name)(x)))
        return torch.cat((f("b1_1", x), f("b2_2", f("b2_1", x)), f("b3_2", f("b3_1", x)),
                          f("b4_2", self.b4_1(x))), dim=1)
"""

BN_BRANCHES = """
def unit(c, k):
    return [nn.LazyConv2d(c, k, padding="same"), nn.LazyBatchNorm2d(), nn.ReLU()]

class InceptionBN(nn.Module):   # branches as Sequentials in a ModuleList
    def __init__(self, c1, c2, c3, c4):
        super().__init__()
        self.branches = nn.ModuleList([
            nn.Sequential(*unit(c1, 1)), nn.Sequential(*unit(c2[0], 1), *unit(c2[1], 3)),
            nn.Sequential(*unit(c3[0], 1), *unit(c3[1], 5)), nn.Sequential(nn.MaxPool2d(3, 1, 1), *unit(c4, 1))])

    def forward(self, x):
        return torch.cat([branch(x) for branch in self.branches], dim=1)
"""


@pytest.mark.parametrize("source", [BN_SUBCLASS, BN_BRANCHES], ids=["subclass-no-bias", "module-list"])
def test_inception_bn_right(runner, source):
    results = runner.grade(source, "8.4/1.1")
    assert {r.id for r in results} == {"8.4/1.1", "8.4/1.1:training"}
    assert_right(results)


def test_book_block_does_not_train_like_a_normalised_one(runner):
    training = grade_checks(runner, BOOK + "\nInceptionBN = Inception\n", {"8.4/1.1:training"})["8.4/1.1:training"]
    assert_wrong(training, ["no better than", "book's Inception blocks", "batch normalisation"])


@pytest.mark.parametrize("source, words", [
    (BOOK + "\nInceptionBN = Inception\n", ["1×1 convolution from 192 to 64 channels", "not followed by batch"]),
    (BN_BRANCHES.replace("*unit(c2[0], 1), *unit(c2[1], 3)",
                         "nn.LazyConv2d(c2[0], 1), nn.ReLU(), *unit(c2[1], 3)"),
     ["1×1 convolution from 192 to 96 channels is not followed by batch normalisation"]),
    (BN_BRANCHES.replace("return torch.cat([branch(x) for branch in self.branches], dim=1)",
                         "return self.bn(torch.cat([branch(x) for branch in self.branches], dim=1))")
     .replace("def unit(c, k):\n    return [nn.LazyConv2d(c, k, padding=\"same\"), nn.LazyBatchNorm2d(), nn.ReLU()]",
              "def unit(c, k):\n    return [nn.LazyConv2d(c, k, padding=\"same\"), nn.ReLU()]")
     .replace("super().__init__()", "super().__init__()\n        self.bn = nn.LazyBatchNorm2d()"),
     ["not followed by batch normalisation"]),
    (BN_BRANCHES.replace("*unit(c2[0], 1), *unit(c2[1], 3)", "*unit(c2[1], 1), *unit(c2[1], 3)"),
     ["lacks the", "the 1×1 convolution from 192 to 96 channels", "a 3×3 convolution from 128 to 128 channels"]),
], ids=["book-block", "one-convolution-unnormalised", "one-bn-after-the-concatenation", "wrong-width"])
def test_inception_bn_wrong(runner, source, words):
    assert_wrong(grade_checks(runner, source, {"8.4/1.1"})["8.4/1.1"], words)


# -- 8.4/1.2 ----------------------------------------------------------------------------------------------
FACTORIZED_SUBCLASS = BOOK + """
class InceptionFactorized(Inception):   # branch 3 replaced by a Sequential
    def __init__(self, c1, c2, c3, c4):
        super().__init__(c1, c2, c3, c4)
        self.b3_2 = nn.Sequential(nn.LazyConv2d(c3[1], 3, padding=1), nn.ReLU(), nn.LazyConv2d(c3[1], 3, padding=1))
"""

FACTORIZED_STANDALONE = """
class InceptionFactorized(nn.Module):
    def __init__(self, c1, c2, c3, c4):
        super().__init__()
        conv = lambda c, k: nn.Sequential(nn.LazyConv2d(c, k, padding="same"), nn.ReLU())
        self.p1 = conv(c1, 1)
        self.p2 = nn.Sequential(conv(c2[0], 1), conv(c2[1], 3))
        self.p3 = nn.Sequential(conv(c3[0], 1), conv(c3[1], 3), conv(c3[1], 3))
        self.p4 = nn.Sequential(nn.MaxPool2d(3, stride=1, padding=1), conv(c4, 1))

    def forward(self, x):
        return torch.cat([self.p1(x), self.p2(x), self.p3(x), self.p4(x)], 1)
"""


@pytest.mark.parametrize("source", [FACTORIZED_SUBCLASS, FACTORIZED_STANDALONE], ids=["subclass", "standalone"])
def test_factorized_right(runner, source):
    assert_right(runner.grade(source, "8.4/1.2"))


@pytest.mark.parametrize("source, words", [
    (BOOK + "\nInceptionFactorized = Inception\n", ["still runs a 5×5 convolution"]),
    (FACTORIZED_STANDALONE.replace("conv(c3[0], 1), conv(c3[1], 3), conv(c3[1], 3)",
                                   "conv(c3[0], 1), conv(c3[0], 3), conv(c3[1], 3)"),
     ["lacks the 3×3 convolution from 32 to 32 channels", "runs a 3×3 convolution from 16 to 16 channels"]),
    (FACTORIZED_STANDALONE.replace("conv(c3[0], 1), conv(c3[1], 3), conv(c3[1], 3)", "conv(c3[0], 1), conv(c3[1], 3)"),
     ["lacks the 3×3 convolution from 32 to 32 channels"]),
    # the right convolutions, but branch 3's output is not rectified
    (FACTORIZED_STANDALONE.replace("conv(c3[1], 3), conv(c3[1], 3))", "conv(c3[1], 3), nn.LazyConv2d(c3[1], 3, padding=1))"),
     ["returns negative values", "in branch 3's part", "ends with a ReLU"]),
], ids=["book-block", "narrow-middle", "single-3x3", "branch-3-not-rectified"])
def test_factorized_wrong(runner, source, words):
    assert_wrong(runner.grade(source, "8.4/1.2")[0], words)


# -- 8.4/1.3 ----------------------------------------------------------------------------------------------
RIGHT_SMOOTHING = [
    "def label_smoothing_loss(logits, y, eps):\n    return F.cross_entropy(logits, y, label_smoothing=eps)",
    """
def label_smoothing_loss(logits, y, eps):   # (1 - eps) · cross-entropy + eps · mean over classes of -log p
    log_p = logits.log_softmax(dim=-1)
    nll = -log_p.gather(1, y.unsqueeze(1)).squeeze(1)
    return ((1 - eps) * nll - eps * log_p.mean(dim=-1)).mean()
""",
]


@pytest.mark.parametrize("source", RIGHT_SMOOTHING, ids=["builtin", "gather"])
def test_label_smoothing_right(runner, source):
    assert_right(runner.grade(source, "8.4/1.3"))


SMOOTHED = """
def label_smoothing_loss(logits, y, eps):
    k = logits.shape[1]
    target = torch.full_like(logits, {off}).scatter(1, y[:, None], {on})
    losses = -(target * F.log_softmax(logits, 1)).sum(1)
    return losses.{reduce}()
"""


@pytest.mark.parametrize("source, words", [
    (SMOOTHED.format(off="eps / (k - 1)", on="1 - eps", reduce="mean"), ["K - 1 other classes"]),
    (SMOOTHED.format(off="eps / k", on="1 - eps + eps / k", reduce="sum"), ["sum over the batch"]),
    (SMOOTHED.format(off="0.0", on="1.0", reduce="mean"), ["plain cross-entropy", "eps is ignored"]),
    (SMOOTHED.format(off="eps / k", on="1 - eps + eps / k", reduce="squeeze"), ["one loss per example", "mean"]),
], ids=["k-minus-1", "sum", "eps-ignored", "per-example"])
def test_label_smoothing_wrong(runner, source, words):
    assert_wrong(runner.grade(source, "8.4/1.3")[0], words)


# -- 8.4/1.4 ----------------------------------------------------------------------------------------------
RESIDUAL_SUBCLASS = BOOK + """
class ResidualInception(Inception):   # ReLU after the sum, as ResNet does
    def __init__(self, c1, c2, c3, c4, use_1x1conv=False):
        super().__init__(c1, c2, c3, c4)
        self.shortcut = nn.LazyConv2d(c1 + c2[1] + c3[1] + c4, 1) if use_1x1conv else nn.Identity()

    def forward(self, x):
        return F.relu(super().forward(x) + self.shortcut(x))
"""

RESIDUAL_COMPOSED = BOOK + """
class ResidualInception(nn.Module):   # wraps the book's block
    def __init__(self, c1, c2, c3, c4, use_1x1conv=False):
        super().__init__()
        self.inception = Inception(c1, c2, c3, c4)
        self.use_1x1conv = use_1x1conv
        if use_1x1conv:
            self.conv = nn.LazyConv2d(c1 + c2[1] + c3[1] + c4, kernel_size=1)

    def forward(self, X):
        Y = self.inception(X)
        if self.use_1x1conv:
            X = self.conv(X)
        Y += X
        return Y
"""


@pytest.mark.parametrize("source", [RESIDUAL_SUBCLASS, RESIDUAL_COMPOSED], ids=["subclass-relu", "composed"])
def test_residual_right(runner, source):
    assert_right(runner.grade(source, "8.4/1.4"))


@pytest.mark.parametrize("source, check_id, words", [
    (RESIDUAL_COMPOSED.replace("Y += X", "pass"), "8.4/1.4", ["returns zeros", "no shortcut"]),
    (RESIDUAL_COMPOSED.replace("Y += X", "Y = torch.cat((Y, X), dim=1)"), "8.4/1.4:shapes",
     ["returns shape [1, 80, 6, 6]", "expected [1, 40, 6, 6]"]),
    (RESIDUAL_COMPOSED.replace("if use_1x1conv:", "if True:").replace("if self.use_1x1conv:", "if True:"),
     "8.4/1.4", ["returns zeros", "must be the identity"]),
    (RESIDUAL_COMPOSED.replace("Y = self.inception(X)", "Y = 0 * self.inception(X)"), "8.4/1.4",
     ["returns its input unchanged", "branches"]),
    (RESIDUAL_COMPOSED.replace("if use_1x1conv:", "if False:").replace("if self.use_1x1conv:", "if False:"),
     "8.4/1.4:shapes", ["use_1x1conv=True", "size of tensor a (40) must match"]),
], ids=["no-shortcut", "concatenated", "always-projected", "branches-dropped", "no-projection"])
def test_residual_wrong(runner, source, check_id, words):
    assert_wrong(by_id(runner.grade(source, "8.4/1.4", only={check_id}))[check_id], words)


# -- 8.4/2 ----------------------------------------------------------------------------------------------
def test_min_size_right(runner):
    assert_right(runner.grade("googlenet_min_size = 1", "8.4/2"))
    measured = BOOK + """
def _runs(side):
    try:
        with torch.device("meta"):
            GoogleNet()(torch.zeros(1, 1, side, side))
        return True
    except RuntimeError:
        return False
googlenet_min_size = next(s for s in range(1, 300) if _runs(s))
"""
    assert_right(runner.grade(measured, "8.4/2"))


@pytest.mark.parametrize("value, words", [
    ("96", ["is 96", "also runs on smaller images"]), ("32", ["is 32", "from 1 up"]),
    ("0", ["positive whole number"]), ("'one'", ["should be a number"]),
], ids=["training-size", "power-of-two", "zero", "text"])
def test_min_size_wrong(runner, value, words):
    assert_wrong(runner.grade(f"googlenet_min_size = {value}", "8.4/2")[0], words)


# -- 8.4/3 ----------------------------------------------------------------------------------------------
NATIVE_SUBCLASS = BOOK + """
class GoogLeNet28(GoogleNet):   # 3×3 stem, no downsampling before the body
    def b1(self):
        return nn.Sequential(nn.LazyConv2d(64, kernel_size=3, padding=1), nn.ReLU())
"""

NATIVE_POOLED_STEM = BOOK + """
class GoogLeNet28(GoogleNet):   # stem pools once, b2 keeps its size: the body starts at 14×14 as well
    def b1(self):
        return nn.Sequential(nn.LazyConv2d(64, 5, padding=2), nn.ReLU(), nn.MaxPool2d(3, 2, 1))

    def b2(self):
        return nn.Sequential(nn.LazyConv2d(64, 1), nn.ReLU(), nn.LazyConv2d(192, 3, padding=1), nn.ReLU())
"""


@pytest.mark.parametrize("source", [NATIVE_SUBCLASS, NATIVE_POOLED_STEM], ids=["3x3-stem", "pooled-stem"])
def test_native_right(runner, source):
    assert_right([r for r in runner.grade(source, "8.4/3") if r.status != "manual"])


@pytest.mark.parametrize("source, check_id, words", [
    (BOOK + "\nGoogLeNet28 = GoogleNet\n", "8.4/3:resolution", ["1×1 maps", "as the book's network does at 28×28"]),
    (NATIVE_SUBCLASS + """
@d2l.add_to_class(GoogLeNet28)
def b2(self):
    return nn.Sequential(nn.LazyConv2d(64, 1), nn.ReLU(), nn.LazyConv2d(192, 3, padding=1), nn.ReLU())
""", "8.4/3:cost", ["FLOPs per 28×28 image", "keep some downsampling"]),
    ("""
class GoogLeNet28(d2l.Classifier):   # a LeNet is not a GoogLeNet
    def __init__(self, lr=0.1, num_classes=10):
        super().__init__()
        self.net = nn.Sequential(nn.LazyConv2d(16, 3, padding=1), nn.ReLU(), nn.LazyConv2d(16, 3, padding=1),
                                 nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.LazyLinear(num_classes))
""", "8.4/3:cost", ["parameters, fewer than a quarter", "keep the Inception body"]),
    (NATIVE_SUBCLASS.replace("class GoogLeNet28(GoogleNet):",
                             "class GoogLeNet28(GoogleNet):\n    def __init__(self, num_classes=10):\n"
                             "        super().__init__(num_classes=10)\n"), "8.4/3", ["GoogLeNet28(num_classes=3)", "[1, 10]"]),
    (NATIVE_SUBCLASS.replace("padding=1), nn.ReLU())", "padding=1), nn.Identity())"), "8.4/3:cost",
     ["(Conv2d) reaches", "no activation"]),
], ids=["book-network", "no-downsampling", "lenet", "ignores-num_classes", "stem-without-activation"])
def test_native_wrong(runner, source, check_id, words):
    assert_wrong(by_id(runner.grade(source, "8.4/3", only={check_id}))[check_id], words)


# -- 8.4/4 ----------------------------------------------------------------------------------------------
def test_parameter_counts_right(runner):
    assert_right(runner.grade(
        'param_counts_all = {"alexnet": 46.8e6, "VGG-11": 128_806_154, "NiN": 1.99e6, "GoogleNet": 5_977_530}',
        "8.4/4"))


@pytest.mark.parametrize("change, words", [
    ({"VGG": 134_300_362}, ["VGG-16's count"]),
    ({"AlexNet": 50_844_008}, ["3-channel images and 1000 classes"]),
    ({"GoogLeNet": 5.98e9}, ["3 orders of magnitude above"]),
    ({"NiN": None}, ["no count for NiN"]),
], ids=["vgg16", "alexnet-imagenet", "googlenet-off-by-1000", "missing-key"])
def test_parameter_counts_wrong(runner, change, words):
    counts = {"AlexNet": 46_764_746, "VGG": 128_806_154, "NiN": 1_992_166, "GoogLeNet": 5_977_530}
    counts.update(change)
    counts = {k: v for k, v in counts.items() if v is not None}
    assert_wrong(runner.grade(f"param_counts_all = {counts!r}", "8.4/4")[0], words)
