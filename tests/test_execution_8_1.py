"""What a network computes, not what it declares (issue 22), on 8.1's layer checks: layers that never run or
whose work is thrown away do not count, a `ReLU` must compute ReLU, and `F.relu` counts as a ReLU."""
import pytest

from d2lgrade.core.sections import find_section
from d2lgrade.testing import assert_right, assert_wrong

SECTION = find_section("8.1")

SMALL = """
class SmallAlexNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.c1, self.c2 = nn.Conv2d(1, 16, 3, padding=1), nn.Conv2d(16, 32, 3, padding=1)
        self.act, self.pool = {act}, nn.MaxPool2d(2)
        self.spare, self.c3 = nn.ReLU(), nn.Conv2d(32, 32, 1)
        self.fc = nn.Linear(32 * 7 * 7, 10)
    def forward(self, X):
        X = self.pool({relu}(self.c1(X)))
        X = self.pool({relu}(self.c2(X)))
        {extra}
        return self.fc(X.flatten(1))
"""


def small(act="nn.ReLU()", relu="self.act", extra=""):
    return SMALL.format(act=act, relu=relu, extra=extra)


FAKE_RELU = """
class ReLU(nn.Module):   # named like the real thing, computes nothing
    def forward(self, X):
        return X
"""


@pytest.mark.parametrize("source", [small(relu="F.relu"), small(relu="torch.relu", act="None")],
                         ids=["F.relu", "torch.relu-no-module"])
def test_functional_relu_counts_as_relu(runner, source):
    assert_right(runner.grade(source, "8.1/5.1"))


@pytest.mark.parametrize("source, words", [
    (small(relu="(lambda t: t)"), ["ReLU"]),         # only the unused `spare` ReLU is declared
    (FAKE_RELU + small(act="ReLU()"), ["`act`", "called ReLU but does not compute ReLU"]),
    (small(extra="self.c3(X)"), ["`c3`", "never reaches the network's output"]),
    (small(extra="X = X + 0 * self.spare(self.c1(torch.zeros(2, 1, 28, 28))).sum()"),
     ["never reaches the network's output"]),
], ids=["declared-not-run", "relu-class-returning-input", "conv-output-thrown-away", "relu-times-zero"])
def test_declared_but_idle_layers_lose(runner, source, words):
    assert_wrong(runner.grade(source, "8.1/5.1")[0], words)


LENET = """
class LeNetDropout(nn.Module):
    def __init__(self, num_classes=10):
        super().__init__()
        self.c1, self.c2 = nn.LazyConv2d(6, 5, padding=2), nn.LazyConv2d(16, 5)
        self.f1, self.f2, self.f3 = nn.LazyLinear(120), nn.LazyLinear(84), nn.LazyLinear(num_classes)
        self.drop = nn.Dropout(0.3)
    def forward(self, X):
        X = F.max_pool2d({act}(self.c1(X)), 2)
        X = F.max_pool2d({act}(self.c2(X)), 2).flatten(1)
        return self.f3(self.drop({act}(self.f2({act}(self.f1(X))))))
"""


def test_functional_relu_lenet_is_right(runner):
    assert_right(runner.grade(LENET.format(act="F.relu"), "8.1/7", only={"8.1/7:layers"}))


def test_functional_sigmoid_lenet_is_named(runner):
    [result] = runner.grade(LENET.format(act="torch.sigmoid"), "8.1/7", only={"8.1/7:layers"})
    assert_wrong(result, ["computes a sigmoid", "runs no ReLU"])


def test_a_parameter_of_the_network_itself_must_change_the_output(runner):
    unused = small().replace("        self.fc = nn.Linear(32 * 7 * 7, 10)",
                             "        self.fc = nn.Linear(32 * 7 * 7, 10)\n        self.gain = nn.Parameter(torch.ones(1))")
    assert unused != small()
    assert_wrong(runner.grade(unused, "8.1/5.1")[0], ["`gain`", "never changes the network's output"])
    used = unused.replace("return self.fc(X.flatten(1))", "return self.gain * self.fc(X.flatten(1))")
    assert_right(runner.grade(used, "8.1/5.1"))


class_named_like_torch = """
class Flatten(nn.Module):   # the student's own Flatten: not a kind the checks count, so not judged
    def forward(self, X):
        return X.reshape(X.shape[0], -1)
"""


def test_own_classes_named_like_uncounted_torch_layers_are_fine(runner):
    source = class_named_like_torch + small().replace("        self.fc = nn.Linear(32 * 7 * 7, 10)",
                                                      "        self.fc = nn.Sequential(Flatten(), nn.Linear(32 * 7 * 7, 10))")
    assert_right(runner.grade(source, "8.1/5.1"))


UNFOLD_CONV = """
class UnfoldConv(nn.Module):   # a convolution as unfold, multiply and sum: FlopCounterMode sees no FLOPs
    def __init__(self, c_in, c_out, k, padding=0):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(c_out, c_in * k * k) * 0.1)
        self.k, self.padding = k, padding
    def forward(self, X):
        n, _, h, w = X.shape
        cols = F.unfold(X, self.k, padding=self.padding)
        out = (self.weight[None, :, :, None] * cols[:, None]).sum(2)
        return out.reshape(n, -1, h + 2 * self.padding - self.k + 1, w + 2 * self.padding - self.k + 1)
"""


def test_hand_written_convolutions_send_the_cost_to_review(runner):
    """Resizing to 224 with convolutions FlopCounterMode cannot see: the cost is not trusted (manual, 0 points)."""
    source = UNFOLD_CONV + """
class AlexNet28(nn.Module):
    def __init__(self):
        super().__init__()
        self.convs = nn.ModuleList([nn.Conv2d(1, 4, 3, padding=1), nn.Conv2d(4, 4, 3, padding=1),
                                    nn.Conv2d(4, 4, 3, padding=1), UnfoldConv(4, 8, 3, 1)])
        self.drop, self.fc = nn.Dropout(0.5), nn.Linear(8 * 7 * 7, 10)
    def forward(self, X):
        X = F.interpolate(X, size=224)
        for conv in self.convs:
            X = F.relu(conv(X))
        return self.fc(self.drop(F.adaptive_avg_pool2d(X, 7).flatten(1)))
"""
    [result] = runner.grade(source, "8.1/5.2")
    assert result.status == "manual" and result.points == 0, (result.status, result.message)
    assert "`convs.3`" in result.message, result.message
