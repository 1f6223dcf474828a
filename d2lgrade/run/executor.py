"""The student runtime as the grader sees it: one interface, several engines behind it.

An Executor starts a Runtime for one submission. The Runtime has run the student's cells and then
answers requests (get a name, call a function, run a probe). Replies are plain dicts read through
`wire`; every engine must give the same replies for the same submission, which the tests check.
"""
from __future__ import annotations

import os
from abc import ABC, abstractmethod
from dataclasses import dataclass, field

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
    seed: int = 0
    data_dir: str | None = None      # local datasets for training checks (torchvision layout)


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


EXECUTORS = ("kernel", "warm")
ENVIRONMENT_VARIABLE = "D2LGRADE_EXECUTOR"     # picks the engine of `auto` (the test suite uses it)


def get_executor(name: str) -> Executor:
    """`kernel`: a Jupyter kernel per submission. `warm`: a child forked from a parent that has
    imported torch and d2l already; one shared engine per process. `auto`: see default_executor."""
    if name == "auto":
        name = default_executor()
    if name == "kernel":
        from d2lgrade.run.kernel import KernelExecutor
        return KernelExecutor()
    if name == "warm":
        from d2lgrade.run import warm
        why_not = warm.available()
        if why_not:
            raise ValueError(f"{why_not}; use the kernel executor.")
        return warm.shared_executor()
    raise ValueError(f"unknown executor {name!r}; the available ones are {', '.join(EXECUTORS)}")


def default_executor(one_off: bool = False) -> str:
    """$D2LGRADE_EXECUTOR if set; else, for a grading that will not be followed by another in this process
    (`one_off`), the kernel: a warm parent costs a second interpreter start that only later gradings repay;
    else the warm engine where it runs (Linux), else the kernel."""
    chosen = os.environ.get(ENVIRONMENT_VARIABLE, "").strip()
    if chosen:
        if chosen not in EXECUTORS:
            raise ValueError(f"{ENVIRONMENT_VARIABLE}={chosen!r} names no executor; use one of {', '.join(EXECUTORS)}")
        return chosen
    if one_off:
        return "kernel"
    from d2lgrade.run import warm
    return "kernel" if warm.available() else "warm"
