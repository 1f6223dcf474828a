"""The grader's version of a section: a hash of everything that decides its verdicts.

That is the spec (exercises/<s>.toml), the grader module and the grader/probe/reference modules it
imports (found from its import statements, transitively), the reference solution, and the course secret
(hashed: it draws every check's inputs). A gradebook row graded under another version is graded again.
"""
from __future__ import annotations

import ast
import hashlib
import re
from functools import lru_cache
from pathlib import Path

from d2lgrade.core.sections import ROOT, Section

# Project packages whose source decides verdicts; d2lgrade itself is versioned by the package.
TRACKED = ("graders", "reference")
SECTION = re.compile(r"^\d+\.\d+$")


@lru_cache(maxsize=None)
def installed_version(distribution: str) -> str:
    """An installed package's version ("none" where it is missing): part of a cache key when what is kept comes
    from that package (d2l's reference code, scikit-learn's bundled data)."""
    from importlib import metadata
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return "none"


def grader_version(section: Section) -> str:
    return _version(section.id)


@lru_cache(maxsize=None)
def _version(section_id: str) -> str:
    section = Section(section_id)
    files = [section.spec_path, section.reference_path, *sorted(_module_closure(f"graders.section_{section.slug}"))]
    digest = hashlib.sha256()
    for path in dict.fromkeys(files):           # ordered, each file once
        digest.update(str(path.relative_to(ROOT)).encode() + b"\0" + path.read_bytes() + b"\0")
    from d2lgrade.core.course import held_out_key
    digest.update(b"key\0" + hashlib.sha256(held_out_key()).digest())
    return digest.hexdigest()[:16]


def _module_closure(module: str) -> set[Path]:
    seen: set[Path] = set()
    todo = [module]
    while todo:
        path = _module_path(todo.pop())
        if path is None or path in seen:
            continue
        seen.add(path)
        todo.extend(_imports(path))
    return seen


def _module_path(module: str) -> Path | None:
    if module.split(".")[0] not in TRACKED:
        return None
    base = ROOT.joinpath(*module.split("."))
    for path in (base.with_suffix(".py"), base / "__init__.py"):
        if path.is_file():
            return path
    return None


def _imports(path: Path) -> list[str]:
    names = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            # `from graders.probes import section_7_6` names a module; `from x import name` a name.
            names += [node.module] + [f"{node.module}.{a.name}" for a in node.names]
        elif _seam_call(node):
            # `ref = reference("8.4")` (d2lgrade/values/expected.py) reads reference/section_8_4.py without importing it
            names.append("reference.section_" + node.args[0].value.replace(".", "_"))
    return names


def _seam_call(node: ast.AST) -> bool:
    return (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and "reference" in node.func.id
            and len(node.args) == 1 and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str) and SECTION.match(node.args[0].value) is not None)
