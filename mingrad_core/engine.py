"""The engine: Scalar, one node of the computation graph, and backpropagation over the graph.

Read top to bottom: the op table the registry fills; Scalar and its operators; how a node is
made (``apply``); the graph walked in topological order (``toposort``); ``backward``, which runs
the chain rule; and ``local_gradient``, which asks an op for its terms. Plugin loading,
validation, the general ``backprop``/``grad`` and value watching live in modules of their own.
"""

from __future__ import annotations

import operator as _py
import weakref
from collections.abc import Callable, Iterable, Sequence
from operator import attrgetter
from typing import TYPE_CHECKING

from .errors import arity_error, forward_error, gradient_error, unbound, wrong_term, wrong_terms
from .values import is_real, to_float

if TYPE_CHECKING:
    from .spec import OpSpec

# The op table. The registry fills it; the engine reads it by name and by Python operator.
ops: dict[str, OpSpec] = {}
operators: dict[str, OpSpec] = {}  # "+", "*", "neg", ...: read without a lock
origins: dict[str, object] = {}  # op name: the plugin that registered it
load_ops: Callable[[], object] | None = None  # the plugin loader's slot, until ops are loaded


def bound_to(operator: str) -> OpSpec:
    """The op bound to a Python operator (``"+"``, ``"**"``, ``"neg"``, ...)."""
    if load_ops is not None:
        load_ops()
    op = operators.get(operator)
    if op is None:
        raise unbound(operator, list(ops))
    return op


def _origin(op: OpSpec) -> str:
    return str(origins.get(op.name) or "not registered")


# Set by mingrad_core.watch while a tool (mingrad_jit) watches values being read and made.
_on_read: Callable[[Scalar], object] | None = None
_on_leaf: Callable[[Scalar, object], float] | None = None


def _binary(op: OpSpec | None, symbol: str, reflected: bool = False) -> Callable[..., Scalar]:
    """``Scalar.__add__`` and friends. Binding an op to an operator installs methods made for
    it (see the registry), so ``x + y`` applies that op without looking it up; with ``op``
    None (no op bound yet), the method looks the operator up, loading the plugins."""
    forward = None if op is None or op.gradient is None else op.forward  # None: use apply()

    def method(a: Scalar, b: object) -> Scalar:
        if b.__class__ is not Scalar and not isinstance(b, Scalar):
            if not is_real(b):
                return NotImplemented
            b = _constant(b)
        if reflected:
            a, b = b, a
        if forward is None:  # a composite, or no op bound yet
            return apply(op or bound_to(symbol), (a, b))
        out = _new(Scalar)  # what apply() does for a primitive, without its generic checks
        data = forward(a._data, b._data)
        out._data = data if data.__class__ is float else _forward_float(op, data)
        out.grad, out.name, out._op = 0.0, None, op
        out._a, out._b = a, b
        return out

    return method


def method(op: OpSpec | None, operator: str = "") -> Callable[..., Scalar]:
    """``op`` as a Scalar method: ``x.tanh()``, ``x.pow(2)``; or ``-x`` and ``abs(x)`` for the
    op bound to ``"neg"``, ``"abs"`` (looked up while none is: ``op`` None)."""
    fast = op is not None and op.arity == 1 and not op.variadic and op.gradient is not None
    forward = op.forward if fast else None

    def bound(self: Scalar, *args: object) -> Scalar:
        if forward is not None and not args and self.__class__ is Scalar:  # x.tanh()
            return _node(op, forward(self._data), (self,))
        return apply(op or bound_to(operator), (self, *args))

    if op is not None:
        bound.__name__, bound.__doc__ = op.name, op.doc or None
    return bound


def _compare(test: Callable[[float, float], bool]) -> Callable[[Scalar, object], bool]:
    """``<``, ``<=``, ``>``, ``>=`` compare values: a value read (refused while jit traces)."""

    def method(self: Scalar, other: object) -> bool:
        if isinstance(other, Scalar):
            return test(self.data, other.data)
        return test(self.data, to_float(other)) if is_real(other) else NotImplemented

    return method


