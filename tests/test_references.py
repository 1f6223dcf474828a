"""`python grade.py --check-references`: CI does not run it on its own (the suite grades every reference in each
section's tests and in test_release's record pass, and test_proofs runs the proofs); here the command itself."""
import json

from d2lgrade import reference_check
from d2lgrade.run.executor import RuntimeOptions
from d2lgrade.core.sections import Section


def test_check_references_passes_on_a_right_reference_and_fails_on_a_wrong_one(monkeypatch, tmp_path, capsys):
    monkeypatch.setattr(reference_check, "all_sections", lambda: [Section("7.3")])
    assert reference_check.check_references(RuntimeOptions(), as_json=True) == 0
    document = json.loads(capsys.readouterr().out)
    assert document["ok"] and document["sections"][0]["section"] == "7.3" and document["proofs"]

    wrong = tmp_path / "section_7_3.py"
    wrong.write_text(Section("7.3").reference_path.read_text().replace('example_shape = (2, 2)', 'example_shape = (2, 3)'))
    monkeypatch.setattr(Section, "reference_path", property(lambda self: wrong))
    assert reference_check.check_references(RuntimeOptions(), as_json=True) == 1
    document = json.loads(capsys.readouterr().out)
    assert not document["ok"]
    assert any(c["id"] == "7.3/1:example" and c["status"] == "failed" for c in document["sections"][0]["checks"])
