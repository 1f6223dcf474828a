"""Starter notebooks are generated from the specs, and specs agree with the graders."""
import pytest

from d2lgrade.core.sections import all_sections
from d2lgrade.starters import render

SECTIONS = all_sections()


@pytest.mark.parametrize("section", SECTIONS, ids=lambda s: s.id)
def test_committed_starter_matches_spec(section):
    assert section.starter_path.exists(), f"run `python grade.py --make-starters` to create {section.starter_path}"
    assert section.starter_path.read_text() == render(section), \
        f"{section.starter_path} is out of date: run `python grade.py --make-starters`"


@pytest.mark.parametrize("section", SECTIONS, ids=lambda s: s.id)
def test_checks_score_exercises_of_the_spec_with_their_contract_names(section):
    exercises = {e.id: e for e in section.spec.exercises}
    for check in section.checks:
        assert check.exercise in exercises, f"{check.id} scores an exercise missing from {section.spec_path}"
        missing = set(check.uses) - set(exercises[check.exercise].contract)
        assert not missing, f"{check.id} uses {missing}, not in the contract of {check.exercise}"
    ids = [c.id for c in section.checks]
    assert len(ids) == len(set(ids)), "check ids must be unique"


@pytest.mark.parametrize("section", SECTIONS, ids=lambda s: s.id)
def test_every_exercise_is_scored(section):
    scored = {c.exercise for c in section.checks} | {e.id for e in section.spec.exercises if e.manual_points}
    unscored = [e.id for e in section.spec.exercises if e.id not in scored]
    assert not unscored, f"exercises with neither a check nor manual points: {unscored}"
    for e in section.spec.exercises:
        if "free-text" in e.kinds:
            assert e.manual_points and e.rubric, f"{e.id} is free text: give it manual_points and a rubric"
