"""Evidence that an "implement it yourself" answer does the work itself, taken in the grader's process.

The operator trace is recorded inside the student's process, where student code can switch it off,
so it is never the only evidence. This module reads the submitted source with `ast` (the student
cannot change what the grader parses):

- `scan_source` starts at the exercise's function or class, follows the helpers and module-level
  names it reaches, and reports library routines that do the exercise's work (forbidden: the check
  fails) and constructs whose effect the grader cannot read (a `getattr` with a built name, `eval`,
  `torch._C`, `torch.ops`, private `_` entry points, NumPy/SciPy routines the trace cannot see, names
  no cell defines: could not verify). Anywhere in the submission it also reports what tampers with
  the trace or the library (the agent module, dispatch modes, `sys.modules`, library attributes
  replaced by assignment).
- The rules it applies live in `implementation_rules.py`; `trace_judge.py` judges the trace.
"""
from __future__ import annotations

import ast
import builtins
import re
from dataclasses import dataclass, field

from d2lgrade.compare.implementation_rules import Rules

FORBIDDEN, UNVERIFIABLE = "forbidden", "unverifiable"

# -- what the static scan distrusts ---------------------------------------------------------------------
DYNAMIC_CALLS = {"eval": "eval()", "exec": "exec()", "compile": "compile()", "__import__": "__import__()",
                 "globals": "globals()", "locals": "locals()", "vars": "vars()", "breakpoint": "breakpoint()"}
NAME_LOOKUPS = {"getattr", "setattr", "delattr"}
REBINDING = {"eval", "exec", "compile", "__import__", "globals", "vars"}     # distrusted anywhere in a submission
OPAQUE_MODULES = ("importlib", "ctypes", "gc", "inspect", "operator.attrgetter", "operator.methodcaller", "sys.modules",
                  "sys._getframe", "builtins", "marshal", "pickle", "types.FunctionType", "types.CodeType",
                  "torch.ops", "torch.library", "torch.utils.cpp_extension", "torch.jit", "torch.compile", "torch.fx",
                  "torch.func", "torch.export", "functorch")
ARRAY_LIBRARIES = ("numpy", "scipy", "cupy", "jax", "tensorflow", "numba", "cv2", "skimage", "PIL", "math.fsum")
# NumPy calls that only build or reshape arrays: the arithmetic then still happens in the student's code.
NUMPY_PLAIN = {"array", "asarray", "zeros", "ones", "empty", "zeros_like", "ones_like", "empty_like", "full", "arange",
               "float32", "float64", "int64", "ndarray", "shape", "reshape", "newaxis", "flip", "pad"}
HARMLESS_PRIVATE = {"_pair", "_single", "_triple", "_ntuple", "_reverse_repeat_tuple"}   # torch's tuple helpers
HARMLESS_DUNDERS = {"__init__", "__call__", "__name__", "__class__", "__len__", "__getitem__", "__doc__", "__module__",
                    "__qualname__", "__repr__", "__str__", "__iter__", "__next__", "__enter__", "__exit__"}
# Anywhere in the submission, these reach into the recording or replace what it observes.
TAMPERING = re.compile(r"_d2lgrade|_python_dispatch|TorchDispatchMode|TorchFunctionMode|_disable_current_modes|"
                       r"_pop_mode|_push_mode|_set_dispatch_mode|DispatchKey|_dispatch_tls|_ExcludeDispatchKeyGuard|"
                       r"_DisableTorchDispatch|__torch_dispatch__|__torch_function__|sys\.modules|settrace|setprofile")
LIBRARY_ROOTS = ("torch", "numpy", "scipy", "builtins", "math", "operator", "functools", "sys")


@dataclass(frozen=True)
class Finding:
    kind: str           # FORBIDDEN | UNVERIFIABLE
    what: str           # "F.conv2d (cell 3, line 4)"

    def __str__(self):
        return self.what


@dataclass
class Scan:
    findings: list[Finding] = field(default_factory=list)
    reached: list[str] = field(default_factory=list)      # the definitions the entry points reach

    @property
    def forbidden(self) -> list[Finding]:
        return [f for f in self.findings if f.kind == FORBIDDEN]

    @property
    def unverifiable(self) -> list[Finding]:
        return [f for f in self.findings if f.kind == UNVERIFIABLE]


