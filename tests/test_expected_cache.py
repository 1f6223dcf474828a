"""Expected values kept once per course and grader version (d2lgrade/values/expected_cache.py): a kept value is exactly
what a fresh computation returns, anything that decides it is in its key, the kit and the release never read
it, and a file that is not exactly what the cache writes is dropped, never trusted."""
from __future__ import annotations

import functools
import gzip
import json
from collections import namedtuple
from fractions import Fraction

import pytest
import sympy
import torch

from d2lgrade.core import course, recording
from d2lgrade.values import expected, expected_cache
from d2lgrade.numerics import pinned
from d2lgrade.core.sections import find_section

SECTION = find_section("7.3")
CALLS: list[tuple] = []
WRONG_PAD = "def mirror_pad(X, p):\n    return F.pad(X, (p, p, p, p))"


def counted(module, X, p):
    """A grader-side computation that says when it runs."""
    CALLS.append((X.shape, p))
    return {"padded": module.mirror_pad(X, p), "shape": tuple(X.shape), "ratio": Fraction(p, 3), "nan": float("nan")}


@pytest.fixture(autouse=True)
def cold(monkeypatch, tmp_path):
    """An empty disk cache and an empty memory: a fresh course on a fresh worker."""
    monkeypatch.setattr(pinned, "CACHE", tmp_path)
    monkeypatch.setattr(expected_cache, "_memory", {})
    CALLS.clear()


def new_worker(monkeypatch):
    """Another process on the same course folder: the disk cache stays, the memory does not."""
    monkeypatch.setattr(expected_cache, "_memory", {})


def files():
    return sorted(expected_cache.folder().rglob("*.json.gz")) if expected_cache.folder().exists() else []


def X():
    return torch.arange(20.0, dtype=torch.float64).reshape(4, 5) / 3


def same_bits(a, b):
    return expected_cache.same(a, b) and type(a) is type(b)


def test_cold_memory_and_disk_give_the_same_value_bit_for_bit(monkeypatch):
    ref = expected.reference("7.3")
    fresh = expected.computed(ref, "pad", counted, X(), 2)
    assert len(CALLS) == 1 and len(files()) == 1
    from_memory = expected.computed(ref, "pad", counted, X(), 2)
    new_worker(monkeypatch)
    from_disk = expected.computed(ref, "pad", counted, X(), 2)
    assert len(CALLS) == 1                                        # computed once for all three
    for kept in (from_memory, from_disk):
        assert same_bits(fresh, kept) and kept["padded"].dtype == torch.float64
    from_memory["padded"].zero_()                                 # a grader that writes into its value ...
    assert same_bits(fresh, expected.computed(ref, "pad", counted, X(), 2))   # ... changes nobody else's


def test_a_reference_function_called_through_the_seam_is_kept(monkeypatch):
    ref = expected.reference("7.3")
    fresh = ref.mirror_pad(X(), 1)
    new_worker(monkeypatch)
    # Two files: that `mirror_pad` is a function of the reference, and its value on this input.
    assert len(files()) == 2 and same_bits(fresh, ref.mirror_pad(X(), 1))


def test_a_reference_constant_is_kept_so_that_a_grading_need_not_import_the_reference(monkeypatch):
    import sys
    ref = expected.reference("8.7")
    fresh = ref.DENSENET_BLOCKS
    assert "reference.section_8_7" in sys.modules and len(files()) == 1
    new_worker(monkeypatch)
    monkeypatch.delitem(sys.modules, "reference.section_8_7")
    kept = ref.DENSENET_BLOCKS
    assert "reference.section_8_7" not in sys.modules                 # nor d2l, which it imports: seconds
    assert same_bits(fresh, kept) and kept == {121: (6, 12, 24, 16), 169: (6, 12, 32, 32), 201: (6, 12, 48, 32)}
    kept[121] = (1, 1, 1, 1)                                          # a grader that changes its copy ...
    assert ref.DENSENET_BLOCKS[121] == (6, 12, 24, 16)                # ... changes nobody else's
    assert ref.shown("DENSENET_BLOCKS") == repr(fresh)
    # Another reference text is another key: the kept value of the old one is not read.
    other = expected_cache.constant_key("8.7", "DENSENET_BLOCKS")
    monkeypatch.setattr(expected_cache, "_code_digests", {})
    monkeypatch.setattr(expected_cache, "code_digest", lambda section, module: "another reference")
    assert expected_cache.constant_key("8.7", "DENSENET_BLOCKS") != other


