"""A student call and a formula proof are limited by the CPU time they use, so that no verdict depends on how
loaded the machine is; a generous wall-clock limit still ends a call that waits instead of computing."""
import time

import pytest

from d2lgrade.core.checks import StudentTimeout
from d2lgrade.compare.comparison import _BudgetExceeded, _Deadline
from d2lgrade.pipeline.probe import Probe
from d2lgrade.run.executor import RuntimeOptions
from d2lgrade.run.limits import Limits
from d2lgrade.testing import VariantRunner

LIMITS = Limits(call_seconds=2, cell_seconds=30, total_seconds=240)

# The call pins itself to CPU 0 and forks three busy loops there: it gets a quarter of that CPU whatever the
# machine's scheduler groups (the loops are in the runtime's own cgroup), so its 1.2 s of CPU take about 5 s of
# wall clock. A forked process inherits no interval timer, so the loops' CPU time is not the call's.
BURN = '''
import os, signal, time
def burn(seconds):
    os.sched_setaffinity(0, {0})
    loops = []
    for _ in range(3):
        pid = os.fork()
        if pid == 0:
            while True:
                pass
        loops.append(pid)
    try:
        start, n = time.process_time(), 0
        while time.process_time() - start < seconds:
            n += 1
    finally:
        for pid in loops:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
    return n > 0
def spin():
    while True:
        pass
'''


@pytest.fixture(scope="module")
def runtime():
    runner = VariantRunner("7.3", options=RuntimeOptions(limits=LIMITS))
    run = runner.runtime.run_source(BURN)
    assert run.status == "ok", run.error
    yield runner
    runner.close()


def probe(runner):
    return Probe(runner.runtime, runner.options, runner.section.checks[0])


def test_a_call_within_its_cpu_time_passes_on_a_loaded_machine(runtime):
    start = time.monotonic()
    assert probe(runtime).call("burn", 1.2) is True
    # The load made the call outlast its limit by the wall clock: a wall-clock limit would have timed it out.
    assert time.monotonic() - start > LIMITS.call_seconds


def test_a_call_past_its_cpu_time_times_out_by_that_limit(runtime):
    start = time.monotonic()
    with pytest.raises(StudentTimeout, match="ran past the 2 s limit"):
        probe(runtime).call("spin")
    assert time.monotonic() - start < Limits.call_wall_seconds(LIMITS.call_seconds)


def test_a_formula_budget_counts_cpu_time_not_waiting():
    with _Deadline(0.3) as deadline:
        time.sleep(0.5)
        assert deadline.remaining() > 0
    with pytest.raises(_BudgetExceeded):
        with _Deadline(0.3):
            while True:
                pass


@pytest.mark.parametrize("executor", ["kernel", "warm"])
def test_a_cell_is_limited_by_its_cpu_time_in_both_engines(executor):
    runner = VariantRunner("7.3", options=RuntimeOptions(limits=Limits(call_seconds=2, cell_seconds=2,
                                                                        total_seconds=240)), executor=executor)
    try:
        start = time.monotonic()
        within = runner.runtime.run_source(BURN + "burn(1.2)\n")     # about 5 s by the wall clock
        assert within.status == "ok", within.error
        assert time.monotonic() - start > 2
        past = runner.runtime.run_source("n = 0\nwhile True:\n    n += 1\n")
        assert past.status == "timeout" and "ran past the 2 s limit" in past.error, (past.status, past.error)
        assert runner.runtime.run_source("assert n > 0").status == "ok"    # the runtime goes on after it
    finally:
        runner.close()