class Scalar:
    """A float that remembers how it was computed, so that gradients can flow back to its inputs.

    Operators (``+ - * / **``, unary ``-``, ``abs``) and named methods (``x.tanh()``) are looked
    up in the op table; this class names no op. ``grad`` is ``None`` on constants: numbers mixed
    into an expression, which take no gradient. ``==`` is identity (nodes are dict keys), so
    ``loss == 0`` is never true: compare with ``<=`` or read ``loss.data``.
    """

    # A node's inputs live in two slots: ``_a`` and ``_b`` for one or two inputs, or a tuple in
    # ``_a`` for more. A tuple per node would be a second object for CPython's cyclic garbage
    # collector to track, and its scans of a growing graph cost more than building it. Named
    # ops are methods the registry installs: no ``__getattr__``, which would cost every
    # attribute read CPython's fast path.
    __slots__ = ("_data", "grad", "name", "_op", "_a", "_b", "__weakref__")
    __array_ufunc__ = None  # numpy scalars defer to Scalar instead of building object arrays

    grad: float | Scalar | None
    """d(root)/d(this node) after ``root.backward()``; leaves accumulate it. ``None`` on
    constants, which take no gradient."""
    name: str | None
    """An optional label, shown by drawings and the player."""

    # Until the plugins load, the operators look their op up; loading installs faster ones.
    __add__, __radd__ = _binary(None, "+"), _binary(None, "+", reflected=True)
    __sub__, __rsub__ = _binary(None, "-"), _binary(None, "-", reflected=True)
    __mul__, __rmul__ = _binary(None, "*"), _binary(None, "*", reflected=True)
    __truediv__, __rtruediv__ = _binary(None, "/"), _binary(None, "/", reflected=True)
    __pow__, __rpow__ = _binary(None, "**"), _binary(None, "**", reflected=True)
    __neg__, __abs__ = method(None, "neg"), method(None, "abs")
    __lt__, __le__, __gt__, __ge__ = map(_compare, (_py.lt, _py.le, _py.gt, _py.ge))

    def __init__(self, data: float, name: str | None = None) -> None:
        if name is not None and not isinstance(name, str):
            raise TypeError(f"a Scalar's name is a str or None; got {type(name).__name__}")
        if load_ops is not None:  # load the plugins: their ops become methods
            load_ops()
        self._data = to_float(data) if _on_leaf is None else _on_leaf(self, data)
        self.grad = 0.0
        self.name = name
        self._op: OpSpec | None = None
        self._a = self._b = None

    def _store(self, value: float) -> None:
        self._data = value if value.__class__ is float else to_float(value)

    # Reading is a slot read in C (a training loop reads every parameter every step); while
    # values are watched, mingrad_core.watch puts in a getter that reports reads.
    data = property(attrgetter("_data"), _store, doc="The value; assigning stores a float.")
    """The value, a float; assigning any real number stores it as a float."""

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

    def __format__(self, spec: str) -> str:
        return format(self.data, spec) if spec else str(self)

    def backward(self, gradient: float = 1.0) -> None:
        """Backpropagate from this node, writing d(self)/d(node) into every node's ``grad``.

        Computed nodes get this call's gradient; leaves add it to what they hold, so a second
        call on the same graph doubles the leaves' gradients (clear them with ``zero_grad``).
        If it raises, every leaf keeps the gradient it had.
        """
        if _on_read is not None:  # gradients are computed from the graph's values
            _on_read(self)
        order, leaves = _reset(self)
        try:
            if self.grad is not None:
                self.grad += to_float(gradient)
            _propagate(order)
        except BaseException:  # leave the leaves as they were
            for before, leaf in zip(pairs := reversed(leaves), pairs):
                leaf.grad = before
            raise
        for before, leaf in zip(pairs := reversed(leaves), pairs):  # last to first: see _reset
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
        gradient = op.gradient  # a local, then called: cheaper than calling op.gradient(...)
        g, a, b = node.grad, node._a, node._b
        try:  # the one- and two-input cases unrolled, for float terms
            if b is not None:
                ta, tb = gradient(a._data, b._data, node._data)
                if ta.__class__ is float and tb.__class__ is float:
                    pa, pb = ta * g, tb * g
                    if (pa != pa or pb != pb) and op.masks:  # 0 * nan is 0 where it masks
                        pa, pb = _masked_parts(node, (ta, tb), g)
                    if a.grad is not None:
                        a.grad += pa
                    if b.grad is not None:
                        b.grad += pb
                    continue
            elif a.__class__ is not tuple:
                (ta,) = gradient(a._data, node._data)
                if ta.__class__ is float:
                    part = ta * g
                    if part != part and op.masks:
                        (part,) = _masked_parts(node, (ta,), g)
                    if a.grad is not None:
                        a.grad += part
                    continue
        except Exception:
            pass  # the general path below says what went wrong, or recovers
        terms = local_gradient(node)  # relu, where, pow, pick: 0 * nan is 0 where they mask
        parts = _masked_parts(node, terms, g) if op.masks else [t * g for t in terms]
        for p, part in zip(node.parents, parts):
            if p.grad is not None:  # constants take no gradient
                p.grad += part


