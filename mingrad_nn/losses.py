"""Losses over a batch of predictions, and L2 regularisation. Each returns one Scalar.

Scores and logits are Scalars (a model's outputs): ``hinge_loss`` and ``bce_with_logits``
refuse a plain number, and ``cross_entropy`` a row of them, with a TypeError naming the argument.
"""

from __future__ import annotations

import numbers
import reprlib
from collections.abc import Iterable, Sequence

from mingrad_core import Scalar
from mingrad_core import functional as F


def _pairs(predictions: Sequence, targets: Sequence) -> list[tuple]:
    if len(predictions) != len(targets) or not predictions:
        raise ValueError(
            f"need as many targets as predictions, at least one; got {len(predictions)} "
            f"predictions and {len(targets)} targets"
        )
    return list(zip(predictions, targets))


def _refuse_numbers(values: Sequence, where: str) -> None:
    """A TypeError if any of ``values`` is a plain number rather than a Scalar."""
    for k, value in enumerate(values):
        if not isinstance(value, Scalar) and _is_number(value):
            raise TypeError(
                f"{where}[{k}] is {type(value).__name__} {value!r}; expected a Scalar, such as "
                f"a model's output (a plain number has no gradient; Scalar({value!r}) makes one)"
            )


def _is_number(value: object) -> bool:
    """A real number: int, float, bool, or a numpy scalar of a real kind."""
    if isinstance(value, numbers.Real):
        return True
    dtype = getattr(value, "dtype", None)
    return getattr(value, "shape", None) == () and getattr(dtype, "kind", "") in "biuf"


def hinge_loss(scores: Sequence[Scalar], labels: Sequence[float]) -> Scalar:
    """Mean max-margin loss ``relu(1 - y * score)``, labels -1 or +1."""
    pairs = _pairs(scores, labels)
    _refuse_numbers(scores, "hinge_loss(scores, labels): scores")
    return sum((1 + -y * s).relu() for s, y in pairs) * (1.0 / len(pairs))


def mse_loss(predictions: Sequence[Scalar], targets: Sequence[float]) -> Scalar:
    """Mean squared error."""
    pairs = _pairs(predictions, targets)
    return sum((p - t) ** 2 for p, t in pairs) * (1.0 / len(pairs))


def bce_with_logits(logits: Sequence[Scalar], targets: Sequence[float]) -> Scalar:
    """Mean binary cross-entropy of ``sigmoid(logit)`` against targets in [0, 1].

    Computed as ``relu(z) - z*t + log(1 + exp(-|z|))`` with ``-|z|`` written as
    ``z - 2*relu(z)``: nothing overflows at large logits, the value and the gradient at 0 are
    exact (relu'(0) = 0 makes d(-|z|)/dz = 1 there), and nothing branches on a value, so the
    loss can be traced by ``mingrad_jit``.
    """
    total = 0.0
    pairs = _pairs(logits, targets)
    _refuse_numbers(logits, "bce_with_logits(logits, targets): logits")
    for z, t in pairs:
        r = z.relu()
        total = total + r - z * t + (1 + (z - 2 * r).exp()).log()
    return total * (1.0 / len(pairs))


def cross_entropy(logits_rows: Sequence[Sequence[Scalar]], labels: Sequence) -> Scalar:
    """Mean softmax cross-entropy of rows of logits against their labels.

    A label is a class index (an int: the row's position of the true class) or a row of
    target probabilities, one per class (a one-hot row for a hard label). Under ``mingrad_jit``
    pass rows: an index chooses a logit by its value, which a trace cannot follow.
    Log-sum-exp is the ``logsumexp`` op, one node per row, which subtracts the row's maximum
    inside its forward: large logits do not overflow, and no value is read (it traces).
    """
    pairs = _pairs(logits_rows, labels)
    total: Scalar | None = None
    for k, (row, label) in enumerate(pairs):
        if not isinstance(row, Sequence):
            raise TypeError(
                f"cross_entropy(logits_rows, labels): logits_rows[{k}] is "
                f"{type(row).__name__}; expected a row of Scalars, one logit per class"
            )
        if not row:
            raise ValueError("cross_entropy needs at least one logit per row; got an empty row")
        if all(_is_number(z) for z in row):  # a constant logit beside Scalars is fine
            raise TypeError(
                f"cross_entropy(logits_rows, labels): logits_rows[{k}] holds only numbers "
                f"{reprlib.repr(row)}; expected Scalars, such as a model's outputs (a plain "
                "number has no gradient; Scalar(x) makes one)"
            )
        loss = _row_loss(row, label, F.logsumexp(*row))
        total = loss if total is None else total + loss
    return total if len(pairs) == 1 else total * (1.0 / len(pairs))  # one row: its loss


def _row_loss(row: Sequence[Scalar], label: object, lse: Scalar) -> Scalar:
    if isinstance(label, Sequence):
        if len(label) != len(row):
            raise ValueError(
                f"a target row needs one probability per class: {len(row)}; got {len(label)}"
            )
        return sum(t * (lse - z) for t, z in zip(label, row))
    if isinstance(label, numbers.Integral) and 0 <= label < len(row):
        return lse - row[int(label)]
    raise ValueError(
        f"a label is a class index in 0..{len(row) - 1} or a row of {len(row)} target "
        f"probabilities (under jit, pass rows); got {type(label).__name__} {label!r}"
    )


def l2(parameters: Iterable[Scalar], alpha: float) -> Scalar:
    """``alpha * sum(p * p)``: L2 regularisation (weight decay) over the parameters."""
    return alpha * sum(p * p for p in parameters)
