"""8.5 Batch normalization: the reference earns full marks; wrong layers and networks lose points, and say why."""
import pytest
import torch
from torch import nn

from d2lgrade.load import load_submission
from d2lgrade.core.sections import find_section
from d2lgrade.testing import assert_reference_earns_full_marks, assert_right, assert_wrong
from graders import section_8_5 as graders

SECTION = find_section("8.5")
MANUAL = {"8.5/1", "8.5/2", "8.5/3", "8.5/5", "8.5/6", "8.5/7"}


def grade_one(runner, source, check_id):
    """The one check `check_id` (runner.grade with an exercise id runs all of that exercise's checks)."""
    runner.load(source)
    return runner.grade_loaded([check_id])[check_id]


def test_reference_earns_full_marks():
    report = assert_reference_earns_full_marks(SECTION, MANUAL)
    training = next(c for c in report.checks if c.id == "8.5/2:training")
    assert "without batch norm" in training.message and "stand-in" in training.message


def test_starter_is_not_attempted_everywhere(runner):
    cells = [c.source for c in load_submission(SECTION.starter_path).code_cells]
    results = runner.grade("\n\n".join(cells), "8.5")
    assert {r.status for r in results} == {"not_attempted"}, [(r.id, r.status, r.message) for r in results]


def test_the_graders_formula_is_nn_batchnorm():
    """The expected outputs (unbiased running variance) are nn.BatchNorm1d/2d's, in both modes."""
    torch.manual_seed(0)
    for shape, layer in (((6, 3), nn.BatchNorm1d(3)), ((5, 4, 3, 2), nn.BatchNorm2d(4))):
        batches = [torch.randn(*shape) * 2 + 1 for _ in range(3)]
        eval_X = torch.randn(*shape)
        train, evaluated = graders.normalised(batches, eval_X)
        for X, want in zip(batches, train):
            torch.testing.assert_close(layer(X).double(), want, rtol=1e-5, atol=1e-5)
        layer.eval()
        torch.testing.assert_close(layer(eval_X).double(), evaluated, rtol=1e-5, atol=1e-5)


# -- 8.5/1 ------------------------------------------------------------------------------------------------
IN_PLACE = """
def without_bias(net):   # in place: drop the parameter where batch norm follows
    for layer, following in zip(net, list(net)[1:]):
        if isinstance(following, (nn.BatchNorm1d, nn.BatchNorm2d)) and getattr(layer, "bias", None) is not None:
            layer.register_parameter("bias", None)
    return net
"""

REBUILT = """
import copy

def _bare(layer):
    if isinstance(layer, nn.Conv2d):
        new = nn.Conv2d(layer.in_channels, layer.out_channels, layer.kernel_size, layer.stride, layer.padding, bias={bias})
    else:
        new = nn.Linear(layer.in_features, layer.out_features, bias={bias})
    {copy_weights}
    return new

def without_bias(net):   # new layers without a bias, weights copied
    layers = [copy.deepcopy(m) for m in net]
    for i in range(len(layers) - 1):
        if isinstance(layers[i], (nn.Conv2d, nn.Linear)) and {condition}:
            layers[i] = _bare(layers[i])
    return nn.Sequential(*layers)
"""
FOLLOWED = "isinstance(layers[i + 1], nn.modules.batchnorm._BatchNorm)"
COPY = "new.weight.data.copy_(layer.weight.data)"


@pytest.mark.parametrize("source", [IN_PLACE, REBUILT.format(bias=False, copy_weights=COPY, condition=FOLLOWED)],
                         ids=["in-place", "rebuilt"])
def test_without_bias_right(runner, source):
    assert_right(grade_one(runner, source, "8.5/1"))


