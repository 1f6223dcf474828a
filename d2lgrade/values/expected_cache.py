"""Expected values kept once per course and grader version (the live seam's cache, d2lgrade/values/expected.py).

A check's inputs come from the course key and its seed, so the reference's outputs on them are the same for
every student: they are kept in this process and on disk beside the reference-run cache (d2lgrade/numerics/pinned.py),
where parallel workers and later runs read them. A stored value must be exactly what a fresh computation
returns, so:
- the key holds everything that decides the value: a digest of the course key (never the key), the code that
  computes it (the reference, the grader modules the function's module reaches, d2lgrade's own source), the
  grader process's numerics, the check that asks, the label, the function and its arguments' digest;
- only values that come back identical from the safe encoding of d2lgrade/core/recording.py are kept (no pickle:
  a file is JSON, checked against that encoding's grammar before it is decoded, and dropped when it is not);
- a hit is decoded afresh each time, so a grader that changes a value in place changes nobody else's.
The kit and the release never come here (expected.computed calls this in live mode only).
"""
from __future__ import annotations

import base64
import functools
import gzip
import hashlib
import json
import math
import os
import platform
import sys
import tempfile
import types
from fractions import Fraction
from pathlib import Path

import torch

from d2lgrade.numerics import pinned
from d2lgrade.core import recording

FORMAT = 1
MEMORY_ENTRIES = 4096                 # a batch's per-student misses must not grow a worker without bound
_memory: dict[str, object] = {}       # key -> encoded value, in insertion order (oldest dropped first)
_code_digests: dict[tuple, str] = {}  # (section, function's module) -> digest of the code that decides values

TENSOR_DTYPES = {"float16": 2, "float32": 4, "float64": 8, "int8": 1, "int16": 2, "int32": 4, "int64": 8,
                 "uint8": 1, "bool": 1}
DTYPES = set(TENSOR_DTYPES) | {"bfloat16", "complex64", "complex128"}
PACKAGE = Path(__file__).resolve().parents[1]
ROOT = PACKAGE.parent


class _Unsafe(ValueError):
    """A stored file that is not exactly what this module writes."""


def folder() -> Path:
    return pinned.CACHE / "expected"


def fetch(key: str):
    """(True, a fresh copy of the kept value) or (False, None)."""
    data = _memory.get(key)
    if data is None:
        data = _read(key)
        if data is None:
            return False, None
        _remember(key, data)
    return True, recording.decode(data)


def keep(key: str, value, arguments: str | None = None, args: tuple = (), kwargs: dict | None = None) -> None:
    """Keep `value` under `key` when the safe encoding gives it back exactly; anything else is recomputed.
    `arguments`: the digest of `args` and `kwargs` before the call; a function that changed its arguments in
    place is computed every time, since a kept value would skip that change."""
    try:
        if arguments is not None and recording.digest(args, kwargs) != arguments:
            return
        data = recording.encode(value)
        if not same(value, recording.decode(data)):
            return
    except Exception:                                     # a value the cache cannot hold never costs a verdict
        return
    _remember(key, data)
    _write(key, data)


def key(section: str, check: str | None, label: str, fn, args: tuple, kwargs: dict,
        course_key: bytes) -> tuple[str, str] | None:
    """The name of `fn(reference, *args, **kwargs)`'s value and its arguments' digest, or None when nothing can
    name it safely: a function that carries state of its own (a closure, a bound method, a partial) or an
    argument that is not safe data (a student's network)."""
    fn = _unwrapped(fn)
    identity = _function_identity(fn)
    if identity is None:
        return None
    try:
        arguments = recording.digest(args, kwargs)
        code = code_digest(section, fn.__module__)
    except Exception:                                     # not safe data (or a meta tensor), unreadable code
        return None
    digest = hashlib.sha256(f"d2lgrade expected values {FORMAT}\0".encode())
    digest.update(hashlib.sha256(b"course key\0" + course_key).digest())
    for part in (section, check or "", label, identity, arguments, code, numerics()):
        digest.update(part.encode() + b"\0")
    return digest.hexdigest(), arguments


