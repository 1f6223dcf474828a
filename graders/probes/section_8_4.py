"""Probes for 8.4 GoogLeNet, run INSIDE the student runtime (plain module: torch and stdlib only).

A block cannot cross the process boundary: this builds the student's residual Inception block and sends
back its outputs on the grader's input, once with the block's own (seeded) weights and once with every
parameter set to zero, when only the shortcut can carry the input through.
"""
import torch
from torch import nn


def _lookup(ns, name):
    value = ns.get(name)
    if value is None:
        raise LookupError("`%s` is not defined" % name)
    if not callable(value):
        raise TypeError("`%s` is a %s; it should be a class that returns an nn.Module" % (name, type(value).__name__))
    return value


def block_outputs(ns, name, args, kwargs, X):
    """{"output": block(X), "zeroed": block(X) with all parameters 0} for name(*args, **kwargs), in eval mode."""
    torch.manual_seed(0)
    block = _lookup(ns, name)(*args, **kwargs)
    if not isinstance(block, nn.Module):
        raise TypeError("`%s(...)` returned a %s, not an nn.Module" % (name, type(block).__name__))
    block = block.to(X.device)
    block.eval()
    with torch.no_grad():
        output = block(X)
        for parameter in block.parameters():
            parameter.zero_()
        zeroed = block(X)
    plain = lambda t: t.detach() if isinstance(t, torch.Tensor) else type(t).__name__
    return {"output": plain(output), "zeroed": plain(zeroed)}


# -- 8.4/1.1 training: a small GoogLeNet-like network built from the student's block --------------------
def inception_net(block):
    """A stem, two blocks of `block` (20 and 40 channels) at 14×14 and 7×7, global average pooling and a
    dense layer: small enough to train for a hundred steps on a CPU, deep enough that plain Inception
    blocks barely move in that time while normalised ones learn."""
    return nn.Sequential(nn.LazyConv2d(8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                         block(4, (4, 8), (2, 4), 4), nn.MaxPool2d(2), block(8, (8, 16), (4, 8), 8),
                         nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.LazyLinear(10))


def install_inception_net(ns, block_name, factory_name):
    """Put a factory of `inception_net(ns[block_name])` into the namespace, for the LeNet training probe."""
    block = _lookup(ns, block_name)
    ns[factory_name] = lambda: inception_net(block)
    return True
