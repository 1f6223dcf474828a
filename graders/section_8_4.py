"""Checks for 8.4 Multi-branch networks (GoogLeNet).

Blocks and networks are built in the student runtime on PyTorch's `meta` device
(graders/probes/architecture.py) and compared with the same measurement of the reference's, made here;
the residual block's outputs come from graders/probes/section_8_4.py. Every expected figure (shapes,
parameter counts, FLOPs, the smallest input) is measured on the reference's models, never typed in; those
measurements and the reference's training run go through d2lgrade.values.expected: a student kit holds only their figures.
"""
from __future__ import annotations

import re
from collections import Counter
from functools import lru_cache
from pathlib import Path

import torch
from torch.nn import functional as F

from d2lgrade.core import data
from d2lgrade.numerics import pinned
from d2lgrade.core.checks import NotAttempted, StudentError, StudentTimeout, check, fail
from d2lgrade.compare.tensors import describe, expect_diagnosed, expect_tensor, same_values
from d2lgrade.values.expected import computed
from d2lgrade.values.expected import reference as reference_of
from graders.architecture import (MEASURE_TIMEOUT, as_count, call_text, describe_reference, describe_student,
                                  expect_count, magnitude, run_naming, without_biases)
from graders.execution import flops_unverified
from graders.nonlinearity import expect_activations
from graders.probes import architecture as architecture_probes
from graders.probes import section_7_6 as training_probes
from graders.probes import section_8_4 as probes

ref = reference_of("8.4")

FACTORY = "_d2lgrade_inception_net"     # the 8.4/1.1 training network's factory, put into the runtime
# (channel arguments, input shape): the book's first Inception block, and a small odd-sized one in which
# every branch has its own width, so that a swapped or misrouted branch shows in the shapes.
BLOCK_CASES = (((64, (96, 128), (16, 32), 32), (1, 192, 28, 28)),
               ((3, (4, 5), (2, 6), 7), (1, 8, 9, 9)))
RESIDUAL = (8, (8, 16), (4, 8), 8)     # 40 output channels
GOOGLENET_IMAGE, TRAINING_IMAGE, NATIVE_IMAGE = (1, 1, 224, 224), (1, 1, 96, 96), (1, 1, 28, 28)
PARAMETER_RANGE, FLOPS_FACTOR = (0.25, 4.0), 2.0     # 8.4/3: "still a GoogLeNet", relative to the book's
COUNT_KEYS = {"alexnet": "AlexNet", "vgg": "VGG", "vgg11": "VGG", "nin": "NiN", "googlenet": "GoogLeNet"}
VGG16 = ((2, 64), (2, 128), (3, 256), (3, 512), (3, 512))


# -- plumbing -------------------------------------------------------------------------------------------
def _run(p, fn, name: str, call: str, *args, timeout: float = MEASURE_TIMEOUT):
    """`run_naming`, and the grader's own helper network named as what it is."""
    try:
        return run_naming(p, fn, name, call, *args, timeout=timeout)
    except (NotAttempted, StudentError, StudentTimeout) as exc:
        raise type(exc)(exc.message.replace(FACTORY, "the network of InceptionBN blocks"), exc.detail) from None


def _measure(p, name: str, args=(), kwargs=None, input_shape=GOOGLENET_IMAGE) -> dict:
    return describe_student(p, name, *args, input_shape=input_shape, **dict(kwargs or {}))


