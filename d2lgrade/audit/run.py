"""Grade every mutant of a section's reference with the section's own checks, in one runtime.

The runtime starts once with the whole reference; for each mutant the exercise's names are removed,
the mutated cells run, and only that exercise's checks are graded, through the same `run_check` as
`grade.py`. The submission the checks see (for source scans) is the reference with that exercise's
cells replaced, so helpers of the book's code stay visible."""
from __future__ import annotations

import ast
import time
from dataclasses import dataclass, field

from d2lgrade.core import results as R
from d2lgrade.audit import accepts as A
from d2lgrade.audit import equivalence as E
from d2lgrade.audit.mutate import Mutant, mutants
from d2lgrade.pipeline.grading import run_check
from d2lgrade.load import Cell, Submission, load_submission
from d2lgrade.run.executor import BROKEN, DIED, TIMEOUT, RuntimeOptions
from d2lgrade.run.engines import default_executor, get_executor
from d2lgrade.run.limits import Limits
from d2lgrade.core.sections import Section, find_section

# Mutants that loop for ever are common (a range or comparison shifted): a short call limit keeps the
# audit's time bounded (a probe gets 3x, e.g. 7.5/3.2's). The reference must still pass under it, or the
# exercise is reported as not audited with the reason.
AUDIT_LIMITS = Limits(call_seconds=8.0, cell_seconds=30.0, total_seconds=3600.0)


@dataclass
class Outcome:
    exercise: str
    operator: str
    diff: str
    verdict: str                 # "killed" | "equivalent" | "accepted" | "survived"
    killed_by: str = ""          # the first check that did not give full marks, and why
    accepted: str = ""           # "accepted": the property of the exercise the audit re-measured (audit/accepts.py)


@dataclass
class ExerciseAudit:
    exercise: str
    outcomes: list[Outcome] = field(default_factory=list)
    skipped: str = ""            # why the exercise was not audited (its reference does not pass)


@dataclass
class SectionAudit:
    section: str
    exercises: list[ExerciseAudit] = field(default_factory=list)
    seconds: float = 0.0
    limit: int | None = None     # --audit-limit of the run, None for every mutant

    def count(self, verdict: str | None = None) -> int:
        return sum(1 for e in self.exercises for o in e.outcomes if verdict is None or o.verdict == verdict)


def exercise_cells(submission: Submission, exercise: str) -> list[Cell]:
    return [c for c in submission.cells if c.kind == "code" and c.exercise == exercise and c.source.strip()]


def defined_names(source: str) -> list[str]:
    names = set()
    for stmt in ast.parse(source).body:
        if isinstance(stmt, (ast.FunctionDef, ast.ClassDef)):
            names.add(stmt.name)
        elif isinstance(stmt, ast.Assign):
            names.update(t.id for t in stmt.targets if isinstance(t, ast.Name))
    return sorted(names)


class SectionRuntime:
    """One runtime holding the reference; swaps one exercise's cells for a variant and grades them."""

    def __init__(self, section: Section, executor: str | None = None, options: RuntimeOptions | None = None):
        self.section, self.executor = section, executor or default_executor()
        self.options = options or RuntimeOptions(limits=AUDIT_LIMITS)
        self.reference = load_submission(section.reference_path)
        self.runtime = None
        self.restart()

    def restart(self) -> None:
        if self.runtime is not None:
            self.runtime.close()
        self.runtime = get_executor(self.executor).start(self.reference, self.options)

    def load(self, exercise: str, source: str):
        # Only what these cells define is removed: a contract name from the book's code (7.2/1's
        # `corr2d`) is defined elsewhere and stays.
        names = defined_names(original_source(self.reference, exercise))
        self.runtime.run_source("for _n in %r:\n    globals().pop(_n, None)" % (names,))
        return self.runtime.run_source(source)

    def grade(self, exercise: str, source: str, *, all_checks: bool = True) -> tuple[list[R.CheckResult], list]:
        """Run `source` in place of the exercise's cells and grade its checks; also the requests and replies.
        `all_checks=False` stops at the first check without full marks: that check killed the mutant, and
        the rest would only cost time (a hanging mutant hangs in every check)."""
        ran = self.load(exercise, source)
        own = {c.index for c in exercise_cells(self.reference, exercise)}
        cells, placed = [], False
        for c in self.reference.cells:
            if c.index in own:
                cells.append(Cell(c.index, "code", "" if placed else source, c.exercise, c.role))
                placed = True
            else:
                cells.append(c)
        submission = Submission(self.reference.path, cells)
        recorder = E.Recorder(self.runtime)
        checks = [c for c in self.section.checks if c.matches(exercise)]
        results = []
        for c in checks:
            results.append(run_check(c, recorder, self.options, submission))
            if not all_checks and first_failure(results[-1:]):
                break
        if ran.status in ("timeout", "died") or any(r.get("status") in (TIMEOUT, DIED, BROKEN) for _, r in recorder.log):
            self.restart()                       # a runtime that hung or died is not trusted again
        return results, recorder.log

    def close(self) -> None:
        self.runtime.close()


