"""The package's import graph: no cycle, and nothing that runs inside the student runtime imports the package.

Every import counts, the ones inside functions too (they still tie two modules together). Run this file
with `python tests/test_layers.py` to print the folders from the top down, each above the folders it imports
(one folder a line: folders that import each other would share one, and the tests fail), with their modules
in the same order.
"""
from __future__ import annotations

import ast
import functools
import sys
from graphlib import CycleError, TopologicalSorter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("d2lgrade", "graders")
# What the project's own code is called: none of it can be imported where the student runtime runs.
PROJECT = ("d2lgrade", "graders", "reference")
# Loaded by path or sent as source text into the student runtime (or the sandbox launcher before it): a file
# there may use the standard library, torch and the files of its own folder, never the rest of the project.
# A sibling comes in as a plain module or by a relative import (the grader's view); probes, compiled as
# `__main__` after the probes they name, import each other by their full names, guarded (checked below).
RUNTIME_SIDE = {"d2lgrade/inside": (), "graders/probes": ("graders.probes",)}


@functools.cache       # read-only: the files do not change during a run
def modules() -> dict[str, Path]:
    found = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = path.relative_to(ROOT).with_suffix("").parts
            found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


def imported_names(name: str, path: Path, known: dict[str, Path], source: str | None = None) -> set[tuple[str, bool]]:
    """(dotted name, relative?) for every import anywhere in `name`'s file, relative imports made absolute
    (`from a import b` gives `a.b` where that is a module, else `a`)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    targets: set[tuple[str, bool]] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8") if source is None else source)):
        if isinstance(node, ast.Import):
            targets |= {(a.name, False) for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")[:len(package.split(".")) - node.level + 1]
                base = ".".join(parts + ([base] if base else []))
            targets |= {(f"{base}.{a.name}" if f"{base}.{a.name}" in known else base, bool(node.level))
                        for a in node.names}
    return targets


def imports(name: str, path: Path, known: dict[str, Path]) -> set[str]:
    """The package's modules that `name` imports anywhere in its file (a package counts as its __init__)."""
    out = set()
    for target, _ in imported_names(name, path, known):
        while target and target not in known:
            target = target.rpartition(".")[0]
        if target and target != name:
            out.add(target)
    return out


def outside_its_folder(name: str, path: Path, known: dict[str, Path], source: str | None = None) -> list[str]:
    """The project's modules that a runtime-side file imports other than as its folder's rule allows."""
    folder = name if path.name == "__init__.py" else name.rpartition(".")[0]
    allowed = RUNTIME_SIDE[path.parent.relative_to(ROOT).as_posix()]

    def sibling(target: str, relative: bool) -> bool:
        return (relative or target.startswith(allowed)) and (target == folder or target.startswith(folder + "."))
    return sorted(t for t, relative in imported_names(name, path, known, source)
                  if t.split(".")[0] in PROJECT and not sibling(t, relative))


@functools.cache
def graph() -> dict[str, set[str]]:
    known = modules()
    return {name: imports(name, path, known) for name, path in known.items()}


def components(edges: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components (Tarjan), each after every component it imports."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in sorted(edges.get(v, ())):
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
            found.append(sorted(component))

    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10_000))
    for v in sorted(edges):
        if v not in index:
            visit(v)
    return found


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    return [c for c in components(edges) if len(c) > 1]


def folders() -> dict[str, str]:
    """module -> the folder that holds it, as a path from the project's root."""
    return {name: path.parent.relative_to(ROOT).as_posix() for name, path in modules().items()}


def folder_graph(edges: dict[str, set[str]]) -> dict[str, set[str]]:
    folder_of = folders()
    out: dict[str, set[str]] = {}
    for name, targets in edges.items():
        here = folder_of[name]
        out.setdefault(here, set()).update(folder_of[t] for t in targets if folder_of[t] != here)
    return out


def layers(edges: dict[str, set[str]]) -> list[list[str]]:
    """The folders from the top down: each line imports only lines below it (folders that import each
    other share a line)."""
    return components(folder_graph(edges))[::-1]


def test_no_import_cycle():
    assert cycles(graph()) == []


def runtime_side_files() -> list[tuple[str, Path]]:
    return [(name, path) for name, path in modules().items()
            if path.parent.relative_to(ROOT).as_posix() in RUNTIME_SIDE]


def test_the_runtime_side_imports_nothing_from_the_package():
    """Runtime-side files may use the files of their own folder (a probe's source runs after the probes it
    names in PROBE_USES), nothing else of the project."""
    known = modules()
    files = runtime_side_files()
    assert {path.parent.relative_to(ROOT).as_posix() for _, path in files} == set(RUNTIME_SIDE)
    for name, path in files:
        outside = outside_its_folder(name, path, known)
        assert not outside, f"{path.relative_to(ROOT)} imports {outside}, which the student runtime cannot load"


def test_the_folder_rule_catches_an_import_of_the_package():
    known = modules()
    agent = ROOT / "d2lgrade" / "inside" / "agent.py"
    probe = ROOT / "graders" / "probes" / "layers.py"
    for source in ("from d2lgrade.run import wire", "import graders.architecture", "from reference import section_7_3",
                   "def f():\n    from .. import data", "from d2lgrade import inside"):
        assert outside_its_folder("d2lgrade.inside.agent", agent, known, source), source
    assert outside_its_folder("graders.probes.layers", probe, known, "from graders import architecture")
    for source in ("import isolation", "if __package__:\n    from .offline_datasets import install_data_patch",
                   "import torch"):
        assert not outside_its_folder("d2lgrade.inside.agent", agent, known, source), source
    assert not outside_its_folder("graders.probes.layers", probe, known, "from graders.probes import execution")


