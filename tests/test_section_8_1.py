"""8.1 AlexNet: the reference earns full marks; wrong answers lose points and say why."""
import pytest

from d2lgrade.load import load_submission
from d2lgrade.core.sections import find_section
from d2lgrade.testing import assert_reference_earns_full_marks, assert_right, assert_wrong
from reference import section_8_1 as ref

SECTION = find_section("8.1")
MANUAL = {"8.1/1.3", "8.1/2", "8.1/3", "8.1/4", "8.1/5.2", "8.1/6", "8.1/8"}


def by_id(results):
    return {r.id: r for r in results}


def test_reference_earns_full_marks():
    report = assert_reference_earns_full_marks(SECTION, MANUAL)
    training = next(c for c in report.checks if c.id == "8.1/7")
    assert "sigmoid LeNet" in training.message and "stand-in" in training.answer


def test_reference_reproduces_the_catalogue_counts():
    """A cross-check of the reference against figures computed independently from the book's AlexNet."""
    assert ref.alexnet_flop_split == {"conv": 1_790_227_200, "fc": 86_065_152, "unit": "FLOPs"}
    split = ref.alexnet_param_split
    assert split["conv"] + split["fc"] == 46_764_746 and 0.91 < split["fc"] / 46_764_746 < 0.93


def test_starter_is_not_attempted_everywhere(runner):
    cells = [c.source for c in load_submission(SECTION.starter_path).code_cells]
    results = runner.grade("\n\n".join(cells), "8.1")
    assert {r.status for r in results} == {"not_attempted"}, [(r.id, r.status, r.message) for r in results]


# -- 8.1/1 ------------------------------------------------------------------------------------------------
BOOK_ALEXNET = """
class AlexNet(d2l.Classifier):
    def __init__(self, lr=0.1, num_classes=10):
        super().__init__()
        self.save_hyperparameters()
        self.net = nn.Sequential(
            nn.LazyConv2d(96, kernel_size=11, stride=4, padding=1), nn.ReLU(), nn.MaxPool2d(kernel_size=3, stride=2),
            nn.LazyConv2d(256, kernel_size=5, padding=2), nn.ReLU(), nn.MaxPool2d(kernel_size=3, stride=2),
            nn.LazyConv2d(384, kernel_size=3, padding=1), nn.ReLU(),
            nn.LazyConv2d(384, kernel_size=3, padding=1), nn.ReLU(),
            nn.LazyConv2d(256, kernel_size=3, padding=1), nn.ReLU(),
            nn.MaxPool2d(kernel_size=3, stride=2), nn.Flatten(),
            nn.LazyLinear(4096), nn.ReLU(), nn.Dropout(p=0.5),
            nn.LazyLinear(4096), nn.ReLU(), nn.Dropout(p=0.5),
            nn.LazyLinear(num_classes))
"""
RIGHT_PARAMS = [
    BOOK_ALEXNET + """
_model = AlexNet()
_model(torch.zeros(1, 1, 224, 224))
alexnet_param_split = {
    "conv": sum(p.numel() for m in _model.modules() if isinstance(m, nn.Conv2d) for p in m.parameters()),
    "fc": sum(p.numel() for m in _model.modules() if isinstance(m, nn.Linear) for p in m.parameters())}
""",
    # by hand, weights only: biases are far inside the 1 % tolerance
    "alexnet_param_split = {'conv': 96*11*11 + 256*96*25 + 384*256*9 + 384*384*9 + 256*384*9,\n"
    "                       'fc': 6400*4096 + 4096*4096 + 4096*10}\n",
]


@pytest.mark.parametrize("source", RIGHT_PARAMS, ids=["counted", "by-hand-weights"])
def test_param_split_right(runner, source):
    assert_right(runner.grade(source, "8.1/1.1"))


