"""Ops that choose rather than compute: ``where`` (a condition picks one of two inputs) and
``pick`` (an index given as data picks one of n inputs: an embedding lookup).

Both take their choice as an input, so a traced function feeds it anew on every replay, and
both have a zero gradient with respect to it. ``where`` is how a gradient formula branches
without reading a value (relu's gradient is ``where(relu(x), 1.0, 0.0)``), so that
``grad(..., create_graph=True)`` records it under jit.
"""

from mingrad_core import functional as F


def where(c: float, a: float, b: float) -> float:
    """``a`` where ``c`` is nonzero (nan included), else ``b``; the other is never mixed in."""
    return a if c != 0 else b


def where_gradient(c, a, b, out):
    """Zero for the condition; 1 for the input chosen, 0 for the other."""
    if c.__class__ is float:
        chosen = 1.0 if c != 0 else 0.0
        return 0.0, chosen, 1.0 - chosen
    return 0.0, F.where(c, 1.0, 0.0), F.where(c, 0.0, 1.0)


def where_array(np, c, a, b):
    return np.where(c != 0, a, b)


def where_gradient_array(np, c, a, b, out):
    chosen = (c != 0).astype(np.float64)
    return 0.0, chosen, 1.0 - chosen


def _slot(i: float, n: int) -> int:
    """The option an index picks: its integer part, which must be one of 0..n-1."""
    if not 0 <= i < n:  # nan too
        raise ValueError(f"pick's index must be in 0..{n - 1} (one of {n} inputs); got {i!r}")
    return int(i)


def pick(i: float, *xs: float) -> float:
    """``xs[i]``: the input at index ``i`` (its integer part, so 2.0 picks ``xs[2]``)."""
    return xs[_slot(i, len(xs))]


def pick_gradient(i, *xs_out):
    """Zero for the index; one-hot over the inputs: 1 for the one picked."""
    n = len(xs_out) - 1
    if i.__class__ is float:
        terms = [0.0] * (n + 1)
        terms[1 + _slot(i, n)] = 1.0
        return tuple(terms)
    return (0.0, *(F.where(i - k, 0.0, 1.0) for k in range(n)))  # no value read: jit records it


def _slots_array(np, block):
    index, n = block[0], len(block) - 1
    bad = ~((index >= 0) & (index < n))
    if bad.any():
        raise ValueError(
            f"pick's index must be in 0..{n - 1} (one of {n} inputs); got {index[bad][0]!r}"
        )
    return index.astype(np.intp)


def pick_array(np, block):
    """A gather: row ``1 + index`` of each column."""
    return block[1 + _slots_array(np, block), np.arange(block.shape[1])]


def pick_gradient_array(np, block, out):
    """A scatter: a one at row ``1 + index`` of each column, zeros elsewhere."""
    terms = np.zeros_like(block)
    terms[1 + _slots_array(np, block), np.arange(block.shape[1])] = 1.0
    return terms


PICK_DOMAIN = ((0.25, 0.75), (-2.0, 2.0))  # the gradient checker's index stays at 0
