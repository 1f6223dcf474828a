"""The student runtime as the grader sees it: one interface, several engines behind it.

An Executor starts a Runtime for one submission. The Runtime has run the student's cells and then
answers requests (get a name, call a function, run a probe). Replies are plain dicts read through
`wire`; every engine must give the same replies for the same submission, which the tests check.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field

from d2lgrade.core.errors import UserError
from d2lgrade.load import Cell, Submission
from d2lgrade.run.limits import Limits

# Reply statuses beyond the agent's own {"ok": ...} answers.
TIMEOUT = "timeout"
DIED = "died"
BROKEN = "broken"      # the runtime answered nothing readable (e.g. student code replaced torch.save)


@dataclass
class CellRun:
    cell: Cell
    status: str              # "ok" | "error" | "timeout" | "died"
    error: str = ""          # one line: "NameError: name 'x' is not defined"
    traceback: str = ""


@dataclass
class RuntimeOptions:
    limits: Limits = field(default_factory=Limits)
    device: str = "cpu"
    data_dir: str | None = None      # local datasets for training checks (torchvision layout)

    @staticmethod
    def resolve_device(choice: str) -> str:
        """The device a `--device` choice means on this machine ("auto": a GPU where torch sees one)."""
        import torch
        if choice == "auto":
            return "cuda" if torch.cuda.is_available() else "cpu"
        if choice == "cuda" and not torch.cuda.is_available():
            raise UserError("--device cuda was asked for, but torch sees no GPU here; use --device cpu or auto.")
        return choice


class Runtime(ABC):
    """A live student runtime. Requests return a reply dict:
    {"ok": True, ...} from the agent, or {"ok": False, "status": TIMEOUT|DIED|BROKEN, "message": ...}."""

    cell_runs: list[CellRun]
    notes: list[str]

    @abstractmethod
    def request(self, request: dict, timeout: float) -> dict: ...

    @abstractmethod
    def run_source(self, source: str) -> CellRun:
        """Run more code in the student's namespace (tests use it to swap in a variant)."""

    @abstractmethod
    def close(self) -> None: ...

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class Executor(ABC):
    name: str

    @abstractmethod
    def start(self, submission: Submission, options: RuntimeOptions) -> Runtime: ...
