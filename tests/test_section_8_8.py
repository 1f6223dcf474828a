"""8.8 AnyNet / RegNetX: the reference earns full marks; wrong networks and samplers lose points, and say why."""
import pytest

from d2lgrade.load import load_submission
from d2lgrade.core.sections import find_section
from d2lgrade.testing import assert_reference_earns_full_marks, assert_right, assert_wrong
from graders.probes import architecture
from reference import section_8_8 as ref

SECTION = find_section("8.8")


def by_id(results):
    return {r.id: r for r in results}


def one(runner, source, check_id):
    return by_id(runner.grade(source, check_id, only={check_id}))[check_id]


# -- the whole pipeline ------------------------------------------------------------------------------------
def test_reference_earns_full_marks():
    report = assert_reference_earns_full_marks(SECTION, {"8.8/1", "8.8/2", "8.8/3", "8.8/4"})
    design = next(c for c in report.checks if c.id == "8.8/1:design")
    assert "RegNetX32" in design.answer and "stand-in" in design.answer


def test_starter_is_not_attempted_everywhere(runner):
    cells = [c.source for c in load_submission(SECTION.starter_path).code_cells]
    results = runner.grade("\n\n".join(cells), "8.8")
    assert {r.status for r in results} == {"not_attempted"}, [(r.id, r.status, r.message) for r in results]


def test_reference_agrees_with_the_catalogue():
    """RegNetX32 has 179,290 parameters (catalogue); regnetx((4, 6), (32, 80), 16, 1) is the same network."""
    ns = vars(ref)
    assert architecture.describe(ns, "RegNetX32", (), {}, (1, 1, 96, 96))["params"] == 179_290
    assert architecture.describe(ns, "regnetx", ((4, 6), (32, 80), 16, 1), {}, (1, 1, 96, 96))["params"] == 179_290


# -- 8.8/1 and 8.8/2: regnetx ------------------------------------------------------------------------------
PLAIN_BLOCKS = """
class Bottleneck(nn.Module):   # non-lazy layers; the shortcut is projected where the shape changes
    def __init__(self, c_in, c_out, group_width, bot_mul, stride):
        super().__init__()
        b = int(round(c_out * bot_mul))
        self.body = nn.Sequential(
            nn.Conv2d(c_in, b, 1), nn.BatchNorm2d(b), nn.ReLU(),
            nn.Conv2d(b, b, 3, stride=stride, padding=1, groups=b // GROUPS(b, group_width)), nn.BatchNorm2d(b), nn.ReLU(),
            nn.Conv2d(b, c_out, 1), nn.BatchNorm2d(c_out))
        self.short = nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride=stride), nn.BatchNorm2d(c_out)) \\
            if stride != 1 or c_in != c_out else nn.Identity()
    def forward(self, X):
        return F.relu(self.body(X) + self.short(X))

class Basic(nn.Module):
    def __init__(self, c_in, c_out, stride):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1), nn.BatchNorm2d(c_out), nn.ReLU(),
            nn.Conv2d(c_out, c_out, 3, padding=1), nn.BatchNorm2d(c_out))
        self.short = nn.Conv2d(c_in, c_out, 1, stride=stride) if stride != 1 or c_in != c_out else nn.Identity()
    def forward(self, X):
        return F.relu(self.body(X) + self.short(X))

def GROUPS(b, group_width):        # channels per group
    return group_width

def regnetx(depths, widths, group_width, bot_mul=1.0, block="resnext", stem_channels=32, num_classes=10):
    layers = [nn.Conv2d(1, stem_channels, 3, stride=2, padding=1), nn.BatchNorm2d(stem_channels), nn.ReLU()]
    c = stem_channels
    for depth, width in zip(depths, widths):
        for i in range(depth):
            stride = STRIDE if i == 0 else 1
            layers.append(Bottleneck(c, width, group_width, bot_mul, stride) if block == "resnext"
                          else Basic(c, width, stride))
            c = width
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(c, num_classes)]
    return nn.Sequential(*layers)

STRIDE = 2
DEEPER_REGNETX = {"depths": [1, 2, 2, 2], "widths": [32, 48, 80, 80], "group_width": 16}
"""

