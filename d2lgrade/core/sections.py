"""Where each section's pieces live: spec and starter in exercises/, checks in graders/,
the reference solution in reference/. Sections are discovered from the specs."""
from __future__ import annotations

import importlib
import re
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from d2lgrade.core.checks import Check, collect
from d2lgrade.core.errors import UserError
from d2lgrade.core.spec import SectionSpec, load_spec

ROOT = Path(__file__).resolve().parents[2]
EXERCISES = ROOT / "exercises"
SECTION_RE = re.compile(r"^\d+\.\d+$")


@dataclass
class Section:
    id: str                      # "7.3"

    @property
    def slug(self) -> str:       # "7_3": section ids are not Python identifiers
        return self.id.replace(".", "_")

    @property
    def spec_path(self) -> Path:
        return EXERCISES / f"{self.id}.toml"

    @property
    def starter_path(self) -> Path:
        return EXERCISES / f"{self.id}.ipynb"

    @property
    def reference_path(self) -> Path:
        return ROOT / "reference" / f"section_{self.slug}.py"

    @cached_property
    def spec(self) -> SectionSpec:
        return load_spec(self.spec_path)

    @cached_property
    def checks(self) -> list[Check]:
        module = importlib.import_module(f"graders.section_{self.slug}")
        return collect(module)

    def validate_selector(self, selector: str) -> None:
        """A selector such as 7.3/9 names an exercise the section has, or the error lists the ones it has."""
        if "/" in selector and not any(c.matches(selector) for c in self.checks) and \
                not any(e.id == selector or e.id.startswith(selector + ".") for e in self.spec.exercises):
            ids = ", ".join(e.id for e in self.spec.exercises)
            raise UserError(f"section {self.id} has no exercise {selector}; its exercises are {ids}.")

    def default_submission(self) -> Path:
        notebook, module = self.starter_path, self.starter_path.with_suffix(".py")
        return module if module.exists() and not notebook.exists() else notebook


def all_sections() -> list[Section]:
    ids = [p.stem for p in EXERCISES.glob("*.toml") if SECTION_RE.match(p.stem)]
    return [Section(i) for i in sorted(ids, key=lambda s: tuple(int(x) for x in s.split(".")))]


def find_section(section_id: str) -> Section:
    known = [s.id for s in all_sections()]
    if section_id not in known:
        raise UserError(f"there is no section '{section_id}'; choose one of {', '.join(known)} "
                        "(e.g. `python grade.py 7.3`).")
    return Section(section_id)
