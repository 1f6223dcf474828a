"""The suite's shared runtimes (tests/conftest.py) are replaced before their overall time limit runs out."""
import time
from types import SimpleNamespace

from conftest import SPARE_SECONDS, Runners


def runner_with(seconds_left: float):
    return SimpleNamespace(runtime=SimpleNamespace(deadline=time.monotonic() + seconds_left))


def test_a_runtime_near_its_overall_limit_is_replaced():
    assert Runners.expiring(runner_with(SPARE_SECONDS - 1))
    assert Runners.expiring(runner_with(-5))
    assert not Runners.expiring(runner_with(SPARE_SECONDS + 60))
    assert not Runners.expiring(SimpleNamespace(runtime=SimpleNamespace()))      # an engine without a deadline
