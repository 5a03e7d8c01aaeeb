"""Evaluate a small arithmetic expression into a graph of Scalars, without ``eval``.

Numbers become floats as soon as they are read, and every operator is the op the registry
binds to it, so number-only parts follow the ops' IEEE policy too: ``1/0`` is inf, as ``x/0``
is, and ``9**9**9`` is inf at once. The walk is iterative: depth is bounded by ``MAX_DEPTH``,
not by Python's recursion limit.
"""

from __future__ import annotations

import ast
import math
import unicodedata

from mingrad_core import OpSpec, Scalar, bound_to, get_op, ops, origin_of

MAX_DEPTH = 2000
"""The most levels of nesting an expression may have (``x+x+...`` with n terms has n - 1)."""

_QUOTE = 80  # characters of the source quoted in an error message

_BINARY = {ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.Div: "/", ast.Pow: "**"}


class ExpressionError(ValueError):
    """An expression that cannot be evaluated: unparsable, unsupported, or a misused op."""


def _listed(names: list[str], limit: int = 12) -> str:
    """``names`` joined by commas; past ``limit``, the first ones and how many in all."""
    if len(names) <= limit:
        return ", ".join(names)
    return f"{', '.join(names[:limit])}, ... ({len(names)} names)"


def _quote(text: str) -> str:
    return repr(text if len(text) <= _QUOTE else f"{text[:_QUOTE]}... ({len(text)} characters)")


def _number(value: int | float) -> float:
    try:
        return float(value)
    except OverflowError:  # an integer literal beyond the float range
        return math.inf


def _apply(op: OpSpec, args: list) -> Scalar | float:
    """``op(*args)``; whatever it raises becomes an ExpressionError naming the op and its
    plugin (a plugin's forward may raise anything, a NameError from a typo included)."""
    try:
        return op(*args)
    except Exception as exc:  # reported in one line, with the op and its plugin
        text = " ".join(str(exc).split())  # one line, whatever the plugin wrote
        if f"op {op.name!r}" in text:  # the engine's own message names them already
            raise ExpressionError(text) from None
        if len(text) > _QUOTE:
            text = f"{text[:_QUOTE]}..."
        inputs = ", ".join(repr(a.data if isinstance(a, Scalar) else a) for a in args[:8])
        inputs += ", ..." if len(args) > 8 else ""
        raise ExpressionError(
            f"op {op.name!r} ({origin_of(op.name) or 'not registered'}) raised "
            f"{type(exc).__name__} at input(s) ({inputs}): {text}"
        ) from None


class _Evaluator:
    def __init__(self, source: str, leaves: dict[str, Scalar], unused: list[str]) -> None:
        self.source = source
        self.leaves = leaves
        self.unused = unused

    def unsupported(self, node: ast.AST) -> ExpressionError:
        text = ast.get_source_segment(self.source, node) or type(node).__name__
        return ExpressionError(f"unsupported in an expression: {_quote(text)}")

    def operands(self, node: ast.AST) -> list[ast.AST]:
        """The subexpressions ``node`` needs evaluated first; refuses what it cannot evaluate."""
        if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
            return [node.left, node.right]
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub | ast.UAdd):
            return [node.operand]
        if isinstance(node, ast.Call):
            if node.keywords or any(isinstance(a, ast.Starred) for a in node.args):
                raise self.unsupported(node)
            func = node.func
            if isinstance(func, ast.Attribute):  # x.tanh()
                self.op_named(func.attr)
                return [func.value, *node.args]
            if isinstance(func, ast.Name):  # tanh(x)
                self.op_named(func.id)
                return list(node.args)
            raise self.unsupported(node)
        if isinstance(node, ast.Name):
            if node.id not in self.leaves:
                hint = f" (given but not used: {_listed(self.unused)})" if self.unused else ""
                raise ExpressionError(f"{node.id!r} has no value; give one as {node.id}=1.5{hint}")
            return []
        if isinstance(node, ast.Constant) and type(node.value) in (int, float):
            return []
        raise self.unsupported(node)

    def op_named(self, name: str) -> OpSpec:
        if name not in ops():
            names = ", ".join(sorted(ops()))
            raise ExpressionError(f"unknown op {_quote(name)}; registered ops: {names}")
        return get_op(name)

    def combine(self, node: ast.AST, args: list) -> Scalar | float:
        """The value of ``node``, given the values of its operands."""
        if isinstance(node, ast.BinOp):
            return _apply(bound_to(_BINARY[type(node.op)]), args)
        if isinstance(node, ast.UnaryOp):
            return args[0] if isinstance(node.op, ast.UAdd) else _apply(bound_to("neg"), args)
        if isinstance(node, ast.Call):
            func = node.func
            return _apply(
                self.op_named(func.attr if isinstance(func, ast.Attribute) else func.id), args
            )
        if isinstance(node, ast.Name):
            return self.leaves[node.id]
        return _number(node.value)

    def run(self, root: ast.AST) -> Scalar | float:
        """Post-order walk with an explicit stack: operands first, then the node."""
        results: list = []
        stack: list[tuple[ast.AST, int, bool]] = [(root, 1, False)]
        while stack:
            node, depth, ready = stack.pop()
            if ready:
                count = len(self.operands(node))
                args = results[len(results) - count :]
                del results[len(results) - count :]
                results.append(self.combine(node, args))
                continue
            if depth > MAX_DEPTH:
                raise _too_deep(self.source)
            stack.append((node, depth, True))
            stack.extend((child, depth + 1, False) for child in reversed(self.operands(node)))
        return results[0]


