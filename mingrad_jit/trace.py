"""Recording: run a function once on stand-ins for its arguments, and keep the graph it builds.

Every number in the arguments becomes a ``TracedNumber`` that knows its slot (its position in
the flattened arguments); a numpy array becomes an ``ArrayArgument``, the list of its rows,
whose stand-ins are made when the function first looks inside. Arithmetic on a
``TracedNumber`` gives a Scalar whose leaf is tied to its slot, so labels mixed into
expressions are fed anew on every replay; reading a value (``.data``, ``float()``, a
comparison, ``bool()``, ``int()``) raises ``TracedValueError`` naming the line.
"""

from __future__ import annotations

import functools
import linecache
import math
import numbers
import random
import sys
import threading
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from itertools import repeat
from typing import Any

import numpy as np

from mingrad_core import Scalar, to_float, watch

from .tree import (  # noqa: F401 (moved)
    JitArgumentError,
    _short,
    as_float,
    flatten_arguments,
    is_number,
    nest,
    remake,
    unflatten,
)

# Frames of these packages are the machinery; the error names the first frame outside them.
_MACHINERY = ("mingrad_core", "mingrad_jit")
# Frames that may ask an argument's class while tracing (type checks of the engine and models).
_TYPE_CHECKERS = (*_MACHINERY, "mingrad_ops", "mingrad_nn", "numpy", "abc")
_GRAD = Scalar.__dict__["grad"]  # the descriptor of Scalar.grad, put back after a trace


class TracedValueError(TypeError):
    """A function traced by ``jit`` read a value, so its replays could follow the wrong branch."""


class JitOutputError(TypeError):
    """A jitted function returned something other than Scalars in (nested) tuples or lists."""


class TracedStateError(RuntimeError):
    """A jitted function changes, on every trace, the outside state that its trace reads."""


def _caller_module(depth: int) -> str:
    return sys._getframe(depth + 1).f_globals.get("__name__", "")


def _user_line() -> str:
    """``file:line in function: `source``` for the innermost frame outside the machinery."""
    frame = sys._getframe(1)
    while frame is not None and frame.f_globals.get("__name__", "").startswith(_MACHINERY):
        frame = frame.f_back
    if frame is None:
        return "an unknown line"
    source = linecache.getline(frame.f_code.co_filename, frame.f_lineno).strip()
    where = f"{frame.f_code.co_filename}:{frame.f_lineno}, in {frame.f_code.co_name}"
    return f"{where}: `{source}`" if source else where


def refuse(what: str, function: str, hint: str = "") -> TracedValueError:
    """The error for a value read while tracing ``function``, naming the user's line."""
    return TracedValueError(
        f"{_user_line()}\n{what} while jit traces {function}(). A trace records the graph once "
        "and replays it on new numbers, so it cannot follow a branch or a conversion that "
        "depends on a value. Compute with ops instead (e.g. x.relu() for max(x, 0), "
        "b + (a - b).relu() for max(a, b)), move the test out of the jitted function, "
        f"or call the function without jit.{hint}"
    )


