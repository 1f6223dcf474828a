"""Recorded expected values as safe data: JSON of numbers, strings, lists, dicts and raw tensor bytes.

A student kit loads these files, so they must never hold code: no pickle (torch.save, numpy object
arrays), nothing that is evaluated when read. `encode` refuses anything else, and a check that needs
such a value cannot be replayed (the release leaves it out and says why).
"""
from __future__ import annotations

import base64
import gzip
import hashlib
import json
import math
from fractions import Fraction
from pathlib import Path

import torch

FORMAT = 1


class NotSafeData(TypeError):
    """A value that a recording cannot hold (a module, a network, a function, ...)."""


def encode(value):
    """`value` as JSON-able data, tagged so that decode() restores tuples, tensors and exact numbers."""
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, int):
        return value if abs(value) < 2**53 else {"int": str(value)}
    if isinstance(value, float):
        return value if math.isfinite(value) else {"float": repr(value)}
    if isinstance(value, Fraction):
        return {"fraction": f"{value.numerator}/{value.denominator}"}
    if isinstance(value, torch.Tensor):
        t = value.detach().to("cpu").contiguous()
        if t.is_complex() or t.dtype == torch.bfloat16 or t.is_quantized or t.layout != torch.strided:
            raise NotSafeData(f"a {t.dtype} tensor of layout {t.layout}")
        if t.device.type == "meta":
            raise NotSafeData("a tensor on the meta device")
        return {"tensor": str(t.dtype).removeprefix("torch."), "shape": list(t.shape),
                "data": base64.b64encode(t.numpy().tobytes()).decode()}
    if isinstance(value, torch.dtype):
        return {"dtype": str(value).removeprefix("torch.")}
    if isinstance(value, torch.Size):
        return {"size": list(value)}
    if isinstance(value, tuple):
        return {"tuple": [encode(v) for v in value]}
    if isinstance(value, list):
        return [encode(v) for v in value]
    if isinstance(value, dict):
        if all(isinstance(k, str) for k in value):
            return {"dict": {k: encode(v) for k, v in value.items()}}
        return {"pairs": [[encode(k), encode(v)] for k, v in value.items()]}
    if hasattr(value, "is_number") and getattr(value, "is_number", False):   # an exact sympy number
        import sympy
        if value.is_Rational:
            return {"fraction": f"{value.p}/{value.q}"}
        return {"real": str(sympy.N(value, 40))}
    raise NotSafeData(f"a {type(value).__module__}.{type(value).__qualname__}")


def decode(data):
    if data is None or isinstance(data, (bool, str, int, float)):
        return data
    if isinstance(data, list):
        return [decode(v) for v in data]
    if "tensor" in data:
        dtype = getattr(torch, data["tensor"])
        raw = bytearray(base64.b64decode(data["data"]))
        flat = torch.frombuffer(raw, dtype=dtype) if raw else torch.empty(0, dtype=dtype)
        return flat.reshape(data["shape"]).clone()
    (tag, body), = data.items()
    if tag == "tuple":
        return tuple(decode(v) for v in body)
    if tag == "dict":
        return {k: decode(v) for k, v in body.items()}
    if tag == "pairs":
        return {decode(k): decode(v) for k, v in body}
    if tag == "dtype":
        return getattr(torch, body)
    if tag == "size":
        return torch.Size(body)
    if tag == "int":
        return int(body)
    if tag == "float":
        return float(body)
    if tag == "fraction":
        return Fraction(body)
    if tag == "real":
        import sympy
        return sympy.Float(body, 40)
    raise ValueError(f"unknown record tag {tag!r}")


def digest(args, kwargs=None) -> str:
    """A stable name for a call's arguments: the same inputs give the same digest on every machine."""
    h = hashlib.sha256()
    _feed(h, (tuple(args), dict(sorted((kwargs or {}).items()))))
    return h.hexdigest()[:32]


def _feed(h, value) -> None:
    if isinstance(value, torch.Tensor):
        t = value.detach().to("cpu").contiguous()
        h.update(f"T{t.dtype}{tuple(t.shape)}".encode())
        h.update(t.numpy().tobytes() if t.dtype != torch.bfloat16 else t.float().numpy().tobytes())
    elif isinstance(value, (tuple, list)):
        h.update(f"{type(value).__name__[0]}{len(value)}(".encode())
        for v in value:
            _feed(h, v)
        h.update(b")")
    elif isinstance(value, dict):
        h.update(f"D{len(value)}(".encode())
        for k, v in value.items():
            _feed(h, k)
            _feed(h, v)
        h.update(b")")
    elif value is None or isinstance(value, (bool, int, float, str, Fraction, torch.dtype, torch.Size)):
        h.update(f"{type(value).__name__}:{value!r};".encode())
    elif hasattr(value, "X") and hasattr(value, "y"):     # data.Images: its pixels and labels decide
        _feed(h, ("images", value.X, value.y))
    else:
        raise NotSafeData(f"an argument of type {type(value).__qualname__}")


def write(path: Path, payload: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with gzip.open(path, "wt", encoding="utf-8", compresslevel=9) as file:
        json.dump({"format": FORMAT, **payload}, file, separators=(",", ":"), sort_keys=True)


def read(path: Path) -> dict:
    with gzip.open(path, "rt", encoding="utf-8") as file:
        payload = json.load(file)
    if payload.get("format") != FORMAT:
        raise ValueError(f"{path} was written by another version of d2l-grade (format {payload.get('format')})")
    return payload
