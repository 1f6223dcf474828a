"""Rebuild a student's network in the grader's own process, from the plain description the runtime sent
(graders/probes/layers.py) and its trained state_dict, so that the grader evaluates trained weights in
a network it built itself instead of trusting outputs the student's process computed.

Only standard torch.nn layers from ALLOWED are built, each from hyper-parameters that pass its checks,
and chained in the order the training step called them (an `nn.Sequential` of the leaf layers: the
shape of every network written as `nn.Sequential` trees, the book's style). Where one layer's output
shape differs from the next one's input shape with the same number of values per image (`X.flatten(1)`
or `X.view(len(X), -1)` written in forward), the rebuilt network reshapes there too. Each layer loads exactly its
own entries of the state_dict (`<name>.weight`, `<name>.running_mean`, ...); entries of no described
layer are ignored, so extra buffers or parameters cannot switch the re-evaluation off.

Operators the forward pass ran between its layers (recorded as each layer's "before", and "after" on the
last) are rebuilt where they are the functional form of a layer: F.relu / torch.relu, sigmoid, tanh,
F.max_pool2d, F.avg_pool2d, a mean over the two spatial dimensions (global average pooling), softmax,
functional dropout (nothing, in evaluation); reshapes and copies need nothing. Any other operator there
(an addition, a concatenation, a product with a constant) is refused with its name.

Whether the rebuilt network IS the student's network is decided by `faithful`: its outputs must equal
the ones the runtime reported on the same images. A forward pass that cannot be rebuilt or whose rebuild
is not faithful (a residual connection, a look-up) is not judged on the runtime's outputs: the checks
leave it for an instructor.
"""
from __future__ import annotations

import math

import torch
from torch import nn

MAX_LAYERS = 200
MAX_VALUES = 5_000_000          # parameters and buffers of the rebuilt network
MAX_WIDTH = 4096                # channels / features of one layer
MAX_WINDOW = 64                 # kernel, stride, padding, dilation


class RebuildError(Exception):
    """The description cannot be rebuilt; the message is one sentence naming why."""


def _size(value, name) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_WIDTH:
        raise RebuildError(f"{name}={value!r} is not a size the grader rebuilds")
    return value


def _window(value, name):
    values = value if isinstance(value, list) else [value]
    if not 1 <= len(values) <= 3 or any(isinstance(v, bool) or not isinstance(v, int) or not 0 <= v <= MAX_WINDOW
                                        for v in values):
        if name == "padding" and value in ("same", "valid"):
            return value
        raise RebuildError(f"{name}={value!r} is not a window setting the grader rebuilds")
    return tuple(values) if isinstance(value, list) else value


def _number(value, name) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise RebuildError(f"{name}={value!r} is not a finite number")
    return float(value)


def _flag(value, name) -> bool:
    if not isinstance(value, bool):
        raise RebuildError(f"{name}={value!r} is not True or False")
    return value


def _optional_number(value, name):
    return None if value is None else _number(value, name)


def _dim(value, name) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not -8 <= value <= 8:
        raise RebuildError(f"{name}={value!r} is not a dimension")
    return value


def _output_size(value, name):
    return _window(value, name) if value is not None else None


def _padding_mode(value, name):
    if value not in ("zeros", "reflect", "replicate", "circular"):
        raise RebuildError(f"{name}={value!r} is not a padding mode")
    return value


_CONV = {"in_channels": _size, "out_channels": _size, "kernel_size": _window, "stride": _window,
         "padding": _window, "dilation": _window, "groups": _size, "bias": _flag, "padding_mode": _padding_mode}
_POOL = {"kernel_size": _window, "stride": _window, "padding": _window, "ceil_mode": _flag}
_NORM = {"num_features": _size, "eps": _number, "momentum": _optional_number, "affine": _flag,
         "track_running_stats": _flag}
_INPLACE = {"inplace": _flag}

