"""A FLOP answer without "unit" is read in the one unit its numbers match (issue 22), and the message says
which was assumed; numbers that fit neither unit (or fit each only in part) still ask for the unit."""
import pytest

from d2lgrade.core.sections import find_section
from d2lgrade.testing import assert_right, assert_wrong

SECTION = find_section("8.1")


@pytest.mark.parametrize("source, unit", [
    ("alexnet_flop_split = {'conv': 1_790_227_200, 'fc': 86_065_152}", "FLOPs"),
    ("alexnet_flop_split = {'conv': 895_113_600, 'fc': 43_032_576}", "MACs"),
], ids=["flops", "macs"])
def test_unit_inferred_when_the_numbers_leave_no_doubt(runner, source, unit):
    [result] = runner.grade(source, "8.1/1.2")
    assert_right(result)
    assert f"read as {unit}" in result.message, result.message


def test_mixed_units_are_not_inferred(runner):
    """conv in FLOPs, fc in MACs: no single unit fits both, so the answer must say."""
    [result] = runner.grade("alexnet_flop_split = {'conv': 1_790_227_200, 'fc': 43_032_576}", "8.1/1.2")
    assert_wrong(result, ['"unit"'])
