"""Random inputs for checks, drawn from the check's own seeded generator."""
from __future__ import annotations

import torch


def randint(rng: torch.Generator, low: int, high: int) -> int:
    """An int in [low, high], inclusive."""
    return int(torch.randint(low, high + 1, (1,), generator=rng))


def choice(rng: torch.Generator, options):
    return options[randint(rng, 0, len(options) - 1)]


def tensor(rng: torch.Generator, *shape: int, dtype=torch.float32) -> torch.Tensor:
    """Values of both signs, including some exact zeros and ties, which catch ReLU/max mistakes."""
    x = torch.randn(*shape, generator=rng, dtype=torch.float64)
    if x.numel() > 4:
        x.view(-1)[torch.randint(0, x.numel(), (max(1, x.numel() // 10),), generator=rng)] = 0.0
    return x.to(dtype)


def shape_text(t: torch.Tensor) -> str:
    return "(" + ", ".join(str(s) for s in t.shape) + (",)" if t.dim() == 1 else ")")
