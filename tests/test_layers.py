"""The package's import graph: no cycle, and nothing that runs inside the student runtime imports the package.

Every import counts, the ones inside functions too (they still tie two modules together). Run this file
with `python tests/test_layers.py` to print the order it enforces: each module after everything it imports.
"""
from __future__ import annotations

import ast
import sys
from graphlib import CycleError, TopologicalSorter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("d2lgrade", "graders")
# Loaded by path or sent as source text into the student runtime (or the sandbox launcher before it): they
# may use the standard library, torch and the files beside them, never the package, which the runtime cannot see.
RUNTIME_SIDE = ["d2lgrade/run/agent.py", "d2lgrade/run/sandbox.py", "d2lgrade/run/isolation.py",
                "d2lgrade/run/landlock_rules.py", "d2lgrade/run/cgroup_limits.py", "d2lgrade/run/offline_datasets.py",
                "d2lgrade/run/agent_source.py",
                "d2lgrade/run/forkserver.py", "d2lgrade/run/shell.py", "d2lgrade/run/frames.py",
                *sorted(str(p.relative_to(ROOT)) for p in (ROOT / "graders" / "probes").glob("*.py"))]


def modules() -> dict[str, Path]:
    found = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = path.relative_to(ROOT).with_suffix("").parts
            found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


def imports(name: str, path: Path, known: dict[str, Path]) -> set[str]:
    """The package's modules that `name` imports anywhere in its file (a package counts as its __init__)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    targets: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            targets |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")[:len(package.split(".")) - node.level + 1]
                base = ".".join(parts + ([base] if base else []))
            targets |= {f"{base}.{a.name}" if f"{base}.{a.name}" in known else base for a in node.names}
    out = set()
    for target in targets:
        while target and target not in known:
            target = target.rpartition(".")[0]
        if target and target != name:
            out.add(target)
    return out


def graph() -> dict[str, set[str]]:
    known = modules()
    return {name: imports(name, path, known) for name, path in known.items()}


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in edges.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10_000))
    for v in sorted(edges):
        if v not in index:
            visit(v)
    return found


def test_no_import_cycle():
    assert cycles(graph()) == []


def test_the_runtime_side_imports_nothing_from_the_package():
    """Runtime-side files may use each other (a probe's source runs after the probes it names in
    PROBE_USES), nothing else of the package."""
    known = modules()
    inside = {".".join(Path(rel).with_suffix("").parts) for rel in RUNTIME_SIDE}
    for rel in RUNTIME_SIDE:
        name = ".".join(Path(rel).with_suffix("").parts)
        outside = imports(name, ROOT / rel, known) - inside
        assert not outside, f"{rel} imports {sorted(outside)}, which the student runtime cannot load"


def test_the_cycle_finder_finds_a_cycle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


if __name__ == "__main__":
    try:
        order = list(TopologicalSorter(graph()).static_order())
    except CycleError as exc:
        raise SystemExit(f"import cycle: {' -> '.join(exc.args[1])}")
    print("\n".join(order))


def test_probes_import_their_siblings_only_outside_the_runtime():
    """A probe's PROBE_USES run ahead of it in the runtime, where it is compiled as `__main__`
    (d2lgrade/run/agent.py): its imports of them must sit under `if __name__ != "__main__":`, or the
    runtime, which cannot see the package, fails with "No module named 'graders'"."""
    for path in sorted((ROOT / "graders" / "probes").glob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        guarded = [node for node in tree.body if isinstance(node, ast.If) and ast.unparse(node.test) == "__name__ != '__main__'"]
        for node in tree.body:
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                names = [node.module or ""] if isinstance(node, ast.ImportFrom) else [a.name for a in node.names]
                assert not any(n.startswith(("graders", "d2lgrade")) for n in names), \
                    f"{path.name} imports {names} unguarded"
            elif isinstance(node, ast.If) and node not in guarded:
                inner = [n for n in ast.walk(node) if isinstance(n, (ast.Import, ast.ImportFrom))]
                assert not any((n.module or "").startswith("graders") for n in inner if isinstance(n, ast.ImportFrom)), \
                    f"{path.name} guards its sibling imports with `{ast.unparse(node.test)}`, not `__name__ != '__main__'`"
