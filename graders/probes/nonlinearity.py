"""Where a network applies no nonlinearity between two weighted layers, measured INSIDE the student runtime
(plain module: torch and stdlib only).

A declared `nn.ReLU` says nothing about what runs: it can be an `nn.Identity`, be skipped in forward, or
be replaced by `F.relu` (which is fine). So the forward pass itself is followed, operator by operator, on
one random input: each tensor carries the weighted layers (convolutions, dense layers) whose output reaches
it through linear work only (sums, reshaping, batch norm in eval mode, dropout, padding) or through
pooling, which none of these exercises counts as the activation a layer needs. Any other operator
(ReLU, sigmoid, tanh, GELU, a hand-written `x * (x > 0)`, an unknown operator) bends its input and clears
that list, so a correct network in any style is never accused. A weighted layer that receives a tensor
still carrying another weighted layer is reported: the two compose to one linear map.
"""
import torch
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten
from torch.utils.weak import WeakTensorKeyDictionary

PROBE_USES = ("graders.probes.architecture",)   # its source runs ahead of this module's in the runtime
if __name__ != "__main__":      # in the runtime (as __main__), architecture.py's definitions are already here
    from graders.probes.architecture import build

WEIGHTED = {"convolution", "_convolution", "conv2d", "conv1d", "mkldnn_convolution", "mm", "addmm", "bmm",
            "baddbmm", "matmul", "linear"}
# Linear in their input (or pooling, see above): what a layer's output may pass through and stay unbent.
PASSING = {
    "add", "add_", "sub", "sub_", "neg", "neg_", "sum", "mean", "cat", "stack", "clone", "_to_copy", "copy_",
    "contiguous", "detach", "alias", "lift_fresh", "view", "_unsafe_view", "reshape", "flatten", "view_as",
    "t", "transpose", "permute", "expand", "expand_as", "squeeze", "squeeze_", "unsqueeze", "unsqueeze_",
    "slice", "select", "narrow", "split", "split_with_sizes", "chunk", "unbind", "index_select", "as_strided",
    "repeat", "flip", "roll", "constant_pad_nd", "pad", "reflection_pad2d", "replication_pad2d",
    "avg_pool2d", "avg_pool1d", "adaptive_avg_pool2d", "_adaptive_avg_pool2d", "adaptive_avg_pool1d",
    "max_pool2d", "max_pool2d_with_indices", "adaptive_max_pool2d", "max_pool1d", "max_pool1d_with_indices",
    "native_batch_norm", "_native_batch_norm_legit", "_native_batch_norm_legit_no_training",
    "_native_batch_norm_legit_functional", "batch_norm", "native_dropout", "dropout", "feature_dropout",
    "upsample_nearest2d", "_unsafe_index"}
SCALING = {"mul", "mul_", "div", "div_"}        # linear when one factor does not depend on the input
MAX_REPORTED = 20


class _Flow(TorchDispatchMode):
    def __init__(self, where):
        super().__init__()
        self.where = where                       # the stack of modules running, innermost last
        self.state = WeakTensorKeyDictionary()   # tensor -> (weighted layers reaching it unbent, depends on input)
        self.pairs, self.weighted, self.per_module = [], 0, {}
        self.bent = {}                           # weighted layer -> the operators that bent its output

    def label(self):
        name, kind = self.where[-1] if self.where else ("", "forward")
        count = self.per_module.get(name, 0) + 1
        self.per_module[name] = count
        text = "`%s` (%s)" % (name, kind) if name else "a call in the model's forward"
        return text if count == 1 else "%s, call %d" % (text, count)

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        name = func.overloadpacket.__name__
        inputs = [t for t in tree_flatten((args, kwargs))[0] if isinstance(t, torch.Tensor)]
        states = [self.state.get(t, ((), False)) for t in inputs]
        carried = []
        for layers, _ in states:
            carried.extend(layer for layer in layers if layer not in carried)
        data = sum(1 for _, depends in states if depends)
        if name in WEIGHTED and data == 1:
            self.weighted += 1
            here = self.label()
            for layer in carried:
                if [layer, here] not in self.pairs and len(self.pairs) < MAX_REPORTED:
                    self.pairs.append([layer, here])
            result = ((here,), True)
        elif name in PASSING or name in SCALING and data <= 1:
            result = (tuple(carried), data > 0)
        else:
            for layer in carried:
                ops = self.bent.setdefault(layer, [])
                if name not in ops and len(ops) < MAX_REPORTED:
                    ops.append(name)
            result = ((), data > 0)
        for t in tree_flatten(out)[0]:
            if isinstance(t, torch.Tensor):
                self.state[t] = result
        return out


def unbent_pairs(ns, name, args=(), kwargs=None, input_shape=(2, 1, 28, 28)):
    """{"pairs": [[layer, later layer], ...] where the earlier layer's output reaches the later one with no
    nonlinearity applied, "bent": [[layer, [operators that bent its output]], ...], "weighted": how many
    weighted layer calls ran} for one forward pass (eval mode, CPU) of `name(*args, **kwargs)` on a random input."""
    model, _ = build(ns, name, args, kwargs, tuple(input_shape), "cpu")
    where, handles = [], []
    for qualified, module in model.named_modules():
        def enter(module, inputs, qualified=qualified):
            where.append((qualified, type(module).__name__))

        def leave(module, inputs, output):
            if where:
                where.pop()
        handles.append(module.register_forward_pre_hook(enter))
        handles.append(module.register_forward_hook(leave))
    flow = _Flow(where)
    X = torch.randn(*input_shape, generator=torch.Generator().manual_seed(0))
    try:
        with torch.no_grad():
            flow.state[X] = ((), True)
            with flow:
                model(X)
    finally:
        for handle in handles:
            handle.remove()
    return {"pairs": flow.pairs, "bent": [[layer, ops] for layer, ops in flow.bent.items()], "weighted": flow.weighted}
