"""What a network really computes, measured INSIDE the student runtime (plain module: torch and stdlib only).

A network's declared layers say little: a layer can be built and never called, called and thrown away, or
be a class named `ReLU` that returns its input. `execution` runs the network on real (CPU) random inputs
with gradients on and reports, per leaf layer, whether it ran, whether its output and each of its
parameters influence the network's output (a gradient that is missing, or exactly zero everywhere over
several random inputs, means the work is discarded), whether it is torch's own class with torch's own
forward, and, for activations, whether it behaves like the function its class is named after. It also
lists the ATen operators the forward pass ran (so `F.relu` counts as a ReLU).

Evaluation mode with randomised batch-norm statistics: batch norm is then an affine map, so a convolution
bias before it keeps a gradient (in training mode it would be cancelled exactly by the mean subtraction,
which is redundancy, not discarded work), and dropout is off. Nothing here is trusted; the grader judges.
"""
import torch
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode

PROBE_USES = ("graders.probes.architecture",)   # its source runs ahead of this module's in the runtime
if not __name__.startswith("d2lgrade_probe_"):
    from graders.probes.architecture import build

TORCH_DIR = torch.__file__.rsplit("/", 1)[0]
# Activations judged by behaviour: the function each class name promises.
ACTIVATIONS = {"ReLU": torch.relu, "Sigmoid": torch.sigmoid, "Tanh": torch.tanh,
               "ReLU6": lambda x: x.clamp(0, 6)}
MAX_OPS = 200
REDUCED_FROM = 128


class _Operators(TorchDispatchMode):
    def __init__(self):
        super().__init__()
        self.names = set()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        if len(self.names) < MAX_OPS:
            self.names.add(func.overloadpacket.__name__)
        return func(*args, **(kwargs or {}))


def _first_tensor(value):
    if isinstance(value, torch.Tensor):
        return value
    if isinstance(value, (list, tuple)) and value and isinstance(value[0], torch.Tensor):
        return value[0]
    return None


def _is_torch_code(function):
    code = getattr(function, "__code__", None)
    return code is not None and code.co_filename.startswith(TORCH_DIR)


def _genuine(module):
    """'' when `module` is torch.nn's own class running torch's own forward; else why not."""
    cls = type(module)
    if "forward" in vars(module):
        return "its forward was replaced on the instance"
    if not cls.__module__.startswith("torch.nn"):
        return "its class is defined in your code, not torch.nn's %s" % cls.__name__
    if not _is_torch_code(cls.forward):
        return "the forward of nn.%s was replaced" % cls.__name__
    return ""


def _behaves(module, calls):
    """False when an activation named after a function gives something else, on the calls the network
    made and on a fresh probe input."""
    fn = ACTIVATIONS.get(type(module).__name__)
    if fn is None:
        return True
    probe = torch.randn(2, 3, 4, 4) * 3
    with torch.no_grad():
        try:
            got = module(probe.clone())
        except Exception:
            return False
        if not isinstance(got, torch.Tensor) or got.shape != probe.shape or not torch.allclose(got, fn(probe)):
            return False
        return all(torch.allclose(out, fn(inp)) for inp, out in calls)


def _randomise_statistics(model, generator):
    for module in model.modules():
        mean, var = getattr(module, "running_mean", None), getattr(module, "running_var", None)
        if isinstance(mean, torch.Tensor) and isinstance(var, torch.Tensor) and mean.is_floating_point():
            with torch.no_grad():
                mean.copy_(torch.randn(mean.shape, generator=generator) * 0.5)
                var.copy_(torch.rand(var.shape, generator=generator) + 0.5)


