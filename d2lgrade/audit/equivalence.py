"""Deciding that a surviving mutant behaves exactly like the reference.

The checks' own requests are recorded while the reference is graded; a survivor is equivalent only when
it answers every one of them identically *and* answers a larger set of fresh random inputs (the checks'
calls and probes with every floating tensor redrawn, at several scales) identically to the reference. Where no such set can
be made (a value with no inputs is the exception: equal is proof), the survivor stays a hole. The
evidence covers the calls the checks make: the same shapes and arguments, other values; a mutant that
differs only for a call no check makes (another default argument) is listed as equivalent."""
from __future__ import annotations

import math

import torch

from d2lgrade.run import wire

# One round of redrawn inputs per scale: a tolerance written relative to one value where it should be
# relative to another (7.4/1.3's `1e-05 * s[0]`) agrees with the reference only near scale 1.
SCALES = (1.0, 1e-3, 1e3, 1.0)


class Recorder:
    """A Runtime that keeps every request and reply that passed through it."""

    def __init__(self, runtime):
        self.inner, self.log = runtime, []

    def request(self, request: dict, timeout: float) -> dict:
        reply = self.inner.request(request, timeout)
        self.log.append((request, reply))
        return reply

    def __getattr__(self, name):
        return getattr(self.inner, name)


def values(request: dict, reply: dict):
    """What the reply says about the student's code, in comparable form (errors by their type)."""
    if not reply.get("ok", True) and "status" in reply:
        return ("runtime", reply.get("status"))
    op = request.get("op")
    if op == "call":
        return [(r.get("ok"), wire.unwrap(r.get("value")) if r.get("ok") else r.get("error"))
                for r in reply.get("results", [])]
    if op == "get":
        return {n: (reply.get(n, {}).get("ok"), wire.unwrap(reply.get(n, {}).get("value"))) for n in request["names"]}
    return (reply.get("ok"), wire.unwrap(reply.get("value")) if reply.get("ok") else reply.get("error"))


def same(a, b) -> bool:
    if isinstance(a, torch.Tensor) or isinstance(b, torch.Tensor):
        return isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor) and a.shape == b.shape and \
            a.dtype == b.dtype and bool(torch.equal(a, b) or (a.is_floating_point() and
                                                              torch.allclose(a, b, rtol=0, atol=0, equal_nan=True)))
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return type(a) is type(b) and len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    if type(a) is not type(b):
        return False
    try:
        return bool(a == b)
    except Exception:       # e.g. numpy arrays: compare their text
        return repr(a) == repr(b)


def redrawn(request: dict, generator: torch.Generator, scale: float = 1.0) -> dict | None:
    """The same call request with every floating tensor argument replaced by fresh normal values; None
    when the request has no such argument (nothing new would be asked)."""
    changed = [False]

    def walk(node):
        if isinstance(node, torch.Tensor) and node.is_floating_point():
            changed[0] = True
            return torch.randn(node.shape, generator=generator, dtype=node.dtype) * scale
        if isinstance(node, (list, tuple)):
            return type(node)(walk(v) for v in node)
        if isinstance(node, dict):
            return {k: walk(v) for k, v in node.items()}
        return node

    if request.get("op") == "call":
        new = dict(request, calls=[[walk(args), walk(kwargs)] for args, kwargs in request["calls"]])
    else:                                   # a grader-side probe: its inputs are redrawn the same way
        new = dict(request, args=walk(request.get("args", [])), kwargs=walk(request.get("kwargs", {})))
    return new if changed[0] else None


def random_requests(log: list[tuple[dict, dict]], seed: int = 0) -> list[dict]:
    generator = torch.Generator().manual_seed(seed)
    out = []
    for scale in SCALES:
        for request, _ in log:
            if request.get("op") in ("call", "probe"):
                new = redrawn(request, generator, scale)
                if new is not None:
                    out.append(new)
    return out


def replay(runtime, requests: list[dict], timeout: float) -> list:
    return [values(r, runtime.request(r, timeout)) for r in requests]


def provable(log: list[tuple[dict, dict]]) -> bool:
    """Whether identical answers could prove equivalence: every request is a value, or a call or probe
    with floating inputs to redraw (a request with nothing to redraw would only repeat the checks)."""
    generator = torch.Generator().manual_seed(0)
    return bool(log) and all(r.get("op") == "get" or (r.get("op") in ("call", "probe") and redrawn(r, generator))
                             for r, _ in log)
