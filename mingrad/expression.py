"""Evaluate a small arithmetic expression into a graph of Scalars, without ``eval``."""

from __future__ import annotations

import ast
import operator

from mingrad_core import Scalar, get_op, ops

_BINARY = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.Pow: operator.pow,
}
_UNARY = {ast.USub: operator.neg, ast.UAdd: operator.pos}


def evaluate(source: str, values: dict[str, float]) -> Scalar:
    """``evaluate("tanh(x*w + b)", {"x": 1, "w": 0.5, "b": 0})``: a Scalar per name (with that
    name), numbers, ``+ - * / **``, and registered ops as functions or methods."""
    try:
        tree = ast.parse(source.strip(), mode="eval")
    except SyntaxError as exc:
        raise ValueError(f"cannot parse expression {source!r}: {exc.msg}") from None
    leaves = {name: Scalar(value, name=name) for name, value in values.items()}

    def visit(node: ast.AST):
        if isinstance(node, ast.Constant) and isinstance(node.value, int | float):
            return node.value
        if isinstance(node, ast.Name):
            if node.id not in leaves:
                raise ValueError(f"{node.id!r} has no value; give one as {node.id}=1.5")
            return leaves[node.id]
        if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
            return _BINARY[type(node.op)](visit(node.left), visit(node.right))
        if isinstance(node, ast.UnaryOp) and type(node.op) in _UNARY:
            return _UNARY[type(node.op)](visit(node.operand))
        if isinstance(node, ast.Call) and not node.keywords:
            func = node.func
            if isinstance(func, ast.Name) and func.id in ops():  # tanh(x)
                return get_op(func.id)(*map(visit, node.args))
            if isinstance(func, ast.Attribute) and func.attr in ops():  # x.tanh()
                return get_op(func.attr)(visit(func.value), *map(visit, node.args))
            name = func.id if isinstance(func, ast.Name) else getattr(func, "attr", "?")
            raise ValueError(f"unknown op {name!r}; registered ops: {', '.join(sorted(ops()))}")
        raise ValueError(f"unsupported in an expression: {ast.unparse(node)!r}")

    result = visit(tree.body)
    return result if isinstance(result, Scalar) else Scalar(result)
