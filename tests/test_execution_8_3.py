"""What a network computes, not what it declares (issue 22), on 8.3's NiN: a 1×1 convolution that runs and
is thrown away no longer counts as one of the block's layers."""
from d2lgrade.core.sections import find_section
from d2lgrade.testing import assert_right, assert_wrong
from tests.test_section_8_3 import PLAIN_NIN

SECTION = find_section("8.3")

ONE_BY_ONE = "nn.Conv2d(c_out, c_out, k1, padding=(k1 - 1) // 2)"
THROWN = """
class Thrown(nn.Module):   # runs its layer, returns the input untouched
    def __init__(self, layer):
        super().__init__()
        self.layer = layer
    def forward(self, X):
        self.layer(X)
        return X
"""


def test_a_1x1_convolution_thrown_away_is_named(runner):
    source = THROWN + PLAIN_NIN.replace(ONE_BY_ONE, f"Thrown({ONE_BY_ONE})")
    assert source != THROWN + PLAIN_NIN
    [result] = runner.grade(source, "8.3/1", only={"8.3/1"})
    assert_wrong(result, ["`features.0.2.layer`", "never reaches the network's output"])


def test_the_same_block_with_the_output_used_is_right(runner):
    kept = THROWN.replace("        self.layer(X)\n        return X", "        return self.layer(X)")
    source = kept + PLAIN_NIN.replace(ONE_BY_ONE, f"Thrown({ONE_BY_ONE})")
    assert_right(runner.grade(source, "8.3/1", only={"8.3/1"}))
