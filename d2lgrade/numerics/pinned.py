"""Run trusted grader code (a reference network's training) in a fresh Python with pinned numerics.

The grader's own process imported torch long before a check runs, with whatever CPU code path the
machine picked; a reference run that sets a threshold must take the same pinned path as the student's
runtime (d2lgrade/numerics/), so it runs in a child started with those variables. Results are plain
data (torch.save / torch.load(weights_only=True)) and are cached on disk, keyed by everything that
decides them, so a machine pays for each reference run once.
"""
from __future__ import annotations

import fcntl
import hashlib
import importlib
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import torch

from d2lgrade import numerics
from d2lgrade.core import course

ROOT = Path(__file__).resolve().parents[2]
CACHE = course.CACHE
_MEMORY: dict[str, object] = {}       # results already read in this process, by cache key


def _digest(value, digest) -> None:
    if isinstance(value, torch.Tensor):
        digest.update(repr((value.dtype, tuple(value.shape))).encode())
        digest.update(value.detach().contiguous().cpu().numpy().tobytes())
    elif isinstance(value, (list, tuple)):
        digest.update(b"[")
        for item in value:
            _digest(item, digest)
        digest.update(b"]")
    elif isinstance(value, dict):
        for key in sorted(value):
            digest.update(repr(key).encode())
            _digest(value[key], digest)
    else:
        digest.update(repr(value).encode())


def cache_key(target: str, args: tuple, sources: tuple[Path, ...]) -> str:
    digest = hashlib.sha256(target.encode())
    digest.update(torch.__version__.encode())
    digest.update(repr(sorted(numerics.pinned_environment().items())).encode())
    digest.update(numerics.IN_PROCESS.encode())
    for path in sources:
        digest.update(path.read_bytes())
    _digest(list(args), digest)
    return digest.hexdigest()[:32]


def call(target: str, *args, sources: tuple[Path, ...] = (), timeout: float = 600, cached: bool = True):
    """`module:function(*args)` computed in a pinned child process (or read from the cache).

    `sources` are the files whose code decides the result: a change to any of them is a new key.
    `cached=False` computes it afresh and keeps it nowhere (the numerics fingerprint)."""
    if not cached:
        return _computed(target, args, timeout)
    key = cache_key(target, args, sources)
    if key not in _MEMORY:
        _MEMORY[key] = _computed_or_cached(key, target, args, timeout)
    return _MEMORY[key]


def _computed_or_cached(key: str, target: str, args: tuple, timeout: float):
    cached = CACHE / f"{key}.pt"
    found, result = _read(cached)
    if found:
        return result
    CACHE.mkdir(parents=True, exist_ok=True)
    # Parallel workers (a batch, the test suite) start the same reference run at once: one computes it, the
    # others wait for its file instead of computing it again.
    with open(CACHE / f"{key}.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        found, result = _read(cached)
        if found:
            return result
        result = _computed(target, args, timeout)
        partial = CACHE / f"{key}.{os.getpid()}.tmp"
        torch.save(result, partial)
        partial.replace(cached)            # atomic: another process never reads half a file
    return result


def _read(cached: Path) -> tuple[bool, object]:
    if cached.exists():
        try:
            return True, torch.load(cached, weights_only=True)
        except Exception:      # a torn or foreign file: compute it again
            cached.unlink(missing_ok=True)
    return False, None


def _computed(target: str, args: tuple, timeout: float):
    with tempfile.TemporaryDirectory(prefix="d2lgrade-pinned-") as folder:
        inputs, output = Path(folder) / "in.pt", Path(folder) / "out.pt"
        torch.save({"target": target, "args": list(args)}, inputs)
        env = numerics.child_environment(dict(os.environ))
        env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
        done = subprocess.run([sys.executable, "-m", "d2lgrade.numerics.pinned", str(inputs), str(output)], env=env,
                              cwd=ROOT, capture_output=True, text=True, timeout=timeout)
        if done.returncode != 0:
            raise RuntimeError(f"the pinned reference run {target} failed: {done.stderr.strip()[-2000:]}")
        return torch.load(output, weights_only=True)


def _main(inputs: str, output: str) -> None:
    from d2lgrade.inside.agent import pin_numerics
    pin_numerics()                     # the in-process half of the path the student runtime takes
    request = torch.load(inputs, weights_only=True)
    module, _, name = request["target"].partition(":")
    result = getattr(importlib.import_module(module), name)(*request["args"])
    torch.save(result, output)


if __name__ == "__main__":
    _main(*sys.argv[1:3])
