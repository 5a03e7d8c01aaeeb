"""Bulk parameters: a model's values and gradients in two arrays, each parameter a Scalar view.

A ``Parameter`` is a Scalar whose value and gradient live in its ``ParameterStore``'s arrays
(``values``, ``grads``: numpy views of the same memory), so that code that handles a whole
model at once reads and writes them in one numpy call: the optimizers' ``step`` and
``zero_grad``, and ``mingrad_jit``'s replays (which read every parameter's value on each call
and add into every gradient on each backward). A learner sees a Scalar: ``p.data``,
``p.grad``, ``p.data -= lr * p.grad`` work as on any leaf. A gradient that is not a float
(``None`` for a frozen parameter, a Scalar after ``create_graph=True``) is kept on the
parameter itself, and the store lists which parameters hold one (``special``).
"""

from __future__ import annotations

import copy
import numbers
from array import array
from collections.abc import Iterable

from mingrad_core import Scalar

try:  # numpy is optional (the jit extra): without it, parameters are handled one by one
    import numpy as np
except ImportError:
    np = None

_FLOAT = object()  # a Parameter's ``_other`` while its gradient is the float in the store


class ParameterStore:
    """The values and gradients of a model's parameters, one float64 array each.

    Parameters are added while the model is built; once ``values`` or ``grads`` has been
    read (a numpy view of the memory), the store's size is fixed.
    """

    def __init__(self) -> None:
        self._values = array("d")
        self._grads = array("d")
        self._views: tuple[np.ndarray, np.ndarray] | None = None
        self.special: set[int] = set()  # positions whose gradient is not a float

    def __len__(self) -> int:
        return len(self._values)

    def new(self, value: float, name: str | None = None) -> Parameter:
        """A new parameter in this store, its gradient 0.0."""
        if self._views is not None:
            raise RuntimeError(
                "this ParameterStore is in use (its arrays have been read): make a new store "
                "for new parameters"
            )
        return Parameter(self, value, name)

    def _arrays(self) -> tuple[np.ndarray, np.ndarray]:
        if np is None:
            raise ImportError('bulk parameter arrays need numpy: pip install "mingrad[jit]"')
        if self._views is None:
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

    def __deepcopy__(self, memo: dict) -> ParameterStore:
        twin = ParameterStore()
        memo[id(self)] = twin
        twin._values, twin._grads = array("d", self._values), array("d", self._grads)
        twin.special = set(self.special)
        return twin

    def __getstate__(self) -> dict:
        return {"values": self._values, "grads": self._grads, "special": self.special}

    def __setstate__(self, state: dict) -> None:
        self._values, self._grads = array("d", state["values"]), array("d", state["grads"])
        self._views, self.special = None, set(state["special"])


class Parameter(Scalar):
    """A leaf Scalar whose value and gradient live in a ``ParameterStore`` (see the module)."""

    __slots__ = ("_store", "_i", "_other")

    def __init__(self, store: ParameterStore, value: float, name: str | None = None) -> None:
        self._store, self._i, self._other = store, len(store._values), _FLOAT
        store._values.append(0.0)
        store._grads.append(0.0)
        super().__init__(value, name)

    def _get_data(self) -> float:
        return self._store._values[self._i]

    def _set_data(self, value: float) -> None:
        self._store._values[self._i] = value

    # The core stores a leaf's float in _data; here that is the store's memory.
    _data = property(_get_data, _set_data)  # type: ignore[assignment]

    def _get_grad(self) -> float | Scalar | None:
        other = self._other
        return self._store._grads[self._i] if other is _FLOAT else other

    def _set_grad(self, value: float | Scalar | None) -> None:
        if value.__class__ is float:
            self._store._grads[self._i] = value
            if self._other is not _FLOAT:
                self._other = _FLOAT
                self._store.special.discard(self._i)
        elif isinstance(value, numbers.Real) and not isinstance(value, bool | Scalar):
            self._set_grad(float(value))
        else:  # None (frozen), a Scalar (create_graph=True), ...
            self._other = value
            self._store.special.add(self._i)

    grad = property(_get_grad, _set_grad)  # type: ignore[assignment]

    @property
    def store(self) -> ParameterStore:
        """The store holding this parameter's value and gradient."""
        return self._store

    @property
    def index(self) -> int:
        """This parameter's position in its store's arrays."""
        return self._i

    def __reduce__(self):
        return (_rebuild, (self._store, self._i, self._other, self.name))

    def __deepcopy__(self, memo: dict) -> Parameter:
        store = copy.deepcopy(self._store, memo)
        return _rebuild(store, self._i, copy.deepcopy(self._other, memo), self.name)


def _rebuild(store: ParameterStore, i: int, other: object, name: str | None) -> Parameter:
    """The parameter at ``i`` of ``store`` (unpickling, copying)."""
    p = Parameter.__new__(Parameter)
    p._store, p._i, p._other = store, i, other
    Scalar.name.__set__(p, name)
    for slot in ("_op", "_a", "_b"):
        getattr(Scalar, slot).__set__(p, None)
    return p


def in_bulk(parameters: Iterable[Scalar]) -> list[tuple[ParameterStore, np.ndarray]] | None:
    """``parameters`` as (store, positions) pairs, each store once in order of first
    appearance, if every one is a ``Parameter`` and none appears twice (and numpy is
    installed); else None."""
    if np is None:
        return None
    groups: dict[ParameterStore, list[int]] = {}
    count = 0
    for p in parameters:
        if p.__class__ is not Parameter:
            return None
        groups.setdefault(p._store, []).append(p._i)
        count += 1
    pairs = [(store, np.array(at, dtype=np.intp)) for store, at in groups.items()]
    if sum(len(np.unique(at)) for _, at in pairs) != count:
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
