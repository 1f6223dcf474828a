"""reference/proofs.py: every machine-checked statement holds, and the same machinery rejects broken ones."""
import pytest

from reference import proofs
from reference import section_7_4 as ref74


def test_every_proof_holds():
    results = list(proofs.run_all())
    assert len(results) == len(proofs.PROOFS) >= 9
    failed = [(name, message) for name, ok, message in results if not ok]
    assert not failed, failed
    assert all(isinstance(ok, bool) and message for _, ok, message in results)


def test_keeping_the_limits_is_rejected():
    """The seed's step: after u = t - tau "the limits remain the same"."""
    ok, message = proofs.continuous_commutativity(keep_limits=True)
    assert not ok
    assert "limits" in message and "−(g∗f)" in message


def test_centred_stencil_size_is_not_the_minimum():
    ok, message = proofs.min_derivative_size("2*d + 1")
    assert not ok and "already gives" in message
    ok, message = proofs.min_derivative_size("d")
    assert not ok and "no kernel of 1 taps" in message


def test_seed_max_formula_is_rejected():
    ok, message = proofs.max_via_relu("(a + b + relu(a - b))/2")
    assert not ok and "a <= b" in message
    assert proofs.max_via_relu("(a + b + relu(a - b) + relu(b - a))/2")[0]


def test_wrong_composed_size_is_rejected():
    ok, message = proofs.composed_size("k1 + k2")
    assert not ok and "act like" in message


def test_wrong_cost_formulas_are_rejected():
    # the seed: backward costs as much as the forward pass
    ok, message = proofs.conv_costs(backward=ref74.forward_mults)
    assert not ok and message.startswith("backward")
    # the seed's h_out without floor
    ok, message = proofs.conv_costs(mults="c_o*((h + 2*p_h - k_h)/s_h + 1)*((w + 2*p_w - k_w)/s_w + 1)*c_i*k_h*k_w")
    assert not ok and message.startswith("mults")


def test_wrong_pooling_formulas_are_rejected():
    # the seed's pooling cost: ceiling, and no p_h*p_w factor
    ok, message = proofs.pool_cost("c*ceiling((h + 2*p_h - p_h)/s_h)*ceiling((w + 2*p_w - p_w)/s_w)")
    assert not ok and "the windows hold" in message
    ok, message = proofs.output_shapes(pool_formula="ceiling((h + p_h)/s_h)")
    assert not ok and "padding" in message
    ok, message = proofs.output_shapes(conv_formula="floor((n_h + p_h - k_h)/s_h) + 1")
    assert not ok and "nn.Conv2d" in message


@pytest.mark.parametrize("text", ["b*c", "c**2/b"])
def test_wrong_block_speedup_is_rejected(text):
    ok, message = proofs.block_speedup(text)
    assert not ok and "not" in message


def test_identity_substitution_does_not_prove_commutativity():
    ok, message = proofs.discrete_commutativity(max_length=2, substitution="m")
    assert not ok and "substitution" in message
