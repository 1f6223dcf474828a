"""Probes for 7.6 LeNet, run INSIDE the student runtime (plain module: torch and stdlib only).

An nn.Module cannot cross the process boundary, so these functions build the student's networks in the
runtime and send back plain data: the layers a forward pass ran (forward hooks), the ATen operators it
dispatched, parameter counts, intermediate outputs, and, after a short training run on the grader's
batches, the logits for the grader's held-out images (no labels are sent) and, for the grader to rebuild
the network itself, the layers the training steps ran (graders/probes/layers.py) and the trained
state_dict. Losses and accuracies are computed by the grader from those, never taken from the student's
process.

`train_model` is also imported by the grader, which trains the reference networks with it in a pinned
child process: both sides follow exactly the same recipe on exactly the same batches.
"""
import time

import torch
from torch import nn
from torch.nn import functional as F
from torch.utils._python_dispatch import TorchDispatchMode

PROBE_USES = ("graders.probes.layers",)   # its source runs ahead of this module's in the runtime (probe.py)
if __name__ != "__main__":      # in the runtime, layers.py's definitions are already here
    from graders.probes.layers import LayerRecorder, describe_calls, state_of

TRACE_TAIL = 60          # operators kept from the end of a forward pass (what the output went through)
PREDICT_CHUNK = 250


class _OpTrace(TorchDispatchMode):
    """Records the ATen operators dispatched while active (after autograd: what really ran)."""

    def __init__(self):
        super().__init__()
        self.seen = set()
        self.tail = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        name = func.overloadpacket.__name__
        self.seen.add(name)
        self.tail.append(name)
        if len(self.tail) > 4 * TRACE_TAIL:
            del self.tail[:-TRACE_TAIL]
        return func(*args, **(kwargs or {}))


def _lookup(ns, name):
    value = ns.get(name)
    if value is None:
        raise LookupError("`%s` is not defined" % name)
    if not callable(value):
        raise TypeError("%s is a %s; it should be a class (or a function) that returns an nn.Module"
                        % (name, type(value).__name__))
    return value


def _shape(value):
    return list(value.shape) if isinstance(value, torch.Tensor) else type(value).__name__


def _call_text(name, kwargs):
    return "%s(%s)" % (name, ", ".join("%s=%r" % item for item in sorted(kwargs.items())))


def make_model(ns, name, kwargs, X):
    """`ns[name](**kwargs)` on X's device, after one dry forward pass on two images, which materialises
    lazy layers (LazyConv2d, LazyLinear) so that parameters can be counted and optimised."""
    model = _lookup(ns, name)(**kwargs)
    if isinstance(model, type):
        raise TypeError("%s returned the class %s itself, not a network: return an instance, e.g. %s()"
                        % (_call_text(name, kwargs), model.__name__, model.__name__))
    if not isinstance(model, nn.Module):
        raise TypeError("%s returned a %s, not an nn.Module" % (_call_text(name, kwargs), type(model).__name__))
    model = model.to(X.device)
    training = model.training
    model.eval()
    with torch.no_grad():
        model(X[:2])
    model.train(training)
    return model


def count_parameters(model):
    """(all values, values that require a gradient, parameters still uninitialised)."""
    total = trainable = lazy = 0
    for p in model.parameters():
        if isinstance(p, nn.parameter.UninitializedParameter):
            lazy += 1
            continue
        total += p.numel()
        trainable += p.numel() if p.requires_grad else 0
    return total, trainable, lazy


def _forward_record(model, X, training):
    """One forward pass in training or evaluation mode: [[qualified name, class, output shape], ...] of the
    leaf modules in the order they ran, the ATen operators dispatched, and the output."""
    layers, handles = [], []
    for qualified, module in model.named_modules():
        if qualified and next(iter(module.children()), None) is None:
            def record(module, inputs, output, qualified=qualified):
                layers.append([qualified, type(module).__name__, _shape(output)])
            handles.append(module.register_forward_hook(record))
    trace = _OpTrace()
    model.train(training)
    try:
        with torch.set_grad_enabled(training), trace:
            output = model(X)
    finally:
        for handle in handles:
            handle.remove()
    return layers, trace, output


def inspect_model(ns, name, X, num_classes, other_classes):
    """What `name(num_classes=...)` is made of and what it returns, from forward passes on X.

    The evidence comes from the mode the network is trained in (train mode, gradients on: a network that
    swaps its layers when inspected in eval mode shows what it trains with); eval_layers is the same in
    evaluation mode, so the grader can name a network that changes between the two.
    layers: [qualified name, class, output shape] of every leaf module in the order they ran;
    ops: every ATen operator dispatched; tail: the last operators (what the output went through);
    others: {k: output shape (or the error) of name(num_classes=k)}."""
    model = make_model(ns, name, {"num_classes": num_classes}, X)
    layers, trace, output = _forward_record(model, X, True)
    eval_layers = _forward_record(model, X, False)[0]
    total, trainable, lazy = count_parameters(model)
    others = {}
    for k in other_classes:
        try:
            other = make_model(ns, name, {"num_classes": k}, X)
            other.eval()
            with torch.no_grad():
                others[k] = _shape(other(X))
        except NotImplementedError:
            raise
        except Exception as exc:
            text = str(exc).strip().splitlines()
            others[k] = "%s: %s" % (type(exc).__name__, text[0][:200] if text else "")
    return {"output": output.detach() if isinstance(output, torch.Tensor) else output, "layers": layers,
            "eval_layers": eval_layers, "ops": sorted(trace.seen), "tail": trace.tail[-TRACE_TAIL:],
            "params": total, "trainable": trainable, "lazy": lazy, "class": type(model).__name__,
            "others": others}


