"""`python grade.py --check-references`: every reference solution must earn full marks."""
from __future__ import annotations

import importlib
import json

from d2lgrade.core import results as R
from d2lgrade.pipeline.grading import grade, written_ids
from d2lgrade.report import terminal
from d2lgrade.run.executor import RuntimeOptions
from d2lgrade.core.sections import ROOT, all_sections


def check_references(options: RuntimeOptions, as_json: bool = False, executor: str | None = None) -> int:
    failures, documents = [], []
    for section in all_sections():
        report = grade(section, section.reference_path, options=options, executor=executor)
        written = written_ids(section)
        bad = [c for c in report.checks if c.status != R.PASSED and not (c.status == R.MANUAL and c.id in written)]
        failures += [f"{c.id}: {c.status}: {c.message}" for c in bad]
        documents.append(report.to_json())
        if not as_json:
            print(terminal.render(report))
            print()
    proofs = run_proofs()
    for name, ok, message in proofs:
        if not ok:
            failures.append(f"proof {name}: {message}")
        if not as_json:
            print(f"proof {'ok    ' if ok else 'FAILED'} {name}: {message}")
    if as_json:
        print(json.dumps({"sections": documents, "proofs": [{"name": n, "ok": ok, "message": m} for n, ok, m in proofs],
                          "ok": not failures}, indent=2))
    else:
        print("\nall references earn full marks" if not failures else "\nreference failures:\n  " + "\n  ".join(failures))
    return 0 if not failures else 1


def run_proofs() -> list[tuple[str, bool, str]]:
    """Machine-checked (sympy) proofs kept in reference/proofs.py, if the project has them."""
    if not (ROOT / "reference" / "proofs.py").exists():
        return []
    module = importlib.import_module("reference.proofs")
    return list(module.run_all())
