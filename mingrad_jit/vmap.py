"""``vmap``: map a per-sample function over a batch; inside ``jit``, trace one sample, replay B.

Eagerly, ``vmap(f)(*batched)`` is ``[f(*a) for a in zip(*batched)]``. While ``jit`` traces a
function that calls it, ``f`` runs on the first sample of each per-sample structure only; the
trace around it gets one leaf per result of every sample, and the replay computes them all
with ``BatchedReplay``: a numpy call per group of the sample's graph over the batch axis.
Where a batch cannot be replayed that way (an item that is not one of the jitted function's
argument numbers, such as a Scalar computed in the function or a number written in it; a
result that is not a Scalar; a ``vmap`` inside ``f``), ``f`` runs on every sample instead, as
eagerly: the same results, traced sample by sample.
"""

from __future__ import annotations

import functools
import math
import threading
from collections.abc import Callable, Sequence
from itertools import chain
from operator import attrgetter
from typing import Any

import numpy as np

from mingrad_core import Scalar

from .plan import Batch, BatchLeaf, build
from .trace import (
    ArrayArgument,
    Trace,
    TracedNumber,
    TracedValueError,
    Tracer,
    _user_line,
    remake,
)

_inside = threading.local()  # .depth: how many vmapped functions this thread is tracing


class VmapArgumentError(TypeError):
    """``vmap``'s arguments are not sequences of one length (the batch)."""


class _Unbatchable(Exception):
    """This call's batch cannot be replayed as arrays: map ``f`` over the samples instead."""


class Vmapped:
    """``f`` mapped over the first axis of each argument (see ``vmap``)."""

    def __init__(self, fn: Callable) -> None:
        if not callable(fn):
            raise TypeError(f"vmap() takes a function; got {type(fn).__name__} {fn!r:.60}")
        functools.update_wrapper(self, fn)
        self.fn = fn

    def __call__(self, *batched: Any) -> list:
        size = _batch_size(batched, getattr(self.fn, "__qualname__", repr(self.fn)))
        tracer = Tracer.active()
        if tracer is None or getattr(_inside, "depth", 0):
            return [self.fn(*sample) for sample in zip(*batched)]
        try:
            return _traced(self.fn, batched, size, tracer)
        except _Unbatchable:
            return [self.fn(*sample) for sample in zip(*batched)]


def vmap(fn: Callable) -> Vmapped:
    """Map the per-sample function ``fn`` over a batch: ``vmap(fn)(*batched)``.

    Each argument is a sequence of B per-sample items (nested lists or tuples of numbers, or a
    numpy array whose first axis is the batch); the result is the list of B results of ``fn``.
    Eagerly it is exactly ``[fn(*a) for a in zip(*batched)]``. Inside a ``jit``-ted function,
    ``fn`` is traced once per per-sample structure and replayed over all B samples as arrays
    (a layer's neurons as one matrix product over the batch).
    """
    return Vmapped(fn)


def _batch_size(batched: tuple, name: str) -> int:
    """The common length B of the arguments, or an error saying what vmap takes."""
    if not batched:
        raise VmapArgumentError(f"vmap({name}) was called with no arguments; it maps over them")
    sizes = []
    for position, arg in enumerate(batched, 1):
        if (
            isinstance(arg, np.ndarray)
            and arg.ndim == 0
            or not isinstance(arg, Sequence | np.ndarray)
            or isinstance(arg, str | bytes)
        ):
            raise VmapArgumentError(
                f"argument {position} of vmap({name}) is {type(arg).__name__} {arg!r:.60}; "
                "expected a sequence of per-sample items (a list, a tuple, or a numpy array "
                "whose first axis is the batch)"
            )
        sizes.append(len(arg))
    if len(set(sizes)) > 1:
        raise VmapArgumentError(
            f"the arguments of vmap({name}) have different batch sizes "
            f"({', '.join(map(str, sizes))}); every argument needs one item per sample"
        )
    return sizes[0]


def _uniform(batched: tuple) -> np.ndarray | None:
    """Every sample's slots as a (B, numbers per sample) table, if each argument is a numpy
    array argument, or a batch of argument numbers or of flat lists of them, one length, read
    without a Python call per number; else None."""
    columns = []
    for arg in batched:
        if arg.__class__ is ArrayArgument and not arg.filled:  # rows of a numpy array
            columns.append(arg.slots())
            continue
        kinds = set(map(type, arg))
        if kinds == {TracedNumber}:
            columns.append(np.fromiter(map(_slot_of, arg), dtype=np.intp)[:, None])
        elif kinds == {list} and len(set(map(len, arg))) == 1:
            if not _ONLY_NUMBERS.issuperset(map(type, chain.from_iterable(arg))):
                return None
            slots = np.fromiter(map(_slot_of, chain.from_iterable(arg)), dtype=np.intp)
            columns.append(slots.reshape(len(arg), -1))
        else:
            return None
    return np.hstack(columns)


_slot_of = attrgetter("slot")
_ONLY_NUMBERS = frozenset((TracedNumber,))


def _leaves(value: Any, out: list) -> Any:
    """``value``'s structure, its argument numbers appended to ``out`` (their slots)."""
    if value.__class__ is TracedNumber:
        out.append(value.slot)
        return None
    if isinstance(value, list | tuple):
        return (type(value), tuple(_leaves(v, out) for v in value))
    raise _Unbatchable  # a number written in the function, a Scalar, ...