class TracedNumber:
    """A number from a jitted function's arguments, standing in for it while tracing.

    Arithmetic turns it into a Scalar constant tied to its slot; reading its value is refused.
    """

    __slots__ = ("slot", "_value", "_tracer", "_node")

    def __init__(self, slot: int, value: float, tracer: Tracer) -> None:
        self.slot = slot
        self._value = value
        self._tracer = tracer
        self._node: Scalar | None = None

    def _scalar(self) -> Scalar:
        if self._node is None:
            node = Scalar(self)  # the tracer's on_leaf ties the node to self.slot
            node.grad = None  # a number mixed into an expression is a constant
            self._node = node
        return self._node

    def __repr__(self) -> str:
        return f"TracedNumber(slot={self.slot})"

    @property  # type: ignore[misc]
    def __class__(self) -> type:
        # isinstance(x, float) on an argument asks for this: a replay would take the branch the
        # trace took whatever the argument's type, so the question is refused outside the engine.
        if not _caller_module(1).startswith(_TYPE_CHECKERS):
            self._refuse(
                "isinstance() or __class__ of",
                " Every number of a jitted function's arguments is a float on replay; "
                "convert ints outside the function if it must tell them apart.",
            )
        return TracedNumber

    def _refuse(self, what: str, hint: str = ""):
        raise refuse(
            f"{what} an argument (a number fed anew on every call)", self._tracer.name, hint
        )

    def __add__(self, other):
        return self._scalar() + other

    def __radd__(self, other):
        return other + self._scalar()

    def __sub__(self, other):
        return self._scalar() - other

    def __rsub__(self, other):
        return other - self._scalar()

    def __mul__(self, other):
        return self._scalar() * other

    def __rmul__(self, other):
        return other * self._scalar()

    def __truediv__(self, other):
        return self._scalar() / other

    def __rtruediv__(self, other):
        return other / self._scalar()

    def __pow__(self, other):
        return self._scalar() ** other

    def __rpow__(self, other):
        return other ** self._scalar()

    def __neg__(self):
        return -self._scalar()

    def __pos__(self):
        return self

    def __float__(self):
        self._refuse(
            "float() of",
            " An op on numbers alone (F.exp(x), F.sub(x, 1.0)) computes a number, not a node: "
            "make the argument a Scalar first (Scalar(x).exp()).",
        )

    def __int__(self):
        self._refuse("int() of")

    def __index__(self):
        self._refuse("using as an index or int")

    def __bool__(self):
        self._refuse("bool() of (an if or while on)")

    def __abs__(self):
        self._refuse("abs() of")

    def __round__(self, ndigits=None):
        self._refuse("round() of")

    def __trunc__(self):
        self._refuse("math.trunc() of")

    def __floor__(self):
        self._refuse("math.floor() of")

    def __ceil__(self):
        self._refuse("math.ceil() of")

    def __hash__(self):
        self._refuse("hashing (a dict key or set member)")

    def __format__(self, spec):
        self._refuse("formatting")

    def _compare(self, other):
        self._refuse("comparing")

    __lt__ = __le__ = __gt__ = __ge__ = __eq__ = __ne__ = _compare

    def _modulo(self, other):
        self._refuse("%, // or divmod() (no op computes them) of")

    __mod__ = __rmod__ = __floordiv__ = __rfloordiv__ = __divmod__ = __rdivmod__ = _modulo

    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        self._refuse(
            f"numpy's {ufunc.__name__}() of",
            " Use the registered ops, which a trace records: Scalar(x).exp() for np.exp(x).",
        )


numbers.Real.register(TracedNumber)  # so Scalar arithmetic accepts it as a number


class _StandIns:
    """The stand-ins of the arguments' numbers, made as ``unflatten`` takes them: a numpy array
    becomes an ``ArrayArgument``, whose numbers are made when the function looks at them."""

    def __init__(self, values: np.ndarray, tracer: Tracer) -> None:
        self.values, self.tracer = values, tracer

    def __getitem__(self, at: int | slice) -> Any:
        if at.__class__ is slice:
            slots = range(at.start, at.stop)
            return list(map(TracedNumber, slots, self.values[at].tolist(), repeat(self.tracer)))
        return TracedNumber(at, float(self.values[at]), self.tracer)

    def array(self, shape: tuple, at: int) -> list:
        if 0 in shape:
            return nest(self[at:at], shape)
        return ArrayArgument.lazy(shape, at, self)