# layer class -> the constructor arguments the grader accepts, each with its check
ALLOWED: dict[str, tuple[type, dict]] = {
    "Conv1d": (nn.Conv1d, _CONV), "Conv2d": (nn.Conv2d, _CONV),
    "Linear": (nn.Linear, {"in_features": _size, "out_features": _size, "bias": _flag}),
    "BatchNorm1d": (nn.BatchNorm1d, _NORM), "BatchNorm2d": (nn.BatchNorm2d, _NORM),
    "MaxPool2d": (nn.MaxPool2d, {**_POOL, "dilation": _window}), "AvgPool2d": (nn.AvgPool2d, {**_POOL,
                  "count_include_pad": _flag}),
    "AdaptiveAvgPool2d": (nn.AdaptiveAvgPool2d, {"output_size": _output_size}),
    "AdaptiveMaxPool2d": (nn.AdaptiveMaxPool2d, {"output_size": _output_size}),
    "Flatten": (nn.Flatten, {"start_dim": _dim, "end_dim": _dim}),
    "ReLU": (nn.ReLU, _INPLACE), "ReLU6": (nn.ReLU6, _INPLACE), "Sigmoid": (nn.Sigmoid, {}), "Tanh": (nn.Tanh, {}),
    "LeakyReLU": (nn.LeakyReLU, {"negative_slope": _number, **_INPLACE}), "ELU": (nn.ELU, {"alpha": _number, **_INPLACE}),
    "GELU": (nn.GELU, {"approximate": lambda v, n: v if v in ("none", "tanh") else _fail(n, v)}),
    "SiLU": (nn.SiLU, _INPLACE), "Hardswish": (nn.Hardswish, _INPLACE), "Mish": (nn.Mish, _INPLACE),
    "Softmax": (nn.Softmax, {"dim": lambda v, n: None if v is None else _dim(v, n)}),
    "LogSoftmax": (nn.LogSoftmax, {"dim": lambda v, n: None if v is None else _dim(v, n)}),
    "Dropout": (nn.Dropout, {"p": _number}), "Dropout2d": (nn.Dropout2d, {"p": _number}),
    "Identity": (nn.Identity, {}),
}


class Reshape(nn.Module):
    """X.reshape(len(X), *shape): a reshape written in the student's forward between two layers."""

    def __init__(self, shape):
        super().__init__()
        self.shape = tuple(shape)

    def forward(self, X):
        return X.reshape(len(X), *self.shape)


def _shape(value):
    if isinstance(value, list) and len(value) <= 4 and all(isinstance(v, int) and not isinstance(v, bool)
                                                           and 0 < v <= 10**6 for v in value):
        return tuple(value)
    return None


def _reshape_between(before, entry):
    """A Reshape when the recorded shapes say forward reshaped between the previous layer and this one."""
    wanted = _shape(entry.get("input"))
    if before is None or wanted is None or before == wanted:
        return None
    if math.prod(before) != math.prod(wanted):
        raise RebuildError(f"its forward pass computes something between its layers (layer {entry['name']} "
                           f"receives {list(wanted)} values per image where the layer before gives {list(before)})")
    return Reshape(wanted)


def _fail(name, value):
    raise RebuildError(f"{name}={value!r} is not a setting the grader rebuilds")


# Operators between layers that change nothing the rebuilt network needs: reshapes (restored from the
# recorded shapes), copies, autograd's bookkeeping.
PASSING_OPS = {"view", "_unsafe_view", "reshape", "_reshape_alias", "flatten", "clone", "contiguous", "detach",
               "alias", "_to_copy", "lift_fresh", "squeeze", "unsqueeze", "native_dropout", "dropout",
               "feature_dropout"}
# Functional dropout as torch dispatches it on the CPU: nothing in evaluation.
DROPOUT_OPS = ["empty_like", "bernoulli_", "div_", "mul"]


def _argument(op, position, name, default=None):
    args, kwargs = op.get("args") or [], op.get("kwargs") or {}
    if not isinstance(args, list) or not isinstance(kwargs, dict):
        raise RebuildError(f"the runtime's description of {op.get('op')} is not readable")
    if position < len(args):
        return args[position]
    return kwargs.get(name, default)


def _pool_window(value, name):
    return _window(value, name) if value not in ([], None) else None