# -- the submitted source ---------------------------------------------------------------------------------
@dataclass
class _Module:
    """Module-level bindings of all the code cells, in order: what a name may refer to at call time."""
    bindings: dict[str, list[ast.AST]] = field(default_factory=dict)
    aliases: dict[str, str] = field(default_factory=dict)       # local name -> dotted library name
    where: dict[int, str] = field(default_factory=dict)         # id(node) -> "cell 3, line 4"
    trees: list[tuple[str, ast.Module]] = field(default_factory=list)
    unparsed: list[tuple[str, str]] = field(default_factory=list)     # (label, source) ast cannot read


def _module(sources: list[tuple[str, str]]) -> _Module:
    module = _Module()
    for label, source in sources:
        try:
            tree = ast.parse(_without_magics(source))
        except (SyntaxError, ValueError):
            module.unparsed.append((label, source))
            continue
        _mark_calls(tree)
        module.trees.append((label, tree))
        for node in ast.walk(tree):
            if hasattr(node, "lineno"):
                module.where[id(node)] = f"{label}, line {node.lineno}" if label else f"line {node.lineno}"
            if isinstance(node, ast.Import):
                for alias in node.names:
                    local = alias.asname or alias.name.split(".")[0]
                    module.aliases[local] = alias.name if alias.asname else alias.name.split(".")[0]
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                for alias in node.names:
                    module.aliases[alias.asname or alias.name] = f"{node.module}.{alias.name}"
        for statement in _top_level(tree.body):
            for name in _bound_names(statement):
                module.bindings.setdefault(name, []).append(statement)
    return module


def _without_magics(source: str) -> str:
    """The cell as IPython runs it (`%time x = f()` becomes a call), so that ast can read it."""
    try:
        from IPython.core.inputtransformer2 import TransformerManager
    except ImportError:
        return source
    try:
        return TransformerManager().transform_cell(source)
    except Exception:       # IPython could not transform it either: ast will report the cell as unreadable
        return source


def _top_level(body):
    """Statements run at module level, looking inside if/try/with/for blocks but not into defs."""
    for statement in body:
        yield statement
        if isinstance(statement, (ast.If, ast.For, ast.While, ast.With, ast.Try)):
            for block in ("body", "orelse", "finalbody"):
                yield from _top_level(getattr(statement, block, []))
            for handler in getattr(statement, "handlers", []):
                yield from _top_level(handler.body)


