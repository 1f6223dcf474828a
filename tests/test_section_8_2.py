"""8.2 VGG: the reference earns full marks; wrong answers, the seed's VGG code as typed among them, lose
points and say why."""
import pytest

from d2lgrade.load import load_submission
from d2lgrade.core.sections import find_section
from d2lgrade.testing import assert_reference_earns_full_marks, assert_right, assert_wrong
from reference import section_8_2 as ref

SECTION = find_section("8.2")


def by_id(results):
    return {r.id: r for r in results}


def test_reference_earns_full_marks():
    report = assert_reference_earns_full_marks(SECTION, {"8.2/1.3", "8.2/2", "8.2/4"})
    assert "128,806,154" in next(c.message for c in report.checks if c.id == "8.2/1.1")


def test_reference_reproduces_the_catalogue_counts():
    """A cross-check of the reference against counts computed independently from the book's definitions."""
    assert ref.param_counts == {"alexnet": 46_764_746, "vgg11": 128_806_154}
    assert ref.parameter_count(ref.on_meta(lambda: ref.vgg(ref.VGG16_ARCH))) == 134_300_362
    assert ref.parameter_count(ref.on_meta(lambda: ref.vgg(ref.VGG19_ARCH))) == 139_610_058
    assert abs(ref.vgg_flop_split["conv"] / 2 - 7.43e9) < 0.01e9     # 7.43 G multiply-accumulates


def test_starter_is_not_attempted_everywhere(runner):
    cells = [c.source for c in load_submission(SECTION.starter_path).code_cells]
    results = runner.grade("\n\n".join(cells), "8.2")
    assert {r.status for r in results} == {"not_attempted"}, [(r.id, r.status, r.message) for r in results]


# -- the book's code, and the seed's copy of it -----------------------------------------------------------
SEED_VGG = """
def vgg_block(num_convs, out_channels):
    layers = []
    for _ in range(num_convs):
        layers.append(nn.Conv2d(out_channels, kernel_size=3, padding=1))
        layers.append(nn.ReLU())
    layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
    return nn.Sequential(*layers)

class VGG(d2l.Classifier):
    def __init__(self, arch, lr=0.1, num_classes=10):
        super().__init__()
        self.save_hyperparameters()
        conv_blks = []
        for (num_convs, out_channels) in arch:
            conv_blks.append(vgg_block(num_convs, out_channels))
        self.net = nn.Sequential(
            *conv_blks, nn.Flatten(),
            nn.Linear(4096), nn.ReLU(), nn.Dropout(0.5),
            nn.Linear(4096), nn.ReLU(), nn.Dropout(0.5),
            nn.Linear(num_classes))
        self.net.apply(d2l.init_cnn)
"""


def test_seed_vgg_as_typed_names_the_conv_line(runner):
    checks = by_id(runner.grade(SEED_VGG, "8.2/2"))
    for check in (checks["8.2/2"], checks["8.2/2:block"]):
        assert_wrong(check, ["`layers.append(nn.Conv2d(out_channels, kernel_size=3, padding=1))`", "in vgg_block",
                             "in_channels", "nn.LazyConv2d(out_channels"])
    assert "nn.Conv2d(out_channels" in checks["8.2/2"].detail and "[execution" in checks["8.2/2"].detail
    assert "in describe" not in checks["8.2/2"].detail     # the grader's own frames are cut


def test_seed_vgg_with_lazy_convolutions_names_the_linear_line(runner):
    checks = by_id(runner.grade(SEED_VGG.replace("nn.Conv2d(", "nn.LazyConv2d("), "8.2/2"))
    assert_wrong(checks["8.2/2"], ["`nn.Linear(4096), nn.ReLU(), nn.Dropout(0.5),`", "in __init__", "in_features",
                                   "nn.LazyLinear(4096)"])
    assert checks["8.2/2:block"].status == "passed"