# -- training ---------------------------------------------------------------------------------------------
def xavier_init(module):
    """The book's init_cnn: Xavier-uniform weights for every convolution and linear layer."""
    if isinstance(module, (nn.Linear, nn.Conv2d)) and not isinstance(module.weight, nn.parameter.UninitializedParameter):
        with torch.no_grad():
            nn.init.xavier_uniform_(module.weight)


def predict(model, X):
    """The model's outputs on X in eval mode, in chunks; the model's mode is restored afterwards."""
    training = model.training
    model.eval()
    outputs = []
    try:
        with torch.no_grad():
            for start in range(0, len(X), PREDICT_CHUNK):
                out = model(X[start:start + PREDICT_CHUNK])
                if not isinstance(out, torch.Tensor):
                    return out
                outputs.append(out.detach())
    finally:
        model.train(training)
    return torch.cat(outputs)


def _optimizer(model, recipe):
    """The optimizer of the recipe: "own" uses the model's configure_optimizers() when it has one."""
    if recipe.get("optimizer") == "own":
        configure = getattr(model, "configure_optimizers", None)
        if callable(configure):
            optimizer = configure()
            if isinstance(optimizer, (list, tuple)) and optimizer:
                optimizer = optimizer[0]
            if isinstance(optimizer, dict) and "optimizer" in optimizer:
                optimizer = optimizer["optimizer"]
            if not isinstance(optimizer, torch.optim.Optimizer):
                raise TypeError("configure_optimizers() returned a %s, not a torch.optim optimizer"
                                % type(optimizer).__name__)
            return optimizer, "%s from configure_optimizers()" % type(optimizer).__name__
    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        return None, "none (no parameter requires a gradient)"
    lr = recipe.get("lr", 0.1)
    return torch.optim.SGD(params, lr=lr), "SGD(lr=%g)" % lr


def recalibrate_norms(model, X_train, chunk=256):
    """Batch-norm running statistics recomputed as a plain average over the training images, with the trained
    weights; how many layers. After a short run the running averages trail the weights (momentum 0.1 over a
    few hundred steps), and evaluation mode can collapse to one class for some initial seeds while the
    network itself has learned: a verdict must judge the weights, not that lag. The references' runs take the
    same step, so thresholds and students are judged alike."""
    norms = [m for m in model.modules()
             if isinstance(m, torch.nn.modules.batchnorm._BatchNorm) and m.track_running_stats]
    if not norms:
        return 0
    momenta = [m.momentum for m in norms]
    training = model.training
    try:
        for m in norms:
            m.reset_running_stats()
            m.momentum = None                      # a cumulative average over the chunks below
        model.train()
        with torch.no_grad():
            for start in range(0, len(X_train), chunk):
                model(X_train[start:start + chunk])
    finally:
        for m, momentum in zip(norms, momenta):
            m.momentum = momentum
        model.train(training)
    return len(norms)


def train_model(model, X_train, y_train, order, X_eval, recipe):
    """Train `model` on the batches X_train[order[step]] (cross-entropy on its outputs), then predict X_eval.

    recipe: {"init": "xavier" or None, "optimizer": "sgd" or "own", "lr": float, "seconds": soft limit,
    "threads": CPU threads to use, "weights": send the trained parameters back}. Returns the held-out
    outputs before and after training and what happened on the way (stopped: "" when all steps ran, else
    "bad_output", "frozen", "no_grad", "diverged" or "time"); the grader computes losses and accuracies
    from the outputs itself, or from the weights in a network of its own."""
    previous = torch.get_num_threads()
    if recipe.get("threads"):
        torch.set_num_threads(int(recipe["threads"]))
    try:
        return _train(model, X_train, y_train, order, X_eval, recipe)
    finally:
        torch.set_num_threads(previous)


