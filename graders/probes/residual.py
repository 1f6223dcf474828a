"""The residual blocks of a network, taken apart INSIDE the student runtime (plain module: torch and stdlib only).

The grader cannot take a student's block on trust: a block can keep every layer and drop the shortcut, or
behave differently when its weights are zero. So this probe sends, for each residual block, the tensors
the grader needs to recompute it in its own process: the block's input and output on a random batch, and
its convolutions and batch norms in the order they ran, with their settings and their weights (evaluation
mode, batch-norm statistics randomised so that batch norm is a real affine map). The grader loads those
weights into its own block of the same shape and compares (graders/residual.py).

A block is a module whose layers hold one or two 3x3 convolutions and two to four convolutions in all;
the outermost such module is taken (a block's `body` Sequential belongs to its block).
"""
import torch
from torch import nn

PROBE_USES = ("graders.probes.architecture",)   # its source runs ahead of this module's in the runtime
if __name__ != "__main__":      # in the runtime (as __main__), architecture.py's definitions are already here
    from graders.probes.architecture import build

MAX_BLOCKS = 20


def _convs(module):
    return [m for m in module.modules() if isinstance(m, nn.Conv2d)]


def _is_block(module):
    convs = _convs(module)
    threes = [c for c in convs if tuple(c.kernel_size) == (3, 3)]
    return 1 <= len(threes) <= 2 and 2 <= len(convs) <= 4


def _blocks(model):
    """(qualified name, module) of the outermost residual-block-shaped modules."""
    found = []
    for qualified, module in model.named_modules():
        if _is_block(module) and not any(qualified.startswith(q + ".") or q == "" for q, _ in found):
            found.append((qualified, module))
    return found[:MAX_BLOCKS]


def _layer(module, consumed_input):
    if isinstance(module, nn.Conv2d):
        settings = {"in_channels": module.in_channels, "out_channels": module.out_channels,
                    "kernel_size": list(module.kernel_size), "stride": list(module.stride),
                    "padding": list(module.padding) if not isinstance(module.padding, str) else module.padding,
                    "dilation": list(module.dilation), "groups": module.groups, "padding_mode": module.padding_mode,
                    "bias": module.bias is not None}
        kind = "conv"
    elif isinstance(module, nn.modules.batchnorm._BatchNorm):
        settings = {"num_features": module.num_features, "eps": module.eps, "affine": module.affine}
        kind = "bn"
    else:
        return None
    state = {k: v.detach().float().clone() for k, v in module.state_dict().items()
             if isinstance(v, torch.Tensor) and v.is_floating_point()}
    return {"kind": kind, "settings": settings, "state": state, "takes_block_input": consumed_input}


def residual_blocks(ns, name, args=(), kwargs=None, input_shape=(2, 1, 56, 56), seed=0):
    """[{"name", "input", "output", "layers": [{"kind": "conv"|"bn", "settings", "state", "takes_block_input"}]}]
    of each block, in the order the forward pass ran them."""
    generator = torch.Generator().manual_seed(seed)
    model, _ = build(ns, name, args, kwargs, tuple(input_shape), "cpu")
    model.eval()
    for module in model.modules():
        if isinstance(module, nn.modules.batchnorm._BatchNorm) and module.running_mean is not None:
            with torch.no_grad():
                module.running_mean.copy_(torch.randn(module.running_mean.shape, generator=generator) * 0.5)
                module.running_var.copy_(torch.rand(module.running_var.shape, generator=generator) + 0.5)
    blocks = _blocks(model)
    reports, current, handles = [], [], []

    def enter(qualified):
        def hook(module, inputs):
            current.append({"name": qualified, "input": inputs[0] if inputs else None, "layers": []})
        return hook

    def leave(module, inputs, output):
        entry = current.pop()
        entry["output"] = output
        reports.append(entry)

    def layer_hook(module, inputs, output):
        if current and inputs and isinstance(inputs[0], torch.Tensor):
            entry = current[-1]
            described = _layer(module, inputs[0] is entry["input"])
            if described is not None:
                entry["layers"].append(described)

    for qualified, block in blocks:
        handles.append(block.register_forward_pre_hook(enter(qualified)))
        handles.append(block.register_forward_hook(leave))
        for module in block.modules():
            if isinstance(module, (nn.Conv2d, nn.modules.batchnorm._BatchNorm)):
                handles.append(module.register_forward_hook(layer_hook))
    try:
        with torch.no_grad():
            model(torch.randn(tuple(input_shape), generator=generator))
    finally:
        for handle in handles:
            handle.remove()
    return [{"name": r["name"], "input": r["input"].detach().float().clone(),
             "output": r["output"].detach().float().clone(), "layers": r["layers"]}
            for r in reports if isinstance(r.get("input"), torch.Tensor) and isinstance(r.get("output"), torch.Tensor)]
