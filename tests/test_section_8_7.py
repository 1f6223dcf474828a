"""8.7 DenseNet: the reference earns full marks; wrong networks and counts lose points, and say why."""
import pytest

from d2lgrade.load import load_submission
from d2lgrade.core.sections import find_section
from d2lgrade.testing import assert_reference_earns_full_marks, assert_right, assert_wrong
from graders.probes import architecture
from reference import section_8_7 as ref

SECTION = find_section("8.7")


def by_id(results):
    return {r.id: r for r in results}


# -- the whole pipeline ------------------------------------------------------------------------------------
def test_reference_earns_full_marks():
    report = assert_reference_earns_full_marks(SECTION, {"8.7/1", "8.7/2", "8.7/3"})
    training = next(c for c in report.checks if c.id == "8.7/5:training")
    assert "evaluated by the grader" in training.answer


def test_starter_is_not_attempted_everywhere(runner):
    cells = [c.source for c in load_submission(SECTION.starter_path).code_cells]
    results = runner.grade("\n\n".join(cells), "8.7")
    assert {r.status for r in results} == {"not_attempted"}, [(r.id, r.status, r.message) for r in results]


def test_reference_agrees_with_the_catalogue():
    """A cross-check of the reference against figures counted independently (torchvision's DenseNets adapted
    to one channel and ten classes agree); the graders compute their figures from the reference."""
    ns = vars(ref)
    assert architecture.describe(ns, "DenseNet", (), {}, (2, 1, 96, 96))["params"] == 758_226
    assert architecture.describe(ns, "ResNet18", (), {}, (2, 1, 96, 96))["params"] == 11_178_378
    assert architecture.describe(ns, "densenet", (ref.DENSENET_BLOCKS[121],), {}, (1, 1, 64, 64))["params"] == 6_957_834


# -- 8.7/2 ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("source", [
    'param_counts = {"resnet18": 11178378, "densenet": 758226}',
    'param_counts = dict(densenet=torch.tensor(758226), resnet18=float(11_178_378))',
], ids=["ints", "tensor-and-float"])
def test_parameter_counts_right(runner, source):
    assert_right(runner.grade(source, "8.7/2"))


@pytest.mark.parametrize("source, words", [
    ('param_counts = {"densenet": 758226, "resnet18": 11184650}', ["3-channel (RGB)"]),
    ('param_counts = {"densenet": 6957834, "resnet18": 11178378}', ["param_counts['densenet']", "above the reference's", "758 k"]),
    ('param_counts = {"densenet": 758226}', ["\"resnet18\""]),
    ('param_counts = {"densenet": 758226, "resnet18": "11.2M"}', ["should be a number"]),
], ids=["rgb-resnet", "densenet-121-instead", "missing-key", "string"])
def test_parameter_counts_wrong(runner, source, words):
    assert_wrong(runner.grade(source, "8.7/2")[0], words)


# -- 8.7/4 ------------------------------------------------------------------------------------------------
TABLE = "DENSENET_BLOCKS = {121: (6, 12, 24, 16), 169: (6, 12, 32, 32), 201: (6, 12, 48, 32)}\n"

LAZY_WITH_BIASES = TABLE + """
class DenseLayer(nn.Module):   # lazy layers with biases, like the book's conv_block
    def __init__(self, k):
        super().__init__()
        self.body = nn.Sequential(nn.LazyBatchNorm2d(), nn.ReLU(), nn.LazyConv2d(4 * k, 1),
                                  nn.LazyBatchNorm2d(), nn.ReLU(), nn.LazyConv2d(k, 3, padding=1))
    def forward(self, X):
        return torch.cat((X, self.body(X)), dim=1)

class DenseNetBC(nn.Module):
    def __init__(self, blocks, k, num_classes):
        super().__init__()
        c = 2 * k
        layers = [nn.LazyConv2d(c, 7, stride=2, padding=3), nn.LazyBatchNorm2d(), nn.ReLU(), nn.MaxPool2d(3, 2, 1)]
        for i, n in enumerate(blocks):
            layers += [DenseLayer(k) for _ in range(n)]
            c += n * k
            if i < len(blocks) - 1:
                c //= 2
                layers += [nn.LazyBatchNorm2d(), nn.ReLU(), nn.LazyConv2d(c, 1), nn.AvgPool2d(2, 2)]
        layers += [nn.LazyBatchNorm2d(), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.LazyLinear(num_classes)]
        self.net = nn.Sequential(*layers)
    def forward(self, X):
        return self.net(X)

def densenet(blocks, growth_rate=32, num_classes=10):
    return DenseNetBC(blocks, growth_rate, num_classes)
"""

