"""load: turn a submission file into cells, without running anything."""
from pathlib import Path

from d2lgrade.core.errors import SubmissionError
from d2lgrade.load.submission import Cell, Submission

__all__ = ["Cell", "Submission", "load_submission"]


def load_submission(path: Path) -> Submission:
    path = Path(path)
    if not path.exists():
        raise SubmissionError(f"{path} does not exist; check the path, or copy the starter from exercises/.")
    if path.is_dir():
        raise SubmissionError(f"{path} is a folder; give the notebook (.ipynb) or module (.py) inside it.")
    if path.suffix == ".ipynb":
        from d2lgrade.load.notebook import load_notebook
        return load_notebook(path)
    if path.suffix == ".py":
        from d2lgrade.load.pyfile import load_module
        return load_module(path)
    raise SubmissionError(f"{path} is neither a notebook (.ipynb) nor a module (.py); "
                          "submit one of those.")
