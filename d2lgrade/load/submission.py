"""The loaded form of a submission: cells with the exercise each belongs to."""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

# A heading such as "## 7.3/2", "### Exercise 7.3/2.1" or a percent marker "# %% 7.3/2" claims the
# cells that follow it for that exercise, so students may write notebooks without our metadata.
EXERCISE_ID = r"(\d+\.\d+/\d+(?:\.\d+)*)"
HEADING_RE = re.compile(r"^\s*#{1,6}\s*(?:exercise\s*)?" + EXERCISE_ID + r"(?![\d.])", re.IGNORECASE | re.MULTILINE)

# The starter's answer cells hold this until the student writes something.
WRITTEN_PLACEHOLDER = "_Write your answer here._"


@dataclass
class Cell:
    index: int                 # 1-based position, as a student counts cells
    kind: str                  # "code" | "markdown"
    source: str                # what will run (shell escapes removed)
    exercise: str | None = None
    role: str | None = None    # "setup" | "prompt" | "answer" | "written" | None (student's own)
    first_line: int = 0        # a .py module's line where the cell starts (0: a notebook's cell)


@dataclass
class Submission:
    path: Path
    cells: list[Cell]
    notes: list[str] = field(default_factory=list)

    @property
    def code_cells(self) -> list[Cell]:
        return [c for c in self.cells if c.kind == "code" and c.source.strip()]

    def written_answer(self, exercise: str) -> str:
        """The student's free text for an exercise: markdown attributed to it, prompts excluded."""
        parts = []
        for cell in self.cells:
            if cell.kind != "markdown" or cell.role == "prompt":
                continue
            if cell.exercise == exercise or (cell.exercise or "").startswith(exercise + "."):
                text = cell.source.replace(WRITTEN_PLACEHOLDER, "").strip()
                text = HEADING_RE.sub("", text, count=1).strip() if cell.role != "written" else text
                if text:
                    parts.append(text)
        return "\n\n".join(parts)


def attribute_exercises(cells: list[Cell]) -> None:
    """Give every cell the exercise of the nearest heading above it (metadata wins)."""
    current = None
    for cell in cells:
        if cell.exercise:
            current = cell.exercise
            continue
        if cell.kind == "markdown":
            match = HEADING_RE.search(cell.source)
            if match:
                current = match.group(1)
        cell.exercise = current
