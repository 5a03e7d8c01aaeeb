"""Watching values: how a tool that records graphs (``mingrad_jit``) hooks into the engine.

The protocol is one object with two methods, given to :func:`watch`:

- ``read(node)``: called when code reads a Scalar's value (``.data``, ``float()``, a comparison,
  ``format()``) or computes float gradients from the graph ending at ``node`` (``backward()``,
  ``grad()`` and ``backprop()`` without ``create_graph``). Raise to refuse the read.
- ``leaf(node, value) -> float``: called for every number that becomes a leaf or a constant
  (``Scalar(value)``, or a number mixed into an expression), returning the float to store; it
  sees which node was made from which number.

Only the calling thread is watched; one watch at a time; the engine's own reads are not seen.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Protocol

from . import engine
from .engine import Scalar
from .values import to_float


class Watcher(Protocol):
    """What :func:`watch` calls: see this module's docstring."""

    def read(self, node: Scalar) -> object: ...

    def leaf(self, node: Scalar, value: object) -> float: ...


@contextmanager
def watch(watcher: Watcher) -> Iterator[None]:
    """While active, report value reads and new leaves in this thread to ``watcher``."""
    if engine._on_leaf is not None:
        raise RuntimeError("values are already being watched")
    watched = threading.get_ident()

    def read(node: Scalar) -> float:
        if threading.get_ident() == watched:
            watcher.read(node)
        return node._data

    def leaf(node: Scalar, value: object) -> float:
        if threading.get_ident() == watched:
            return watcher.leaf(node, value)
        return to_float(value)

    plain = Scalar.data
    engine._on_read, engine._on_leaf = read, leaf
    Scalar.data = property(read, plain.fset, doc=plain.__doc__)
    try:
        yield
    finally:
        Scalar.data = plain
        engine._on_read = engine._on_leaf = None
