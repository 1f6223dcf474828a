"""The mutation operators: small, stateless changes to one kind of AST node each.

Each operator is a class: `sites(tree)` lists the nodes it can change and `mutate(node)` returns the
replacement(s) for one of them (a node, or None to delete a statement). `mutate.py` applies them.
"""
from __future__ import annotations

import ast
import copy


# -- helpers ------------------------------------------------------------------------------------------
def _plus(node: ast.expr, k: int) -> ast.expr:
    if isinstance(node, ast.Constant) and type(node.value) in (int, float):
        return ast.Constant(node.value + k)
    return ast.BinOp(node, ast.Add() if k > 0 else ast.Sub(), ast.Constant(abs(k)))


def _dotted(node: ast.expr) -> str:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return f"{_dotted(node.value)}.{node.attr}"
    return ""


def _call_name(node: ast.AST) -> str:
    return _dotted(node.func) if isinstance(node, ast.Call) else ""


def is_docstring(node: ast.AST, parents: dict) -> bool:
    parent = parents.get(node)
    return isinstance(parent, ast.Expr) and isinstance(parent.value, ast.Constant) and isinstance(node, ast.Constant) \
        and isinstance(node.value, str)


class Operator:
    name = ""

    def sites(self, tree: ast.AST) -> list[ast.AST]:
        return [n for n in ast.walk(tree) if self.applies(n)]

    def applies(self, node: ast.AST) -> bool:
        return False

    def mutate(self, node: ast.AST) -> list[ast.AST | None]:
        raise NotImplementedError


# -- operators ---------------------------------------------------------------------------------------
ARITH = {ast.Add: ast.Sub, ast.Sub: ast.Add, ast.Mult: ast.Div, ast.Div: ast.Mult, ast.FloorDiv: ast.Div,
         ast.Mod: ast.FloorDiv, ast.Pow: ast.Mult, ast.MatMult: ast.Mult}
COMPARE = {ast.Lt: ast.LtE, ast.LtE: ast.Lt, ast.Gt: ast.GtE, ast.GtE: ast.Gt, ast.Eq: ast.NotEq,
           ast.NotEq: ast.Eq, ast.Is: ast.IsNot, ast.IsNot: ast.Is, ast.In: ast.NotIn, ast.NotIn: ast.In}


class ArithmeticSwap(Operator):
    name = "arithmetic"

    def applies(self, node):
        return isinstance(node, (ast.BinOp, ast.AugAssign)) and type(node.op) in ARITH

    def mutate(self, node):
        node.op = ARITH[type(node.op)]()
        return [node]


class ComparisonSwap(Operator):
    name = "comparison"

    def applies(self, node):
        return isinstance(node, ast.Compare) and type(node.ops[0]) in COMPARE

    def mutate(self, node):
        node.ops[0] = COMPARE[type(node.ops[0])]()
        return [node]


class ConstantShift(Operator):
    """n -> n+1 and n-1 for numbers (not booleans, not docstrings)."""
    name = "constant"

    def applies(self, node):
        return isinstance(node, ast.Constant) and type(node.value) in (int, float)

    def mutate(self, node):
        return [ast.Constant(node.value + 1), ast.Constant(node.value - 1)]


class SliceShift(Operator):
    """A slice bound moved by one (a missing start becomes 1, a missing stop -1); range(...) bounds too."""
    name = "slice"

    def applies(self, node):
        return isinstance(node, ast.Slice) or (_call_name(node) == "range" and node.args)

    def mutate(self, node):
        out = []
        if isinstance(node, ast.Slice):
            for field, missing in (("lower", 1), ("upper", -1)):
                bound = getattr(node, field)
                for new in ([_plus(bound, 1), _plus(bound, -1)] if bound is not None else [ast.Constant(missing)]):
                    moved = copy.deepcopy(node)
                    setattr(moved, field, new)
                    out.append(moved)
            return out
        for i in range(min(len(node.args), 2)):
            for k in (1, -1):
                moved = copy.deepcopy(node)
                moved.args[i] = _plus(moved.args[i], k)
                out.append(moved)
        return out


AXIS_METHODS = {"sum", "mean", "max", "min", "amax", "amin", "softmax", "log_softmax", "cat", "stack", "argmax",
                "argmin", "norm", "flatten", "unsqueeze", "squeeze", "var", "std", "cumsum", "prod", "flip", "roll",
                "concat", "logsumexp", "size"}