def test_the_layer_order_puts_each_folder_above_what_it_imports():
    edges = graph()
    order = layers(edges)
    line = {folder: i for i, group in enumerate(order) for folder in group}
    for folder, targets in folder_graph(edges).items():
        assert all(line[t] > line[folder] for t in targets if t not in order[line[folder]]), folder
    for folder in RUNTIME_SIDE:
        assert order[line[folder]] == [folder] and not folder_graph(edges)[folder], f"{folder} imports the package"
    assert line["d2lgrade/run"] < line["d2lgrade/inside"] and line["graders"] < line["graders/probes"]


# The folders, bottom to top (docs/DEVELOPING.md draws the picture). Folders on one line do not import each other.
ORDER = [["d2lgrade/inside"], ["d2lgrade/core"], ["d2lgrade/load"], ["d2lgrade/numerics"], ["d2lgrade/values"],
         ["d2lgrade/run"], ["d2lgrade/compare"], ["d2lgrade/pipeline"], ["d2lgrade/report"],
         ["d2lgrade/batch", "d2lgrade/audit", "d2lgrade/release"], ["d2lgrade"]]
APPLICATIONS = ("d2lgrade", "d2lgrade/batch", "d2lgrade/audit", "d2lgrade/release")


def below(folder: str, edges: dict[str, set[str]]) -> set[str]:
    """Every folder that `folder` reaches through imports."""
    graph = folder_graph(edges)
    seen: set[str] = set()
    todo = list(graph.get(folder, ()))
    while todo:
        here = todo.pop()
        if here not in seen:
            seen.add(here)
            todo.extend(graph.get(here, ()))
    return seen


def test_no_folder_cycle():
    """Each folder on a line of its own: no two folders of d2lgrade import each other, even through a third."""
    shared = [group for group in layers(graph()) if len(group) > 1]
    assert shared == [], f"these folders import each other: {shared}"


def test_each_d2lgrade_folder_imports_only_folders_below_it():
    rank = {folder: i for i, line in enumerate(ORDER) for folder in line}
    package = {f for f in folders().values() if f.split("/")[0] == "d2lgrade"}
    assert package == set(rank), f"folders not placed in ORDER: {sorted(package ^ set(rank))}"
    for folder, targets in folder_graph(graph()).items():
        if folder in rank:
            above = sorted(t for t in targets if t in rank and rank[t] >= rank[folder])
            assert not above, f"{folder} imports {above}, which is not below it"


def test_the_key_arrows():
    edges = graph()
    core = below("d2lgrade/core", edges)
    assert core <= {"d2lgrade/inside"}, f"d2lgrade/core imports {sorted(core)}"
    for folder in [f for line in ORDER[2:] for f in line]:
        assert "d2lgrade/core" in below(folder, edges), f"{folder} sits above d2lgrade/core but does not use it"
    pipeline = below("d2lgrade/pipeline", edges)
    assert {"d2lgrade/compare", "d2lgrade/run", "d2lgrade/values", "d2lgrade/core"} <= pipeline
    assert "d2lgrade/pipeline" not in below("d2lgrade/compare", edges) | below("d2lgrade/run", edges)
    apps = set(APPLICATIONS)
    for folder in folders().values():
        if folder.startswith("d2lgrade") and folder not in apps:
            assert not below(folder, edges) & apps, f"{folder} imports an application"
    assert {"d2lgrade/batch", "d2lgrade/audit", "d2lgrade/release", "d2lgrade/pipeline"} <= below("d2lgrade", edges)


def test_the_folder_rules_catch_an_arrow_upwards():
    edges = {name: set(targets) for name, targets in graph().items()}
    edges["d2lgrade.core.results"] = edges["d2lgrade.core.results"] | {"d2lgrade.pipeline.grading"}
    assert any(len(group) > 1 for group in layers(edges))
    assert "d2lgrade/pipeline" in below("d2lgrade/core", edges)


def test_the_in_notebook_check_does_not_load_the_command_line():
    """`d2lgrade.check()` runs in a student's notebook: what it shares with `grade.py` (the selector's check,
    the device's choice) lives below both, not in cli.py."""
    edges = graph()
    seen, todo = set(), ["d2lgrade"]
    while todo:
        for target in edges.get(todo.pop(), ()):
            if target not in seen:
                seen.add(target)
                todo.append(target)
    assert "d2lgrade.cli" not in seen and "d2lgrade.batch.cli" not in seen


def test_the_cycle_finder_finds_a_cycle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_probes_import_their_siblings_only_outside_the_runtime():
    """A probe's PROBE_USES run ahead of it in the runtime, where it is compiled as `__main__`
    (d2lgrade/inside/agent.py): its imports of them must sit under `if __name__ != "__main__":`, or the
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


def print_layers() -> None:
    edges = graph()
    try:
        modules_in_order = list(TopologicalSorter(edges).static_order())[::-1]
    except CycleError as exc:
        raise SystemExit(f"import cycle: {' -> '.join(exc.args[1])}")
    folder_of = folders()
    for group in layers(edges):
        shared = " (these folders import each other)" if len(group) > 1 else ""
        print(" + ".join(group) + shared)
        for folder in group:
            names = [m for m in modules_in_order if folder_of[m] == folder]
            print(f"    {folder}: {' '.join(n.rpartition('.')[2] for n in names)}")


if __name__ == "__main__":
    print_layers()
