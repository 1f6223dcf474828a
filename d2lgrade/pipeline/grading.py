"""The pipeline for one submission: load -> run -> probe -> compare -> results."""
from __future__ import annotations

import time
import traceback
from pathlib import Path

from d2lgrade.pipeline import dependencies
from d2lgrade.values import expected
from d2lgrade.core import feedback as F
from d2lgrade.core import results as R
from d2lgrade.core.checks import Check, Partial, Verdict
from d2lgrade.load import Submission, load_submission
from d2lgrade.load.tags import section_mismatch
from d2lgrade.pipeline.probe import NO_SPACE, Probe, disk_limit
from d2lgrade.run.executor import Executor, Runtime, RuntimeOptions
from d2lgrade.run.engines import default_executor, get_executor
from d2lgrade.core.sections import Section

HIDDEN_FAILURE = "failed a hidden test (its inputs are not shown)"
# Messages and details can quote student text (an exception message can be 100 MB): keep reports small.
MESSAGE_CHARS, DETAIL_CHARS = 600, 16_000


def grade(section: Section, path: Path, *, selector: str | None = None,
          options: RuntimeOptions | None = None, executor: str | Executor | None = None,
          feedback: "F.Feedback | str | dict | None" = None) -> R.GradeReport:
    return grade_submission(section, load_submission(path), selector=selector, options=options, executor=executor,
                            feedback=feedback)


def grade_submission(section: Section, submission: Submission, *, selector: str | None = None,
                     options: RuntimeOptions | None = None, executor: str | Executor | None = None,
                     written: bool = True, feedback: "F.Feedback | str | dict | None" = None) -> R.GradeReport:
    """Grade a loaded submission. `executor`: "kernel", "warm", None/"auto" for default_executor() (which
    honours $D2LGRADE_EXECUTOR), or an engine already bound to its runtime (the live engine of
    `d2lgrade.check` holds the kernel's namespace). `written=False` leaves out the written answers,
    which only an instructor scores. `feedback`: the level (d2lgrade/core/feedback.py), hints by default, so
    that no caller shows a student the answers without asking for them."""
    shown = F.settings(feedback)
    options = options or RuntimeOptions()
    executor = default_executor() if executor in (None, "auto") else executor
    started = time.monotonic()
    engine = executor if isinstance(executor, Executor) else get_executor(executor)
    checks = [c for c in section.checks if c.matches(selector)]
    report = R.GradeReport(section=section.id, submission=str(submission.path), checks=[],
                           notes=list(submission.notes), device=options.device, executor=engine.name,
                           limits=options.limits.to_dict())
    mismatch = section_mismatch(submission, section.id)
    if mismatch:
        report.notes.insert(0, mismatch)
    automatic: list[R.CheckResult] = []
    if checks:
        with engine.start(submission, options) as runtime:
            report.notes.extend(cell_notes(runtime))
            automatic = [run_check(c, runtime, options, submission) for c in checks]
            dependencies.explain(checks, automatic, submission)
            for result in automatic:
                result.message = clip(result.message, MESSAGE_CHARS)
            report.notes.extend(runtime.notes)
    report.checks = order_like_spec(section, automatic + (manual_results(section, submission, selector) if written else []))
    report.checks = [F.apply(c, shown.level_of(c)) for c in report.checks]
    report.feedback = shown.level
    report.seconds = round(time.monotonic() - started, 2)
    return report


