"""Judging what a network computes (graders/probes/execution.py reports it from the runtime), in the grader.

A layer counts when it ran on real inputs, its output and every one of its parameters influence the
network's output, and it is torch.nn's own layer (an activation may be the student's own class when it
behaves like the function it is named after). Anything else that the network declares is named: a layer
whose work is thrown away, a `ReLU` that returns its input, a batch norm whose forward was replaced.
"""
from __future__ import annotations

from collections import Counter

from d2lgrade.checks import fail
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


def judge(reply: dict, description: dict, call: str) -> dict:
    """`description` (graders/probes/architecture.describe, measured on `meta`) restricted to the layers
    that the CPU run in `reply` shows doing real work; fails naming the first layer that does not."""
    if not isinstance(reply, dict) or not isinstance(reply.get("leaves"), dict):
        fail(f"the runtime gave no readable report of what `{call}` computes.")
    meta, cpu = description.get("output"), reply.get("output")
    if isinstance(meta, list) and isinstance(cpu, list) and meta[1:] != cpu[1:]:
        fail(f"`{call}` gives outputs of shape {cpu[1:]} per example on the CPU but {meta[1:]} on PyTorch's meta "
             "device: a network must compute the same function wherever it runs.")
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
    # A list in the network's own order: a set's order follows string hashing, which differs between processes
    # (the kit and the course folder would word one message two ways).
    working = [q for q, leaf in leaves.items() if leaf.get("ran")]
    judged = dict(description)
    judged["layers"] = [row for row in description["layers"] if row[0] in set(working)]
    judged["counts"] = dict(Counter(leaves[q]["type"] for q in working))
    judged["ops"] = list(reply.get("ops", []))
    judged["uncounted"] = [q for q in working if leaves[q].get("params") and leaves[q]["type"] not in COUNTED]
    return judged


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