def _functional(op) -> nn.Module | None:
    """The module that computes the recorded operator `op`; None for an operator that passes values on."""
    kind = op.get("op")
    if kind in PASSING_OPS:
        return None
    if kind in ("relu", "relu_"):
        return nn.ReLU()
    if kind in ("sigmoid", "sigmoid_"):
        return nn.Sigmoid()
    if kind in ("tanh", "tanh_"):
        return nn.Tanh()
    if kind in ("max_pool2d", "max_pool2d_with_indices"):
        size = _window(_argument(op, 0, "kernel_size"), "kernel_size")
        return nn.MaxPool2d(size, _pool_window(_argument(op, 1, "stride"), "stride") or size,
                            _window(_argument(op, 2, "padding", 0), "padding"),
                            _window(_argument(op, 3, "dilation", 1), "dilation"),
                            ceil_mode=_flag(_argument(op, 4, "ceil_mode", False), "ceil_mode"))
    if kind == "avg_pool2d":
        if _argument(op, 5, "divisor_override") is not None:
            raise RebuildError("its forward pass averages with a divisor_override, which the grader does not rebuild")
        size = _window(_argument(op, 0, "kernel_size"), "kernel_size")
        return nn.AvgPool2d(size, _pool_window(_argument(op, 1, "stride"), "stride") or size,
                            _window(_argument(op, 2, "padding", 0), "padding"),
                            ceil_mode=_flag(_argument(op, 3, "ceil_mode", False), "ceil_mode"),
                            count_include_pad=_flag(_argument(op, 4, "count_include_pad", True), "count_include_pad"))
    if kind == "mean" and isinstance(op.get("input"), list) and len(op["input"]) == 3:
        dims = _argument(op, 0, "dim")
        if isinstance(dims, list) and sorted(d % 4 for d in dims if isinstance(d, int) and not isinstance(d, bool)) \
                == [2, 3] and len(dims) == 2 and _argument(op, 2, "dtype") is None:
            out = _shape(op.get("output"))
            return nn.Sequential(nn.AdaptiveAvgPool2d(1), Reshape(out)) if out else nn.AdaptiveAvgPool2d(1)
    if kind in ("_softmax", "_log_softmax"):
        dim = _dim(_argument(op, 0, "dim"), "dim")
        return nn.Softmax(dim) if kind == "_softmax" else nn.LogSoftmax(dim)
    raise RebuildError(f"its forward pass computes {kind} between its layers, which is not a layer the grader rebuilds")


def _glue(ops, before, where):
    """The modules for the operators `ops` recorded between two layers, and the shape after them."""
    if ops is None:
        return [], before
    if not isinstance(ops, list) or not all(isinstance(op, dict) for op in ops):
        raise RebuildError("the runtime's description of its forward pass is not readable")
    chain, k = [], 0
    while k < len(ops):
        op = ops[k]
        if op.get("op") == "...":
            raise RebuildError(f"its forward pass runs too many operators {where}")
        if [o.get("op") for o in ops[k:k + len(DROPOUT_OPS)]] == DROPOUT_OPS:
            k += len(DROPOUT_OPS)
            continue
        module = _functional(op)
        k += 1
        if module is None:
            continue
        reshape = _reshape_between(before, {"input": op.get("input"), "name": op.get("op")})
        if reshape is not None:
            chain.append(reshape)
        chain.append(module)
        before = _shape(op.get("output"))
    return chain, before


def _layer(entry) -> tuple[str, nn.Module]:
    if not isinstance(entry, dict) or not isinstance(entry.get("name"), str) or not isinstance(entry.get("args"), dict):
        raise RebuildError("the runtime's description of a layer is not readable")
    kind, module = entry.get("type"), entry.get("module")
    if kind not in ALLOWED or not (isinstance(module, str) and module.startswith("torch.nn.")):
        raise RebuildError(f"layer {entry['name']} is a {kind}, which is not one of the standard torch.nn layers "
                           "the grader rebuilds")
    cls, accepted = ALLOWED[kind]
    kwargs = {}
    for argument, value in entry["args"].items():
        if argument in accepted:
            kwargs[argument] = accepted[argument](value, argument)
    try:
        return entry["name"], cls(**kwargs)
    except (TypeError, ValueError, RuntimeError) as exc:
        raise RebuildError(f"layer {entry['name']} ({kind}) cannot be built from its settings: {exc}") from None


def rebuild(description, state, input_shape=(1, 28, 28)) -> nn.Sequential:
    """nn.Sequential of the described layers, in call order, with their trained state loaded (float64);
    `input_shape` is the shape of one input (without the batch dimension).

    A layer called twice is one module used twice, as in the student's network. Raises RebuildError."""
    if not isinstance(description, list) or not description:
        raise RebuildError("the runtime described no layers")
    if len(description) > MAX_LAYERS:
        raise RebuildError(f"the network runs more than {MAX_LAYERS} layers")
    tensors = {}
    if isinstance(state, list):
        for item in state:
            if isinstance(item, list) and len(item) == 2 and isinstance(item[0], str) and isinstance(item[1], torch.Tensor):
                tensors[item[0]] = item[1]
    built: dict[str, nn.Module] = {}
    chain = []
    before = tuple(input_shape)
    for entry in description:
        name, layer = _layer(entry)
        functional, before = _glue(entry.get("before"), before, f"before layer {name}")
        chain.extend(functional)
        reshape = _reshape_between(before, entry)
        if reshape is not None:
            chain.append(reshape)
        before = _shape(entry.get("output"))
        if name in built:
            if type(built[name]) is not type(layer):
                raise RebuildError(f"layer {name} is described as two different layers")
            chain.append(built[name])
            continue
        own = {key[len(name) + 1:]: value for key, value in tensors.items() if key.startswith(name + ".")}
        expected = layer.state_dict()
        missing = [key for key in expected if key not in own]
        if missing:
            raise RebuildError(f"the trained state has no {name}.{missing[0]}")
        for key, value in expected.items():
            if tuple(own[key].shape) != tuple(value.shape):
                raise RebuildError(f"{name}.{key} has shape {tuple(own[key].shape)}, but a {type(layer).__name__} "
                                   f"with these settings holds {tuple(value.shape)}")
        layer.load_state_dict({key: own[key] for key in expected}, strict=True)
        built[name] = layer
        chain.append(layer)
    functional, _ = _glue(description[-1].get("after"), before, "after its last layer")
    chain.extend(functional)
    model = nn.Sequential(*chain).double()
    if sum(t.numel() for t in model.state_dict().values()) > MAX_VALUES:
        raise RebuildError(f"the network holds more than {MAX_VALUES:,} values")
    return model.eval()


