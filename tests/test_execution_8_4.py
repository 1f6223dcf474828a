"""What a network computes, not what it declares (issue 22), on 8.4's Inception: a 1×1 branch that runs and
is multiplied away is named; the same block using it keeps full marks."""
from d2lgrade.core.sections import find_section
from d2lgrade.testing import assert_right, assert_wrong
from tests.test_section_8_4 import FACTORIZED_STANDALONE

SECTION = find_section("8.4")

RETURN = "return torch.cat([self.p1(x), self.p2(x), self.p3(x), self.p4(x)], 1)"


def test_a_1x1_branch_multiplied_away_is_named(runner):
    source = FACTORIZED_STANDALONE.replace(RETURN, RETURN.replace("self.p1(x)", "0 * self.p1(x)"))
    assert source != FACTORIZED_STANDALONE
    assert_wrong(runner.grade(source, "8.4/1.2")[0], ["`p1.0`", "never reaches the network's output"])


def test_the_branches_in_another_order_are_right(runner):
    source = FACTORIZED_STANDALONE.replace(RETURN, "return torch.cat([self.p1(x)] + [p(x) for p in (self.p2, self.p3, self.p4)], 1)")
    assert source != FACTORIZED_STANDALONE
    assert_right(runner.grade(source, "8.4/1.2"))
