"""Checks for 8.1 Deep convolutional neural networks (AlexNet).

Counts are measured, never typed: the student's models are described inside the runtime and the
reference's in this process by the same probe (graders/probes/architecture.py, on the meta device).
The one training check (8.1/7) reuses 7.6's machinery: the student's network is trained in the runtime on
the grader's batches, its held-out logits come back without labels, and the loss is computed here against
the book's sigmoid LeNet trained on the same batches in a pinned child (d2lgrade/numerics/pinned, cached on disk).
The reference's descriptions and that run go through d2lgrade.values.expected: a student kit holds only their figures.
"""
from __future__ import annotations

from pathlib import Path

import torch
from torch.nn import functional as F

from d2lgrade.core import data
from d2lgrade.numerics import pinned
from d2lgrade.core.checks import NotAttempted, StudentError, StudentTimeout, Unverified, check, fail
from d2lgrade.compare import rebuild
from d2lgrade.values.expected import computed
from d2lgrade.values.expected import reference as reference_of
from graders import book_code
from graders.architecture import as_count, describe_reference, expect_count, magnitude
from graders.execution import flops_unverified, has_relu
from graders.layer_counts import expect_flop_split, nearest_first, parameter_split
from graders.nonlinearity import expect_activations
from graders.probes import section_7_6 as training

ref = reference_of("8.1")

BOOK_INPUT, SMALL_INPUT = (1, 1, 224, 224), (2, 1, 28, 28)
COUNT_TOLERANCE, FLOP_TOLERANCE = 0.01, 0.03
DIRECT_COST = 0.5          # 8.1/5.2: at most this fraction of the book's AlexNet FLOPs (no resizing to 224)
# 8.1/7: the book's recipe on fixed batches, shared with the sigmoid LeNet it is compared with.
STEPS, BATCH, LR, ORDER_SEED = 200, 64, 0.1, 81
TRAIN_LIMIT, EVAL_LIMIT = 4096, 1000
RECIPE = {"init": "xavier", "optimizer": "sgd", "lr": LR, "threads": 1}
TRAIN_TIMEOUT, TRAIN_SOFT = 130, 120      # a safety stop only: the step budget decides how long training runs
LOSS_RATIO = 0.75
POOLING = {"MaxPool2d", "AvgPool2d", "AdaptiveAvgPool2d", "AdaptiveMaxPool2d", "LPPool2d"}
DROPOUT = {"Dropout", "Dropout1d", "Dropout2d", "AlphaDropout"}
SIGMOID_OPS = {"sigmoid", "sigmoid_"}


def _describe(p, call: str, name: str, *args, input_shape=SMALL_INPUT, **kwargs) -> dict:
    return book_code.describe(p, call, name, *args, input_shape=input_shape, **kwargs)


def _book_alexnet() -> dict:
    return describe_reference(ref, "AlexNet", input_shape=BOOK_INPUT)


def _kinds(description: dict) -> str:
    counts = description["counts"]
    return ", ".join(f"{n} {kind}" for kind, n in counts.items())


# -- 8.1/1 ---------------------------------------------------------------------------------------------------
@check("8.1/1.1", points=2, title="Parameters: convolutions against dense layers", uses=("alexnet_param_split",),
       expected="the parameters of the book's AlexNet (1×224×224, 10 classes) in its convolutions and in its dense "
                "layers, within 1 %: the dense layers hold most of them")
def conv_fc_parameters(p):
    answer = p.value("alexnet_param_split")
    if not isinstance(answer, dict) or not {"conv", "fc"} <= set(answer):
        fail('`alexnet_param_split` should be a dict with the keys "conv" and "fc".')
    p.answer = repr(answer)
    book = _book_alexnet()
    split, biases = parameter_split(book), parameter_split(book, biases_only=True)
    imagenet = parameter_split(describe_reference(ref, "AlexNet", input_shape=(1, 3, 224, 224), num_classes=1000))
    for key, other in (("conv", "fc"), ("fc", "conv")):
        what = f'alexnet_param_split["{key}"]'
        mistakes = {"the count without the biases": split[key] - biases[key],
                    "the whole network's count, not this part's": book["params"],
                    "the other part's count (conv and fc swapped?)": split[other],
                    "the count for 3-channel images and 1000 classes (ImageNet)": imagenet[key]}
        got = as_count(answer[key], what)
        expect_count(got, split[key], what, COUNT_TOLERANCE, hints=nearest_first(mistakes, got),
                     exact=(split[key], split[key] - biases[key]))
    share = split["fc"] / (split["conv"] + split["fc"])
    return f"convolutions {split['conv']:,}, dense layers {split['fc']:,} parameters ({share:.0%} in the dense layers)"


