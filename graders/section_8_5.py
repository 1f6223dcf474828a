"""Checks for 8.5 Batch normalization.

Normalisation layers are built and run inside the student runtime (graders/probes/section_8_5.py): a few
training-mode steps with gradients on, then one evaluation-mode pass under torch.no_grad() (how the book's
code tells the modes apart, and how d2l evaluates). What each output should be is computed here, in float64,
from the same batches: the formula of nn.BatchNorm1d/2d, whose running variance is the unbiased one; the
book's code keeps the biased one, and both are accepted (messages say which was found).

Training (8.5/2) follows 7.6: the grader's batches, held-out labels kept here, reference runs in a pinned
child (d2lgrade/numerics/pinned), a step budget instead of the clock. Its own short trainer (probes.train_bn) scores
the held-out images with batch statistics: after 100 steps at learning rate 1 the running averages lag the
weights, and evaluation-mode losses of one network swung from 1.6 to 2.5 with the initial seed (training-mode
scoring: 1.27 to 1.45), too noisy for a threshold. The reference runs, and the layers of the section's
BNLeNet in which the grader scores the student's trained parameters, go through d2lgrade.values.expected: a
student kit holds their figures and the layer description, which the grader rebuilds with torch.nn
(d2lgrade/compare/rebuild.py).
"""
from pathlib import Path

import torch
from torch.nn import functional as F

from d2lgrade.core import data
from d2lgrade.numerics import pinned
from d2lgrade.core.checks import StudentError, Unverified, check, fail
from d2lgrade.compare import rebuild
from d2lgrade.compare.inputs import randint
from d2lgrade.values.expected import computed, reference
from graders.architecture import as_count, describe_student
from graders.nonlinearity import expect_activations
from graders.probes import layers as layer_probes
from graders.probes import section_8_5 as probes

ref = reference("8.5")

EPS, MOMENTUM = 1e-5, 0.1
# 8.5/2: a short seeded run at a learning rate the sigmoid LeNet cannot use (measured: it stays at chance).
STEPS, BATCH, HIGH_LR, ORDER_SEED = 100, 64, 1.0, 85
TRAIN_LIMIT, EVAL_LIMIT, TRAIN_TIMEOUT = 4096, 1000, 90
MARGIN = 0.5     # the student's loss must close at least half the gap from the plain LeNet's to the reference's


# -- what a normalisation layer should output -----------------------------------------------------------
def _statistics(X, dims):
    return X.mean(dims, keepdim=True), X.var(dims, keepdim=True, unbiased=False), X.var(dims, keepdim=True)


def normalised(batches, eval_X, *, centre=True, scale=True, unbiased=True, eval_mode="running",
               momentum=MOMENTUM):
    """Training-mode outputs of a fresh layer on each batch (γ = 1, β = 0) and its evaluation output.

    eval_mode: "running" (the running averages), "batch" (the batch's own statistics), "initial" (never
    updated: mean 0, variance 1); `momentum` is the weight of the new batch in the running averages."""
    dims = (0,) if batches[0].dim() == 2 else (0, 2, 3)
    shape = [1] * batches[0].dim()
    shape[1] = batches[0].shape[1]
    mean_run, var_run = torch.zeros(shape, dtype=torch.float64), torch.ones(shape, dtype=torch.float64)

    def apply(X, mean, var):
        Y = X - mean if centre else X
        return Y / torch.sqrt(var + EPS) if scale else Y

    outputs = []
    for X in batches:
        X = X.double()
        mean, var_b, var_u = _statistics(X, dims)
        outputs.append(apply(X, mean, var_b))
        mean_run = (1 - momentum) * mean_run + momentum * mean
        var_run = (1 - momentum) * var_run + momentum * (var_u if unbiased else var_b)
    E = eval_X.double()
    if eval_mode == "batch":
        mean_run, var_run = _statistics(E, dims)[:2]
    elif eval_mode == "initial":
        mean_run, var_run = torch.zeros(shape, dtype=torch.float64), torch.ones(shape, dtype=torch.float64)
    return outputs, apply(E, mean_run, var_run)


def _rms_scaled(X):
    dims = (0,) if X.dim() == 2 else (0, 2, 3)
    return X.double() / torch.sqrt((X.double() ** 2).mean(dims, keepdim=True) + EPS)