def _too_deep(source: str) -> ExpressionError:
    return ExpressionError(
        f"expression {_quote(source)} is too deeply nested (more than {MAX_DEPTH} levels)"
    )


def _variables(tree: ast.AST) -> set[str]:
    """The names an expression reads as values (``tanh`` in ``tanh(x)`` is an op, not one)."""
    ops_called = {id(node.func) for node in ast.walk(tree) if isinstance(node, ast.Call)}
    return {
        node.id
        for node in ast.walk(tree)
        if isinstance(node, ast.Name) and id(node) not in ops_called
    }


def _leaves(values: dict[str, float]) -> dict[str, Scalar]:
    """A named Scalar per value, named as Python reads names (NFKC: the ligature ``ﬁ`` is
    ``fi``)."""
    leaves: dict[str, Scalar] = {}
    spelled: dict[str, str] = {}
    for given, value in values.items():
        name = unicodedata.normalize("NFKC", given)
        if name in leaves:
            raise ExpressionError(f"{spelled[name]!r} and {given!r} are the same name")
        leaves[name], spelled[name] = Scalar(value, name=name), given
    return leaves


def evaluate(source: str, values: dict[str, float]) -> Scalar:
    """``evaluate("tanh(x*w + b)", {"x": 1, "w": 0.5, "b": 0})``: a Scalar per name (with that
    name), numbers, ``+ - * / **``, and registered ops as functions or methods.

    Every value given must be used. Raises ``ExpressionError`` (a ``ValueError``) for anything
    it cannot evaluate.
    """
    source = source.strip()
    try:
        tree = ast.parse(source, mode="eval")
    except SyntaxError as exc:
        raise ExpressionError(f"cannot parse expression {_quote(source)}: {exc.msg}") from None
    except UnicodeEncodeError as exc:  # bytes a command line could not decode as text
        raise ExpressionError(
            f"cannot parse expression {_quote(source)}: {exc.object[exc.start : exc.end]!r} "
            "is not a character (the text is not valid UTF-8)"
        ) from None
    except (RecursionError, MemoryError):  # the parser's own stack ran out
        raise _too_deep(source) from None
    leaves = _leaves(values)
    names = _variables(tree)
    unused = [name for name in leaves if name not in names]
    result = _Evaluator(source, leaves, unused).run(tree.body)
    if unused:  # reported after what is wrong with the expression itself, if anything
        raise ExpressionError(
            f"{_listed(unused)} given a value but not used: expression {_quote(source)} "
            f"reads {'the names ' + _listed(sorted(names)) if names else 'no names'}"
        )
    return result if isinstance(result, Scalar) else Scalar(result)
