"""Losses over a batch of predictions, and L2 regularisation. Each returns one Scalar."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from mingrad_core import Scalar


def _pairs(predictions: Sequence, targets: Sequence) -> list[tuple]:
    if len(predictions) != len(targets) or not predictions:
        raise ValueError(
            f"need as many targets as predictions, at least one; got {len(predictions)} "
            f"predictions and {len(targets)} targets"
        )
    return list(zip(predictions, targets))


def hinge_loss(scores: Sequence[Scalar], labels: Sequence[float]) -> Scalar:
    """Mean max-margin loss ``relu(1 - y * score)``, labels -1 or +1."""
    pairs = _pairs(scores, labels)
    return sum((1 + -y * s).relu() for s, y in pairs) * (1.0 / len(pairs))


def mse_loss(predictions: Sequence[Scalar], targets: Sequence[float]) -> Scalar:
    """Mean squared error."""
    pairs = _pairs(predictions, targets)
    return sum((p - t) ** 2 for p, t in pairs) * (1.0 / len(pairs))


def bce_with_logits(logits: Sequence[Scalar], targets: Sequence[float]) -> Scalar:
    """Mean binary cross-entropy of ``sigmoid(logit)`` against targets in [0, 1].

    Computed as ``max(z, 0) - z*t + log(1 + exp(-|z|))``, choosing the branch by the sign of
    the logit, so nothing overflows at large logits and the gradient is exact at 0.
    """
    total = 0.0
    pairs = _pairs(logits, targets)
    for z, t in pairs:
        if z.data >= 0:
            total = total + z - z * t + (1 + (-z).exp()).log()
        else:
            total = total - z * t + (1 + z.exp()).log()
    return total * (1.0 / len(pairs))


def l2(parameters: Iterable[Scalar], alpha: float) -> Scalar:
    """``alpha * sum(p * p)``: L2 regularisation (weight decay) over the parameters."""
    return alpha * sum(p * p for p in parameters)
