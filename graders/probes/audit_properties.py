"""What the mutation audit re-measures about a network, INSIDE the student runtime (plain module: torch and
stdlib only), to decide on its own whether a surviving mutant is another correct answer to an open exercise.

Deliberately simple and separate from the checks' probes: the layers torch.nn's own classes ran and the
activations called as functions, in call order, with the layers' output shapes, and the cost of the convolutions and dense layers. A network written any
other way (functional activations, its own classes) is simply not accepted here: the audit then lists it as a
hole for a person to read, which errs on the safe side.
"""
import torch
from torch import nn
from torch.overrides import TorchFunctionMode

# Activations called as functions (the book's Inception applies F.relu in forward), recorded like their modules.
FUNCTIONAL = {"relu": "ReLU", "relu_": "ReLU", "sigmoid": "Sigmoid", "sigmoid_": "Sigmoid", "tanh": "Tanh",
              "tanh_": "Tanh", "gelu": "GELU", "silu": "SiLU", "leaky_relu": "LeakyReLU", "elu": "ELU"}


class _Functions(TorchFunctionMode):
    def __init__(self, calls):
        super().__init__()
        self.calls = calls

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kind = FUNCTIONAL.get(getattr(func, "__name__", ""))
        if kind:
            self.calls.append([kind, None])
        return func(*args, **(kwargs or {}))


def _own(module):
    return type(module).__module__.startswith("torch.nn.modules") and "forward" not in vars(module)


def summary(ns, name, kwargs=None, input_shape=(2, 1, 28, 28)):
    """{"output", "calls": [[kind, output shape], ...] of torch.nn's leaf layers in call order, "params",
    "flops" per example of the convolutions and dense layers (a multiply-add is 2), "conv_flops" the
    convolutions' share of them}."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = ns[name](**dict(kwargs or {}))
        model.eval()
        X = torch.randn(*input_shape)
        calls, flops, conv_flops, handles = [], [0], [0], []
        for module in model.modules():
            if next(iter(module.children()), None) is not None:
                continue

            def record(module, inputs, output):
                kind = type(module).__name__ if _own(module) else "other"
                calls.append([kind, list(output.shape) if isinstance(output, torch.Tensor) else None])
                if kind == "Conv2d":
                    k = module.kernel_size
                    count = 2 * output.numel() * module.in_channels // module.groups * k[0] * k[1]
                    flops[0] += count
                    conv_flops[0] += count
                elif kind == "Linear":
                    flops[0] += 2 * output.numel() * module.in_features
            handles.append(module.register_forward_hook(record))
        try:
            with torch.no_grad():
                model(X)                     # materialises lazy layers
                del calls[:]
                flops[0] = conv_flops[0] = 0
                with _Functions(calls):
                    output = model(X)
        finally:
            for handle in handles:
                handle.remove()
    return {"output": list(output.shape), "calls": calls, "params": sum(p.numel() for p in model.parameters()),
            "flops": flops[0] / input_shape[0], "conv_flops": conv_flops[0] / input_shape[0]}


def answers(ns, name, calls):
    """[ns[name](*args, **kwargs) for each [args, kwargs] in calls], for answers that are plain data."""
    return [ns[name](*args, **kwargs) for args, kwargs in calls]