def constant_key(section: str, name: str) -> str | None:
    """The name of what the reference of `section` binds to `name` (a value, or that it is a function): the
    reference's code and what it imports from the project, d2l's version and the process's numerics (a constant
    may be computed when the reference is imported) decide it; the course key does not."""
    from d2lgrade.core import version
    try:
        code = code_digest(section, f"reference.section_{section.replace('.', '_')}")
    except Exception:                                     # unreadable code: the reference is imported instead
        return None
    digest = hashlib.sha256(f"d2lgrade reference constants {FORMAT}\0".encode())
    for part in (section, name, code, version.installed_version("d2l"), numerics()):
        digest.update(part.encode() + b"\0")
    return digest.hexdigest()


def same(a, b) -> bool:
    """`a` and `b` are the same value down to type, order and bits (what a fresh computation would return)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, torch.Tensor):
        return (a.dtype == b.dtype and a.shape == b.shape and a.stride() == b.stride() and a.device == b.device
                and not a.requires_grad and a.grad_fn is None and not a.is_conj() and not a.is_neg()
                and a.storage_offset() == 0 and a.numpy().tobytes() == b.numpy().tobytes())
    if isinstance(a, float):
        return repr(a) == repr(b)                         # -0.0 and nan are values too
    if isinstance(a, (tuple, list)):                      # torch.Size is a tuple
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    if isinstance(a, dict):
        return list(a) == list(b) and all(same(x, y) for x, y in zip(a.keys(), b.keys())) \
            and all(same(a[k], b[k]) for k in a)
    if a is None or isinstance(a, (bool, int, str, Fraction, torch.dtype)):
        return a == b
    return False                                          # sympy numbers and the like: not kept


# --------------------------------------------------------------------------------------------
# What decides a value
# --------------------------------------------------------------------------------------------

def _unwrapped(fn):
    """The function under functools.cache/lru_cache wrappers: they keep its results, no state that changes them,
    so the plain function names the value (and says whether it carries state of its own)."""
    while isinstance(fn, functools._lru_cache_wrapper) and isinstance(getattr(fn, "__wrapped__", None),
                                                                    types.FunctionType):
        fn = fn.__wrapped__
    return fn


def _function_identity(fn) -> str | None:
    if not isinstance(fn, types.FunctionType) or fn.__closure__ or fn.__kwdefaults__:
        return None
    defaults = fn.__defaults__ or ()
    try:
        defaults_digest = recording.digest(defaults)
    except recording.NotSafeData:
        return None
    return f"{fn.__module__}:{fn.__qualname__}:{defaults_digest}"


def code_digest(section: str, module: str) -> str:
    """The reference of `section`, the project modules `module` reaches (d2lgrade/core/version.py's walk, which
    also follows `reference("x.y")`), and d2lgrade's own source: a change to any of them is a new key."""
    known = _code_digests.get((section, module))
    if known is None:
        from d2lgrade.core import version
        files = {_module_file(f"reference.section_{section.replace('.', '_')}")}
        files |= version._module_closure(module)
        files |= set(PACKAGE.rglob("*.py"))
        digest = hashlib.sha256()
        for path in sorted(p for p in files if p is not None):
            name = path.relative_to(ROOT) if path.is_relative_to(ROOT) else path   # the same on every checkout
            digest.update(str(name).encode() + b"\0" + path.read_bytes() + b"\0")
        known = _code_digests[(section, module)] = digest.hexdigest()
    return known


def _module_file(module: str) -> Path | None:
    from d2lgrade.core import version
    return version._module_path(module)


def numerics() -> str:
    """The grader process's floating-point path: values computed in it are kept for processes on the same one."""
    steering = sorted((k, v) for k, v in os.environ.items() if k.startswith(_steering()))
    return repr((torch.__version__, torch.backends.cpu.get_cpu_capability(), torch.get_num_threads(),
                 torch.backends.mkldnn.is_available() and torch.backends.mkldnn.enabled,
                 platform.machine(), _cpu(), steering, sys.version_info[:2]))


def _steering() -> tuple[str, ...]:
    from d2lgrade import numerics as pinned_numerics
    return pinned_numerics.STEERING


_cpu_name: list[str] = []


def _cpu() -> str:
    if not _cpu_name:
        from d2lgrade import numerics as pinned_numerics
        _cpu_name.append(pinned_numerics.cpu_name())
    return _cpu_name[0]


