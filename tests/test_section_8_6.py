"""8.6 ResNet and ResNeXt: the reference earns full marks; the seed's code and other wrong blocks lose points, and say why."""
import pytest
import torch

from d2lgrade.load import load_submission
from d2lgrade.core.sections import find_section
from d2lgrade.testing import assert_reference_earns_full_marks, assert_right, assert_wrong
from d2lgrade.values.expected import reference as reference_of
from graders.architecture import describe_reference
from reference import section_8_6 as ref

SECTION = find_section("8.6")


def by_id(results):
    return {r.id: r for r in results}


def grade_one(runner, source, check_id):
    """The one check `check_id` (runner.grade with an exercise id runs all of that exercise's checks)."""
    runner.load(source)
    return runner.grade_loaded([check_id])[check_id]


# -- the reference, cross-checked against the catalogue's figures ----------------------------------------
def test_reference_earns_full_marks():
    assert_reference_earns_full_marks(SECTION, {"8.6/1", "8.6/5"})


def test_reference_matches_the_book_and_the_paper(capsys):
    X = torch.randn(4, 3, 6, 6)
    assert ref.Residual(3)(X).shape == (4, 3, 6, 6)
    assert ref.Residual(6, use_1x1conv=True, strides=2)(X).shape == (4, 6, 3, 3)
    assert ref.ResNeXtBlock(32, 16, 1)(torch.randn(4, 32, 96, 96)).shape == (4, 32, 96, 96)
    ref.ResNet18().layer_summary((2, 1, 96, 96))
    shapes = [line.split("torch.Size(")[1] for line in capsys.readouterr().out.strip().splitlines()]
    assert shapes == ["[2, 64, 24, 24])", "[2, 64, 24, 24])", "[2, 128, 12, 12])", "[2, 256, 6, 6])",
                      "[2, 512, 3, 3])", "[2, 10])"]
    # Parameter counts of the catalogue (1 input channel, 10 classes): the graders compute them, never type them.
    counts = [describe_reference(reference_of("8.6"), "resnet", arch, block=kind, input_shape=(1, 1, 224, 224))["params"]
              for arch, kind in ((ref.RESNET18_ARCH, "basic"), (ref.RESNET34_ARCH, "basic"),
                                 (ref.RESNET50_ARCH, "bottleneck"))]
    assert counts == [11_178_378, 21_290_250, 23_548_810]


def test_starter_is_not_attempted_everywhere(runner):
    cells = [c.source for c in load_submission(SECTION.starter_path).code_cells]
    results = runner.grade("\n\n".join(cells), "8.6")
    assert {r.status for r in results} == {"not_attempted"}, [(r.id, r.status, r.message) for r in results]


# -- the seed: the book's ResNet as a student typed it -----------------------------------------------------
SEED_CELLS = [
    '''
class Residual(nn.Module):
    def __init__(self, num_channels, use_1x1conv=False, strides=1):
        super().__init__()
        self.conv1 = nn.LazyConv2d(num_channels, kernel_size=3, padding=1,
                                    stride=strides)
        self.conv2 = nn.LazyConv2d(num_channels, kernel_size=3, padding=1)
        if use_1x1conv:
            self.conv3 = nn.LazyConv2d(num_channels, kernel_size=1,
                                        stride=strides)
        else:
            self.conv3 = None
        self.bn1 = nn.LazyBatchNorm2d()
        self.bn2 = nn.LazyBatchNorm2d()

    def forward(self, X):
        Y = F.relu(self.bn1(self.conv1(X)))
        Y = self.bn2(self.conv2(Y))
        if self.conv3:
            X = self.conv3(X)
        Y += X
        return F.relu(Y)
''',
    "blk = Residual(3)\nX = torch.randn(4, 3, 6, 6)\nblk(X).shape",
    "blk = Residual(6, use_1x1conv=True, strides=2)\nblk(X).shape",
    '''
class ResNet(d2l.Classifier):
    def b1(self):
        return nn.Sequential(
            nn.LazyConv2d(64, kernel_size=7, stride=2, padding=3),
            nn.LazyBatchNorm2d(), nn.ReLU(),
            nn.MaxPool2d(kernel_size=3, stride=2, padding=1))

@d2l.add_to_class(ResNet)
def block(self, num_residuals, num_channels, first_block=False):
    blk = []
    for i in range(num_residuals):
        if i == 0 and not first_block:
            blk.append(Residual(num_channels, use_1x1conv=True, strides=2))
        else:
            blk.append(Residual(num_channels))
    return nn.Sequential(*blk)
''',
    '''
@d2l.add_to_class(ResNet)
def __init__(self, arch, lr=0.1, num_classes=10):
    super(ResNet, self).__init__()
    self.save_hyperparameters()
    self.net = nn.Sequential(self.b1())
    for i, b in enumerate(arch):
        self.net.add_module(f'b{i+2}', self.block(*b, first_block=(i==0)))
    self.net.add_module('last', nn.Sequential(
        nn.AdaptiveAvgPool2d((1, 1)), nn.Flatten(),
        nn.Linear(num_classes)))
    self.net.apply(d2l.init_cnn)
''',
    '''
class ResNet18(ResNet):
    def __init__(self, lr=0.1, num_classes=10):
        super().__init__(((2, 64), (2, 128), (2, 256), (2, 512)),
                          lr, num_classes)
''',
    "ResNet18().layer_summary((1, 1, 96, 96))",
]


