"""Argument structures: nested lists, tuples and numpy arrays of numbers, flattened to their
numbers and a structure, and rebuilt around new leaves (as JAX's ``tree_util``).

``jit`` keys its traces by the structure ``flatten_arguments`` gives and feeds the numbers;
``unflatten`` hands the traced function its arguments back with every number a stand-in (a
numpy array becomes the nested lists it would be as ``tolist()``); ``vmap`` reads each sample's
stand-ins back.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from mingrad_core import Scalar, is_real, to_float


class JitArgumentError(TypeError):
    """A jitted function was called with arguments other than (nested) lists of numbers."""


def remake(like: list | tuple, items: list) -> list | tuple:
    """A container of ``like``'s type holding ``items`` (a named tuple takes them one by one)."""
    kind = type(like)
    return kind(*items) if hasattr(kind, "_fields") else kind(items)


def unflatten(like: Any, leaves: Any) -> Any:
    """``like`` with its numbers replaced by ``leaves``, taken in depth-first order (the order
    ``flatten_arguments`` lists them); a numpy array becomes nested lists, or what
    ``leaves.array(shape, at)`` makes of it if ``leaves`` has that method (``at``: the position
    of its first number)."""
    value, _ = _unflatten(like, leaves, 0)
    return value


def nest(flat: list, shape: tuple) -> list:
    """``flat`` as the nested lists of an array of ``shape``, as ``tolist()`` gives them."""
    for n in reversed(shape[1:]):  # rows of rows, innermost first
        flat = [flat[i : i + n] for i in range(0, len(flat), n)]
    return flat


def _unflatten(like: Any, leaves: Any, at: int) -> tuple[Any, int]:
    if isinstance(like, np.ndarray):
        if like.ndim == 0:
            return leaves[at], at + 1
        array = getattr(leaves, "array", None)
        if array is not None:
            return array(like.shape, at), at + like.size
        return nest(leaves[at : at + like.size], like.shape), at + like.size
    if isinstance(like, list | tuple):
        if not any(isinstance(v, list | tuple | np.ndarray) for v in like):  # numbers only
            return remake(like, leaves[at : at + len(like)]), at + len(like)
        items = []
        for v in like:
            item, at = _unflatten(v, leaves, at)
            items.append(item)
        return remake(like, items), at
    return leaves[at], at + 1


def flatten_arguments(args: tuple, name: str) -> tuple[tuple, np.ndarray]:
    """The arguments' structure (the cache key) and their numbers, flattened depth first."""
    key = []
    parts = []
    for position, arg in enumerate(args):
        if isinstance(arg, (list, tuple, np.ndarray)):
            try:
                array = np.asarray(arg)
            except ValueError:  # ragged
                array = np.empty(0, dtype=object)
            if array.dtype.kind in "biuf":
                key.append((type(arg), array.shape, _row_types(arg, array.ndim)))
                parts.append(array.astype(np.float64, copy=False).ravel())
                continue
            structure, numbers_ = _flatten_ragged(arg, position, name)
            key.append(structure)
            parts.append(np.asarray(numbers_, dtype=np.float64))
        elif is_number(arg):
            key.append("number")
            parts.append(np.asarray([as_float(arg)]))
        else:
            raise _bad_argument(arg, position, name)
    values = np.concatenate(parts) if parts else np.zeros(0)
    return tuple(key), values


def _row_types(value: Any, depth: int) -> tuple:
    """The types of the containers nested in ``value`` (its rows, their rows, ...), in order:
    a function may tell a tuple from a list, and rebuilds its rows as it got them."""
    if depth < 2 or isinstance(value, np.ndarray):  # an array's rows are given as lists
        return ()
    rows = tuple(map(type, value))
    if depth == 2:
        return rows
    return (rows, tuple(_row_types(row, depth - 1) for row in value))


as_float = to_float  # the core's conversion of a real number, under the name callers use


def is_number(value: object) -> bool:
    """A real number as the core counts them (``is_real``); not a Scalar."""
    return not isinstance(value, Scalar) and is_real(value)


def _flatten_ragged(value: Any, position: int, name: str) -> tuple[Any, list[float]]:
    out: list[float] = []

    def walk(v: Any) -> Any:
        if isinstance(v, (list, tuple)):
            return (type(v), tuple(walk(item) for item in v))
        if isinstance(v, np.ndarray):
            return walk(v.tolist())
        if is_number(v):
            out.append(as_float(v))
            return "number"
        raise _bad_argument(v, position, name)

    return walk(value), out


def _bad_argument(value: object, position: int, name: str) -> JitArgumentError:
    hint = (
        " (a Scalar argument would be read as a number: make it a parameter the function "
        "uses, or pass its .data)"
        if isinstance(value, Scalar)
        else ""
    )
    return JitArgumentError(
        f"argument {position + 1} of jitted {name}() holds {type(value).__name__} "
        f"{_short(value)}; expected numbers or (nested) lists/tuples of numbers{hint}"
    )


def _short(value: object, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else f"{text[:limit]}..."