def _traced(fn: Callable, batched: tuple, size: int, tracer: Tracer) -> list:
    """Trace ``fn`` on one sample per structure; the results as leaves fed by a batch."""
    table = _uniform(batched)
    if table is not None:  # one structure
        by_structure = {None: (list(range(size)), table)}
    else:
        by_structure = {}
        for b, sample in enumerate(zip(*batched)):
            slots: list[int] = []
            columns, feeds = by_structure.setdefault(_leaves(sample, slots), ([], []))
            columns.append(b)
            feeds.append(slots)
    results: list[Any] = [None] * size
    planned = []
    for columns, feeds in by_structure.values():
        planned.append((columns, *_plan(fn, [batched, columns[0]], feeds, tracer)))
    for columns, batch, outputs in planned:
        sources = [(batch, k) for k in range(batch.outputs)]
        if outputs == 0:  # f returns one Scalar: one leaf per sample, made inline (B of them)
            source, new = sources[0], _new
            for column, b in enumerate(columns):
                node = results[b] = new(_BatchResult)
                node.name = None
                node.source = source
                node.start = column
                node.stop = column + 1
                node.zero = False
            continue
        for column, b in enumerate(columns):
            roots = [_result(source, column, column + 1) for source in sources]
            results[b] = _fill(outputs, roots)
    return results


def _plan(fn: Callable, at: list, feeds: Any, tracer: Tracer) -> tuple[Batch, Any]:
    """Trace ``fn`` on sample ``at[1]`` and plan its graph; a batch fed by ``feeds``."""
    batched, b = at
    _inside.depth = getattr(_inside, "depth", 0) + 1
    try:
        result = fn(*(_item(arg, b) for arg in batched))
    finally:
        _inside.depth -= 1
    roots: list[Scalar] = []
    outputs = _outputs(result, roots)
    plan = build(Trace(None, roots, tracer.slots, tracer.created, [], []))
    if plan.batches:  # reads another vmap's results: not batched
        raise _Unbatchable
    table = np.asarray(feeds, dtype=np.intp).reshape(len(feeds), -1)
    position: dict[int, int] = {}
    for j, slot in enumerate(table[0].tolist()):
        if position.setdefault(slot, j) != j and not np.array_equal(
            table[:, j], table[:, position[slot]]
        ):  # a number passed twice in the first sample, but not in another
            raise _Unbatchable
    rows = [
        table[:, position[slot]] if slot in position else np.full(len(table), slot)
        for slot in plan.slot_of.tolist()
    ]
    feed = np.array(rows, dtype=np.intp).reshape(len(rows), len(table))
    return Batch(plan, feed, len(roots), len(feeds)), outputs


def _item(arg: Any, b: int) -> Any:
    """Sample ``b`` of a batched argument (of an array argument, its stand-ins made alone)."""
    return arg.row(b) if arg.__class__ is ArrayArgument else arg[b]


def _outputs(value: Any, roots: list[Scalar]) -> Any:
    """``f``'s result with each Scalar replaced by its index in ``roots``."""
    if isinstance(value, Scalar):
        roots.append(value)
        return len(roots) - 1
    if isinstance(value, list | tuple):
        return remake(value, [_outputs(v, roots) for v in value])
    raise _Unbatchable  # a number, or anything else: returned as f returns it, sample by sample


class _BatchResult(BatchLeaf):
    """The leaf standing for one result of a ``vmap`` batch in the trace around it, or for the
    sum of one result over consecutive samples: ``sum(losses)`` over a batch's results is one
    leaf, not B - 1 add nodes (the batch's replay computes it). It has no value of its own, so
    reading one is refused."""

    __slots__ = ()
    _data, _op, _a, _b = 0.0, None, None, None  # a leaf; its value at trace time is never read

    @property
    def data(self) -> float:
        raise TracedValueError(
            "a vmap result inside a jitted function has no value until the batch is replayed: "
            "return it from the jitted function to read it (the 'tape' strategy does not replay "
            "vmap batches: use strategy 'auto' or 'levels')"
        )

    @property
    def grad(self) -> None:
        # Read by grad() and backprop() as they walk a graph: they would stop here and give
        # the parameters behind the batch no gradient at all.
        raise TracedValueError(
            f"{_user_line()}\ngrad() or backprop() inside a jitted function reached a vmap "
            "result: the batch behind it is replayed as arrays, not as nodes a gradient can go "
            "through. Take the gradient inside the per-sample function (vmap a function that "
            "calls grad(..., create_graph=True)), or call backward() on the jitted function's "
            "result."
        )

    def __add__(self, other: Any) -> Scalar:
        if (
            other.__class__ is _BatchResult
            and other.source is self.source
            and other.start == self.stop
            and not other.zero
        ):  # the next samples' result: still one sum (made inline: sum() makes B of them)
            node = _new(_BatchResult)
            node.name = None
            node.source = self.source
            node.start = self.start
            node.stop = other.stop
            node.zero = self.zero
            return node
        return Scalar.__add__(self, other)

    def __radd__(self, other: Any) -> Scalar:
        if other.__class__ in (int, float) and other == 0 and not self.zero:  # sum()'s start
            return _result(self.source, self.start, self.stop, math.copysign(1, other) > 0)
        return Scalar.__radd__(self, other)


def _result(source: tuple[Batch, int], start: int, stop: int, zero: bool = False) -> Scalar:
    """The leaf standing for result ``source[1]`` of batch ``source[0]`` summed over samples
    ``start`` to ``stop - 1`` (plus 0.0 if ``zero``). Made without ``Scalar.__init__``: it is
    no number's leaf, and its value at trace time is never read (a replay computes it)."""
    node = _new(_BatchResult)
    node.name = None  # (its grad, a property, refuses: see _BatchResult.grad)
    node.source, node.start, node.stop, node.zero = source, start, stop, zero
    return node


_new = object.__new__


def _fill(structure: Any, roots: list[Scalar]) -> Any:
    if isinstance(structure, int):
        return roots[structure]
    return remake(structure, [_fill(item, roots) for item in structure])
