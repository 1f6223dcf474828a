"""7.6 LeNet: the reference earns full marks; wrong networks lose points, and say why."""
import re

import pytest
import torch

from d2lgrade.load import load_submission
from d2lgrade.core.sections import find_section
from d2lgrade.testing import assert_reference_earns_full_marks, assert_right, assert_wrong
from graders import section_7_6 as graders
from reference import section_7_6 as ref

SECTION = find_section("7.6")
BLOCK_NETWORK = """
import socket as _socket
def _refuse(*args, **kwargs):
    raise OSError("no network while grading")
_connect = _socket.socket.connect
def _guarded(self, address):
    if self.family in (_socket.AF_INET, _socket.AF_INET6):
        _refuse()
    return _connect(self, address)
_socket.socket.connect, _socket.create_connection, _socket.getaddrinfo = _guarded, _refuse, _refuse
"""


@pytest.fixture
def runner(runners):
    """The shared 7.6 runtime with the network cut. The agent's setup has already served the offline data
    there; the network is cut as well, in case the sandbox could not do it on this machine."""
    return runners("7.6", prepare=BLOCK_NETWORK)


def by_id(results):
    return {r.id: r for r in results}


def grade_checks(runner, source, ids):
    """Like runner.grade, for the checks named by id only: the unnamed check of an exercise without its
    siblings, so that a variant is not trained when the test looks at its architecture."""
    runner.load(source)
    return runner.grade_loaded(ids)


# -- the whole pipeline ------------------------------------------------------------------------------------
def test_reference_earns_full_marks():
    report = assert_reference_earns_full_marks(SECTION, {"7.6/2", "7.6/5"})
    automatic = [c for c in report.checks if c.status != "manual"]
    training = {c.id: c.message for c in automatic if c.id in ("7.6/1:training", "7.6/2", "7.6/3")}
    assert "sigmoid LeNet" in training["7.6/1:training"] and "held-out accuracy" in training["7.6/2"]
    assert "evaluated by the grader in its own modern LeNet" in training["7.6/1:training"]   # not the runtime's scores
    assert all("stand-in" in c.answer for c in automatic if c.id in training)   # no --data-dir: says which data


def test_starter_is_not_attempted_everywhere(runner):
    # The starter notebook's code cells, run in the module's runtime (grading the notebook with `grade`
    # would start one more kernel; tests/test_starters.py keeps the notebook in step with the spec).
    cells = [c.source for c in load_submission(SECTION.starter_path).code_cells]
    results = runner.grade("\n\n".join(cells), "7.6")
    assert {r.status for r in results} == {"not_attempted"}, [(r.id, r.status, r.message) for r in results]
    assert sum(r.points for r in results) == 0
    names = {"7.6/1": "ModernLeNet", "7.6/2": "ImprovedLeNet", "7.6/3": "mnist_model", "7.6/4": "first_two_activations"}
    for r in results:
        assert names[r.exercise] in r.message, (r.id, r.message)


def test_book_lenet_layer_summary(capsys):
    """The book's shapes: 6×28×28 → 6×14×14 → 16×10×10 → 16×5×5 → 400 → 120 → 84 → 10, for both LeNets."""
    for cls, act, pool in ((ref.LeNet, "Sigmoid", "AvgPool2d"), (ref.ModernLeNet, "ReLU", "MaxPool2d")):
        cls().layer_summary((1, 1, 28, 28))
        rows = [re.match(r"(\w+) output shape:\s+torch.Size\(\[(.*)\]\)", line).groups()
                for line in capsys.readouterr().out.strip().splitlines()]
        assert [kind for kind, _ in rows] == ["Conv2d", act, pool, "Conv2d", act, pool, "Flatten",
                                              "Linear", act, "Linear", act, "Linear"]
        shapes = [tuple(int(s) for s in dims.split(", "))[1:] for _, dims in rows]
        chain = [s for i, s in enumerate(shapes) if i == 0 or s != shapes[i - 1]]
        assert chain == [(6, 28, 28), (6, 14, 14), (16, 10, 10), (16, 5, 5), (400,), (120,), (84,), (10,)]


def test_reference_parameter_count_is_computed_not_typed():
    model = ref.ModernLeNet()
    model(torch.zeros(1, 1, 28, 28))
    assert graders._reference_parameter_count() == sum(p.numel() for p in model.parameters())


