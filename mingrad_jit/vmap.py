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
import threading
from collections.abc import Callable, Sequence
from operator import attrgetter
from typing import Any

import numpy as np

from mingrad_core import Scalar

from .plan import BATCH_OUTPUTS, Batch, build
from .trace import Trace, TracedNumber, Tracer, remake

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


def _sample(sample: tuple) -> tuple[Any, list[int]]:
    """A sample's structure and the slots of its numbers; the common case (each item a flat
    list of argument numbers) without a Python call per number."""
    if all(item.__class__ is list for item in sample):
        try:
            slots = [slot for item in sample for slot in map(_slot_of, item)]
        except AttributeError:  # not all argument numbers
            pass
        else:
            if all(_ONLY_NUMBERS.issuperset(map(type, item)) for item in sample):
                return tuple(map(len, sample)), slots
    slots = []
    return _leaves(sample, slots), slots


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
    by_structure: dict[Any, tuple[list[int], list[list[int]]]] = {}
    for b, sample in enumerate(zip(*batched)):
        structure, slots = _sample(sample)
        columns, feeds = by_structure.setdefault(structure, ([], []))
        columns.append(b)
        feeds.append(slots)
    results: list[Any] = [None] * size
    planned = []
    for columns, feeds in by_structure.values():
        planned.append((columns, *_plan(fn, [batched, columns[0]], feeds, tracer)))
    for columns, batch, outputs in planned:
        for column, b in enumerate(columns):
            roots = [_result(batch, k, column) for k in range(batch.outputs)]
            results[b] = _fill(outputs, roots)
    return results


def _plan(fn: Callable, at: list, feeds: list[list[int]], tracer: Tracer) -> tuple[Batch, Any]:
    """Trace ``fn`` on sample ``at[1]`` and plan its graph; a batch fed by ``feeds``."""
    batched, b = at
    _inside.depth = getattr(_inside, "depth", 0) + 1
    try:
        result = fn(*(arg[b] for arg in batched))
    finally:
        _inside.depth -= 1
    roots: list[Scalar] = []
    outputs = _outputs(result, roots)
    plan = build(Trace(None, roots, tracer.slots, tracer.created, []))
    if plan.batches:  # reads another vmap's results: not batched
        raise _Unbatchable
    first = feeds[0]
    position = {}
    for j, slot in enumerate(first):
        position.setdefault(slot, j)
    if len(position) != len(first):  # a number passed twice: its positions must agree
        for slots in feeds:
            for j, slot in enumerate(first):
                if slots[j] != slots[position[slot]]:
                    raise _Unbatchable
    table = np.array(feeds, dtype=np.intp).reshape(len(feeds), len(first))
    rows = [
        table[:, position[slot]] if slot in position else np.full(len(feeds), slot)
        for slot in plan.slot_of.tolist()
    ]
    feed = np.array(rows, dtype=np.intp).reshape(len(rows), len(feeds))
    return Batch(plan, feed, len(roots), len(feeds)), outputs


def _outputs(value: Any, roots: list[Scalar]) -> Any:
    """``f``'s result with each Scalar replaced by its index in ``roots``."""
    if isinstance(value, Scalar):
        roots.append(value)
        return len(roots) - 1
    if isinstance(value, list | tuple):
        return remake(value, [_outputs(v, roots) for v in value])
    raise _Unbatchable  # a number, or anything else: returned as f returns it, sample by sample


def _result(batch: Batch, k: int, column: int) -> Scalar:
    """The leaf standing for result ``k`` of the batch's sample ``column``."""
    node = Scalar(0.0)  # its value at trace time is never read: a replay computes it
    BATCH_OUTPUTS[node] = (batch, k, column)
    return node


def _fill(structure: Any, roots: list[Scalar]) -> Any:
    if isinstance(structure, int):
        return roots[structure]
    return remake(structure, [_fill(item, roots) for item in structure])