@pytest.mark.parametrize("source, words", [
    ("alexnet_param_split = {'conv': 43_040_778, 'fc': 3_723_968}", ["swapped"]),
    ("alexnet_param_split = {'conv': 3_723_968, 'fc': 46_764_746}", ["whole network's count"]),
    ("alexnet_param_split = {'conv': 3_723_968, 'fc': 43_040_778 + 4096 * 990 + 990}", ["1000 classes", "ImageNet"]),
    ("alexnet_param_split = {'conv': 3.7, 'fc': 43.0}", ["3.7", "6 orders of magnitude below"]),
    ("alexnet_param_split = {'conv': 3_723_968, 'fc': 43_040_777}", ["43,040,777", "nor a rounding of one"]),
], ids=["swapped", "whole-network-as-fc", "imagenet-classes", "in-millions", "precise-miscount"])
def test_param_split_wrong(runner, source, words):
    assert_wrong(runner.grade(source, "8.1/1.1")[0], words)


@pytest.mark.parametrize("source", [
    "alexnet_flop_split = {'conv': 895_113_600, 'fc': 43_032_576, 'unit': 'MACs'}",
    BOOK_ALEXNET + """
from torch.utils.flop_counter import FlopCounterMode
_model = AlexNet()
_model(torch.zeros(1, 1, 224, 224))
with FlopCounterMode(display=False) as _counter:
    _model(torch.zeros(1, 1, 224, 224))
_ops = {str(k): v for k, v in _counter.get_flop_counts()["Global"].items()}
alexnet_flop_split = {"conv": _ops["aten.convolution"], "fc": _ops["aten.addmm"], "unit": "FLOPs"}
""",
], ids=["macs-by-hand", "flop-counter"])
def test_flop_split_right(runner, source):
    assert_right(runner.grade(source, "8.1/1.2"))


@pytest.mark.parametrize("source, words", [
    ("alexnet_flop_split = {'conv': 895_113_600, 'fc': 43_032_576, 'unit': 'FLOPs'}", ['MACs labelled "FLOPs"']),
    ("alexnet_flop_split = {'conv': 1_200_000_000, 'fc': 86_065_152}", ['"unit"']),   # no unit fits both
    ("alexnet_flop_split = {'conv': 86_065_152, 'fc': 1_790_227_200, 'unit': 'FLOPs'}", ["swapped"]),
], ids=["macs-called-flops", "no-unit", "swapped"])
def test_flop_split_wrong(runner, source, words):
    assert_wrong(runner.grade(source, "8.1/1.2")[0], words)


# -- 8.1/5 ------------------------------------------------------------------------------------------------
RIGHT_SMALL = [
    """
class SmallAlexNet(nn.Module):   # two convolutions, functional style for the head
    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                                      nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2))
        self.fc = nn.Linear(32 * 7 * 7, 10)
    def forward(self, X):
        return self.fc(self.features(X).flatten(1))
""",
    """
def SmallAlexNet():   # a factory function returning a Sequential
    return nn.Sequential(nn.LazyConv2d(24, 5, padding=2), nn.ReLU(), nn.AvgPool2d(2),
                         nn.LazyConv2d(48, 3), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                         nn.LazyLinear(64), nn.ReLU(), nn.Dropout(0.3), nn.LazyLinear(10))
""",
]


@pytest.mark.parametrize("source", RIGHT_SMALL, ids=["module", "factory"])
def test_small_alexnet_right(runner, source):
    assert_right(runner.grade(source, "8.1/5.1"))


@pytest.mark.parametrize("source, words", [
    ("def SmallAlexNet():\n    return nn.Sequential(nn.Flatten(), nn.Linear(784, 256), nn.ReLU(), nn.Linear(256, 10))",
     ["two or more convolutions", "Linear"]),
    (BOOK_ALEXNET.replace("class AlexNet", "class SmallAlexNet") + """
    def forward(self, X):
        return self.net(F.interpolate(X, size=224))
""", ["46,764,746 parameters", "simplify it"]),
    (RIGHT_SMALL[0].replace("nn.Linear(32 * 7 * 7, 10)", "nn.Linear(32 * 7 * 7, 5)"), ["[2, 5]", "expected [2, 10]"]),
], ids=["no-convolutions", "the-book-alexnet-resizing", "five-classes"])
def test_small_alexnet_wrong(runner, source, words):
    assert_wrong(runner.grade(source, "8.1/5.1")[0], words)