FEATURE_LIST = """
DENSENET_BLOCKS = dict(zip((121, 169, 201), ([6, 12, 24, 16], [6, 12, 32, 32], [6, 12, 48, 32])))

class Block(nn.Module):   # keeps a list of feature maps and concatenates it for every layer (torchvision's way)
    def __init__(self, n, c, k):
        super().__init__()
        self.layers = nn.ModuleList(nn.Sequential(
            nn.BatchNorm2d(c + i * k), nn.ReLU(inplace=True), nn.Conv2d(c + i * k, 4 * k, 1, bias=False),
            nn.BatchNorm2d(4 * k), nn.ReLU(inplace=True), nn.Conv2d(4 * k, k, 3, padding=1, bias=False))
            for i in range(n))
    def forward(self, X):
        features = [X]
        for layer in self.layers:
            features.append(layer(torch.cat(features, 1)))
        return torch.cat(features, 1)

def densenet(blocks, growth_rate=32, num_classes=10):
    k, c = growth_rate, 2 * growth_rate
    parts = [nn.Conv2d(1, c, 7, 2, 3, bias=False), nn.BatchNorm2d(c), nn.ReLU(), nn.MaxPool2d(3, 2, 1)]
    for i, n in enumerate(blocks):
        parts.append(Block(n, c, k))
        c += n * k
        if i + 1 < len(blocks):
            parts += [nn.BatchNorm2d(c), nn.ReLU(), nn.Conv2d(c, c // 2, 1, bias=False), nn.AvgPool2d(2)]
            c //= 2
    return nn.Sequential(*parts, nn.BatchNorm2d(c), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                         nn.Linear(c, num_classes))
"""


@pytest.mark.parametrize("source", [LAZY_WITH_BIASES, FEATURE_LIST], ids=["lazy-with-biases", "feature-list"])
def test_densenet_right(runner, source):
    results = runner.grade(source, "8.7/4")
    assert len(results) == 4
    assert_right(results)


def test_convolution_biases_are_named(runner):
    parameters = by_id(runner.grade(LAZY_WITH_BIASES, "8.7/4:parameters"))["8.7/4:parameters"]
    assert "with convolution biases" in parameters.message


@pytest.mark.parametrize("source, failing, words", [
    (FEATURE_LIST.replace("[6, 12, 32, 32]", "[6, 12, 24, 32]"), "8.7/4:table", ["DENSENET_BLOCKS[169]", "(6, 12, 24, 32)"]),
    # the book's dense layers (BN, ReLU, 3×3 convolution) without the paper's 1×1 bottleneck
    (FEATURE_LIST.replace("nn.Conv2d(c + i * k, 4 * k, 1, bias=False),\n            nn.BatchNorm2d(4 * k), "
                          "nn.ReLU(inplace=True), nn.Conv2d(4 * k, k, 3", "nn.Conv2d(c + i * k, k, 3"),
     "8.7/4:structure", ["lack the paper's bottleneck", "4 × growth_rate = 128"]),
    # transitions that keep the channels instead of halving them
    (FEATURE_LIST.replace("nn.Conv2d(c, c // 2, 1, bias=False)", "nn.Conv2d(c, c, 1, bias=False)")
     .replace("c //= 2", "pass"), "8.7/4:structure", ["halve the channels", "3 transition layers"]),
    # one dense layer too few in every block
    (FEATURE_LIST.replace("for i in range(n))", "for i in range(n - 1))").replace("c += n * k", "c += (n - 1) * k"),
     "8.7/4:structure",
     ["[5, 11, 23, 15]", "block 1 has too few layers", "Expected [6, 12, 24, 16]"]),
    # the stem keeps 64 channels whatever the growth rate
    (FEATURE_LIST.replace("k, c = growth_rate, 2 * growth_rate", "k, c = growth_rate, 64"), "8.7/4:growth",
     ["2 × growth_rate = 24"]),
    # growth rate ignored
    (FEATURE_LIST.replace("k, c = growth_rate, 2 * growth_rate", "k, c = 32, 2 * growth_rate"), "8.7/4:growth",
     ["3×3 convolutions with growth_rate = 12"]),
    # no global pooling: the head sees the whole last feature map
    (LAZY_WITH_BIASES.replace("nn.AdaptiveAvgPool2d(1), ", ""), "8.7/4:parameters",
     ["parameter count of DenseNet-121", "above the reference's"]),
], ids=["table-169", "no-bottleneck", "transitions-keep-channels", "one-layer-short", "stem-64", "growth-ignored",
        "no-global-pooling"])
