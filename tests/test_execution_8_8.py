"""RegNet's ResNet blocks recomputed by the grader (issue 22): a block that keeps its layers but drops the
identity shortcut is named; the plain blocks keep full marks."""
from d2lgrade.core.sections import find_section
from d2lgrade.testing import assert_right, assert_wrong
from tests.test_section_8_8 import PLAIN_BLOCKS

SECTION = find_section("8.8")

BASIC_RETURN = """        self.short = nn.Conv2d(c_in, c_out, 1, stride=stride) if stride != 1 or c_in != c_out else nn.Identity()
    def forward(self, X):
        return F.relu(self.body(X) + self.short(X))"""


def test_resnet_blocks_dropping_the_identity_shortcut_are_named(runner):
    source = PLAIN_BLOCKS.replace(BASIC_RETURN, BASIC_RETURN.replace(
        "self.body(X) + self.short(X)", "self.body(X) + (0 if isinstance(self.short, nn.Identity) else self.short(X))"))
    assert source != PLAIN_BLOCKS
    [result] = runner.grade(source, "8.8/2")
    assert_wrong(result, ["block `5`", "drops its shortcut"])


def test_plain_resnet_blocks_are_recomputed_and_right(runner):
    [result] = runner.grade(PLAIN_BLOCKS, "8.8/2")
    assert_right(result)
    assert "recomputed by the grader" in result.message, result.message
