"""Runtime-side probe for 7.2: which ATen operators does the student's `corr2d_matmul` run?

Plain code (torch and stdlib only): its source is executed inside the student runtime.
"""
import torch
from torch.utils._python_dispatch import TorchDispatchMode


def operators_of_corr2d_matmul(ns, X, K):
    """The sorted names of the operators one call of corr2d_matmul(X, K) dispatches."""
    fn = ns.get("corr2d_matmul")
    if fn is None:
        raise LookupError("`corr2d_matmul` is not defined")
    seen = set()

    class Recorder(TorchDispatchMode):
        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            seen.add(func.overloadpacket.__name__)
            return func(*args, **(kwargs or {}))

    with Recorder():
        fn(X, K)
    return sorted(seen)
