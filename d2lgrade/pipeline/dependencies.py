"""A check that fails because a name it builds on fails says so, and names that check.

Checks declare what they build on (`@check(..., needs=("8.6/2:residual",))`). The declaration alone is not
evidence: a student's `resnet` may use blocks of its own. So a failure is pointed at a needed check only
when the submitted source of the check's names reaches the needed check's names (or when the grader
cannot read where they are defined). Points stay what the check measured; only its message changes.
"""
from __future__ import annotations

import ast

from d2lgrade.core import results as R
from d2lgrade.core.checks import Check
from d2lgrade.load import Submission
from d2lgrade.load.syntax import as_run

BROKEN = (R.FAILED, R.ERROR, R.TIMEOUT, R.MEMORY)
STATES = {**{status: "fails: fix that first" for status in BROKEN},
          R.NOT_ATTEMPTED: "is not done yet: write that first"}


def explain(checks: list[Check], results: list[R.CheckResult], submission: Submission | None) -> None:
    """Rewrite, in place, the message of each failed result whose check needs a check that failed too."""
    by_id = {r.id: r for r in results}
    # A hidden check is not in a student's kit: pointing at it would make the kit's messages differ.
    declared = {c.id: c for c in checks if not c.hidden}
    bindings = _bindings(submission)
    for check in checks:
        result = by_id.get(check.id)
        if result is None or result.status not in BROKEN:
            continue
        causes = [by_id[need] for need in check.needs if need in by_id and need in declared
                  and by_id[need].status in STATES and _reaches(bindings, *_split(check.uses, declared[need].uses))]
        if causes:
            cause = causes[0]
            result.message = (f"depends on {cause.id}, which {STATES[cause.status]} "
                              f"(this check: {result.message.rstrip('.')}).")


def _split(uses: tuple[str, ...], needed: tuple[str, ...]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(this check's own names, the needed check's names): a name both use is judged by the needed check."""
    return tuple(n for n in uses if n not in needed), tuple(needed)


def _bindings(submission: Submission | None) -> dict[str, list[ast.AST]]:
    """Top-level definitions of the code cells the grader can parse: name -> the statements that bind it."""
    found: dict[str, list[ast.AST]] = {}
    for cell in submission.code_cells if submission is not None else []:
        try:
            tree = ast.parse(as_run(cell.source))
        except (SyntaxError, ValueError):
            continue          # it never ran: it defines nothing
        for statement in _statements(tree.body):
            for name in _bound(statement) + _extended(statement):
                found.setdefault(name, []).append(statement)
    return found


def _statements(body):
    for statement in body:
        yield statement
        if isinstance(statement, (ast.If, ast.For, ast.While, ast.With, ast.Try)):
            for block in ("body", "orelse", "finalbody"):
                yield from _statements(getattr(statement, block, []))
            for handler in getattr(statement, "handlers", []):
                yield from _statements(handler.body)


def _bound(statement) -> list[str]:
    if isinstance(statement, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        return [statement.name]
    if isinstance(statement, (ast.Import, ast.ImportFrom)):
        return [a.asname or a.name.split(".")[0] for a in statement.names]
    targets = statement.targets if isinstance(statement, ast.Assign) else \
        [statement.target] if isinstance(statement, (ast.AnnAssign, ast.AugAssign)) else []
    return [n.id for t in targets for n in ast.walk(t) if isinstance(n, ast.Name)]


def _extended(statement) -> list[str]:
    """The classes a definition adds itself to: the book's `@d2l.add_to_class(ResNet)` def is part of `ResNet`
    (an assignment `ResNet.block = f` already binds `ResNet` in `_bound`)."""
    if isinstance(statement, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        return [n.id for d in statement.decorator_list if isinstance(d, ast.Call)
                for a in d.args for n in ast.walk(a) if isinstance(n, ast.Name)]
    return []


def _reaches(bindings: dict, starts: tuple[str, ...], targets: tuple[str, ...]) -> bool:
    """Whether the definitions of `starts` use one of `targets`, directly or through other definitions.
    Unknown (no readable definition of `starts`): the declaration stands."""
    if not starts or not targets:
        return False
    if not any(name in bindings for name in starts):
        return True
    seen, queue = set(), [name for name in starts if name in bindings]
    while queue:
        name = queue.pop()
        if name in seen:
            continue
        seen.add(name)
        for statement in bindings[name]:
            for node in ast.walk(statement):
                if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load):
                    if node.id in targets:
                        return True
                    if node.id in bindings:
                        queue.append(node.id)
    return False
