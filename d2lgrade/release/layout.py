"""What a student kit holds, copied from the course folder and cleaned of what students must not see.

Copied: grade.py, setup.sh, pyproject.toml (without the `reference` package), the d2lgrade package, the
graders (without hidden checks), the starters and specs (without the written answers' rubrics).
Never copied: reference/, submissions/, tests/, bench/, docs/, the course key, caches, reports, and the
mutation audit beyond its command-line flags (it mutates the references, and its exercises' properties
state answers).
"""
from __future__ import annotations

import ast
import gzip
import re
import shutil
from pathlib import Path

FILES = ("grade.py", "setup.sh")
FOLDERS = ("d2lgrade", "graders")
SKIP = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info")
# Course-only modules inside copied folders: the kit keeps `--audit` known (so that it is refused with a
# sentence, cli.refuse_in_kit), not the audit itself.
AUDIT, AUDIT_KEPT = Path("d2lgrade") / "audit", ("__init__.py", "cli.py")
RUBRIC = re.compile(r"^rubric\s*=\s*\[.*?^\]\s*\n", re.S | re.M)
ONE_LINE_RUBRIC = re.compile(r"^rubric\s*=\s*\[[^\n]*\]\s*\n", re.M)


def copy_course(root: Path, dest: Path, sections: list[str]) -> None:
    for name in FILES:
        shutil.copy2(root / name, dest / name)
    for name in FOLDERS:
        shutil.copytree(root / name, dest / name, ignore=SKIP)
    for module in (dest / AUDIT).glob("*.py"):
        if module.name not in AUDIT_KEPT:
            module.unlink()
    (dest / "pyproject.toml").write_text(kit_pyproject((root / "pyproject.toml").read_text()))
    exercises = dest / "exercises"
    exercises.mkdir()
    for section in sections:
        for suffix in (".ipynb", ".py"):
            starter = root / "exercises" / f"{section}{suffix}"
            if starter.exists():
                shutil.copy2(starter, exercises / starter.name)
        spec = (root / "exercises" / f"{section}.toml").read_text()
        (exercises / f"{section}.toml").write_text(without_rubrics(spec))
    for grader in (dest / "graders").glob("section_*.py"):
        if grader.stem.removeprefix("section_").replace("_", ".") not in sections:
            grader.unlink()
        else:
            grader.write_text(without_hidden_checks(grader.read_text()))


def kit_pyproject(text: str) -> str:
    return text.replace(', "reference"', "").replace('"reference", ', "")


def without_rubrics(spec: str) -> str:
    """A spec without the rubrics of its written answers (they are the instructor's answer key)."""
    return RUBRIC.sub("", ONE_LINE_RUBRIC.sub("", spec))


def without_hidden_checks(source: str) -> str:
    """A grader module without its `@check(..., hidden=True)` functions: their inputs stay with the course."""
    lines = source.splitlines(keepends=True)
    cut: list[tuple[int, int]] = []
    for node in ast.parse(source).body:
        if isinstance(node, ast.FunctionDef) and any(_is_hidden_check(d) for d in node.decorator_list):
            cut.append((min(d.lineno for d in node.decorator_list) - 1, node.end_lineno))
    for start, end in reversed(cut):
        del lines[start:end]
    return "".join(lines)


def hidden_checks(source: str) -> list[str]:
    return [node.name for node in ast.parse(source).body if isinstance(node, ast.FunctionDef)
            and any(_is_hidden_check(d) for d in node.decorator_list)]


def _is_hidden_check(decorator: ast.expr) -> bool:
    return (isinstance(decorator, ast.Call) and getattr(decorator.func, "id", "") == "check"
            and any(k.arg == "hidden" and isinstance(k.value, ast.Constant) and k.value.value for k in decorator.keywords))


def squash(text: str) -> str:
    """Without white space: a copied body is found whatever its indentation and line breaks."""
    return re.sub(r"\s+", "", text)


def reference_bodies(root: Path, min_chars: int = 60) -> dict[str, str]:
    """{"section_7_3.mirror_pad": body text} for every function and method in reference/: what must never be
    found in a kit. Bodies shorter than `min_chars` (a bare `return x`) say too little to be a leak, and the
    book's code that the starters already give (exercises/) is public."""
    found = {}
    public = "".join(squash(p.read_text()) for p in sorted((root / "exercises").glob("*.*")))   # the book's code
    for path in sorted((root / "reference").glob("section_*.py")):
        source = path.read_text()
        for node in ast.walk(ast.parse(source)):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                body = node.body[1:] if ast.get_docstring(node) and len(node.body) > 1 else node.body
                text = "\n".join(ast.get_source_segment(source, stmt) or "" for stmt in body).strip()
                if len(text) >= min_chars and squash(text) not in public:
                    found[f"{path.stem}.{node.name}"] = text
    return found


def kit_text(path: Path) -> str:
    """A kit file as text; recordings are read through their compression."""
    if path.name.endswith(".gz"):
        with gzip.open(path, "rt", encoding="utf-8", errors="replace") as file:
            return file.read()
    return path.read_text(errors="replace")


def leaks(dest: Path, bodies: dict[str, str]) -> list[str]:
    """Which reference bodies appear (whitespace aside) in any text file of the kit."""
    texts = [squash(kit_text(p)) for p in dest.rglob("*") if p.is_file()]
    return [name for name, body in bodies.items() if any(squash(body) in text for text in texts)]