class ArrayArgument(list):
    """A numpy array argument while tracing: the nested lists of its numbers' stand-ins, as
    ``tolist()`` would give its numbers, made the first time the function looks inside.

    ``len()`` does not look inside; ``vmap`` takes the samples it traces one by one (``row``)
    and the others' slots by arithmetic (``slots``), so a batch of B samples costs no stand-in
    per number. Anything else (indexing, iterating, comparing, list methods) makes every
    stand-in first, and from then on it is the list it stands for.
    """

    __slots__ = ("shape", "base", "_numbers", "_rows")

    def __init__(self, items: Any = ()) -> None:  # as list(items) (a copy, remake())
        super().__init__(items)
        self._numbers: _StandIns | None = None

    @classmethod
    def lazy(cls, shape: tuple, base: int, numbers: _StandIns) -> ArrayArgument:
        """The stand-in of an array of ``shape`` whose numbers are at slots ``base`` on."""
        new = cls()
        new.shape, new.base, new._numbers, new._rows = shape, base, numbers, {}
        return new

    @property
    def filled(self) -> bool:
        """Whether the stand-ins have been made (the list holds them)."""
        return self._numbers is None

    def row(self, b: int) -> Any:
        """Item ``b`` (0 <= b < len), made alone if the others are not made yet."""
        if self._numbers is None:
            return list.__getitem__(self, b)
        row = self._rows.get(b)
        if row is None:
            n = math.prod(self.shape[1:])
            start = self.base + b * n
            row = self._numbers[start] if len(self.shape) == 1 else self._numbers[start : start + n]
            row = self._rows[b] = nest(row, self.shape[1:]) if len(self.shape) > 2 else row
        return row

    def slots(self) -> np.ndarray:
        """Each item's slots, depth first: a (len, numbers per item) table."""
        size = math.prod(self.shape)
        return np.arange(self.base, self.base + size).reshape(self.shape[0], -1)

    def _fill(self) -> None:
        numbers_ = self._numbers
        if numbers_ is not None:
            items = nest(numbers_[self.base : self.base + math.prod(self.shape)], self.shape)
            for b, row in self._rows.items():  # the items made already stay the same objects
                items[b] = row
            self._numbers = None
            list.extend(self, items)

    def __len__(self) -> int:
        return self.shape[0] if self._numbers is not None else list.__len__(self)

    def __radd__(self, other: Any) -> Any:
        self._fill()
        return NotImplemented  # then other + self, as lists add

    def __reduce_ex__(self, protocol: int) -> tuple:
        return list, (list(self),)  # a copy is the list it stands for


def _filled_first(name: str) -> Callable:
    method = getattr(list, name)

    @functools.wraps(method)
    def call(self: ArrayArgument, *args: Any, **kwargs: Any) -> Any:
        self._fill()
        return method(self, *args, **kwargs)

    return call


for _name in (
    *("__getitem__", "__setitem__", "__delitem__", "__iter__", "__reversed__", "__contains__"),
    *("__eq__", "__ne__", "__lt__", "__le__", "__gt__", "__ge__", "__repr__", "__sizeof__"),
    *("__add__", "__iadd__", "__mul__", "__rmul__", "__imul__"),
    *("append", "extend", "insert", "pop", "remove", "index", "count", "sort", "reverse"),
    *("copy", "clear"),
):
    setattr(ArrayArgument, _name, _filled_first(_name))


@dataclass
class Trace:
    """What one traced call recorded.

    ``outputs`` mirrors the returned structure with Scalars at its leaves; ``slots`` maps the id
    of each leaf made from an argument to its slot; ``created`` holds the ids of every leaf or
    constant made while tracing (the others the outputs reach are parameters); ``keep`` keeps
    those nodes alive so their ids stay unique; ``made`` holds weak references to the leaves
    made from numbers that are not arguments, to see which outlive the trace (``kept``).
    """

    outputs: Any
    roots: list[Scalar]
    slots: dict[int, int]
    created: set[int]
    keep: list[Scalar]
    made: list[weakref.ref]


def kept(made: list[weakref.ref]) -> list[Scalar]:
    """The leaves of ``made`` that take gradients and are still alive once the trace and its
    graph are dropped: something outside the function keeps them (a lazily created parameter).
    """
    alive = (ref() for ref in made)
    return [node for node in alive if node is not None and node.grad is not None]


