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
from torch.utils.flop_counter import FlopCounterMode

PROBE_USES = ("graders.probes.architecture",)   # its source runs ahead of this module's in the runtime
if __name__ != "__main__":      # in the runtime (as __main__), architecture.py's definitions are already here
    from graders.probes.architecture import build, measured_pass

TORCH_DIR = torch.__file__.rsplit("/", 1)[0]
# Activations judged by behaviour: the function each class name promises.
ACTIVATIONS = {"ReLU": torch.relu, "Sigmoid": torch.sigmoid, "Tanh": torch.tanh,
               "ReLU6": lambda x: x.clamp(0, 6)}
MAX_OPS = 200
MAX_CALLS = 2000
REDUCED_FROM = 128
REDUCED_BY = (4, 2)          # the sides tried, in order, before the full size
# FLOPs the perturbation test may spend on torch's own layers (one forward pass each): above it
# only parameters outside torch's own layers, where a decoy can hide, are perturbed one by one.
PERTURB_BUDGET = 5e9       # FLOPs of one forward pass times the number of torch layers to perturb
MOVES_FLOAT32, MOVES_FLOAT64 = 1e-6, 1e-9     # relative change of the output that is work, not rounding


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
        # NaN in, NaN out: a layer made with no inputs (a LazyLinear after a 0×0 pooling) keeps uninitialised
        # weights, and an activation after it is no less the function it is named after.
        return all(torch.allclose(out, fn(inp), equal_nan=True) for inp, out in calls)


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
                               "behaves": bool}},
        "calls": {"cpu": [[leaf, shape per example], ...] in the order they ran, "meta": the same on PyTorch's
                  meta device}, "flops": {"cpu", "meta"} (FlopCounterMode), "moves": {parameter or torch layer:
        whether perturbing it changes the output}, "input_matters": whether two inputs give two outputs}
    over `trials` random inputs (batch of at least two). Images larger than REDUCED_FROM are first tried at
    a quarter of their side, then at half (a ResNet-50 at 224x224 costs seconds of CPU per pass; NiN's
    strided windows leave nothing of a quarter); a network that takes neither, or whose output there is the
    same for every input, is run at `input_shape` itself."""
    shape = (max(2, input_shape[0]),) + tuple(input_shape[1:])
    if len(shape) == 4 and min(shape[2:]) >= REDUCED_FROM:
        for divisor in REDUCED_BY:
            reduced = shape[:2] + tuple(s // divisor for s in shape[2:])
            if divisor != REDUCED_BY[0] and not _worth_a_real_run(ns, name, args, kwargs, reduced, shape):
                continue
            try:
                reply = _execution(ns, name, args, kwargs, reduced, trials, seed, on_meta=True)
            except (LookupError, TypeError):
                raise
            except Exception:
                continue
            if reply["input_matters"] is not False:
                return reply
            # The same output for every input, at a reduced size: on a small image a deep network's maps can all
            # be zeroed by its ReLUs (a 20-layer NiN at half size), which looks like a network that ignores its
            # input and like every layer's work thrown away. The full size decides.
            break
    return _execution(ns, name, args, kwargs, shape, trials, seed)


def _worth_a_real_run(ns, name, args, kwargs, reduced, shape):
    """After the first reduced size failed: whether the next is worth building for real. The meta device tells in
    milliseconds what a real build (a second, for a VGG whose dense sizes are written out) would only fail at; a
    network that does not run on meta even at its full size gets the size tried for real."""
    return _builds_on_meta(ns, name, args, kwargs, reduced) or not _builds_on_meta(ns, name, args, kwargs, shape)


def _builds_on_meta(ns, name, args, kwargs, shape):
    try:
        build(ns, name, args, kwargs, shape, "meta")
    except Exception:
        return False
    return True


def _execution(ns, name, args, kwargs, shape, trials, seed, on_meta=False):
    """`execution` at `shape`; `on_meta`: also on the meta device at that shape (the grader's description
    was measured at another size, so it cannot stand in for the meta run)."""
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

    calls = []            # [qualified, shape per example] of each leaf call on the first real input

    def hook(qualified):
        def record(module, inputs, output):
            ran[qualified] = True
            out = _first_tensor(output)
            if first_trial[0] and len(calls) < MAX_CALLS:
                calls.append([qualified, _per_example(output)])
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
    first_trial, counter, X0, input_matters, gradless = [True], FlopCounterMode(display=False), None, None, False
    try:
        for trial in range(trials):
            del outputs[:]
            X = torch.randn(shape, generator=generator).requires_grad_(True)
            X0 = X.detach() if X0 is None else X0
            with torch.enable_grad(), operators:
                if trial == 0:
                    with counter:
                        output = model(X)
                else:
                    output = model(X)
            first_trial[0] = False
            out = _first_tensor(output)
            out_shape = list(out.shape) if out is not None else type(output).__name__
            if trial == 0 and out is not None and out.is_floating_point() and out.dim() >= 1 and out.shape[0] >= 2:
                # Two random inputs, bit-identical outputs (NaN where the other has NaN counts as the same).
                input_matters = not torch.allclose(out[0], out[1], rtol=0, atol=0, equal_nan=True)
            if out is None or not out.requires_grad:
                break
            weights = torch.randn(out.shape, generator=generator)
            names = list(param_reached)
            targets = [params[n] for n in names] + [t for _, t in outputs]
            try:
                grads = torch.autograd.grad((out * weights).sum(), targets, allow_unused=True)
            except RuntimeError:
                # No gradient to read (an empty pooling, an operator without one): perturbation alone decides.
                gradless = True
                break
            for n, g in zip(names, grads[:len(names)]):
                param_reached[n] = param_reached[n] or (g is not None and bool((g != 0).any()))
            for (q, _), g in zip(outputs, grads[len(names):]):
                output_reached[q] = bool(output_reached[q]) or (g is not None and bool((g != 0).any()))
    finally:
        for handle in handles:
            handle.remove()
    if gradless:
        param_reached = {n: True for n in param_reached}
        output_reached = {q: None for q in output_reached}
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
    real_flops = _total_flops(counter)
    meta_calls, meta_flops = _on_meta(ns, name, args, kwargs, shape) if on_meta else (None, None)
    groups = _perturbation_groups(leaves, owners, report, 0 if gradless else real_flops)
    moves = _perturbation(model, X0, groups, generator) if X0 is not None and groups else {}
    return {"output": out_shape, "input": list(shape), "ops": sorted(operators.names), "leaves": report,
            "direct": direct, "calls": {"cpu": calls, "meta": meta_calls}, "flops": {"cpu": real_flops, "meta": meta_flops},
            "moves": moves, "input_matters": input_matters,
            "direct_weights": [w for w in direct if params[w].dim() >= 2]}


def _per_example(value):
    out = _first_tensor(value)
    return list(out.shape[1:]) if out is not None else type(value).__name__


def _total_flops(counter):
    return int(sum(counter.get_flop_counts().get("Global", {}).values()))


def _on_meta(ns, name, args, kwargs, shape):
    """(the real run's `calls` and FLOPs, measured the same way on a network built and run on PyTorch's meta
    device at the same input shape), or (None, None) where it cannot run there: the grader requires the two
    runs to agree."""
    try:
        model, _ = build(ns, name, args, kwargs, shape, "meta", run=False)
        _, calls, counter = measured_pass(model, _call_records, torch.zeros(shape, device="meta"))
    except Exception:
        return None, None
    return calls, _total_flops(counter)


def _call_records(model):
    calls, handles = [], []
    for qualified, module in model.named_modules():
        if qualified and next(iter(module.children()), None) is None:
            handles.append(module.register_forward_hook(
                lambda m, i, o, q=qualified: calls.append([q, _per_example(o)]) if len(calls) < MAX_CALLS else None))
    return calls, handles


def _perturbation_groups(leaves, owners, report, flops):
    """{what the grader names: [parameters]} to perturb one group at a time: each of torch's own layers as a
    whole (its forward uses every parameter it has), and every other parameter on its own."""
    groups, torch_layers = {}, {}
    for q, module in leaves.items():
        mine = list(module.named_parameters(recurse=False))
        if not mine or not report[q]["ran"]:
            continue
        if not report[q]["genuine"]:
            torch_layers[q] = [p for _, p in mine]
        else:
            for n, p in mine:
                groups[q + "." + n] = [p]
    for q, module in owners.items():
        for n, p in module.named_parameters(recurse=False):
            groups[(q + "." if q else "") + n] = [p]
    if flops * len(torch_layers) <= PERTURB_BUDGET:
        groups.update(torch_layers)
    return groups


def _perturbation(model, X, groups, generator):
    """{group: whether adding noise of its own scale to it changes the output}. Decided in float32 where the
    change is plain; what is left is decided again in float64 (a deep untrained network's output depends on
    its first layers by a few parts in a million, far above float64's rounding but near float32's)."""
    moves, unsure = {}, dict(groups)
    for dtype, tolerance in ((torch.float32, MOVES_FLOAT32), (torch.float64, MOVES_FLOAT64)):
        if not unsure:
            break
        try:
            model.to(dtype)
            with torch.no_grad():
                base = _first_tensor(model(X.to(dtype)))
        except Exception:
            base = None
        if base is None or not base.is_floating_point():
            break
        floor = tolerance * float(base.abs().max()) + 1e-30
        for what, params in list(unsure.items()):
            change = _change(model, X.to(dtype), params, base, generator)
            if change is None or change > floor:      # an error is not evidence that a parameter does nothing
                moves[what] = True
                del unsure[what]
    moves.update({what: False for what in unsure})
    return moves


def _change(model, X, params, base, generator):
    """The largest change of the output when `params` get noise of their own scale (None: it raised)."""
    saved = [p.detach().clone() for p in params]
    try:
        with torch.no_grad():
            for p in params:
                p.add_(torch.randn(p.shape, generator=generator, dtype=p.dtype) * _scale(p))
            out = _first_tensor(model(X))
        return float((out - base).abs().max()) if out is not None and out.shape == base.shape else float("inf")
    except Exception:
        return None
    finally:
        with torch.no_grad():
            for p, value in zip(params, saved):
                p.copy_(value)


def _scale(p):
    """A perturbation as large as the parameter's own spread (0.1 for a constant like batch norm's γ = 1)."""
    spread = float(p.std()) if p.numel() > 1 else 0.0
    return spread if spread > 0 else max(0.1, 0.1 * float(p.abs().max()))
