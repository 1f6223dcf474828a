"""Values across the trust boundary: torch.save going in, torch.load(weights_only=True) coming back.

Nothing the runtime writes is unpickled with the full pickle machinery; after loading, the value is
walked and every node must be one of a few plain types. An answer must not cost the grader more than it
cost the runtime: a tensor must be dense and non-overlapping (a stride-0 view of a few bytes stands for
gigabytes once the grader copies it), no tensor may exceed MAX_TENSOR_BYTES, all of them together
MAX_RESPONSE_BYTES (each view counts, shared storage or not), and the pickle itself (the plain values
around the tensors, which grow tenfold as Python objects) MAX_PICKLE_BYTES. The agent wraps tensors and containers in
small tagged dicts (see agent.plain); `unwrap` turns them back into values, and anything else
becomes Unsupported, which the grader reports as a wrong type.
"""
from __future__ import annotations

import zipfile
from dataclasses import dataclass
from pathlib import Path

import torch

MAX_RESPONSE_BYTES = 512 * 2**20     # the file, and the tensors it holds, all together
MAX_TENSOR_BYTES = 256 * 2**20       # one tensor
MAX_PICKLE_BYTES = 32 * 2**20        # everything but the tensors' data
PLAIN = (int, float, bool, str, complex, type(None))


class WireError(Exception):
    """The runtime's answer could not be read safely."""


@dataclass(frozen=True)
class Unsupported:
    """A value of a type the grader does not accept (generator, module, tensor subclass...)."""
    type_name: str

    def __repr__(self) -> str:
        return f"<{self.type_name}>"


def write_request(request: dict, path: Path) -> None:
    torch.save(request, path)


def read_response(path: Path):
    if not path.exists():
        raise WireError("the runtime wrote no answer")
    size = path.stat().st_size
    if size > MAX_RESPONSE_BYTES:
        raise WireError(f"the answer is {size / 2**20:.0f} MiB, over the {MAX_RESPONSE_BYTES // 2**20} MiB limit")
    _check_pickle_size(path)
    try:
        data = torch.load(path, weights_only=True, map_location="cpu")
    except Exception as exc:  # weights_only raises UnpicklingError, RuntimeError, ...
        raise WireError("the answer holds objects the grader will not load "
                        f"({type(exc).__name__}: {str(exc).splitlines()[0][:160]})") from None
    _check_plain(data, [0])
    return data


def _check_pickle_size(path: Path) -> None:
    """Before unpickling: the pickle's own size, read from the archive's directory."""
    try:
        with zipfile.ZipFile(path) as archive:
            pickled = sum(i.file_size for i in archive.infolist() if i.filename.endswith(".pkl"))
    except (zipfile.BadZipFile, OSError):
        return                                  # not torch's zip format: torch.load says what is wrong
    if pickled > MAX_PICKLE_BYTES:
        raise WireError(f"the answer's plain values take {pickled / 2**20:.0f} MiB, over the "
                        f"{MAX_PICKLE_BYTES // 2**20} MiB limit (send large data as tensors)")


def _check_plain(value, total: list[int], depth=0) -> None:
    if depth > 64:
        raise WireError("the answer is nested too deeply")
    kind = type(value)
    if kind is torch.Tensor:
        _check_tensor(value, total)
        return
    if kind in PLAIN:
        return
    if kind in (list, tuple):
        for item in value:
            _check_plain(item, total, depth + 1)
        return
    if kind is dict:
        for key, item in value.items():
            if type(key) not in PLAIN:
                raise WireError(f"the answer has a dict key of type {type(key).__name__}")
            _check_plain(item, total, depth + 1)
        return
    raise WireError(f"the answer holds a {kind.__name__}, which is not a plain value")


def _check_tensor(tensor: torch.Tensor, total: list[int]) -> None:
    if tensor.layout != torch.strided or tensor.is_quantized:
        raise WireError(f"the answer holds a tensor of layout {tensor.layout}; only dense tensors are accepted")
    if not dense_and_non_overlapping(tensor):
        raise WireError(f"the answer holds a tensor of shape {tuple(tensor.shape)} whose elements overlap or "
                        f"leave gaps (strides {tuple(tensor.stride())}); send a contiguous copy")
    size = tensor.numel() * tensor.element_size()
    if size > MAX_TENSOR_BYTES:
        raise WireError(f"the answer holds a tensor of {size / 2**20:.0f} MiB, over the "
                        f"{MAX_TENSOR_BYTES // 2**20} MiB limit per tensor")
    total[0] += size
    if total[0] > MAX_RESPONSE_BYTES:
        raise WireError(f"the answer's tensors take over {MAX_RESPONSE_BYTES // 2**20} MiB together")


def dense_and_non_overlapping(tensor: torch.Tensor) -> bool:
    """True when the elements fill a block of memory exactly once, in some order of the dimensions
    (a contiguous tensor, or a transposed one): a copy costs what the storage cost."""
    if tensor.numel() <= 1:
        return True
    expected = 1
    for stride, size in sorted((st, sz) for sz, st in zip(tensor.shape, tensor.stride()) if sz != 1):
        if stride != expected:
            return False
        expected *= size
    return True


def unwrap(node):
    """Turn the agent's tagged form back into tensors, lists, tuples and dicts."""
    if type(node) is dict:
        if "__tensor__" in node and type(node["__tensor__"]) is torch.Tensor:
            return node["__tensor__"]
        if "__numpy__" in node and type(node["__numpy__"]) is torch.Tensor:
            return node["__numpy__"].numpy()
        if "__numpy_scalar__" in node:
            return node["__numpy_scalar__"]
        if "__seq__" in node and type(node.get("items")) is list:
            items = [unwrap(v) for v in node["items"]]
            return items if node["__seq__"] == "list" else tuple(items)
        if "__dict__" in node and type(node["__dict__"]) is list:
            return {_key(pair[0]): unwrap(pair[1]) for pair in node["__dict__"] if type(pair) is list and len(pair) == 2}
        if "__unsupported__" in node:
            return Unsupported(str(node["__unsupported__"])[:200])
        return Unsupported("dict")
    if type(node) in PLAIN:
        return node
    return Unsupported(type(node).__name__)


def _key(node):
    key = unwrap(node)
    return key if type(key) in PLAIN else repr(key)

