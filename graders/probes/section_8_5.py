"""Probes for 8.5 Batch normalization, run INSIDE the student runtime (plain module: torch and stdlib only).

They build the student's normalisation layers and networks there and send back plain data: the outputs
of a few training-mode steps and of one evaluation-mode pass, parameter counts, and the layers of a
network before and after the student's bias removal. The grader computes what each output should be.
"""
import torch
from torch import nn

PROBE_USES = ("graders.probes.layers",)   # its source runs ahead of this module's in the runtime
if __name__ != "__main__":      # in the runtime, layers.py's definitions are already here
    from graders.probes.layers import LayerRecorder, describe_calls, state_of


def _lookup(ns, name):
    value = ns.get(name)
    if value is None:
        raise LookupError("`%s` is not defined" % name)
    if not callable(value):
        raise TypeError("`%s` is a %s; it should be a class or a function" % (name, type(value).__name__))
    return value


def _move_parameters(layer, gamma, beta):
    """Set each trainable parameter that starts as all ones (a scale γ) or all zeros (a shift β) and has one value per
    channel to the grader's values; the roles, in the order the layer lists its parameters."""
    roles = []
    with torch.no_grad():
        for param in layer.parameters():
            role = None
            if param.requires_grad and param.numel() == gamma.numel():
                if bool((param == 1).all()):
                    role, values = "gamma", gamma
                elif bool((param == 0).all()):
                    role, values = "beta", beta
                if role:
                    param.copy_(values.reshape(param.shape).to(param.dtype))
            roles.append(role)
    return roles


def norm_runs(ns, name, args, batches, eval_X, moved=None):
    """`name(*args)` in training mode on each batch (gradients on, as in training), then in evaluation
    mode under torch.no_grad() on eval_X: the outputs, and the layer's parameter counts. With `moved`
    ({"gamma", "beta", "batches", "eval_X"}), then γ and β moved to other values and the same again on
    larger batches."""
    layer = _lookup(ns, name)(*args)
    if not isinstance(layer, nn.Module):
        raise TypeError("`%s(...)` returned a %s, not an nn.Module" % (name, type(layer).__name__))
    layer = layer.to(eval_X.device)
    layer.train()
    train = []
    for X in batches:
        Y = layer(X)
        if not isinstance(Y, torch.Tensor):
            return {"bad_output": type(Y).__name__}
        train.append(Y.detach().clone())
    layer.eval()
    with torch.no_grad():
        evaluated = layer(eval_X)
    params = list(layer.parameters())
    out = {"train": train, "eval": evaluated.detach().clone() if isinstance(evaluated, torch.Tensor) else None,
           "params": sum(p.numel() for p in params),
           "trainable": sum(p.numel() for p in params if p.requires_grad),
           "trainable_names": [n for n, p in layer.named_parameters() if p.requires_grad]}
    if moved is not None and isinstance(evaluated, torch.Tensor):
        roles = _move_parameters(layer, moved["gamma"], moved["beta"])
        layer.train()
        later = [layer(X) for X in moved["batches"]]
        layer.eval()
        with torch.no_grad():
            later_eval = layer(moved["eval_X"])
        out["moved"] = {"roles": roles, "train": [Y.detach().clone() if isinstance(Y, torch.Tensor) else None
                                                  for Y in later],
                        "eval": later_eval.detach().clone() if isinstance(later_eval, torch.Tensor) else None}
    return out


def batch_norm_calls(ns, cases):
    """The book's `batch_norm(X, gamma, beta, moving_mean, moving_var, eps, momentum)` for each case, with
    gradients on (training, as the book decides it) or under torch.no_grad() (prediction)."""
    fn = _lookup(ns, "batch_norm")
    out = []
    for X, gamma, beta, mean, var, eps, momentum, grad in cases:
        with torch.set_grad_enabled(bool(grad)):
            result = fn(X, gamma, beta, mean, var, eps, momentum)
        if not isinstance(result, (tuple, list)) or len(result) != 3 or \
                not all(isinstance(r, torch.Tensor) for r in result):
            out.append({"bad_output": type(result).__name__ if not isinstance(result, (tuple, list))
                        else "a %s of %d items" % (type(result).__name__, len(result))})
            continue
        out.append({"values": [r.detach().clone() for r in result]})
    return out


def _leaves(net):
    """[type, has a bias parameter, its values] for each layer of a Sequential."""
    rows = []
    for layer in net:
        bias = getattr(layer, "bias", None)
        rows.append([type(layer).__name__, isinstance(bias, torch.Tensor) and isinstance(bias, nn.Parameter),
                     bias.detach().clone() if isinstance(bias, torch.Tensor) else None])
    return rows