def _other_axis(value: int) -> int:
    return -1 - ((-1 - value) ^ 1) if value < 0 else value ^ 1      # 0<->1, 2<->3, -1<->-2, -3<->-4


class AxisSwap(Operator):
    """The axis of a reduction or concatenation replaced by its neighbour (0<->1, -1<->-2); a permute's
    last two axes exchanged."""
    name = "axis"

    def applies(self, node):
        if not isinstance(node, ast.Call) or not isinstance(node.func, ast.Attribute):
            return False
        return bool(self._axis_slots(node)) or (node.func.attr == "permute" and len(node.args) >= 2)

    @staticmethod
    def _axis_slots(node):
        slots = [("kw", i) for i, kw in enumerate(node.keywords) if kw.arg in ("dim", "axis", "dims")
                 and _int_constant(kw.value) is not None]
        if node.func.attr in AXIS_METHODS and not any(kw.arg in ("dim", "axis") for kw in node.keywords):
            position = 1 if node.func.attr in ("cat", "stack", "concat") or _dotted(node.func.value) in ("torch", "F") else 0
            if len(node.args) > position and _int_constant(node.args[position]) is not None:
                slots.append(("arg", position))
        return slots

    def mutate(self, node):
        out = []
        if node.func.attr == "permute" and len(node.args) >= 2:
            moved = copy.deepcopy(node)
            moved.args[-1], moved.args[-2] = moved.args[-2], moved.args[-1]
            out.append(moved)
        for kind, i in self._axis_slots(node):
            moved = copy.deepcopy(node)
            holder = moved.keywords[i] if kind == "kw" else None
            value = _int_constant(holder.value if holder else moved.args[i])
            new = ast.Constant(_other_axis(value))
            if holder:
                holder.value = new
            else:
                moved.args[i] = new
            out.append(moved)
        return out


class EinsumAxes(Operator):
    """Two neighbouring axes of an einsum's output exchanged, and an operand's axes reversed (a
    transposed weight): the axis mistakes that string subscripts hide from the axis operator."""
    name = "einsum-axes"

    def applies(self, node):
        return _call_name(node) in ("torch.einsum", "einsum") and node.args and isinstance(node.args[0], ast.Constant) \
            and isinstance(node.args[0].value, str) and "->" in node.args[0].value

    def mutate(self, node):
        inputs, output = node.args[0].value.replace(" ", "").split("->")
        specs = []
        for i in range(len(output) - 1):
            specs.append(f"{inputs}->{output[:i]}{output[i + 1]}{output[i]}{output[i + 2:]}")
        operands = inputs.split(",")
        for i, operand in enumerate(operands):
            if len(operand) > 1 and "." not in operand:
                specs.append(",".join(operands[:i] + [operand[::-1]] + operands[i + 1:]) + "->" + output)
        out = []
        for spec in specs:
            moved = copy.deepcopy(node)
            moved.args[0] = ast.Constant(spec)
            out.append(moved)
        return out


def _int_constant(node):
    if isinstance(node, ast.Constant) and type(node.value) is int:
        return node.value
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub) and isinstance(node.operand, ast.Constant) \
            and type(node.operand.value) is int:
        return -node.operand.value
    return None


class TermDrop(Operator):
    """a + b -> a and -> b (also -, *, /): one term or factor of an expression left out; a residual
    `Y + X` loses its shortcut this way."""
    name = "drop-term"

    def applies(self, node):
        return isinstance(node, ast.BinOp) and isinstance(node.op, (ast.Add, ast.Sub, ast.Mult, ast.Div, ast.FloorDiv))

    def mutate(self, node):
        return [node.left] + ([node.right] if not isinstance(node.op, (ast.Sub, ast.Div, ast.FloorDiv)) else
                              [ast.UnaryOp(ast.USub(), node.right)] if isinstance(node.op, ast.Sub) else [])


class StatementDrop(Operator):
    """One statement of a function body left out (not a docstring, not its only statement, not a return:
    a missing return is 'not attempted', which says nothing about the checks)."""
    name = "drop-statement"

    def sites(self, tree):
        out = []
        for fn in ast.walk(tree):
            if isinstance(fn, (ast.FunctionDef, ast.For, ast.If, ast.With)) and len(fn.body) > 1:
                out.extend(s for s in fn.body if not isinstance(s, (ast.Return, ast.FunctionDef, ast.ClassDef))
                           and not (isinstance(s, ast.Expr) and isinstance(s.value, ast.Constant)))
        return out

    def mutate(self, node):
        return [None]