@pytest.mark.parametrize("source, words", [
    ("def without_bias(net):\n    return net", ["is followed by BatchNorm2d but still has a bias"]),
    ("def without_bias(net):\n    for m in net:\n        if hasattr(m, 'bias') and isinstance(m, (nn.Conv2d, nn.Linear)):\n"
     "            m.bias.data.zero_()\n    return net", ["only set to zero", "still a parameter"]),
    (REBUILT.format(bias=False, copy_weights=COPY, condition="True"), ["was removed, but no batch norm follows"]),
    (REBUILT.format(bias=False, copy_weights="", condition=FOLLOWED), ["other training-mode outputs", "keep every weight"]),
    # stops one pair early: right on networks whose last layer has no batch norm before it
    (REBUILT.format(bias=False, copy_weights=COPY, condition=FOLLOWED).replace("range(len(layers) - 1)", "range(len(layers) - 2)"),
     ["Linear → BatchNorm1d, layer 3 (Linear) is followed by BatchNorm1d but still has a bias"]),
    # looks two layers ahead: the student's own IndexError is named as the student's call, not the grader's probe
    (REBUILT.format(bias=False, copy_weights=COPY, condition=FOLLOWED.replace("i + 1", "i + 2")),
     ["`without_bias(net)` raised IndexError"]),
], ids=["kept", "zeroed", "every-bias-removed", "weights-not-copied", "misses-the-last-pair", "error-named"])
def test_without_bias_wrong(runner, source, words):
    assert_wrong(grade_one(runner, source, "8.5/1"), words)


# -- 8.5/2 and 8.5/3 ----------------------------------------------------------------------------------------
def lenet(name, conv_bn="nn.BatchNorm2d({c})", dense_bn="nn.BatchNorm1d({c})", extra=""):
    def bn(template, c):
        return (template.format(c=c) + ", ") if template else ""
    return f"""
class {name}(nn.Module):   # explicit sizes, plain nn.Module
    def __init__(self, num_classes=10):
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(1, 6, 5), {bn(conv_bn, 6)}nn.Sigmoid(), nn.AvgPool2d(2),
            nn.Conv2d(6, 16, 5), {bn(conv_bn, 16)}nn.Sigmoid(), nn.AvgPool2d(2), nn.Flatten(),
            nn.Linear(256, 120), {bn(dense_bn, 120)}nn.Sigmoid(),
            nn.Linear(120, 84), {bn(dense_bn, 84)}nn.Sigmoid(), nn.Linear(84, num_classes))
{extra}
    def forward(self, X):
        return self.net(X)
"""


def test_bn_lenet_written_otherwise_trains(runner):
    assert_right([grade_one(runner, lenet("BNLeNet"), check) for check in ("8.5/2:architecture", "8.5/2:training")])


def test_lenet_without_batch_norm_fails_both(runner):
    source = lenet("BNLeNet", conv_bn="", dense_bn="")
    assert_wrong(grade_one(runner, source, "8.5/2:architecture"), ["no batch norm after net.0 (Conv2d)"])
    assert_wrong(grade_one(runner, source, "8.5/2:training"), ["held-out loss", "without batch norm stays at"])


@pytest.mark.parametrize("source, check, words", [
    (lenet("BNLeNet", dense_bn=""), "8.5/2:architecture", ["no batch norm after net.9 (Linear)"]),
    (lenet("BNLeNet", extra="        self.requires_grad_(False)"), "8.5/2:training", ["requires a gradient"]),
    (lenet("ConvBNLeNet"), "8.5/3", ["still normalises", "dense layers"]),
    (lenet("ConvBNLeNet", conv_bn="", dense_bn=""), "8.5/3", ["normalises 0 of its 2 convolutions"]),
    (lenet("ConvBNLeNet", dense_bn="").replace("nn.Linear(120, 84), nn.Sigmoid()", "nn.Linear(120, 84), nn.Identity()"),
     "8.5/3", ["`net.11` (Linear) reaches `net.13` (Linear)", "no activation"]),
    (lenet("BNLeNet").replace("nn.Conv2d(1, 6, 5), nn.BatchNorm2d(6), nn.Sigmoid()",
                              "nn.Conv2d(1, 6, 5), nn.BatchNorm2d(6), nn.Identity()"),
     "8.5/2:architecture", ["`net.0` (Conv2d) reaches `net.4` (Conv2d)"]),
    (lenet("ConvBNLeNet", dense_bn="").replace("nn.Sigmoid(), nn.AvgPool2d(2), nn.Flatten()",
                                               "nn.Sigmoid(), nn.Flatten()").replace("nn.Linear(256,", "nn.Linear(1024,"),
     "8.5/3", ["`net.4` (Conv2d) is not followed by a pooling layer"]),
], ids=["no-dense-bn", "frozen", "bn-everywhere", "no-bn", "identity-for-the-last-sigmoid", "identity-after-a-bn",
        "second-pooling-dropped"])