def execution(ns, name, args=(), kwargs=None, input_shape=(2, 1, 28, 28), trials=2, seed=0):
    """{"output": shape on the CPU, "input": the shape used, "ops": [ATen operators run],
        "leaves": {qualified: {"type", "ran", "reaches", "params": {name: reaches}, "genuine": why-not or "",
                               "behaves": bool}}}
    over `trials` random inputs (batch of at least two). Images larger than REDUCED_FROM are first tried at
    a quarter of their side (a ResNet-50 at 224x224 costs seconds of CPU per pass); a network that cannot
    take that size is run at `input_shape` itself."""
    shape = (max(2, input_shape[0]),) + tuple(input_shape[1:])
    if len(shape) == 4 and min(shape[2:]) >= REDUCED_FROM:
        try:
            return _execution(ns, name, args, kwargs, shape[:2] + tuple(s // 4 for s in shape[2:]), trials, seed)
        except (LookupError, TypeError):
            raise
        except Exception:
            pass
    return _execution(ns, name, args, kwargs, shape, trials, seed)


def _execution(ns, name, args, kwargs, shape, trials, seed):
    generator = torch.Generator().manual_seed(seed)
    model, _ = build(ns, name, args, kwargs, shape, "cpu")
    model.eval()
    _randomise_statistics(model, generator)
    leaves = {q: m for q, m in model.named_modules() if q and next(iter(m.children()), None) is None}
    params = dict(model.named_parameters())
    for p in params.values():
        p.requires_grad_(True)
    ran = {q: False for q in leaves}
    output_reached = {q: None for q in leaves}     # None: no differentiable output to judge
    param_reached = {n: False for n in params}
    activation_calls = {q: [] for q, m in leaves.items() if type(m).__name__ in ACTIVATIONS}
    outputs = []          # (qualified, output tensor) of each leaf call in the current trial
    operators = _Operators()

    def hook(qualified):
        def record(module, inputs, output):
            ran[qualified] = True
            out = _first_tensor(output)
            if out is not None and out.is_floating_point() and out.requires_grad:
                outputs.append((qualified, out))
            first = _first_tensor(inputs)
            if qualified in activation_calls and len(activation_calls[qualified]) < 2 and first is not None \
                    and out is not None:
                activation_calls[qualified].append((first.detach().clone(), out.detach().clone()))
        return record

    handles = [m.register_forward_hook(hook(q)) for q, m in leaves.items()]
    # Parameters held by a module that has children (a learnable scale on a block): judged when it ran.
    owners = {q: m for q, m in model.named_modules() if q not in leaves and next(iter(m.parameters(False)), None) is not None}
    owner_ran = {q: False for q in owners}
    for q, m in owners.items():
        handles.append(m.register_forward_hook(lambda module, i, o, q=q: owner_ran.__setitem__(q, True)))
    out_shape = None
    try:
        for trial in range(trials):
            del outputs[:]
            X = torch.randn(shape, generator=generator).requires_grad_(True)
            with torch.enable_grad(), operators:
                output = model(X)
            out = _first_tensor(output)
            out_shape = list(out.shape) if out is not None else type(output).__name__
            if out is None or not out.requires_grad:
                break
            weights = torch.randn(out.shape, generator=generator)
            names = list(param_reached)
            targets = [params[n] for n in names] + [t for _, t in outputs]
            grads = torch.autograd.grad((out * weights).sum(), targets, allow_unused=True)
            for n, g in zip(names, grads[:len(names)]):
                param_reached[n] = param_reached[n] or (g is not None and bool((g != 0).any()))
            for (q, _), g in zip(outputs, grads[len(names):]):
                output_reached[q] = bool(output_reached[q]) or (g is not None and bool((g != 0).any()))
    finally:
        for handle in handles:
            handle.remove()
    report = {}
    for q, module in leaves.items():
        own = {n: param_reached[q + "." + n] for n, _ in module.named_parameters(recurse=False)
               if q + "." + n in param_reached}
        report[q] = {"type": type(module).__name__, "ran": ran[q], "reaches": output_reached[q],
                     "params": own, "genuine": _genuine(module),
                     "behaves": _behaves(module, activation_calls.get(q, []))}
    direct = {(q + "." if q else "") + n: param_reached[(q + "." if q else "") + n]
              for q, m in owners.items() if owner_ran[q] for n, _ in m.named_parameters(recurse=False)
              if (q + "." if q else "") + n in param_reached}
    return {"output": out_shape, "input": list(shape), "ops": sorted(operators.names), "leaves": report,
            "direct": direct}