def test_densenet_wrong(runner, source, failing, words):
    assert_wrong(by_id(runner.grade(source, failing, only={failing}))[failing], words)


# -- 8.7/5 ------------------------------------------------------------------------------------------------
RIGHT_MLPS = [
    """
class DenseMLP(nn.Module):   # a list of all features so far, concatenated for every layer
    def __init__(self, num_inputs, num_layers=3, growth=32, num_outputs=1):
        super().__init__()
        widths = [num_inputs + i * growth for i in range(num_layers + 1)]
        self.layers = nn.ModuleList(nn.Sequential(nn.Linear(w, growth), nn.ReLU()) for w in widths[:-1])
        self.head = nn.Linear(widths[-1], num_outputs)

    def forward(self, X):
        features = [X]
        for layer in self.layers:
            features.append(layer(torch.cat(features, dim=-1)))
        return self.head(torch.cat(features, dim=-1))
""",
    """
class DenseMLP(nn.Module):   # lazy layers, registered by name
    def __init__(self, num_inputs, num_layers=3, growth=32, num_outputs=1):
        super().__init__()
        self.num_layers = num_layers
        for i in range(num_layers):
            setattr(self, f"dense{i}", nn.Linear(num_inputs + i * growth, growth))
        self.output = nn.Linear(num_inputs + num_layers * growth, num_outputs)

    def forward(self, X):
        for i in range(self.num_layers):
            X = torch.cat([X, torch.relu(getattr(self, f"dense{i}")(X))], 1)
        return self.output(X)
""",
]


@pytest.mark.parametrize("source", RIGHT_MLPS, ids=["feature-list", "named-layers"])
def test_dense_mlp_right(runner, source):
    results = runner.grade(source, "8.7/5")
    assert len(results) == 3
    assert_right(results)


PLAIN_MLP = """
class DenseMLP(nn.Module):   # no concatenation at all
    def __init__(self, num_inputs, num_layers=3, growth=32, num_outputs=1):
        super().__init__()
        layers, width = [], num_inputs
        for _ in range(num_layers):
            layers += [nn.Linear(width, growth), nn.ReLU()]
            width = growth
        self.net = nn.Sequential(*layers, nn.Linear(width, num_outputs))
    def forward(self, X):
        return self.net(X)
"""

ZEROS_INSTEAD_OF_INPUTS = RIGHT_MLPS[1].replace("torch.cat([X, torch.relu(getattr(self, f\"dense{i}\")(X))], 1)",
                                                "torch.cat([X * 0, torch.relu(getattr(self, f\"dense{i}\")(X))], 1)")

OUTPUTS_FIRST = RIGHT_MLPS[1].replace("torch.cat([X, torch.relu(getattr(self, f\"dense{i}\")(X))], 1)",
                                      "torch.cat([torch.relu(getattr(self, f\"dense{i}\")(X)), X], 1)")


@pytest.mark.parametrize("source, failing, words", [
    (PLAIN_MLP, "8.7/5:shapes", ["(10, 32), (32, 32), (32, 32), (32, 1)", "concatenated"]),
    (ZEROS_INSTEAD_OF_INPUTS, "8.7/5:concatenation", ["hidden layer 0 set to zero", "same output for every input"]),
    (OUTPUTS_FIRST, "8.7/5:training", ["differ from those of its weights", "inputs first"]),
    (RIGHT_MLPS[0] + "\n_init = DenseMLP.__init__\n"
     "def _frozen(self, *args, **kwargs):\n    _init(self, *args, **kwargs)\n    self.requires_grad_(False)\n"
     "DenseMLP.__init__ = _frozen\n", "8.7/5:training", ["requires a gradient"]),
], ids=["plain-mlp", "zeros-instead-of-inputs", "outputs-first", "frozen"])
def test_dense_mlp_wrong(runner, source, failing, words):
    assert_wrong(by_id(runner.grade(source, failing, only={failing}))[failing], words)
