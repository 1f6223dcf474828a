"""The grader-side judgements of issue 22 on plain data, without a runtime: the execution report, residual
blocks recomputed from their layers, and the FLOP unit inferred only where the numbers leave no doubt."""
import pytest
import torch
from torch import nn
from torch.nn import functional as F

from d2lgrade.core.checks import Verdict
from graders import execution, residual
from graders.architecture import infer_unit
from graders.probes.execution import execution as run_execution
from graders.probes.residual import residual_blocks


class Net(nn.Module):
    def __init__(self, mode):
        super().__init__()
        self.conv, self.spare, self.bn = nn.Conv2d(1, 4, 3), nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4)
        self.fc = nn.LazyLinear(3)
        self.mode = mode

    def forward(self, X):
        Y = self.conv(X)
        if self.mode == "discard":
            self.bn(Y)
        elif self.mode == "ok":
            Y = self.bn(Y)
        return self.fc(F.relu(Y).flatten(1))


def _judge(mode):
    ns = {"Net": Net}
    reply = run_execution(ns, "Net", [mode], {}, [2, 1, 6, 6], 2, 0)
    description = {"output": [2, 3], "layers": [[q, leaf["type"], {}, None] for q, leaf in reply["leaves"].items()],
                   "counts": {}}
    return execution.judge(reply, description, "Net()")


def test_only_layers_that_work_are_counted():
    judged = _judge("ok")
    assert judged["counts"] == {"Conv2d": 1, "BatchNorm2d": 1, "Linear": 1}     # `spare` never ran
    assert execution.has_relu(judged)                                             # F.relu, by its operator


def test_a_batch_norm_computed_and_discarded_is_named():
    with pytest.raises(Verdict, match="`bn` runs but its output never reaches"):
        _judge("discard")


def _block(shortcut):
    class Block(nn.Module):
        def __init__(self):
            super().__init__()
            self.c1, self.b1 = nn.Conv2d(4, 4, 3, padding=1), nn.BatchNorm2d(4)
            self.c2, self.b2 = nn.Conv2d(4, 4, 3, padding=1, bias=False), nn.BatchNorm2d(4)

        def forward(self, X):
            Y = self.b2(self.c2(F.relu(self.b1(self.c1(X)))))
            return F.relu(Y + X) if shortcut else F.relu(Y)
    [block] = residual_blocks({"Block": Block}, "Block", [], {}, [2, 4, 5, 5], 0)
    return block, residual.expected_outputs(block["layers"], block["input"].double())


def test_a_block_with_its_shortcut_equals_the_graders_own():
    block, computed = _block(True)
    assert any(residual._close(block["output"].double(), with_shortcut) for with_shortcut, _ in computed)


def test_a_block_without_its_shortcut_equals_only_the_dropped_form():
    block, computed = _block(False)
    output = block["output"].double()
    assert not any(residual._close(output, with_shortcut) for with_shortcut, _ in computed)
    assert any(residual._close(output, without) for _, without in computed)


class Strided(nn.Module):
    """A strided window and a fixed dense size: `fixed` takes only its own input side; `window` needs at least
    half of 128 (a 3×3 window after a stride of 16), as NiN's strided windows leave nothing of a quarter; `where`
    counts the real (CPU) builds, which the meta device's size test spares."""
    built = []

    def __init__(self, mode):
        super().__init__()
        self.conv = nn.Conv2d(1, 2, 16, stride=16)
        self.window = nn.MaxPool2d(3) if mode == "window" else nn.Identity()
        self.fc = nn.Linear(2 * 8 * 8, 3) if mode == "fixed" else nn.LazyLinear(3)
        Strided.built.append(self.conv.weight.device.type)

    def forward(self, X):
        return self.fc(F.relu(self.window(self.conv(X))).flatten(1))


@pytest.mark.parametrize("mode, side, cpu_builds", [("lazy", 32, 1), ("window", 64, 2), ("fixed", 128, 2)])
def test_a_large_input_runs_at_the_smallest_side_the_network_takes(mode, side, cpu_builds):
    Strided.built.clear()
    reply = run_execution({"Strided": Strided}, "Strided", [mode], {}, [1, 1, 128, 128], 1, 0)
    assert reply["input"] == [2, 1, side, side]
    assert reply["flops"]["meta"] == reply["flops"]["cpu"] if side < 128 else reply["flops"]["meta"] is None
    # A quarter is tried for real; after it fails, the meta device says whether half is worth a real build
    # (`fixed` cannot take it: built on the CPU for the quarter and the full size only).
    assert Strided.built.count("cpu") == cpu_builds, Strided.built


