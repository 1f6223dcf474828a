"""The grader rebuilds a trained network from the runtime's plain description (graders/probes/layers.py ->
d2lgrade/compare/rebuild.py): standard layers only, each loading exactly its own weights, and a rebuilt
network counts only where its outputs equal the student's. In-process: no runtime needed."""
import pytest
import torch
from torch import nn
from torch.nn import functional as F

from d2lgrade.compare import rebuild
from graders.probes.layers import LayerRecorder, describe_calls, state_of


def described(model, X):
    """What the training probe sends: the layers one training-mode forward pass ran, and the state_dict."""
    model.train()
    with LayerRecorder(model) as calls:
        model(X)
    model.eval()
    with torch.no_grad():
        reported = model(X)
    return describe_calls(model, calls), state_of(model), reported


class FlattenInForward(nn.Module):
    """Two blocks with batch normalisation and a reshape written in forward, between two layers."""

    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.MaxPool2d(2))
        self.head = nn.Linear(4 * 14 * 14, 10)

    def forward(self, X):
        return self.head(self.features(X).view(len(X), -1))


def test_a_chain_of_standard_layers_is_rebuilt_with_its_weights():
    torch.manual_seed(0)
    X = torch.rand(8, 1, 28, 28)
    model = FlattenInForward()
    model(X)                                       # batch statistics move: running_mean is not its initial value
    layers, state, reported = described(model, X)
    assert [entry["type"] for entry in layers] == ["Conv2d", "BatchNorm2d", "ReLU", "MaxPool2d", "Linear"]
    rebuilt = rebuild.rebuild(layers, state)
    outputs = rebuild.evaluate(rebuilt, X)
    assert outputs.dtype == torch.float64 and rebuild.faithful(outputs, reported)
    assert "Reshape" in [type(m).__name__ for m in rebuilt]            # the view(len(X), -1) in forward


def test_extra_buffers_and_parameters_do_not_switch_the_rebuild_off():
    torch.manual_seed(1)
    X = torch.rand(4, 1, 28, 28)
    model = nn.Sequential(nn.Flatten(), nn.Linear(784, 10))
    model.register_buffer("lookup_table", torch.rand(1000, 784))
    model.register_parameter("unused", nn.Parameter(torch.zeros(3)))
    layers, state, reported = described(model, X)
    assert "lookup_table" in dict(state)
    assert rebuild.faithful(rebuild.evaluate(rebuild.rebuild(layers, state), X), reported)


def test_a_forward_pass_that_does_more_than_its_layers_is_not_faithful():
    class FunctionalReLU(nn.Module):
        def __init__(self):
            super().__init__()
            self.a, self.b = nn.Linear(784, 32), nn.Linear(32, 10)

        def forward(self, X):
            return self.b(F.relu(self.a(X.flatten(1))))

    torch.manual_seed(2)
    X = torch.rand(16, 1, 28, 28)
    layers, state, reported = described(FunctionalReLU(), X)
    assert not rebuild.faithful(rebuild.evaluate(rebuild.rebuild(layers, state), X), reported)


def test_a_layer_whose_input_is_changed_between_layers_is_refused():
    class Pools(nn.Module):                        # F.max_pool2d between two layers changes the shape
        def __init__(self):
            super().__init__()
            self.conv, self.out = nn.Conv2d(1, 2, 3, padding=1), nn.Linear(2 * 14 * 14, 10)

        def forward(self, X):
            return self.out(F.max_pool2d(self.conv(X), 2).flatten(1))

    layers, state, _ = described(Pools(), torch.rand(2, 1, 28, 28))
    with pytest.raises(rebuild.RebuildError, match="computes something between its layers"):
        rebuild.rebuild(layers, state)


@pytest.mark.parametrize("change, words", [
    (lambda layers, state: layers[1].update(type="Bilinear"), "not one of the standard torch.nn layers"),
    (lambda layers, state: layers[1]["args"].update(out_features=10**9), "not a size the grader rebuilds"),
    (lambda layers, state: layers[1]["args"].update(in_features=5), "has shape"),
    (lambda layers, state: state.pop(), "has no"),
    (lambda layers, state: layers.clear(), "described no layers"),
])
def test_descriptions_outside_the_allow_list_are_refused(change, words):
    layers, state, _ = described(nn.Sequential(nn.Flatten(), nn.Linear(784, 10)), torch.rand(2, 1, 28, 28))
    change(layers, state)
    with pytest.raises(rebuild.RebuildError, match=words):
        rebuild.rebuild(layers, state)


def test_a_student_class_named_like_a_torch_layer_is_built_as_the_real_layer():
    """The grader builds its own nn.Linear from the settings: whatever the student's `Linear` computed,
    the rebuilt network computes a linear map, and `faithful` tells the two apart."""
    class Linear(nn.Linear):
        def forward(self, X):
            return super().forward(X) * 0 + 7

    torch.manual_seed(3)
    X = torch.rand(4, 1, 28, 28)
    layers, state, reported = described(nn.Sequential(nn.Flatten(), Linear(784, 10)), X)
    with pytest.raises(rebuild.RebuildError, match="not one of the standard"):
        rebuild.rebuild(layers, state)              # its module is not torch.nn's
    layers[1]["module"] = "torch.nn.modules.linear"   # a lying description
    assert not rebuild.faithful(rebuild.evaluate(rebuild.rebuild(layers, state), X), reported)