def _close(got, expected) -> bool:
    if not isinstance(got, torch.Tensor) or got.numel() != expected.numel():
        return False
    return bool(torch.allclose(got.double().reshape(expected.shape), expected, rtol=1e-4, atol=1e-4))


REALISTIC_BATCHES = (64, 24)   # after the small ones: a layer must not change its rule for larger batches


def _batches(p, num_dims, count=3, N=None):
    """Random batches whose channels have different means and spreads (so centring and scaling both show)."""
    C = randint(p.rng, 2, 6)
    N = N or randint(p.rng, 4, 9)
    shape = (N, C) if num_dims == 2 else (N, C, randint(p.rng, 2, 5), randint(p.rng, 2, 5))
    view = (1, C) if num_dims == 2 else (1, C, 1, 1)
    shift = (torch.rand(C, generator=p.rng) * 6 - 3).reshape(view)
    spread = (torch.rand(C, generator=p.rng) * 3 + 0.5).reshape(view)
    batches = [torch.randn(*shape, generator=p.rng) * spread + shift for _ in range(count + 1)]
    return C, batches[:-1], batches[-1]


def _run_student(p, probe, who: str, *args, **kwargs):
    """`p.run`, with an error of the student's code named by the student's call, not by the grader's probe."""
    try:
        return p.run(probe, *args, **kwargs)
    except StudentError as exc:
        raise StudentError(exc.message.replace(f"the probe {probe.__name__}", who), exc.detail) from None


def _shape(shape) -> str:
    return "(" + ", ".join(str(s) for s in shape) + ")"


def _judge_norm(p, name, num_dims, *, centre, scale, what):
    """Run `name(C, num_dims)` and compare its training and evaluation outputs with the formula."""
    C, batches, eval_X = _batches(p, num_dims)
    call = f"{name}({C}, {num_dims})"
    moved = _moved_inputs(p, batches, eval_X)
    reply = _run_student(p, probes.norm_runs, f"`{call}`", name, [C, num_dims], batches, eval_X, moved=moved, timeout=30)
    if "bad_output" in reply:
        fail(f"{call} returns a {reply['bad_output']}, not a tensor.")
    expected, _ = normalised(batches, eval_X, centre=centre, scale=scale)
    for step, (got, want, X) in enumerate(zip(reply["train"], expected, batches)):
        if tuple(got.shape) != tuple(X.shape):
            fail(f"{call} in training mode returns shape {_shape(got.shape)} for a batch of shape {_shape(X.shape)}; "
                 "a normalisation layer keeps the shape.")
        if _close(got, want):
            continue
        label = f"{call} in training mode (batch {step + 1} of shape {_shape(X.shape)})"
        candidates = {
            "subtracts the batch mean and divides by the standard deviation (full batch norm)":
                normalised([X], X, centre=True, scale=True)[0][0],
            "only subtracts the batch mean": normalised([X], X, centre=True, scale=False)[0][0],
            "only divides by the batch standard deviation": normalised([X], X, centre=False, scale=True)[0][0],
            "divides by the root mean square (sqrt of the mean of X²), not by the standard deviation":
                _rms_scaled(X),
            "returns its input unchanged": X.double()}
        found = next((text for text, value in candidates.items() if _close(got, value)), None)
        if found:
            fail(f"{label} {found}; {what}.")
        fail(f"{label} gives other values than the formula per {'feature' if num_dims == 2 else 'channel'} "
             f"(largest difference {(got.double().reshape(want.shape) - want).abs().max().item():.3g}): {what}.")
    how = _judge_eval(reply["eval"], batches, eval_X, call, centre=centre, scale=scale)
    _judge_moved(reply.get("moved"), batches, moved, call, centre=centre, scale=scale)
    return reply, how


