"""Scalar, one node of the computation graph, and reverse-mode differentiation over the graph."""

from __future__ import annotations

import math
import numbers
import threading
import weakref
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from operator import attrgetter
from typing import TYPE_CHECKING

from . import registry

if TYPE_CHECKING:
    from .registry import OpSpec


def _to_float(value: object, op: OpSpec | None = None) -> float:
    """``value`` as a float: a Scalar's data, or what ``op``'s forward returned."""
    if type(value) is float:
        return value
    if isinstance(value, numbers.Real) or _numpy_real(value):  # int, bool, Fraction, numpy's
        try:
            return float(value)
        except OverflowError:  # an int too large for a float: inf, as IEEE arithmetic gives
            return math.inf if value > 0 else -math.inf
    if op is None:
        raise TypeError(f"a Scalar holds a real number; got {_described(value)}")
    raise TypeError(
        f"op {op.name!r} ({_origin(op)}) forward returned {_described(value)}; expected a real "
        f"number"
    )


def _numpy_real(value: object) -> bool:
    """A numpy scalar of a real kind (``numpy.bool_`` is not a ``numbers.Real``)."""
    dtype = getattr(value, "dtype", None)
    return getattr(value, "shape", None) == () and getattr(dtype, "kind", "") in "biuf"


def _short(value: object, limit: int = 80) -> str:
    text = repr(value)
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text)} characters)"


def _described(value: object) -> str:
    return f"{type(value).__name__} {_short(value)}"


def _origin(op: OpSpec) -> str:
    """Which plugin registered ``op``, for error messages (an op used unregistered has none)."""
    return str(registry.origin_of(op.name) or "not registered")


_DATA_DOC = "The value. Assigning any real number stores it as a float."


def _operator(symbol: str, reflected: bool = False):
    """``Scalar.__add__`` and friends: apply whatever op the registry binds to ``symbol``."""

    def method(self, other):
        if other.__class__ is not Scalar:
            if isinstance(other, Scalar):
                pass
            elif isinstance(other, numbers.Real) or _numpy_real(other):
                other = _constant(other)
            else:
                return NotImplemented
        a, b = (other, self) if reflected else (self, other)
        op = registry._operators.get(symbol) or registry.bound_to(symbol)
        if op.gradient is None:  # a composite
            return apply(op, (a, b))
        out = _new(Scalar)  # what apply() does for a primitive, without its generic checks
        data = op.forward(a._data, b._data)
        out._data = data if data.__class__ is float else _to_float(data, op)
        out.grad, out.name, out._op, out._a, out._b = 0.0, None, op, a, b
        return out

    return method


class Scalar:
    """A float that remembers how it was computed, so that gradients can flow back to its inputs.

    Operators (``+ - * / **``, unary ``-``) and named methods (``x.tanh()``, or ``x.gelu()``
    once a plugin provides it) are looked up in the op registry; this class names no op.
    ``grad`` is ``None`` on constants: numbers mixed into an expression, which take no gradient.
    """

    # A node's inputs live in two slots: ``_a`` and ``_b`` for one or two inputs, or a tuple in
    # ``_a`` for more. A tuple per node would be a second object for CPython's cyclic garbage
    # collector to track, and the collector's scans of a growing graph cost more than building
    # it (benchmarks/engine.py). Named ops are methods the registry installs (no ``__getattr__``:
    # a class with one loses CPython's fast path for every attribute read, the slots included).
    __slots__ = ("_data", "grad", "name", "_op", "_a", "_b", "__weakref__")
    __array_ufunc__ = None  # numpy scalars defer to Scalar instead of building object arrays

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
        if name is not None and not isinstance(name, str):
            raise TypeError(f"a Scalar's name is a str or None; got {type(name).__name__}")
        if registry._published is None:  # load the plugins: their ops become methods
            registry._current()
        self._data = _to_float(data) if _on_leaf is None else _on_leaf(self, data)
        self.grad = 0.0
        self.name = name
        self._op: OpSpec | None = None
        self._a = self._b = None

    def _store(self, value: float) -> None:
        self._data = value if value.__class__ is float else _to_float(value)

    # Reading is a slot read in C (a training loop reads every parameter's value every step);
    # watch_values() puts in a getter that reports reads, while it is active.
    data = property(attrgetter("_data"), _store, doc=_DATA_DOC)

    @property
    def parents(self) -> tuple[Scalar, ...]:
        """The inputs this node was computed from, in argument order (``a*a`` lists ``a`` twice)."""
        a, b = self._a, self._b
        if b is not None:
            return (a, b)
        return () if a is None else a if a.__class__ is tuple else (a,)

    @property
    def op(self) -> OpSpec | None:
        """The op that computed this node; ``None`` for a leaf."""
        return self._op

    def __repr__(self) -> str:
        name = f", name={self.name!r}" if self.name is not None else ""
        return f"Scalar(data={self._data!r}, grad={self.grad!r}{name})"

    def __float__(self) -> float:
        return self.data

    def backward(self, gradient: float = 1.0) -> None:
        """Backpropagate from this node, writing d(self)/d(node) into every node's ``grad``.

        Computed nodes get this call's gradient; leaves add it to what they hold, so a second
        call on the same graph doubles the leaves' gradients (clear them with ``zero_grad``).
        """
        if _on_read is not None:  # gradients are computed from the graph's values
            _on_read(self)
        # The same numbers as backprop(), summed in the same order, but accumulated straight
        # into .grad: no dict per edge, and the one- and two-input cases unrolled.
        order = toposort(self)
        leaves = []
        for node in order:  # totals start from -0.0, since -0.0 + x is x for every x
            if node._op is not None:
                node.grad = -0.0
            elif node.grad is not None and node.grad != 0.0:
                leaves.append((node, node.grad))  # before + total, added once at the end
                node.grad = -0.0
            # else a leaf at ±0.0 (after zero_grad): adding into it gives before + total exactly
        try:
            if self.grad is not None:
                self.grad += _to_float(gradient)
            _propagate(order)
        except BaseException:  # leave the leaves as they were: the zeros, and before
            for node in order:
                if node._op is None and node.grad is not None:
                    node.grad = 0.0
            for leaf, before in leaves:
                leaf.grad = before
            raise
        for leaf, before in leaves:
            leaf.grad = before + leaf.grad

    def zero_grad(self) -> None:
        """Set the gradient of this node and of every node it was computed from to zero."""
        for node in toposort(self):
            if node.grad is not None:
                node.grad = 0.0