def _bound_names(statement) -> list[str]:
    if isinstance(statement, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        return [statement.name]
    if isinstance(statement, (ast.Import, ast.ImportFrom)):
        return [a.asname or a.name.split(".")[0] for a in statement.names]
    targets = []
    if isinstance(statement, ast.Assign):
        targets = statement.targets
    elif isinstance(statement, (ast.AnnAssign, ast.AugAssign)):
        targets = [statement.target]
    elif isinstance(statement, (ast.For, ast.With)):
        targets = [statement.target] if isinstance(statement, ast.For) else \
            [i.optional_vars for i in statement.items if i.optional_vars]
    return [n.id for t in targets for n in ast.walk(t) if isinstance(n, ast.Name)]


def _dotted(node) -> list[str] | None:
    """["F", "conv2d"] for F.conv2d; None when the chain does not start at a plain name."""
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        return [node.id] + parts[::-1]
    return None


def _library_name(parts: list[str], module: _Module) -> str | None:
    """The dotted library name a chain refers to through the submission's imports, if any."""
    root = module.aliases.get(parts[0])
    if root is None:
        return None
    return ".".join([root] + parts[1:])


# -- the scan -----------------------------------------------------------------------------------------------
def scan_source(sources: list[tuple[str, str]], entries: tuple[str, ...], rules: Rules) -> Scan:
    """Scan the code reachable from `entries` (the exercise's names) in `sources`, (label, code) pairs
    in execution order, and the whole submission for tampering."""
    module = _module(sources)
    scan = Scan()
    seen: set[str] = set()

    def add(kind, what, node):
        where = module.where.get(id(node))
        finding = Finding(kind, f"{what} ({where})" if where else what)
        if finding not in scan.findings:
            scan.findings.append(finding)

    # What the exercise's code reaches: its definitions and every module-level name they load.
    queue = [e for e in entries if e in module.bindings]
    if not queue:
        add(UNVERIFIABLE, "no cell defines " + " or ".join(f"`{e}`" for e in entries) + " in code the grader can read",
            None)
    reached_nodes = []
    while queue:
        name = queue.pop()
        if name in seen:
            continue
        seen.add(name)
        scan.reached.append(name)
        for statement in module.bindings.get(name, []):
            reached_nodes.append(statement)
            for node in ast.walk(statement):
                if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load) and node.id in module.bindings:
                    queue.append(node.id)

    for label, source in module.unparsed:      # a cell the grader cannot read may redefine what it reached
        if any(re.search(rf"\b{re.escape(name)}\b", source) for name in scan.reached + list(entries)):
            add(UNVERIFIABLE, f"{label or 'a cell'}, which uses these names and which the grader cannot parse", None)
    local_names = {n.id for s in reached_nodes for n in ast.walk(s) if isinstance(n, ast.Name)
                   and isinstance(n.ctx, (ast.Store, ast.Del))}
    local_names |= {n.arg for s in reached_nodes for n in ast.walk(s) if isinstance(n, ast.arg)}
    local_names |= {n.name for s in reached_nodes for n in ast.walk(s)
                    if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.ExceptHandler))
                    and n.name}
    local_names |= {a.asname or a.name.split(".")[0] for s in reached_nodes for n in ast.walk(s)
                    if isinstance(n, (ast.Import, ast.ImportFrom)) for a in n.names}
    known = set(module.bindings) | local_names | set(dir(builtins))
    # `obj.corr2d` where the submission's own classes define corr2d: a name the student chose, judged by what
    # it runs (the runtime's trace sees a library routine reached through it)
    own_methods = frozenset(f.name for statement in reached_nodes for c in ast.walk(statement)
                            if isinstance(c, ast.ClassDef)
                            for f in c.body if isinstance(f, (ast.FunctionDef, ast.AsyncFunctionDef)))

    for statement in reached_nodes:
        nodes = list(ast.walk(statement))
        inner = {id(n.value) for n in nodes if isinstance(n, ast.Attribute)}   # judge each chain once, whole
        for node in nodes:
            if id(node) not in inner:
                _judge_node(node, module, rules, known, add, own_methods)
    for label, tree in module.trees:
        nodes = list(ast.walk(tree))
        inner = {id(n.value) for n in nodes if isinstance(n, ast.Attribute)}
        for node in nodes:
            if id(node) not in inner:
                _judge_tampering(node, module, add)
    return scan


def _judge_node(node, module, rules, known, add, own_methods=frozenset()):
    if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load):
        if node.id in DYNAMIC_CALLS:
            add(UNVERIFIABLE, f"a call of {DYNAMIC_CALLS[node.id]}", node)
        elif node.id in NAME_LOOKUPS and not _constant_lookup(node, module):
            add(UNVERIFIABLE, f"`{node.id}` with a name computed at run time", node)
        elif node.id not in known:
            add(UNVERIFIABLE, f"`{node.id}`, which no cell defines in code the grader can read", node)
        elif node.id in module.aliases:
            _judge_library(module.aliases[node.id], node, rules, add)
    elif isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Load):
        parts = _dotted(node)
        library = _library_name(parts, module) if parts else None
        if library:
            _judge_library(library, node, rules, add)
        elif node.attr.startswith("_") and not node.attr.startswith("__") and not (
                parts and parts[0] in ("self", "cls")):
            add(UNVERIFIABLE, f"the private attribute `.{node.attr}`", node)
        elif node.attr.startswith("__") and node.attr not in HARMLESS_DUNDERS:
            add(UNVERIFIABLE, f"the special attribute `.{node.attr}`", node)
        elif rules.forbidden.search(node.attr) and not (parts and parts[0] in ("self", "cls")) \
                and node.attr not in own_methods:
            add(FORBIDDEN, f"`.{node.attr}`", node)
    elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in NAME_LOOKUPS:
        lookup = _constant_lookup(node.func, module)
        if lookup and lookup[0]:
            _judge_library(lookup[0], node, rules, add)
        elif lookup and rules.forbidden.search(lookup[1]):
            add(FORBIDDEN, f"`{node.func.id}(..., {lookup[1]!r})`", node)
    elif isinstance(node, ast.Constant) and isinstance(node.value, str) and \
            re.fullmatch(r"[A-Za-z_][\w.]*", node.value) and rules.forbidden.search(node.value.split(".")[-1]):
        add(FORBIDDEN, f"the name {node.value!r} in a string", node)
    elif isinstance(node, (ast.Import, ast.ImportFrom)):
        names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
            [f"{node.module or ''}.{a.name}" for a in node.names]
        for name in names:
            _judge_library(name, node, rules, add)


