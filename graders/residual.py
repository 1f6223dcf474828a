"""Residual blocks verified by equivalence, in the grader's process (issue 22).

graders/probes/residual.py sends each block's input, output, and its convolutions and batch norms (weights
included) in the order they ran. Here the grader builds its own post-activation block from torch.nn in
float64, ReLU(F(X) + S(X)) with F = conv → BN → ReLU → ... → conv → BN and S the identity or a 1×1
projection (with or without batch norm), loads the student's weights and compares outputs. Equal: the block
computes X + F(X), whatever its style. Different: the block is named, and a dropped shortcut is said so.
"""
from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from d2lgrade.core.checks import StudentError, fail
from graders.architecture import run_naming
from graders.probes import residual as probes

TOLERANCE = 1e-4


def _conv(layer) -> nn.Conv2d:
    s = layer["settings"]
    padding = s["padding"] if isinstance(s["padding"], str) else tuple(s["padding"])
    conv = nn.Conv2d(s["in_channels"], s["out_channels"], tuple(s["kernel_size"]), tuple(s["stride"]), padding,
                     tuple(s["dilation"]), s["groups"], s["bias"], s.get("padding_mode", "zeros")).double()
    conv.load_state_dict({k: v.double() for k, v in layer["state"].items()})
    return conv


def _bn(layer) -> nn.BatchNorm2d:
    s = layer["settings"]
    bn = nn.BatchNorm2d(s["num_features"], eps=s["eps"], affine=s["affine"]).double()
    bn.load_state_dict({k: v.double() if v.is_floating_point() else v for k, v in layer["state"].items()},
                       strict=False)
    return bn.eval()


def _assignments(layers: list[dict]):
    """Each way of reading the layers as a block: [(branch [(conv, bn or None), ...], projection or None)].
    Two convolutions may read the block's input (a 3×3 or 1×1 first layer and a 1×1 projection); where
    their shapes do not say which is the projection, each reading is tried."""
    pairs = []
    for layer in layers:
        if layer["kind"] == "conv":
            pairs.append([layer, None])
        elif pairs and pairs[-1][1] is None and layer["settings"]["num_features"] == pairs[-1][0]["settings"]["out_channels"]:
            pairs[-1][1] = layer
        else:
            return []
    first = [pair for pair in pairs if pair[0]["takes_block_input"]]
    if len(first) == 1:
        return [(pairs, None)]
    if len(first) != 2:
        return []
    return [([pair for pair in pairs if pair is not projection], projection)
            for projection in first if projection[0]["settings"]["kernel_size"] == [1, 1]]


def _apply(pair, X):
    conv, bn = pair
    Y = _conv(conv)(X)
    return _bn(bn)(Y) if bn is not None else Y


def _outputs(branch, projection, X):
    Y = X
    for i, pair in enumerate(branch):
        Y = _apply(pair, Y)
        if i < len(branch) - 1:
            Y = F.relu(Y)
    S = _apply(projection, X) if projection is not None else X
    return (F.relu(Y + S), F.relu(Y)) if S.shape == Y.shape else None


def expected_outputs(layers: list[dict], X: torch.Tensor) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """[(ReLU(F(X) + S(X)), ReLU(F(X))), ...] computed by the grader for each reading of the layers as a
    block; empty where they form none."""
    found = []
    with torch.no_grad():
        for branch, projection in _assignments(layers):
            try:
                outputs = _outputs(branch, projection, X) if branch else None
            except (RuntimeError, KeyError, TypeError, ValueError):
                outputs = None
            if outputs is not None:
                found.append(outputs)
    return found


def _close(a, b) -> bool:
    """Equal up to float32 rounding, which grows with the size of the whole map, not of one element."""
    return a.shape == b.shape and bool((a - b).abs().max() <= TOLERANCE * (1 + b.abs().max()))


def verify(p, name: str, call: str, *args, input_shape, **kwargs) -> int:
    """Fail naming the first residual block of `name(*args, **kwargs)` whose output is not X + F(X) (or the
    projection form) computed by the grader from its own layers; returns how many blocks were verified.
    A block the grader cannot take apart leaves the check unverified (manual), never passed on trust."""
    blocks = run_naming(p, probes.residual_blocks, name, call, name, list(args), kwargs, list(input_shape),
                        p.check.seed, timeout=60)
    if not isinstance(blocks, list):
        raise StudentError(f"the runtime gave no readable report of the blocks of `{call}`.")
    if not blocks:
        p._unverified(f"the grader found no residual block in `{call}` to recompute")
        return 0
    for block in blocks:
        where = f"block `{block['name']}` of `{call}`" if block["name"] else f"`{call}`"
        computed = expected_outputs(block["layers"], block["input"].double())
        if not computed:
            p._unverified(f"the grader could not rebuild {where} from its layers")
            continue
        output = block["output"].double()
        if any(_close(output, with_shortcut) for with_shortcut, _ in computed):
            continue
        if any(_close(output, without) for _, without in computed):
            fail(f"the output of {where} is ReLU(F(X)), not ReLU(X + F(X)): the block drops its shortcut.")
        fail(f"the output of {where} is not ReLU(F(X) + X) (or ReLU(F(X) + projection of X)) computed from its "
             "own layers.")
    return len(blocks)
