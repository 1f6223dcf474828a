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


class Functional(nn.Module):
    """Only the layers with weights are modules; activations, pooling, dropout and reshapes are written
    functionally in forward, in several spellings."""

    def __init__(self, pool="max", head="flatten"):
        super().__init__()
        self.pool, self.head = pool, head
        self.c1, self.c2 = nn.Conv2d(1, 4, 5, padding=2), nn.Conv2d(4, 8, 5)
        self.fc = nn.Linear(8 * 5 * 5 if head != "mean" else 8, 10)

    def forward(self, X):
        pool = F.max_pool2d if self.pool == "max" else F.avg_pool2d
        X = pool(F.relu(self.c1(X.view(-1, 1, 28, 28))), kernel_size=2, stride=2)
        X = pool(torch.sigmoid(self.c2(X)), 2)
        X = F.dropout(X, 0.3, training=self.training)
        if self.head == "mean":
            return self.fc(X.mean(dim=(2, 3)))
        return F.log_softmax(self.fc(torch.flatten(X, 1) if self.head == "flatten" else X.view(len(X), -1)), dim=1)


@pytest.mark.parametrize("kwargs", [{}, {"pool": "avg", "head": "view"}, {"head": "mean"}], ids=["max", "avg", "mean"])
def test_functional_layers_in_forward_are_rebuilt(kwargs):
    torch.manual_seed(2)
    X = torch.rand(16, 1, 28, 28)
    layers, state, reported = described(Functional(**kwargs), X)
    assert [entry["type"] for entry in layers] == ["Conv2d", "Conv2d", "Linear"]
    rebuilt = rebuild.rebuild(layers, state)
    assert rebuild.faithful(rebuild.evaluate(rebuilt, X), reported)
    kinds = {type(m).__name__ for m in rebuilt.modules()}
    assert {"ReLU", "Sigmoid"} <= kinds and ("MaxPool2d" in kinds or "AvgPool2d" in kinds or kwargs.get("head"))


@pytest.mark.parametrize("forward, words", [
    (lambda self, X: self.out(self.conv(X).flatten(1) * 2), "computes mul between its layers"),
    (lambda self, X: self.out(torch.cat([self.conv(X), self.conv(X)], 1)[:, :2].flatten(1)), "computes"),
    (lambda self, X: self.out(self.conv(X).flatten(1)) + 0.5, "computes add between its layers"),
])
def test_other_computation_between_layers_is_refused_with_its_name(forward, words):
    class Extra(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv, self.out = nn.Conv2d(1, 2, 3, padding=1), nn.Linear(2 * 28 * 28, 10)

    Extra.forward = forward
    layers, state, _ = described(Extra(), torch.rand(2, 1, 28, 28))
    with pytest.raises(rebuild.RebuildError, match=words):
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