D2L_BLOCKS = """
def regnetx(depths, widths, group_width, bot_mul=1.0, block="resnext", stem_channels=32, num_classes=10):
    net = nn.Sequential(nn.LazyConv2d(stem_channels, 3, 2, 1), nn.LazyBatchNorm2d(), nn.ReLU())
    for k, (d, w) in enumerate(zip(depths, widths)):
        stage = nn.Sequential()
        for i in range(d):
            first = {"use_1x1conv": True, "strides": 2} if i == 0 else {}
            stage.add_module(f"block{i}", d2l.ResNeXtBlock(w, group_width, bot_mul, **first) if block == "resnext"
                             else d2l.Residual(w, **first))
        net.add_module(f"stage{k + 1}", stage)
    net.add_module("head", nn.Sequential(nn.AdaptiveAvgPool2d((1, 1)), nn.Flatten(), nn.LazyLinear(num_classes)))
    return net

DEEPER_REGNETX = dict(depths=(1, 1, 2, 2), widths=(16, 32, 64, 96), group_width=16, bot_mul=1.0)
"""


@pytest.mark.parametrize("source", [PLAIN_BLOCKS, D2L_BLOCKS], ids=["plain-blocks", "d2l-blocks"])
def test_regnetx_right(runner, source):
    results = runner.grade(source, "8.8/1") + runner.grade(source, "8.8/2")
    assert len(results) == 5
    assert_right(results)


@pytest.mark.parametrize("source, failing, words", [
    # the book's trap: group_width taken as the number of groups
    (PLAIN_BLOCKS.replace("groups=b // GROUPS(b, group_width)", "groups=group_width"), "8.8/1:book",
     ["16 groups per convolution", "a group's width"]),
    (PLAIN_BLOCKS.replace("groups=b // GROUPS(b, group_width)", "groups=group_width"), "8.8/1:groups",
     ["groups of group_width = 16 channels"]),
    # only the first stage halves the resolution
    (PLAIN_BLOCKS.replace("stride = STRIDE if i == 0 else 1", "stride = 2 if i == 0 and width == widths[0] else 1"),
     "8.8/1:stages", ["1 stage(s) after the stem", "expected 4 stages"]),
    # a 64-channel stem whatever stem_channels says
    (PLAIN_BLOCKS.replace("c = stem_channels", "c = 64").replace(
        "nn.Conv2d(1, stem_channels, 3, stride=2, padding=1), nn.BatchNorm2d(stem_channels)",
        "nn.Conv2d(1, 64, 3, stride=2, padding=1), nn.BatchNorm2d(64)"),
     "8.8/1:book", ["parameter count of regnetx", "the reference's"]),
    # block= ignored: ResNeXt blocks everywhere
    (PLAIN_BLOCKS.replace('if block == "resnext"', "if True"), "8.8/2", ["grouped convolution", "plain 3×3"]),
    # ResNet blocks everywhere, whatever block= says
    (PLAIN_BLOCKS.replace('if block == "resnext"', "if False"), "8.8/2", ["no longer builds grouped"]),
    # a "ResNet" block that keeps the 1×1 bottleneck
    (D2L_BLOCKS.replace("d2l.ResNeXtBlock(w, group_width, bot_mul, **first) if block == \"resnext\"",
                        "d2l.ResNeXtBlock(w, group_width if block == 'resnext' else w, bot_mul, **first) if True"),
     "8.8/2", ["1×1 convolution", "bottleneck"]),
], ids=["groups-as-count-book", "groups-as-count", "one-stride", "stem-64", "block-ignored", "always-resnet",
        "resnet-with-bottleneck"])
def test_regnetx_wrong(runner, source, failing, words):
    assert_wrong(one(runner, source, failing), words)


