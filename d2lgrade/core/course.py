"""Which folder this is, and the secret that decides every input a grader draws.

Two kinds of folder run the same graders:
- the course folder (the instructor's): `reference/` is here and expected values come from it; the course
  secret (`.d2lgrade-key`, see held_out_key) seeds every check's inputs and the held-out images, so
  nothing a student has seen decides the final grade;
- a student kit (written by `python grade.py --release DIR`): `kit.json` marks it. It holds no reference
  and no course secret; its checks draw their inputs from the kit's own public key, and the expected
  values for exactly those inputs were recorded when the kit was built (d2lgrade/values/expected.py).
"""
from __future__ import annotations

import contextlib
import contextvars
import hashlib
import json
import os
import secrets
from functools import lru_cache
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# What the grader computes once and keeps (reference runs, expected values, the stand-in digits): inside the
# course folder, which the student runtime cannot see.
CACHE = Path(os.environ.get("D2LGRADE_CACHE", ROOT / ".d2lgrade-cache"))
KIT_FILE = ROOT / "kit.json"
KEY_ENV = "D2LGRADE_HELDOUT_KEY"           # the key itself (tests fix it so that their margins are stable)
KEY_FILE = Path(os.environ.get("D2LGRADE_KEY_FILE", ROOT / ".d2lgrade-key"))   # else a per-course key file

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
    return int.from_bytes(hashlib.sha256(held_out_key() + b"\0check\0" + check_id.encode()).digest()[:4], "little")


def held_out_key() -> bytes:
    """The secret that decides the grader's evaluation images: $D2LGRADE_HELDOUT_KEY, else the course's
    key file (created on first use, readable by its owner only; the runtime never sees the course folder).
    A student kit has no secret: there it is the kit's public key (forced_key)."""
    forced = forced_key()
    if forced is not None:
        return forced
    if os.environ.get(KEY_ENV):
        return os.environ[KEY_ENV].encode()
    try:
        return _read_or_make_key(KEY_FILE)
    except PermissionError:                       # a read-only course folder: a key of this user's own
        return _read_or_make_key(Path.home() / ".d2lgrade" / "held-out.key")


def _read_or_make_key(path: Path) -> bytes:
    try:
        return path.read_bytes().strip()
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:                       # another grader made it first
        return path.read_bytes().strip()
    with os.fdopen(descriptor, "w") as file:
        file.write(secrets.token_hex(32) + "\n")
    return path.read_bytes().strip()
