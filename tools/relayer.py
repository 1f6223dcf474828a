"""Move d2lgrade's modules into folders that follow the layers, and rewrite everything that names them.

    python tools/relayer.py            # from anywhere inside the checkout; prints what it changed
    python tools/relayer.py --check    # changes nothing; exits 1 if something still names an old place

Idempotent, so it can run again after other branches are merged: a module still at its old place is
`git mv`ed; every import, dotted name and path that names an old place is rewritten, in every text file git
knows (tracked, or untracked and not ignored); everything else stays byte-identical. Left alone: this script,
whose table below is written in the old names, and its test.
"""
from __future__ import annotations

import argparse
import ast
import re
import subprocess
import sys
from pathlib import Path

# old module -> new module. The folders, bottom to top: inside, core, load, numerics, values, run, compare,
# pipeline, report, batch/audit/release, and the entry points at the top level (docs/DEVELOPING.md).
MOVES = {
    **{f"d2lgrade.{name}": f"d2lgrade.core.{name}" for name in (
        "errors", "results", "course", "checks", "spec", "sections", "feedback", "recording", "data")},
    "d2lgrade.batch.version": "d2lgrade.core.version",     # expected_cache needs it, and batch sits above
    "d2lgrade.pinned": "d2lgrade.numerics.pinned",
    "d2lgrade.expected": "d2lgrade.values.expected",
    "d2lgrade.expected_cache": "d2lgrade.values.expected_cache",
    "d2lgrade.grading": "d2lgrade.pipeline.grading",
    "d2lgrade.probe": "d2lgrade.pipeline.probe",
    "d2lgrade.dependencies": "d2lgrade.pipeline.dependencies",
}
NEW_PACKAGES = {
    "d2lgrade.core": '"""What every layer shares: results, checks and specs, sections, the course key and data, '
                     'feedback levels,\nthe recording format, grader versions. Imports nothing of d2lgrade '
                     'but d2lgrade.inside."""\n',
    "d2lgrade.values": '"""Expected values: the reference\'s outputs, computed once, recorded, cached."""\n',
    "d2lgrade.pipeline": '"""Grading one submission: load it, run it, probe it, compare, score (grading.grade)."""\n',
}
TEXT_SUFFIXES = {".py", ".md", ".toml", ".txt", ".j2", ".sh", ".cfg", ".ini", ".json", ".ipynb", ".yml", ".yaml"}
TEXT_NAMES = {"run"}                  # .ci/run
SELF = {Path("tools/relayer.py"), Path("tests/test_relayer.py")}     # written in the old names on purpose
OLD_OF = {new: old for old, new in MOVES.items()}


def module_path(module: str) -> Path:
    return Path(*module.split(".")).with_suffix(".py")


def _names(modules) -> str:
    return "|".join(sorted((re.escape(m.removeprefix("d2lgrade.")) for m in modules), key=len, reverse=True))


# `d2lgrade.expected` (code, monkeypatch strings, docs) and `d2lgrade/expected.py`, `d2lgrade/pinned`,
# `d2lgrade/expected.RecordedFormula` (paths in strings and docs).
DOTTED = re.compile(rf"(?<![\w.])d2lgrade\.({_names(MOVES)})(?![\w])")
PATHS = re.compile(rf"(?<![\w/.])d2lgrade/({_names(MOVES).replace(chr(92) + '.', '/')})(?![\w/])")
# batch/version.py named from inside d2lgrade (batch/cluster.py's docstring)
SHORT_PATHS = {re.compile(r"(?<![\w/.])batch/version\.py\b"): "core/version.py"}


def rewrite_names(text: str) -> str:
    text = DOTTED.sub(lambda m: MOVES["d2lgrade." + m.group(1)], text)
    text = PATHS.sub(lambda m: MOVES["d2lgrade." + m.group(1).replace("/", ".")].replace(".", "/"), text)
    for pattern, new in SHORT_PATHS.items():
        text = pattern.sub(new, text)
    return text


# ------------------------------------------------------------------------------------------------
# Imports
# ------------------------------------------------------------------------------------------------

def module_of(path: Path) -> str:
    parts = path.with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def package_of(path: Path) -> str:
    return module_of(path) if path.name == "__init__.py" else module_of(path).rpartition(".")[0]


def exists(root: Path, module: str) -> bool:
    base = root.joinpath(*module.split("."))
    return base.with_suffix(".py").is_file() or (base / "__init__.py").is_file()


