"""Issue 22, hole 2 and "every parameter must work": what the grader accepts as evidence about a network.

The meta-device description must agree with a run on real tensors; perturbing each parameter (or each of
torch's own layers) must move the output; a network must not ignore its input; FLOPs come from the layers
the grader verified, and work hidden from the FLOP counter (a convolution as unfold, multiply and sum) goes
to review. Most tests judge plain data in this process (cheap); the last ones use the runtime of 8.2."""
import pytest
import torch
from torch import nn
from torch.nn import functional as F

from d2lgrade.core.checks import Verdict
from d2lgrade.core import results as R
from d2lgrade.testing import assert_right, assert_wrong
from graders import execution
from graders.probes.architecture import describe
from graders.probes.execution import execution as run_execution

SHAPE = (1, 1, 12, 12)


class Small(nn.Module):
    """Honest, in a functional style: F.relu and F.max_pool2d, a batch norm, a learnable scale on a branch."""
    def __init__(self):
        super().__init__()
        self.c1, self.bn, self.c2 = nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), nn.Conv2d(4, 4, 3, padding=1)
        self.scale = nn.Parameter(torch.tensor(0.5))
        self.fc = nn.LazyLinear(5)

    def forward(self, X):
        Y = F.max_pool2d(F.relu(self.bn(self.c1(X))), 2)
        return self.fc(F.relu(Y + self.scale * self.c2(Y)).flatten(1))


class OnMetaLarger(Small):          # looks bigger where the grader reads the architecture
    def forward(self, X):
        return super().forward(F.interpolate(X, scale_factor=2) if X.device.type == "meta" else X)


class DecoyParameter(Small):        # a gradient without an effect: p - p.detach() is exactly zero
    def __init__(self):
        super().__init__()
        self.extra = nn.Parameter(torch.randn(64, 64))

    def forward(self, X):
        return super().forward(X) + (self.extra - self.extra.detach()).sum()


class DecoyLayer(Small):            # torch's own layer runs, its result is added as zero
    def __init__(self):
        super().__init__()
        self.wide = nn.Linear(144, 256)

    def forward(self, X):
        Z = self.wide(X.flatten(1))
        return super().forward(X) + (Z - Z.detach()).sum(1, keepdim=True)


class IgnoresInput(Small):
    def forward(self, X):
        return super().forward(torch.ones_like(X))


class UnfoldConv(nn.Module):        # a convolution the FLOP counter cannot see
    def __init__(self):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(4, 9) / 3)

    def forward(self, X):
        cols = F.unfold(X, 3, padding=1)                                     # N, 9, H*W
        return (cols.unsqueeze(1) * self.weight[None, :, :, None]).sum(2).view(X.shape[0], 4, *X.shape[2:])


class UnfoldNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv, self.fc = UnfoldConv(), nn.LazyLinear(5)

    def forward(self, X):
        return self.fc(F.relu(self.conv(X)).flatten(1))


def _judged(cls, shape=SHAPE):
    ns = {cls.__name__: cls}
    description = describe(ns, cls.__name__, [], {}, list(shape))
    reply = run_execution(ns, cls.__name__, [], {}, list(shape), 2, 0)
    return execution.judge(reply, description, f"{cls.__name__}()", shape)


def test_an_honest_network_in_functional_style_keeps_its_layers_and_flops():
    judged = _judged(Small)
    assert judged["counts"] == {"Conv2d": 2, "BatchNorm2d": 1, "Linear": 1}
    # The counter and the grader's own count from the verified layers agree on honest work.
    assert execution.layer_flops(judged["layers"]) == {"conv": judged["flops"]["conv"], "linear": judged["flops"]["linear"]}
    assert judged["uncounted"] == []


@pytest.mark.parametrize("cls, words", [
    (OnMetaLarger, ["meta device", "`c1` gives [4, 12, 12] per example on real tensors"]),
    (DecoyParameter, ["`extra`", "output unchanged"]),
    (DecoyLayer, ["`wide`", "output unchanged"]),
    (IgnoresInput, ["ignores its input"]),
], ids=["behaves-otherwise-on-meta", "decoy-parameter", "decoy-layer", "ignores-input"])
def test_a_network_that_fakes_its_evidence_is_named(cls, words):
    with pytest.raises(Verdict) as raised:
        _judged(cls)
    for word in words:
        assert word in str(raised.value), str(raised.value)


def test_at_a_reduced_size_the_probe_runs_on_meta_itself():
    with pytest.raises(Verdict, match=r"`c1` gives \[4, 32, 32\] per example on real tensors but `c1` gives \[4, 64, 64\]"):
        _judged(OnMetaLarger, (1, 1, 128, 128))      # the real run uses 32x32 images, the description 128x128
    assert _judged(Small, (1, 1, 128, 128))["counts"]["Conv2d"] == 2


def test_a_description_from_a_separate_call_must_match_the_real_run():
    reply = run_execution({"Small": Small}, "Small", [], {}, list(SHAPE), 2, 0)
    described = describe({"Small": Small}, "Small", [], {}, list(SHAPE))
    described["layers"][0][3] = [1, 4, 24, 24]           # as if the network had shown the describing call more
    with pytest.raises(Verdict, match=r"`c1` gives \[4, 12, 12\] per example on real tensors but `c1` gives \[4, 24, 24\]"):
        execution.judge(reply, described, "Small()", SHAPE)