def _propagate(order: list[Scalar]) -> None:
    """backward()'s loop: each computed node, users first, passes grad * term to its inputs."""
    for node in reversed(order):
        op = node._op
        if op is None:
            continue
        g, a, b = node.grad, node._a, node._b
        try:
            if b is not None:
                ta, tb = op.gradient(a._data, b._data, node._data)
                if ta.__class__ is float and tb.__class__ is float:
                    if a.grad is not None:
                        a.grad += ta * g
                    if b.grad is not None:
                        b.grad += tb * g
                    continue
            elif a.__class__ is not tuple:
                (ta,) = op.gradient(a._data, node._data)
                if ta.__class__ is float:
                    if a.grad is not None:
                        a.grad += ta * g
                    continue
        except Exception:
            pass  # the general path below says what went wrong, or recovers
        for p, t in zip(node.parents, local_gradient(node)):
            if p.grad is not None:  # constants take no gradient
                p.grad += t * g


_on_read: Callable[[Scalar], float] | None = None
_on_leaf: Callable[[Scalar, object], float] | None = None


@contextmanager
def watch_values(
    on_read: Callable[[Scalar], None],
    on_leaf: Callable[[Scalar, object], float] | None = None,
) -> Iterator[None]:
    """While active, call ``on_read(node)`` whenever code reads a Scalar's value (``.data``,
    ``float()``) or computes float gradients from the graph ending at it (``backward()``,
    ``grad()`` and ``backprop()`` without ``create_graph``), and let ``on_leaf(node, value)``
    turn the value a new leaf or constant is made from into its float (seeing which node was
    made from which number).

    For tools that record a graph (``mingrad_jit``): they must know when a computation depends
    on a value, and where numbers enter it. Only the calling thread is watched; one watch at a
    time; the engine's own reads of values are not seen.
    """
    global _on_read, _on_leaf
    if _on_leaf is not None:
        raise RuntimeError("values are already being watched")
    watched = threading.get_ident()

    def read(node: Scalar) -> float:
        if threading.get_ident() == watched:
            on_read(node)
        return node._data

    def leaf(node: Scalar, value: object) -> float:
        if on_leaf is not None and threading.get_ident() == watched:
            return on_leaf(node, value)
        return _to_float(value)

    _on_read, _on_leaf = read, leaf
    plain, Scalar.data = Scalar.data, property(read, Scalar._store, doc=_DATA_DOC)
    try:
        yield
    finally:
        Scalar.data = plain
        _on_read = _on_leaf = None


def _constant(value: object) -> Scalar:
    node = Scalar(value)
    node.grad = None
    return node