def resolve(package: str, level: int, module: str | None) -> str:
    parts = package.split(".")
    parts = parts[:len(parts) - level + 1]
    return ".".join(parts + ([module] if module else []))


def relative(package: str, target: str) -> tuple[int, str]:
    """(level, module) of `from <dots><module> import` naming `target` from inside `package`."""
    p, t = package.split("."), target.split(".")
    common = 0
    while common < min(len(p), len(t)) and p[common] == t[common]:
        common += 1
    return len(p) - common + 1, ".".join(t[common:])


def new_name(module: str) -> str:
    """The module's name after the moves (a submodule of a moved module moves with it)."""
    for old, new in MOVES.items():
        if module == old or module.startswith(old + "."):
            return new + module[len(old):]
    return module


def _alias(a: ast.alias) -> str:
    return a.name if a.asname is None else f"{a.name} as {a.asname}"


def import_groups(base: str, aliases: list[ast.alias]) -> list[tuple[str, list[ast.alias]]]:
    """[(module to import from, its names)] after the moves, in the statement's order."""
    groups: dict[str, list[ast.alias]] = {}
    for a in aliases:
        full = f"{base}.{a.name}"
        if a.name != "*" and new_name(full) != full:
            where = new_name(full).rpartition(".")[0]
        else:
            where = new_name(base)
        groups.setdefault(where, []).append(a)
    return list(groups.items())


def plausible(base: str, aliases: list[ast.alias], root: Path) -> bool:
    """Does `from <base> import <aliases>` name what is there now (after the moves)?"""
    if not exists(root, base):
        return False
    init = root.joinpath(*base.split(".")) / "__init__.py"
    if not init.is_file():
        return True                    # a module: the names are its attributes
    text = init.read_text(encoding="utf-8")
    return all(a.name == "*" or exists(root, f"{base}.{a.name}") or re.search(rf"\b{re.escape(a.name)}\b", text)
               for a in aliases)


def rewrite_imports(text: str, path: Path, old_path: Path | None, root: Path) -> str:
    """Every `from X import ...` whose X or names moved, absolute and relative. `old_path`: where this file was
    written (its relative imports count from there) when it differs from where it is."""
    try:
        tree = ast.parse(text)
    except SyntaxError:
        print(f"relayer: {path} does not parse; its imports are left as they are", file=sys.stderr)
        return text
    lines = re.findall(r"[^\r\n]*(?:\r\n|\r|\n)|[^\r\n]+$", text)     # the lines ast counts
    starts = [0]
    for line in lines:
        starts.append(starts[-1] + len(line))

    def offset(lineno: int, col: int) -> int:       # ast columns count UTF-8 bytes
        return starts[lineno - 1] + len(lines[lineno - 1].encode("utf-8")[:col].decode("utf-8"))

    here = package_of(path)
    edits = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.ImportFrom):
            continue
        if node.level:
            # A file moved by this run counts from where it was; one moved earlier, from where it is, unless
            # an import only makes sense from its old place (a merge brought an edit of the old file).
            contexts = [package_of(old_path)] if old_path else [here]
            written_at = OLD_OF.get(module_of(path))
            if not old_path and written_at:
                contexts.append(package_of(module_path(written_at)))
            bases = [resolve(c, node.level, node.module) for c in contexts]
            base = next((b for b in bases if plausible(new_name(b), node.names, root) or
                         any(new_name(f"{b}.{a.name}") != f"{b}.{a.name}" for a in node.names)), bases[0])
        else:
            base = node.module or ""
            if new_name(base) != base:
                continue                # the dotted-name rewrite renames `from d2lgrade.expected import x`
        groups = import_groups(base, node.names)
        start, end = offset(node.lineno, node.col_offset), offset(node.end_lineno, node.end_col_offset)
        original = text[start:end]
        statements = []
        for where, names in groups:
            if node.level:
                level, module = relative(here, where)
                head = "from " + "." * level + module + " import "
            else:
                head = f"from {where} import "
            statements.append((head, names))
        if len(statements) == 1:
            head = statements[0][0]
            old_head = re.match(r"from\s+[.\w\s]*?\s*import\s+", original)
            if re.sub(r"\s+", " ", old_head.group(0)).strip() == head.strip():
                continue
            edits.append((start, start + old_head.end(), head))
            continue
        if "#" in original:
            print(f"relayer: {path}:{node.lineno}: a comment inside a split import is dropped", file=sys.stderr)
        line_start = starts[node.lineno - 1]
        indent = text[line_start:start]
        newline = re.search(r"\r\n|\r|\n|$", lines[node.end_lineno - 1]).group(0) or "\n"
        joiner = newline + indent if not indent.strip() else "; "
        edits.append((start, end, joiner.join(head + ", ".join(_alias(a) for a in names) for head, names in statements)))
    for start, end, new in sorted(edits, reverse=True):
        text = text[:start] + new + text[end:]
    return text