def run_check(check: Check, runtime: Runtime, options: RuntimeOptions,
              submission: Submission | None = None) -> R.CheckResult:
    started = time.monotonic()
    probe = Probe(runtime, options, check, submission)
    result = R.CheckResult(id=check.id, exercise=check.exercise, title=check.title, points=0.0,
                           max_points=check.points, status=R.PASSED, message=check.passed_message,
                           expected=check.expected, hidden=check.hidden, expected_reveals=check.reveals)
    try:
        with expected.checking(check.id):
            outcome = expected.guard(check) or check.run(probe)
    except (Verdict, expected.NotRecorded) as verdict:
        result.status, result.message, result.detail = verdict.status, verdict.message, verdict.detail
        result.reveal = getattr(verdict, "reveal", "")
    except Exception as exc:  # a bug in the grader, not the student's fault: say so loudly
        result.status = R.ERROR
        result.message = f"internal grader error ({type(exc).__name__}: {exc}); please tell the course staff"
        result.detail = traceback.format_exc()
    else:
        if isinstance(outcome, Partial):
            result.points = round(check.points * outcome.fraction, 4)
            result.status = R.PASSED if outcome.fraction >= 1 else R.FAILED
            result.message, result.detail, result.reveal = outcome.message, outcome.detail, outcome.reveal
        else:
            result.points = check.points
            if isinstance(outcome, str):
                result.message = outcome
    if result.status == R.PASSED and probe.unverified:
        # Right values, but the grader could not confirm the student's own code computed them.
        result.status, result.points = R.MANUAL, 0.0
        result.message = ("could not verify that you implemented it yourself, so no points until an instructor "
                          "reviews it: " + "; ".join(probe.unverified) + ".")
    result.answer = clip(str(getattr(probe, "answer", "") or ""), DETAIL_CHARS)
    result.message, result.detail = clip(result.message, MESSAGE_CHARS), clip(result.detail or "", DETAIL_CHARS)
    result.reveal = clip(result.reveal or "", MESSAGE_CHARS)
    if check.hidden and result.status == R.FAILED:
        result.message, result.detail, result.reveal = HIDDEN_FAILURE, "", ""
    result.seconds = round(time.monotonic() - started, 3)
    return result


def clip(text: str, limit: int) -> str:
    """`text` cut to about `limit` characters, keeping its start and its end (where errors say most)."""
    if len(text) <= limit:
        return text
    head, tail = limit * 2 // 3, limit // 3
    return f"{text[:head]} [... {len(text) - head - tail} characters cut ...] {text[-tail:]}"


def manual_results(section: Section, submission: Submission, selector: str | None) -> list[R.CheckResult]:
    out = []
    for ex in section.spec.exercises:
        if not ex.manual_points or (selector and "/" in selector and not
                                    (ex.id == selector or ex.id.startswith(selector + "."))):
            continue
        answer = submission.written_answer(ex.id)
        out.append(R.CheckResult(
            id=f"{ex.id}:written" if ex.kinds - {"free-text"} else ex.id, exercise=ex.id,
            title=ex.title, points=0.0, max_points=ex.manual_points,
            status=R.MANUAL if answer else R.NOT_ATTEMPTED,
            message="written answer waiting for an instructor's review" if answer else "no written answer found",
            answer=answer, rubric=list(ex.rubric)))
    return out


def written_ids(section: Section) -> set[str]:
    """The ids of the results that hold written answers (as manual_results names them): only these may wait
    for an instructor in a reference's report; a code check left `manual` could not be verified."""
    return {ex.id if not ex.kinds - {"free-text"} else f"{ex.id}:written"
            for ex in section.spec.exercises if ex.manual_points}


def order_like_spec(section: Section, checks: list[R.CheckResult]) -> list[R.CheckResult]:
    position = {ex.id: i for i, ex in enumerate(section.spec.exercises)}
    return sorted(checks, key=lambda c: (position.get(c.exercise, len(position)), c.status == R.MANUAL))


def cell_notes(runtime: Runtime) -> list[str]:
    notes = []
    for run in runtime.cell_runs:
        if run.status == "ok":
            continue
        where = f"Cell {run.cell.index}" + (f" ({run.cell.exercise})" if run.cell.exercise else "")
        what = {"error": f"raised {run.error}", "timeout": run.error, "died": run.error}.get(run.status, run.status)
        limits = getattr(runtime, "limits", None)
        if limits is not None and run.status == "error" and NO_SPACE.search(run.error or ""):
            what += f" ({disk_limit(limits)})"
        notes.append(f"{where} {what}.")
    return notes
