"""Which engine runs a submission: `kernel`, `warm`, or `auto` (the choice for the job at hand). Kept apart
from the interface (d2lgrade/run/executor.py), which the engines import, so that no engine imports itself back."""
from __future__ import annotations

import os

from d2lgrade.run.executor import Executor

EXECUTORS = ("kernel", "warm")
ENVIRONMENT_VARIABLE = "D2LGRADE_EXECUTOR"     # picks the engine of `auto` (the test suite uses it)


def get_executor(name: str) -> Executor:
    """`kernel`: a Jupyter kernel per submission. `warm`: a child forked from a parent that has
    imported torch and d2l already; one shared engine per process. `auto`: see default_executor."""
    if name == "auto":
        name = default_executor()
    if name == "kernel":
        from d2lgrade.run.jupyter import KernelExecutor
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