@check("8.1/1.2", points=2, title="FLOPs: convolutions against dense layers", uses=("alexnet_flop_split",),
       expected="FLOPs (or MACs, said so) of the book's AlexNet for one 1×224×224 image in its convolutions and in "
                "its dense layers, within 3 %: the convolutions do most of the work")
def flop_split(p):
    answer = p.value("alexnet_flop_split")
    if not isinstance(answer, dict) or not {"conv", "fc"} <= set(answer):
        fail('`alexnet_flop_split` should be a dict with the keys "conv", "fc" and "unit".')
    p.answer = repr(answer)
    flops = _book_alexnet()["flops"]
    expected = {"conv": flops["conv"], "fc": flops["linear"]}
    note = expect_flop_split(answer, expected, "alexnet_flop_split", FLOP_TOLERANCE)
    share = expected["conv"] / (expected["conv"] + expected["fc"])
    return (f"convolutions {magnitude(expected['conv'])}FLOPs, dense layers {magnitude(expected['fc'])}FLOPs "
            f"({share:.0%} in the convolutions){note}")


# -- 8.1/5 ---------------------------------------------------------------------------------------------------
def _small_model(p, name: str) -> dict:
    got = _describe(p, f"{name}()", name)
    p.answer = f"output {got['output']} on 2×1×28×28; layers: {_kinds(got)}; {got['params']:,} parameters, " \
               f"{magnitude(sum(got['flops'].values()) / SMALL_INPUT[0])}FLOPs per image"
    if got["output"] != [SMALL_INPUT[0], 10]:
        fail(f"`{name}()` maps 2×1×28×28 to {got['output']}; expected [2, 10]: one score per class, for 28×28 "
             "images as they are.")
    flops_unverified(p, got, f"{name}()")
    return got


@check("8.1/5.1", points=2, title="A simplified AlexNet for 28×28 images", uses=("SmallAlexNet",),
       expected="(N, 10) on (N, 1, 28, 28); two or more convolutions with ReLU and pooling, an activation applied "
                "after every convolution and hidden dense layer; fewer parameters and "
                "FLOPs than the book's AlexNet at 224×224")
def small_alexnet(p):
    got, book = _small_model(p, "SmallAlexNet"), _book_alexnet()
    counts = got["counts"]
    if counts.get("Conv2d", 0) < 2 or not has_relu(got) or not POOLING & set(counts):
        fail(f"`SmallAlexNet()` runs {_kinds(got)}: a simplified AlexNet still needs two or more convolutions, "
             "ReLU activations (nn.ReLU or F.relu) and pooling.")
    expect_activations(p, "SmallAlexNet", input_shape=SMALL_INPUT, saturating=False)
    cost, book_cost = sum(got["flops"].values()) / SMALL_INPUT[0], sum(book["flops"].values())
    if got["params"] >= book["params"] or cost >= book_cost:
        over = " and ".join(what for what, more in (("parameters", got["params"] >= book["params"]),
                                                    ("FLOPs", cost >= book_cost)) if more)
        # AlexNet's own figures are 8.1/1's answers: hints say only which of them the model does not undercut.
        fail(f"`SmallAlexNet()` has {got['params']:,} parameters and {magnitude(cost)}FLOPs per image, no fewer {over} "
             "than the book's AlexNet at 224×224: simplify it (fewer, narrower layers).",
             reveal=f"The book's AlexNet has {book['params']:,} and {magnitude(book_cost)}FLOPs.")
    return (f"{counts.get('Conv2d')} convolutions, {got['params'] / book['params']:.1%} of AlexNet's parameters and "
            f"{cost / book_cost:.1%} of its FLOPs")


@check("8.1/5.2", points=2, title="An AlexNet that works directly on 28×28 images", uses=("AlexNet28",),
       expected=f"(N, 10) on (N, 1, 28, 28); three or more convolutions, an activation applied after each of them and "
                "after every hidden dense layer, dropout; under {DIRECT_COST:.0%} of the "
                "book's AlexNet FLOPs")
def alexnet_28(p):
    got, book = _small_model(p, "AlexNet28"), _book_alexnet()
    counts = got["counts"]
    if counts.get("Conv2d", 0) < 3:
        fail(f"`AlexNet28()` has {counts.get('Conv2d', 0)} convolution(s); keep AlexNet's deeper stack: at least three.")
    expect_activations(p, "AlexNet28", input_shape=SMALL_INPUT, saturating=False)
    if not DROPOUT & set(counts):
        fail("`AlexNet28()` runs no dropout layer: AlexNet regularises its dense layers with nn.Dropout.")
    cost, book_cost = sum(got["flops"].values()) / SMALL_INPUT[0], sum(book["flops"].values())
    if cost >= DIRECT_COST * book_cost:
        fail(f"`AlexNet28()` costs {magnitude(cost)}FLOPs per 28×28 image, as much as the book's AlexNet at 224×224: "
             "does it resize its input? Work on the 28×28 pixels directly.",
             reveal=f"The book's AlexNet costs {magnitude(book_cost)}FLOPs.")
    return f"{counts['Conv2d']} convolutions with dropout, {cost / book_cost:.1%} of the book's FLOPs"


