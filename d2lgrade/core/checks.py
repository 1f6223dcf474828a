"""Declared checks: `@check("7.3/3", points=2)` on a function that probes the runtime.

A check function receives a Probe and either returns (full marks), returns `partial(...)`, or
raises one of the verdict exceptions below (`fail(...)` for a wrong answer). Grader modules are
lists of such functions; their order is the order of the report.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from types import ModuleType
from typing import Callable

from d2lgrade.core import results


class Verdict(Exception):
    """Ends a check with a status other than passed."""
    status = results.FAILED

    def __init__(self, message: str, detail: str = "", reveal: str = ""):
        super().__init__(message)
        self.message = message
        self.detail = detail
        self.reveal = reveal      # the answer (expected value, table, count): shown only at feedback level full


class WrongAnswer(Verdict):
    status = results.FAILED


class NotAttempted(Verdict):
    status = results.NOT_ATTEMPTED


class StudentError(Verdict):
    status = results.ERROR


class StudentTimeout(Verdict):
    status = results.TIMEOUT


class StudentMemory(Verdict):
    status = results.MEMORY


class Unverified(Verdict):
    """The grader could not establish the answer with evidence of its own (a network it cannot rebuild):
    no points and no failure; an instructor reviews it."""
    status = results.MANUAL


def fail(message: str, detail: str = "", reveal: str = "") -> None:
    """`message` says what is wrong and where to look without the answer; `reveal` adds the answer, which only
    the feedback level `full` shows (d2lgrade/core/feedback.py)."""
    raise WrongAnswer(message, detail, reveal)


@dataclass
class Partial:
    fraction: float
    message: str
    detail: str = ""
    reveal: str = ""


def partial(fraction: float, message: str, detail: str = "", reveal: str = "") -> Partial:
    return Partial(max(0.0, min(1.0, fraction)), message, detail, reveal)


@dataclass
class Check:
    id: str                  # unique: "7.3/1" or "7.3/1:example"
    exercise: str            # "7.3/1"
    points: float
    title: str
    run: Callable
    uses: tuple[str, ...] = ()
    hidden: bool = False     # feedback names the check and its verdict, never its inputs
    passed_message: str = "correct"
    expected: str = ""       # what a right answer does, shown beside the student's in the report
    reveals: bool = False    # `expected` states the answer: shown only at feedback level full
    needs: tuple[str, ...] = ()  # ids of checks whose names this one builds on (d2lgrade/pipeline/dependencies.py)

    @property
    def seed(self) -> int:
        """The seed of the grader's inputs: stable across runs and machines (unlike hash()), different for each
        check and each course secret."""
        from d2lgrade.core.course import check_seed
        return check_seed(self.id)

    @property
    def runtime_seed(self) -> int:
        """The seed the runtime sets before each call (a student's network's initial weights): the same in every
        course and kit, so that a verdict that depends on an initialisation does not vary by installation."""
        return int.from_bytes(hashlib.sha256(self.id.encode()).digest()[:4], "little")

    def matches(self, selector: str | None) -> bool:
        if not selector or "/" not in selector:
            return True
        return self.exercise == selector or self.exercise.startswith(selector + ".") or self.id == selector


def check(exercise: str, *, points: float, title: str, name: str | None = None, uses: tuple[str, ...] = (),
          hidden: bool = False, expected: str = "", passed: str = "correct", reveals: bool = False,
          needs: tuple[str, ...] = ()):
    """Declare a check of `exercise`; `name` distinguishes several checks of one exercise. `reveals=True`
    where `expected` states the answer (a table, a count): students at feedback level hints do not see it.
    `needs`: the ids of the checks of the names this check's names are built from (8.6's ResNets from its
    Residual block): when one of those fails, this check's failure says so."""
    def register(fn: Callable) -> Callable:
        fn.__d2lgrade_check__ = Check(id=f"{exercise}:{name}" if name else exercise, exercise=exercise,
                                       points=points, title=title, run=fn, uses=tuple(uses), hidden=hidden,
                                       passed_message=passed, expected=expected, reveals=reveals,
                                       needs=tuple(needs))
        return fn
    return register


def collect(module: ModuleType) -> list[Check]:
    found = [obj.__d2lgrade_check__ for obj in vars(module).values() if hasattr(obj, "__d2lgrade_check__")]
    order = {id(obj.__d2lgrade_check__): obj.__code__.co_firstlineno
             for obj in vars(module).values() if hasattr(obj, "__d2lgrade_check__")}
    return sorted(found, key=lambda c: order[id(c)])
