"""A plain description of a network's layers, taken INSIDE the student runtime (torch and stdlib only).

The grader rebuilds the network from it in its own process (d2lgrade/compare/rebuild.py), loads the
trained weights and evaluates the rebuilt network itself. The description is what a forward pass really
ran, recorded with forward hooks on the leaf modules while the network is in the mode it is trained in:
[{"name": qualified name, "type": class name, "args": hyper-parameters, "input": shape, "output": shape},
...] in call order (the shapes without the batch dimension let the grader restore a reshape such as
`X.flatten(1)` written in forward between two layers). The
hyper-parameters are the module's own `__constants__` (the attributes torch.nn declares as its
constructor's settings) plus whether it has a bias; the grader decides which types and values it accepts.

Operators a forward pass dispatches outside every leaf module (an `F.relu`, `F.max_pool2d` or `X.flatten(1)`
written in forward) are recorded too, as "before" on the layer they precede and "after" on the last layer:
[{"op": ATen name, "args": plain arguments after the input, "input": shape, "output": shape}, ...]; the
grader rebuilds those it knows and refuses the rest.

Nothing here is trusted: student code can patch it. The grader checks that the rebuilt network computes
what the runtime reported, and judges the network it rebuilt, not this description.
Probe modules that use it name it in PROBE_USES (its source then runs in the same module in the runtime).
"""
import torch
from torch.utils._python_dispatch import TorchDispatchMode

PLAIN_SETTINGS = (int, float, bool, str, type(None))
MAX_LAYER_CALLS = 500
MAX_GLUE = 40             # operators recorded between two layers; more are marked as cut


class _Glue(TorchDispatchMode):
    """The ATen operators dispatched while no leaf module runs."""

    def __init__(self, recorder):
        super().__init__()
        self.recorder = recorder

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        recorder = self.recorder
        if recorder.active and recorder.depth == 0:
            if len(recorder.glue) < MAX_GLUE:
                first = args[0] if args else None
                recorder.glue.append({"op": func.overloadpacket.__name__,
                                      "args": [_setting(a) for a in args[1:]],
                                      "kwargs": {str(k): _setting(v) for k, v in (kwargs or {}).items()},
                                      "input": _sample_shape(first), "output": _sample_shape(_first(out))})
            elif not recorder.glue or recorder.glue[-1].get("op") != "...":
                recorder.glue.append({"op": "..."})
        return out


def _first(value):
    if isinstance(value, (tuple, list)) and value:
        return value[0]
    return value


class LayerRecorder:
    """While active (`with LayerRecorder(model) as calls:`), [qualified name, input shape, output shape,
    operators run since the previous leaf] of the leaf modules in the order a forward pass calls them; on
    leaving, a last item [None, None, None, operators run after the last leaf]."""

    def __init__(self, model):
        self.model = model
        self.calls = []
        self.glue = []
        self.depth = 0
        self.active = False           # inside the network's own forward (not the caller's indexing of a batch)
        self._handles = []
        self._mode = None

    def __enter__(self):
        self._handles.append(self.model.register_forward_pre_hook(lambda module, inputs: self._activate(True)))
        self._handles.append(self.model.register_forward_hook(lambda module, inputs, output: self._activate(False)))
        for qualified, module in self.model.named_modules():
            if qualified and next(iter(module.children()), None) is None:
                # prepended: a lazy layer's own pre-hook materialises its weights, which is the layer's work
                self._handles.append(module.register_forward_pre_hook(self._enter_leaf, prepend=True))
                self._handles.append(module.register_forward_hook(
                    lambda module, inputs, output, qualified=qualified: self._record(qualified, inputs, output)))
        self._mode = _Glue(self)
        self._mode.__enter__()
        return self.calls

    def _activate(self, active):
        self.active = active

    def _enter_leaf(self, module, inputs):
        self.depth += 1

    def _record(self, qualified, inputs, output):
        self.depth = max(0, self.depth - 1)
        if len(self.calls) < MAX_LAYER_CALLS:
            first = inputs[0] if isinstance(inputs, tuple) and inputs else inputs
            self.calls.append([qualified, _sample_shape(first), _sample_shape(output), self.glue])
        self.glue = []

    def __exit__(self, *exc):
        if self._mode is not None:
            self._mode.__exit__(*exc)
            self._mode = None
        for handle in self._handles:
            handle.remove()
        self._handles.clear()
        self.calls.append([None, None, None, self.glue])
        self.glue = []
        return False


def _sample_shape(value):
    try:
        return list(value.shape[1:]) if isinstance(value, torch.Tensor) and value.dim() > 0 else None
    except RuntimeError:                            # an uninitialised (lazy) parameter
        return None


def _setting(value):
    if isinstance(value, PLAIN_SETTINGS):
        return value
    if isinstance(value, (tuple, list, torch.Size)) and all(isinstance(v, PLAIN_SETTINGS) for v in value):
        return list(value)
    if isinstance(value, torch.Tensor):
        try:
            return {"__tensor__": list(value.shape)}
        except RuntimeError:                        # an uninitialised (lazy) parameter
            return {"__tensor__": None}
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
    described = []
    for call in calls:
        name, inputs, output = call[:3]
        glue = call[3] if len(call) > 3 else []
        if name is None:                          # what ran after the last layer
            if described and glue:
                described[-1]["after"] = glue
            continue
        if name in modules:
            described.append({"name": name, "type": type(modules[name]).__name__,
                              "module": type(modules[name]).__module__, "args": layer_settings(modules[name]),
                              "input": inputs, "output": output, "before": glue})
    return described


def state_of(model, limit=5_000_000):
    """[[name, tensor], ...] of the model's state_dict (parameters and buffers); empty past `limit` values."""
    state = [[name, t.detach().to("cpu").clone()] for name, t in model.state_dict().items()
             if isinstance(t, torch.Tensor)]
    if sum(t.numel() for _, t in state) > limit:
        return []
    return state