def _node(op: OpSpec, data: object, parents: tuple[Scalar, ...]) -> Scalar:
    out = _new(Scalar)
    out._data = data if data.__class__ is float else _to_float(data, op)
    out.grad = 0.0
    out.name = None
    out._op = op
    if len(parents) == 2:
        out._a, out._b = parents
    else:
        out._a, out._b = parents[0] if len(parents) == 1 else parents, None
    return out


_new = object.__new__
_composites: weakref.WeakKeyDictionary[Scalar, tuple[OpSpec, tuple[Scalar, ...]]] = (
    weakref.WeakKeyDictionary()
)


def composite_of(node: Scalar) -> tuple[OpSpec, tuple[Scalar, ...]] | None:
    """The composite op (and its inputs) whose result ``node`` is, if it is one."""
    return _composites.get(node)


def apply(op: OpSpec, args: tuple) -> Scalar | float:
    """Apply ``op`` to ``args``: a new graph node if any input is a Scalar, else a plain float."""
    if len(args) == 1 and args[0].__class__ is Scalar and op.arity == 1 and op.gradient:
        return _node(op, op.forward(args[0]._data), args)  # x.tanh(): the common case, first
    if len(args) != op.arity and not (op.variadic and len(args) > op.arity):
        more = " or more" if op.variadic else ""
        raise TypeError(f"op {op.name!r} takes {op.arity}{more} input(s); got {len(args)}")
    data = [a._data for a in args if isinstance(a, Scalar)]
    if not data:  # numbers in, number out (a composite's forward runs on constants)
        args = tuple(map(_to_float, args))
    if op.gradient is not None:
        if len(data) == len(args):
            return _node(op, op.forward(*data), args)
        if not data:
            return _to_float(op.forward(*args), op)
    inputs = tuple(a if isinstance(a, Scalar) else _constant(a) for a in args)
    if op.gradient is None:  # a composite: its forward is built from other ops on Scalars
        out = op.forward(*inputs)
        if not isinstance(out, Scalar):
            raise TypeError(
                f"composite op {op.name!r} ({_origin(op)}) forward returned {_described(out)}; "
                f"expected a Scalar"
            )
        if not data:
            return out._data
        if out not in inputs:
            _composites[out] = (op, inputs)
        return out
    return _node(op, op.forward(*[a._data for a in inputs]), inputs)


def method(op: OpSpec) -> Callable[..., Scalar]:
    """``op`` as a Scalar method: ``x.tanh()``, ``x.pow(2)``."""

    def bound(self: Scalar, *args: object) -> Scalar:
        return apply(op, (self, *args))

    bound.__name__, bound.__doc__ = op.name, op.doc or None
    return bound


def toposort(roots: Scalar | Iterable[Scalar]) -> list[Scalar]:
    """Every node the roots depend on, each after its parents. Iterative: any depth works."""
    order: list[Scalar] = []
    seen: set[Scalar] = set()
    stack: list = [roots] if isinstance(roots, Scalar) else list(roots)
    push, pop, place = stack.append, stack.pop, _PLACE  # local names: this loop is hot
    while stack:
        node = pop()
        if node is place:  # below it on the stack: a node whose parents are all placed now
            order.append(pop())
        elif node not in seen:
            seen.add(node)
            a, b = node._a, node._b
            if a is None:
                order.append(node)
                continue
            push(node)
            push(place)
            if b is not None:
                if b not in seen:
                    push(b)
                if a not in seen:
                    push(a)
            elif a.__class__ is tuple:
                for p in reversed(a):
                    if p not in seen:
                        push(p)
            elif a not in seen:
                push(a)
    return order


_PLACE = object()


Observer = Callable[[Scalar, object, tuple, dict], None]


