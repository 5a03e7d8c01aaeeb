"""A stable log-sum-exp op, and softmax and log-softmax built on it.

``logsumexp(x1, ..., xn)`` subtracts the inputs' maximum inside its own forward, so no code
reads a value to find it: the same function traces under jit. Its gradient is the softmax,
``exp(xi - out)``, written in ops, so it differentiates again.
"""

import math
from collections.abc import Sequence

from mingrad_core import Scalar
from mingrad_core import functional as F


def logsumexp(*xs: float) -> float:
    """``log(exp(x1) + ... + exp(xn))``, without overflow; nan in any input gives nan."""
    top = max(xs)
    if top != top or any(x != x for x in xs):
        return math.nan
    if math.isinf(top):  # all -inf gives -inf; any +inf gives +inf
        return top
    total = 0.0
    for x in xs:  # left to right, as the array form adds its rows
        total += math.exp(x - top)
    return top + math.log(total)


def logsumexp_gradient(*xs_out):
    """The softmax: d(out)/d(xi) = exp(xi - out)."""
    *xs, out = xs_out
    if out.__class__ is float:
        return tuple(math.exp(x - out) for x in xs)  # x - out <= 0: never overflows
    return tuple(F.exp(x - out) for x in xs)


def logsumexp_array(np, block):
    top = block.max(axis=0)  # nan in a column gives nan there
    finite = np.where(np.isinf(top), 0.0, top)
    total = np.exp(block - finite).sum(axis=0)  # row after row: as the scalar form adds
    return np.where(np.isinf(top), top, finite + np.log(total))


def logsumexp_gradient_array(np, block, out):
    return np.exp(block - out)


def log_softmax(xs: Sequence[Scalar]) -> list[Scalar]:
    """``xi - logsumexp(xs)`` for each input: log-probabilities."""
    total = F.logsumexp(*xs)
    return [x - total for x in xs]


def softmax(xs: Sequence[Scalar]) -> list[Scalar]:
    """``exp(xi - logsumexp(xs))`` for each input: probabilities that sum to 1."""
    return [F.exp(x) for x in log_softmax(xs)]
