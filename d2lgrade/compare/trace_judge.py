"""The operator trace recorded inside the student's process, judged in the grader's process against
an exercise's rules.

A traced call passes only when every operator it ran is on the exercise's allow-list; an empty trace,
a trace whose end marker is missing (the recording was switched off) or an operator outside both lists
is "could not verify", a forbidden operator fails. The trace is never the only evidence: student code
can switch it off, so `source_scan.py` reads the source too.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from d2lgrade.compare.implementation_rules import Rules


@dataclass(frozen=True)
class TraceVerdict:
    forbidden: list[str]
    unverifiable: str       # "" when the trace is complete and every operator is allowed
    book: list[str] = field(default_factory=list)     # the book's routines that did the exercise's work


def book_routines_doing(book, rules: Rules) -> list[str]:
    """The book's routines (as the runtime names them, "d2l.torch.corr2d") whose name says they do the
    exercise's work, shown as they are called ("d2l.corr2d")."""
    found = []
    for name in sorted(set(book or ())):
        parts = str(name).split(".")
        if any(rules.forbidden.search(part) for part in parts[1:]):
            found.append("d2l." + ".".join(parts[2:]) if len(parts) > 2 and parts[1] == "torch" else str(name))
    return found


def judge_trace(ops, marker_seen: bool, rules: Rules, *, returned_tensor: bool = True, book=()) -> TraceVerdict:
    """`book`: the book's routines that were on the stack while an operator ran (the runtime records
    them: d2l.corr2d runs only elementary operators, so the operators alone cannot show it)."""
    ops = sorted(set(ops or ()))
    book = book_routines_doing(book, rules)
    if book:
        return TraceVerdict([], "", book)
    forbidden = [op for op in ops if rules.forbidden_ops.search(op)]
    if forbidden:
        return TraceVerdict(forbidden, "")
    if not marker_seen:
        return TraceVerdict([], "the operator trace was switched off during the call")
    if returned_tensor and not ops:
        return TraceVerdict([], "the call returned a tensor but the operator trace recorded no operation")
    unknown = [op for op in ops if op not in rules.allowed_ops]
    if unknown:
        return TraceVerdict([], "the call ran " + ", ".join(unknown[:4]) + (" ..." if len(unknown) > 4 else "") +
                            f", which the grader does not know to be allowed when implementing {rules.task}")
    return TraceVerdict([], "")