def _reset(root: Scalar) -> tuple[list[Scalar], list]:
    """backward()'s toposort, which readies the grads on its way: the computed nodes, in
    toposort's order, each at -0.0 (totals start from -0.0, since -0.0 + x is x for every x);
    and each leaf then the gradient it held, now -0.0 too (before + total is added at the end,
    which is what adding in place from a zero gives). A leaf whose grad is a property (a
    parameter in bulk) never reads back as ``seen``: it may be listed again, with -0.0, so the
    list is undone last to first."""
    seen = float("-0.0")  # a new float each call: a node is seen once its grad is this one
    order, leaves, stack = [], [], [root]
    push, pop, place = stack.append, stack.pop, _PLACE  # local names: this loop is hot
    while stack:
        node = pop()
        if node is place:  # below it on the stack: a node whose parents are all placed now
            order.append(pop())
        elif node.grad is not seen:
            a, b = node._a, node._b
            if a is None:  # a leaf; a constant's grad is None
                if node.grad is not None:
                    leaves += node, node.grad  # flat: no tuple for the collector to track
                    node.grad = seen
                continue
            node.grad = seen
            push(node)
            push(place)
            if b is not None:
                if b.grad is not seen:
                    push(b)
                if a.grad is not seen:
                    push(a)
            elif a.__class__ is tuple:
                stack.extend(reversed(a))
            elif a.grad is not seen:
                push(a)
    return order, leaves


def _masked_parts(node: Scalar, terms: Sequence[float], g: float) -> list[float]:
    """What each input of ``node``, whose op masks, gets from upstream ``g``: ``masked``."""
    return [masked(m, t, g) for m, t in zip(mask_of(node, terms), terms)]


_new = object.__new__


def _constant(value: object) -> Scalar:
    """A number mixed into an expression: a leaf that takes no gradient."""
    node = _new(Scalar)
    node._data = to_float(value) if _on_leaf is None else _on_leaf(node, value)
    node.grad = node.name = node._op = node._a = node._b = None
    return node


def _node(op: OpSpec, data: object, parents: tuple[Scalar, ...]) -> Scalar:
    out = _new(Scalar)
    out._data = data if data.__class__ is float else _forward_float(op, data)
    out.grad, out.name, out._op = 0.0, None, op
    n = len(parents)  # one or two inputs in _a and _b; more: their tuple in _a
    out._a, out._b = parents if n == 2 else (parents[0] if n == 1 else parents, None)
    return out


def _forward_float(op: OpSpec, data: object) -> float:
    if is_real(data):
        return to_float(data)
    raise forward_error(op, _origin(op), data, "a real number")


_composites: weakref.WeakKeyDictionary[Scalar, tuple[OpSpec, tuple[Scalar, ...]]] = (
    weakref.WeakKeyDictionary()
)


def composite_of(node: Scalar) -> tuple[OpSpec, tuple[Scalar, ...]] | None:
    """The composite op (and its inputs) whose result ``node`` is, if it is one."""
    return _composites.get(node)