ACTIVATIONS = {"F.relu": "torch.sigmoid", "torch.relu": "torch.sigmoid", "torch.sigmoid": "torch.relu",
               "torch.tanh": "torch.relu", "F.sigmoid": "torch.relu", "F.tanh": "torch.relu",
               "nn.ReLU": "nn.Sigmoid", "nn.Sigmoid": "nn.ReLU", "nn.Tanh": "nn.ReLU", "nn.GELU": "nn.ReLU"}


class ActivationSwap(Operator):
    """An activation replaced by another one, and dropped (identity)."""
    name = "activation"

    def applies(self, node):
        return _call_name(node) in ACTIVATIONS

    def mutate(self, node):
        name = _call_name(node)
        swapped = copy.deepcopy(node)
        swapped.func = ast.parse(ACTIVATIONS[name], mode="eval").body
        if name.startswith("nn."):
            dropped = ast.Call(ast.parse("nn.Identity", mode="eval").body, [], [])
        else:
            dropped = node.args[0] if node.args else None
        return [swapped] + ([dropped] if dropped is not None else [])


SEQUENTIAL = {"nn.Sequential", "torch.nn.Sequential"}


class LayerDrop(Operator):
    """One layer of an nn.Sequential(...) left out."""
    name = "drop-layer"

    def applies(self, node):
        return _call_name(node) in SEQUENTIAL and len(node.args) >= 2 and not any(isinstance(a, ast.Starred) for a in node.args)

    def mutate(self, node):
        out = []
        for i in range(len(node.args)):
            moved = copy.deepcopy(node)
            del moved.args[i]
            out.append(moved)
        return out


LAYER_ARGS = ("stride", "padding", "dilation", "kernel_size", "groups")


class LayerArgument(Operator):
    """stride/padding/kernel size of a layer moved by one when it is an expression (constants are the
    constant operator's), and padding=1 / stride=2 added to a convolution or pooling call that has none."""
    name = "layer-argument"

    def applies(self, node):
        name = _call_name(node)
        return isinstance(node, ast.Call) and any(k in name for k in ("Conv", "Pool", "conv", "pool"))

    def mutate(self, node):
        out = []
        for i, kw in enumerate(node.keywords):
            if kw.arg in LAYER_ARGS and not isinstance(kw.value, ast.Constant):
                moved = copy.deepcopy(node)
                moved.keywords[i].value = _plus(moved.keywords[i].value, 1)
                out.append(moved)
        present = {kw.arg for kw in node.keywords}
        for arg, value in (("padding", 1), ("stride", 2)):
            if arg not in present and "Lazy" not in _call_name(node):
                moved = copy.deepcopy(node)
                moved.keywords.append(ast.keyword(arg, ast.Constant(value)))
                out.append(moved)
        return out


class FloorCeil(Operator):
    name = "floor-ceil"
    SWAP = {"floor": "ceiling", "ceiling": "floor", "ceil": "floor", "math.floor": "math.ceil",
            "math.ceil": "math.floor", "torch.floor": "torch.ceil", "torch.ceil": "torch.floor"}

    def applies(self, node):
        return _call_name(node) in self.SWAP

    def mutate(self, node):
        node.func = ast.parse(self.SWAP[_call_name(node)], mode="eval").body
        return [node]


class FactorTwo(Operator):
    """A product or quotient off by a factor of 2."""
    name = "factor-2"

    def applies(self, node):
        return isinstance(node, ast.BinOp) and isinstance(node.op, (ast.Mult, ast.Div))

    def mutate(self, node):
        return [ast.BinOp(ast.Constant(2), ast.Mult(), node)]


CODE_OPERATORS = (ArithmeticSwap(), ComparisonSwap(), ConstantShift(), SliceShift(), AxisSwap(), EinsumAxes(), TermDrop(),
                  StatementDrop(), ActivationSwap(), LayerDrop(), LayerArgument(), FloorCeil())
FORMULA_OPERATORS = (ArithmeticSwap(), ConstantShift(), TermDrop(), FloorCeil(), FactorTwo())
