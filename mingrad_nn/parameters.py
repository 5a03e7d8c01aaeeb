"""Bulk parameters: a model's values and gradients in two arrays, each parameter a Scalar view.

A ``Parameter`` is a Scalar kept by its model's ``ParameterStore``. Eager mode sees plain
Scalars (their numbers in their own slots: no cost per op). Once something reads the store's
arrays (``values``, ``grads``: numpy views of one memory) -- ``mingrad_jit``'s replays, which
read every value on each call and add into every gradient on each backward -- the store is in
bulk: each parameter's ``p.data`` and ``p.grad`` read and write the arrays, and the optimizers'
``step`` and ``zero_grad`` are one numpy call per store. A learner sees a Scalar either way:
``p.data -= lr * p.grad`` works as on any leaf. In bulk, a gradient that is not a float
(``None`` for a frozen parameter, a Scalar after ``create_graph=True``) is kept on the
parameter itself, and the store lists which parameters hold one (``special``).
"""

from __future__ import annotations

import numbers
from array import array
from collections.abc import Iterable

from mingrad_core import Scalar

try:  # numpy is optional (the jit extra): without it, parameters are handled one by one
    import numpy as np
except ImportError:
    np = None


class ParameterStore:
    """The parameters of a model, and (once in bulk) their values and gradients as arrays.

    Parameters are added while the model is built. Until something reads ``values`` or
    ``grads``, each parameter keeps its numbers in its own slots, as any Scalar: eager mode
    runs at full speed. Reading them moves every parameter of the store into the arrays (in
    bulk), for good: ``p.data`` and ``p.grad`` then read and write the arrays.
    """

    def __init__(self) -> None:
        self.parameters: list[Parameter] = []
        self._values = array("d")
        self._grads = array("d")
        self._views: tuple[np.ndarray, np.ndarray] | None = None
        self.special: set[int] = set()  # in bulk: positions whose gradient is not a float

    def __len__(self) -> int:
        return len(self.parameters)

    def new(self, value: float, name: str | None = None) -> Parameter:
        """A new parameter in this store, its gradient 0.0."""
        if self._views is not None:
            raise RuntimeError(
                "this ParameterStore is in bulk use (its arrays have been read): make a new "
                "store for new parameters"
            )
        return Parameter(self, value, name)

    @property
    def in_bulk(self) -> bool:
        """Whether the numbers live in the arrays (``values``/``grads`` have been read)."""
        return self._views is not None

    def _arrays(self) -> tuple[np.ndarray, np.ndarray]:
        if self._views is None:
            if np is None:
                raise ImportError('bulk parameter arrays need numpy: pip install "mingrad[jit]"')
            self._values = array("d", [_SLOT_DATA.__get__(p) for p in self.parameters])
            self._grads = array("d", bytes(8 * len(self.parameters)))
            for p in self.parameters:
                grad = _SLOT_GRAD.__get__(p)
                p.__class__ = _InBulk
                p.grad = grad  # a float into the array; else kept aside, listed as special
            self._views = (np.frombuffer(self._values), np.frombuffer(self._grads))
        return self._views

    @property
    def values(self) -> np.ndarray:
        """Every parameter's value (a writable view: writing it sets ``p.data``)."""
        return self._arrays()[0]

    @property
    def grads(self) -> np.ndarray:
        """Every parameter's float gradient (positions in ``special`` hold another)."""
        return self._arrays()[1]

    def __getstate__(self) -> dict:
        return {"parameters": self.parameters}

    def __setstate__(self, state: dict) -> None:
        self.__init__()
        self.parameters = state["parameters"]


_SLOT_DATA, _SLOT_GRAD = Scalar.__dict__["_data"], Scalar.__dict__["grad"]


class Parameter(Scalar):
    """A leaf Scalar of a model, kept by its ``ParameterStore`` (see the module): a plain
    Scalar until the store goes in bulk, then a view of the store's arrays."""

    __slots__ = ("_store", "_i", "_other")

    def __init__(self, store: ParameterStore, value: float, name: str | None = None) -> None:
        self._store, self._i, self._other = store, len(store.parameters), None
        store.parameters.append(self)
        super().__init__(value, name)

    @property
    def store(self) -> ParameterStore:
        """The store holding this parameter."""
        return self._store

    @property
    def index(self) -> int:
        """This parameter's position in its store."""
        return self._i

    def __getstate__(self) -> dict:
        return {
            "store": self._store, "i": self._i, "data": self.data, "grad": self.grad,
            "name": self.name,
        }  # fmt: skip

    def __setstate__(self, state: dict) -> None:
        self.__class__ = Parameter  # a copy starts out of bulk
        self._store, self._i, self._other = state["store"], state["i"], None
        _SLOT_DATA.__set__(self, state["data"])
        _SLOT_GRAD.__set__(self, state["grad"])
        self.name = state["name"]
        self._op = self._a = self._b = None


class _InBulk(Parameter):
    """A ``Parameter`` whose store is in bulk: value and gradient are in the store's arrays."""

    __slots__ = ()

    def _get_data(self) -> float:
        return self._store._values[self._i]

    def _set_data(self, value: float) -> None:
        self._store._values[self._i] = value

    # The core stores a leaf's float in _data; here that is the store's memory.
    _data = property(_get_data, _set_data)  # type: ignore[assignment]

    def _get_grad(self) -> float | Scalar | None:
        other = self._other
        return self._store._grads[self._i] if other is None else other[0]

    def _set_grad(self, value: float | Scalar | None) -> None:
        if value.__class__ is float:
            self._store._grads[self._i] = value
            if self._other is not None:
                self._other = None
                self._store.special.discard(self._i)
        elif isinstance(value, numbers.Real) and not isinstance(value, bool | Scalar):
            self._set_grad(float(value))
        else:  # None (frozen), a Scalar (create_graph=True), ...: kept aside, boxed
            self._other = (value,)
            self._store.special.add(self._i)

    grad = property(_get_grad, _set_grad)  # type: ignore[assignment]


def by_store(parameters: Iterable[Scalar]) -> list[tuple[ParameterStore, np.ndarray]] | None:
    """``parameters`` as (store, positions) pairs, each store once in order of first
    appearance, if every one is a ``Parameter`` and none appears twice (and numpy is
    installed); else None."""
    if np is None:
        return None
    groups: dict[ParameterStore, list[int]] = {}
    count = 0
    for p in parameters:
        if not isinstance(p, Parameter):
            return None
        groups.setdefault(p._store, []).append(p._i)
        count += 1
    pairs = [(store, np.array(at, dtype=np.intp)) for store, at in groups.items()]
    if sum(len(np.unique(at)) for _, at in pairs) != count:
        return None
    return pairs


def in_bulk(parameters: Iterable[Scalar]) -> list[tuple[ParameterStore, np.ndarray]] | None:
    """``by_store(parameters)`` if every store is in bulk and holds only float gradients."""
    pairs = by_store(parameters)
    if pairs is None or not all(store.in_bulk and not store.special for store, _ in pairs):
        return None
    return pairs


def bulk(parameters: list[Scalar]) -> list[Parameter]:
    """New parameters in one new store, with the values, gradients and names of
    ``parameters`` (in order)."""
    store = ParameterStore()
    moved = [store.new(p.data, p.name) for p in parameters]
    for old, new in zip(parameters, moved):
        new.grad = old.grad
    return moved