def test_the_seeds_resnet_names_the_line_and_what_is_missing(runner):
    """The seed's cells as typed (its training cell aside): the blocks are right, the network cannot be built."""
    runner.clear()
    runs = [runner.runtime.run_source(cell) for cell in SEED_CELLS]
    assert [r.status for r in runs] == ["ok"] * 6 + ["error"], [(r.status, r.error) for r in runs]
    checks = runner.grade_loaded(("8.6/2:residual", "8.6/2:book"))
    assert_right(checks["8.6/2:residual"])
    assert_wrong(checks["8.6/2:book"], ["`ResNet18()`", "`nn.Linear(num_classes)))`", "out_features",
                                        "nn.LazyLinear(num_classes)"])


# -- 8.6/2 --------------------------------------------------------------------------------------------------
TORCHVISION_RESNET = """
import torchvision
from torchvision.models import resnet as tv

RESNET18_ARCH = [[2, 64], [2, 128], [2, 256], [2, 512]]
RESNET34_ARCH = ([3, 64], [4, 128], [6, 256], [3, 512])

def resnet(arch, block="basic", num_classes=10):   # torchvision's networks for 1-channel images
    kind = tv.BasicBlock if block == "basic" else tv.Bottleneck
    net = tv.ResNet(kind, [n for n, _ in arch], num_classes=num_classes)
    net.conv1 = nn.Conv2d(1, 64, kernel_size=7, stride=2, padding=3, bias=False)
    return net
"""

HAND_RESNET = """
def _stage(c_in, c_out, n, first):
    layers = []
    for i in range(n):
        stride = 2 if i == 0 and not first else 1
        layers.append(Block(c_in if i == 0 else c_out, c_out, stride))
    return layers

class Block(nn.Module):   # explicit in_channels, biases off, projection without batch norm
    def __init__(self, c_in, c_out, stride):
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(),
                                  nn.Conv2d(c_out, c_out, 3, 1, 1, bias=False), nn.BatchNorm2d(c_out))
        self.skip = nn.Conv2d(c_in, c_out, 1, stride, bias=False) if stride != 1 or c_in != c_out else nn.Identity()
    def forward(self, X):
        return torch.relu(self.body(X) + self.skip(X))

class Bottleneck(nn.Module):
    def __init__(self, in_channels, mid_channels, stride=1):
        super().__init__()
        out = 4 * mid_channels
        self.a = nn.Sequential(nn.Conv2d(in_channels, mid_channels, 1, bias=False), nn.BatchNorm2d(mid_channels), nn.ReLU(),
                               nn.Conv2d(mid_channels, mid_channels, 3, stride, 1, bias=False), nn.BatchNorm2d(mid_channels), nn.ReLU(),
                               nn.Conv2d(mid_channels, out, 1, bias=False), nn.BatchNorm2d(out))
        self.skip = nn.Identity() if stride == 1 and in_channels == out else \\
            nn.Sequential(nn.Conv2d(in_channels, out, 1, stride, bias=False), nn.BatchNorm2d(out))
    def forward(self, X):
        return torch.relu(self.a(X) + self.skip(X))

RESNET18_ARCH = ((2, 64), (2, 128), (2, 256), (2, 512))
RESNET34_ARCH = ((3, 64), (4, 128), (6, 256), (3, 512))

def resnet(arch, block="basic", num_classes=10):
    layers = [nn.Conv2d(1, 64, 7, 2, 3, bias=False), nn.BatchNorm2d(64), nn.ReLU(), nn.MaxPool2d(3, 2, 1)]
    c_in = 64
    for i, (n, c) in enumerate(arch):
        if block == "basic":
            layers += _stage(c_in, c, n, i == 0)
            c_in = c
        else:
            for j in range(n):
                layers.append(Bottleneck(c_in, c, 2 if j == 0 and i > 0 else 1))
                c_in = 4 * c
    return nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(c_in, num_classes))
"""


