"""What a network computes, not what it declares (issue 22), on 8.7's DenseNet: a dense layer that appends
zeros instead of its output is named."""
from d2lgrade.core.sections import find_section
from d2lgrade.testing import assert_right, assert_wrong
from tests.test_section_8_7 import FEATURE_LIST

SECTION = find_section("8.7")

APPEND = "features.append(layer(torch.cat(features, 1)))"


def test_a_layer_appending_zeros_is_named(runner):
    source = FEATURE_LIST.replace(APPEND, "features.append(torch.zeros_like(layer(torch.cat(features, 1))))")
    assert source != FEATURE_LIST
    [result] = runner.grade(source, "8.7/4", only={"8.7/4:structure"})
    assert_wrong(result, ["`4.layers.0.0`", "never reaches the network's output"])


def test_dense_layers_concatenated_in_place_are_right(runner):
    source = FEATURE_LIST.replace(APPEND, "out = layer(torch.cat(features, 1)); features += [out]")
    assert source != FEATURE_LIST
    assert_right(runner.grade(source, "8.7/4"))
