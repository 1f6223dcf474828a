"""Probes for 8.7 DenseNet's dense MLP, run INSIDE the student runtime (plain module: torch and stdlib only).

`DenseMLP` cannot cross the process boundary: these functions build it, report its linear layers in the
order a forward pass runs them, test where its inputs reach, and train it on the grader's batches. The
grader also trains the reference with `train_mlp`, so both sides follow one recipe on the same batches.
"""
import torch
from torch import nn
from torch.nn import functional as F


def _build(ns, kwargs):
    cls = ns.get("DenseMLP")
    if cls is None:
        raise LookupError("`DenseMLP` is not defined")
    model = cls(**kwargs)
    if not isinstance(model, nn.Module):
        raise TypeError("DenseMLP(...) returned a %s, not an nn.Module" % type(model).__name__)
    return model


def _linears_in_order(model, X):
    """The Linear layers (or anything with a 2-D weight) in the order one forward pass on X runs them."""
    seen, handles = [], []
    for module in model.modules():
        if isinstance(module, nn.Linear):
            handles.append(module.register_forward_hook(
                lambda m, i, o: seen.append(m) if all(m is not s for s in seen) else None))
    try:
        with torch.no_grad():
            output = model(X)
    finally:
        for handle in handles:
            handle.remove()
    return seen, output


def _spread(output):
    return float(output.detach().double().std(0).max()) if isinstance(output, torch.Tensor) and len(output) > 1 else 0.0


def structure(ns, kwargs, X):
    """Output shape, [in, out] of each Linear in forward order, and for each hidden Linear how much the
    output still varies over X when that layer's weight and bias are zero (and when all hidden ones are)."""
    torch.manual_seed(0)
    model = _build(ns, kwargs).to(X.device).eval()
    linears, output = _linears_in_order(model, X)
    reply = {"output": list(output.shape) if isinstance(output, torch.Tensor) else type(output).__name__,
             "linears": [[m.in_features, m.out_features] for m in linears], "zeroed": [], "all_zeroed": None,
             "spread": _spread(output)}
    with torch.no_grad():
        saved = [(m.weight.clone(), None if m.bias is None else m.bias.clone()) for m in linears]
        for k, m in enumerate(linears[:-1]):
            m.weight.zero_()
            if m.bias is not None:
                m.bias.zero_()
            reply["zeroed"].append(_spread(model(X)))
            m.weight.copy_(saved[k][0])
            if m.bias is not None:
                m.bias.copy_(saved[k][1])
        for m in linears[:-1]:
            m.weight.zero_()
            if m.bias is not None:
                m.bias.zero_()
        if linears[:-1]:
            reply["all_zeroed"] = _spread(model(X))
    return reply


def train_mlp(ns, kwargs, X_train, y_train, order, X_eval, recipe):
    """Train `DenseMLP(**kwargs)` with Adam on squared loss over the batches X_train[order[step]]; return the
    held-out predictions and the trained Linear layers' [weight, bias] in forward order."""
    previous = torch.get_num_threads()
    torch.set_num_threads(int(recipe.get("threads", 1)))
    try:
        torch.manual_seed(int(recipe.get("seed", 0)))
        model = _build(ns, kwargs).to(X_train.device)
        params = [p for p in model.parameters() if p.requires_grad]
        reply = {"steps": 0, "stopped": ""}
        if not params:
            reply["stopped"] = "frozen"
            return reply
        optimizer = torch.optim.Adam(params, lr=recipe.get("lr", 0.01))
        model.train()
        for step in range(order.shape[0]):
            batch = order[step]
            loss = F.mse_loss(model(X_train[batch]).reshape(-1), y_train[batch])
            if not torch.isfinite(loss.detach()):
                reply["stopped"] = "diverged"
                break
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            reply["steps"] = step + 1
        model.eval()
        linears, output = _linears_in_order(model, X_eval)
        reply["final"] = output.detach() if isinstance(output, torch.Tensor) else None
        reply["weights"] = [[m.weight.detach().clone(), None if m.bias is None else m.bias.detach().clone()]
                            for m in linears]
        return reply
    finally:
        torch.set_num_threads(previous)
