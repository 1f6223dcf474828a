"""`python grade.py --release DIR`: a student kit without the answers that gives the course folder's verdicts.

One kit is built for the whole module (the release grades its corpus once): of every section in CI, of a few
locally (SECTIONS below). Then, section by section, the reference and the answers in tests/kit_answers/<section>/
(seed answers and known-wrong ones, none of them recorded at release) are graded in the kit, by the kit's own code
in a child process, and in this course folder with the kit's inputs: every check must have the same status, points
and message.
"""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from d2lgrade.core import course, recording
from d2lgrade.core import results as R
from d2lgrade.compare import symbolic
from d2lgrade.pipeline.grading import grade, written_ids
from d2lgrade.release import layout
from d2lgrade.release.build import build_kit
from d2lgrade.release.verify import differences, grade_in_kit, start_grading_jobs_in_kit
from d2lgrade.core.sections import ROOT, all_sections, find_section

ANSWERS = ROOT / "tests" / "kit_answers"
ALL = [s.id for s in all_sections()]
# Building every section's kit takes about ten minutes: a local run builds a few (7.3 for the tests below that use
# it, 8.2 for a network section); .ci/run sets D2LGRADE_KIT_SECTIONS=all, and a list like 7.3,8.2 picks others.
DEFAULT_SECTIONS = "7.3,8.2"
_chosen = os.environ.get("D2LGRADE_KIT_SECTIONS") or DEFAULT_SECTIONS
SECTIONS = ALL if _chosen.strip() == "all" else [s.strip() for s in _chosen.split(",") if s.strip()]
pytestmark = pytest.mark.long          # the kit is built once for the module: minutes, ten in CI
needs_7_3 = pytest.mark.skipif("7.3" not in SECTIONS, reason="7.3 is not in this kit (D2LGRADE_KIT_SECTIONS)")


@pytest.fixture(scope="module")
def kit(tmp_path_factory):
    dest = tmp_path_factory.mktemp("release") / "kit"
    summary = build_kit(dest, sections=SECTIONS, progress=lambda line: None)
    return dest, summary


def kit_key(dest: Path) -> bytes:
    return json.loads((dest / "kit.json").read_text())["key"].encode()


def test_the_kit_holds_no_answers(kit):
    dest, summary = kit
    for absent in ("reference", "submissions", "tests", "bench", "docs", ".d2lgrade-key", ".d2lgrade-cache"):
        assert not (dest / absent).exists(), absent
    assert layout.leaks(dest, layout.reference_bodies(ROOT)) == []
    # The audit's exercise properties state answers (7.4's counted forms): only its flags reach a kit.
    assert sorted(p.name for p in (dest / "d2lgrade" / "audit").glob("*.py")) == ["__init__.py", "cli.py"]
    texts = "\n".join(layout.kit_text(p) for p in dest.rglob("*") if p.is_file())
    formulas = reference_formulas()
    assert formulas, "the references' formulas were not found: this test would prove nothing"
    assert [f for f in formulas if stands_alone(f, texts)] == []
    assert "rubric" not in "".join((dest / "exercises" / f"{s}.toml").read_text() for s in SECTIONS)
    assert sorted(p.name for p in (dest / "recorded").iterdir()) == sorted(f"{s}.json.gz" for s in SECTIONS)
    for path in (dest / "recorded").iterdir():
        recording.read(path)                       # plain JSON: nothing in it runs when it is read


ATTACHED = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_*+-/^.()")


def stands_alone(formula: str, text: str) -> bool:
    """`formula` occurs in `text` as a whole expression, not as a part of a longer one ("d + 1" in "2*d + 1",
    "b + relu(a - b)" in "(a + b + relu(a - b))/2" are other formulas: named mistakes may be in a kit)."""
    for match in re.finditer(re.escape(formula), text):
        before, after = text[:match.start()].rstrip()[-1:], text[match.end():].lstrip()[:1]
        if before not in ATTACHED and after not in ATTACHED:
            return True
    return False


def unbracketed(formula: str) -> str:
    """Without white space and without brackets around the whole: "(h + 1)" -> "h+1"."""
    text = re.sub(r"\s+", "", formula)
    while text.startswith("(") and text.endswith(")") and balanced(text[1:-1]):
        text = text[1:-1]
    return text


def balanced(text: str) -> bool:
    depth = 0
    for char in text:
        depth += {"(": 1, ")": -1}.get(char, 0)
        if depth < 0:
            return False
    return depth == 0


def reference_formulas() -> list[str]:
    """Every string constant of the references that is a formula (parses, and has a symbol and an operator), less
    those the exercises' own prompts state (7.4 gives the output size it asks students to substitute)."""
    public = re.sub(r"\s+", "", "".join(layout.without_rubrics(p.read_text())
                                        for p in sorted((ROOT / "exercises").glob("*.toml"))))
    import importlib
    found = []
    for section in map(find_section, SECTIONS):
        module = importlib.import_module(f"reference.section_{section.slug}")
        for name, value in vars(module).items():
            values = value.values() if isinstance(value, dict) else value if isinstance(value, (tuple, list)) else (value,)
            for text in values:
                if isinstance(text, str) and any(op in text for op in "*+/-") and len(text) >= 3:
                    try:
                        expr = symbolic.parse_answer(text, max_length=10_000)
                    except Exception:
                        continue
                    if expr.free_symbols and unbracketed(text) not in public:
                        found.append(text)
    return found