# -- 8.1/7 ---------------------------------------------------------------------------------------------------
@check("8.1/7", name="layers", points=1, title="ReLU and dropout, no sigmoid", uses=("LeNetDropout",),
       expected="a forward pass runs ReLU (a module or F.relu) after every convolution and hidden dense layer, "
                "nn.Dropout layers and no sigmoid; (N, num_classes) "
                "on (N, 1, 28, 28)")
def dropout_layers(p):
    got = _describe(p, "LeNetDropout(num_classes=5)", "LeNetDropout", num_classes=5)
    counts = got["counts"]
    p.answer = f"layers: {_kinds(got)}; output {got['output']} for num_classes=5"
    problems = []
    if counts.get("Sigmoid"):
        problems.append(f"still has {counts['Sigmoid']} nn.Sigmoid layer(s): replace each with nn.ReLU")
    elif SIGMOID_OPS & set(got["ops"]):
        problems.append("still computes a sigmoid in forward: replace it with ReLU")
    if not has_relu(got):
        problems.append("runs no ReLU (nn.ReLU or F.relu)")
    if not DROPOUT & set(counts):
        problems.append("has no nn.Dropout layer: add one after the dense hidden layers")
    if problems:
        fail("`LeNetDropout` " + "; it ".join(problems) + ".")
    expect_activations(p, "LeNetDropout", input_shape=SMALL_INPUT, num_classes=5)
    if got["output"] != [SMALL_INPUT[0], 5]:
        fail(f"`LeNetDropout(num_classes=5)` maps 2×1×28×28 to {got['output']}; expected [2, 5].")
    relus = f"{counts['ReLU']} ReLU" if counts.get("ReLU") else "functional ReLU"
    return f"{relus} and {sum(counts.get(k, 0) for k in DROPOUT)} dropout layers, no sigmoid"


def _data(p):
    """The grader's training images and unlabelled held-out images (labels stay here). One function, so
    that how held-out images are drawn can change in one place."""
    train, test = data.training_and_held_out("fashion_mnist", p.options.data_dir, TRAIN_LIMIT, EVAL_LIMIT)
    return train, test


def _order(n_train: int) -> torch.Tensor:
    return torch.randint(0, n_train, (STEPS, BATCH), generator=torch.Generator().manual_seed(ORDER_SEED))


def _book_lenet():
    """The book's sigmoid LeNet, from 7.6's reference (course folder only: never called in a student kit)."""
    return reference_of("7.6").module


def reference_training(train_X, train_y, order, test_X, recipe) -> dict:
    """The book's sigmoid LeNet trained with `recipe`; runs in a pinned child (d2lgrade/numerics/pinned)."""
    torch.manual_seed(0)
    model = training.make_model({"LeNet": _book_lenet().LeNet}, "LeNet", {}, train_X)
    return training.train_model(model, train_X, train_y, order, test_X, recipe)


def _train_sigmoid_lenet(module, train, test, order, recipe) -> dict:
    """(Course folder only, through `computed`.) The held-out loss and accuracy of the book's sigmoid LeNet
    trained with `recipe` on the grader's batches, in a pinned child, cached (d2lgrade/numerics/pinned)."""
    sources = (Path(training.__file__), Path(_book_lenet().__file__))
    run = pinned.call("graders.section_8_1:reference_training", train.X, train.y, order, test.X, dict(recipe),
                      sources=sources)
    loss, accuracy = _loss(run["final"], test.y)
    return {"loss": loss, "accuracy": accuracy}


def _rebuilt_outputs(weights, X) -> list[torch.Tensor]:
    """The held-out outputs of the student's trained weights in the grader's OWN LeNets (ReLU, with max and
    with average pooling; dropout is off in evaluation), computed in this process; empty when the weights are
    not exactly LeNet's ten tensors (then the grader rebuilds the network from its layers). LeNet's parameter
    shapes are all different, so each tensor finds its layer by its shape, whatever the student named them."""
    if not isinstance(weights, list) or not weights:
        return []
    tensors = [entry[1] for entry in weights if isinstance(entry, list) and len(entry) == 2]
    if len(tensors) != len(weights) or not all(isinstance(t, torch.Tensor) and t.is_floating_point() for t in tensors):
        return []
    by_shape = {tuple(t.shape): t for t in tensors}
    outputs = []
    for pooling in (torch.nn.MaxPool2d, torch.nn.AvgPool2d):
        # float64: this process runs the machine's code path, and a verdict must not follow it.
        model = training.LeNet(num_classes=10, modern=True).double()
        model.net[2], model.net[5] = pooling(2, 2), pooling(2, 2)
        slots = {tuple(q.shape): q for q in model.parameters()}
        if len(tensors) != len(slots) or set(by_shape) != set(slots):
            return []
        with torch.no_grad():
            for shape, q in slots.items():
                q.copy_(by_shape[shape].to(q.dtype))
            outputs.append(training.predict(model, X.to(torch.float64)))
    return outputs