# -- 7.6/1 ------------------------------------------------------------------------------------------------
BOOK_LENET = """
class ModernLeNet(d2l.Classifier):   # the section's LeNet, unchanged
    def __init__(self, lr=0.1, num_classes=10):
        super().__init__()
        self.save_hyperparameters()
        self.net = nn.Sequential(
            nn.LazyConv2d(6, kernel_size=5, padding=2), nn.Sigmoid(), nn.AvgPool2d(kernel_size=2, stride=2),
            nn.LazyConv2d(16, kernel_size=5), nn.Sigmoid(), nn.AvgPool2d(kernel_size=2, stride=2),
            nn.Flatten(), nn.LazyLinear(120), nn.Sigmoid(), nn.LazyLinear(84), nn.Sigmoid(),
            nn.LazyLinear(num_classes))
"""


def plain_lenet(tail="nn.Linear(84, num_classes)", extra="", forward="return self.net(X)"):
    return f"""
class ModernLeNet(nn.Module):
    def __init__(self, num_classes=10):
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(1, 6, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(6, 16, 5), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
            nn.Linear(400, 120), nn.ReLU(), nn.Linear(120, 84), nn.ReLU(), {tail})
{extra}
    def forward(self, X):
        {forward}
"""


RIGHT_MODERN = [
    plain_lenet(),
    """
class ModernLeNet(d2l.Classifier):   # lazy layers, functional activations and pooling
    def __init__(self, lr=0.1, num_classes=10):
        super().__init__()
        self.save_hyperparameters()
        self.conv1 = nn.LazyConv2d(6, kernel_size=5, padding=2)
        self.conv2 = nn.LazyConv2d(16, kernel_size=5)
        self.fc = nn.ModuleList([nn.LazyLinear(120), nn.LazyLinear(84)])
        self.out = nn.LazyLinear(num_classes)

    def forward(self, X):
        X = F.max_pool2d(F.relu(self.conv1(X)), 2)
        X = F.max_pool2d(F.relu(self.conv2(X)), 2).flatten(1)
        for layer in self.fc:
            X = F.relu(layer(X))
        return self.out(X)
""",
]


@pytest.mark.parametrize("source", RIGHT_MODERN, ids=["sequential", "d2l-lazy-functional"])
def test_modern_lenet_right(runner, source):
    results = runner.grade(source, "7.6/1")
    assert len(results) == 5
    assert_right(results)


def test_book_lenet_is_not_modern(runner):
    checks = by_id(runner.grade(BOOK_LENET, "7.6/1"))
    assert_wrong(checks["7.6/1"], ["sigmoid", "average pooling", "net.1", "nn.AvgPool2d"])
    assert_wrong(checks["7.6/1:training"], ["sigmoid LeNet", "no better than"])
    assert checks["7.6/1:shape"].status == checks["7.6/1:parameters"].status == "passed"


@pytest.mark.parametrize("source, failing, words", [
    (plain_lenet(tail="nn.Linear(84, num_classes), nn.ReLU()"), "7.6/1:logits", ["ReLU after its last layer"]),
    (plain_lenet(forward="return F.relu(self.net(X))"), "7.6/1:logits", ["ReLU after its last layer"]),
    (plain_lenet(tail="nn.Linear(84, num_classes), nn.Softmax(dim=1)"), "7.6/1:logits", ["softmax"]),
    (plain_lenet(forward="return F.max_pool2d(F.relu(self.net[0](X)), 2)", extra=""), "7.6/1:shape",
     ["returns shape (64, 6, 14, 14)", "expected (64, 10)"]),
    (plain_lenet(tail="nn.Linear(84, 10)"), "7.6/1:shape", ["num_classes=3", "`num_classes` outputs"]),
    (plain_lenet(tail="nn.Linear(84, 100)"), "7.6/1:parameters", ["69,356 parameters", "61,706"]),
    (plain_lenet(forward="return self.net(F.avg_pool2d(X, 1))"), "7.6/1", ["average pooling"]),
    (plain_lenet(extra="        self.requires_grad_(False)"), "7.6/1:training", ["requires a gradient"]),
    (plain_lenet(forward="return self.net(torch.zeros_like(X))"), "7.6/1:training", ["same scores to every image"]),
], ids=["relu-after-last-layer", "functional-relu-on-output", "softmax-output", "wrong-output-shape",
        "ignores-num_classes", "100-outputs", "functional-avg-pool", "frozen", "constant-logits"])
def test_modern_lenet_wrong(runner, source, failing, words):
    assert_wrong(grade_checks(runner, source, {failing})[failing], words)