def test_lenets_wrong(runner, source, check, words):
    assert_wrong(grade_one(runner, source, check), words)


def test_conv_bn_lenet_written_otherwise(runner):
    assert_right(grade_one(runner, lenet("ConvBNLeNet", dense_bn=""), "8.5/3"))


def test_functional_sigmoids_keep_the_marks(runner):
    # the section's network with every sigmoid applied in forward instead of declared
    source = """
class ConvBNLeNet(nn.Module):
    def __init__(self, num_classes=10):
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(1, 6, 5), nn.BatchNorm2d(6), nn.AvgPool2d(2), nn.Conv2d(6, 16, 5), nn.BatchNorm2d(16),
            nn.AvgPool2d(2), nn.Flatten(), nn.Linear(256, 120), nn.Linear(120, 84), nn.Linear(84, num_classes))
    def forward(self, X):
        for layer in self.net[:-1]:
            X = layer(X)
            if isinstance(layer, (nn.BatchNorm2d, nn.Linear)):
                X = torch.sigmoid(X)
        return self.net[-1](X)
"""
    assert_right(grade_one(runner, source, "8.5/3"))


@pytest.mark.parametrize("value, right, words", [
    ('{"without_bn": 0.3, "with_bn": 3}', True, []),
    ('dict(with_bn=torch.tensor(2.0), without_bn=0.5)', True, []),
    ('{"with_bn": 0.1, "without_bn": 0.3}', False, ["batch norm should allow the larger one"]),
    ('{"with_bn": 1.0}', False, ['"with_bn" and "without_bn"']),
    ('{"with_bn": "big", "without_bn": 0.1}', False, ["should be a number"]),
], ids=["ints", "tensor", "reversed", "missing-key", "not-a-number"])
def test_stable_rate_claim(runner, value, right, words):
    result = grade_one(runner, f"largest_stable_lr = {value}", "8.5/2:claim")
    assert_right(result) if right else assert_wrong(result, words)


# -- 8.5/4 and 8.5/5 ----------------------------------------------------------------------------------------
BOOK_BATCH_NORM = """
def batch_norm(X, gamma, beta, moving_mean, moving_var, eps, momentum):
    if {prediction}:
        X_hat = (X - moving_mean) / torch.sqrt(moving_var + eps)
    else:
        dims = (0,) if X.dim() == 2 else (0, 2, 3)
        mean = X.mean(dim=dims, keepdim=True)
        var = ((X - mean) ** 2).mean(dim=dims, keepdim=True)
        X_hat = (X - mean) / torch.sqrt(var + eps)
        moving_mean = {keep} * moving_mean + {new} * mean
        moving_var = {keep} * moving_var + {new} * var
    return {ret}
"""
BOOK = dict(prediction="not torch.is_grad_enabled()", keep="(1.0 - momentum)", new="momentum",
            ret="gamma * X_hat + beta, moving_mean.data, moving_var.data")

UNBIASED_BATCH_NORM = """
def batch_norm(X, gamma, beta, moving_mean, moving_var, eps, momentum):   # torch.var, the unbiased running variance
    if torch.is_grad_enabled():
        flat = X.transpose(0, 1).reshape(X.shape[1], -1)
        mean, var = flat.mean(1).reshape(moving_mean.shape), flat.var(1, unbiased=False).reshape(moving_var.shape)
        n = flat.shape[1]
        moving_mean = moving_mean.lerp(mean, momentum)
        moving_var = moving_var.lerp(var * n / (n - 1), momentum)
    else:
        mean, var = moving_mean, moving_var
    return gamma * (X - mean) * torch.rsqrt(var + eps) + beta, moving_mean.detach(), moving_var.detach()
"""


@pytest.mark.parametrize("source", [BOOK_BATCH_NORM.format(**BOOK), UNBIASED_BATCH_NORM], ids=["book", "unbiased-lerp"])
def test_batch_norm_right(runner, source):
    assert_right(grade_one(runner, source, "8.5/4:batch_norm"))


