"""Judging what a network computes (graders/probes/execution.py reports it from the runtime), in the grader.

A layer counts when it ran on real inputs, its output and every one of its parameters influence the
network's output, and it is torch.nn's own layer (an activation may be the student's own class when it
behaves like the function it is named after). Anything else that the network declares is named: a layer
whose work is thrown away, a `ReLU` that returns its input, a batch norm whose forward was replaced.
"""
from __future__ import annotations

from collections import Counter
from math import prod

from d2lgrade.core.checks import fail
from graders.probes import execution as probes

ACTIVATIONS = set(probes.ACTIVATIONS)
RELU_OPS = {"relu", "relu_", "threshold", "threshold_"}
UNFOLD_OPS = {"im2col", "unfold", "col2im"}     # a convolution written by hand: FlopCounterMode cannot see it
COUNTED = {"Conv1d", "Conv2d", "Linear", "BatchNorm1d", "BatchNorm2d"}  # layers with parameters whose cost is known
HEAVY = 2e9            # FLOPs per image above which one random input (batch of two) is enough


# Kinds the chapter-8 checks count or judge: a layer claiming one must be torch's own.
JUDGED = {"Conv1d", "Conv2d", "Linear", "BatchNorm1d", "BatchNorm2d", "MaxPool2d", "AvgPool2d", "AdaptiveAvgPool2d",
          "AdaptiveMaxPool2d", "LPPool2d", "Dropout", "Dropout1d", "Dropout2d", "AlphaDropout", "Sigmoid", "Tanh",
          "ReLU", "ReLU6"}


def judge(reply: dict, description: dict, call: str, input_shape: tuple | list | None = None) -> dict:
    """`description` (graders/probes/architecture.describe, measured on `meta` at `input_shape`) restricted to
    the layers that the CPU run in `reply` shows doing real work, its FLOPs counted from those layers where
    the counter saw less; fails naming the first layer that does not work."""
    if not isinstance(reply, dict) or not isinstance(reply.get("leaves"), dict):
        fail(f"the runtime gave no readable report of what `{call}` computes.")
    meta, cpu = description.get("output"), reply.get("output")
    if isinstance(meta, list) and isinstance(cpu, list) and meta[1:] != cpu[1:]:
        fail(f"`{call}` gives outputs of shape {cpu[1:]} per example on the CPU but {meta[1:]} on PyTorch's meta "
             "device: a network must compute the same function wherever it runs.")
    _same_on_meta(reply, call)
    _same_as_described(reply, description, call, input_shape)
    if reply.get("input_matters") is False:
        fail(f"`{call}` gives the same output for two different random inputs: the network ignores its input.")
    leaves = reply["leaves"]
    for qualified, leaf in leaves.items():
        if not leaf.get("ran"):
            continue
        kind = str(leaf.get("type"))
        if kind in ACTIVATIONS and not leaf.get("behaves"):
            fail(f"in `{call}`, `{qualified}` is called {kind} but does not compute {kind} on the grader's inputs.")
        if kind not in ACTIVATIONS and kind in JUDGED and leaf.get("genuine"):
            fail(f"in `{call}`, `{qualified}` is called {kind} but is not torch's nn.{kind}: {leaf['genuine']}; "
                 f"the grader counts only torch's own {kind} layers as {kind} (use nn.{kind}, or another class name).")
        dead = [name for name, reaches in leaf.get("params", {}).items() if not reaches]
        if leaf.get("reaches") is False or dead:
            what = "its output" if not dead or leaf.get("reaches") is False else f"its parameter `{dead[0]}`"
            fail(f"in `{call}`, `{qualified}` runs but {what} never reaches the network's output: that work is "
                 "thrown away.")
    dead = [name for name, reaches in (reply.get("direct") or {}).items() if not reaches]
    if dead:
        fail(f"in `{call}`, the parameter `{dead[0]}` belongs to a module that runs, but it never changes the "
             "network's output.")
    still = [what for what, moves in (reply.get("moves") or {}).items() if not moves]
    if still:
        fail(f"in `{call}`, adding noise to `{still[0]}` leaves the network's output unchanged: a parameter (or "
             "layer) that does no work must not be there.")
    # A list in the network's own order: a set's order follows string hashing, which differs between processes
    # (the kit and the course folder would word one message two ways).
    working = [q for q, leaf in leaves.items() if leaf.get("ran")]
    judged = dict(description)
    judged["layers"] = [row for row in description["layers"] if row[0] in set(working)]
    judged["counts"] = dict(Counter(leaves[q]["type"] for q in working))
    judged["ops"] = list(reply.get("ops", []))
    judged["uncounted"] = [q for q in working if leaves[q].get("params") and leaves[q]["type"] not in COUNTED] + \
        [w for w in reply.get("direct_weights", []) if (reply.get("direct") or {}).get(w)]
    judged["flops"] = verified_flops(judged)
    return judged


