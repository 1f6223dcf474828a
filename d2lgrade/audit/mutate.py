"""Mutants of one exercise's code: the operators of `operators.py` applied one site at a time.

Mutants are made by copying the tree, finding the k-th site again in the copy and replacing it, so
operators never share state. Formula answers (strings that parse as expressions) are mutated as
expressions. No third-party mutation library fits here: mutmut and cosmic-ray mutate files on disk and
run a test command per mutant, whereas the audit needs mutated *cell sources* graded inside a warm runtime.
"""
from __future__ import annotations

import ast
import copy
import difflib
from dataclasses import dataclass
from typing import Iterator

from d2lgrade.audit.operators import CODE_OPERATORS, FORMULA_OPERATORS, is_docstring


@dataclass
class Mutant:
    operator: str
    source: str
    diff: str



# -- applying them -----------------------------------------------------------------------------------
def _replace(tree: ast.AST, target: ast.AST, new: ast.AST | None) -> None:
    for parent in ast.walk(tree):
        for field, value in ast.iter_fields(parent):
            if isinstance(value, list) and target in value:
                i = value.index(target)
                if new is None:
                    del value[i]
                else:
                    value[i] = new
                return
            if value is target:
                setattr(parent, field, new)
                return
    raise LookupError("site not found")


def _mutable_roots(tree: ast.Module) -> list[ast.AST]:
    """The exercise's own definitions: top-level functions, classes and assignments whose names are
    public. Private names (`_symmetric_pad`) are grader-side values of a reference, not the answer."""
    roots = []
    for stmt in tree.body:
        if isinstance(stmt, (ast.FunctionDef, ast.ClassDef)) and not stmt.name.startswith("_"):
            roots.append(stmt)
        elif isinstance(stmt, (ast.Assign, ast.AnnAssign)):
            targets = stmt.targets if isinstance(stmt, ast.Assign) else [stmt.target]
            if all(isinstance(t, ast.Name) and not t.id.startswith("_") for t in targets):
                roots.append(stmt)
    return roots


def _formula_strings(root: ast.AST, parents: dict, symbolic: bool = False) -> list[ast.Constant]:
    """String constants that parse as an arithmetic expression with a name in it: formula answers. In a
    symbolic exercise a lone name ("b") is a formula too; elsewhere it is a word ("reflect")."""
    out = []
    for node in ast.walk(root):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and not is_docstring(node, parents):
            try:
                expr = ast.parse(node.value.strip(), mode="eval").body
            except (SyntaxError, ValueError):
                continue
            if (symbolic and isinstance(expr, ast.Name)) or \
                    (not isinstance(expr, (ast.Name, ast.Constant, ast.Attribute)) and
                     any(isinstance(n, ast.Name) for n in ast.walk(expr))):
                out.append(node)
    return out


def _parents(tree: ast.AST) -> dict:
    return {child: parent for parent in ast.walk(tree) for child in ast.iter_child_nodes(parent)}


def _formula_mutants(text: str) -> Iterator[tuple[str, str]]:
    tree = ast.parse(text.strip(), mode="eval")
    whole = tree.body                  # the whole formula off by one or by a factor of 2 (a lone name too)
    yield "factor-2", ast.unparse(ast.BinOp(ast.Constant(2), ast.Mult(), whole))
    yield "constant", ast.unparse(ast.BinOp(whole, ast.Add(), ast.Constant(1)))
    for op in FORMULA_OPERATORS:
        for k in range(len(op.sites(tree))):
            for j in range(len(op.mutate(copy.deepcopy(op.sites(copy.deepcopy(tree))[k])))):
                copied = copy.deepcopy(tree)
                site = op.sites(copied)[k]
                new = op.mutate(site)[j]
                if new is site:
                    yield op.name, ast.unparse(copied)
                    continue
                if site is copied.body:
                    copied.body = new
                else:
                    _replace(copied, site, new)
                yield op.name, ast.unparse(copied)


