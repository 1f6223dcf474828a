"""Checks for 8.7 Densely connected networks (DenseNet).

Architectures are measured in the runtime on the `meta` device (graders/probes/architecture.py) and
compared with the reference's networks measured the same way here; no count is typed in. The dense MLP
(8.7/5) is trained in the runtime on the grader's batches (graders/probes/section_8_7.py), and its trained
weights are evaluated in the grader's own forward pass of the contract (inputs first, then each hidden
layer's ReLU output, concatenated); the reference's run that sets the threshold takes the same pinned CPU
code path (d2lgrade/numerics/pinned.py). The reference's measurements, its layer widths and that run go through
d2lgrade.values.expected: a student kit holds only their figures.
"""
from pathlib import Path

import torch
from torch.nn import functional as F

from d2lgrade.numerics import pinned
from d2lgrade.core.checks import StudentError, Verdict, check, fail
from d2lgrade.values.expected import computed
from d2lgrade.values.expected import reference as reference_of
from graders import architecture as arch
from graders.probes import section_8_7 as probes

ref = reference_of("8.7")

INPUT = (1, 1, 64, 64)          # dense blocks at 16, 8, 4 and 2 pixels: each block has its own resolution
BOOK_INPUT = (2, 1, 96, 96)     # the book's resolution for its DenseNet and ResNet-18


# -- 8.7/2 -----------------------------------------------------------------------------------------------
@check("8.7/2", points=2, title="Parameter counts of the book's DenseNet and ResNet-18", uses=("param_counts",),
       expected="the exact parameter counts of DenseNet() and ResNet18() for 1-channel images and 10 classes")
def book_parameter_counts(p):
    wanted = {key: arch.describe_reference(ref, name, input_shape=BOOK_INPUT)["params"]
              for key, name in (("densenet", "DenseNet"), ("resnet18", "ResNet18"))}
    answer = p.value("param_counts")
    if not isinstance(answer, dict) or set(answer) != {"densenet", "resnet18"}:
        fail(f"`param_counts` should be a dictionary with the keys \"densenet\" and \"resnet18\", not {answer!r:.80}.")
    for key, expected in wanted.items():
        conv_in = 64 * 7 * 7      # the stem's weights per input channel: what 3-channel images add, per channel
        arch.expect_count(answer[key], expected, f"param_counts[{key!r}]", rel=0,
                          hints={"the count for 3-channel (RGB) images": expected + 2 * conv_in})
    p.answer = f"DenseNet {answer['densenet']:,}, ResNet-18 {answer['resnet18']:,}"
    return f"DenseNet {answer['densenet']:,} and ResNet-18 {answer['resnet18']:,} parameters"


# -- 8.7/4 -----------------------------------------------------------------------------------------------
def _call_text(blocks, growth_rate, num_classes, label=None):
    """`label` names blocks that are an answer (DENSENET_BLOCKS[121]): the text says which, not what they are."""
    if label:
        return f"densenet({label}, growth_rate={growth_rate}, num_classes={num_classes})"
    return f"densenet({tuple(blocks)}, growth_rate={growth_rate}, num_classes={num_classes})"


def _measure(p, blocks, growth_rate=32, num_classes=10, label=None):
    reference = arch.describe_reference(ref, "densenet", tuple(blocks), input_shape=INPUT, growth_rate=growth_rate,
                               num_classes=num_classes)
    try:
        student = arch.describe_student(p, "densenet", list(blocks), input_shape=INPUT, growth_rate=growth_rate,
                                        num_classes=num_classes)
    except Verdict as verdict:
        if label:       # the blocks are 8.7/4:table's answer: the message names them, never prints them
            verdict.message = verdict.message.replace(repr(list(blocks)), label)
        raise
    return student, reference


def _is_dense(hyper, growth_rate) -> bool:
    return hyper["kernel_size"] == [3, 3] and hyper["out_channels"] == growth_rate


