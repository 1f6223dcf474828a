"""Grading variants of an answer quickly, for the test suite and for graders under development.

One runtime per section is started once; each variant is run into it after the section's contract
names are deleted, then the chosen checks run through the same code path as `grade.py`.
"""
from __future__ import annotations

import functools
from pathlib import Path
from typing import Callable, Iterable

from d2lgrade.core import results as R
from d2lgrade.pipeline.grading import grade, run_check, written_ids
from d2lgrade.load import Cell, Submission
from d2lgrade.core.results import CheckResult
from d2lgrade.run.executor import Runtime, RuntimeOptions
from d2lgrade.run.limits import Limits
from d2lgrade.run.engines import default_executor, get_executor
from d2lgrade.core.sections import Section, find_section

# For work that never finishes (tests/hostile/stuck.py): code that sleeps instead of computing is ended by the
# wall-clock limit, Limits.call_wall_seconds of the CPU limit (4x + 10 s), so the smallest limits that still let
# a cell import what it needs keep such a grading to about half a minute instead of a minute.
HANGING = Limits(call_seconds=1, cell_seconds=2, total_seconds=120)


class VariantRunner:
    def __init__(self, section_id: str, options: RuntimeOptions | None = None, executor: str | None = None):
        """`executor` None: default_executor(), so D2LGRADE_EXECUTOR=kernel runs a section's tests on the kernel."""
        self.section = find_section(section_id)
        executor = executor or default_executor()
        self.options = options or RuntimeOptions()
        setup = self.setup = Cell(index=1, kind="code", source=self.section.spec.setup, role="setup")
        self.runtime: Runtime = get_executor(executor).start(Submission(Path("<variants>"), [setup]), self.options)
        self.names = sorted({n for ex in self.section.spec.exercises for n in ex.contract})

    def clear(self) -> None:
        """Delete the section's contract names that the previous variant defined."""
        self.runtime.run_source("for _n in %r:\n    globals().pop(_n, None)" % (self.names,))

    def load(self, source: str) -> None:
        """Run `source` as the student's answer, in place of the previous variant's contract names."""
        self.clear()
        run = self.runtime.run_source(source)
        if run.status != "ok":
            raise AssertionError(f"variant did not run: {run.status} {run.error}\n{run.traceback}")

    def grade(self, source: str, selector: str, only: Iterable[str] | None = None) -> list[CheckResult]:
        """Run `source` as the student's answer and return the results of the checks `selector` picks, of those
        whose ids are in `only` where given (a test that asserts on one check grades that one)."""
        checks = [c for c in self.section.checks if c.matches(selector) and (only is None or c.id in only)]
        if not checks:
            raise AssertionError(f"no check matches {selector!r}" + (f" among {sorted(only)}" if only else ""))
        self.load(source)
        # The grader reads the source of what ran: the section's setup cell, then this variant.
        submission = Submission(Path("<variants>"), [self.setup, Cell(index=2, kind="code", source=source)])
        return [run_check(c, self.runtime, self.options, submission) for c in checks]

    def grade_loaded(self, ids: Iterable[str]) -> dict[str, CheckResult]:
        """{id: result} of the checks named by id only (an exercise's unnamed check without its siblings), on
        the variant `load` ran; as the runtime's own submission is the setup cell, a source scan sees only it."""
        checks = [c for c in self.section.checks if c.id in set(ids)]
        if len(checks) != len(set(ids)):
            raise AssertionError(f"no check {sorted(set(ids) - {c.id for c in checks})} in {self.section.id}")
        return {c.id: run_check(c, self.runtime, self.options) for c in checks}

    def close(self) -> None:
        self.runtime.close()


# -- what every section's tests assert ------------------------------------------------------------
def assert_wrong(result: CheckResult, *words) -> None:
    """The check gave no points (failed, or the code raised) and its message at feedback level full (the hint
    and what reveals the answer) says each of `words` (strings, or lists of strings)."""
    assert result.status in (R.FAILED, R.ERROR) and result.points == 0, (result.id, result.status, result.message)
    full = f"{result.message} {result.reveal}" if result.reveal else result.message
    for word in (w for group in words for w in ([group] if isinstance(group, str) else group)):
        assert word in full, full


def assert_right(results) -> None:
    """Every check (one CheckResult or several) passed with full points."""
    results = [results] if isinstance(results, CheckResult) else list(results)
    assert results and all(r.status == R.PASSED and r.points == r.max_points for r in results), \
        [(r.id, r.status, r.message) for r in results]


def assert_reference_earns_full_marks(section: Section, manual: set[str]) -> R.GradeReport:
    """Grade the section's reference: every automatic check passes, and exactly the exercises in
    `manual` wait for an instructor."""
    report = grade(section, section.reference_path)
    automatic = [c for c in report.checks if c.id not in written_ids(section)]
    assert_right(automatic)         # a code check left `manual` (could not verify) fails here too
    assert {c.exercise for c in report.checks if c.status == R.MANUAL} == manual
    return report


def assert_starter_not_attempted(section: Section) -> R.GradeReport:
    """Grade the section's starter notebook: 0 points, every check "not attempted"."""
    report = grade(section, section.starter_path)
    assert report.score == 0
    assert {c.status for c in report.checks} == {R.NOT_ATTEMPTED}, [(c.id, c.status, c.message) for c in report.checks]
    return report


def needs_sandbox(available: Callable[[dict], bool], reason: str):
    """A pytest mark: the test is skipped with `reason` where `available(sandbox_layers())` is false. The
    sandbox is launched when the first marked test is set up (tests/conftest.py), not when a module is
    imported, so that collecting or selecting other tests costs nothing."""
    import pytest
    return pytest.mark.needs_sandbox.with_args(available, reason=reason)


def sandbox_layers() -> dict:
    """What the runtime's sandbox can apply on this machine (its status file, see run/sandbox_status.py),
    found by launching it once per process around `python -c pass` (the machine does not change during a
    test run). Tests of a defence skip, naming the missing layer, where the machine cannot provide it; the
    report says the same to users."""
    return dict(_probed_layers())


@functools.cache
def _probed_layers() -> dict:
    import json
    import subprocess
    import sys
    import tempfile

    from d2lgrade.inside import isolation
    from d2lgrade.run import sandbox_status, sandboxed

    with tempfile.TemporaryDirectory() as tmp:
        work, private = Path(tmp) / "work", Path(tmp) / "private"
        work.mkdir()
        private.mkdir()
        config = {"cwd": str(work), "ipc_dir": str(private), "max_processes": 64, "memory_bytes": 8 * 2**30,
                  "status_file": str(private / isolation.STATUS_FILE)}
        subprocess.run([sys.executable, str(sandboxed.SANDBOX), json.dumps(config), "--", sys.executable, "-c", "pass"],
                       capture_output=True, timeout=60, start_new_session=True)
        status = sandbox_status.read_status(private / isolation.STATUS_FILE)
        for group in sandbox_status.cgroups_of(status):
            sandbox_status.remove_cgroup(group)
        return status
