"""Architecture probes shared by the chapter-8 graders, run INSIDE the student runtime (plain module:
torch and stdlib only) and, on the reference's namespace, in the grader's own process.

A network cannot cross the process boundary, so these functions build the student's model and send
back plain data: the leaf layers a forward pass ran (with their hyper-parameters and output shapes),
counts of layer types, parameter counts and FLOPs. Shapes, parameters and FLOPs are measured on the
`meta` device first (no arithmetic, so VGG at 224x224 costs milliseconds); a model that cannot run there
(e.g. it calls `.item()` in forward) is measured on the CPU instead, and the reply says which.

FLOPs come from `torch.utils.flop_counter.FlopCounterMode`, which counts a multiply-add as 2 FLOPs and
counts only matrix products and convolutions (not bias additions, activations or pooling).
"""
import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

# Hyper-parameters reported per layer type: enough to rebuild or compare a layer, never the weights.
HYPER = {
    nn.Conv2d: ("in_channels", "out_channels", "kernel_size", "stride", "padding", "groups"),
    nn.Linear: ("in_features", "out_features"),
    nn.BatchNorm1d: ("num_features",), nn.BatchNorm2d: ("num_features",),
    nn.MaxPool2d: ("kernel_size", "stride", "padding"), nn.AvgPool2d: ("kernel_size", "stride", "padding"),
    nn.AdaptiveAvgPool2d: ("output_size",), nn.AdaptiveMaxPool2d: ("output_size",),
    nn.Dropout: ("p",),
}
CONV_OPS = {"convolution", "_convolution", "conv2d", "convolution_backward"}
MATMUL_OPS = {"mm", "addmm", "bmm", "baddbmm", "matmul", "linear"}


def _lookup(ns, name):
    value = ns.get(name)
    if value is None:
        raise LookupError("`%s` is not defined" % name)
    if not callable(value):
        raise TypeError("`%s` is a %s; it should be a class or a function that returns an nn.Module"
                        % (name, type(value).__name__))
    return value


def _shape(value):
    if isinstance(value, torch.Tensor):
        return list(value.shape)
    if isinstance(value, (list, tuple)):
        return [_shape(v) for v in value]
    return type(value).__name__


def _plain(value):
    return list(value) if isinstance(value, tuple) else value


def build(ns, name, args=(), kwargs=None, input_shape=(2, 1, 28, 28), device="cpu", run=True):
    """`ns[name](*args, **kwargs)` on `device`, in eval mode, after one forward pass on zeros of
    `input_shape` (which materialises lazy layers). Returns (model, output). `run=False`: the pass only where
    a layer is lazy (output None), for a caller whose own pass follows (on meta, a DenseNet's pass costs
    half a second of Python)."""
    kwargs = dict(kwargs or {})
    with torch.device(device):
        model = _lookup(ns, name)(*args, **kwargs)
        if isinstance(model, type) or not isinstance(model, nn.Module):
            raise TypeError("`%s(...)` returned %s, not an nn.Module instance"
                            % (name, model.__name__ if isinstance(model, type) else type(model).__name__))
        model = model.to(device)
        model.eval()
        output = None
        if run or _has_lazy(model):
            with torch.no_grad():
                output = model(torch.zeros(*input_shape, device=device))
    return model, output


def _has_lazy(model):
    return any(nn.parameter.is_lazy(t) for t in list(model.parameters()) + list(model.buffers()))


def _leaf_records(model):
    """Hooks that record [qualified name, type, hyper-parameters, output shape] of each leaf as it runs."""
    records, handles = [], []
    for qualified, module in model.named_modules():
        if qualified and next(iter(module.children()), None) is None:
            def record(module, inputs, output, qualified=qualified):
                hyper = {k: _plain(getattr(module, k)) for k in HYPER.get(type(module), ()) if hasattr(module, k)}
                if isinstance(module, (nn.Conv2d, nn.Linear)):
                    hyper["bias"] = module.bias is not None
                records.append([qualified, type(module).__name__, hyper, _shape(output)])
            handles.append(module.register_forward_hook(record))
    return records, handles


def count_parameters(model):
    """(all values, values that require a gradient)."""
    total = trainable = 0
    for p in model.parameters():
        total += p.numel()
        trainable += p.numel() if p.requires_grad else 0
    return total, trainable


def measured_pass(model, attach, X):
    """(output, hooks' records, FlopCounterMode) of one forward pass on X with `attach(model)` -> (records, handles)
    on. A model built without its warm-up pass (build's run=False) may make layers in its first pass (by hand, a
    layer created on first use): that pass is measured again, with hooks on what is now there."""
    for _ in range(2):
        before = _parts(model)
        records, handles = attach(model)
        counter = FlopCounterMode(display=False)
        try:
            with torch.device(X.device), torch.no_grad(), counter:   # a layer made in the pass, made where build makes them
                output = model(X)
        finally:
            for handle in handles:
                handle.remove()
        if _parts(model) == before:
            break
    return output, records, counter


def _parts(model):
    return [id(m) for m in model.modules()] + [id(t) for t in model.parameters()]


def _describe_on(ns, name, args, kwargs, input_shape, device):
    model, _ = build(ns, name, args, kwargs, (2,) + tuple(input_shape[1:]), device, run=False)
    output, records, counter = measured_pass(model, _leaf_records, torch.zeros(*input_shape, device=device))
    flops = {"conv": 0, "linear": 0, "other": 0}
    for op, count in counter.get_flop_counts().get("Global", {}).items():
        op_name = getattr(op, "__name__", str(op)).split(".")[0]
        kind = "conv" if op_name in CONV_OPS else "linear" if op_name in MATMUL_OPS else "other"
        flops[kind] += int(count)
    counts, seen = {}, set()
    for qualified, kind, _, _ in records:       # layers that ran, each once: a declared layer is not a used one
        if qualified not in seen:
            seen.add(qualified)
            counts[kind] = counts.get(kind, 0) + 1
    total, trainable = count_parameters(model)
    return {"class": type(model).__name__, "output": _shape(output), "layers": records, "counts": counts,
            "params": total, "trainable": trainable, "flops": flops, "device": device}


def describe(ns, name, args=(), kwargs=None, input_shape=(1, 1, 224, 224)):
    """What `name(*args, **kwargs)` is made of, from one forward pass (eval mode) on zeros of `input_shape`:
    {class, output shape, layers: [[name, type, hyper, output shape], ...] in the order they ran,
     counts: {leaf type: n} over the leaves that ran, params, trainable,
     flops: {"conv", "linear", "other"} for the whole input batch, device: "meta" or "cpu"}."""
    try:
        return _describe_on(ns, name, args, kwargs, input_shape, "meta")
    except (LookupError, TypeError):
        raise
    except NotImplementedError as exc:
        if "meta" not in str(exc).lower():
            raise
    except Exception:
        pass
    return _describe_on(ns, name, args, kwargs, input_shape, "cpu")


def output_shapes(ns, name, args, kwargs, input_shapes):
    """{str(shape): output shape or "Error: message"} of the model on zeros of each input shape (meta)."""
    out = {}
    for shape in input_shapes:
        try:
            _, output = build(ns, name, args, kwargs, tuple(shape), "meta")
            out[str(list(shape))] = _shape(output)
        except (LookupError, NotImplementedError):
            raise
        except Exception as exc:
            text = str(exc).strip().splitlines()
            out[str(list(shape))] = "%s: %s" % (type(exc).__name__, text[0][:200] if text else "")
    return out