def layer_flops(layers: list) -> dict[str, int]:
    """{"conv", "linear"}: FLOPs (a multiply-add is 2) of torch's own convolutions and dense layers, from their
    hyper-parameters and the output shapes they gave."""
    flops = {"conv": 0, "linear": 0}
    for _, kind, hyper, shape in layers:
        if not isinstance(shape, list) or not all(isinstance(s, int) for s in shape):
            continue
        outputs = prod(shape)
        if kind == "Conv2d" and {"in_channels", "groups", "kernel_size"} <= set(hyper):
            flops["conv"] += 2 * outputs * (hyper["in_channels"] // hyper["groups"]) * prod(hyper["kernel_size"])
        elif kind == "Linear" and "in_features" in hyper:
            flops["linear"] += 2 * outputs * hyper["in_features"]
    return flops


def verified_flops(description: dict) -> dict:
    """The counter's FLOPs, raised to what the network's verified layers compute where the counter saw less:
    the counter is the runtime's word, the layers are the grader's evidence."""
    flops = dict(description.get("flops") or {})
    for kind, counted in layer_flops(description.get("layers", [])).items():
        flops[kind] = max(int(flops.get(kind) or 0), counted)
    return flops


META_DIFFERS = "a network must compute the same function wherever it runs"


def _first_difference(real: list, meta: list) -> str:
    """Where two lists of [leaf, shape per example] first differ, in words."""
    index = next((i for i, (a, b) in enumerate(zip(real, meta)) if a != b), min(len(real), len(meta)))
    if index >= len(real):
        return f"`{meta[index][0]}` runs only on the meta device"
    there = f"`{meta[index][0]}` gives {meta[index][1]}" if index < len(meta) else "nothing runs"
    return f"`{real[index][0]}` gives {real[index][1]} per example on real tensors but {there} on the meta device"


def _same_on_meta(reply: dict, call: str) -> None:
    """The layers that ran, their output shapes and the FLOPs agree between real tensors and the meta device
    at the same input size (the probe's own meta run, made where the description used another size)."""
    calls, flops = reply.get("calls") or {}, reply.get("flops") or {}
    real, meta = calls.get("cpu"), calls.get("meta")
    if isinstance(real, list) and isinstance(meta, list) and real != meta:
        fail(f"`{call}` computes something else on PyTorch's meta device than on real tensors "
             f"({_first_difference(real, meta)}): {META_DIFFERS}.")
    if isinstance(flops.get("cpu"), int) and isinstance(flops.get("meta"), int) and flops["cpu"] != flops["meta"]:
        fail(f"`{call}` does {flops['cpu']:,} FLOPs on real tensors but {flops['meta']:,} on PyTorch's meta device: "
             f"{META_DIFFERS}.")


def _same_as_described(reply: dict, description: dict, call: str, input_shape) -> None:
    """The real run's layers agree with the description the grader measured on the meta device (by a separate
    call): the same layers in the same order, and where both used images of one size, the same shapes and
    FLOPs per example."""
    real, layers = (reply.get("calls") or {}).get("cpu"), description.get("layers")
    if input_shape is None or not isinstance(real, list) or not isinstance(layers, list) or len(real) >= probes.MAX_CALLS:
        return
    if list(reply.get("input") or [])[1:] != list(input_shape)[1:]:
        # Smaller images than described (the probe's own meta run compares the shapes).
        if [row[0] for row in layers] != [q for q, _ in real]:
            fail(f"`{call}` runs other layers on real tensors than on PyTorch's meta device: {META_DIFFERS}.")
        return

    def flat(shape):
        return isinstance(shape, list) and all(isinstance(s, int) for s in shape)
    # Shapes are compared where a layer returns one tensor (the description lists every tensor of a tuple).
    described = [[row[0], row[3][1:] if flat(row[3]) else None] for row in layers]
    real = [[q, shape if i >= len(described) or described[i][1] is not None else None] for i, (q, shape) in enumerate(real)]
    if described != real:
        fail(f"`{call}` computes something else on PyTorch's meta device than on real tensors "
             f"({_first_difference(real, described)}): {META_DIFFERS}.")
    flops, batch = sum((description.get("flops") or {}).values()), input_shape[0]
    real_flops = (reply.get("flops") or {}).get("cpu")
    if isinstance(real_flops, int) and real_flops * batch != flops * reply["input"][0]:
        fail(f"`{call}` does {real_flops / reply['input'][0]:,.0f} FLOPs per example on real tensors but "
             f"{flops / batch:,.0f} on PyTorch's meta device: {META_DIFFERS}.")


def flops_unverified(p, description: dict, call: str) -> None:
    """A FLOP figure measured by FlopCounterMode misses work done by hand (a convolution as unfold, multiply
    and sum) inside layers it does not know: such a network's cost goes to review instead of being trusted."""
    if description.get("uncounted"):
        p._unverified(f"`{call}` computes with a layer of its own (`{description['uncounted'][0]}`) whose FLOPs the "
                      "grader cannot count")
    elif UNFOLD_OPS & set(description.get("ops", [])):
        p._unverified(f"`{call}` computes a convolution by hand (unfold), whose FLOPs the grader cannot count")


def has_relu(description: dict) -> bool:
    """A ReLU ran, as a module (behaviour already judged) or as a function (`F.relu`, `torch.relu`)."""
    return bool(description["counts"].get("ReLU")) or bool(RELU_OPS & set(description.get("ops", [])))


def trials_for(description: dict) -> int:
    per_image = sum(description.get("flops", {}).values()) / max(1, (description.get("output") or [1])[0])
    return 1 if per_image > HEAVY else 2
