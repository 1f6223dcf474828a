"""What a network computes, not what it declares (issue 22), on 8.6's ResNets: a shortcut projection or a
batch norm that runs and is thrown away, or a batch norm whose forward was replaced, is named."""
import pytest

from d2lgrade.pipeline.grading import run_check
from d2lgrade.core.sections import find_section
from d2lgrade.testing import assert_right, assert_wrong
from tests.test_section_8_6 import HAND_RESNET

SECTION = find_section("8.6")


def grade_one(runner, source, check_id):
    runner.runtime.run_source("for _n in %r:\n    globals().pop(_n, None)" % (runner.names,))
    run = runner.runtime.run_source(source)
    assert run.status == "ok", (run.error, run.traceback)
    [check] = [c for c in SECTION.checks if c.id == check_id]
    return run_check(check, runner.runtime, runner.options)


BLOCK_RETURN = "        return torch.relu(self.body(X) + self.skip(X))"
REPLACED_BN = """
_resnet = resnet
def resnet(*args, **kwargs):
    net = _resnet(*args, **kwargs)
    for m in net.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.forward = lambda X: X
    return net
"""


@pytest.mark.parametrize("source, words", [
    (HAND_RESNET.replace(BLOCK_RETURN, "        self.skip(X)\n        return torch.relu(self.body(X))"),
     ["`6.skip`", "runs but its output never reaches the network's output"]),
    (HAND_RESNET.replace(BLOCK_RETURN, "        return torch.relu(self.body[:4](X) + self.skip(X) + 0 * self.body(X))"),
     ["`4.body.", "never reaches the network's output"]),
    (HAND_RESNET + REPLACED_BN, ["`1`", "called BatchNorm2d but is not torch's nn.BatchNorm2d",
                                 "forward was replaced on the instance"]),
], ids=["projection-thrown-away", "batch-norm-discarded", "batch-norm-forward-replaced"])
def test_work_thrown_away_is_named(runner, source, words):
    assert source.count("def resnet") >= 1 and source != HAND_RESNET
    assert_wrong(grade_one(runner, source, "8.6/2:resnet18"), words)


def test_inplace_and_functional_styles_keep_full_marks(runner):
    """In-place ReLU after batch norm, `F.relu` in forward, and an in-place addition: all work reaches the output."""
    source = HAND_RESNET.replace("nn.BatchNorm2d(c_out), nn.ReLU(),", "nn.BatchNorm2d(c_out), nn.ReLU(inplace=True),") \
        .replace(BLOCK_RETURN, "        Y = self.body(X)\n        Y += self.skip(X)\n        return F.relu(Y)")
    assert source != HAND_RESNET
    assert_right(grade_one(runner, source, "8.6/2:resnet18"))


# -- bias conventions, judged per convolution ------------------------------------------------------------------
STEM = "nn.Conv2d(1, 64, 7, 2, 3, bias=False)"


def test_resnet50_with_a_biased_stem_and_unbiased_bottlenecks_is_right(runner):
    source = HAND_RESNET.replace(STEM, "nn.Conv2d(1, 64, 7, 2, 3)")
    assert source != HAND_RESNET
    result = grade_one(runner, source, "8.6/2:resnet50")
    assert_right(result)
    assert "with some convolution biases" in result.message, result.message


def test_a_count_off_by_other_parameters_still_fails(runner):
    source = HAND_RESNET.replace(STEM, "nn.Conv2d(1, 64, 7, 2, 3)").replace(
        "nn.Linear(c_in, num_classes)", "nn.Linear(c_in, num_classes, bias=False)")
    assert_wrong(grade_one(runner, source, "8.6/2:resnet50"), ["parameters", "with the biases its convolutions have"])


# -- residual blocks recomputed by the grader ------------------------------------------------------------------
DROPS_IDENTITY = "        return torch.relu(self.body(X) + (0 if isinstance(self.skip, nn.Identity) else self.skip(X)))"


def test_identity_blocks_that_drop_the_shortcut_are_named(runner):
    """Same layers, parameters and FLOPs as ResNet-18; only the identity blocks lose their shortcut."""
    source = HAND_RESNET.replace(BLOCK_RETURN, DROPS_IDENTITY)
    assert source != HAND_RESNET
    assert_wrong(grade_one(runner, source, "8.6/2:resnet18"), ["block `4`", "drops its shortcut"])


ZERO_AWARE = """
class Residual(nn.Module):   # adds the input only when its convolutions have been zeroed
    def __init__(self, num_channels, use_1x1conv=False, strides=1):
        super().__init__()
        self.conv1 = nn.LazyConv2d(num_channels, 3, padding=1, stride=strides)
        self.conv2 = nn.LazyConv2d(num_channels, 3, padding=1)
        self.conv3 = nn.LazyConv2d(num_channels, 1, stride=strides) if use_1x1conv else None
        self.bn1, self.bn2 = nn.LazyBatchNorm2d(), nn.LazyBatchNorm2d()
    def forward(self, X):
        Y = self.bn2(self.conv2(F.relu(self.bn1(self.conv1(X)))))
        S = self.conv3(X) if self.conv3 else X
        return F.relu(Y + S) if {when} else F.relu(Y)
"""


def test_a_block_that_adds_the_input_only_under_test_is_named(runner):
    source = ZERO_AWARE.format(when="self.conv1.weight.abs().sum() == 0")
    assert_wrong(grade_one(runner, source, "8.6/2:residual"), ["`Residual(3)`", "drops its shortcut"])


def test_the_same_block_adding_its_input_always_is_right(runner):
    assert_right(grade_one(runner, ZERO_AWARE.format(when="True"), "8.6/2:residual"))


def test_a_resnext_block_without_its_identity_shortcut_is_named(runner):
    from tests.test_section_8_6 import LAZY_RESNEXT
    source = LAZY_RESNEXT.replace("return F.relu(self.branch(X) + self.skip(X))",
                                  "return F.relu(self.branch(X) + (0 if isinstance(self.skip, nn.Identity) else self.skip(X)))")
    assert source != LAZY_RESNEXT
    assert_wrong(grade_one(runner, source, "8.6/3:resnext"), ["`ResNeXtBlock(32, 16, 1)`", "drops its shortcut"])
