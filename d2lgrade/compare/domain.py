"""How a formula's symbol is sampled: the one `Domain`, declared by graders at import (no sympy loaded) and
used as it is by the sampling and comparison code."""
from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction


@dataclass(frozen=True)
class Domain:
    """How to sample one symbol: integers or rationals in [low, high], and, unless `wide` is False, also
    book sizes and large and small magnitudes beyond it (a term that vanishes on [low, high] but not
    on the sizes the formula is for must be caught)."""
    kind: str   # "int" or "real"
    low: float
    high: float
    wide: bool = True

    def wide_values(self) -> list[Fraction]:
        """Values outside [low, high] (or, for reals, tiny ones inside it) that sampling also tries."""
        if not self.wide:
            return []
        lo, hi = self.bounds()
        if self.kind == "int":
            out = [Fraction(v) for v in WIDE_INTS if v > hi]
            out += [Fraction(-v) for v in WIDE_INTS if lo < 0 and -v < lo]
        else:
            out = [Fraction(v) for v in WIDE_REALS if v > hi or (0 < v < 1 and lo <= v <= hi)]
            out += [Fraction(-v) for v in WIDE_REALS if -v < lo or (0 < v < 1 and lo <= -v <= hi)]
        return out

    def __post_init__(self):
        if self.kind not in ("int", "real"):
            raise ValueError(f"Domain kind must be 'int' or 'real', not {self.kind!r}")
        if self.bounds()[0] > self.bounds()[1]:
            raise ValueError(f"empty domain {self}")

    def bounds(self) -> tuple[Fraction, Fraction]:
        lo, hi = Fraction(str(self.low)), Fraction(str(self.high))
        if self.kind == "int":
            return Fraction(math.ceil(lo)), Fraction(math.floor(hi))
        return lo, hi


# The book's image sizes (Fashion-MNIST 28, CIFAR 32, 96 and ImageNet's 224/227), then large ones.
WIDE_INTS = (13, 25, 28, 32, 64, 96, 100, 224, 227, 1000, 4096, 10**6)
WIDE_REALS = (Fraction(1, 10**6), Fraction(1, 1000), 25, 100, 1000, 10**6)
DEFAULT_DOMAIN = Domain("int", 1, 12)
