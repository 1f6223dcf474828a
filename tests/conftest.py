"""Shared fixtures: one student runtime per section test module."""
import os

import pytest

from d2lgrade.testing import VariantRunner


@pytest.fixture(scope="module")
def runner(request):
    """A VariantRunner for the section named by the test module's SECTION."""
    r = VariantRunner(request.module.SECTION.id)
    yield r
    r.close()


# The grader's held-out images are a keyed draw (d2lgrade/data.py): the tests fix the key, so that their
# margins are measured on the same images on every machine and in every fresh clone.
os.environ.setdefault("D2LGRADE_HELDOUT_KEY", "d2l-grade tests")
