"""Shared fixtures: the student runtimes of the sections, started once per test run."""
import os
import time

import pytest

from d2lgrade.testing import VariantRunner, sandbox_layers


def pytest_configure(config):
    config.addinivalue_line("markers", "needs_sandbox(available, reason): skipped where the sandbox lacks a layer "
                                       "(d2lgrade.testing.needs_sandbox)")
    config.addinivalue_line("markers", "long: a test of several minutes, started before the others so that a parallel "
                                       "run does not end waiting on it alone")


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item):
    # Before the test's fixtures: a skipped defence test starts no runtime.
    for mark in item.iter_markers("needs_sandbox"):
        if not mark.args[0](sandbox_layers()):
            pytest.skip(mark.kwargs["reason"])


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config, items):
    # Under pytest-xdist (pyproject's addopts: --dist loadgroup) every worker that ran one of a module's tests would
    # build that module's fixtures (a student kit, a graded batch) again: tests sharing one stay on one worker.
    for item in items:
        fixtures = getattr(item, "_fixtureinfo", None)
        scopes = {d.scope for defs in (fixtures.name2fixturedefs.values() if fixtures else ()) for d in defs}
        if scopes & {"module", "class", "package"} and item.get_closest_marker("xdist_group") is None:
            item.add_marker(pytest.mark.xdist_group(item.module.__name__))
    # xdist hands out work in collection order (addopts: --no-loadscope-reorder): the long tests first, then the
    # groups, then single tests, so that the run does not end waiting on one long test (a stable sort).
    items.sort(key=lambda item: (item.get_closest_marker("long") is None,
                                item.get_closest_marker("xdist_group") is None))


SPARE_SECONDS = 300     # a runtime with less of its overall limit left is replaced before the next test


class Runners:
    """runners(section_id) -> that section's VariantRunner, started on first use and kept for the run. A runtime
    holds torch and a forked child, so at most LIMIT stay open: the one used least recently closes first.
    `prepare` is source run once in a new runtime (7.6 cuts the network); it is part of the key."""
    LIMIT = 3

    def __init__(self):
        self.open: dict[tuple[str, str], VariantRunner] = {}

    def __call__(self, section_id: str, prepare: str = "") -> VariantRunner:
        key = (section_id, prepare)
        runner = self.open.pop(key, None)
        if runner is not None and self.expiring(runner):
            runner.close()
            runner = None
        if runner is None:
            while len(self.open) >= self.LIMIT:
                self.open.pop(next(iter(self.open))).close()
            runner = VariantRunner(section_id)
            if prepare:
                run = runner.runtime.run_source(prepare)
                assert run.status == "ok", (run.error, run.traceback)
        self.open[key] = runner
        return runner

    @staticmethod
    def expiring(runner: VariantRunner) -> bool:
        """A runtime has an overall time limit (Limits.total_seconds, 10 min) like a student's: one kept since
        an early module would run out in a later one, so it is replaced while a test still has time to run."""
        deadline = getattr(runner.runtime, "deadline", None)
        return deadline is not None and deadline - time.monotonic() < SPARE_SECONDS

    def close(self) -> None:
        while self.open:
            self.open.popitem()[1].close()


@pytest.fixture(scope="session")
def runners():
    started = Runners()
    yield started
    started.close()


@pytest.fixture
def runner(runners, request):
    """The VariantRunner of the section named by the test module's SECTION (fetched per test, so that a module
    using other sections' runners as well never holds one that was closed)."""
    return runners(request.module.SECTION.id)


# The grader's held-out images are a keyed draw (d2lgrade/core/data.py): the tests fix the key, so that their
# margins are measured on the same images on every machine and in every fresh clone.
os.environ.setdefault("D2LGRADE_HELDOUT_KEY", "d2l-grade tests")