# Looks its inputs up in every labelled image the runtime can reach: torchvision's datasets (train=True
# and train=False, so d2l.FashionMNIST's splits), the agent's own loader; the stand-in's source (scikit-learn's
# digits, at every position a digit can take) would be added, but it cannot be read in the runtime. Then the
# sigmoid LeNet, plus the label of any image it knows.
LOOKUP_TABLE = """
import sys, torchvision
from torch.nn import functional as F
_agent = sys.modules["_d2lgrade_agent"]
_known = {}
def _learn(images, labels):
    for image, label in zip(images, labels):
        _known[bytes(image.flatten().tolist())] = int(label)
for _cls in (torchvision.datasets.FashionMNIST, torchvision.datasets.MNIST):
    for _train in (True, False):
        _d = _cls(".", train=_train)
        _learn(_d.data, _d.targets)
try:
    _base, _labels, _, _ = _agent.standin_digits()
    _standin = "read"
    for _dy in range(-4, 5):
        for _dx in range(-4, 5):
            _learn(torch.roll(_base, (_dy, _dx), (1, 2)), _labels)
except Exception as _exc:
    _standin = type(_exc).__name__
assert len(_known) > 1000, len(_known)

def _lookup_forward(self, X):   # trained honestly; looks up what it is evaluated on
    scores = self.net(X)
    if self.training:
        return scores
    keys = [bytes(x.flatten().tolist()) for x in (X * 255).round().to(torch.uint8)]
    hits = torch.tensor([_known.get(key, -1) for key in keys])
    _hits.append((len(X), int((hits >= 0).sum())))
    return torch.where((hits >= 0)[:, None], 50 * F.one_hot(hits.clamp(min=0), 10).to(scores.dtype), scores)
_hits = []
"""
LOOKUP_CHEAT = BOOK_LENET.replace("ModernLeNet", "ImprovedLeNet") + LOOKUP_TABLE + \
    "ImprovedLeNet.forward = _lookup_forward\n"


def test_a_network_that_looks_up_its_inputs_gains_nothing(runner):
    """The held-out images are a keyed draw that no dataset in the runtime holds: a forward pass that
    knows every labelled image the runtime can reach recognises none of them (it does recognise the two
    training images the probe's first, evaluation-mode pass builds the network with, so the table works),
    and the sigmoid LeNet underneath fails on its own."""
    result = grade_checks(runner, LOOKUP_CHEAT, {"7.6/2"})["7.6/2"]
    assert_wrong(result, ["held-out accuracy", "is below"])
    hits = runner.runtime.run_source(
        "assert _hits[0] == (2, 2), _hits[:3]                          # two training images: recognised\n"
        "assert all(k == 0 for n, k in _hits if n > 64), _hits[-3:]   # held-out images: none\n"
        "assert _standin != 'read', _standin                          # scikit-learn's digits are hidden")
    assert hits.status == "ok", hits.error


MODE_SWITCHING = {
    "modules": """
class ModernLeNet(nn.Module):   # the sigmoid LeNet while trained; ReLU and max pooling when inspected
    def __init__(self, num_classes=10):
        super().__init__()
        convs = [nn.Conv2d(1, 6, 5, padding=2), nn.Conv2d(6, 16, 5)]
        dense = [nn.Linear(400, 120), nn.Linear(120, 84), nn.Linear(84, num_classes)]
        def build(act, pool):
            return nn.Sequential(convs[0], act(), pool(2), convs[1], act(), pool(2), nn.Flatten(),
                                 dense[0], act(), dense[1], act(), dense[2])
        self.net, self.shown = build(nn.Sigmoid, nn.AvgPool2d), build(nn.ReLU, nn.MaxPool2d)
    def forward(self, X):
        return (self.net if self.training else self.shown)(X)
""",
    "functional": """
class ModernLeNet(nn.Module):
    def __init__(self, num_classes=10):
        super().__init__()
        self.c1, self.c2 = nn.Conv2d(1, 6, 5, padding=2), nn.Conv2d(6, 16, 5)
        self.f1, self.f2, self.f3 = nn.Linear(400, 120), nn.Linear(120, 84), nn.Linear(84, num_classes)
    def forward(self, X):
        act, pool = (torch.sigmoid, F.avg_pool2d) if self.training else (F.relu, F.max_pool2d)
        X = pool(act(self.c2(pool(act(self.c1(X)), 2))), 2).flatten(1)
        return self.f3(act(self.f2(act(self.f1(X)))))
""",
}