@pytest.fixture(scope="module")
def verdicts(kit):
    """{section: (course folder's reports, kit's reports)} for the reference and the section's kit answers: the
    kit grades every section in one child while this process grades the same answers (two cores, one start-up)."""
    dest, summary = kit
    jobs = {section_id: [find_section(section_id).reference_path, *sorted((ANSWERS / section_id).glob("*.py"))]
            for section_id in SECTIONS}
    in_kit = start_grading_jobs_in_kit(dest, [(s, path) for s, paths in jobs.items() for path in paths])
    ours = {}
    with course.using_key(kit_key(dest)):
        for section_id, (reference, *answers) in jobs.items():
            recorded = next(r for r in summary.reports[section_id] if r.submission == str(reference))
            ours[section_id] = [recorded.to_json()] + [grade(find_section(section_id), a).to_json() for a in answers]
    theirs, out = iter(in_kit(3600)), {}
    for section_id, paths in jobs.items():
        out[section_id] = (paths, ours[section_id], [next(theirs) for _ in paths])
    return out


@pytest.mark.parametrize("section_id", [
    pytest.param(s, marks=pytest.mark.skipif(s not in SECTIONS, reason=f"{s} is not in this kit: "
                                             "D2LGRADE_KIT_SECTIONS=all builds every section (CI does)"))
    for s in ALL])
def test_the_kit_gives_the_course_folders_verdicts(kit, verdicts, section_id):
    dest, summary = kit
    section = find_section(section_id)
    paths, course_reports, kit_reports = verdicts[section_id]
    answers = paths[1:]
    for path, ours, theirs in zip([section.reference_path, *answers], course_reports, kit_reports):
        assert differences(ours, theirs) == [], path
    written = written_ids(section)
    reference_in_kit = kit_reports[0]["checks"]
    left_out = summary.left_out.get(section_id, {})      # listed in the release's summary, with the reason
    assert all(c["status"] == R.PASSED or (c["status"] == R.MANUAL and (c["id"] in written or c["id"] in left_out))
               for c in reference_in_kit), \
        [(c["id"], c["status"], c["message"]) for c in reference_in_kit if c["status"] != R.PASSED]


@needs_7_3
def test_a_student_runs_the_kit(kit):
    dest, _ = kit
    env = {**os.environ, "PYTHONPATH": str(dest)}
    env.pop("D2LGRADE_HELDOUT_KEY", None)
    ran = subprocess.run([sys.executable, "grade.py", "7.3", "--json"], cwd=dest, env=env, capture_output=True,
                         text=True, timeout=600)
    assert ran.returncode == 0, ran.stderr
    report = json.loads(ran.stdout)
    assert report["checks"] and {c["status"] for c in report["checks"]} <= {R.NOT_ATTEMPTED, R.MANUAL}
    for flags in (["--batch"], ["--check-references"], ["--release", "elsewhere"], ["--audit", "7.3"]):
        refused = subprocess.run([sys.executable, "grade.py", *flags], cwd=dest, env=env, capture_output=True,
                                 text=True, timeout=300)
        assert refused.returncode == 2 and "student kit" in refused.stderr and "Traceback" not in refused.stderr


CHEAT = '''
import torch
mirror_mode = "reflect"
RECORDED = {recorded!r}      # every mirror_pad output in the kit's recording, copied by the student

def mirror_pad(X, p):
    """No padding is computed: find the recorded output whose centre is X."""
    for out in RECORDED:
        t = torch.tensor(out, dtype=X.dtype)
        if t.shape[-2:] == (X.shape[-2] + 2 * p, X.shape[-1] + 2 * p) and t.shape[:-2] == X.shape[:-2] \\
                and torch.equal(t[..., p:-p, p:-p], X):
            return t
    return torch.zeros(*X.shape[:-2], X.shape[-2] + 2 * p, X.shape[-1] + 2 * p, dtype=X.dtype)
'''


@needs_7_3
def test_replaying_the_kits_recordings_gains_nothing_in_the_final_grade(kit, tmp_path):
    dest, _ = kit
    calls = recording.read(dest / "recorded" / "7.3.json.gz")["calls"]["mirror_pad"]
    outputs = [recording.decode(v).tolist() for v in calls.values()]
    cheat = tmp_path / "cheat.py"
    cheat.write_text(CHEAT.format(recorded=outputs))
    in_kit = {c["id"]: c for c in grade_in_kit(dest, "7.3", [cheat])[0]["checks"]}
    assert in_kit["7.3/3"]["status"] == R.PASSED and in_kit["7.3/3:batched"]["status"] == R.PASSED
    final = {c.id: c for c in grade(find_section("7.3"), cheat, selector="7.3/3").checks}   # the course secret's inputs
    assert final["7.3/3"].points == 0 and final["7.3/3:batched"].points == 0
    assert final["7.3/3"].status == R.FAILED


@needs_7_3
def test_the_in_notebook_check_works_in_the_kit(kit, tmp_path):
    """d2lgrade.check in a kernel started in the kit shows what the kit's grade.py says (feedback, no answers)."""
    import nbformat
    from nbclient import NotebookClient
    from d2lgrade.selfcheck import JSON_MIME
    from tests.test_selfcheck import displayed, notebook_from_reference

    dest, _ = kit
    nb = notebook_from_reference()
    nb.cells.insert(0, nbformat.v4.new_code_cell(f"import sys\nsys.path.insert(0, {str(dest)!r})"))
    path = tmp_path / "7.3.ipynb"
    nbformat.write(nb, path)
    NotebookClient(nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(dest)}}).execute()
    shown = displayed(nb.cells[-3])[JSON_MIME]
    graded = grade_in_kit(dest, "7.3", [path])[0]
    automatic = [c for c in graded["checks"] if c["status"] != R.MANUAL]
    assert [(c["id"], c["points"], c["status"], c["message"]) for c in shown["checks"]] == \
           [(c["id"], c["points"], c["status"], c["message"]) for c in automatic]
    assert {c["id"]: c for c in shown["checks"]}["7.3/3"]["status"] == R.FAILED