@pytest.mark.parametrize("change, words", [
    (dict(prediction="torch.is_grad_enabled()"), ["normalised with the running averages", "batch's own mean"]),
    (dict(keep="momentum", new="(1.0 - momentum)"), ["moving_mean is wrong"]),
    (dict(ret="gamma * X_hat + beta"), ["returns Tensor", "(Y, moving_mean, moving_var)"]),
], ids=["modes-swapped", "momentum-reversed", "returns-only-Y"])
def test_batch_norm_wrong(runner, change, words):
    assert_wrong(grade_one(runner, BOOK_BATCH_NORM.format(**{**BOOK, **change}), "8.5/4:batch_norm"), words)


NORM_LAYER = """
class {name}(nn.Module):
    def __init__(self, num_features, num_dims):
        super().__init__()
        shape = (1, num_features) if num_dims == 2 else (1, num_features, 1, 1)
        self.gamma = {gamma}
        self.beta = {beta}
        self.register_buffer("running_mean", torch.zeros(shape))
        self.register_buffer("running_var", torch.ones(shape))

    def forward(self, X):
        dims = [0] + list(range(2, X.dim()))
        if self.training:
            mean, var = X.mean(dims, keepdim=True), X.var(dims, keepdim=True, unbiased=False)
            with torch.no_grad():
                {update}
        else:
            mean, var = {eval_stats}
        return {formula}
"""
UPDATE = ("self.running_mean.mul_(0.9).add_(0.1 * mean); "
          "self.running_var.mul_(0.9).add_(0.1 * var * X.numel() / X.shape[1] / (X.numel() / X.shape[1] - 1))")
RUNNING = "self.running_mean, self.running_var"
ONES, ZEROS = "nn.Parameter(torch.ones(shape))", "nn.Parameter(torch.zeros(shape))"
FULL = "(X - mean) / torch.sqrt(var + 1e-5) * self.gamma + self.beta"


def layer(name, gamma=ONES, beta=ZEROS, update=UPDATE, eval_stats=RUNNING, formula=FULL):
    return NORM_LAYER.format(name=name, gamma=gamma, beta=beta, update=update, eval_stats=eval_stats, formula=formula)


WRAPPED = """
class {name}(nn.Module):   # nn.BatchNorm underneath
    def __init__(self, num_features, num_dims):
        super().__init__()
        kind = nn.BatchNorm1d if num_dims == 2 else nn.BatchNorm2d
        self.norm = kind(num_features, affine={affine})
    def forward(self, X):
        return self.norm(X)
"""


@pytest.mark.parametrize("check, source", [
    ("8.5/4:BatchNorm", BOOK_BATCH_NORM.format(**BOOK) + """
class BatchNorm(nn.Module):
    def __init__(self, num_features, num_dims):
        super().__init__()
        shape = (1, num_features) if num_dims == 2 else (1, num_features, 1, 1)
        self.gamma, self.beta = nn.Parameter(torch.ones(shape)), nn.Parameter(torch.zeros(shape))
        self.moving_mean, self.moving_var = torch.zeros(shape), torch.ones(shape)
    def forward(self, X):
        Y, self.moving_mean, self.moving_var = batch_norm(X, self.gamma, self.beta, self.moving_mean,
                                                          self.moving_var, eps=1e-5, momentum=0.1)
        return Y
"""),
    ("8.5/4:BatchNorm", WRAPPED.format(name="BatchNorm", affine=True)),
    ("8.5/4:centre", layer("CenterOnlyNorm", gamma="None", formula="X - mean + self.beta")),
    ("8.5/4:scale", layer("ScaleOnlyNorm", beta="None", formula="X / torch.sqrt(var + 1e-5) * self.gamma")),
    ("8.5/5", WRAPPED.format(name="BatchNormFixed", affine=False)),
    ("8.5/5", layer("BatchNormFixed", gamma="torch.ones(shape)", beta="torch.zeros(shape)")),
], ids=["book-module", "wrapped-module", "centre", "scale", "fixed-wrapped", "fixed-plain-tensors"])
def test_norm_layers_right(runner, check, source):
    assert_right(grade_one(runner, source, check))


