"""A plain description of a network's layers, taken INSIDE the student runtime (torch and stdlib only).

The grader rebuilds the network from it in its own process (d2lgrade/compare/rebuild.py), loads the
trained weights and evaluates the rebuilt network itself. The description is what a forward pass really
ran, recorded with forward hooks on the leaf modules while the network is in the mode it is trained in:
[{"name": qualified name, "type": class name, "args": hyper-parameters, "input": shape, "output": shape},
...] in call order (the shapes without the batch dimension let the grader restore a reshape such as
`X.flatten(1)` written in forward between two layers). The
hyper-parameters are the module's own `__constants__` (the attributes torch.nn declares as its
constructor's settings) plus whether it has a bias; the grader decides which types and values it accepts.

Nothing here is trusted: student code can patch it. The grader checks that the rebuilt network computes
what the runtime reported, and judges the network it rebuilt, not this description.
Probe modules that use it name it in PROBE_USES (its source then runs in the same module in the runtime).
"""
import torch

PLAIN_SETTINGS = (int, float, bool, str, type(None))
MAX_LAYER_CALLS = 500


class LayerRecorder:
    """While active (`with LayerRecorder(model) as calls:`), [qualified name, input shape, output shape] of
    the leaf modules in the order a forward pass calls them."""

    def __init__(self, model):
        self.model = model
        self.calls = []
        self._handles = []

    def __enter__(self):
        for qualified, module in self.model.named_modules():
            if qualified and next(iter(module.children()), None) is None:
                self._handles.append(module.register_forward_hook(
                    lambda module, inputs, output, qualified=qualified: self._record(qualified, inputs, output)))
        return self.calls

    def _record(self, qualified, inputs, output):
        if len(self.calls) < MAX_LAYER_CALLS:
            first = inputs[0] if isinstance(inputs, tuple) and inputs else inputs
            self.calls.append([qualified, _sample_shape(first), _sample_shape(output)])

    def __exit__(self, *exc):
        for handle in self._handles:
            handle.remove()
        self._handles.clear()
        return False


def _sample_shape(value):
    return list(value.shape[1:]) if isinstance(value, torch.Tensor) and value.dim() > 0 else None


def _setting(value):
    if isinstance(value, PLAIN_SETTINGS):
        return value
    if isinstance(value, (tuple, list, torch.Size)) and all(isinstance(v, PLAIN_SETTINGS) for v in value):
        return list(value)
    return {"__unsupported__": type(value).__name__}


def layer_settings(module):
    """The hyper-parameters torch.nn declares for `module` (its __constants__), and whether it has a bias."""
    settings = {}
    for attribute in getattr(type(module), "__constants__", ()):
        if hasattr(module, attribute):
            settings[attribute] = _setting(getattr(module, attribute))
    if isinstance(getattr(module, "bias", None), torch.Tensor) or "bias" in module._parameters:
        settings["bias"] = module._parameters.get("bias") is not None
    return settings


def describe_calls(model, calls):
    """The description of the leaf modules in `calls` (a LayerRecorder's), in call order (a module called
    twice appears twice)."""
    modules = dict(model.named_modules())
    return [{"name": name, "type": type(modules[name]).__name__, "module": type(modules[name]).__module__,
             "args": layer_settings(modules[name]), "input": inputs, "output": output}
            for name, inputs, output in calls if name in modules]


def state_of(model, limit=5_000_000):
    """[[name, tensor], ...] of the model's state_dict (parameters and buffers); empty past `limit` values."""
    state = [[name, t.detach().to("cpu").clone()] for name, t in model.state_dict().items()
             if isinstance(t, torch.Tensor)]
    if sum(t.numel() for _, t in state) > limit:
        return []
    return state