def backprop(
    roots: Scalar | Iterable[Scalar],
    *,
    seed: float = 1.0,
    create_graph: bool = False,
    observe: Observer | None = None,
) -> dict[Scalar, object]:
    """d(seed * sum of roots)/d(node) for every node the roots depend on (constants aside).

    Nodes are processed in reverse topological order; ``observe(node, upstream, terms,
    totals)``, if given, is called after each computed node has passed ``upstream * term`` to
    each input, with ``totals`` the running gradients so far (this is what the backprop
    player shows; with ``create_graph=True``, a node's total appears once all its users have
    passed theirs). Nothing's ``.grad`` is touched.
    """
    roots = (roots,) if isinstance(roots, Scalar) else tuple(roots)
    if _on_read is not None and not create_graph:  # float gradients are read from values
        for root in roots:
            _on_read(root)
    grads: dict[Scalar, object] = {}
    for root in roots:
        if root.grad is not None:
            grads[root] = grads.get(root, 0.0) + seed
    # With create_graph=True, a node's gradient is one node: the op bound to "linear" (the sum
    # of products b + Σ t·g) over what its users passed it, rather than a * and a + per use.
    linear = registry._operators.get("linear") if create_graph else None
    pending: dict[Scalar, list] = {}  # node: the (term, upstream) pairs passed to it so far
    for node in reversed(toposort(roots)):
        if node in pending:  # every user of node comes before it: its gradient is complete
            g = grads[node] = _sum_of_products(linear, pending.pop(node), grads.get(node))
        else:
            g = grads.get(node)
        if node._op is None or g is None:
            continue
        parents = node.parents
        terms = local_gradient(node, create_graph)
        for p, t in zip(parents, terms):
            if p.grad is None:  # constants take no gradient
                continue
            if linear is not None:
                pending.setdefault(p, []).append((t, g))
                continue
            part = _times(t, g)
            total = grads.get(p)
            grads[p] = part if total is None else total + part
        if observe is not None:
            observe(node, g, terms, grads)
    return grads


def _times(t: object, g: object) -> object:
    """``t * g``; but x * 1.0 is x exactly: with create_graph=True, that is one node fewer."""
    if t.__class__ is float and t == 1.0:
        return g
    return t if g.__class__ is float and g == 1.0 else t * g


def _sum_of_products(linear: OpSpec, pairs: list, start: object) -> object:
    """``start + t1·g1 + t2·g2 + ...`` in that order, as one node (or none, for x·1.0)."""
    if start is None and len(pairs) == 1:
        return _times(*pairs[0])
    terms, upstreams = zip(*pairs)
    return linear(-0.0 if start is None else start, *terms, *upstreams)  # -0.0 + x is x


def local_gradient(node: Scalar, create_graph: bool = False) -> tuple:
    """The local gradient of a computed node: d(node)/d(input) per input, as its op declares.

    Floats, or with ``create_graph=True`` Scalars (differentiable again). A formula whose float
    arithmetic raises (``1 / 0``) is evaluated again through the registered ops, which follow
    IEEE-754 as the Scalar path does, so both paths agree. Anything but one real number per
    input raises :class:`GradientError`, naming the op, its plugin and what came back.
    """
    parents = node.parents
    try:
        if create_graph:
            terms = node._op.gradient(*parents, node)
        else:
            try:
                terms = node._op.gradient(*[p._data for p in parents], node._data)
            except ArithmeticError:
                inputs = [_constant(p._data) for p in parents]
                terms = node._op.gradient(*inputs, _constant(node._data))
    except Exception as exc:
        raise _gradient_error(node, f"raised {type(exc).__name__}: {exc}") from exc
    if not isinstance(terms, tuple | list) or len(terms) != len(parents):
        n = len(parents)
        got = f"{len(terms)} term(s)" if isinstance(terms, tuple | list) else _described(terms)
        raise _gradient_error(
            node, f"returned {got}; expected a tuple of {n} term(s), one per input"
        )
    out = []
    for t in terms:
        if t.__class__ is not float and not (create_graph and isinstance(t, Scalar)):
            if isinstance(t, Scalar):
                t = t._data
            elif isinstance(t, numbers.Real) or _numpy_real(t):
                t = _to_float(t)  # an int too large for a float is inf
            else:
                raise _gradient_error(
                    node,
                    f"returned {_short(terms)}: a term that is {_described(t)}; expected "
                    f"real numbers",
                )
        out.append(t)
    return tuple(out)


class GradientError(TypeError, ValueError):
    """An op's gradient raised, or returned something other than one real number per input."""


def _gradient_error(node: Scalar, what: str) -> GradientError:
    parents = node.parents
    inputs = ", ".join(repr(p._data) for p in parents[:8])
    more = ", ..." if len(parents) > 8 else ""
    return GradientError(
        f"the gradient of op {node._op.name!r} ({_origin(node._op)}) at inputs ({inputs}{more}) "
        f"{what}"
    )


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
    grads = backprop(outputs, create_graph=create_graph)
    result = [grads.get(x, 0.0) for x in inputs]
    if create_graph:
        return tuple(g if isinstance(g, Scalar) else _constant(g) for g in result)
    return tuple(map(float, result))


def _scalars(value, what: str) -> tuple[Scalar, ...]:
    try:
        items = (value,) if isinstance(value, Scalar) else tuple(value)
    except TypeError:  # not a Scalar, nor an iterable of them: said below
        items = (value,)
    for item in items:
        if not isinstance(item, Scalar):
            raise TypeError(f"grad() {what} must be Scalars; got {type(item).__name__} {item!r}")
    return items
