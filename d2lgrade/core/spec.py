"""Exercise specs: exercises/<section>.toml, the single description of each section's exercises.

Each spec names the exercises in the book's numbering, what kind each is, the contract names the
student defines, the prompt in this project's words, the starter code, and (for free text) the
rubric and the points an instructor awards. Points of automatic checks live with the checks.
"""
from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from d2lgrade.core.errors import UserError

KINDS = {"code", "symbolic", "numeric", "free-text", "training"}


@dataclass
class Exercise:
    id: str
    title: str
    kind: str                       # one or more KINDS joined by "+", e.g. "code+free-text"
    prompt: str
    contract: list[str] = field(default_factory=list)
    starter: str = ""
    rubric: list[str] = field(default_factory=list)
    manual_points: float = 0.0      # free-text part, scored by an instructor

    @property
    def kinds(self) -> set[str]:
        return set(self.kind.split("+"))


@dataclass
class SectionSpec:
    section: str
    title: str
    setup: str
    exercises: list[Exercise]
    path: Path

    def exercise(self, exercise_id: str) -> Exercise | None:
        return next((e for e in self.exercises if e.id == exercise_id), None)


def load_spec(path: Path) -> SectionSpec:
    try:
        data = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise UserError(f"{path} is not valid TOML ({exc}); fix the spec file.") from None
    exercises = []
    for raw in data.get("exercise", []):
        ex = Exercise(**raw)
        unknown = ex.kinds - KINDS
        if unknown:
            raise UserError(f"{path}: exercise {ex.id} has unknown kind {sorted(unknown)}; use {sorted(KINDS)}.")
        exercises.append(ex)
    return SectionSpec(section=data["section"], title=data["title"], setup=data.get("setup", ""),
                       exercises=exercises, path=path)
