"""Which cells cannot be parsed, read in the grader's process the way IPython would compile them.

A cell Python cannot compile defines nothing when it runs, so it is its own exercise's error and no
source that another exercise's code can reach.
"""
from __future__ import annotations

import functools
import re
from dataclasses import dataclass

from d2lgrade.load.submission import Cell

# The errors a runtime reports for a cell that never compiled.
COMPILE_ERRORS = ("SyntaxError", "IndentationError", "TabError")


@dataclass(frozen=True)
class SyntaxProblem:
    cell: Cell
    line: int | None          # within the cell, as the student counts its lines
    reason: str

    def where(self) -> str:
        text = f"cell {self.cell.index}" + (f", line {self.line}" if self.line else "")
        if self.line and self.cell.first_line:
            text += f" (line {self.cell.first_line + self.line - 1} of the file)"
        return text

    def sentence(self) -> str:
        return f"syntax error in {self.where()}: {self.reason}"


def as_run(source: str) -> str:
    """The cell as IPython compiles it (`%time x = f()` becomes a call); unchanged without IPython."""
    try:
        from IPython.core.inputtransformer2 import TransformerManager
    except ImportError:
        return source
    try:
        return TransformerManager().transform_cell(source)
    except Exception:       # IPython cannot transform it either: compiling it will say why
        return source


def syntax_problem(cell: Cell) -> SyntaxProblem | None:
    if cell.kind != "code" or not cell.source.strip():
        return None
    error = _compile_error(cell.source)
    return SyntaxProblem(cell, *error) if error else None


@functools.lru_cache(maxsize=2048)
def _compile_error(source: str) -> tuple[int | None, str] | None:
    """(line, reason) when `source` does not compile. Cached by the text alone (each check asks again)."""
    try:
        compile(as_run(source), "<cell>", "exec", dont_inherit=True)
    except SyntaxError as exc:      # IndentationError and TabError too
        return exc.lineno, exc.msg or type(exc).__name__
    except ValueError as exc:       # null bytes in the source
        return None, str(exc)
    return None


def syntax_problems(cells: list[Cell]) -> list[SyntaxProblem]:
    return [p for p in map(syntax_problem, cells) if p is not None]


def compile_failed(run) -> bool:
    """The runtime reports that a cell (a CellRun) did not compile."""
    return run.status == "error" and str(run.error).startswith(COMPILE_ERRORS)


def never_ran(problem: SyntaxProblem, cell_runs) -> bool:
    """True when the runtime confirms the unparsable cell did not compile, or never saw it (a live kernel
    keeps no record of cells): a cell the runtime ran anyway (an input transformer of the student's own)
    stays source that other code may reach."""
    runs = [r for r in cell_runs or () if r.cell.index == problem.cell.index and r.cell.source == problem.cell.source]
    return all(map(compile_failed, runs))


def defines(cell: Cell, name: str) -> bool:
    """Whether the cell's text binds `name` at its top level (read as text: it cannot be parsed)."""
    pattern = rf"^(?:(?:async\s+)?def|class)\s+{re.escape(name)}\b|^{re.escape(name)}\s*(?::[^=]*)?=(?!=)"
    return re.search(pattern, cell.source, re.MULTILINE) is not None


def belongs(cell: Cell, exercise: str) -> bool:
    """The cell is attributed to `exercise`, to one of its parts, or to the exercise it is a part of."""
    own = cell.exercise or ""
    return bool(own) and (own == exercise or exercise.startswith(own + ".") or own.startswith(exercise + "."))
