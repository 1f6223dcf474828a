"""Compare a returned value with the reference's, and say in one sentence what differs."""
from __future__ import annotations

import math

import numpy
import torch

from d2lgrade.core.checks import WrongAnswer, fail
from d2lgrade.run.wire import Unsupported


def describe(value) -> str:
    if isinstance(value, torch.Tensor):
        return f"a {value.dtype} tensor of shape {tuple(value.shape)}"
    if isinstance(value, Unsupported):
        return f"a {value.type_name}"
    return f"a {type(value).__name__}"


def expect_tensor(value, what: str) -> torch.Tensor:
    if not isinstance(value, torch.Tensor):
        fail(f"{what} returned {describe(value)}; a tensor was expected.")
    return value


def expect_close(got, expected: torch.Tensor, what: str, *, rtol: float | None = None,
                 atol: float | None = None, check_dtype: bool = True) -> None:
    """torch.testing.assert_close semantics, with a student-readable message on failure."""
    got = expect_tensor(got, what)
    if got.dim() != expected.dim() or tuple(got.shape) != tuple(expected.shape):
        if got.numel() == expected.numel() and got.numel() > 0:
            hint = " (same number of values: reshape it)"
        else:
            hint = ""
        fail(f"{what} has shape {tuple(got.shape)}, expected {tuple(expected.shape)}{hint}.")
    if check_dtype and got.dtype != expected.dtype:
        fail(f"{what} has dtype {got.dtype}, expected {expected.dtype} (keep the input's dtype).")
    if got.is_floating_point():
        bad = ~torch.isfinite(got) & torch.isfinite(expected.to(got.dtype))
        if bad.any():
            index = tuple(int(i) for i in bad.nonzero()[0])
            fail(f"{what} contains {got[index].item()} at index {index} where {expected[index].item():.4g} was expected.")
    try:
        torch.testing.assert_close(got, expected.to(got.dtype) if not check_dtype else expected,
                                   rtol=rtol, atol=atol, equal_nan=True, check_device=False)
    except AssertionError as exc:
        diff = (got.double() - expected.double()).abs()
        diff = torch.nan_to_num(diff, nan=math.inf)
        flat = int(diff.argmax())
        index = tuple(int(i) for i in torch.unravel_index(torch.tensor(flat), diff.shape)) if diff.dim() else ()
        wrong = int((diff > (atol or 1e-5) + (rtol or 1.3e-6) * expected.double().abs()).sum())
        fail(f"{what}: {wrong} of {diff.numel()} values are wrong; the largest error is "
             f"{diff.max().item():.3g} at index {index} (got {got[index].item():.4g}, expected {expected[index].item():.4g}).",
             detail=str(exc))


def same_values(got, candidate) -> bool:
    """True when `got` is (numerically) the known-wrong `candidate`."""
    if not isinstance(got, torch.Tensor) or candidate is None or tuple(got.shape) != tuple(candidate.shape):
        return False
    if got.numel() == 0:
        return True
    try:
        return bool(torch.allclose(got.double(), candidate.double(), rtol=1e-4, atol=1e-5))
    except RuntimeError:
        return False


def as_tensor(value):
    """numpy arrays come back from the runtime as arrays; grade them like tensors."""
    if isinstance(value, numpy.ndarray):
        return torch.from_numpy(value)
    return value


def expect_diagnosed(got, expected, what, known_wrong=(), hint=None, **kwargs):
    """expect_close, but a wrong answer that equals a known-wrong result the grader computed for the
    same input gets that mistake's name.

    known_wrong: (tensor or None, "what this mistake is") pairs; hint(got) may return a sentence for
    answers that match no candidate (e.g. from their shape)."""
    try:
        expect_close(got, expected, what, **kwargs)
    except WrongAnswer as exc:
        for candidate, why in known_wrong:
            if same_values(got, candidate):
                fail(f"{what}: {why}", detail=exc.message)
        extra = hint(got) if hint else None
        if extra:
            fail(f"{exc.message.rstrip('.')}: {extra}", detail=exc.detail)
        raise
