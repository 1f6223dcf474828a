"""Whether a submission's cells are tagged for the section being graded."""
from __future__ import annotations

from d2lgrade.load.submission import Submission


def tagged_sections(submission: Submission) -> list[str]:
    """The sections the cells' exercise tags name, in the book's order."""
    found = {cell.exercise.partition("/")[0] for cell in submission.cells if cell.exercise}
    return sorted(found, key=lambda s: tuple(int(p) if p.isdigit() else 0 for p in s.split(".")))


def section_mismatch(submission: Submission, section: str) -> str | None:
    """One sentence when every tagged cell belongs to other sections (a 7.2 notebook graded as 8.6); None when
    the file has no tags, or some of its cells are tagged for `section`."""
    tagged = tagged_sections(submission)
    if not tagged or section in tagged:
        return None
    named = " and ".join([", ".join(tagged[:-1]), tagged[-1]] if len(tagged) > 1 else tagged)
    hint = f": run `python grade.py {tagged[0]} {submission.path}`" if len(tagged) == 1 else \
        f": grade it as one of those sections, e.g. `python grade.py {tagged[0]} {submission.path}`"
    return f"This file's cells are tagged {named}, not {section}{hint}."