def _dense_layers_per_block(described, growth_rate) -> list[int]:
    """How many 3×3 convolutions with `growth_rate` outputs run at each resolution, in order: the dense
    layers of each block, whatever the student's modules are called."""
    counts: dict[tuple, int] = {}
    for _, kind, hyper, shape in described["layers"]:
        if kind == "Conv2d" and _is_dense(hyper, growth_rate):
            counts[tuple(shape[2:])] = counts.get(tuple(shape[2:]), 0) + 1
    return list(counts.values())


def _expect_structure(student, blocks, growth_rate, num_classes, label=None):
    call = _call_text(blocks, growth_rate, num_classes, label)
    if student["output"] != [INPUT[0], num_classes]:
        fail(f"{call} returns shape {student['output']} for images of shape {INPUT}; expected "
             f"[{INPUT[0]}, {num_classes}].")
    stem = next((h for _, kind, h, _ in student["layers"] if kind == "Conv2d"), None)
    if stem is None or stem["kernel_size"] != [7, 7] or stem["stride"] != [2, 2] or stem["out_channels"] != 2 * growth_rate:
        fail(f"the first convolution of {call} is {stem}; the paper's stem is a 7×7 convolution with stride 2 and "
             f"2 × growth_rate = {2 * growth_rate} output channels.")
    per_block = _dense_layers_per_block(student, growth_rate)
    if per_block != list(blocks):
        fail(f"{call} has {per_block or 'no'} 3×3 convolutions with growth_rate = {growth_rate} outputs per "
             f"resolution: {_first_difference(per_block, list(blocks))}, one block per resolution.",
             reveal=f"Expected {list(blocks)} dense layers.")
    shaped = [(h, shape[2:]) for _, kind, h, shape in student["layers"] if kind == "Conv2d"]
    convs = [h for h, _ in shaped]
    missing = sum(1 for before, h in zip(convs, convs[1:]) if _is_dense(h, growth_rate) and not (
        before["kernel_size"] == [1, 1] and before["out_channels"] == 4 * growth_rate == h["in_channels"]))
    if missing:
        fail(f"{missing} dense layers of {call} lack the paper's bottleneck: a 1×1 convolution "
             f"to 4 × growth_rate = {4 * growth_rate} channels right before the 3×3 convolution.")
    transitions = [h for (h, size), (_, later) in zip(shaped, shaped[1:]) if h["kernel_size"] == [1, 1]
                   and h["out_channels"] == h["in_channels"] // 2 and later < size]
    if len(transitions) != len(blocks) - 1:
        fail(f"{call} has {len(transitions)} 1×1 convolutions that halve the channels; the {len(blocks) - 1} "
             "transition layers between its blocks each need one (compression 0.5).")
    return per_block


def _first_difference(got: list, expected: list) -> str:
    """The first block whose number of layers differs, and which way: never the right number."""
    if len(got) != len(expected):
        return f"{len(got)} blocks, {'more' if len(got) > len(expected) else 'fewer'} than the paper's"
    for block, (have, want) in enumerate(zip(got, expected), start=1):
        if have != want:
            return f"block {block} has {'too many' if have > want else 'too few'} layers"
    return "the blocks differ"


@check("8.7/4", name="table", points=1, title="The paper's table", uses=("DENSENET_BLOCKS",),
       expected="DENSENET_BLOCKS maps 121, 169 and 201 to the dense layers of their four blocks")
def table(p):
    table = ref.DENSENET_BLOCKS
    answer = p.value("DENSENET_BLOCKS")
    if not isinstance(answer, dict):
        fail(f"`DENSENET_BLOCKS` should be a dictionary from depth to blocks, not {type(answer).__name__}.")
    for depth, blocks in table.items():
        got = answer.get(depth, answer.get(str(depth)))
        if got is None:
            fail(f"`DENSENET_BLOCKS` has no entry for DenseNet-{depth} (keys: {sorted(answer, key=str)}).")
        if not isinstance(got, (list, tuple)) or list(got) != list(blocks):
            where = _first_difference(list(got), list(blocks)) if isinstance(got, (list, tuple)) else \
                "it should be a tuple of four numbers"
            fail(f"`DENSENET_BLOCKS[{depth}]` is {tuple(got) if isinstance(got, (list, tuple)) else got!r}: that is not the number of layers in DenseNet-{depth}'s "
                 f"four dense blocks in Table 1 of the paper ({where}).",
                 reveal=f"The paper's table gives {tuple(blocks)}.")
    return "the layers per block of DenseNet-121, -169 and -201"


@check("8.7/4", name="structure", points=2, title="DenseNet-121: blocks, bottlenecks, transitions, output",
       uses=("densenet",),
       expected="densenet(DENSENET_BLOCKS[121]): a 7×7 stem with 64 channels, the paper's dense layers per block, each "
                "with a 1×1 bottleneck to 128 channels, three transitions halving the channels, shape (N, 10)")
def structure(p):
    blocks = ref.DENSENET_BLOCKS[121]
    student, _ = _measure(p, blocks, label="DENSENET_BLOCKS[121]")
    _expect_structure(student, blocks, 32, 10, "DENSENET_BLOCKS[121] of the paper")
    return f"the paper's dense layers per block, bottlenecks and transitions in place, output {student['output']}"


def _expect_parameters(student, reference, call):
    """The reference's count, or the same network with a bias in every convolution."""
    conv_biases = sum(h["out_channels"] for _, kind, h, _ in reference["layers"] if kind == "Conv2d")
    count = student["params"]
    if count in (reference["params"], reference["params"] + conv_biases):
        return "with" if count != reference["params"] else "without"
    arch.expect_count(count, reference["params"], f"the parameter count of {call}", rel=0)


@check("8.7/4", name="parameters", points=2, title="DenseNet-121/169/201: parameter counts", uses=("densenet",),
       expected="as many parameters as the reference's DenseNet-121, -169 and -201 (convolution biases allowed)")
def parameters(p):
    found, table = [], ref.DENSENET_BLOCKS
    for depth, blocks in table.items():
        student, reference = _measure(p, blocks, label=f"DENSENET_BLOCKS[{depth}]")
        biases = _expect_parameters(student, reference, f"DenseNet-{depth}, {_call_text(blocks, 32, 10, f'DENSENET_BLOCKS[{depth}]')},")
        found.append(f"DenseNet-{depth} {student['params']:,}")
    p.answer = ", ".join(found)
    return ", ".join(found) + f" parameters ({biases} convolution biases)"


@check("8.7/4", name="growth", points=1, title="Another growth rate and number of blocks", uses=("densenet",),
       expected="densenet((2, 3, 4), growth_rate=12, num_classes=5): 3 blocks, and the reference's parameter count")
def other_growth_rate(p):
    blocks = (2, 3, 4)
    student, reference = _measure(p, blocks, growth_rate=12, num_classes=5)
    _expect_structure(student, blocks, 12, 5)
    _expect_parameters(student, reference, _call_text(blocks, 12, 5))
    return f"{student['params']:,} parameters with growth rate 12 and three blocks"


# -- 8.7/5 -----------------------------------------------------------------------------------------------
MLP_CONFIGS = ({"num_inputs": 10}, {"num_inputs": 7, "num_layers": 4, "growth": 5, "num_outputs": 2})
STEPS, BATCH, LR, ORDER_SEED = 150, 32, 0.01, 87
RMSE_SLACK = 1.15          # the held-out RMSE may be this many times the reference's


def _mlp_call(kwargs):
    return "DenseMLP(" + ", ".join(f"{k}={v}" for k, v in kwargs.items()) + ")"


def _reference_linears(module, kwargs: dict) -> list:
    """(Course folder only, through `computed`.) [in, out] of the reference DenseMLP(**kwargs)'s Linear layers
    in the order a forward pass runs them."""
    model = probes._build(vars(module), kwargs)
    linears, _ = probes._linears_in_order(model, torch.zeros(2, kwargs["num_inputs"]))
    return [[m.in_features, m.out_features] for m in linears]


def _linears(kwargs: dict) -> list:
    return computed(ref, "DenseMLP layers", _reference_linears, dict(kwargs))


@check("8.7/5", name="shapes", points=1, title="Layer widths grow by `growth`", uses=("DenseMLP",),
       expected="hidden Linear layers from num_inputs + i·growth to growth features, the output layer from "
                "num_inputs + num_layers·growth; output (N, num_outputs)")
def mlp_shapes(p):
    wanted = [_linears(kwargs) for kwargs in MLP_CONFIGS]
    for kwargs, expected in zip(MLP_CONFIGS, wanted):
        d, outputs = kwargs["num_inputs"], expected[-1][1]
        X = torch.randn(6, d, generator=p.rng)
        reply = p.run(probes.structure, kwargs, X)
        call = _mlp_call(kwargs)
        if reply["output"] != [6, outputs]:
            fail(f"{call} maps a batch of shape (6, {d}) to {reply['output']}; expected [6, {outputs}].")
        if reply["linears"] != expected:
            fail(f"the Linear layers of {call} map {[tuple(l) for l in reply['linears']]} features (in, out), in the "
                 f"order they run; expected {[tuple(l) for l in expected]}: each layer sees the inputs and every "
                 "earlier layer's output, concatenated.")
    return "layer widths grow by `growth`, for two configurations"


@check("8.7/5", name="concatenation", points=2, title="Inputs reach every later layer", uses=("DenseMLP",),
       expected="with any hidden layer's weights set to zero the output still depends on the inputs, because the "
                "inputs are concatenated to what every later layer receives")
def mlp_concatenation(p):
    kwargs = MLP_CONFIGS[1]
    X = torch.randn(8, kwargs["num_inputs"], generator=p.rng)
    reply = p.run(probes.structure, kwargs, X)
    call = _mlp_call(kwargs)
    if reply["spread"] < 1e-6:
        fail(f"{call} gives the same output for every input.")
    for k, spread in enumerate(reply["zeroed"]):
        if spread < 1e-6:
            fail(f"with the weights of its hidden layer {k} set to zero, {call} gives the same output for every "
                 "input: later layers see only that layer's output, not the concatenation of the inputs and all "
                 "earlier outputs.")
    if reply["all_zeroed"] is not None and reply["all_zeroed"] < 1e-6:
        fail(f"with every hidden layer's weights set to zero, {call} gives the same output for every input: the "
             "output layer must receive the inputs too (concatenated with the hidden layers' outputs).")
    return "the inputs reach the output layer past every hidden layer"


def house_data():
    """The offline stand-in for section 5.7's house prices: scikit-learn's diabetes data, split 342/100 with
    a fixed seed, features standardised with the training statistics, the target as its logarithm."""
    from sklearn.datasets import load_diabetes
    X, y = load_diabetes(return_X_y=True, scaled=False)
    # In float64, rounded to float32 at the end: the grader's own process runs the machine's code path, and a
    # float32 mean summed 8 or 16 at a time would hand the training other inputs on another CPU.
    X, y = torch.tensor(X, dtype=torch.float64), torch.tensor(y, dtype=torch.float64).log()
    permutation = torch.randperm(len(y), generator=torch.Generator().manual_seed(57))
    train, test = permutation[:342], permutation[342:]
    mean, std = X[train].mean(0), X[train].std(0)
    X, y = ((X - mean) / std).to(torch.float32), y.to(torch.float32)
    return X[train], y[train], X[test], y[test]


def reference_mlp_training(kwargs, X_train, y_train, order, X_eval, recipe) -> dict:
    """The reference DenseMLP trained with the grader's recipe; runs in a pinned child (d2lgrade/numerics/pinned), in the
    course folder only."""
    return probes.train_mlp(vars(ref.module), kwargs, X_train, y_train, order, X_eval, recipe)


def _train_reference(module, kwargs, X_train, y_train, order, X_eval, y_eval, recipe) -> dict:
    """(Course folder only, through `computed`.) The held-out RMSE of the reference DenseMLP trained with
    `recipe` on the grader's batches, in a pinned child, cached (d2lgrade/numerics/pinned)."""
    sources = (Path(probes.__file__), Path(module.__file__))
    run = pinned.call("graders.section_8_7:reference_mlp_training", kwargs, X_train, y_train, order, X_eval, recipe,
                      sources=sources)
    return {"rmse": _rmse(run["final"], y_eval)}


def _grader_predictions(weights, shapes, X):
    """The student's trained weights run through the grader's own forward pass of the contract (each hidden
    layer sees the inputs and every earlier hidden layer's ReLU output, concatenated in that order; the
    output layer sees all of them); None when their [in, out] shapes are not `shapes`."""
    if not isinstance(weights, list) or len(weights) != len(shapes):
        return None
    for pair, (fan_in, fan_out) in zip(weights, shapes):
        if not (isinstance(pair, list) and len(pair) == 2 and isinstance(pair[0], torch.Tensor)
                and tuple(pair[0].shape) == (fan_out, fan_in) and isinstance(pair[1], torch.Tensor)
                and tuple(pair[1].shape) == (fan_out,)):
            return None
    *hidden, (W_out, b_out) = [(W.detach().float(), b.detach().float()) for W, b in weights]
    with torch.no_grad():
        seen = X
        for W, b in hidden:
            seen = torch.cat([seen, F.relu(F.linear(seen, W, b))], dim=1)
        return F.linear(seen, W_out, b_out)


def _rmse(predictions, y) -> float:
    return (predictions.double().reshape(-1) - y.double()).pow(2).mean().sqrt().item()


@check("8.7/5", name="training", points=2, title="Trained on the regression data", uses=("DenseMLP",),
       expected=f"DenseMLP(10) trained by the grader ({STEPS} Adam steps, batch {BATCH}, lr {LR}) reaches a held-out "
                f"RMSE of log-targets within {RMSE_SLACK:g} × the reference's")
def mlp_training(p):
    X_train, y_train, X_test, y_test = house_data()
    order = torch.randint(0, len(y_train), (STEPS, BATCH), generator=torch.Generator().manual_seed(ORDER_SEED))
    kwargs, recipe = {"num_inputs": X_train.shape[1]}, {"lr": LR, "threads": 1, "seed": 0}
    shapes = _linears(kwargs)
    target = computed(ref, "train DenseMLP", _train_reference, kwargs, X_train, y_train, order, X_test, y_test,
                      recipe)["rmse"]
    reply = p.run(probes.train_mlp, kwargs, X_train, y_train, order, X_test, recipe, timeout=60)
    if not isinstance(reply, dict):
        raise StudentError("the runtime gave no readable answer for the training of `DenseMLP(10)`.")
    if reply.get("stopped") == "frozen":
        fail("no parameter of `DenseMLP(10)` requires a gradient, so training cannot change it.")
    if reply.get("stopped") == "diverged":
        fail(f"training `DenseMLP(10)` diverged: the loss became NaN or infinite at step {reply.get('steps')}.")
    own = _grader_predictions(reply.get("weights"), shapes, X_test)
    if own is None:
        fail(f"the trained `DenseMLP(10)` does not have the Linear layers of the contract "
             f"({', '.join(f'{a}→{b}' for a, b in shapes)}), so the grader cannot evaluate it in its own copy of the "
             "network.")
    reported = reply.get("final")
    if not isinstance(reported, torch.Tensor) or reported.numel() != own.numel() or \
            not torch.allclose(reported.double().reshape(-1), own.double().reshape(-1), rtol=1e-3, atol=1e-3):
        fail("the trained `DenseMLP(10)`'s own predictions differ from those of its weights in the grader's copy, "
             "which concatenates the inputs first and then the hidden layers' outputs in order and applies a ReLU "
             "after each hidden layer; keep that order (torch.cat((X, Y), dim=1)) and no other computation.")
    rmse = _rmse(own, y_test)
    baseline = _rmse(torch.full_like(y_test, y_train.mean().item()), y_test)
    p.answer = (f"held-out RMSE of log-targets {rmse:.3f} (reference {target:.3f}, predicting the mean "
                f"{baseline:.3f}), your weights evaluated by the grader")
    if not rmse <= RMSE_SLACK * target:
        fail(f"after {STEPS} steps the trained `DenseMLP(10)` has a held-out RMSE of {rmse:.3f} on the log-targets, "
             f"above {RMSE_SLACK:g} × the reference's {target:.3f} (predicting the mean gives {baseline:.3f}).")
    return f"held-out RMSE {rmse:.3f} against the reference's {target:.3f} (the mean: {baseline:.3f})"