def evaluate(model: nn.Module, X: torch.Tensor, chunk: int = 250) -> torch.Tensor:
    """The rebuilt network's outputs on X, in float64 (so that they do not depend on the CPU's code path)."""
    with torch.no_grad():
        return torch.cat([model(X[start:start + chunk].double()) for start in range(0, len(X), chunk)])


def faithful(rebuilt: torch.Tensor, reported, rtol: float = 1e-3, atol: float = 1e-3) -> bool:
    """Whether the rebuilt network's outputs equal the ones the runtime reported for the same images."""
    return isinstance(reported, torch.Tensor) and reported.shape == rebuilt.shape and \
        torch.allclose(rebuilt, reported.double(), rtol=rtol, atol=atol)


# How a functional operator that the rebuild turned into a layer is named in the summary.
FUNCTIONAL_NAMES = {"relu": "relu", "relu_": "relu", "sigmoid": "sigmoid", "sigmoid_": "sigmoid", "tanh": "tanh",
                    "tanh_": "tanh", "max_pool2d": "max_pool2d", "max_pool2d_with_indices": "max_pool2d",
                    "avg_pool2d": "avg_pool2d", "mean": "mean", "_softmax": "softmax", "_log_softmax": "log_softmax"}


def summary(description) -> str:
    """One line: the layer types in call order, with the functional operators between them in lower case."""
    parts = []
    for entry in description:
        if not isinstance(entry, dict):
            continue
        for key in ("before", "type", "after"):
            if key == "type":
                parts.append(str(entry.get("type")))
            elif isinstance(entry.get(key), list):
                parts += [FUNCTIONAL_NAMES[op.get("op")] for op in entry[key]
                          if isinstance(op, dict) and op.get("op") in FUNCTIONAL_NAMES]
    return " → ".join(parts)


def trained_outputs(reply: dict, X: torch.Tensor, chunk: int | None = None) -> tuple[torch.Tensor | None, str]:
    """The outputs on X of a trained network rebuilt from a training probe's reply ("layers", "weights",
    "final": the runtime's own outputs on X), and how it was judged in words; (None, why not) where it
    cannot be rebuilt or the rebuild does not compute what the runtime reported. `chunk`: score in training
    mode, with the batch statistics of each chunk of that many images (as the probe did)."""
    if reply.get("layers_changed"):
        return None, "its training steps ran different layers"
    try:
        model = rebuild(reply.get("layers"), reply.get("weights"))
        if chunk:
            model.train()
            with torch.no_grad():
                outputs = torch.cat([model(X[i:i + chunk].double()) for i in range(0, len(X), chunk)])
        else:
            outputs = evaluate(model, X)
    except RebuildError as exc:
        return None, str(exc)
    except (RuntimeError, ValueError) as exc:     # layers that do not fit one after the other
        return None, "its layers do not run one after the other (%s)" % str(exc).splitlines()[0][:120]
    if not faithful(outputs, reply.get("final")):
        return None, ("the network rebuilt from its layers and the operators between them computes other outputs "
                      "than its own forward pass")
    return outputs, "its trained weights, in " + summary(reply["layers"])


def unverifiable(call: str, why: str) -> str:
    """The message of a training check left for an instructor because the grader could not rebuild `call`."""
    return (f"the grader could not rebuild the trained `{call}` in its own process to evaluate it ({why}), and it "
            "never scores a network on the outputs the runtime reports, so an instructor will review this check.")
