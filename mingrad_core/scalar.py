"""Scalar, one node of the computation graph, and reverse-mode differentiation over the graph."""

from __future__ import annotations

import numbers
from collections.abc import Iterable
from typing import TYPE_CHECKING

from . import registry

if TYPE_CHECKING:
    from .registry import OpSpec


def _to_float(value: object, op: OpSpec | None = None) -> float:
    """``value`` as a float: a Scalar's data, or what ``op``'s forward returned."""
    if type(value) is float:
        return value
    if isinstance(value, numbers.Real):  # int, bool, Fraction and numpy's real scalars
        return float(value)
    got = f"{type(value).__name__} {value!r}"
    if op is None:
        raise TypeError(f"a Scalar holds a real number; got {got}")
    where = registry.origin_of(op.name)
    raise TypeError(f"op {op.name!r} ({where}) forward returned {got}; expected a real number")


def _operator(symbol: str, reflected: bool = False):
    """``Scalar.__add__`` and friends: apply whatever op the registry binds to ``symbol``."""

    def method(self, other):
        if not isinstance(other, Scalar):
            if not isinstance(other, numbers.Real):
                return NotImplemented
            other = _constant(other)
        op = registry._operators.get(symbol) or registry.bound_to(symbol)
        return apply(op, (other, self) if reflected else (self, other))

    return method


class Scalar:
    """A float that remembers how it was computed, so that gradients can flow back to its inputs.

    Operators (``+ - * / **``, unary ``-``) and named methods (``x.tanh()``, or ``x.gelu()``
    once a plugin provides it) are looked up in the op registry; this class names no op.
    ``grad`` is ``None`` on constants: numbers mixed into an expression, which take no gradient.
    """

    __slots__ = ("data", "grad", "name", "_parents", "_op", "__weakref__")
    __array_ufunc__ = None  # numpy scalars defer to Scalar instead of building object arrays

    data: float
    grad: float | Scalar | None
    name: str | None

    __add__, __radd__ = _operator("+"), _operator("+", reflected=True)
    __sub__, __rsub__ = _operator("-"), _operator("-", reflected=True)
    __mul__, __rmul__ = _operator("*"), _operator("*", reflected=True)
    __truediv__, __rtruediv__ = _operator("/"), _operator("/", reflected=True)
    __pow__, __rpow__ = _operator("**"), _operator("**", reflected=True)

    def __neg__(self) -> Scalar:
        return registry.bound_to("neg")(self)

    def __init__(self, data: float, name: str | None = None) -> None:
        self.data = _to_float(data)
        self.grad = 0.0
        self.name = name
        self._parents: tuple[Scalar, ...] = ()
        self._op: OpSpec | None = None

    @property
    def parents(self) -> tuple[Scalar, ...]:
        """The inputs this node was computed from, in argument order (``a*a`` lists ``a`` twice)."""
        return self._parents

    @property
    def op(self) -> OpSpec | None:
        """The op that computed this node; ``None`` for a leaf."""
        return self._op

    def __repr__(self) -> str:
        name = f", name={self.name!r}" if self.name is not None else ""
        return f"Scalar(data={self.data!r}, grad={self.grad!r}{name})"

    def __float__(self) -> float:
        return self.data

    def __getattr__(self, name: str):
        # Reached only when normal lookup fails: ``x.relu`` is the registered op "relu" bound to x.
        if name.startswith("_"):
            raise AttributeError(f"'Scalar' object has no attribute {name!r}")
        op = registry.get_op(name)
        return lambda *args: op(self, *args)

    def __dir__(self) -> list[str]:
        return sorted({*super().__dir__(), *registry.ops()})

    def backward(self, gradient: float = 1.0) -> None:
        """Backpropagate from this node, writing d(self)/d(node) into every node's ``grad``.

        Computed nodes get this call's gradient; leaves add it to what they hold, so a second
        call on the same graph doubles the leaves' gradients (clear them with ``zero_grad``).
        """
        for node, g in _backprop((self,), False, gradient).items():
            if node._op is not None:
                node.grad = g
            elif node.grad is not None:
                node.grad += g

    def zero_grad(self) -> None:
        """Set the gradient of this node and of every node it was computed from to zero."""
        for node in _toposort((self,)):
            if node.grad is not None:
                node.grad = 0.0


