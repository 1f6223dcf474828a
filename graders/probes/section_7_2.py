"""Runtime-side probe for 7.2: does the matrix product compute what `corr2d_matmul` returns?

Plain code (torch and stdlib only): its source is executed inside the student runtime.
"""
import torch
from torch.utils._python_dispatch import TorchDispatchMode

MATMUL_OPS = {"mm", "mv", "bmm", "addmm", "addmv", "baddbmm", "addbmm", "dot", "vdot"}


def corr2d_matmul_with_noisy_products(ns, X, K):
    """(the sorted operators one call of corr2d_matmul(X, K) runs, its result when noise is added to the
    result of every matrix product in it). Values a product computes change; the values a product
    beside the real computation (a decoy, even one multiplied by 0) leaves alone do not."""
    fn = ns.get("corr2d_matmul")
    if fn is None:
        raise LookupError("`corr2d_matmul` is not defined")
    seen = set()
    noise = torch.Generator().manual_seed(72)

    class PoisonedProducts(TorchDispatchMode):
        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            name = func.overloadpacket.__name__
            seen.add(name)
            out = func(*args, **(kwargs or {}))
            if name in MATMUL_OPS and isinstance(out, torch.Tensor) and out.is_floating_point():
                return out + torch.randn(out.shape, generator=noise, dtype=out.dtype)
            return out

    with PoisonedProducts():
        value = fn(X, K)
    return sorted(seen), value.detach() if isinstance(value, torch.Tensor) else value