EXPLICIT_VGG = """
class VGG(nn.Module):   # plain layers with their input sizes worked out, no d2l
    def __init__(self, arch, num_classes=10, in_channels=1):
        super().__init__()
        blocks = []
        for num_convs, out_channels in arch:
            blocks.append(vgg_block(num_convs, out_channels, in_channels))
            in_channels = out_channels
        self.net = nn.Sequential(*blocks, nn.Flatten(),
                                 nn.Linear(in_channels * 7 * 7, 4096), nn.ReLU(), nn.Dropout(0.5),
                                 nn.Linear(4096, 4096), nn.ReLU(), nn.Dropout(0.5),
                                 nn.Linear(4096, num_classes))

    def forward(self, X):
        return self.net(X)

def vgg_block(num_convs, out_channels, in_channels=None):
    layers = []
    for i in range(num_convs):
        conv = nn.LazyConv2d(out_channels, 3, padding=1) if in_channels is None else \\
            nn.Conv2d(in_channels if i == 0 else out_channels, out_channels, 3, padding=1)
        layers += [conv, nn.ReLU()]
    return nn.Sequential(*layers, nn.MaxPool2d(2))
"""
COMPREHENSION_VGG = """
def vgg_block(num_convs, out_channels):   # one list comprehension
    return nn.Sequential(*[m for _ in range(num_convs) for m in (nn.LazyConv2d(out_channels, 3, 1, 1), nn.ReLU())],
                         nn.MaxPool2d(2, 2))

class VGG(d2l.Classifier):
    def __init__(self, arch, lr=0.1, num_classes=10):
        super().__init__()
        self.save_hyperparameters()
        head = [nn.Flatten()]
        for width in (4096, 4096):
            head += [nn.LazyLinear(width), nn.ReLU(), nn.Dropout(0.5)]
        self.net = nn.Sequential(*(vgg_block(*a) for a in arch), *head, nn.LazyLinear(num_classes))
"""


@pytest.mark.parametrize("source", [EXPLICIT_VGG, COMPREHENSION_VGG], ids=["explicit-sizes", "comprehension"])
def test_book_vgg_right(runner, source):
    assert_right(runner.grade(source, "8.2/2"))


@pytest.mark.parametrize("source, failing, words", [
    (COMPREHENSION_VGG.replace("nn.MaxPool2d(2, 2)", "nn.MaxPool2d(3, 2)"), "8.2/2",
     ["layer_summary shapes", "64×111×111", "64×112×112"]),
    (COMPREHENSION_VGG.replace("(nn.LazyConv2d(out_channels, 3, 1, 1), nn.ReLU())", "(nn.LazyConv2d(out_channels, 3, 1, 1),)"),
     "8.2/2:block", ["runs Conv2d, Conv2d, Conv2d, MaxPool2d", "(Conv2d, ReLU) pairs"]),
    (COMPREHENSION_VGG.replace("for width in (4096, 4096)", "for width in (4096,)"), "8.2/2",
     ["25088 → 4096 → 10;", "25088 → 4096 → 4096 → 10"]),
    (COMPREHENSION_VGG.replace("self.net = ", "self.layers = ").replace("head = [", "self.forward = lambda X: self.layers(X)\n        head = ["),
     "8.2/2", ["`self.net`", "layer_summary"]),
], ids=["pool-window-3", "no-relu", "one-hidden-dense-layer", "no-net-attribute"])
def test_book_vgg_wrong(runner, source, failing, words):
    assert_wrong(by_id(runner.grade(source, "8.2/2", only={failing}))[failing], words)


# -- 8.2/1 ------------------------------------------------------------------------------------------------
COUNTING = """
def _count(model):
    model(torch.zeros(1, 1, 224, 224))
    return sum(p.numel() for p in model.parameters())
"""
RIGHT_COUNTS = [
    COMPREHENSION_VGG + COUNTING + """
class AlexNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(
            nn.LazyConv2d(96, 11, 4, 1), nn.ReLU(), nn.MaxPool2d(3, 2), nn.LazyConv2d(256, 5, padding=2), nn.ReLU(),
            nn.MaxPool2d(3, 2), nn.LazyConv2d(384, 3, padding=1), nn.ReLU(), nn.LazyConv2d(384, 3, padding=1),
            nn.ReLU(), nn.LazyConv2d(256, 3, padding=1), nn.ReLU(), nn.MaxPool2d(3, 2), nn.Flatten(),
            nn.LazyLinear(4096), nn.ReLU(), nn.LazyLinear(4096), nn.ReLU(), nn.LazyLinear(10))
    def forward(self, X):
        return self.net(X)
param_counts = {"alexnet": _count(AlexNet()), "vgg11": _count(VGG(((1, 64), (1, 128), (2, 256), (2, 512), (2, 512))))}
""",
    # by hand, in millions, as floats (within 1 %)
    'param_counts = {"alexnet": torch.tensor(46.8e6), "vgg11": 128.8e6}\n',
]
CONV, FC = ref.vgg_flop_split["conv"], ref.vgg_flop_split["fc"]