@pytest.mark.parametrize("source", [TORCHVISION_RESNET, HAND_RESNET], ids=["torchvision", "hand-written"])
def test_resnet_table_right(runner, source):
    results = runner.grade(source, "8.6/2", only=("8.6/2:table", "8.6/2:resnet18", "8.6/2:resnet34", "8.6/2:resnet50"))
    assert len(results) == 4
    assert_right(results)


RIGHT_BOOK = """
Residual = d2l.Residual      # the d2l package's own block

class ResNet18(nn.Module):   # the same stages, written out without add_to_class
    def __init__(self, num_classes=10):
        super().__init__()
        stem = nn.Sequential(nn.Conv2d(1, 64, 7, 2, 3), nn.BatchNorm2d(64), nn.ReLU(), nn.MaxPool2d(3, 2, 1))
        stages = [nn.Sequential(d2l.Residual(c, use_1x1conv=k > 0, strides=2 if k > 0 else 1), d2l.Residual(c))
                  for k, c in enumerate((64, 128, 256, 512))]
        head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.LazyLinear(num_classes))
        self.net = nn.Sequential(stem, *stages, head)
    def forward(self, X):
        return self.net(X)
"""


def test_book_code_written_otherwise_is_right(runner):
    results = runner.grade(RIGHT_BOOK, "8.6/2", only=("8.6/2:residual", "8.6/2:book"))
    assert len(results) == 2
    assert_right(results)


RESIDUAL = """
class Residual(nn.Module):
    def __init__(self, num_channels, use_1x1conv=False, strides=1):
        super().__init__()
        self.conv1 = nn.LazyConv2d(num_channels, 3, padding=1, stride=strides)
        self.conv2 = nn.LazyConv2d(num_channels, 3, padding=1)
        self.conv3 = nn.LazyConv2d(num_channels, 1, stride={proj_stride}) if use_1x1conv else None
        self.bn1, self.bn2 = nn.LazyBatchNorm2d(), nn.LazyBatchNorm2d()
    def forward(self, X):
        Y = self.bn2(self.conv2(F.relu(self.bn1(self.conv1(X)))))
        if self.conv3:
            X = self.conv3(X)
        return {ret}
"""


@pytest.mark.parametrize("source, words", [
    (RESIDUAL.format(proj_stride="strides", ret="F.relu(Y)"), ["should return ReLU(X)", "does the block add its input"]),
    (RESIDUAL.format(proj_stride="strides", ret="Y + X"), ["ReLU after the addition is missing"]),
    (RESIDUAL.format(proj_stride="1", ret="F.relu(Y + X)"), ["Residual(6, use_1x1conv=True, strides=2)", "raised RuntimeError"]),
], ids=["no-shortcut", "no-final-relu", "unstrided-projection"])
def test_residual_wrong(runner, source, words):
    assert_wrong(grade_one(runner, source, "8.6/2:residual"), words)


