"""Reading a plan's parameters and adding into their gradients: in bulk where they allow it.

A parameter that a ``mingrad_nn`` ``ParameterStore`` keeps (``store_of(p)``; the store holding
``values``, ``grads`` and ``special`` as arrays and a set) is read and written through its
store's arrays, one numpy call per store (reading them puts the store in bulk); any other
parameter through ``.data`` and ``.grad``, one at a time. Either way the numbers are eager
mode's: a gradient is added as ``before + total``, and not at all while it is None (a frozen
parameter, checked at every backward).
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence

import numpy as np

from mingrad_core import Scalar


def _locator():
    """``mingrad_nn``'s ``store_of`` if that is loaded (no model keeps parameters in bulk
    otherwise): the store keeping a parameter and its position there."""
    module = sys.modules.get("mingrad_nn.parameters")
    return getattr(module, "store_of", None)


def _positions(at: list[int]) -> np.ndarray | slice:
    """``at`` as a slice where it is a run of consecutive positions, else an index array."""
    if at == list(range(at[0], at[0] + len(at))):
        return slice(at[0], at[0] + len(at))
    return np.array(at, dtype=np.intp)


class Parameters:
    """A fixed list of parameters, read and added into as arrays in the list's order."""

    def __init__(self, params: Sequence[Scalar]) -> None:
        self.params = list(params)
        runs: list[tuple[object, int, int, list[int]]] = []  # store, start, stop, positions
        locate = _locator()
        for k, p in enumerate(self.params):
            where = locate(p) if locate is not None else None
            if where is None:
                runs = []
                break
            store, index = where
            if runs and runs[-1][0] is store:
                runs[-1][3].append(index)
                runs[-1] = (store, runs[-1][1], k + 1, runs[-1][3])
            else:
                runs.append((store, k, k + 1, [index]))
        distinct = all(len(set(at)) == len(at) for *_, at in runs)
        self.bulk = (
            [(store, slice(a, b), _positions(at)) for store, a, b, at in runs]
            if runs and distinct
            else None
        )

    def read(self, out: np.ndarray) -> None:
        """Write every parameter's value into ``out`` (one per parameter)."""
        if self.bulk is None:
            out[:] = [p.data for p in self.params]
            return
        for store, into, at in self.bulk:
            out[into] = store.values[at]

    def saved_grads(self) -> Callable[[], None]:
        """A copy of every parameter's gradient now; what it returns puts them back."""
        if self.bulk is not None and not any(store.special for store, _, _ in self.bulk):
            copies = [(store.grads, at, store.grads[at].copy()) for store, _, at in self.bulk]

            def restore() -> None:
                for grads, at, before in copies:
                    grads[at] = before

            return restore
        before = [p.grad for p in self.params]

        def restore() -> None:
            for p, g in zip(self.params, before):
                p.grad = g

        return restore

    def add_grads(self, grads: np.ndarray) -> None:
        """Add ``grads`` (one per parameter) into the parameters' gradients, as eager
        backward adds into leaves; a parameter whose ``.grad`` is None takes nothing."""
        if self.bulk is not None and not any(store.special for store, _, _ in self.bulk):
            for store, into, at in self.bulk:
                store.grads[at] += grads[into]
            return
        for p, g in zip(self.params, grads.tolist()):
            if p.grad is not None:
                p.grad += g
