"""Shared fixtures: one student runtime per section test module."""
import pytest

from d2lgrade.testing import VariantRunner


@pytest.fixture(scope="module")
def runner(request):
    """A VariantRunner for the section named by the test module's SECTION."""
    r = VariantRunner(request.module.SECTION.id)
    yield r
    r.close()
