"""Runtime-side probe: do the matrix products a function runs compute what it returns?

Plain code (torch and stdlib only): its source is executed inside the student runtime.
"""
import torch
from torch.utils._python_dispatch import TorchDispatchMode

MATMUL_OPS = {"mm", "mv", "bmm", "addmm", "addmv", "baddbmm", "addbmm", "dot", "vdot"}


def call_with_noisy_products(ns, name, *args, **kwargs):
    """(the sorted operators one call of `name`(*args, **kwargs) runs, its result when noise is added to
    the result of every matrix product in it). Values a product computes change; the values a product
    beside the real computation (a decoy, even one multiplied by 0) leaves alone do not."""
    fn = ns.get(name)
    if fn is None:
        raise LookupError("`%s` is not defined" % name)
    seen = set()
    noise = torch.Generator().manual_seed(72)

    class PoisonedProducts(TorchDispatchMode):
        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            op = func.overloadpacket.__name__
            seen.add(op)
            out = func(*args, **(kwargs or {}))
            if op in MATMUL_OPS and isinstance(out, torch.Tensor) and out.is_floating_point():
                return out + torch.randn(out.shape, generator=noise, dtype=out.dtype)
            return out

    with PoisonedProducts():
        value = fn(*args, **kwargs)
    return sorted(seen), value.detach() if isinstance(value, torch.Tensor) else value