def _constant(value: object) -> Scalar:
    node = Scalar(value)
    node.grad = None
    return node


def _node(op: OpSpec, data: object, parents: tuple[Scalar, ...]) -> Scalar:
    out = _new(Scalar)
    out.data = data if data.__class__ is float else _to_float(data, op)
    out.grad = 0.0
    out.name = None
    out._parents = parents
    out._op = op
    return out


_new = object.__new__


def apply(op: OpSpec, args: tuple) -> Scalar | float:
    """Apply ``op`` to ``args``: a new graph node if any input is a Scalar, else a plain float."""
    if len(args) != op.arity and not (op.variadic and len(args) > op.arity):
        more = " or more" if op.variadic else ""
        raise TypeError(f"op {op.name!r} takes {op.arity}{more} input(s); got {len(args)}")
    data = [a.data for a in args if isinstance(a, Scalar)]
    if op.gradient is not None:
        if len(data) == len(args):
            return _node(op, op.forward(*data), args)
        if not data:  # numbers in, number out
            return _to_float(op.forward(*map(_to_float, args)), op)
    inputs = tuple(a if isinstance(a, Scalar) else _constant(a) for a in args)
    if op.gradient is None:  # a composite: its forward is built from other ops on Scalars
        out = op.forward(*inputs)
        return out if data else float(out)
    return _node(op, op.forward(*[a.data for a in inputs]), inputs)


def _toposort(roots: Iterable[Scalar]) -> list[Scalar]:
    """Every node the roots depend on, each after its parents. Iterative: any depth works."""
    order: list[Scalar] = []
    opened: set[Scalar] = set()
    placed: set[Scalar] = set()
    stack = list(roots)
    while stack:
        node = stack.pop()
        if node in placed:
            continue
        if node in opened:  # second visit: its parents are all placed
            placed.add(node)
            order.append(node)
            continue
        opened.add(node)
        stack.append(node)
        for p in node._parents:
            if p not in opened:
                stack.append(p)
    return order


def _backprop(roots, create_graph: bool, seed: float = 1.0) -> dict[Scalar, object]:
    """d(seed * sum of roots)/d(node) for every node the roots depend on (constants aside)."""
    grads: dict[Scalar, object] = {}
    for root in roots:
        if root.grad is not None:
            grads[root] = grads.get(root, 0.0) + seed
    for node in reversed(_toposort(roots)):
        g = grads.get(node)
        if node._op is None or g is None:
            continue
        parents = node._parents
        if create_graph:
            terms = node._op.gradient(*parents, node)
        else:
            terms = node._op.gradient(*[p.data for p in parents], node.data)
        if len(terms) != len(parents):
            raise ValueError(
                f"the gradient of op {node._op.name!r} returned {len(terms)} term(s) for "
                f"{len(parents)} input(s) ({registry.origin_of(node._op.name)})"
            )
        for p, t in zip(parents, terms):
            if p.grad is not None:  # constants take no gradient
                total = grads.get(p)
                grads[p] = t * g if total is None else total + t * g
    return grads


def grad(
    outputs: Scalar | Iterable[Scalar],
    inputs: Scalar | Iterable[Scalar],
    create_graph: bool = False,
) -> tuple:
    """Gradients of the sum of ``outputs`` with respect to each of ``inputs``, one per input.

    Nothing's ``.grad`` is touched. With ``create_graph=True`` the gradients are Scalars built
    from the inputs, so they can be differentiated again (higher-order derivatives).
    """
    outputs = _scalars(outputs, "outputs")
    inputs = _scalars(inputs, "inputs")
    grads = _backprop(outputs, create_graph)
    result = [grads.get(x, 0.0) for x in inputs]
    if create_graph:
        return tuple(g if isinstance(g, Scalar) else _constant(g) for g in result)
    return tuple(map(float, result))


def _scalars(value, what: str) -> tuple[Scalar, ...]:
    items = (value,) if isinstance(value, Scalar) else tuple(value)
    for item in items:
        if not isinstance(item, Scalar):
            raise TypeError(f"grad() {what} must be Scalars; got {type(item).__name__} {item!r}")
    return items