@pytest.mark.parametrize("source", RIGHT_COUNTS, ids=["counted", "rounded-floats"])
def test_param_counts_right(runner, source):
    assert_right(runner.grade(source, "8.2/1.1"))


@pytest.mark.parametrize("source, words", [
    ('param_counts = {"alexnet": 50_844_008, "vgg11": 128_806_154}', ["ImageNet"]),
    ('param_counts = {"alexnet": 128_806_154, "vgg11": 46_764_746}', ["swapped"]),
    ('param_counts = {"alexnet": 46_764_746, "vgg11": 9_219_328}', ["only the convolutional layers'"]),
    ('param_counts = {"alexnet": 46_764_746, "vgg11": 12_880_615}', ["12.9 M", "1 order of magnitude below"]),
    ('param_counts = [46_764_746, 128_806_154]', ['"alexnet" and "vgg11"']),
], ids=["imagenet-alexnet", "swapped", "convolutions-only", "a-digit-short", "a-list"])
def test_param_counts_wrong(runner, source, words):
    assert_wrong(runner.grade(source, "8.2/1.1")[0], words)


@pytest.mark.parametrize("source", [
    f'vgg_flop_split = {{"conv": {CONV // 2}, "fc": {FC // 2}, "unit": "MACs"}}',
    COMPREHENSION_VGG + """
from torch.utils.flop_counter import FlopCounterMode
_model = VGG(((1, 64), (1, 128), (2, 256), (2, 512), (2, 512)))
_model(torch.zeros(1, 1, 224, 224))
_counter = FlopCounterMode(display=False)
with _counter:
    _model(torch.zeros(1, 1, 224, 224))
_ops = _counter.get_flop_counts()["Global"]
vgg_flop_split = {"conv": sum(v for k, v in _ops.items() if "conv" in str(k)),
                  "fc": sum(v for k, v in _ops.items() if "conv" not in str(k)), "unit": "flops"}
""",
], ids=["macs-by-hand", "flop-counter"])
def test_vgg_flops_right(runner, source):
    assert_right(runner.grade(source, "8.2/1.2"))


@pytest.mark.parametrize("source, words", [
    (f'vgg_flop_split = {{"conv": {CONV // 2}, "fc": {FC // 2}, "unit": "FLOPs"}}', ['MACs labelled "FLOPs"']),
    (f'vgg_flop_split = {{"conv": {CONV * 3 // 4}, "fc": {FC}}}', ['"unit": "FLOPs" or "MACs"']),   # no unit fits
    (f'vgg_flop_split = {{"conv": {FC}, "fc": {CONV}, "unit": "FLOPs"}}', ["swapped"]),
], ids=["macs-called-flops", "no-unit", "swapped"])
def test_vgg_flops_wrong(runner, source, words):
    assert_wrong(runner.grade(source, "8.2/1.2")[0], words)


# -- 8.2/3 ------------------------------------------------------------------------------------------------
RIGHT_DEEP = [
    COMPREHENSION_VGG + """
VGG16_ARCH = ((2, 64), (2, 128), (3, 256), (3, 512), (3, 512))
VGG19_ARCH = ((2, 64), (2, 128), (4, 256), (4, 512), (4, 512))
def vgg(arch, num_classes=10):
    return VGG(arch, num_classes=num_classes)
""",
    EXPLICIT_VGG + """
VGG16_ARCH = [[n, c] for n, c in zip([2, 2, 3, 3, 3], [64, 128, 256, 512, 512])]
VGG19_ARCH = [(n + (n == 3), c) for n, c in VGG16_ARCH]
vgg = lambda arch, num_classes=10: VGG(arch, num_classes)
""",
]