def _judged_outputs(reply, X, call) -> tuple[torch.Tensor, str]:
    """The outputs to judge, and how they were obtained: only those of a network the grader runs itself and
    that computes what the student's does (its own LeNet with the trained weights, else the network rebuilt
    from the layers the training step ran); otherwise the check is left for an instructor."""
    final = reply["final"]
    for out in _rebuilt_outputs(reply.get("weights"), X):
        if torch.isfinite(out).all() and rebuild.faithful(out, final):
            return out, "your trained weights, evaluated by the grader in its own LeNet"
    own, how = rebuild.trained_outputs(reply, X)
    if own is None:
        raise Unverified(rebuild.unverifiable(call, how))
    return own, f"{how}, rebuilt and evaluated by the grader"


def _loss(outputs, y) -> tuple[float, float]:
    logits = outputs.double()
    return F.cross_entropy(logits, y).item(), (logits.argmax(1) == y).double().mean().item()


@check("8.1/7", points=2, title="Learns faster than the sigmoid LeNet", uses=("LeNetDropout",),
       expected=f"after {STEPS} SGD steps (batch {BATCH}, lr {LR}, Xavier init) a held-out loss below "
                f"{LOSS_RATIO:g} × the sigmoid LeNet's after the same steps")
def dropout_training(p):
    train, test = _data(p)
    order = _order(len(train))
    call = "LeNetDropout(num_classes=10)"
    try:
        reply = p.run(training.train_contract, "LeNetDropout", {"num_classes": 10}, train.X, train.y, order, test.X,
                      dict(RECIPE, seconds=TRAIN_SOFT, weights=True), timeout=TRAIN_TIMEOUT)
    except (NotAttempted, StudentError, StudentTimeout) as exc:
        raise type(exc)(exc.message.replace("`train_contract`", f"`{call}`").replace(
            "the probe train_contract", f"`{call}`"), exc.detail) from None
    if not isinstance(reply, dict):
        raise StudentError(f"the runtime gave no readable answer for the training of `{call}`.")
    final = reply.get("final")
    if reply.get("stopped") in ("frozen", "no_grad", "diverged"):
        fail(f"training `{call}` stopped early ({reply['stopped'].replace('_', ' ')}) after {reply.get('steps')} "
             "steps: keep the parameters trainable and the loss connected to them.")
    if reply.get("stopped") == "time":
        raise StudentTimeout(f"training `{call}` managed only {reply.get('steps')} of {STEPS} steps in {TRAIN_SOFT} s.")
    if not isinstance(final, torch.Tensor) or tuple(final.shape) != (len(test), 10) or not torch.isfinite(final).all():
        fail(f"after training, `{call}` gives no finite (N, 10) scores for {len(test)} held-out images.")
    judged, how = _judged_outputs(reply, test.X, call)
    loss, accuracy = _loss(judged, test.y)
    base = computed(ref, "train the sigmoid LeNet", _train_sigmoid_lenet, train, test, order, dict(RECIPE))
    base_loss, base_accuracy = base["loss"], base["accuracy"]
    p.answer = (f"held-out loss {loss:.3f}, accuracy {accuracy:.1%} ({how}; sigmoid LeNet: {base_loss:.3f}, "
                f"{base_accuracy:.1%}) after {STEPS} steps on {test.source}")
    if not loss < LOSS_RATIO * base_loss:
        fail(f"after {STEPS} steps `{call}` has a held-out loss of {loss:.3f} (accuracy {accuracy:.1%}), no better "
             f"than {LOSS_RATIO:g} × the sigmoid LeNet's {base_loss:.3f}: with ReLU it should learn much faster "
             "(a sigmoid left in, or a dropout rate so high that little signal passes, slows it down). "
             f"Judged on {how}.")
    return (f"held-out loss {loss:.3f} (accuracy {accuracy:.1%}) after {STEPS} steps, against {base_loss:.3f} "
            f"({base_accuracy:.1%}) for the sigmoid LeNet; judged on {how}")