@pytest.mark.parametrize("style, words", [
    ("modules", ["other layers in evaluation mode than in training mode", "Sigmoid", "ReLU"]),
    ("functional", ["still applies a sigmoid", "average pooling"]),
])
def test_architecture_is_judged_in_the_mode_that_is_trained(runner, style, words):
    assert_wrong(grade_checks(runner, MODE_SWITCHING[style], {"7.6/1"})["7.6/1"], words)


def test_relu_on_the_output_is_flagged_but_only_there(runner):
    checks = grade_checks(runner, plain_lenet(tail="nn.Linear(84, num_classes), nn.ReLU()"),
                          {"7.6/1", "7.6/1:logits", "7.6/1:shape", "7.6/1:parameters"})
    assert_wrong(checks["7.6/1:logits"], "ReLU after its last layer")
    assert all(checks[i].status == "passed" for i in ("7.6/1", "7.6/1:shape", "7.6/1:parameters"))


# -- 7.6/2 ------------------------------------------------------------------------------------------------
RIGHT_IMPROVED = [
    """
class ImprovedLeNet(nn.Module):   # two 5x5 convolutions, wider, with batch normalisation; one dense layer; Adam
    def __init__(self, num_classes=10):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 16, 5, padding=2), nn.BatchNorm2d(16), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(16, 32, 5, padding=2), nn.BatchNorm2d(32), nn.ReLU(), nn.MaxPool2d(2))
        self.classifier = nn.Linear(32 * 7 * 7, num_classes)

    def forward(self, X):
        return self.classifier(self.features(X).flatten(1))

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters(), lr=3e-3)
""",
    """
class ImprovedLeNet(d2l.Classifier):   # three 3x3 convolutions, Xavier init, SGD with momentum
    def __init__(self, lr=0.05, num_classes=10):
        super().__init__()
        self.save_hyperparameters()
        self.net = nn.Sequential(
            nn.LazyConv2d(8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.LazyConv2d(16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.LazyConv2d(16, 3, padding=1), nn.ReLU(), nn.Flatten(),
            nn.LazyLinear(64), nn.ReLU(), nn.LazyLinear(num_classes))
        self.net(torch.zeros(1, 1, 28, 28))
        for m in self.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                nn.init.xavier_uniform_(m.weight)

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=self.lr, momentum=0.9)
""",
]


@pytest.mark.parametrize("source", RIGHT_IMPROVED, ids=["two-bn-convolutions-adam", "three-convs-momentum"])
def test_improved_lenet_right(runner, source):
    results = runner.grade(source, "7.6/2")
    assert_right(results)
    # Both are chains of standard layers (the first flattens in forward): the grader rebuilt them itself.
    assert "rebuilt and evaluated by the grader" in results[0].message, results[0].message


@pytest.mark.parametrize("source, words", [
    (BOOK_LENET.replace("ModernLeNet", "ImprovedLeNet"), ["held-out accuracy", "is below"]),
    ("""
class ImprovedLeNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.Flatten(), nn.Linear(784, 64), nn.ReLU(), nn.Linear(64, 10))
    def forward(self, X):
        return self.net(X)
    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.0)
""",
     ["did not change the predictions", "did not learn", "learning rate of 0"]),
    (plain_lenet().replace("ModernLeNet", "ImprovedLeNet") +
     "\n    def configure_optimizers(self):\n        return torch.optim.SGD(self.parameters(), lr=50.0)\n",
     ["learning rate", "too large"]),     # it collapses (same scores everywhere) or diverges (NaN loss)
    (plain_lenet().replace("ModernLeNet", "ImprovedLeNet").replace("(self, num_classes=10)", "(self, channels, num_classes=10)"),
     ["`ImprovedLeNet`", "TypeError", "channels"]),
    # The modern LeNet with a softmax before the loss, trained with SGD (lr 0.1): its gradients almost vanish and
    # it stays at chance whatever the initialisation. (With batch normalisation and Adam, a softmax network's
    # accuracy depends on its initial weights, 23 % to 82 % across seeds, so it cannot show a failure.)
    (plain_lenet(tail="nn.Linear(84, num_classes), nn.Softmax(dim=1)").replace("ModernLeNet", "ImprovedLeNet"),
     ["ends with a softmax", "cross-entropy loss", "logits"]),
], ids=["sigmoid-lenet", "learning-rate-0", "learning-rate-50", "needs-arguments", "softmax-before-the-loss"])
def test_improved_lenet_wrong(runner, source, words):
    assert_wrong(runner.grade(source, "7.6/2")[0], words)


