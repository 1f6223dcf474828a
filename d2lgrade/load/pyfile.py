"""Read a .py module into a Submission. `# %%` markers (the percent format of
jupytext, VS Code and Spyder) split it into cells; without them it is one cell."""
from __future__ import annotations

import re
from pathlib import Path

from d2lgrade.core.errors import SubmissionError
from d2lgrade.load.submission import EXERCISE_ID, Cell, Submission, attribute_exercises

MAX_MODULE_BYTES = 5 * 1024 * 1024
MARKER = re.compile(r"^# %%(?P<rest>.*)$")
MARKER_ID = re.compile(EXERCISE_ID)


def load_module(path: Path) -> Submission:
    if path.stat().st_size > MAX_MODULE_BYTES:
        raise SubmissionError(f"{path} is over the {MAX_MODULE_BYTES // 2**20} MB limit for a module; "
                              "remove embedded data from it.")
    try:
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as exc:
        raise SubmissionError(f"{path} is not UTF-8 text (bad byte at offset {exc.start}); "
                              "save it as UTF-8.") from None
    return Submission(path=path, cells=split_cells(text))


def split_cells(text: str) -> list[Cell]:
    chunks: list[tuple[str, list[str], int]] = [("", [], 1)]
    for number, line in enumerate(text.splitlines(), start=1):
        match = MARKER.match(line)
        if match:
            chunks.append((match.group("rest"), [], number + 1))
        else:
            chunks[-1][1].append(line)
    cells = []
    for header, lines, start in chunks:
        if not header and not any(l.strip() for l in lines):
            continue
        markdown = "[markdown]" in header
        source = "\n".join(_uncomment(l) for l in lines) if markdown else "\n".join(lines)
        found = MARKER_ID.search(header)
        cells.append(Cell(index=len(cells) + 1, kind="markdown" if markdown else "code",
                          source=source.strip("\n"), exercise=found.group(1) if found else None,
                          role="written" if markdown and found else None,
                          first_line=start + _leading_empty(lines)))
    attribute_exercises(cells)
    return cells


def _leading_empty(lines: list[str]) -> int:
    """The empty lines `strip("\\n")` takes off the cell's start: a syntax error's line in the file counts them."""
    return next((i for i, line in enumerate(lines) if line), len(lines))


def _uncomment(line: str) -> str:
    return line[2:] if line.startswith("# ") else line[1:] if line.startswith("#") else line
