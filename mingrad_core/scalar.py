"""Scalar, one node of the computation graph, and reverse-mode differentiation over the graph."""

from __future__ import annotations

import numbers
from collections.abc import Iterable
from typing import TYPE_CHECKING

from . import registry

if TYPE_CHECKING:
    from .registry import OpSpec


def _to_float(value: object) -> float:
    if type(value) is float:
        return value
    if isinstance(value, numbers.Real):  # int, bool, Fraction and numpy's real scalars
        return float(value)
    raise TypeError(f"a Scalar holds a real number; got {type(value).__name__} {value!r}")


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
        grads = _backprop((self,), (gradient,), create_graph=False)
        for node in grads:  # every node the root depends on, in topological order
            if node.grad is None:
                continue
            g = grads[node]
            node.grad = g if node._op is not None else node.grad + g

    def zero_grad(self) -> None:
        """Set the gradient of this node and of every node it was computed from to zero."""
        for node in _toposort((self,)):
            if node.grad is not None:
                node.grad = 0.0


def _operator(symbol: str, reflected: bool = False):
    def method(self, other):
        if not isinstance(other, (Scalar, numbers.Real)):
            return NotImplemented
        op = registry.bound_to(symbol)
        return op(other, self) if reflected else op(self, other)

    return method


for _symbol, _names in {
    "+": ("__add__", "__radd__"),
    "-": ("__sub__", "__rsub__"),
    "*": ("__mul__", "__rmul__"),
    "/": ("__truediv__", "__rtruediv__"),
    "**": ("__pow__", "__rpow__"),
}.items():
    setattr(Scalar, _names[0], _operator(_symbol))
    setattr(Scalar, _names[1], _operator(_symbol, reflected=True))
Scalar.__neg__ = lambda self: registry.bound_to("neg")(self)


def _constant(value: object) -> Scalar:
    node = Scalar(value)
    node.grad = None
    return node


def apply(op: OpSpec, args: tuple) -> Scalar | float:
    """Apply ``op`` to ``args``: a new graph node if any input is a Scalar, else a plain float."""
    if len(args) != op.arity:
        raise TypeError(f"op {op.name!r} takes {op.arity} input(s); got {len(args)}")
    numbers_only = not any(isinstance(a, Scalar) for a in args)
    if numbers_only and op.gradient is not None:
        return _result(op, op.forward(*map(_to_float, args)))
    inputs = tuple(a if isinstance(a, Scalar) else _constant(a) for a in args)
    if op.gradient is None:  # a composite: its forward is built from other ops on Scalars
        out = op.forward(*inputs)
        return float(out) if numbers_only else out
    out = Scalar.__new__(Scalar)
    out.data = _result(op, op.forward(*[a.data for a in inputs]))
    out.grad = 0.0
    out.name = None
    out._parents = inputs
    out._op = op
    return out


def _result(op: OpSpec, value: object) -> float:
    if type(value) is float:
        return value
    if isinstance(value, numbers.Real):
        return float(value)
    raise TypeError(
        f"op {op.name!r} forward returned {type(value).__name__} {value!r}; "
        f"expected a real number ({registry.origin_of(op.name)})"
    )


def _toposort(roots: Iterable[Scalar]) -> list[Scalar]:
    """Every node the roots depend on, each after its parents. Iterative: any depth works."""
    order: list[Scalar] = []
    seen: set[Scalar] = set()
    stack = [(root, False) for root in roots]
    while stack:
        node, expanded = stack.pop()
        if expanded:
            order.append(node)
        elif node not in seen:
            seen.add(node)
            stack.append((node, True))
            stack.extend((p, False) for p in node._parents if p not in seen)
    return order


def _backprop(roots, seeds, create_graph: bool) -> dict[Scalar, object]:
    """d(sum of seed * root)/d(node) for every node the roots depend on, in topological order."""
    order = _toposort(roots)
    grads: dict[Scalar, object] = dict.fromkeys(order, 0.0)
    for root, seed in zip(roots, seeds):
        grads[root] += seed
    for node in reversed(order):
        op = node._op
        if op is None:
            continue
        parents = node._parents
        if create_graph:
            terms = op.gradient(*parents, node)
        else:
            terms = op.gradient(*[p.data for p in parents], node.data)
        if len(terms) != len(parents):
            raise ValueError(
                f"the gradient of op {op.name!r} returned {len(terms)} term(s) for "
                f"{len(parents)} input(s) ({registry.origin_of(op.name)})"
            )
        g = grads[node]
        for p, t in zip(parents, terms):
            if p.grad is not None:
                grads[p] = grads[p] + t * g
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
    grads = _backprop(outputs, (1.0,) * len(outputs), create_graph)
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
