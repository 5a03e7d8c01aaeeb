"""The general backprop: gradients into a dict, to any order, for any roots; and ``grad``.

``Scalar.backward()`` runs the same chain rule straight into ``.grad``; this is the form the
backprop player observes step by step and that higher-order gradients build a graph with.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from . import engine, functional
from .engine import Scalar, _constant, local_gradient, mask_of, toposort

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
    if engine._on_read is not None and not create_graph:  # float gradients read values
        for root in roots:
            engine._on_read(root)
    grads: dict[Scalar, object] = {}
    for root in roots:
        if root.grad is not None:
            grads[root] = grads.get(root, 0.0) + seed
    # With create_graph=True, a node's gradient is one node: the op bound to "linear" (the sum
    # of products b + Σ t·g) over what its users passed it, rather than a * and a + per use.
    linear = engine.operators.get("linear") if create_graph else None
    pending: dict[Scalar, list] = {}  # node: the (term, upstream) pairs passed to it so far
    for node in reversed(toposort(roots)):
        if node in pending:  # every user of node comes before it: its gradient is complete
            g = grads[node] = _sum_of_products(linear, pending.pop(node), grads.get(node))
        else:
            g = grads.get(node)
        if node.op is None or g is None:
            continue
        terms = local_gradient(node, create_graph)
        masks = mask_of(node, terms, create_graph) if node.op.masks else None
        for k, (p, t) in enumerate(zip(node.parents, terms)):
            if p.grad is None:  # constants take no gradient
                continue
            u = g
            if masks is not None:  # an op that masks: the part itself, times 1.0 (x * 1.0 is x)
                t, u = _masked(masks[k], t, g), 1.0
            if linear is not None:
                pending.setdefault(p, []).append((t, u))
                continue
            part = _times(t, u)
            total = grads.get(p)
            grads[p] = part if total is None else total + part
        if observe is not None:
            observe(node, g, terms, grads)
    return grads


def _masked(m: object, t: object, g: object) -> object:
    """``engine.masked(m, t, g)``: ``t * g``, but 0.0 where the mask ``m`` is 0 and that is
    nan. With create_graph=True, chosen by ``where`` nodes, as a jit replay of the graph must
    choose: ``c - c`` is nonzero exactly where ``c`` is nan (or infinite, which it is not where
    the mask is 0, since the term is 0 there)."""
    c = _times(t, g)
    if not isinstance(m, Scalar) and m != 0:
        return c
    where = functional.where
    zeroed = where(c - c, 0.0, c) if isinstance(c, Scalar) else 0.0 if c != c else c
    return where(m, c, zeroed) if isinstance(m, Scalar) else zeroed


def _times(t: object, g: object) -> object:
    """``t * g``; but x * 1.0 is x exactly: with create_graph=True, that is one node fewer."""
    if t.__class__ is float and t == 1.0:
        return g
    return t if g.__class__ is float and g == 1.0 else t * g


def _sum_of_products(linear: object, pairs: list, start: object) -> object:
    """``start + t1·g1 + t2·g2 + ...`` in that order, as one node (or none, for x·1.0)."""
    if start is None and len(pairs) == 1:
        return _times(*pairs[0])
    terms, upstreams = zip(*pairs)
    return linear(-0.0 if start is None else start, *terms, *upstreams)  # -0.0 + x is x


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


def _scalars(value: object, what: str) -> tuple[Scalar, ...]:
    try:
        items = (value,) if isinstance(value, Scalar) else tuple(value)
    except TypeError:  # not a Scalar, nor an iterable of them: said below
        items = (value,)
    for item in items:
        if not isinstance(item, Scalar):
            raise TypeError(f"grad() {what} must be Scalars; got {type(item).__name__} {item!r}")
    return items