class Tracer:
    """Runs a function once on ``TracedNumber`` arguments, watching every value read."""

    _running = threading.local()  # .tracer: the tracer running in this thread, if any

    @staticmethod
    def active() -> Tracer | None:
        """The tracer running in the calling thread, if any."""
        return getattr(Tracer._running, "tracer", None)

    def __init__(self, name: str) -> None:
        self.name = name
        self.slots: dict[int, int] = {}
        self.created: set[int] = set()
        self.keep: list[Scalar] = []
        self.made: list[weakref.ref] = []

    def read(self, node: Scalar) -> None:
        raise refuse(
            "reading the value of a Scalar (.data, float(), or gradients as numbers: "
            "backward(), grad())",
            self.name,
            _GRADIENTS_HINT,
        )

    def leaf(self, node: Scalar, value: object) -> float:
        self.created.add(id(node))
        self.keep.append(node)
        if isinstance(value, TracedNumber):
            self.slots[id(node)] = value.slot
            return value._value
        if isinstance(value, Scalar):  # as eagerly, a TypeError; this one names the line
            raise TypeError(
                f"{_user_line()}\nScalar() takes a real number; got Scalar {value!r} while jit "
                f"traces {self.name}(). A Scalar is a node already: use it as it is (Scalar(s) "
                "is refused without jit too; Scalar(s.data) would freeze the traced value)."
            )
        self.made.append(weakref.ref(node))
        return to_float(value)  # the core's own check and conversion of the number

    def run(self, fn: Callable, args: tuple, values: np.ndarray) -> Trace:
        """Call ``fn`` on ``args`` with its numbers replaced by ``TracedNumber``; keep the graph."""
        stand_ins = unflatten(args, _StandIns(values, self))
        drawn = _random_states()
        Tracer._running.tracer = self
        Scalar.grad = property(_read_grad, _GRAD.__set__, _GRAD.__delete__, _GRAD.__doc__)
        try:
            with watch(self):
                result = fn(*stand_ins)
        finally:
            Scalar.grad = _GRAD
            Tracer._running.tracer = None
        if _random_states() != drawn:
            raise TracedValueError(
                f"{self.name}() drew random numbers (random or numpy.random) while jit traced "
                "it: every replay would repeat this trace's draws (one dropout mask for every "
                "call). Draw them outside the jitted function and pass them in as an argument "
                "(a list of 0/1 mask values, say), or call the function without jit."
            )
        roots: list[Scalar] = []
        outputs = _collect_outputs(result, roots, self.name)
        return Trace(outputs, roots, self.slots, self.created, self.keep, self.made)


_GRADIENTS_HINT = (
    " Gradients: call backward() on the jitted function's result, outside it; inside, "
    "grad(..., create_graph=True) gives them as Scalars, which a trace records."
)


def _read_grad(node: Scalar) -> Any:
    """``node.grad``, refused to the traced function's own code while this thread traces."""
    tracer = Tracer.active()
    if tracer is not None and not _caller_module(1).startswith(_MACHINERY):
        raise refuse("reading .grad of a Scalar", tracer.name, _GRADIENTS_HINT)
    return _GRAD.__get__(node, Scalar)


def _random_states() -> tuple:
    """Where the global random generators (random's, numpy's legacy one) stand."""
    _, keys, position, *_ = np.random.get_state()
    return random.getstate(), keys.tobytes(), position


def _collect_outputs(value: Any, roots: list[Scalar], name: str) -> Any:
    """Check the returned structure; list its Scalars in ``roots``; leaves become indices."""
    if isinstance(value, Scalar):
        roots.append(value)
        return len(roots) - 1
    if isinstance(value, (list, tuple)):
        return remake(value, [_collect_outputs(v, roots, name) for v in value])
    raise JitOutputError(
        f"{name}() returned {type(value).__name__} {_short(value)} under jit; expected a "
        "Scalar or a (nested) tuple or list of Scalars (a number that depends on no Scalar "
        "cannot be replayed: compute it outside the jitted function)"
    )