def apply(op: OpSpec, args: tuple) -> Scalar | float:
    """Apply ``op`` to ``args``: a new graph node if any input is a Scalar, else a plain float."""
    if len(args) == 1 and args[0].__class__ is Scalar and op.arity == 1 and op.gradient:
        return _node(op, op.forward(args[0]._data), args)  # x.tanh(): the common case
    if len(args) != op.arity and not (op.variadic and len(args) > op.arity):
        raise arity_error(op, len(args))
    data = [a._data for a in args if isinstance(a, Scalar)]
    if not data:  # numbers in, number out (a composite's forward runs on constants)
        args = tuple(map(to_float, args))
    if op.gradient is not None:
        if len(data) == len(args):
            return _node(op, op.forward(*data), args)
        if not data:
            return _forward_float(op, op.forward(*args))
    inputs = tuple(a if isinstance(a, Scalar) else _constant(a) for a in args)
    if op.gradient is None:  # a composite: its forward is built from other ops on Scalars
        out = op.forward(*inputs)
        if not isinstance(out, Scalar):
            raise forward_error(op, _origin(op), out, "a Scalar")
        if not data:
            return out._data
        if out not in inputs:
            _composites[out] = (op, inputs)
        return out
    return _node(op, op.forward(*[a._data for a in inputs]), inputs)


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
                push(b)
                push(a)
            elif a.__class__ is tuple:
                stack.extend(reversed(a))
            else:
                push(a)
    return order


_PLACE = object()


def local_gradient(node: Scalar, create_graph: bool = False) -> tuple:
    """The local gradient of a computed node: d(node)/d(input) per input, as its op declares.

    Floats (see :func:`gradient_terms`), or with ``create_graph=True`` Scalars, differentiable
    again. Anything but one real number per input raises :class:`GradientError`.
    """
    parents = node.parents
    if not create_graph:
        return gradient_terms(node._op, [p._data for p in parents], node._data)
    try:
        terms = node._op.gradient(*parents, node)
    except Exception as exc:
        raise _failed(node._op, [p._data for p in parents], exc) from exc
    return _checked(node._op, [p._data for p in parents], terms, create_graph)


def gradient_terms(op: OpSpec, inputs: Sequence[float], out: float) -> tuple[float, ...]:
    """``op``'s local gradient at float ``inputs`` (and output ``out``), one float per input.

    A formula whose float arithmetic raises (``1 / 0``) is evaluated again through the
    registered ops, which follow IEEE-754 as the Scalar path does, so both paths agree.
    """
    try:
        try:
            terms = op.gradient(*inputs, out)
        except ArithmeticError:
            terms = op.gradient(*map(_constant, inputs), _constant(out))
    except Exception as exc:
        raise _failed(op, inputs, exc) from exc
    return _checked(op, inputs, terms, False)


def mask_of(node: Scalar, terms: tuple, create_graph: bool = False) -> tuple:
    """Per input of ``node``, its op's mask (``OpSpec.masks``): 0 where nothing passes back to
    it but 0, even from an infinite or nan upstream gradient (see :func:`masked`); nonzero
    elsewhere. ``terms`` is its local gradient; floats, or with ``create_graph=True`` Scalars.
    """
    op = node._op
    if not callable(op.masks):
        return terms if op.masks else (1.0,) * len(terms)
    inputs = [p._data for p in node.parents]
    args = (*node.parents, node) if create_graph else (*inputs, node._data)
    return _checked(op, inputs, op.masks(*args), create_graph)


def masked(mask: float, term: float, upstream: float) -> float:
    """What an input gets: ``term * upstream``, but 0.0 where its mask is 0 and that product
    is nan (the term is 0 there, so 0 * inf or 0 * nan), as PyTorch's relu and where give."""
    part = term * upstream
    return 0.0 if part != part and mask == 0 else part


def _failed(op: OpSpec, inputs: Sequence[float], exc: Exception) -> Exception:
    return gradient_error(op, _origin(op), inputs, f"raised {type(exc).__name__}: {exc}")


def _checked(op: OpSpec, inputs: Sequence[float], terms: object, create_graph: bool) -> tuple:
    if not isinstance(terms, tuple | list) or len(terms) != len(inputs):
        raise gradient_error(op, _origin(op), inputs, wrong_terms(terms, len(inputs)))
    out = []
    for t in terms:
        if t.__class__ is not float and not (create_graph and isinstance(t, Scalar)):
            if isinstance(t, Scalar):
                t = t._data
            elif is_real(t):
                t = to_float(t)  # an int too large for a float is inf
            else:
                raise gradient_error(op, _origin(op), inputs, wrong_term(terms, t))
        out.append(t)
    return tuple(out)