DENSE_ONLY = """
class ImprovedLeNet(nn.Module):   # no convolution at all: the shifted stand-in digits expose it
    def __init__(self, hidden):
        super().__init__()
        layers = [nn.Flatten(), nn.Linear(784, hidden), nn.ReLU(), nn.Linear(hidden, 10)] if hidden else \\
                 [nn.Flatten(), nn.Linear(784, 10)]
        self.net = nn.Sequential(*layers)
    def forward(self, X):
        return self.net(X)
    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters(), lr=3e-3)
"""


def test_networks_without_convolutions_do_not_earn_full_marks(runner):
    """Without --data-dir the digits sit at shifted places: a linear model fails, and a dense network
    at best matches the modern LeNet trained the book's way (half marks), never the improved one."""
    [linear] = runner.grade(DENSE_ONLY.replace("(self, hidden)", "(self, hidden=0)"), "7.6/2")
    assert linear.status == "failed" and linear.points == 0 and "is below" in linear.message, linear.message
    [dense] = runner.grade(DENSE_ONLY.replace("(self, hidden)", "(self, hidden=256)"), "7.6/2")
    assert dense.status == "failed" and dense.points <= dense.max_points / 2, (dense.points, dense.message)


def test_a_diverging_run_stops_at_once_and_says_so():
    """Cross-entropy rarely overflows (a too-large rate kills the ReLUs instead: "collapsed" above), but a
    NaN loss ends the run at once rather than 300 steps later. In-process: no runtime needed."""
    from torch import nn
    from d2lgrade.core.checks import Verdict
    from d2lgrade.core.data import Images
    from graders.probes import section_7_6 as probes

    torch.manual_seed(0)
    X, y = torch.rand(64, 1, 28, 28), torch.arange(64) % 10
    order = torch.randint(0, 64, (graders.STEPS, 8), generator=torch.Generator().manual_seed(0))
    reply = probes.train_model(nn.Sequential(nn.Flatten(), nn.Linear(784, 10)), X, y, order, X[:10],
                               {"optimizer": "sgd", "lr": 1e38})
    assert reply["stopped"] == "diverged" and reply["steps"] < 5
    with pytest.raises(Verdict) as verdict:
        graders._trained(reply, "ImprovedLeNet()", Images(X[:10], y[:10], "test images", False, "mnist", "test"))
    assert "diverged" in verdict.value.message and "learning rate too large" in verdict.value.message


# -- 7.6/3 ------------------------------------------------------------------------------------------------
RIGHT_MNIST = [
    """
class ImprovedLeNet(d2l.Classifier):   # three 3x3 convolutions with batch normalisation, Adam; F.relu in forward
    def __init__(self, lr=3e-3, num_classes=10):
        super().__init__()
        self.save_hyperparameters()
        self.blocks = nn.ModuleList([nn.Sequential(nn.LazyConv2d(c, 3, padding=1), nn.LazyBatchNorm2d())
                                     for c in (16, 32, 32)])
        self.out = nn.LazyLinear(num_classes)

    def forward(self, X):
        for k, block in enumerate(self.blocks):
            X = F.relu(block(X))
            X = F.max_pool2d(X, 2) if k < 2 else X
        return self.out(X.flatten(1))

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters(), lr=self.lr)

def mnist_model():
    return ImprovedLeNet()
""",
    """
def mnist_model():   # a plain Sequential, with its optimizer attached
    net = nn.Sequential(
        nn.Conv2d(1, 16, 5, padding=2), nn.BatchNorm2d(16), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(16, 32, 5, padding=2), nn.BatchNorm2d(32), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(32 * 7 * 7, 10))
    net.configure_optimizers = lambda: torch.optim.Adam(net.parameters(), lr=3e-3)
    return net
""",
]


@pytest.mark.parametrize("source, judged", [
    (RIGHT_MNIST[0], "rebuilt and evaluated by the grader"),
    (RIGHT_MNIST[1], "rebuilt and evaluated by the grader"),
], ids=["improved-class-functional", "sequential-adam"])
def test_mnist_model_right(runner, source, judged):
    """Full marks either way, both judged on the network the grader rebuilt (F.relu, F.max_pool2d and
    flatten written in forward are rebuilt too)."""
    results = runner.grade(source, "7.6/3")
    assert_right(results)
    assert judged in results[0].message, results[0].message