# --------------------------------------------------------------------------------------------
# The files
# --------------------------------------------------------------------------------------------

def _path(key: str) -> Path:
    return folder() / key[:2] / f"{key}.json.gz"


def _remember(key: str, data) -> None:
    _memory.pop(key, None)
    _memory[key] = data
    while len(_memory) > MEMORY_ENTRIES:
        del _memory[next(iter(_memory))]


def _read(key: str):
    path = _path(key)
    try:
        with gzip.open(path, "rt", encoding="utf-8") as file:
            payload = json.load(file)
        if not isinstance(payload, dict) or set(payload) != {"format", "key", "value"} \
                or payload["format"] != FORMAT or payload["key"] != key:
            raise _Unsafe("not an expected value of this key")
        _check(payload["value"])
        recording.decode(payload["value"])                # a torn tensor fails here, not in a grader
        return payload["value"]
    except FileNotFoundError:
        return None
    except Exception:                                     # torn, foreign or tampered: never trusted
        path.unlink(missing_ok=True)
        return None


def _write(key: str, data) -> None:
    path = _path(key)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        descriptor, partial = tempfile.mkstemp(dir=path.parent, prefix=f".{key[:8]}.", suffix=".tmp")  # owner only
        try:
            with os.fdopen(descriptor, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", compresslevel=1, mtime=0) as file:
                file.write(json.dumps({"format": FORMAT, "key": key, "value": data}, separators=(",", ":")).encode())
            os.replace(partial, path)                     # atomic: a reader sees the old file, the new one or none
        except BaseException:
            Path(partial).unlink(missing_ok=True)
            raise
    except OSError:                                       # a read-only or full course folder: compute each time
        pass


def _check(data) -> None:
    """`data` follows recording.encode's grammar, with known dtypes and tensors whose bytes fit their shape."""
    if data is None or isinstance(data, (bool, str, int)):
        return
    if isinstance(data, float):
        if not math.isfinite(data):
            raise _Unsafe("a bare non-finite float")
        return
    if isinstance(data, list):
        for item in data:
            _check(item)
        return
    if not isinstance(data, dict):
        raise _Unsafe(f"a {type(data).__name__}")
    if set(data) == {"tensor", "shape", "data"}:
        size = TENSOR_DTYPES.get(data["tensor"])
        shape = data["shape"]
        if size is None or not isinstance(shape, list) or not all(type(n) is int and n >= 0 for n in shape) \
                or not isinstance(data["data"], str):
            raise _Unsafe("a malformed tensor")
        if len(base64.b64decode(data["data"], validate=True)) != math.prod(shape) * size:
            raise _Unsafe("a tensor whose bytes do not fit its shape")
        return
    if len(data) != 1:
        raise _Unsafe("an unknown record")
    (tag, body), = data.items()
    if tag in ("tuple", "size"):
        if not isinstance(body, list):
            raise _Unsafe("a malformed sequence")
        for item in body:
            (_check if tag == "tuple" else _integer)(item)
    elif tag == "dict":
        if not isinstance(body, dict):
            raise _Unsafe("a malformed dict")
        for item in body.values():
            _check(item)
    elif tag == "pairs":
        if not isinstance(body, list) or not all(isinstance(p, list) and len(p) == 2 for p in body):
            raise _Unsafe("malformed pairs")
        for k, v in body:
            _check(k)
            _check(v)
    elif tag == "dtype":
        if body not in DTYPES:
            raise _Unsafe("an unknown dtype")
    elif tag == "int":
        int(body) if isinstance(body, str) and body.lstrip("-").isdigit() else _fail("a malformed integer")
    elif tag == "float":
        if body not in ("nan", "inf", "-inf"):
            raise _Unsafe("a malformed float")
    elif tag == "fraction":
        Fraction(body) if isinstance(body, str) else _fail("a malformed fraction")
    else:                                                 # "real" (sympy) is never kept, nor anything else
        raise _Unsafe(f"the record tag {tag!r}")


def _integer(item) -> None:
    if type(item) is not int:
        raise _Unsafe("a malformed size")


def _fail(what: str):
    raise _Unsafe(what)