@pytest.mark.parametrize("change, check, words", [
    (("nn.MaxPool2d(3, 2, 1)", "nn.Identity()"), "8.6/2:book", ["64×48×48", "the book's gives 64×24×24"]),
    (("RESNET34_ARCH = ((3, 64), (4, 128), (6, 256), (3, 512))", "RESNET34_ARCH = RESNET18_ARCH"),
     "8.6/2:table", ["`RESNET34_ARCH`", "(3, 64), (4, 128)"]),
    (("layers += _stage(c_in, c, n, i == 0)", "layers += _stage(c_in, c, 2, i == 0)"), "8.6/2:resnet34",
     ["runs 16 3×3 convolutions, fewer than ResNet-34", "ResNet-34 has 32"]),
    (("nn.Linear(c_in, num_classes)", "nn.Linear(c_in, 10)"), "8.6/2:resnet18", ["num_classes=3", "num_classes outputs"]),
    (("layers.append(Bottleneck(c_in, c, 2 if j == 0 and i > 0 else 1))", "layers.append(Bottleneck(c_in, c, 2 if j == 0 else 1))"),
     "8.6/2:resnet50", ["FLOPs", "a stride sits in the wrong place"]),
], ids=["no-max-pool", "resnet34-row", "two-blocks-per-stage", "ignores-num_classes", "stride-in-first-stage"])
def test_resnet_wrong(runner, change, check, words):
    source = (HAND_RESNET + RIGHT_BOOK).replace(*change)
    assert source != HAND_RESNET + RIGHT_BOOK
    assert_wrong(grade_one(runner, source, check), words)


# -- 8.6/3 --------------------------------------------------------------------------------------------------
TORCHVISION_BOTTLENECK = """
from torchvision.models.resnet import Bottleneck as _TV

def Bottleneck(in_channels, mid_channels, stride=1):   # torchvision's block, with its downsample path
    down = None
    if stride != 1 or in_channels != 4 * mid_channels:
        down = nn.Sequential(nn.Conv2d(in_channels, 4 * mid_channels, 1, stride, bias=False),
                             nn.BatchNorm2d(4 * mid_channels))
    return _TV(in_channels, mid_channels, stride, down)
"""

LAZY_RESNEXT = """
class ResNeXtBlock(nn.Module):   # one Sequential branch; `groups` is the width of a group, as in the book
    def __init__(self, num_channels, groups, bot_mul, use_1x1conv=False, strides=1):
        super().__init__()
        b = int(round(num_channels * bot_mul))
        self.branch = nn.Sequential(
            nn.LazyConv2d(b, 1, bias=False), nn.LazyBatchNorm2d(), nn.ReLU(),
            nn.LazyConv2d(b, 3, stride=strides, padding=1, groups=b // groups, bias=False), nn.LazyBatchNorm2d(), nn.ReLU(),
            nn.LazyConv2d(num_channels, 1, bias=False), nn.LazyBatchNorm2d())
        self.skip = nn.Sequential(nn.LazyConv2d(num_channels, 1, stride=strides, bias=False), nn.LazyBatchNorm2d()) \\
            if use_1x1conv else nn.Identity()
    def forward(self, X):
        return F.relu(self.branch(X) + self.skip(X))
"""


@pytest.mark.parametrize("source", [TORCHVISION_BOTTLENECK + LAZY_RESNEXT, HAND_RESNET + "\nResNeXtBlock = d2l.ResNeXtBlock\n"],
                         ids=["torchvision-and-sequential-resnext", "hand-written-and-d2l"])
def test_bottleneck_and_resnext_right(runner, source):
    assert_right(runner.grade(source, "8.6/3"))


@pytest.mark.parametrize("change, check, words", [
    (("if stride == 1 and in_channels == out", "if True"), "8.6/3:shapes", ["raised RuntimeError"]),
    (("nn.Identity() if stride == 1 and in_channels == out", "nn.Conv2d(in_channels, out, 1) if True"), "8.6/3",
     ["1×1 convolutions", "no projection", "identity"]),
    (("nn.Conv2d(mid_channels, mid_channels, 3, stride, 1, bias=False), nn.BatchNorm2d(mid_channels)",
      "nn.Conv2d(mid_channels, out, 3, stride, 1, bias=False), nn.BatchNorm2d(out), nn.Conv2d(out, mid_channels, 1)"),
     "8.6/3", ["3×3 convolution(s) with [", "reduced width"]),
    (("return torch.relu(self.a(X) + self.skip(X))\n\nRESNET18", "return torch.relu(self.a(X) + 0 * self.skip(X))\n\nRESNET18"),
     "8.6/3:shortcut", ["should return ReLU(X)", "identity shortcut"]),
], ids=["no-projection", "always-projection", "wide-3x3", "shortcut-dropped"])
def test_bottleneck_wrong(runner, change, check, words):
    source = HAND_RESNET.replace(*change)
    assert source != HAND_RESNET
    assert_wrong(grade_one(runner, source, check), words)