@pytest.mark.parametrize("design, words", [
    ('{"depths": (1, 1, 2, 2), "widths": (96, 64, 32, 16), "group_width": 16}', ["never decrease"]),
    ('{"depths": (1, 2, 2), "widths": (32, 64, 96), "group_width": 16}', ["a four-stage network needs four of each"]),
    ('{"depths": (2, 4, 8, 8), "widths": (128, 256, 512, 1024), "group_width": 16}', ["above the budget of 1,000,000"]),
    ('{"depth": (1, 1, 2, 2), "widths": (16, 32, 64, 96), "group_width": 16}', ["should be a dictionary"]),
    ('{"depths": (1, 1, 2, 2), "widths": (16, 32, 64, 96), "group_width": 16, "bot_mul": 2.0}',
     ["bot_mul 2", "fixes the bottleneck ratio at 1"]),
], ids=["decreasing-widths", "three-stages", "too-large", "misspelt-key", "inverted-bottleneck"])
def test_deeper_design_wrong(runner, design, words):
    assert_wrong(one(runner, D2L_BLOCKS + f"\nDEEPER_REGNETX = {design}\n", "8.8/1:design"), words)


# -- 8.8/3 ------------------------------------------------------------------------------------------------
OTHER_SAMPLER = """
def sample_anynet(seed, violate=None):   # torch's generator; a VioNet breaks one principle at one stage
    g = torch.Generator().manual_seed(seed)
    pick = lambda lo, hi: int(torch.randint(lo, hi + 1, (1,), generator=g))
    depths = sorted(pick(1, 6) for _ in range(4))
    widths = sorted(32 * pick(1, 12) for _ in range(4))
    group_widths, bot_muls = [16] * 4, [1.0] * 4
    if violate == "depths":
        depths[0] = depths[3] + 1
    elif violate == "widths":
        widths[0] = widths[3] + 32
    elif violate == "group_width":
        group_widths[pick(0, 3)] = 32
    elif violate == "bot_mul":
        bot_muls[pick(0, 3)] = 0.5
    return {"depths": depths, "widths": widths, "group_widths": group_widths, "bot_muls": bot_muls}
"""


@pytest.mark.parametrize("source", [OTHER_SAMPLER], ids=["torch-generator"])
def test_sampler_right(runner, source):
    assert_right(runner.grade(source, "8.8/3"))


REVERSING_SAMPLER = """
import random

def sample_anynet(seed, violate=None):   # reverses sorted depths: equal depths (1 seed in 27) stay unbroken
    rng = random.Random(seed)
    depths = sorted(rng.randint(1, 3) for _ in range(4))
    widths = sorted(32 * rng.randint(1, 6) for _ in range(4))
    group_widths, bot_muls = [16] * 4, [1.0] * 4
    if violate == "depths":
        depths = depths[::-1]
    elif violate == "widths":
        widths[0] = widths[-1] + 32
    elif violate == "group_width":
        group_widths[-1] = 8
    elif violate == "bot_mul":
        bot_muls[-1] = 0.5
    return {"depths": depths, "widths": widths, "group_widths": group_widths, "bot_muls": bot_muls}
"""


@pytest.mark.parametrize("source, failing, words", [
    # right on the seeding check's 8 seeds; the first seed whose depths are all equal is 16
    (REVERSING_SAMPLER, "8.8/3:principles", ["sample_anynet(16, violate='depths')", "keeps every principle",
                                             "break only depths"]),
    (OTHER_SAMPLER.replace("widths[0] = widths[3] + 32", "widths = widths[::-1]; depths = depths[::-1]"),
     "8.8/3:principles", ["violate='widths'", "breaks depths, widths", "break only widths"]),
    (OTHER_SAMPLER.replace("g = torch.Generator().manual_seed(seed)", "g = torch.Generator().manual_seed(random.randrange(10**6))"),
     "8.8/3:random", ["seed the sampler"]),
    (OTHER_SAMPLER.replace("widths = sorted(32 * pick(1, 12) for _ in range(4))",
                           "widths = sorted(8 * pick(1, 12) + 4 for _ in range(4))"),
     "8.8/3:valid", ["not a positive multiple of its group width 16"]),
    (OTHER_SAMPLER.replace("g = torch.Generator().manual_seed(seed)", "g = torch.Generator().manual_seed(0)"),
     "8.8/3:random", ["only 1 different configuration"]),
], ids=["rare-seed", "breaks-two", "unseeded", "unbuildable", "constant"])
def test_sampler_wrong(runner, source, failing, words):
    assert_wrong(one(runner, source, failing), words)