def test_flops_come_from_the_verified_layers_where_the_counter_saw_less():
    layers = [["conv", "Conv2d", {"in_channels": 2, "out_channels": 4, "kernel_size": [3, 3], "groups": 1}, [1, 4, 5, 5]],
              ["fc", "Linear", {"in_features": 100, "out_features": 3}, [1, 3]]]
    flops = execution.verified_flops({"layers": layers, "flops": {"conv": 0, "linear": 600, "other": 7}})
    assert flops == {"conv": 2 * 100 * 2 * 9, "linear": 600, "other": 7}


class _Probe:
    def __init__(self):
        self.unverified = []

    def _unverified(self, why):
        self.unverified.append(why)


def test_an_unfold_convolution_sends_the_flop_figure_to_review():
    judged = _judged(UnfoldNet)
    assert judged["uncounted"] == ["conv"] and judged["flops"]["conv"] == 0     # invisible to the counter
    p = _Probe()
    execution.flops_unverified(p, judged, "UnfoldNet()")
    assert p.unverified and "`conv`" in p.unverified[0]
    honest = _Probe()
    execution.flops_unverified(honest, _judged(Small), "Small()")
    assert honest.unverified == []


# -- in the runtime: 8.2/4 -------------------------------------------------------------------------------
SMALL_BLOCKS = """
def vgg_block(num_convs, out_channels):
    layers = []
    for _ in range(num_convs):
        layers += [nn.LazyConv2d(out_channels, 3, padding=1), nn.ReLU()]
    return nn.Sequential(*layers, nn.MaxPool2d(2, 2))

class VGGSmall(nn.Module):
    def __init__(self, input_size, num_classes=10):
        super().__init__()
        arch = ARCH_56 if input_size <= 56 else ARCH_84
        self.net = nn.Sequential(*[vgg_block(n, c) for n, c in arch], nn.AdaptiveAvgPool2d(POOLED), nn.Flatten(),
                                 nn.LazyLinear(64), nn.ReLU(), nn.LazyLinear(num_classes))
    def forward(self, X):
        return self.net(X)
"""
GOOD_ARCHS = "ARCH_56 = ((2, 16), (2, 32), (2, 64))\nARCH_84 = ((2, 16), (2, 32), (2, 64), (2, 64))\nPOOLED = 1\n"
# Raises where a frame of the stack names the grader: the probes run under neutral names, like cells.
STACK_SEARCH = """
import inspect, sys

def _grader_on_stack():
    for frame in inspect.stack():
        for name in (frame.filename.rsplit("/", 1)[-1], str(frame.frame.f_globals.get("__name__"))):
            if "probe" in name or "graders" in name:
                return name
    return None

class Searching(VGGSmall):
    def forward(self, X):
        found = _grader_on_stack()
        if found:
            raise RuntimeError("the grader is on the stack: " + found)
        return super().forward(X)
VGGSmall = Searching
"""


@pytest.fixture
def runner(runners):
    return runners("8.2")


def test_8_2_4_a_small_vgg_passes_and_probes_do_not_name_themselves(runner):
    assert_right(runner.grade("import torch\n" + GOOD_ARCHS + SMALL_BLOCKS + STACK_SEARCH, "8.2/4"))


@pytest.mark.parametrize("archs, failing, words", [
    (GOOD_ARCHS.replace("POOLED = 1", "POOLED = 0"), "8.2/4:shape", ["`VGGSmall(56)`", "ignores its input"]),
    (GOOD_ARCHS.replace("(2, 64), (2, 64))", "(2, 64), (1, 64))"), "8.2/4",
     ["`VGGSmall(84)`", "downsampling step 4 follows only 1", "two or more convolutions"]),
], ids=["pools-to-nothing", "one-convolution-before-the-last-pooling-at-84"])
def test_8_2_4_what_the_design_check_refuses(runner, archs, failing, words):
    results = {r.id: r for r in runner.grade("import torch\n" + archs + SMALL_BLOCKS, "8.2/4")}
    assert_wrong(results[failing], words)


HIDDEN_WORK = """
class Unfolded(nn.Module):          # a 3x3 convolution as unfold, multiply and sum: no FLOPs for the counter
    def __init__(self, channels):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(channels, channels * 9) / channels / 3)
    def forward(self, X):
        n, _, h, w = X.shape
        cols = torch.nn.functional.unfold(X, 3, padding=1)
        return (cols.unsqueeze(1) * self.weight[None, :, :, None]).sum(2).view(n, -1, h, w)

class WithHiddenWork(VGGSmall):
    def __init__(self, input_size):
        super().__init__(input_size)
        self.net.insert(1, Unfolded(16))
VGGSmall = WithHiddenWork
"""


def test_8_2_4_work_hidden_from_the_flop_counter_goes_to_review(runner):
    results = {r.id: r for r in runner.grade("import torch\n" + GOOD_ARCHS + SMALL_BLOCKS + HIDDEN_WORK, "8.2/4")}
    assert results["8.2/4"].status == R.MANUAL and results["8.2/4"].points == 0, results["8.2/4"].message
    assert "`net.1`" in results["8.2/4"].message and "FLOPs" in results["8.2/4"].message