def _moved_inputs(p, batches, eval_X) -> dict:
    """γ and β away from 1 and 0, and batches of realistic sizes with the small ones' channel statistics."""
    C = batches[0].shape[1]
    later = [X.repeat(-(-N // X.shape[0]), *[1] * (X.dim() - 1))[:N] for X, N in zip(batches, REALISTIC_BATCHES)]
    later = [X + 0.3 * torch.randn(X.shape, generator=p.rng) for X in later]
    return {"gamma": torch.rand(C, generator=p.rng) + 0.5, "beta": torch.randn(C, generator=p.rng),
            "batches": later, "eval_X": eval_X.repeat(-(-REALISTIC_BATCHES[0] // eval_X.shape[0]),
                                                      *[1] * (eval_X.dim() - 1))[:REALISTIC_BATCHES[0]]}


def _judge_moved(got, batches, moved, call, *, centre, scale) -> None:
    """After γ and β are set to other values, on larger batches: γ·(normalised X) + β, with the running averages
    carried on from the small batches."""
    if got is None:
        fail(f"{call} in evaluation mode returns no tensor.")
    view = [1] * batches[0].dim()
    view[1] = batches[0].shape[1]
    gamma = moved["gamma"].double().reshape(view) if "gamma" in got["roles"] else torch.ones(view, dtype=torch.float64)
    beta = moved["beta"].double().reshape(view) if "beta" in got["roles"] else torch.zeros(view, dtype=torch.float64)
    moved_words = " and ".join(n for n, role in (("γ", "gamma"), ("β", "beta")) if role in got["roles"])
    after = f" after {moved_words} were set to other values" if moved_words else ""
    everything = [*batches, *moved["batches"]]
    for unbiased in (True, False):
        train, evaluated = normalised(everything, moved["eval_X"], centre=centre, scale=scale, unbiased=unbiased)
        train = train[len(batches):]
        if all(_close(g, gamma * t + beta) for g, t in zip(got["train"], train)) and \
                _close(got["eval"], gamma * evaluated + beta):
            return
    for k, (Y, X, want) in enumerate(zip(got["train"], moved["batches"], train)):
        if _close(Y, gamma * want + beta):
            continue
        label = f"{call} in training mode on a batch of {X.shape[0]}{after}"
        if moved_words and _close(Y, want):
            fail(f"{label} still returns what γ = 1 and β = 0 give: the layer does not use its own {moved_words}.")
        if not isinstance(Y, torch.Tensor) or tuple(Y.shape) != tuple(X.shape):
            fail(f"{label} returns {'no tensor' if not isinstance(Y, torch.Tensor) else _shape(Y.shape)}; a "
                 "normalisation layer keeps the shape.")
        fail(f"{label} does not compute {'γ·' if 'gamma' in got['roles'] else ''}(normalised X)"
             f"{' + β' if 'beta' in got['roles'] else ''} (largest difference "
             f"{(Y.double().reshape(want.shape) - (gamma * want + beta)).abs().max().item():.3g}); it should not "
             "depend on the batch size.")
    fail(f"{call} in evaluation mode{after}, after batches of {' and '.join(str(N) for N in REALISTIC_BATCHES)}, "
         f"does not match normalisation with the running averages (momentum {MOMENTUM}, eps {EPS}).")


def _judge_eval(got, batches, eval_X, call, *, centre, scale) -> str:
    """Evaluation mode uses the running averages: nn.BatchNorm's (unbiased variance) or the book's (biased)."""
    label = f"{call} in evaluation mode (after {len(batches)} training batches)"
    if not isinstance(got, torch.Tensor):
        fail(f"{label} returns no tensor.")
    for unbiased, how in ((True, "with the unbiased running variance, as nn.BatchNorm keeps it"),
                          (False, "with the biased running variance, as the book's batch_norm keeps it")):
        if _close(got, normalised(batches, eval_X, centre=centre, scale=scale, unbiased=unbiased)[1]):
            return how
    mistakes = {
        "normalises with the statistics of the batch it is given, not with the running averages":
            dict(eval_mode="batch"),
        "uses mean 0 and variance 1: the running averages were never updated in training mode "
        "(assign the updated averages back to the layer)": dict(eval_mode="initial"),
        "weights the running averages the wrong way round: running = (1 − momentum)·running + momentum·batch, "
        "with momentum 0.1": dict(momentum=1 - MOMENTUM)}
    for text, options in mistakes.items():
        for unbiased in (True, False):
            if _close(got, normalised(batches, eval_X, centre=centre, scale=scale, unbiased=unbiased, **options)[1]):
                fail(f"{label} {text}.")
    fail(f"{label} does not match normalisation with the running averages (momentum {MOMENTUM}, eps {EPS}).")


# -- 8.5/1 ------------------------------------------------------------------------------------------------
# The last network ends with its normalised pair: a loop that stops one layer early (or looks further ahead
# than the next layer) misses the last bias there.
BIAS_LAYOUTS = (
    [("conv", 3, 8), ("bn2", 8), ("relu",), ("conv", 8, 4), ("relu",)],
    [("flatten",), ("linear", 48, 16), ("bn1", 16), ("relu",), ("linear", 16, 5)],
    [("conv", 2, 4), ("bn2", 4), ("relu",), ("conv", 4, 6), ("bn2", 6), ("flatten",), ("linear", 6 * 16, 3)],
    [("conv", 3, 4), ("relu",), ("flatten",), ("linear", 4 * 16, 6), ("bn1", 6)],
)
BIAS_INPUTS = ((3, 5, 5), (3, 4, 4), (2, 4, 4), (3, 4, 4))


def _before_bn(layers) -> list[int]:
    return [i for i, row in enumerate(layers[:-1])
            if row[0] in ("Conv2d", "Linear") and layers[i + 1][0].startswith("BatchNorm")]


@check("8.5/1", points=2, title="Removing the bias before batch norm changes nothing in training",
       uses=("without_bias",),
       expected="a network without the biases of the layers directly followed by batch norm, other layers and "
                "weights unchanged, with the same training-mode outputs")
def bias_removal(p):
    cases = [(layout, torch.randn(randint(p.rng, 3, 6), *size, generator=p.rng), 850 + k)
             for k, (layout, size) in enumerate(zip(BIAS_LAYOUTS, BIAS_INPUTS))]
    replies = _run_student(p, probes.bias_cases, "`without_bias(net)`", cases, timeout=30)
    for k, reply in enumerate(replies):
        net = " → ".join(row[0] for row in (reply.get("original") or []))
        if "bad_output" in reply:
            fail(f"without_bias(net) returns a {reply['bad_output']}, not a network (nn.Module).")
        original, layers = reply["original"], reply["layers"]
        removable = _before_bn(original)
        if layers is not None and len(layers) == len(original):
            for i in removable:
                if layers[i][1]:
                    zero = layers[i][2] is not None and not layers[i][2].abs().max().item()
                    fail(f"in {net}, layer {i} ({layers[i][0]}) is followed by {original[i + 1][0]} but "
                         + ("its bias is only set to zero: it is still a parameter that training updates; "
                            "remove it (bias=None, or bias=False when building the layer)." if zero
                            else "still has a bias."))
            for i, row in enumerate(original):
                if row[1] and i not in removable and not layers[i][1]:
                    fail(f"in {net}, the bias of layer {i} ({row[0]}) was removed, but no batch norm follows "
                         "that layer, so its bias changes the output: keep it.")
        if reply["got"] is None or not _close(reply["got"], reply["expected"].double()):
            fail(f"on {net}, the network without_bias returns gives other training-mode outputs than the "
                 "original: keep every weight (copy the layers) and remove only the biases batch norm cancels.")
        removed = sum(original[i][2].numel() for i in removable)
        if reply["params"] != reply["original_params"] - removed:
            fail(f"on {net}, the returned network has {reply['params']} parameters; without the {len(removable)} "
                 f"bias(es) before batch norm it should have {reply['original_params'] - removed}.")
    return (f"removes exactly the biases followed by batch norm; training-mode outputs unchanged on {len(BIAS_LAYOUTS)} "
            "networks")


# -- 8.5/2 and 8.5/3 ---------------------------------------------------------------------------------------
def _norm_after(layers, kinds) -> tuple[list[str], list[str]]:
    """(layers of `kinds` followed by a normalisation layer, those that are not), skipping the last layer."""
    rows = [row for row in layers if row[1] not in ("Flatten", "Dropout")]
    weighted = [i for i, row in enumerate(rows) if row[1] in kinds]
    followed, bare = [], []
    for i in weighted[:-1] if rows and rows[-1][1] in kinds else weighted:
        nxt = rows[i + 1][1] if i + 1 < len(rows) else ""
        (followed if "Norm" in nxt else bare).append(f"{rows[i][0]} ({rows[i][1]})")
    return followed, bare


POOLS = ("MaxPool2d", "AvgPool2d", "AdaptiveAvgPool2d", "AdaptiveMaxPool2d", "LPPool2d")


def _unpooled(layers) -> list[str]:
    """The convolutions whose output reaches the next weighted layer (or the end) without a pooling layer."""
    bare, pending = [], None
    for row in layers:
        if row[1] in ("Conv2d", "Linear"):
            if pending:
                bare.append(pending)
            pending = f"`{row[0]}` (Conv2d)" if row[1] == "Conv2d" else None
        elif row[1] in POOLS:
            pending = None
    return bare + ([pending] if pending else [])


def _lenet_layers(p, name):
    """The layers of the section's LeNet shape: every convolution pooled, an activation after every weighted
    layer but the last (what the forward pass computes: an activation swapped for nn.Identity fails)."""
    reply = describe_student(p, name, input_shape=(2, 1, 28, 28))
    if reply["output"] != [2, 10]:
        fail(f"`{name}()` returns shape {reply['output']} for a batch of shape (2, 1, 28, 28); expected (2, 10).")
    unpooled = _unpooled(reply["layers"])
    if unpooled:
        fail(f"in `{name}()`, {unpooled[0]} is not followed by a pooling layer: the section's LeNet pools after "
             "each convolution, and only where batch norm goes should change.")
    expect_activations(p, name, input_shape=(2, 1, 28, 28), activation="the section's sigmoid")
    return reply["layers"]


@check("8.5/2", name="architecture", points=1, title="Batch norm after every convolution and hidden dense layer",
       uses=("BNLeNet",), expected="conv → BN → sigmoid → pool twice, then dense → BN → sigmoid twice, and the output layer (an "
                "activation applied after every layer but the last)")
def bn_lenet_architecture(p):
    layers = _lenet_layers(p, "BNLeNet")
    followed, bare = _norm_after(layers, ("Conv2d", "Linear"))
    if bare:
        fail(f"`BNLeNet()` has no batch norm after {', '.join(bare)}; the section's network normalises the "
             "output of every convolution and hidden dense layer.")
    if len(followed) != 4:
        fail(f"`BNLeNet()` normalises {len(followed)} layer(s); the section's network has 4 (two convolutions, "
             "two hidden dense layers).")
    return "batch norm after both convolutions and both hidden dense layers"


def _data(p):
    """The grader's training and held-out images (the held-out labels never reach the runtime)."""
    train, test = data.training_and_held_out("fashion_mnist", p.options.data_dir, TRAIN_LIMIT, EVAL_LIMIT)
    return train, test


def _order(n_train: int) -> torch.Tensor:
    return torch.randint(0, n_train, (STEPS, BATCH), generator=torch.Generator().manual_seed(ORDER_SEED))


def reference_training(factory_name: str, train_X, train_y, order, test_X) -> dict:
    """Train reference.section_8_5.<factory_name>() like the student's; runs in a pinned child (d2lgrade/numerics/pinned)."""
    torch.manual_seed(0)
    return probes.train_bn({factory_name: getattr(ref.module, factory_name)}, factory_name, train_X, train_y, order,
                           test_X, HIGH_LR)


def _train_reference(module, factory_name: str, train, test, order) -> float:
    """(Course folder only, through `computed`.) The held-out loss of the reference's `factory_name()` trained
    like the student's, in a pinned child, cached (d2lgrade/numerics/pinned)."""
    run = pinned.call("graders.section_8_5:reference_training", factory_name, train.X, train.y, order, test.X,
                      sources=(Path(probes.__file__), Path(module.__file__)))
    return F.cross_entropy(run["final"].double(), test.y).item()


def _reference_loss(factory_name, train, test, order) -> float:
    """The held-out loss of the reference's `factory_name()` (in a student kit: recorded at release)."""
    return computed(ref, f"train {factory_name}", _train_reference, factory_name, train, test, order)


@check("8.5/2", name="training", points=2, title="Batch norm learns at a learning rate the plain LeNet cannot use",
       uses=("BNLeNet",),
       expected=f"after {STEPS} SGD steps (batch {BATCH}, lr {HIGH_LR:g}, Xavier init) a held-out loss at least "
                f"{MARGIN:.0%} of the way from the LeNet without batch norm to the reference BNLeNet")
def bn_lenet_training(p):
    train, test = _data(p)
    order = _order(len(train))
    plain, best = _reference_loss("LeNet", train, test, order), _reference_loss("BNLeNet", train, test, order)
    layers = _section_bn_lenet()
    try:
        reply = p.run(probes.train_bn, "BNLeNet", train.X, train.y, order, test.X, HIGH_LR, timeout=TRAIN_TIMEOUT)
    except StudentError as exc:
        raise StudentError(exc.message.replace("the probe train_bn", "`BNLeNet()`"), exc.detail) from None
    stopped = reply.get("stopped")
    if stopped == "frozen":
        fail("no parameter of `BNLeNet()` requires a gradient, so training cannot change it.")
    final = reply.get("final")
    if stopped == "diverged" or isinstance(final, torch.Tensor) and not torch.isfinite(final).all():
        loss = float("inf")
    elif not isinstance(final, torch.Tensor) or tuple(final.shape) != (len(test), 10):
        fail(f"`BNLeNet()` returns {getattr(final, 'shape', 'no tensor')} for {len(test)} held-out images; "
             f"expected shape ({len(test)}, 10).")
    else:
        loss = F.cross_entropy(final.double(), test.y).item()
    # Judged only on a network the grader runs itself, and that computes what the student's does: its own copy
    # of the section's BNLeNet with the trained parameters, else the network rebuilt from the layers the first
    # training step ran. A run that diverged is judged by that alone.
    if loss != float("inf"):
        own = _grader_scores(layers, reply.get("weights"), test.X)
        how = "your trained parameters, scored by the grader in its own BNLeNet"
        if own is None or not torch.isfinite(own).all() or not rebuild.faithful(own, final):
            own, how = rebuild.trained_outputs({**reply, "weights": reply.get("state")}, test.X, chunk=probes.CHUNK)
            if own is None:
                raise Unverified(rebuild.unverifiable("BNLeNet()", how))
            how = f"{how}, scored by the grader in the network it rebuilt"
        loss = F.cross_entropy(own.double(), test.y).item()
    else:
        how = "its training, which diverged"
    bar = plain - MARGIN * (plain - best)
    p.answer = f"held-out loss {loss:.3f} after {STEPS} steps at lr {HIGH_LR:g} (plain LeNet {plain:.3f}, reference BNLeNet {best:.3f})"
    if not loss <= bar:
        fail(f"after {STEPS} steps at learning rate {HIGH_LR:g}, `BNLeNet()` has a held-out loss of {loss:.3f}, "
             f"above {bar:.3f} (the LeNet without batch norm stays at {plain:.3f}, the section's BNLeNet reaches "
             f"{best:.3f}): batch norm after each layer is what lets this rate train. Judged on {how}.")
    return (f"held-out loss {loss:.3f} at lr {HIGH_LR:g}, against {plain:.3f} without batch norm ({_source(test)}); "
            f"judged on {how}")


def _describe_bn_lenet(module) -> dict:
    """(Course folder only, through `computed`.) The section's BNLeNet as plain data: its layers in call order
    (graders/probes/layers.py) and its state_dict's entries [name, shape, is a parameter] in order."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = module.BNLeNet()
        model.train()
        with layer_probes.LayerRecorder(model) as calls, torch.no_grad():
            model(torch.zeros(2, 1, 28, 28))
    parameters = {name for name, _ in model.named_parameters()}
    return {"layers": layer_probes.describe_calls(model, calls),
            "state": [[name, list(t.shape), name in parameters] for name, t in model.state_dict().items()]}


def _section_bn_lenet() -> dict:
    """The section's BNLeNet as plain data (in a student kit: recorded at release)."""
    return computed(ref, "layers of BNLeNet", _describe_bn_lenet)


def _grader_scores(network: dict, weights, X):
    """Held-out scores of the student's trained parameters in the grader's own copy of the section's BNLeNet,
    rebuilt from `network` with torch.nn (batch statistics of each chunk, as the probe scores them), or None
    when the parameters do not fit its layers in order."""
    if not isinstance(weights, list) or not weights or not all(isinstance(w, torch.Tensor) for w in weights):
        return None
    slots = [(name, shape) for name, shape, is_parameter in network["state"] if is_parameter]
    if [tuple(w.shape) for w in weights] != [tuple(shape) for _, shape in slots]:
        return None
    trained = dict(zip((name for name, _ in slots), weights))
    # the buffers (running averages) are not used: the grader scores with batch statistics
    state = [[name, trained[name] if name in trained else
              torch.zeros(shape, dtype=torch.long) if name.endswith("num_batches_tracked") else
              torch.ones(shape) if name.endswith("running_var") else torch.zeros(shape)]
             for name, shape, _ in network["state"]]
    try:
        model = rebuild.rebuild(network["layers"], state)
    except rebuild.RebuildError:
        return None
    model.train()
    with torch.no_grad():
        return torch.cat([model(X[i:i + probes.CHUNK].double()) for i in range(0, len(X), probes.CHUNK)])


def _source(images) -> str:
    return "offline stand-in data" if images.standin else images.source


@check("8.5/2", name="claim", points=1, title="Largest stable learning rates, with and without batch norm",
       uses=("largest_stable_lr",), expected='{"with_bn": a, "without_bn": b} from your sweep, with a > b > 0')
def stable_rates(p):
    claim = p.value("largest_stable_lr")
    if not isinstance(claim, dict) or set(claim) != {"with_bn", "without_bn"}:
        fail('`largest_stable_lr` should be a dict with the keys "with_bn" and "without_bn".')
    with_bn = as_count(claim["with_bn"], 'largest_stable_lr["with_bn"]')
    without = as_count(claim["without_bn"], 'largest_stable_lr["without_bn"]')
    if not with_bn > 0 < without:
        fail("learning rates are positive numbers.")
    if not with_bn > without:
        fail(f"your sweep says the largest stable rate is {with_bn:g} with batch norm and {without:g} without; "
             "batch norm should allow the larger one (try rates up to 10 with it).")
    return f"{with_bn:g} with batch norm, {without:g} without"


@check("8.5/3", points=1, title="Batch norm after the convolutions only", uses=("ConvBNLeNet",),
       expected="batch norm after both convolutions, none after the dense layers; each convolution pooled and an "
                "activation applied after every layer but the last")
def conv_only_bn(p):
    layers = _lenet_layers(p, "ConvBNLeNet")
    followed, _ = _norm_after(layers, ("Conv2d",))
    dense, _ = _norm_after(layers, ("Linear",))
    if len(followed) != 2:
        fail(f"`ConvBNLeNet()` normalises {len(followed)} of its 2 convolutions; it should normalise both.")
    if dense:
        fail(f"`ConvBNLeNet()` still normalises {', '.join(dense)}: the dense layers should have no batch norm.")
    return "batch norm after both convolutions only"


# -- 8.5/4: the book's code, then the lite variants ---------------------------------------------------------
def _bn_case(p, num_dims, grad, N=None):
    C, (X,), _ = _batches(p, num_dims, count=1, N=N)
    view = (1, C) if num_dims == 2 else (1, C, 1, 1)
    gamma, beta = torch.rand(view, generator=p.rng) + 0.5, torch.randn(view, generator=p.rng)
    mean, var = torch.randn(view, generator=p.rng), torch.rand(view, generator=p.rng) + 0.5
    return (X, gamma, beta, mean, var, EPS, MOMENTUM, grad)


def _bn_expected(case, unbiased):
    X, gamma, beta, mean, var, eps, momentum, grad = (v.double() if isinstance(v, torch.Tensor) else v for v in case)
    if not grad:
        return [gamma * (X - mean) / torch.sqrt(var + eps) + beta, mean, var]
    dims = (0,) if X.dim() == 2 else (0, 2, 3)
    m, var_b, var_u = _statistics(X, dims)
    return [gamma * (X - m) / torch.sqrt(var_b + eps) + beta, (1 - momentum) * mean + momentum * m,
            (1 - momentum) * var + momentum * (var_u if unbiased else var_b)]


@check("8.5/4", name="batch_norm", points=2, title="The section's batch_norm matches nn.BatchNorm",
       uses=("batch_norm",),
       expected="training (gradients on): batch statistics, running averages updated with momentum; prediction "
                "(torch.no_grad()): the running averages; for (N, C) and (N, C, H, W) inputs")
def book_batch_norm(p):
    cases = [_bn_case(p, dims, grad, N) for N in (None, REALISTIC_BATCHES[0]) for dims in (2, 4) for grad in (True, False)]
    replies = _run_student(p, probes.batch_norm_calls, "`batch_norm`", cases, timeout=30)
    for case, reply in zip(cases, replies):
        X, grad = case[0], case[-1]
        label = f"batch_norm on X of shape {_shape(X.shape)} " + ("with gradients on (training)" if grad
                                                                 else "under torch.no_grad() (prediction)")
        if "bad_output" in reply:
            fail(f"{label} returns {reply['bad_output']}; it should return (Y, moving_mean, moving_var).")
        for k, name in enumerate(("Y", "moving_mean", "moving_var")):
            got, want = reply["values"][k], _bn_expected(case, True)[k]
            if any(_close(got, _bn_expected(case, unbiased)[k]) for unbiased in (True, False)):
                continue
            if k == 0 and _close(got, _bn_expected(case[:-1] + (not grad,), True)[0]):
                fail(f"{label}: Y is normalised with the batch's statistics; in prediction the running averages "
                     "are used." if not grad else f"{label}: Y is normalised with the running averages; in "
                     "training the batch's own mean and variance are used.")
            if got.numel() != want.numel():
                fail(f"{label}: {name} has shape {_shape(got.shape)}; expected {_shape(want.shape)}.")
            error = (got.double().reshape(want.shape) - want).abs().max().item()
            fail(f"{label}: {name} is wrong (largest difference {error:.3g}).")
    return "matches nn.BatchNorm's formulas in training and prediction, for dense and convolutional inputs"


@check("8.5/4", name="BatchNorm", points=1, title="The section's BatchNorm layer matches nn.BatchNorm1d/2d",
       uses=("BatchNorm",),
       expected="the outputs of nn.BatchNorm1d/2d (eps 1e-5, momentum 0.1) in training mode and, after it, in "
                "evaluation mode under torch.no_grad()")
def book_module(p):
    how = []
    for num_dims in (2, 4):
        reply, found = _judge_norm(p, "BatchNorm", num_dims, centre=True, scale=True,
                                   what="batch norm subtracts the batch mean and divides by the standard deviation")
        how.append(found)
        C = reply["train"][0].shape[1]
        if reply["trainable"] != 2 * C:
            fail(f"`BatchNorm({C}, {num_dims})` has {reply['trainable']} trainable values; γ and β make {2 * C}.")
    return f"matches nn.BatchNorm1d and nn.BatchNorm2d in both modes ({how[-1]})"


@check("8.5/4", name="centre", points=2, title="Centring only", uses=("CenterOnlyNorm",),
       expected="training: X minus the batch mean per channel (plus β, 0 at first); evaluation: minus the running mean; "
                "one learnable β per channel")
def centre_only(p):
    for num_dims in (4, 2):
        reply, _ = _judge_norm(p, "CenterOnlyNorm", num_dims, centre=True, scale=False,
                               what="centring only subtracts the batch mean (no division)")
        C = reply["train"][0].shape[1]
        if reply["trainable"] != C:
            fail(f"`CenterOnlyNorm({C}, {num_dims})` has {reply['trainable']} trainable values; a shift β per "
                 f"{'feature' if num_dims == 2 else 'channel'} makes {C}.")
    return "subtracts the batch mean in training and the running mean in evaluation, with a learnable shift"


@check("8.5/4", name="scale", points=2, title="Scaling only", uses=("ScaleOnlyNorm",),
       expected="training: X divided by the batch standard deviation per channel (times γ, 1 at first); evaluation: "
                "by the running one; one learnable γ per channel")
def scale_only(p):
    for num_dims in (4, 2):
        reply, _ = _judge_norm(p, "ScaleOnlyNorm", num_dims, centre=False, scale=True,
                               what="scaling only divides by the batch standard deviation (sqrt(var + eps)), "
                                    "without subtracting the mean")
        C = reply["train"][0].shape[1]
        if reply["trainable"] != C:
            fail(f"`ScaleOnlyNorm({C}, {num_dims})` has {reply['trainable']} trainable values; a scale γ per "
                 f"{'feature' if num_dims == 2 else 'channel'} makes {C}.")
    return "divides by the batch standard deviation in training and the running one in evaluation, with a learnable scale"


# -- 8.5/5 ------------------------------------------------------------------------------------------------
@check("8.5/5", points=2, title="Batch norm with γ = 1 and β = 0 fixed", uses=("BatchNormFixed",),
       expected="outputs of batch norm with γ = 1 and β = 0 in both modes, and no trainable parameters")
def fixed_gamma_beta(p):
    for num_dims in (4, 2):
        reply, _ = _judge_norm(p, "BatchNormFixed", num_dims, centre=True, scale=True,
                               what="it should normalise with γ = 1 and β = 0")
        if reply["trainable"]:
            fail(f"`BatchNormFixed(..., {num_dims})` still has {reply['trainable']} trainable values "
                 f"({', '.join(reply['trainable_names'])}): fixed γ and β are constants (buffers or plain "
                 "tensors), not nn.Parameters that an optimizer would update.")
    return "normalises like batch norm with γ = 1 and β = 0, and has nothing to train"
