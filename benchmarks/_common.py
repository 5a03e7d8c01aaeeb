"""What the benchmarks share: the seed's data and training step, and MLPs built as micrograd's.

Only the public API is used (``Scalar``, ``MLP``, ``Neuron``), so the engine can change under it.
"""

from __future__ import annotations

from sklearn.datasets import make_moons

from mingrad import MLP
from mingrad_nn import Neuron

X, Y = make_moons(n_samples=100, noise=0.1, random_state=0)
X, Y = X.tolist(), (Y * 2 - 1).tolist()


def seed_loss(model, inputs):
    """The seed's loss over rows of input scalars: mean hinge loss + 1e-4 L2 of the parameters."""
    scores = list(map(model, inputs))
    losses = [(1 + -yi * scorei).relu() for yi, scorei in zip(Y, scores)]
    data_loss = sum(losses) * (1.0 / len(losses))
    reg_loss = 1e-4 * sum(p * p for p in model.parameters())
    return data_loss + reg_loss


def forward(model, value):
    """The forward half of the seed's step: the loss node, ``value`` the engine's scalar class."""
    return seed_loss(model, [list(map(value, xrow)) for xrow in X])


def update(model, lr: float = 0.5) -> None:
    """The SGD update."""
    for p in model.parameters():
        p.data -= lr * p.grad


def training_step(model, value) -> float:
    """One step of the seed's loop; ``value`` is the engine's scalar class."""
    total_loss = forward(model, value)
    model.zero_grad()
    total_loss.backward()
    update(model)
    return total_loss.data


class SeedNeuron(Neuron):
    """A neuron computed as micrograd computes it: a chain of multiplications and additions."""

    def __call__(self, x):
        act = sum((wi * xi for wi, xi in zip(self.w, x)), self.b)
        return self._act(act) if self._act is not None else act


def chained_mlp(activation: str = "relu") -> MLP:
    """``MLP(2, [16, 16, 1], seed=0)`` with every neuron a chain of ``*`` and ``+`` nodes."""
    model = MLP(2, [16, 16, 1], activation=activation, seed=0)
    for layer in model.layers:
        for neuron in layer.neurons:
            neuron.__class__ = SeedNeuron
    return model
