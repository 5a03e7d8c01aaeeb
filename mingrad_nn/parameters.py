"""Bulk parameters: a model's values and gradients in two arrays, each parameter a Scalar view.

A model's parameters are kept by its ``ParameterStore``. In eager mode they are plain leaf
Scalars, exactly (the engine's fast paths for ``Scalar`` see them: no cost per op). Once
something reads the store's arrays (``values``, ``grads``: numpy views of one memory) --
``mingrad_jit``'s replays, which read every value on each call and add into every gradient on
each backward -- the store is in bulk: each parameter becomes a view (a Scalar subclass whose
``p.data`` and ``p.grad`` read and write the arrays), and the optimizers' ``step`` and
``zero_grad`` are one numpy call per store. A learner sees a Scalar either way:
``p.data -= lr * p.grad`` works as on any leaf. In bulk, a gradient that is not a float
(``None`` for a frozen parameter, a Scalar after ``create_graph=True``) is kept aside, and the
store lists which positions hold one (``special``). Copies and pickles of parameters in bulk
are plain Scalars, in a new store when the store is copied with them.
"""

from __future__ import annotations

import numbers
import weakref
from array import array
from collections.abc import Iterable

from mingrad_core import Scalar, to_float

try:  # numpy is optional (the jit extra): without it, parameters are handled one by one
    import numpy as np
except ImportError:
    np = None

_SLOT_DATA, _SLOT_GRAD = Scalar.__dict__["_data"], Scalar.__dict__["grad"]

# id(parameter) -> (its store, weakly; its position). The store holds its parameters, so an id
# here belongs to its parameter while the store lives; a dead store's ids are removed.
_WHERE: dict[int, tuple[weakref.ref, int]] = {}


def _forget(ids: list[int]) -> None:
    for i in ids:
        _WHERE.pop(i, None)


class ParameterStore:
    """The parameters of a model, and (once in bulk) their values and gradients as arrays.

    Parameters are added while the model is built (``new``). Until something reads ``values``
    or ``grads``, each is a plain Scalar; reading them moves every parameter of the store into
    the arrays (in bulk), for good.
    """

    def __init__(self) -> None:
        self.parameters: list[Scalar] = []
        self._ids: list[int] = []
        self._ref = weakref.ref(self)
        weakref.finalize(self, _forget, self._ids)
        self._values = array("d")
        self._grads = array("d")
        self._views: tuple[np.ndarray, np.ndarray] | None = None
        self.special: set[int] = set()  # in bulk: positions whose gradient is not a float

    def __len__(self) -> int:
        return len(self.parameters)

    def new(self, value: float, name: str | None = None) -> Scalar:
        """A new parameter (a leaf Scalar) in this store, its gradient 0.0."""
        return self._adopt(Scalar(value, name))

    def _adopt(self, p: Scalar) -> Scalar:
        if self._views is not None:
            raise RuntimeError(
                "this ParameterStore is in bulk use (its arrays have been read): make a new "
                "store for new parameters"
            )
        _WHERE[id(p)] = (self._ref, len(self.parameters))
        self._ids.append(id(p))
        self.parameters.append(p)
        return p

    @property
    def in_bulk(self) -> bool:
        """Whether the numbers live in the arrays (``values``/``grads`` have been read)."""
        return self._views is not None

    def _arrays(self) -> tuple[np.ndarray, np.ndarray]:
        if self._views is None:
            if np is None:
                raise ImportError('bulk parameter arrays need numpy: pip install "mingrad[jit]"')
            self._values = array("d", [p._data for p in self.parameters])
            self._grads = array("d", bytes(8 * len(self.parameters)))
            for i, p in enumerate(self.parameters):
                grad = p.grad
                p.__class__ = _InBulk  # the same layout: its own slots now hold where it is
                _SLOT_DATA.__set__(p, _Where(self, i))
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

    def __reduce__(self):
        return (_store_of_copies, (self.parameters,))


def _store_of_copies(parameters: list[Scalar]) -> ParameterStore:
    """A new store (out of bulk) holding ``parameters`` (unpickled or copied ones)."""
    store = ParameterStore()
    for p in parameters:
        store._adopt(p)
    return store