def first_failure(results: list[R.CheckResult]) -> str:
    for r in results:
        if not (r.status == R.PASSED and r.points >= r.max_points):
            return f"{r.id} ({r.status}: {r.message[:120]})"
    return ""


def code_exercises(section: Section, reference: Submission) -> list[str]:
    return [ex.id for ex in section.spec.exercises
            if exercise_cells(reference, ex.id) and any(c.matches(ex.id) for c in section.checks)]


def audit_section(section_id: str, *, limit: int | None = None, executor: str | None = None,
                  exercises: list[str] | None = None, progress=lambda line: None) -> SectionAudit:
    section = find_section(section_id)
    started = time.monotonic()
    audit = SectionAudit(section.id, limit=limit)
    engine = SectionRuntime(section, executor)
    try:
        for exercise in exercises or code_exercises(section, engine.reference):
            audit.exercises.append(audit_exercise(engine, exercise, limit, progress))
            engine.load(exercise, original_source(engine.reference, exercise))   # later exercises see the reference
    finally:
        engine.close()
    audit.seconds = round(time.monotonic() - started, 1)
    return audit


def original_source(reference: Submission, exercise: str) -> str:
    return "\n\n".join(c.source for c in exercise_cells(reference, exercise))


def sample(items: list, limit: int | None) -> list:
    """At most `limit` items spread evenly over the list, so every operator keeps a share."""
    if limit is None or len(items) <= limit:
        return items
    step = len(items) / limit
    return [items[int(i * step)] for i in range(limit)]


def audit_exercise(engine: SectionRuntime, exercise: str, limit: int | None, progress=lambda line: None,
                   variants: list[Mutant] | None = None) -> ExerciseAudit:
    """Grade the exercise's mutants (or the given `variants`) and classify each one."""
    out = ExerciseAudit(exercise)
    source = original_source(engine.reference, exercise)
    spec = engine.section.spec.exercise(exercise)
    symbolic = bool(spec and "symbolic" in spec.kinds)
    first = min(c.index for c in exercise_cells(engine.reference, exercise))
    context = "\n\n".join(c.source for c in engine.reference.cells if c.kind == "code" and c.index < first)
    chosen = variants if variants is not None else sample(list(mutants(source, symbolic=symbolic, context=context)), limit)
    if not chosen:
        return out      # nothing to grade: the reference's own grading (7.6/3 trains on MNIST) would be wasted
    baseline, log = engine.grade(exercise, source)
    if first_failure(baseline):
        out.skipped = f"the reference itself does not earn full marks here: {first_failure(baseline)}"
        return out
    # An exercise's property counts as evidence only where the reference has it too.
    open_exercise, why_not = A.check(engine.runtime, exercise)
    if A.ACCEPTS.get(exercise) and not open_exercise:
        progress(f"{exercise}: the reference lacks the exercise's declared property ({why_not}); none accepted")
    fresh = E.random_requests(log)
    timeout = engine.options.limits.call_seconds * 8 + 5
    reference_fresh = E.replay(engine.runtime, fresh, timeout) if fresh else []
    for mutant in chosen:
        results, _ = engine.grade(exercise, mutant.source, all_checks=False)
        why = first_failure(results)
        if why:
            verdict = "killed"
        elif mutant.operator.startswith("formula-") and proved_by_sympy(results):
            verdict = "equivalent"
        elif equivalent(engine, log, fresh, reference_fresh, timeout):
            verdict = "equivalent"
        else:
            verdict = "survived"
        accepted = ""
        if verdict == "survived" and open_exercise:
            engine.load(exercise, mutant.source)       # the mutant itself, even where grading restarted the runtime
            has, accepted = A.check(engine.runtime, exercise)
            verdict, accepted = ("accepted", accepted) if has else (verdict, "")
        out.outcomes.append(Outcome(exercise, mutant.operator, mutant.diff, verdict, why, accepted))
        progress(f"{exercise} {mutant.operator:<16} {verdict}")
    return out


def equivalent(engine: SectionRuntime, log, fresh, reference_fresh, timeout) -> bool:
    if not E.provable(log):
        return False
    again = E.replay(engine.runtime, [r for r, _ in log], timeout)
    if not all(E.same(a, E.values(r, reply)) for a, (r, reply) in zip(again, log)):
        return False
    return all(E.same(a, b) for a, b in zip(E.replay(engine.runtime, fresh, timeout), reference_fresh))


def proved_by_sympy(results: list[R.CheckResult]) -> bool:
    """A formula mutant that every check passed with a sympy proof is the same formula written otherwise
    (the formula checks say "proved" only for a proof, never for agreement on samples)."""
    return bool(results) and all("proved:" in r.message and "not proved" not in r.message for r in results)
