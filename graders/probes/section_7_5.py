"""Probes for 7.5, run INSIDE the student runtime (plain module: torch and stdlib only).

`run_max_pool` builds the student's MaxPoolViaReLU (an nn.Module cannot cross the process boundary),
runs it on the grader's inputs, and reports each output or error together with the ATen operators the
forward passes ran, so that the grader can refuse a max-pooling or max reduction done by the library.
"""
import torch
from torch.utils._python_dispatch import TorchDispatchMode


class _Recorder(TorchDispatchMode):
    def __init__(self):
        super().__init__()
        self.ops = set()
        self.marker = torch.zeros(1)
        self.marker_seen = False       # an operation on the marker after each call: the recording still ran

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        if args and args[0] is self.marker:
            self.marker_seen = True
        else:
            self.ops.add(func.overloadpacket.__name__)
        return func(*args, **(kwargs or {}))


def _build(cls, pool_size):
    """MaxPoolViaReLU(pool_size=k); a class without that argument is accepted for the default window 2."""
    try:
        return cls(pool_size=pool_size)
    except TypeError as exc:
        if "pool_size" not in str(exc) and "positional argument" not in str(exc):
            raise
        if pool_size != 2:
            raise TypeError("MaxPoolViaReLU does not accept pool_size=%r (%s)" % (pool_size, exc)) from None
        return cls()


def _pooler(ns, pool_size):
    """(callable, kind): the module if the class is defined and implemented, else the function."""
    cls, fn = ns.get("MaxPoolViaReLU"), ns.get("max_pool_via_relu")
    if cls is None and fn is None:
        raise LookupError("`MaxPoolViaReLU` is not defined")
    if cls is not None:
        try:
            module = _build(cls, pool_size)
        except NotImplementedError:
            if fn is None:
                raise
        else:
            if not isinstance(module, torch.nn.Module):
                raise TypeError("MaxPoolViaReLU(pool_size=%r) is a %s, not an nn.Module"
                                % (pool_size, type(module).__name__))
            return module, "module"
    if not callable(fn):
        raise TypeError("max_pool_via_relu is a %s, not a function" % type(fn).__name__)
    return (lambda X: fn(X, pool_size)), "function"


def run_max_pool(ns, inputs, pool_size):
    """Outputs of the student's max pooling on each input: {"ok", "value"} or {"ok": False, "error"}."""
    pooler, kind = _pooler(ns, pool_size)
    recorder = _Recorder()
    results = []
    traced = True
    for X in inputs:
        try:
            recorder.marker_seen = False
            with recorder:
                Y = pooler(X)
                recorder.marker.add_(0)
            traced = traced and recorder.marker_seen
        except NotImplementedError:
            if kind == "module" and ns.get("max_pool_via_relu") is not None:
                pooler, kind = _pooler({"max_pool_via_relu": ns["max_pool_via_relu"]}, pool_size)
                with recorder:
                    Y = pooler(X)
            else:
                raise
        except Exception as exc:  # reported per input, so the grader can name the first problem
            results.append({"ok": False, "error": type(exc).__name__, "message": str(exc).strip().splitlines()[0][:300]
                            if str(exc).strip() else ""})
            continue
        results.append({"ok": True, "value": Y.detach() if isinstance(Y, torch.Tensor) else Y})
    return {"kind": kind, "results": results, "ops": sorted(recorder.ops), "traced": traced}