RIGHT_28 = [
    """
class AlexNet28(d2l.Classifier):   # three convolutions, one pooling, dropout between the dense layers
    def __init__(self, lr=0.1, num_classes=10):
        super().__init__()
        self.save_hyperparameters()
        self.net = nn.Sequential(
            nn.LazyConv2d(32, 3, padding=1), nn.ReLU(), nn.LazyConv2d(32, 3, padding=1), nn.ReLU(),
            nn.MaxPool2d(2), nn.LazyConv2d(64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
            nn.LazyLinear(128), nn.ReLU(), nn.Dropout(0.5), nn.LazyLinear(num_classes))
""",
    """
class AlexNet28(nn.Module):   # AlexNet's five convolutions, strided first layer, Dropout2d on the features
    def __init__(self):
        super().__init__()
        widths = [1, 48, 96, 128, 128, 96]
        layers = []
        for i in range(5):
            layers += [nn.Conv2d(widths[i], widths[i + 1], 3, stride=2 if i == 0 else 1, padding=1), nn.ReLU()]
        self.features = nn.Sequential(*layers, nn.Dropout2d(0.2), nn.MaxPool2d(2))
        self.classifier = nn.Sequential(nn.Flatten(), nn.Linear(96 * 7 * 7, 256), nn.ReLU(), nn.Linear(256, 10))
    def forward(self, X):
        return self.classifier(self.features(X))
""",
]


@pytest.mark.parametrize("source", RIGHT_28, ids=["d2l-three-convs", "five-convs-dropout2d"])
def test_alexnet_28_right(runner, source):
    assert_right(runner.grade(source, "8.1/5.2"))


@pytest.mark.parametrize("source, words", [
    (BOOK_ALEXNET.replace("class AlexNet", "class AlexNet28") + """
    def forward(self, X):
        return self.net(F.interpolate(X, size=224))
""", ["1.88 GFLOPs per 28×28 image", "resize its input"]),
    (RIGHT_28[0].replace("nn.Dropout(0.5), ", ""), ["no dropout layer"]),
    (RIGHT_SMALL[0].replace("SmallAlexNet", "AlexNet28"), ["2 convolution(s)", "at least three"]),
], ids=["resizes-to-224", "no-dropout", "two-convolutions"])
def test_alexnet_28_wrong(runner, source, words):
    assert_wrong(runner.grade(source, "8.1/5.2")[0], words)


# What the forward pass computes decides, not the declared modules: an activation swapped for nn.Identity or
# skipped in forward loses the points; F.relu, an in-place ReLU or a block of one's own keeps them.
ACTIVATED_OTHERWISE = """
class Bent(nn.Module):   # the student's own activation block
    def forward(self, X):
        return X * (X > 0)

class SmallAlexNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.c1, self.c2 = nn.Conv2d(1, 8, 3, padding=1), nn.Conv2d(8, 16, 3, padding=1)
        self.act, self.pool = Bent(), nn.MaxPool2d(2)
        self.fc1, self.fc2 = nn.Linear(16 * 7 * 7, 32), nn.Linear(32, 10)
    def forward(self, X):
        X = self.pool(F.relu(self.c1(X)))
        X = self.pool(nn.ReLU(inplace=True)(self.c2(X)))
        return self.fc2(self.act(self.fc1(X.flatten(1))))
"""


def test_activations_written_otherwise_keep_the_marks(runner):
    assert_right(runner.grade(ACTIVATED_OTHERWISE, "8.1/5.1"))


@pytest.mark.parametrize("source, check, words", [
    (RIGHT_SMALL[1].replace("nn.LazyConv2d(48, 3), nn.ReLU()", "nn.LazyConv2d(48, 3), nn.Identity()"), "8.1/5.1",
     ["`3` (Conv2d) reaches `7` (Linear)", "no activation"]),
    (ACTIVATED_OTHERWISE.replace("self.act(self.fc1(X.flatten(1)))", "self.fc1(X.flatten(1))"), "8.1/5.1",
     ["`fc1` (Linear) reaches `fc2` (Linear)"]),
    (RIGHT_28[0].replace("nn.LazyLinear(128), nn.ReLU()", "nn.LazyLinear(128), nn.Identity()"), "8.1/5.2",
     ["`net.9` (Linear) reaches `net.12` (Linear)"]),
    (RIGHT_28[0].replace("nn.LazyConv2d(64, 3, padding=1), nn.ReLU()", "nn.LazyConv2d(64, 3, padding=1), nn.Sigmoid()"),
     "8.1/5.2", ["`net.5` (Conv2d) is bent only by sigmoid", "uses ReLU"]),
], ids=["identity-after-a-convolution", "skipped-in-forward", "identity-in-the-head", "sigmoid-for-a-relu"])
def test_a_missing_activation_loses_the_marks(runner, source, check, words):
    assert_wrong(runner.grade(source, check)[0], words)