def _inline_fstrings(tree: ast.Module, known: dict[str, str] | None = None) -> dict[str, str]:
    """f"c_o*{_h_o}" built from string constants (of this source, or `known` from earlier cells) becomes
    the one string it is, and so does a plain alias of one (`backward_memory = forward_memory`), so the
    formula operators see the whole formula (the private pieces are never mutated on their own)."""
    known = dict(known or {})
    for stmt in tree.body:
        if isinstance(stmt, ast.Assign) and isinstance(stmt.value, ast.Name) and stmt.value.id in known:
            stmt.value = ast.Constant(known[stmt.value.id])
        if isinstance(stmt, ast.Assign) and len(stmt.targets) == 1 and isinstance(stmt.targets[0], ast.Name):
            for node in ast.walk(stmt.value):
                if isinstance(node, ast.JoinedStr) and all(
                        isinstance(v, ast.Constant) or (isinstance(v, ast.FormattedValue) and isinstance(v.value, ast.Name)
                                                        and v.value.id in known and v.conversion == -1 and v.format_spec is None)
                        for v in node.values):
                    text = "".join(v.value if isinstance(v, ast.Constant) else known[v.value.id] for v in node.values)
                    _replace(stmt, node, ast.Constant(text)) if node is not stmt.value else setattr(stmt, "value", ast.Constant(text))
            if isinstance(stmt.value, ast.Constant) and isinstance(stmt.value.value, str):
                known[stmt.targets[0].id] = stmt.value.value
    return known


def mutants(source: str, operators=CODE_OPERATORS, *, symbolic: bool = False, context: str = "") -> Iterator[Mutant]:
    """Every mutant of `source` (one exercise's code cells), unique by its text, that still compiles.
    `symbolic`: the exercise asks for formulas (its spec's kind), so a lone name in a string is one.
    `context`: the code that runs before it (earlier cells), whose string constants formulas may use."""
    tree = ast.parse(source)
    try:
        known = _inline_fstrings(ast.parse(context)) if context else {}
    except SyntaxError:
        known = {}
    _inline_fstrings(tree, known)
    original = ast.unparse(tree) + "\n"      # a final newline keeps the diff's last line apart
    seen = {original}

    def emit(operator: str, mutated: ast.Module):
        ast.fix_missing_locations(mutated)
        try:
            text = ast.unparse(mutated) + "\n"
            compile(text, "<mutant>", "exec")
        except (SyntaxError, ValueError, TypeError, RecursionError):
            return None                 # discarded: a mutant that does not compile says nothing
        if text in seen:
            return None
        seen.add(text)
        diff = "".join(difflib.unified_diff(original.splitlines(True), text.splitlines(True), "reference", "mutant", n=0))
        return Mutant(operator, text, "\n".join(l for l in diff.splitlines() if not l.startswith(("---", "+++"))))

    def sites_of(op, t):
        roots = _mutable_roots(t)
        return [s for r in roots for s in op.sites(r)]

    for op in operators:
        for k, site in enumerate(sites_of(op, tree)):
            if is_docstring(site, _parents(tree)):
                continue
            for j in range(len(op.mutate(copy.deepcopy(site)))):
                copied = copy.deepcopy(tree)
                target = sites_of(op, copied)[k]
                new = op.mutate(target)[j]
                if new is not target:
                    _replace(copied, target, new)
                found = emit(op.name, copied)
                if found:
                    yield found
    # formula answers: the strings are mutated as expressions, judged by the formula checks
    parents = _parents(tree)
    for k, node in enumerate(n for r in _mutable_roots(tree) for n in _formula_strings(r, parents, symbolic)):
        for name, text in _formula_mutants(node.value):
            copied = copy.deepcopy(tree)
            cparents = _parents(copied)
            target = [n for r in _mutable_roots(copied) for n in _formula_strings(r, cparents, symbolic)][k]
            target.value = text
            found = emit("formula-" + name, copied)
            if found:
                yield found
