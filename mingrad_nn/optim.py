"""Optimizers that update parameters in place from their ``.grad``, and learning-rate schedules."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable

from mingrad_core import Scalar

from .parameters import by_store, np

Schedule = float | Callable[[int], float]


def linear_decay(start: float, end: float, steps: int) -> Callable[[int], float]:
    """A learning rate going linearly from ``start`` at step 0 toward ``end`` at ``steps``."""
    if steps < 1:
        raise ValueError(f"linear_decay needs steps >= 1; got {steps}")
    return lambda k: start - (start - end) * min(k, steps) / steps


def _as_slice(at):
    """Positions as a slice where they run consecutively (a view, not a copy), else as given."""
    if len(at) and (at == np.arange(at[0], at[0] + len(at))).all():
        return slice(int(at[0]), int(at[0]) + len(at))
    return at


class Optimizer:
    """Holds the parameters and counts steps; ``lr`` is a number or a function of the step."""

    def __init__(self, parameters: Iterable[Scalar], lr: Schedule) -> None:
        self.parameters = list(parameters)
        if not all(isinstance(p, Scalar) for p in self.parameters):
            raise TypeError("an optimizer takes Scalars, such as model.parameters()")
        self.lr = lr
        self.steps = 0
        pairs = by_store(self.parameters)
        self._pairs = pairs and [(store, _as_slice(at)) for store, at in pairs]

    def _in_bulk(self) -> bool:
        """Whether the parameters can be updated in bulk now (every one a ``Parameter`` of a
        store in bulk, each gradient a float)."""
        pairs = self._pairs
        return bool(pairs) and all(s.in_bulk and not s.special for s, _ in pairs)

    def _gather(self, which: str) -> np.ndarray:
        """The parameters' values or grads, in order, as one array (a view where it can)."""
        parts = [getattr(store, which)[at] for store, at in self._pairs]
        return parts[0] if len(parts) == 1 else np.concatenate(parts)

    def _scatter(self, values: np.ndarray) -> None:
        """Set the parameters' values from one array, in order."""
        start = 0
        for store, at in self._pairs:
            count = len(store.values[at])
            store.values[at] = values[start : start + count]
            start += count

    def learning_rate(self) -> float:
        """The learning rate for the coming step."""
        return self.lr(self.steps) if callable(self.lr) else self.lr

    def zero_grad(self) -> None:
        """Set every parameter's gradient to zero."""
        if self._in_bulk():
            for store, at in self._pairs:
                store.grads[at] = 0.0
            return
        for p in self.parameters:
            p.grad = 0.0

    def step(self) -> None:
        """Update every parameter from its gradient."""
        self._update(self.learning_rate())
        self.steps += 1

    def _update(self, lr: float) -> None:
        raise NotImplementedError


class SGD(Optimizer):
    """Stochastic gradient descent, with optional momentum: ``v = m*v + g; p -= lr*v``."""

    def __init__(self, parameters: Iterable[Scalar], lr: Schedule = 0.1, momentum: float = 0.0):
        super().__init__(parameters, lr)
        self.momentum = momentum
        self.velocity = [0.0] * len(self.parameters)

    def _update(self, lr: float) -> None:
        if self._in_bulk():  # the same arithmetic, elementwise
            velocity = self.momentum * np.asarray(self.velocity) + self._gather("grads")
            self._scatter(self._gather("values") - lr * velocity)
            self.velocity = velocity
            return
        for i, p in enumerate(self.parameters):
            self.velocity[i] = self.momentum * self.velocity[i] + p.grad
            p.data -= lr * self.velocity[i]


class Adam(Optimizer):
    """Adam (Kingma & Ba, 2015), with bias-corrected moment estimates."""

    def __init__(
        self,
        parameters: Iterable[Scalar],
        lr: Schedule = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
    ) -> None:
        super().__init__(parameters, lr)
        self.betas, self.eps = betas, eps
        self.m = [0.0] * len(self.parameters)
        self.v = [0.0] * len(self.parameters)

    def _update(self, lr: float) -> None:
        b1, b2 = self.betas
        t = self.steps + 1
        if self._in_bulk():  # the same arithmetic, elementwise
            g = self._gather("grads")
            self.m = b1 * np.asarray(self.m) + (1 - b1) * g
            self.v = b2 * np.asarray(self.v) + (1 - b2) * g * g
            m_hat = self.m / (1 - b1**t)
            v_hat = self.v / (1 - b2**t)
            self._scatter(self._gather("values") - lr * m_hat / (np.sqrt(v_hat) + self.eps))
            return
        for i, p in enumerate(self.parameters):
            g = p.grad
            self.m[i] = b1 * self.m[i] + (1 - b1) * g
            self.v[i] = b2 * self.v[i] + (1 - b2) * g * g
            m_hat = self.m[i] / (1 - b1**t)
            v_hat = self.v[i] / (1 - b2**t)
            p.data -= lr * m_hat / (math.sqrt(v_hat) + self.eps)