# -- 8.1/7 ------------------------------------------------------------------------------------------------
def lenet(act="nn.ReLU()", pool="nn.MaxPool2d(2)", dropout="nn.Dropout(0.3), "):
    return f"""
class LeNetDropout(nn.Module):
    def __init__(self, num_classes=10):
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(1, 6, 5, padding=2), {act}, {pool}, nn.Conv2d(6, 16, 5), {act}, {pool}, nn.Flatten(),
            nn.Linear(400, 120), {act}, {dropout}nn.Linear(120, 84), {act}, {dropout}nn.Linear(84, num_classes))
    def forward(self, X):
        return self.net(X)
"""


RIGHT_DROPOUT = [
    lenet(),
    """
class LeNetDropout(d2l.Classifier):   # average pooling kept, one dropout layer, lazy layers
    def __init__(self, lr=0.1, num_classes=10):
        super().__init__()
        self.save_hyperparameters()
        self.net = nn.Sequential(
            nn.LazyConv2d(6, kernel_size=5, padding=2), nn.ReLU(), nn.AvgPool2d(kernel_size=2, stride=2),
            nn.LazyConv2d(16, kernel_size=5), nn.ReLU(), nn.AvgPool2d(kernel_size=2, stride=2), nn.Flatten(),
            nn.LazyLinear(120), nn.ReLU(), nn.LazyLinear(84), nn.ReLU(), nn.Dropout(0.1), nn.LazyLinear(num_classes))
""",
]


@pytest.mark.parametrize("source", RIGHT_DROPOUT, ids=["max-pool-two-dropouts", "d2l-avg-pool-one-dropout"])
def test_lenet_dropout_right(runner, source):
    assert_right(runner.grade(source, "8.1/7"))


@pytest.mark.parametrize("source, failing, words", [
    (lenet(act="nn.Sigmoid()"), "8.1/7:layers", ["nn.Sigmoid", "replace each with nn.ReLU"]),
    (lenet(dropout=""), "8.1/7:layers", ["no nn.Dropout layer"]),
    (lenet().replace("nn.Linear(400, 120), nn.ReLU()", "nn.Linear(400, 120), nn.Identity()"), "8.1/7:layers",
     ["`net.7` (Linear) reaches `net.10` (Linear)", "apply a nonlinearity (ReLU)"]),
    (lenet(act="nn.Sigmoid()", pool="nn.AvgPool2d(2)"), "8.1/7", ["no better than", "sigmoid LeNet"]),
], ids=["sigmoid-kept", "no-dropout", "identity-for-a-relu", "sigmoid-trains-slowly"])
def test_lenet_dropout_wrong(runner, source, failing, words):
    # a failing layer check is graded alone: no need to train the variant
    assert_wrong(by_id(runner.grade(source, failing if ":" in failing else "8.1/7", only={failing}))[failing], words)


SCORES_CHEAT = lenet(act="nn.Sigmoid()", pool="nn.AvgPool2d(2)") + """
def _forward(self, X):   # a sigmoid LeNet whose prediction-time scores are not what its layers compute
    scores = self.net(X)
    return scores if self.training else 100 * scores.softmax(1)
LeNetDropout.forward = _forward
"""


def test_training_is_never_judged_on_the_scores_the_runtime_returns(runner):
    """Neither the grader's LeNets nor the network rebuilt from the layers the training ran reproduce these
    scores: the check waits for an instructor instead of judging them."""
    result = by_id(runner.grade(SCORES_CHEAT, "8.1/7", only={"8.1/7"}))["8.1/7"]
    assert result.status == "manual" and result.points == 0, (result.status, result.message)
    assert "could not rebuild the trained `LeNetDropout(num_classes=10)`" in result.message, result.message