@pytest.mark.parametrize("check, source, words", [
    ("8.5/4:BatchNorm", layer("BatchNorm", update="pass"), ["running averages were never updated"]),
    ("8.5/4:BatchNorm", layer("BatchNorm", eval_stats="X.mean(dims, keepdim=True), X.var(dims, keepdim=True, unbiased=False)"),
     ["statistics of the batch it is given"]),
    ("8.5/4:BatchNorm", layer("BatchNorm", gamma="torch.ones(shape)"), ["trainable values", "γ and β make"]),
    ("8.5/4:centre", layer("CenterOnlyNorm", gamma="None", formula=FULL.replace(" * self.gamma", "")),
     ["full batch norm", "centring only"]),
    ("8.5/4:centre", layer("CenterOnlyNorm", gamma="None", beta="None", formula="X - mean"), ["trainable values", "a shift β"]),
    ("8.5/4:centre", layer("CenterOnlyNorm", gamma="None", formula="X - mean + self.beta", update="pass"),
     ["never updated"]),
    ("8.5/4:scale", layer("ScaleOnlyNorm", beta="None",
                          formula="X / torch.sqrt((X ** 2).mean(dims, keepdim=True) + 1e-5) * self.gamma"),
     ["root mean square"]),
    ("8.5/4:scale", layer("ScaleOnlyNorm", beta="None", formula="X * self.gamma"), ["returns its input unchanged"]),
    ("8.5/4:scale", layer("ScaleOnlyNorm", beta="None", formula="(X - mean) / torch.sqrt(var + 1e-5) * self.gamma"),
     ["full batch norm"]),
    ("8.5/5", WRAPPED.format(name="BatchNormFixed", affine=True), ["trainable values", "norm.weight", "buffers"]),
    ("8.5/5", layer("BatchNormFixed"), ["trainable values", "gamma, beta"]),
    ("8.5/5", layer("BatchNormFixed", gamma="torch.ones(shape)", beta="torch.zeros(shape)",
                    update="self.running_mean.lerp_(mean, 0.9); self.running_var.lerp_(var, 0.9)"),
     ["the wrong way round"]),
    # a mistake with no name of its own: the message still says which rule was broken, as a sentence
    ("8.5/5", layer("BatchNormFixed", gamma="torch.ones(shape)", beta="torch.zeros(shape)",
                    formula="(X - mean) / torch.sqrt(var + 0.5)"),
     ["gives other values than the formula per channel", "largest difference", "): it should normalise with γ = 1"]),
], ids=["bn-never-updated", "bn-batch-stats-in-eval", "bn-gamma-not-trained", "centre-also-scales", "centre-no-beta",
        "centre-never-updated", "scale-rms", "scale-identity", "scale-also-centres", "fixed-affine",
        "fixed-parameters", "fixed-momentum-reversed", "fixed-wrong-eps"])
def test_norm_layers_wrong(runner, check, source, words):
    assert_wrong(grade_one(runner, source, check), words)


SCORES_CHEAT = """
class BNLeNet(nn.Module):   # the section's network, whose prediction-time scores are not what its layers compute
    def __init__(self, num_classes=10):
        super().__init__()
        self.net = nn.Sequential(
            nn.LazyConv2d(6, kernel_size=5), nn.LazyBatchNorm2d(), nn.Sigmoid(), nn.AvgPool2d(2),
            nn.LazyConv2d(16, kernel_size=5), nn.LazyBatchNorm2d(), nn.Sigmoid(), nn.AvgPool2d(2), nn.Flatten(),
            nn.LazyLinear(120), nn.LazyBatchNorm1d(), nn.Sigmoid(), nn.LazyLinear(84), nn.LazyBatchNorm1d(),
            nn.Sigmoid(), nn.LazyLinear(num_classes))
    def forward(self, X):
        scores = self.net(X)
        return scores if torch.is_grad_enabled() else 100 * scores.softmax(1)
"""


def test_training_is_never_judged_on_the_scores_the_runtime_returns(runner):
    """Scores the grader cannot reproduce from the trained parameters are not judged at all: the check waits
    for an instructor, with the reason (the held-out split itself is out of the runtime's reach:
    tests/test_heldout_private.py)."""
    result = grade_one(runner, SCORES_CHEAT, "8.5/2:training")
    assert result.status == "manual" and result.points == 0, (result.status, result.message)
    assert "could not rebuild the trained `BNLeNet()`" in result.message, result.message