def _train(model, X_train, y_train, order, X_eval, recipe):
    if recipe.get("init") == "xavier":
        model.apply(xavier_init)
    total, trainable, lazy = count_parameters(model)
    initial = predict(model, X_eval)
    n_classes = int(y_train.max()) + 1
    reply = {"params": total, "trainable": trainable, "steps": 0, "planned": int(order.shape[0]), "stopped": "",
             "optimizer": "", "seconds": 0.0, "initial": initial, "final": initial, "losses": torch.zeros(0)}
    if not isinstance(initial, torch.Tensor) or initial.dim() != 2 or initial.shape[0] != len(X_eval) \
            or initial.shape[1] < n_classes:
        reply["stopped"] = "bad_output"
        reply["output_shape"] = _shape(initial)
        return reply
    optimizer, reply["optimizer"] = _optimizer(model, recipe)
    if optimizer is None:
        reply["stopped"] = "frozen"
        return reply
    limit = recipe.get("seconds")
    losses, first_calls, last_calls = [], [], []
    started = time.monotonic()
    model.train()
    for step in range(order.shape[0]):
        if limit and time.monotonic() - started > limit:
            reply["stopped"] = "time"
            break
        batch = order[step]
        if step in (0, order.shape[0] - 1) and recipe.get("weights"):
            with LayerRecorder(model) as calls:       # what the network runs while it is trained
                scores = model(X_train[batch])
            (first_calls if step == 0 else last_calls).extend(calls)
        else:
            scores = model(X_train[batch])
        loss = F.cross_entropy(scores, y_train[batch])
        if not loss.requires_grad:
            reply["stopped"] = "no_grad"
            break
        if not torch.isfinite(loss.detach()):       # diverged: no step can bring it back
            reply["stopped"] = "diverged"
            losses.append(loss.detach())
            break
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.detach())
    reply["seconds"] = time.monotonic() - started
    reply["steps"] = len(losses)
    reply["losses"] = torch.stack(losses).float().cpu() if losses else torch.zeros(0)
    reply["recalibrated"] = recalibrate_norms(model, X_train)
    reply["final"] = predict(model, X_eval)
    if recipe.get("weights"):
        # For the grader to rebuild the network in its own process (d2lgrade/compare/rebuild.py): the layers
        # the first training step ran, whether the last step ran others, and the trained state_dict.
        reply["layers"] = describe_calls(model, first_calls)
        reply["layers_changed"] = bool(last_calls) and last_calls != first_calls
        reply["weights"] = state_of(model)
    return reply


def train_contract(ns, name, kwargs, X_train, y_train, order, X_eval, recipe):
    """Build the student's `name(**kwargs)` and train it with `train_model`."""
    model = make_model(ns, name, kwargs, X_train)
    return train_model(model, X_train, y_train, order, X_eval, recipe)


# -- activations ------------------------------------------------------------------------------------------
class LeNet(nn.Module):
    """The book's LeNet (sigmoid, average pooling) with its layers in `net` at the book's indices; with
    modern=True the same network with ReLU and max pooling. Plain Conv2d/Linear: the book's lazy layers
    become exactly these after their first forward pass."""

    def __init__(self, num_classes=10, modern=False):
        super().__init__()
        act = nn.ReLU if modern else nn.Sigmoid
        pool = nn.MaxPool2d if modern else nn.AvgPool2d
        self.net = nn.Sequential(
            nn.Conv2d(1, 6, kernel_size=5, padding=2), act(), pool(kernel_size=2, stride=2),
            nn.Conv2d(6, 16, kernel_size=5), act(), pool(kernel_size=2, stride=2),
            nn.Flatten(),
            nn.Linear(16 * 5 * 5, 120), act(),
            nn.Linear(120, 84), act(),
            nn.Linear(84, num_classes))

    def forward(self, X):
        return self.net(X)


def activation_cases(ns, cases):
    """For each (kind, X, seed): a seeded LeNet ("book" or "modern"), the output of every layer of its
    `net` captured with forward hooks, and what `first_two_activations(model, X)` returns."""
    fn = _lookup(ns, "first_two_activations")
    results = []
    for kind, X, seed in cases:
        torch.manual_seed(seed)
        model = LeNet(modern=(kind == "modern")).to(X.device)
        model.apply(xavier_init)
        model.eval()
        outputs = [None] * len(model.net)
        handles = [layer.register_forward_hook(
            lambda module, inputs, output, k=k: outputs.__setitem__(k, output.detach().clone()))
            for k, layer in enumerate(model.net)]
        try:
            with torch.no_grad():
                model(X)
        finally:
            for handle in handles:
                handle.remove()
        layers = [[k, type(layer).__name__, outputs[k]] for k, layer in enumerate(model.net)]
        try:
            value = fn(model, X)
        except NotImplementedError:
            raise
        except Exception as exc:   # reported per case, so the grader can name the input that failed
            text = str(exc).strip().splitlines()
            results.append({"ok": False, "error": type(exc).__name__, "message": text[0][:300] if text else "",
                            "layers": layers})
            continue
        if isinstance(value, (list, tuple)):
            value = [v.detach() if isinstance(v, torch.Tensor) else v for v in value]
        elif isinstance(value, torch.Tensor):
            value = value.detach()
        results.append({"ok": True, "value": value, "layers": layers})
    return results