@functools.lru_cache(maxsize=None)
def counted_once_per_process(module, p):
    return counted(module, X(), p)


def test_a_function_under_lru_cache_is_kept_once_for_every_worker(monkeypatch):
    ref = expected.reference("7.3")
    fresh = expected.computed(ref, "pad once", counted_once_per_process, 2)
    counted_once_per_process.cache_clear()                        # another process: its own lru_cache is empty
    new_worker(monkeypatch)
    assert same_bits(fresh, expected.computed(ref, "pad once", counted_once_per_process, 2))
    assert len(CALLS) == 1 and len(files()) == 1


def test_other_inputs_another_course_key_or_other_code_miss(monkeypatch):
    ref = expected.reference("7.3")
    expected.computed(ref, "pad", counted, X(), 2)
    expected.computed(ref, "pad", counted, X(), 1)                # a student's own shape or size: another key
    expected.computed(ref, "pad", counted, X().float(), 2)        # the dtype is part of the input
    with course.using_key(b"another course"):
        expected.computed(ref, "pad", counted, X(), 2)
    with expected.checking("7.3/3"):                              # another check asking
        expected.computed(ref, "pad", counted, X(), 2)
    monkeypatch.setattr(expected_cache, "code_digest", lambda section, module: "a new grader version")
    expected.computed(ref, "pad", counted, X(), 2)
    assert len(CALLS) == 6 and len(files()) == 6


def test_the_code_digest_follows_the_reference_and_the_graders(monkeypatch, tmp_path):
    from d2lgrade.core import version
    before = expected_cache.code_digest("7.3", "graders.section_7_3")
    edited = tmp_path / "section_7_3.py"
    edited.write_text(SECTION.reference_path.read_text() + "\n# an edit\n")
    real = version._module_path
    monkeypatch.setattr(version, "_module_path", lambda m: edited if m == "reference.section_7_3" else real(m))
    monkeypatch.setattr(expected_cache, "_code_digests", {})
    assert expected_cache.code_digest("7.3", "graders.section_7_3") != before
    assert expected_cache.code_digest("7.3", "graders.section_7_2") != expected_cache.code_digest("7.3", "graders.section_7_3")


def test_a_function_with_state_of_its_own_or_an_unsafe_argument_is_computed_every_time():
    ref = expected.reference("7.3")
    student_p = 2
    closure = lambda module, X: counted(module, X, student_p)     # noqa: E731  state the key cannot see
    for _ in range(2):
        expected.computed(ref, "pad", closure, X())
        expected.computed(ref, "net", lambda module, net: CALLS.append(net), torch.nn.Linear(2, 2))
    meta = torch.ones(2, device="meta")                            # an input the digest cannot read
    assert expected.computed(ref, "meta", lambda module, t: t.shape, meta) == (2,) and files() == []
    assert len(CALLS) == 4 and files() == []


def grows(module, X):
    CALLS.append(X.shape)
    X.add_(1)                                                     # changes the caller's tensor in place
    return X.sum()


def test_a_function_that_changes_its_arguments_is_computed_every_time():
    ref = expected.reference("7.3")
    inputs = [X(), X()]
    sums = [expected.computed(ref, "grows", grows, x) for x in inputs]
    assert len(CALLS) == 2 and files() == [] and torch.equal(inputs[0], inputs[1]) and torch.equal(*sums)


@pytest.mark.parametrize("value", [
    sympy.sqrt(2), sympy.Rational(1, 3), torch.nn.Parameter(torch.ones(2)), torch.ones(2, requires_grad=True),
    torch.ones(4, 4).t(), torch.ones(4)[1:], namedtuple("Pair", "a b")(1, 2), torch.nn.Linear(2, 2),
    {"nested": [1, sympy.pi]},
])
def test_values_that_would_not_come_back_identical_are_never_kept(value):
    expected_cache.keep("0" * 64, value)
    assert expected_cache.fetch("0" * 64) == (False, None) and files() == []


