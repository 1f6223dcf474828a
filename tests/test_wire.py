"""The wire refuses answers that would cost the grader more than they cost the runtime (hostile case 21
in test_hostile.py grades one through both engines)."""
import pytest
import torch

from d2lgrade.run import wire


def roundtrip(value, tmp_path):
    path = tmp_path / "response.pt"
    torch.save(value, path)
    return wire.read_response(path)


@pytest.mark.parametrize("value", [
    torch.arange(12.).reshape(3, 4), torch.arange(12.).reshape(3, 4).t(), torch.zeros(0, 5),
    torch.tensor(3.0), torch.ones(1, 5, 1), torch.arange(24).reshape(2, 3, 4).permute(2, 0, 1),
    {"__seq__": "list", "items": [torch.ones(3), 1, "x"]},
], ids=["contiguous", "transposed", "empty", "scalar", "unit dims", "permuted", "nested"])
def test_dense_answers_cross(value, tmp_path):
    got = roundtrip(value, tmp_path)
    assert type(got) is type(value)


@pytest.mark.parametrize("value, words", [
    (torch.zeros(1, dtype=torch.float64).expand(16000, 16000), "overlap"),
    (torch.arange(10.).as_strided((5, 4), (1, 1)), "overlap"),
    (torch.arange(10.)[::2], "gaps"),
    (torch.eye(3).to_sparse(), "layout"),
    ({"a": [torch.zeros(1).expand(10, 10)]}, "overlap"),
], ids=["stride 0", "overlapping", "gaps", "sparse", "nested stride 0"])
def test_views_that_cost_more_than_their_storage_are_refused(value, words, tmp_path):
    with pytest.raises(wire.WireError, match=words):
        roundtrip(value, tmp_path)


def test_size_caps_per_tensor_and_in_all(tmp_path, monkeypatch):
    monkeypatch.setattr(wire, "MAX_TENSOR_BYTES", 1000)
    monkeypatch.setattr(wire, "MAX_RESPONSE_BYTES", 3000)
    assert roundtrip(torch.zeros(250), tmp_path).numel() == 250           # 1000 bytes: at the cap
    with pytest.raises(wire.WireError, match="per tensor"):
        roundtrip(torch.zeros(251), tmp_path)
    # Views of one storage cost the wire one storage, but each is a tensor of its own in the grader.
    base = torch.zeros(250)
    assert len(roundtrip([base] * 3, tmp_path)) == 3
    with pytest.raises(wire.WireError, match="together"):
        roundtrip([base] * 4, tmp_path)


def test_the_pickle_itself_is_capped_before_it_is_read(tmp_path, monkeypatch):
    monkeypatch.setattr(wire, "MAX_PICKLE_BYTES", 10_000)
    assert len(roundtrip(list(range(1000)), tmp_path)) == 1000
    with pytest.raises(wire.WireError, match="plain values"):
        roundtrip(list(range(10_000)), tmp_path)