class _Where:
    """Where a parameter in bulk lives: its store, its position, the store's two arrays (read
    directly: a training loop reads every parameter), and a gradient kept aside."""

    __slots__ = ("store", "i", "other", "values", "grads")

    def __init__(self, store: ParameterStore, i: int) -> None:
        self.store, self.i, self.other = store, i, None
        self.values, self.grads = store._values, store._grads


_where = _SLOT_DATA.__get__  # a parameter in bulk keeps its _Where in the core's _data slot


class _InBulk(Scalar):
    """A parameter whose store is in bulk: value and gradient are in the store's arrays."""

    __slots__ = ()

    def _get_data(self) -> float:
        where = _where(self)
        return where.values[where.i]

    def _set_data(self, value: float) -> None:
        where = _where(self)
        where.values[where.i] = value if value.__class__ is float else to_float(value)

    # The core keeps a leaf's float in _data; here that is the store's memory. p.data = v
    # writes there in one call (Scalar's own data setter would go through _data's).
    _data = property(_get_data, _set_data)  # type: ignore[assignment]
    data = property(_get_data, _set_data, doc=Scalar.data.__doc__)

    def _get_grad(self) -> float | Scalar | None:
        where = _where(self)
        return where.grads[where.i] if where.other is None else where.other[0]

    def _set_grad(self, value: float | Scalar | None) -> None:
        where = _where(self)
        if value.__class__ is float:
            where.grads[where.i] = value
            if where.other is not None:
                where.other = None
                where.store.special.discard(where.i)
        elif isinstance(value, numbers.Real) and not isinstance(value, bool | Scalar):
            self._set_grad(float(value))
        else:  # None (frozen), a Scalar (create_graph=True), ...: kept aside, boxed
            where.other = (value,)
            where.store.special.add(where.i)

    grad = property(_get_grad, _set_grad)  # type: ignore[assignment]

    def __reduce_ex__(self, protocol: int):
        return (_plain, (self.data, self.grad, self.name))


def _plain(data: float, grad: float | Scalar | None, name: str | None) -> Scalar:
    """A plain leaf Scalar (a copy of a parameter in bulk)."""
    p = Scalar(data, name)
    p.grad = grad
    return p


def store_of(p: object) -> tuple[ParameterStore, int] | None:
    """The store that keeps ``p`` and its position there, if a store keeps it."""
    entry = _WHERE.get(id(p))
    if entry is None:
        return None
    store = entry[0]()
    if store is None or store.parameters[entry[1]] is not p:
        return None
    return store, entry[1]


def by_store(parameters: Iterable[Scalar]) -> list[tuple[ParameterStore, np.ndarray]] | None:
    """``parameters`` as (store, positions) pairs, each store once in order of first
    appearance, if a store keeps every one and none appears twice (and numpy is installed);
    else None."""
    if np is None:
        return None
    parameters = list(parameters)
    first = store_of(parameters[0]) if parameters else None
    if first is not None and parameters == first[0].parameters:  # a model's own, all in order
        return [(first[0], np.arange(len(parameters), dtype=np.intp))]  # (== is identity: fast)
    groups: dict[ParameterStore, list[int]] = {}
    for p in parameters:
        where = store_of(p)
        if where is None:
            return None
        groups.setdefault(where[0], []).append(where[1])
    pairs = [(store, np.array(at, dtype=np.intp)) for store, at in groups.items()]
    for _, at in pairs:
        ordered = np.sort(at)
        if (ordered[1:] == ordered[:-1]).any():  # a parameter listed twice
            return None
    return pairs


def in_bulk(parameters: Iterable[Scalar]) -> list[tuple[ParameterStore, np.ndarray]] | None:
    """``by_store(parameters)`` if every store is in bulk and holds only float gradients."""
    pairs = by_store(parameters)
    if pairs is None or not all(store.in_bulk and not store.special for store, _ in pairs):
        return None
    return pairs


def bulk(parameters: list[Scalar]) -> tuple[ParameterStore, list[Scalar]]:
    """A new store, and in it new parameters with the values, gradients and names of
    ``parameters`` (in order)."""
    store = ParameterStore()
    moved = [store.new(p.data, p.name) for p in parameters]
    for old, new in zip(parameters, moved):
        new.grad = old.grad
    return store, moved