@pytest.mark.parametrize("change, words", [
    (("groups=b // groups", "groups=groups"), ["groups=16", "NUMBER of groups", "groups of width 16 make 2 groups"]),
    (("groups=b // groups", "groups=1"), ["groups=1", "make 2 groups"]),
    (("if use_1x1conv else nn.Identity()", "if False else nn.Identity()"), ["raised RuntimeError"]),
], ids=["groups-as-count", "not-grouped", "no-projection"])
def test_resnext_wrong(runner, change, words):
    source = LAZY_RESNEXT.replace(*change)
    assert source != LAZY_RESNEXT
    assert_wrong(grade_one(runner, source, "8.6/3:resnext"), words)


# -- 8.6/4 --------------------------------------------------------------------------------------------------
PREACT_MODULES = """
class PreActResidual(nn.Module):   # modules in Sequentials, projection on the shortcut
    def __init__(self, channels, use_1x1conv=False, strides=1):
        super().__init__()
        self.branch = nn.Sequential(
            nn.LazyBatchNorm2d(), nn.ReLU(), nn.LazyConv2d(channels, 3, stride=strides, padding=1, bias=False),
            nn.LazyBatchNorm2d(), nn.ReLU(), nn.LazyConv2d(channels, 3, padding=1, bias=False))
        self.skip = nn.LazyConv2d(channels, 1, stride=strides, bias=False) if use_1x1conv else nn.Identity()
    def forward(self, X):
        return self.branch(X) + self.skip(X)
"""

PREACT_SHARED = """
class PreActResidual(nn.Module):   # the projection takes the pre-activated input, as in many implementations
    def __init__(self, channels, use_1x1conv=False, strides=1):
        super().__init__()
        self.bn1, self.bn2 = nn.LazyBatchNorm2d(), nn.LazyBatchNorm2d()
        self.conv1 = nn.LazyConv2d(channels, 3, stride=strides, padding=1)
        self.conv2 = nn.LazyConv2d(channels, 3, padding=1)
        self.proj = nn.LazyConv2d(channels, 1, stride=strides) if use_1x1conv else None
    def forward(self, X):
        A = F.relu(self.bn1(X))
        shortcut = self.proj(A) if self.proj is not None else X
        return self.conv2(F.relu(self.bn2(self.conv1(A)))) + shortcut
"""


@pytest.mark.parametrize("source", [PREACT_MODULES, PREACT_SHARED], ids=["sequential", "shared-activation"])
def test_preact_right(runner, source):
    assert_right(runner.grade(source, "8.6/4"))


@pytest.mark.parametrize("change, words", [
    (("return self.branch(X) + self.skip(X)", "return F.relu(self.branch(X) + self.skip(X))"), ["ReLU after the addition"]),
    (("nn.LazyBatchNorm2d(), nn.ReLU(), nn.LazyConv2d(channels, 3, stride=strides, padding=1, bias=False)",
      "nn.LazyConv2d(channels, 3, stride=strides, padding=1, bias=False), nn.LazyBatchNorm2d(), nn.ReLU()"),
     ["3×3 convolution 1 is preceded by nothing", "BN → ReLU → conv"]),
    (("return self.branch(X) + self.skip(X)", "return self.branch(X)"), ["should return X itself"]),
], ids=["relu-after-add", "post-activation-order", "no-shortcut"])
def test_preact_wrong(runner, change, words):
    source = PREACT_MODULES.replace(*change)
    assert source != PREACT_MODULES
    assert_wrong(grade_one(runner, source, "8.6/4"), words)


def test_a_network_failing_only_on_a_batch_of_one_passes_with_a_note(runner):
    """Batch norm after the pooling sees one value per channel for one image in training mode (what the
    book's layer_summary runs): the grader probes with two images in evaluation mode, and says so."""
    source = RIGHT_BOOK.replace("nn.Flatten(), nn.LazyLinear(num_classes)", "nn.Flatten(), nn.LazyBatchNorm1d(), nn.LazyLinear(num_classes)")
    assert source != RIGHT_BOOK
    result = grade_one(runner, source, "8.6/2:book")
    assert_right(result)
    assert "batch of ONE image in training mode" in result.message and "two images" in result.message