class DarkWhenSmall(nn.Module):
    """Stands for a deep network whose last maps its ReLUs zero on a small image (a 20-layer NiN at half size):
    below 128 pixels its output no longer depends on its input, so every layer looks idle there."""
    def __init__(self):
        super().__init__()
        self.conv, self.fc = nn.Conv2d(1, 2, 16, stride=16), nn.LazyLinear(3)

    def forward(self, X):
        Y = F.relu(self.conv(X))
        return self.fc((Y if X.shape[-1] >= 128 else Y * 0).flatten(1))


def test_an_output_blind_to_the_input_at_a_reduced_size_is_judged_at_the_full_size():
    reply = run_execution({"DarkWhenSmall": DarkWhenSmall}, "DarkWhenSmall", [], {}, [1, 1, 128, 128], 2, 0)
    assert reply["input"] == [2, 1, 128, 128] and reply["input_matters"] is True
    assert all(leaf["reaches"] for leaf in reply["leaves"].values()), reply["leaves"]


class MadeOnFirstUse(nn.Module):
    """Another style of lazy layer: made by hand in the first forward pass, sized from its input."""
    def __init__(self):
        super().__init__()
        self.conv, self.fc = nn.Conv2d(1, 2, 3), None

    def forward(self, X):
        Y = F.relu(self.conv(X)).flatten(1)
        if self.fc is None:
            self.fc = nn.Linear(Y.shape[1], 3)
        return self.fc(Y)


def test_a_layer_made_in_the_first_pass_is_described_and_measured_on_meta():
    from graders.probes.architecture import describe
    ns = {"MadeOnFirstUse": MadeOnFirstUse}
    described = describe(ns, "MadeOnFirstUse", input_shape=(1, 1, 128, 128))
    assert described["device"] == "meta" and described["counts"] == {"Conv2d": 1, "Linear": 1}
    assert described["params"] == 2 * 9 + 2 + 2 * 126 * 126 * 3 + 3
    reply = run_execution(ns, "MadeOnFirstUse", [], {}, [1, 1, 128, 128], 2, 0)
    assert reply["input"] == [2, 1, 32, 32] and reply["calls"]["meta"] == reply["calls"]["cpu"] == \
        [["conv", [2, 30, 30]], ["fc", [3]]]
    assert execution.judge(reply, described, "MadeOnFirstUse()")["counts"] == {"Conv2d": 1, "Linear": 1}


class PoolsToNothing(nn.Module):
    """A 0×0 pooling leaves its dense layer no inputs: a LazyLinear then never initialises its weights, which hold
    whatever memory they got (NaN here, for certain). The ReLU after it is still a ReLU; the network ignores its input."""
    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.Conv2d(1, 2, 3), nn.AdaptiveAvgPool2d(0), nn.Flatten(), nn.Linear(0, 4), nn.ReLU(),
                                 nn.Linear(4, 3))
        with torch.no_grad():
            self.net[3].bias.fill_(float("nan"))

    def forward(self, X):
        return self.net(X)


def test_nan_from_an_uninitialised_layer_is_neither_a_fake_relu_nor_input_dependence():
    reply = run_execution({"PoolsToNothing": PoolsToNothing}, "PoolsToNothing", [], {}, [2, 1, 8, 8], 2, 0)
    assert reply["leaves"]["net.4"]["behaves"] is True
    assert reply["input_matters"] is False


@pytest.mark.parametrize("answer, unit", [
    ({"conv": 200, "fc": 20}, "FLOPs"), ({"conv": 100, "fc": 10}, "MACs"),
    ({"conv": 200, "fc": 10}, None), ({"conv": 150, "fc": 20}, None), ({"conv": "many", "fc": 20}, None),
], ids=["flops", "macs", "mixed", "neither", "not-a-number"])
def test_unit_inferred_only_without_doubt(answer, unit):
    assert infer_unit(answer, {"conv": 200.0, "fc": 20.0}, 0.01) == unit