def _constant_lookup(name_node, module) -> tuple[str | None, str] | None:
    """For getattr(obj, "name") with a literal name: (the library name it reads or None, "name")."""
    call = getattr(name_node, "_d2lgrade_call", None)
    if call is None or len(call.args) < 2 or not isinstance(call.args[1], ast.Constant) \
            or not isinstance(call.args[1].value, str):
        return None
    parts = _dotted(call.args[0])
    library = _library_name(parts, module) if parts else None
    return (f"{library}.{call.args[1].value}" if library else None), call.args[1].value


def _judge_library(name: str, node, rules, add):
    parts = name.split(".")
    shown = name.replace("torch.nn.functional.", "F.").replace("d2l.torch.", "d2l.")
    if any(rules.forbidden.search(p) for p in parts[1:]) or (len(parts) == 1 and rules.forbidden.search(name)):
        add(FORBIDDEN, ("the book's " if parts[0] == "d2l" else "") + f"`{shown}`", node)
    elif any(p.startswith("__") and p.endswith("__") and p not in HARMLESS_DUNDERS | {"__version__"}
             for p in parts[1:]):
        # d2l.__dict__[name] or F.__dict__[name] reaches any routine under a name built at run time
        add(UNVERIFIABLE, f"`{shown}`, which the grader cannot see through", node)
    elif any(name == m or name.startswith(m + ".") for m in OPAQUE_MODULES):
        add(UNVERIFIABLE, f"`{shown}`, which the grader cannot see through", node)
    elif any(p.startswith("_") and not (p.startswith("__") and p.endswith("__")) and p not in HARMLESS_PRIVATE
             for p in parts):
        add(UNVERIFIABLE, f"the private entry point `{shown}`", node)
    elif parts[0] in ARRAY_LIBRARIES and not (parts[0] == "numpy" and (len(parts) == 1 or parts[-1] in NUMPY_PLAIN)):
        add(UNVERIFIABLE, f"`{shown}`, a routine outside PyTorch whose work the operator trace cannot see", node)


def _judge_tampering(node, module, add):
    if isinstance(node, ast.Name) and node.id in REBINDING:
        add(UNVERIFIABLE, f"{DYNAMIC_CALLS[node.id]}, which can redefine any name the exercise uses", node)
    elif isinstance(node, ast.Name) and TAMPERING.search(node.id):
        add(UNVERIFIABLE, f"`{node.id}`, which reaches into the grader's operator trace", node)
    elif isinstance(node, ast.Attribute):
        parts = _dotted(node)
        text = ".".join(parts) if parts else node.attr
        if TAMPERING.search(text) or TAMPERING.search(node.attr):
            add(UNVERIFIABLE, f"`{text}`, which reaches into the grader's operator trace", node)
        elif isinstance(node.ctx, ast.Store) and parts and (_library_name(parts, module) or "").split(".")[0] \
                in LIBRARY_ROOTS:
            add(UNVERIFIABLE, f"an assignment that replaces `{text}` in the library", node)
    elif isinstance(node, ast.Constant) and isinstance(node.value, str) and TAMPERING.search(node.value):
        add(UNVERIFIABLE, f"the string {node.value[:40]!r}, which names the grader's operator trace", node)
    elif isinstance(node, (ast.Import, ast.ImportFrom)):
        names = [a.name for a in node.names] + ([node.module] if isinstance(node, ast.ImportFrom) and node.module else [])
        for name in names:
            if TAMPERING.search(name) or name.startswith("torch._C"):
                add(UNVERIFIABLE, f"an import of `{name}`, which reaches into the grader's operator trace", node)
    elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "setattr" and node.args:
        parts = _dotted(node.args[0])
        if parts and (_library_name(parts, module) or "").split(".")[0] in LIBRARY_ROOTS:
            add(UNVERIFIABLE, f"setattr on `{'.'.join(parts)}`, which replaces part of the library", node)


def _mark_calls(tree):
    """Let each `getattr` name node know its call, so that a literal lookup can be resolved."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in NAME_LOOKUPS:
            node.func._d2lgrade_call = node