def _network(layout, seed):
    """A Sequential from ("conv", c_in, c_out), ("linear", n_in, n_out), ("bn2", c), ("bn1", n), ("relu",),
    ("flatten",), with random non-zero biases (so that removing a bias that matters shows)."""
    torch.manual_seed(seed)
    make = {"conv": lambda a, b: nn.Conv2d(a, b, 3, padding=1), "linear": nn.Linear,
            "bn2": nn.BatchNorm2d, "bn1": nn.BatchNorm1d, "relu": lambda: nn.ReLU(), "flatten": lambda: nn.Flatten()}
    net = nn.Sequential(*[make[kind](*sizes) for kind, *sizes in layout])
    with torch.no_grad():
        for layer in net:
            if isinstance(layer, (nn.Conv2d, nn.Linear)):
                layer.bias.uniform_(-2, 2)
    return net


def bias_cases(ns, cases):
    """For each (layout, X, seed): the network's training-mode output, what `without_bias(net)` returns
    (its layers and its training-mode output on X)."""
    fn = _lookup(ns, "without_bias")
    results = []
    for layout, X, seed in cases:
        net = _network(layout, seed).to(X.device)
        original = _leaves(net)
        net.train()
        expected = net(X).detach().clone()
        fresh = _network(layout, seed).to(X.device)       # the student gets an untouched network
        result = fn(fresh)
        if not isinstance(result, nn.Module):
            results.append({"bad_output": type(result).__name__})
            continue
        result.train()
        got = result(X)
        layers = _leaves(result) if isinstance(result, nn.Sequential) else None
        results.append({"expected": expected, "got": got.detach().clone() if isinstance(got, torch.Tensor) else None,
                        "original": original, "layers": layers,
                        "params": sum(p.numel() for p in result.parameters()),
                        "original_params": sum(p.numel() for p in net.parameters())})
    return results


# -- 8.5/2: a short training run ------------------------------------------------------------------------
CHUNK = 250


def _xavier(module):
    """The book's init_cnn: Xavier-uniform weights for every convolution and dense layer."""
    if isinstance(module, (nn.Linear, nn.Conv2d)) and not isinstance(module.weight, nn.parameter.UninitializedParameter):
        nn.init.xavier_uniform_(module.weight)


def train_bn(ns, name, X_train, y_train, order, X_eval, lr, threads=1):
    """Train a fresh `name()` with SGD(lr) on the batches X_train[order[step]], the book's Xavier init, one
    thread; return its outputs on X_eval with the statistics of each chunk of CHUNK held-out images
    (training-mode batch norm: after a short run at a large rate the running averages lag far behind the
    weights, and evaluation-mode scores swing with the initial seed), and the trained parameters, in the
    order the model lists them, for the grader to score them in a network of its own, with the layers the
    first step ran and the state_dict (graders/probes/layers.py) for the grader to rebuild any other network.
    No labels of X_eval are sent."""
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        model = _lookup(ns, name)()
        if not isinstance(model, nn.Module):
            raise TypeError("`%s()` returned a %s, not an nn.Module" % (name, type(model).__name__))
        model = model.to(X_train.device)
        model.eval()
        with torch.no_grad():
            model(X_train[:2])                # materialises lazy layers
        model.apply(_xavier)
        params = [p for p in model.parameters() if p.requires_grad]
        if not params:
            return {"stopped": "frozen"}
        optimizer = torch.optim.SGD(params, lr=lr)
        model.train()
        steps = 0
        calls = []
        for batch in order:
            if steps == 0:
                with LayerRecorder(model) as calls:      # what the network runs while it is trained
                    scores = model(X_train[batch])
            else:
                scores = model(X_train[batch])
            loss = nn.functional.cross_entropy(scores, y_train[batch])
            if not torch.isfinite(loss.detach()):
                return {"stopped": "diverged", "steps": steps}
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            steps += 1
        with torch.no_grad():
            outputs = [model(X_eval[i:i + CHUNK]) for i in range(0, len(X_eval), CHUNK)]
        if not all(isinstance(o, torch.Tensor) for o in outputs):
            return {"stopped": "bad_output"}
        weights = [p.detach().to("cpu").clone() for p in model.parameters()]
        if sum(w.numel() for w in weights) > 2_000_000:
            weights = []
        return {"stopped": "", "steps": steps, "final": torch.cat(outputs).detach(), "weights": weights,
                "layers": describe_calls(model, calls), "state": state_of(model, 2_000_000)}
    finally:
        torch.set_num_threads(previous)