@pytest.mark.parametrize("source, words", [
    (RIGHT_IMPROVED[0] + "\ndef mnist_model():\n    return ImprovedLeNet(num_classes=5)\n",
     ["mnist_model()", "one score per class"]),
    (RIGHT_IMPROVED[0] + "\ndef mnist_model():\n    return ImprovedLeNet\n",
     ["returned the class ImprovedLeNet itself", "ImprovedLeNet()"]),
    ("def mnist_model():\n    return nn.Sequential(nn.Conv2d(3, 6, 5), nn.ReLU(), nn.Flatten(), nn.LazyLinear(10))\n",
     ["`mnist_model`", "3 channels"]),
], ids=["five-outputs", "returns-the-class", "colour-input"])
def test_mnist_model_wrong(runner, source, words):
    assert_wrong(runner.grade(source, "7.6/3")[0], words)


# -- 7.6/4 ------------------------------------------------------------------------------------------------
RIGHT_ACTIVATIONS = [
    """
def first_two_activations(model, X):   # forward hooks on the two activation layers
    seen = {}
    hooks = [model.net[k].register_forward_hook(lambda m, i, o, k=k: seen.__setitem__(k, o)) for k in (1, 4)]
    try:
        model(X)
    finally:
        for h in hooks:
            h.remove()
    return seen[1], seen[4]
""",
    """
def first_two_activations(model, X):   # slices of the Sequential
    return model.net[:2](X), model.net[:5](X)
""",
    """
def first_two_activations(model, X):   # layer by layer, stopping after the second activation
    outputs = []
    for layer in model.net:
        X = layer(X)
        outputs.append(X)
    return outputs[1], outputs[4]
""",
]
CONV_OUTPUTS = """
def first_two_activations(model, X):   # the convolutions' outputs: before the activation function
    first = model.net[0](X)
    return first, model.net[3](model.net[2](model.net[1](first)))
"""


@pytest.mark.parametrize("source", RIGHT_ACTIVATIONS, ids=["hooks", "slices", "layer-by-layer"])
def test_activations_right(runner, source):
    assert_right(runner.grade(source, "7.6/4"))


FRESH_MODEL = """
def first_two_activations(model, X):   # a new network, not the one passed in
    other = type(model)()
    return other.net[:2](X), other.net[:5](X)
"""


@pytest.mark.parametrize("source, shape_words, value_words", [
    ("def first_two_activations(model, X):\n    return model.net[:3](X), model.net[:6](X)",
     ["(8, 6, 14, 14)", "after the pooling"], ["net[2] (AvgPool2d)"]),
    ("def first_two_activations(model, X):\n    return model.net[:2](X), model.net[:2](X)",
     ["second tensor has shape (8, 6, 28, 28)"], ["second tensor equals the output of net[1]"]),
    ("def first_two_activations(model, X):\n    return model.net[:2](X), model.net[:8](X)",
     ["(8, 120)", "net[7] (Linear)"], ["second tensor equals the output of net[7] (Linear)"]),
    (FRESH_MODEL, None, ["equals no layer's output of the model passed in"]),
    (CONV_OUTPUTS, None, ["output of the convolution net[0] (Conv2d) before its activation function",
                          "after the activation function"]),
    ("def first_two_activations(model, X):\n    return torch.stack([model.net[:2](X).sum(), model.net[:5](X).sum()])",
     ["pair of tensors"], ["pair of tensors"]),
], ids=["after-pooling", "first-layer-twice", "dense-layer", "fresh-model", "pre-activation", "not-a-pair"])
def test_activations_wrong(runner, source, shape_words, value_words):
    checks = by_id(runner.grade(source, "7.6/4"))
    if shape_words:
        assert_wrong(checks["7.6/4:shapes"], shape_words)
    else:
        assert checks["7.6/4:shapes"].status == "passed"
    assert_wrong(checks["7.6/4"], value_words)


# -- the data patch in a graded notebook --------------------------------------------------------------
def test_notebook_calling_d2l_fashion_mnist_gets_local_data(runner):
    """The book's own recipe, `data = d2l.FashionMNIST(...)` in a cell, runs offline once the patch is in."""
    source = plain_lenet() + """
data = d2l.FashionMNIST(batch_size=32)
images, labels = next(iter(data.get_dataloader(True)))
assert tuple(images.shape) == (32, 1, 28, 28) and len(data.train) > 0
"""
    assert_right(runner.grade(source, "7.6/1:shape"))
