"""Probes for 8.6 ResNet and ResNeXt, run INSIDE the student runtime (plain module: torch and stdlib only).

They build the student's blocks and networks and send back plain data: output shapes (per stage of `net`
for the book's ResNet), the output of a block whose convolutions are all zeroed (what the shortcut alone
carries), the order of the normalisation, activation, convolution and addition operators of one forward
pass, and, when building fails, the student's source line that raised.
"""
import traceback

import torch
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode

# ATen operators by role, in the order a forward pass dispatches them.
ROLES = {"native_batch_norm": "bn", "_native_batch_norm_legit": "bn", "_native_batch_norm_legit_no_training": "bn",
         "batch_norm": "bn", "relu": "relu", "relu_": "relu", "threshold": "relu", "threshold_": "relu",
         "clamp_min": "relu", "clamp_min_": "relu", "convolution": "conv", "add": "add", "add_": "add"}


def _lookup(ns, name):
    value = ns.get(name)
    if value is None:
        raise LookupError("`%s` is not defined" % name)
    if not callable(value):
        raise TypeError("`%s` is a %s; it should be a class or a function" % (name, type(value).__name__))
    return value


def _student_line(exc):
    """(source line, function) of the innermost frame of the student's own code in the traceback."""
    frames = [f for f in traceback.extract_tb(exc.__traceback__)
              if "site-packages" not in f.filename and "/lib/python" not in f.filename
              and f.filename != _student_line.__code__.co_filename]     # this probe's own frames
    if not frames:
        return "", ""
    return (frames[-1].line or "").strip(), frames[-1].name


def _error(exc):
    text = str(exc).strip().splitlines()
    line, function = _student_line(exc)
    return {"error": type(exc).__name__, "message": text[0][:300] if text else "", "line": line,
            "function": function}


class _Roles(TorchDispatchMode):
    def __init__(self):
        super().__init__()
        self.sequence = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        role = ROLES.get(func.overloadpacket.__name__)
        if role == "conv":
            role = "conv%dx%d" % tuple(args[1].shape[-2:])
        if role:
            self.sequence.append(role)
        return func(*args, **(kwargs or {}))


def block_report(ns, name, args, kwargs, X, zeroed=False, trace=False):
    """`name(*args, **kwargs)` in evaluation mode on X: output shape; with zeroed=True also the output once
    every convolution and dense layer has zero weights and biases (batch norm with fresh statistics then
    gives 0, so only the shortcut remains); with trace=True the roles of the operators it ran.
    Building or running errors come back as data, with the student's line that raised."""
    try:
        model = _lookup(ns, name)(*args, **kwargs)
        if not isinstance(model, nn.Module):
            raise TypeError("`%s(...)` returned a %s, not an nn.Module" % (name, type(model).__name__))
        model = model.to(X.device)
        model.eval()
        with torch.no_grad():
            output = model(X)
    except (LookupError, NotImplementedError):
        raise
    except Exception as exc:
        return _error(exc)
    reply = {"shape": list(output.shape) if isinstance(output, torch.Tensor) else type(output).__name__}
    if trace:
        roles = _Roles()
        with torch.no_grad(), roles:
            model(X)
        reply["roles"] = roles.sequence
    if zeroed:
        with torch.no_grad():
            for module in model.modules():
                if isinstance(module, (nn.Conv2d, nn.Linear)):
                    module.weight.zero_()
                    if module.bias is not None:
                        module.bias.zero_()
            reply["zeroed"] = model(X).detach().clone()
    return reply


def stage_shapes(ns, name, kwargs, input_shape):
    """The output shape after each child of `name(**kwargs).net` (what the book's layer_summary prints),
    in evaluation mode; errors come back as data with the student's line."""
    try:
        model = _lookup(ns, name)(**kwargs)
        if not isinstance(model, nn.Module):
            raise TypeError("`%s(...)` returned a %s, not an nn.Module" % (name, type(model).__name__))
        X = torch.zeros(*input_shape)
        model.eval()
        shapes = []
        with torch.no_grad():
            layers = list(model.net) if isinstance(getattr(model, "net", None), nn.Sequential) else [model]
            for layer in layers:
                X = layer(X)
                shapes.append([type(layer).__name__, list(X.shape)])
    except (LookupError, NotImplementedError):
        raise
    except Exception as exc:
        return _error(exc)
    reply = {"stages": shapes}
    # What the book's layer_summary does: training mode on ONE image. Batch norm cannot normalise a
    # single value per channel, which only shows where a stage's maps are 1×1.
    try:
        model.train()
        with torch.no_grad():
            model(torch.zeros(1, *input_shape[1:]))
    except Exception as exc:
        reply["batch_of_one"] = _error(exc)
    return reply
