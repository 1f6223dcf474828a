"""Which folder this is, and the secret that decides every input a grader draws.

Two kinds of folder run the same graders:
- the course folder (the instructor's): `reference/` is here and expected values come from it; the course
  secret (`.d2lgrade-key`, see data.held_out_key) seeds every check's inputs and the held-out images, so
  nothing a student has seen decides the final grade;
- a student kit (written by `python grade.py --release DIR`): `kit.json` marks it. It holds no reference
  and no course secret; its checks draw their inputs from the kit's own public key, and the expected
  values for exactly those inputs were recorded when the kit was built (d2lgrade/expected.py).
"""
from __future__ import annotations

import contextlib
import contextvars
import hashlib
import json
from functools import lru_cache
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
KIT_FILE = ROOT / "kit.json"

_forced_key: contextvars.ContextVar[bytes | None] = contextvars.ContextVar("d2lgrade_forced_key", default=None)


@lru_cache(maxsize=1)
def kit() -> dict | None:
    """The kit's description (kit.json) when this folder is a student kit, else None. A folder with reference/
    is a course folder whatever else it holds: its grades must never come from recordings."""
    if (ROOT / "reference").is_dir():
        return None
    try:
        return json.loads(KIT_FILE.read_text())
    except FileNotFoundError:
        return None


def is_kit() -> bool:
    return kit() is not None


def forced_key() -> bytes | None:
    """The key that replaces the course secret: the kit's public key in a kit, or the one a release records with."""
    forced = _forced_key.get()
    if forced is not None:
        return forced
    description = kit()
    return description["key"].encode() if description else None


@contextlib.contextmanager
def using_key(key: bytes):
    """Draw every input with `key` instead of the course secret (the release records a kit's inputs so)."""
    token = _forced_key.set(key)
    try:
        yield
    finally:
        _forced_key.reset(token)


def check_seed(check_id: str) -> int:
    """The seed of one check's inputs: stable across runs and machines, different for each check and for
    each course secret (a submission that memorised a kit's recorded outputs meets other inputs here)."""
    from d2lgrade.data import held_out_key
    return int.from_bytes(hashlib.sha256(held_out_key() + b"\0check\0" + check_id.encode()).digest()[:4], "little")