def test_the_kit_and_the_release_never_read_or_write_it(monkeypatch):
    ref = expected.reference("7.3")
    expected.computed(ref, "pad", counted, X(), 2)
    [path] = files()
    key = path.name.removesuffix(".json.gz")
    poisoned = {"padded": torch.zeros(1), "shape": (), "ratio": Fraction(0), "nan": 0.0}
    expected_cache.keep(key, poisoned)
    assert same_bits(expected.computed(ref, "pad", counted, X(), 2), poisoned)   # the live seam reads it ...

    recorder = expected.Recorder()
    with expected.record_into(recorder):                          # ... the release computes every call afresh
        recorded = expected.computed(ref, "pad", counted, X(), 2)
    assert len(CALLS) == 2 and recorded["padded"].shape == (8, 9) and len(files()) == 1
    payload = recorder.payload("7.3")
    assert same_bits(recording.decode(payload["calls"]["pad"][recording.digest((X(), 2))]), recorded)

    monkeypatch.setattr(expected, "mode", lambda: "replay")       # ... and a kit replays only its recording
    monkeypatch.setattr(expected, "_replayed", lambda section: payload)
    monkeypatch.setattr(expected_cache, "fetch", lambda key: pytest.fail("a kit read the cache"))
    monkeypatch.setattr(expected_cache, "keep", lambda key, value: pytest.fail("a kit wrote the cache"))
    assert same_bits(expected.computed(ref, "pad", counted, X(), 2), recorded)
    with pytest.raises(expected.NotRecorded):
        expected.computed(ref, "pad", counted, X(), 3)
    assert len(CALLS) == 2


def _write(path, document):
    with gzip.open(path, "wt", encoding="utf-8") as file:
        json.dump(document, file)


@pytest.mark.parametrize("damage", ["torn", "pickle", "code tag", "other dtype", "short tensor", "other key",
                                    "sympy text", "unknown tag"])
def test_a_damaged_or_foreign_file_is_dropped_and_written_again(monkeypatch, damage):
    ref = expected.reference("7.3")
    fresh = expected.computed(ref, "pad", counted, X(), 2)
    [path] = files()
    key = path.name.removesuffix(".json.gz")
    good = json.loads(gzip.decompress(path.read_bytes()))
    tensor = good["value"]["dict"]["padded"]
    if damage == "torn":
        path.write_bytes(path.read_bytes()[:40])
    elif damage == "pickle":
        torch.save({"padded": torch.zeros(1)}, path)
    else:
        value = {"code tag": {"dtype": "load"}, "other dtype": {**tensor, "tensor": "Tensor"},
                 "short tensor": {**tensor, "data": tensor["data"][:8]}, "sympy text": {"real": "1.5"},
                 "unknown tag": {"module": "os"}, "other key": good["value"]}[damage]
        _write(path, {**good, "value": value} if damage != "other key" else {**good, "key": "f" * 64})
    new_worker(monkeypatch)
    assert same_bits(expected.computed(ref, "pad", counted, X(), 2), fresh)
    assert len(CALLS) == 2                                        # recomputed, not trusted
    assert json.loads(gzip.decompress(path.read_bytes())) == good and expected_cache.fetch(key)[0]


def test_verdicts_and_messages_are_the_same_with_a_cold_and_a_warm_cache(runner, monkeypatch):
    reference = SECTION.reference_path.read_text()
    right = reference[reference.index("mirror_mode ="):reference.index("# %% 7.3/4")]

    def graded():
        return [(r.id, r.status, r.points, r.message, r.reveal) for source in (right, WRONG_PAD)
                for r in runner.grade(source, "7.3/3")]

    cold = graded()
    written = files()
    assert written and cold[0][1] == "passed" and cold[-1][1] in ("failed", "error")
    warm = graded()
    new_worker(monkeypatch)
    assert cold == warm == graded() and files() == written