def _conv_key(hyper: dict) -> tuple:
    """A convolution as (in, out, window, stride, padding), padding="same" written out."""
    kernel, padding = tuple(hyper.get("kernel_size") or ()), hyper.get("padding")
    if isinstance(padding, str):
        padding = [k // 2 if padding == "same" else 0 for k in kernel]
    return (hyper.get("in_channels"), hyper.get("out_channels"), kernel, tuple(hyper.get("stride") or ()),
            tuple(padding or ()))


def _conv_text(key: tuple) -> str:
    c_in, c_out, kernel, stride, padding = key
    text = f"{'×'.join(map(str, kernel))} convolution from {c_in} to {c_out} channels"
    return text + (f" (padding {padding[0]})" if padding and padding[0] else "")


def _convolutions(desc: dict) -> Counter:
    return Counter(_conv_key(h) for _, kind, h, _ in desc["layers"] if kind == "Conv2d")


def expect_same_convolutions(got: dict, expected: dict, call: str) -> None:
    """The same convolutions (as a multiset: branch order is free) as the reference's block."""
    mine, theirs = _convolutions(got), _convolutions(expected)
    missing, extra = theirs - mine, mine - theirs
    if missing or extra:
        parts = []
        if missing:
            parts.append("lacks the " + ", the ".join(_conv_text(k) for k in sorted(missing)))
        if extra:
            parts.append("runs a " + ", a ".join(_conv_text(k) for k in sorted(extra)) + " that the reference has not")
        fail(f"`{call}` " + " and ".join(parts) + ".")


def expect_same_output(got: dict, expected: dict, call: str, input_shape) -> None:
    if got["output"] != expected["output"]:
        fail(f"`{call}` returns shape {got['output']} for an input of shape {list(input_shape)}; "
             f"expected {expected['output']}.")


def _bias_total(desc: dict) -> int:
    return sum(h["out_channels"] for _, kind, h, _ in desc["layers"] if kind == "Conv2d" and h.get("bias"))


# -- 8.4/1.1 ----------------------------------------------------------------------------------------------
def _normalised_after_each_convolution(desc: dict, call: str) -> None:
    """In the order they ran, every convolution's next convolution-or-normalisation layer is a BatchNorm2d
    of its width (a ReLU module in between is fine)."""
    relevant = [(kind, h) for _, kind, h, _ in desc["layers"] if kind in ("Conv2d", "BatchNorm2d")]
    for k, (kind, hyper) in enumerate(relevant):
        if kind != "Conv2d":
            continue
        following = relevant[k + 1] if k + 1 < len(relevant) else None
        if not following or following[0] != "BatchNorm2d":
            fail(f"in `{call}` the {_conv_text(_conv_key(hyper))} is not followed by batch normalisation "
                 "(nn.BatchNorm2d) before the next convolution.")
        if following[1].get("num_features") != hyper.get("out_channels"):
            fail(f"in `{call}` the batch normalisation after the {_conv_text(_conv_key(hyper))} normalises "
                 f"{following[1].get('num_features')} channels, not {hyper.get('out_channels')}.")


@check("8.4/1.1", points=2, title="Batch normalisation after every convolution", uses=("InceptionBN",),
       expected="the book's branches and output shape; a BatchNorm2d after each of the six convolutions; the "
                "reference's parameters (or those less the convolution biases)")
def inception_bn(p):
    for args, shape in BLOCK_CASES:
        call = call_text("InceptionBN", args, {})
        got = _measure(p, "InceptionBN", args, input_shape=shape)
        expected = describe_reference(ref, "InceptionBN", *args, input_shape=shape)
        expect_same_output(got, expected, call, shape)
        expect_same_convolutions(got, expected, call)
        _normalised_after_each_convolution(got, call)
        without_biases = expected["params"] - _bias_total(expected)
        if got["params"] not in (expected["params"], without_biases):
            expect_count(got["params"], expected["params"], f"the parameter count of `{call}`", rel=0)
    return f"six convolutions, each normalised; {got['params']:,} parameters for {call}"


# The training check: the 7.6 machinery (fixed batches, one pinned thread, reference runs in a pinned child,
# held-out labels kept here). Plain Inception blocks stay at chance for this budget; normalised ones learn.
STEPS, BATCH, LR, ORDER_SEED = 120, 32, 0.1, 84
TRAIN_LIMIT, EVAL_LIMIT = 4096, 1000
RECIPE = {"init": "xavier", "optimizer": "sgd", "lr": LR, "threads": 1}
TRAIN_SOFT, TRAIN_TIMEOUT = 90, 100      # a safety stop only: the step budget decides how long training runs
LOSS_RATIO = 0.95                        # held-out loss below 0.95 × the plain blocks' (which stay at ~ln 10)


def _training_data(p):
    """Training images and held-out images (whose labels stay here); the one place data is drawn."""
    train, test = data.training_and_held_out("fashion_mnist", p.options.data_dir, TRAIN_LIMIT, EVAL_LIMIT)
    order = torch.randint(0, len(train), (STEPS, BATCH), generator=torch.Generator().manual_seed(ORDER_SEED))
    return train, test, order


def reference_training(block_name: str, train_X, train_y, order, test_X, recipe) -> dict:
    """The small network of reference.section_8_4.<block_name> blocks, trained; runs in a pinned child."""
    torch.manual_seed(0)
    block = getattr(ref.module, block_name)
    model = training_probes.make_model({"net": lambda: probes.inception_net(block)}, "net", {}, train_X)
    return training_probes.train_model(model, train_X, train_y, order, test_X, recipe)


def _train_reference(module, block_name: str, train, test, order, recipe) -> dict:
    """(Course folder only, through `computed`.) The held-out loss and accuracy of the small network of the
    reference's `block_name` blocks trained with `recipe`: in a pinned child, cached (d2lgrade/numerics/pinned)."""
    sources = (Path(training_probes.__file__), Path(probes.__file__), Path(module.__file__))
    run = pinned.call("graders.section_8_4:reference_training", block_name, train.X, train.y, order, test.X,
                      dict(recipe), sources=sources)
    loss, accuracy = _held_out(run, test, f"the network of the reference's {block_name} blocks")
    return {"loss": loss, "accuracy": accuracy}


def _held_out(reply, test, what: str) -> tuple[float, float]:
    """(cross-entropy, accuracy) of the held-out outputs in a training reply, computed here."""
    if not isinstance(reply, dict):
        raise StudentError(f"the runtime gave no readable answer for the training of {what}.")
    stopped = reply.get("stopped")
    if stopped == "time":
        raise StudentTimeout(f"training {what} managed only {reply.get('steps')} of {STEPS} steps in {TRAIN_SOFT} s: "
                             "the block is too slow.")
    if stopped == "diverged":
        fail(f"training {what} diverged: the loss became NaN or infinite at step {reply.get('steps')}.")
    if stopped:
        fail(f"{what} could not be trained ({stopped.replace('_', ' ')}): its output must be class scores that "
             "depend on trainable parameters.")
    final = reply.get("final")
    if not isinstance(final, torch.Tensor) or tuple(final.shape) != (len(test), 10) or not torch.isfinite(final).all():
        fail(f"after training, {what} gives {describe(final)} for {len(test)} held-out images; expected finite "
             f"scores of shape ({len(test)}, 10).")
    logits = final.double()
    return F.cross_entropy(logits, test.y).item(), (logits.argmax(1) == test.y).double().mean().item()


@check("8.4/1.1", name="training", points=1, title="Normalised blocks train where plain ones stall",
       uses=("InceptionBN",),
       expected=f"a small network of two InceptionBN blocks, trained by the grader ({STEPS} SGD steps of {BATCH} "
                f"images, lr {LR}): held-out loss below {LOSS_RATIO:g} × that of the same network of the book's "
                "Inception blocks")
def inception_bn_training(p):
    train, test, order = _training_data(p)
    what = "a small network of `InceptionBN` blocks"
    plain = computed(ref, "train Inception", _train_reference, "Inception", train, test, order, dict(RECIPE))
    plain_loss, plain_accuracy = plain["loss"], plain["accuracy"]
    _run(p, probes.install_inception_net, "InceptionBN", "InceptionBN", "InceptionBN", FACTORY)
    reply = _run(p, training_probes.train_contract, "InceptionBN", "InceptionBN", FACTORY, {}, train.X, train.y,
                 order, test.X, dict(RECIPE, seconds=TRAIN_SOFT), timeout=TRAIN_TIMEOUT)
    loss, accuracy = _held_out(reply, test, what)
    p.answer = (f"held-out loss {loss:.3f}, accuracy {accuracy:.1%} (book's blocks: {plain_loss:.3f}, "
                f"{plain_accuracy:.1%}) on {test.source}")
    if not loss < LOSS_RATIO * plain_loss:
        fail(f"after {STEPS} steps {what} has a held-out loss of {loss:.3f} (accuracy {accuracy:.1%}), no better than "
             f"{LOSS_RATIO:g} × the {plain_loss:.3f} of the same network of the book's Inception blocks, which barely "
             "learns in this budget: batch normalisation after each convolution should let it learn.")
    return (f"held-out loss {loss:.3f} (accuracy {accuracy:.1%}) after {STEPS} steps, against {plain_loss:.3f} "
            f"({plain_accuracy:.1%}) for the book's blocks")


# -- 8.4/1.2 ----------------------------------------------------------------------------------------------
@check("8.4/1.2", points=2, title="Two 3×3 convolutions instead of the 5×5 one", uses=("InceptionFactorized",),
       expected="the book's output shape; branch 3 as 1×1, 3×3, 3×3 convolutions; no 5×5 window; the reference's "
                "parameter count")
def inception_factorized(p):
    for args, shape in BLOCK_CASES:
        call = call_text("InceptionFactorized", args, {})
        got = _measure(p, "InceptionFactorized", args, input_shape=shape)
        expected = describe_reference(ref, "InceptionFactorized", *args, input_shape=shape)
        expect_same_output(got, expected, call, shape)
        if any(max(key[2]) >= 5 for key in _convolutions(got)):
            fail(f"`{call}` still runs a 5×5 convolution: branch 3 should use two stacked 3×3 ones.")
        expect_same_convolutions(got, expected, call)
        expect_count(got["params"], expected["params"], f"the parameter count of `{call}`", rel=0)
        _expect_every_branch_rectified(p, "InceptionFactorized", args, shape, call)
    book = describe_reference(ref, "Inception", *BLOCK_CASES[0][0], input_shape=BLOCK_CASES[0][1])["params"]
    return f"two 3×3 convolutions in branch 3; {got['params']:,} parameters (the book's block: {book:,})"


def _expect_every_branch_rectified(p, name, args, shape, call) -> None:
    """The book's block ends each of its four branches with a ReLU, so nothing it outputs is negative; shapes,
    windows and parameter counts cannot show a branch whose last ReLU is missing, its values can."""
    X = torch.randn(*shape, generator=p.rng)
    output = _run(p, probes.block_outputs, name, call, name, list(args), {}, X)["output"]
    if not isinstance(output, torch.Tensor) or output.dim() != 4 or not bool((output < 0).any()):
        return
    c1, c2, c3, c4 = args
    ends = torch.tensor([c1, c2[1], c3[1], c4]).cumsum(0)
    channel = int((output < 0).transpose(0, 1).flatten(1).any(1).nonzero()[0])
    branch = int((ends <= channel).sum()) + 1
    fail(f"`{call}` returns negative values (channel {channel}, in branch {branch}'s part of the output): every "
         "branch of the Inception block ends with a ReLU, including branch 3 after its second 3×3 convolution.")


# -- 8.4/1.3 ----------------------------------------------------------------------------------------------
def _smoothing_cases(rng: torch.Generator):
    cases = []
    for n, k, eps in ((8, 10, 0.1), (5, 3, 0.3), (6, 7, 0.0), (4, 5, 0.9)):
        logits = (3 * torch.randn(n, k, generator=rng)).float()
        cases.append((logits, torch.randint(0, k, (n,), generator=rng), eps))
    return cases


def _other_classes_only(logits, y, eps):
    """A known slip: eps spread over the K - 1 wrong classes (the true class gets exactly 1 - eps)."""
    k = logits.shape[1]
    log_p = F.log_softmax(logits, 1)
    target = torch.full_like(log_p, eps / (k - 1)).scatter(1, y[:, None], 1 - eps)
    return -(target * log_p).sum(1).mean()


@check("8.4/1.3", points=2, title="Label smoothing loss", uses=("label_smoothing_loss",),
       expected="F.cross_entropy(logits, y, label_smoothing=eps), a 0-d tensor, for several eps and K")
def label_smoothing(p):
    cases = _smoothing_cases(p.rng)
    labels = [f"label_smoothing_loss(logits of shape {tuple(l.shape)}, y, eps={e})" for l, _, e in cases]
    values = p.map("label_smoothing_loss", [((l, y, e), {}) for l, y, e in cases], labels=labels)
    for (logits, y, eps), got, label in zip(cases, values, labels):
        expected = F.cross_entropy(logits, y, label_smoothing=eps)
        if isinstance(got, (int, float)) and not isinstance(got, bool):
            got = torch.tensor(float(got))
        got = expect_tensor(got, label)
        if got.dim() == 1 and got.shape[0] == len(y):
            fail(f"{label} returns one loss per example (shape {tuple(got.shape)}); return their mean.")
        known = [(F.cross_entropy(logits, y), "it equals the plain cross-entropy: eps is ignored."),
                 (_other_classes_only(logits, y, eps), "it spreads eps over the K - 1 other classes only; "
                  "PyTorch's convention (and the prompt's) spreads it over all K classes, so the true class "
                  "gets 1 - eps + eps/K."),
                 (F.cross_entropy(logits, y, label_smoothing=eps, reduction="sum"),
                  "it is the sum over the batch, not the mean.")]
        expect_diagnosed(got.reshape(()) if got.numel() == 1 else got, expected, label,
                         known_wrong=known if eps > 0 else known[2:], check_dtype=False)
    return "equals F.cross_entropy(..., label_smoothing=eps) for eps 0, 0.1, 0.3, 0.9 and K 3 to 10"


# -- 8.4/1.4 ----------------------------------------------------------------------------------------------
@check("8.4/1.4", name="shapes", points=1, title="Shapes with and without the projection",
       uses=("ResidualInception",),
       expected="the block's output shape from an input with as many channels (6 convolutions) and, with "
                "use_1x1conv=True, from any number of channels (7 convolutions: one more 1×1)")
def residual_shapes(p):
    width = RESIDUAL[0] + RESIDUAL[1][1] + RESIDUAL[2][1] + RESIDUAL[3]
    for kwargs, channels in (({}, width), ({"use_1x1conv": True}, 12)):
        call = call_text("ResidualInception", RESIDUAL, kwargs)
        shape = (1, channels, 6, 6)
        got = _measure(p, "ResidualInception", RESIDUAL, kwargs, input_shape=shape)
        expected = describe_reference(ref, "ResidualInception", *RESIDUAL, input_shape=shape, **kwargs)
        expect_same_output(got, expected, call, shape)
        expect_same_convolutions(got, expected, call)
    return f"[1, {width}, 6, 6] from {width} channels, and from 12 through a 1×1 projection"


@check("8.4/1.4", points=2, title="An identity shortcut around the branches", uses=("ResidualInception",),
       expected="with every parameter zeroed the block returns its input (or its ReLU); with its own weights "
                "the branches add to it")
def residual_identity(p):
    width = RESIDUAL[0] + RESIDUAL[1][1] + RESIDUAL[2][1] + RESIDUAL[3]
    X = torch.randn(2, width, 6, 6, generator=p.rng)
    call = call_text("ResidualInception", RESIDUAL, {})
    reply = _run(p, probes.block_outputs, "ResidualInception", call, "ResidualInception", list(RESIDUAL), {}, X)
    output, zeroed = (expect_tensor(reply.get(k) if isinstance(reply, dict) else None, f"`{call}`")
                      for k in ("output", "zeroed"))
    if tuple(zeroed.shape) != tuple(X.shape):
        fail(f"`{call}` returns shape {list(zeroed.shape)} for an input of shape {list(X.shape)}; the sum of the "
             f"branches and the input has the input's shape.")
    zeroed, output = zeroed.double(), output.double()
    if not (same_values(zeroed, X) or same_values(zeroed, F.relu(X))):
        if same_values(zeroed, torch.zeros_like(zeroed)):
            fail(f"with every parameter of `{call}` set to zero it returns zeros: the input itself is not added to "
                 "the branches' output (no shortcut, or a shortcut through a layer; without use_1x1conv the "
                 "shortcut must be the identity).")
        fail(f"with every parameter of `{call}` set to zero it does not return its input x (nor relu(x)): the "
             "shortcut must be the identity, added to the concatenated branches.")
    if same_values(output, X) or same_values(output, F.relu(X)):
        fail(f"`{call}` returns its input unchanged with its own weights: the branches' output is not added.")
    return "returns x with all parameters zeroed (the identity shortcut), and x plus the branches otherwise"


# -- 8.4/2 ----------------------------------------------------------------------------------------------
@lru_cache(maxsize=None)
def _smallest_input(module, largest: int) -> int:
    """(Course folder only, through `computed`.) The smallest side s for which the reference's GoogleNet runs
    on 1×s×s (meta device)."""
    for side in range(1, largest + 1):
        shapes = architecture_probes.output_shapes(vars(module), "GoogleNet", (), {}, [[1, 1, side, side]])
        if shapes[str([1, 1, side, side])] == [1, 10]:
            return side
    raise RuntimeError(f"the reference's GoogleNet runs on no input up to {largest}×{largest}")


def smallest_googlenet_input(largest: int = 256) -> int:
    """The smallest side s for which the reference's GoogleNet runs on 1×s×s (in a student kit: recorded)."""
    return computed(ref, "smallest GoogleNet input", _smallest_input, largest)


@check("8.4/2", points=2, title="The smallest input GoogLeNet accepts", uses=("googlenet_min_size",),
       expected="the smallest side for which the book's GoogleNet runs, found by the grader trying sizes")
def min_size(p):
    value = as_count(p.value("googlenet_min_size"), "`googlenet_min_size`")
    expected = smallest_googlenet_input()
    p.answer = f"{value:g}"
    if value != int(value) or value < 1:
        fail(f"`googlenet_min_size` is {value:g}; it should be a positive whole number of pixels.")
    if value > expected:
        fail(f"`googlenet_min_size` is {value:g}, but the book's GoogleNet also runs on smaller images. Every "
             "pooling layer and the stem pad their windows, so small maps do not vanish; try it on the meta device.",
             reveal=f"The grader ran it on every side from {expected} up.")
    if value < expected:
        fail(f"`googlenet_min_size` is {value:g}, but the book's GoogleNet fails on {value:g}×{value:g} images; "
             f"the smallest that works is larger.")
    return f"{expected}×{expected}: the grader ran the book's GoogleNet on increasing sizes"


# -- 8.4/3 ----------------------------------------------------------------------------------------------
def _last_convolution_side(desc: dict) -> int:
    shapes = [shape for _, kind, _, shape in desc["layers"] if kind == "Conv2d" and isinstance(shape, list)]
    return min(shapes[-1][-2:]) if shapes else 0


@check("8.4/3", points=1, title="One score per class for 28×28 images", uses=("GoogLeNet28",),
       expected="GoogLeNet28(num_classes=k) maps (1, 1, 28, 28) to (1, k), for k = 10 and 3")
def native_shape(p):
    for k in (10, 3):
        got = _measure(p, "GoogLeNet28", (), {"num_classes": k}, input_shape=NATIVE_IMAGE)
        if got["output"] != [1, k]:
            fail(f"`GoogLeNet28(num_classes={k})` returns shape {got['output']} for a 1×28×28 image; expected "
                 f"[1, {k}].")
    return "(1, 10) and (1, 3)"


@check("8.4/3", name="resolution", points=1, title="The last stage still sees a map, not a pixel",
       uses=("GoogLeNet28",), expected="the last convolution's output is at least as large as in the book's "
                                       "GoogLeNet at 96×96")
def native_resolution(p):
    got = _measure(p, "GoogLeNet28", input_shape=NATIVE_IMAGE)
    side = _last_convolution_side(got)
    needed = _last_convolution_side(describe_reference(ref, "GoogleNet", input_shape=TRAINING_IMAGE))
    book = _last_convolution_side(describe_reference(ref, "GoogleNet", input_shape=NATIVE_IMAGE))
    p.answer = f"last convolution's map: {side}×{side}"
    if side < needed:
        same = " (as the book's network does at 28×28)" if side == book else ""
        fail(f"for a 28×28 image the last convolution of `GoogLeNet28()` outputs {side}×{side} maps{same}; the "
             f"book's GoogLeNet at 96×96 still has {needed}×{needed} there: downsample less, e.g. in the stem.")
    return f"the last convolution outputs {side}×{side} maps (the book's network at 96×96: {needed}×{needed})"


@check("8.4/3", name="cost", points=1, title="Still a GoogLeNet, at a sensible cost", uses=("GoogLeNet28",),
       expected=f"parameters between {PARAMETER_RANGE[0]:g}× and {PARAMETER_RANGE[1]:g}× the book's GoogLeNet; "
                "an activation after every convolution; "
                f"FLOPs at 28×28 at most {FLOPS_FACTOR:g}× the book's at 96×96")
def native_cost(p):
    got = _measure(p, "GoogLeNet28", input_shape=NATIVE_IMAGE)
    book = describe_reference(ref, "GoogleNet", input_shape=TRAINING_IMAGE)
    flops, budget = sum(got["flops"].values()), FLOPS_FACTOR * sum(book["flops"].values())
    p.answer = f"{magnitude(got['params'])} parameters, {magnitude(flops)} FLOPs per 28×28 image"
    flops_unverified(p, got, "GoogLeNet28()")     # work the FLOP counter cannot see would slip under the budget
    low, high = (factor * book["params"] for factor in PARAMETER_RANGE)
    if not low <= got["params"] <= high:
        # The book's count is 8.4/4's answer: the hint says only which side of the range the model falls.
        side = "fewer than a quarter" if got["params"] < low else "more than four times"
        fail(f"`GoogLeNet28()` has {magnitude(got['params'])} parameters, {side} the book's GoogLeNet's: keep the "
             "Inception body.",
             reveal=f"The range is {magnitude(low)} to {magnitude(high)} (the book's {magnitude(book['params'])}).")
    expect_activations(p, "GoogLeNet28", input_shape=NATIVE_IMAGE)      # the book's: a ReLU after every convolution
    if flops > budget:
        fail(f"`GoogLeNet28()` needs {magnitude(flops)} FLOPs per 28×28 image, more than {FLOPS_FACTOR:g}× the "
             f"{magnitude(sum(book['flops'].values()))} of the book's GoogLeNet at 96×96: the body runs at too "
             "high a resolution; keep some downsampling.")
    return f"{magnitude(got['params'])} parameters, {magnitude(flops)} FLOPs per image"


# -- 8.4/4 ----------------------------------------------------------------------------------------------
def _models() -> dict:
    return {"AlexNet": ("AlexNet", ()), "VGG": ("VGG", (ref.VGG11,)), "NiN": ("NiN", ()), "GoogLeNet": ("GoogleNet", ())}


def _without_biases(key: str) -> int:
    """The reference's count for `key` stated without biases: the other exact form a right answer may give."""
    name, args = _models()[key]
    return without_biases(describe_reference(ref, name, *args, input_shape=GOOGLENET_IMAGE))


def _reference_counts() -> dict:
    """{model: (reference count, {mistake: count})} for 1×224×224 images and 10 classes. Not cached here: every
    call must go through the seam, so that a release records `ref.VGG11` whichever check or test asked first
    (`computed` already measures each network once per process)."""
    colour = {"input_shape": (1, 3, 224, 224), "num_classes": 1000}
    counts = {}
    for key, (name, args) in _models().items():
        measured = describe_reference(ref, name, *args, input_shape=GOOGLENET_IMAGE)
        hints = {"the count for 3-channel images and 1000 classes (ImageNet)":
                 describe_reference(ref, name, *args, **colour)["params"]}
        if key == "VGG":
            hints["VGG-16's count, not VGG-11's"] = describe_reference(ref, "VGG", VGG16, input_shape=GOOGLENET_IMAGE)["params"]
        counts[key] = (measured["params"], hints)
    return counts


def _by_model(answer: dict) -> dict:
    """The answer's keys matched to the four models, ignoring case, spaces, dashes and "-11"."""
    found = {}
    for key, value in answer.items():
        model = COUNT_KEYS.get(re.sub(r"[^a-z0-9]", "", str(key).lower()))
        if model:
            found[model] = value
    return found


@check("8.4/4", points=2, title="Parameters of AlexNet, VGG-11, NiN and GoogLeNet", uses=("param_counts_all",),
       expected="each count within 1 % of the reference's, for 1×224×224 images and 10 classes")
def parameter_counts(p):
    answer = p.value("param_counts_all")
    if not isinstance(answer, dict):
        fail(f"`param_counts_all` should be a dict with the keys AlexNet, VGG, NiN and GoogLeNet, not {describe(answer)}.")
    found = _by_model(answer)
    missing = [key for key in ("AlexNet", "VGG", "NiN", "GoogLeNet") if key not in found]
    if missing:
        fail(f"`param_counts_all` has no count for {', '.join(missing)} (keys: AlexNet, VGG, NiN, GoogLeNet).")
    p.answer = ", ".join(f"{key}: {magnitude(as_count(value, key))}" for key, value in found.items())
    for key, (expected, hints) in _reference_counts().items():
        expect_count(found[key], expected, f"param_counts_all[{key!r}]", rel=0.01, hints=hints,
                     exact=(expected, _without_biases(key)))
    return ", ".join(f"{key} {magnitude(expected)}" for key, (expected, _) in _reference_counts().items())