@pytest.mark.parametrize("source", RIGHT_DEEP, ids=["book-vgg", "lists-and-lambda"])
def test_deep_vgg_right(runner, source):
    assert_right(runner.grade(source, "8.2/3"))


@pytest.mark.parametrize("source, failing, words", [
    (RIGHT_DEEP[0].replace("((2, 64), (2, 128), (3, 256), (3, 512), (3, 512))", "((2, 64), (3, 128), (3, 256), (3, 512), (3, 512))"),
     "8.2/3:arch", ["`VGG16_ARCH` has 14 convolutions", "block 2 is (3, 128)"]),
    (RIGHT_DEEP[0].replace("VGG(arch, num_classes=num_classes)", "VGG(arch)"), "8.2/3",
     ["num_classes=5", "returns shape [1, 10]"]),
    (RIGHT_DEEP[0].replace("VGG(arch, num_classes=num_classes)", "VGG(arch[:4], num_classes=num_classes)"), "8.2/3",
     ["has 10 convolutions and 3 dense layers", "VGG-16 has 13 convolutions"]),
], ids=["vgg16-arch-typo", "ignores-num_classes", "drops-a-block"])
def test_deep_vgg_wrong(runner, source, failing, words):
    assert_wrong(by_id(runner.grade(source, "8.2/3", only={failing}))[failing], words)


# -- 8.2/4 ------------------------------------------------------------------------------------------------
STRIDED_SMALL = """
class VGGSmall(nn.Module):   # strided convolutions downsample, after two 3x3 convolutions each
    def __init__(self, input_size):
        super().__init__()
        def stage(c):
            return [nn.LazyConv2d(c, 3, padding=1), nn.ReLU(), nn.LazyConv2d(c, 3, padding=1), nn.ReLU(),
                    nn.LazyConv2d(c, 3, stride=2, padding=1), nn.ReLU()]
        self.body = nn.Sequential(*stage(16), *stage(32), *stage(32))
        self.head = nn.Sequential(nn.Flatten(), nn.LazyLinear(10))
    def forward(self, X):
        return self.head(self.body(X))
"""
ONE_CONV_SMALL = """
class VGGSmall(d2l.Classifier):   # the book's VGG shrunk: one convolution before most poolings
    def __init__(self, input_size, num_classes=10):
        super().__init__()
        blocks = [vgg_block(1, 16), vgg_block(1, 32), vgg_block(2, 64)]
        self.net = nn.Sequential(*blocks, nn.Flatten(), nn.LazyLinear(num_classes))
""" + COMPREHENSION_VGG


@pytest.mark.parametrize("source", [COMPREHENSION_VGG + """
class VGGSmall(VGG):   # the book's VGG class with a 56/84-sized arch
    def __init__(self, input_size):
        super().__init__(((2, 16), (2, 32), (2, 64)) if input_size == 56 else ((2, 16), (2, 32), (2, 64), (2, 64)))
""", STRIDED_SMALL], ids=["book-vgg-subclass", "strided-convolutions"])
def test_small_vgg_right(runner, source):
    assert_right(runner.grade(source, "8.2/4"))


@pytest.mark.parametrize("source, failing, words", [
    (ONE_CONV_SMALL, "8.2/4", ["[1, 1, 2]", "two or more convolutions"]),
    (RIGHT_DEEP[0] + """
class VGGSmall(nn.Module):   # resizes to 224 and runs VGG-11 with thinner blocks
    def __init__(self, input_size):
        super().__init__()
        self.vgg = VGG(((2, 64), (2, 128), (2, 256)))
    def forward(self, X):
        return self.vgg(F.interpolate(X, size=224))
""", "8.2/4", ["more than 10%", "resize its input to 224"]),
    (STRIDED_SMALL.replace("nn.LazyLinear(10)", "nn.Linear(32 * 7 * 7, 10)"), "8.2/4:shape",
     ["`VGGSmall(84)` could not be built", "mat1 and mat2"]),
], ids=["one-conv-per-pool", "resizes-to-224", "fixed-dense-size"])
def test_small_vgg_wrong(runner, source, failing, words):
    assert_wrong(by_id(runner.grade(source, "8.2/4", only={failing}))[failing], words)
