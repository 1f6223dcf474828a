"""Read a Jupyter notebook into a Submission, refusing files that are not notebooks."""
from __future__ import annotations

import json
import warnings
from pathlib import Path

import nbformat

from d2lgrade.core.errors import SubmissionError
from d2lgrade.load.sanitize import strip_shell
from d2lgrade.load.submission import Cell, Submission, attribute_exercises

MAX_NOTEBOOK_BYTES = 50 * 1024 * 1024


def load_notebook(path: Path) -> Submission:
    size = path.stat().st_size
    if size > MAX_NOTEBOOK_BYTES:
        raise SubmissionError(
            f"{path} is {size / 2**20:.0f} MB, over the {MAX_NOTEBOOK_BYTES // 2**20} MB limit; "
            "clear its outputs (Kernel > Restart & Clear Output) and save it again.")
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise SubmissionError(f"{path} is not UTF-8 text (bad byte at offset {exc.start}); "
                              "save it again from Jupyter.") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise SubmissionError(f"{path} is not valid notebook JSON (line {exc.lineno}: {exc.msg}); "
                              "open it in Jupyter and save it again, or restore it from git.") from None
    if not isinstance(data, dict) or not isinstance(data.get("cells"), list):
        raise SubmissionError(f"{path} is JSON but not a Jupyter notebook (it has no list of cells); "
                              "start from the starter notebook in exercises/.")
    if not data["cells"]:
        raise SubmissionError(f"{path} has no cells; start from the starter notebook in exercises/.")
    try:
        with warnings.catch_warnings():     # missing cell ids and the like: nothing the student must fix
            warnings.simplefilter("ignore")
            nb = nbformat.reads(text, as_version=4)
    except Exception as exc:  # nbformat raises several types for malformed notebooks
        raise SubmissionError(f"{path} is not a readable notebook ({str(exc).splitlines()[0]}); "
                              "open it in Jupyter and save it again.") from None
    return from_notebook_node(nb, path)


def from_notebook_node(nb, path: Path) -> Submission:
    cells, notes = [], []
    kernelspec = (nb.get("metadata") or {}).get("kernelspec") or {}
    kernel = kernelspec.get("name") if isinstance(kernelspec, dict) else kernelspec
    if kernel and not str(kernel).startswith("python"):
        notes.append(f"The notebook asks for kernel '{str(kernel)[:40]}'; it was graded with Python 3.")
    for i, nb_cell in enumerate(nb.cells, start=1):
        kind = nb_cell.get("cell_type") if isinstance(nb_cell, dict) else None
        if kind not in ("code", "markdown"):
            continue
        source = nb_cell.get("source", "")
        if isinstance(source, list) and all(isinstance(line, str) for line in source):
            source = "".join(source)
        if not isinstance(source, str):
            raise SubmissionError(f"{path}: cell {i} has no text in its source ({type(source).__name__}); "
                                  "open the notebook in Jupyter and save it again.")
        meta = (nb_cell.get("metadata") or {}).get("d2lgrade") or {}
        if kind == "code":
            source, removed = strip_shell(source)
            notes.extend(f"Cell {i}: `{line}` was not run (shell commands and installs are skipped "
                         "while grading)." for line in removed)
        cells.append(Cell(index=i, kind=kind, source=source,
                          exercise=meta.get("exercise") if isinstance(meta, dict) else None,
                          role=meta.get("role") if isinstance(meta, dict) else None))
    attribute_exercises(cells)
    return Submission(path=path, cells=cells, notes=notes)