def fix_file_depth(text: str, delta: int) -> str:
    """A moved module's `Path(__file__)...parents[n]` still names the folder it meant."""
    if not delta:
        return text
    file = r"(Path\(__file__\)(?:\.resolve\(\))?)"
    text = re.sub(file + r"\.parents\[(\d+)\]", lambda m: f"{m.group(1)}.parents[{int(m.group(2)) + delta}]", text)
    return re.sub(file + r"\.parent(?![\w\[s])", lambda m: f"{m.group(1)}.parents[{delta}]", text)


def add_packages(text: str) -> str:
    """pyproject.toml's [tool.setuptools] packages list names the new packages."""
    def add(match: re.Match) -> str:
        listed = match.group(1)
        missing = [p for p in NEW_PACKAGES if f'"{p}"' not in listed]
        if not missing:
            return match.group(0)
        return match.group(0).replace('"d2lgrade", ', '"d2lgrade", ' + "".join(f'"{p}", ' for p in missing), 1)
    return re.sub(r"^packages = \[(.*)\]$", add, text, flags=re.M)


# ------------------------------------------------------------------------------------------------
# The run
# ------------------------------------------------------------------------------------------------

def git(root: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=root, check=True, capture_output=True, text=True).stdout


def text_files(root: Path) -> list[Path]:
    listed = git(root, "ls-files", "-z", "--cached", "--others", "--exclude-standard").split("\0")
    return sorted({Path(p) for p in listed if p and (Path(p).suffix in TEXT_SUFFIXES or Path(p).name in TEXT_NAMES)
                   and (root / p).is_file() and Path(p) not in SELF})


def move_files(root: Path, dry: bool) -> dict[Path, Path]:
    """git mv every module still at its old place; {new path: old path} of those moved."""
    moved = {}
    for package, doc in NEW_PACKAGES.items():
        init = root / module_path(package).with_suffix("") / "__init__.py"
        if not init.exists():
            print(f"create {init.relative_to(root)}")
            if not dry:
                init.parent.mkdir(parents=True, exist_ok=True)
                init.write_text(doc, encoding="utf-8")
                git(root, "add", str(init.relative_to(root)))
    for old, new in MOVES.items():
        src, dst = module_path(old), module_path(new)
        if not (root / src).exists():
            continue
        if (root / dst).exists():
            raise SystemExit(f"relayer: both {src} and {dst} exist; merge them by hand, then run again")
        print(f"git mv {src} {dst}")
        if not dry:
            (root / dst).parent.mkdir(parents=True, exist_ok=True)
            git(root, "mv", str(src), str(dst))
        moved[dst] = src
    return moved


def rewrite(root: Path, path: Path, old_path: Path | None) -> str:
    """The file's new text, or "" when nothing in it changes (or it is not UTF-8 text)."""
    try:
        text = (root / (old_path if old_path and not (root / path).exists() else path)).read_bytes().decode("utf-8")
    except UnicodeDecodeError:
        return ""
    new = text
    if path.suffix == ".py":
        new = rewrite_imports(new, path, old_path, root)
        if old_path:
            new = fix_file_depth(new, len(path.parts) - len(old_path.parts))
    new = rewrite_names(new)
    if path.name == "pyproject.toml":
        new = add_packages(new)
    return new if new != text else ""


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true", help="change nothing; exit 1 if anything is left to do")
    args = ap.parse_args(argv)
    root = Path(git(Path.cwd(), "rev-parse", "--show-toplevel").strip())
    moved = move_files(root, args.check)
    files = set(text_files(root)) | set(moved)
    if args.check:
        files = {f for f in files if f not in moved.values()} | set(moved)
    changed = []
    for path in sorted(files):
        new = rewrite(root, path, moved.get(path))
        if new:
            changed.append(path)
            if not args.check:
                (root / path).write_bytes(new.encode("utf-8"))
    for path in changed:
        print(f"{'would rewrite' if args.check else 'rewrote'} {path}")
    if args.check:
        return 1 if moved or changed else 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
