"""The moons demo: an MLP learns to separate scikit-learn's two interleaving half-circles."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from mingrad_core import Scalar
from mingrad_nn import MLP, SGD, hinge_loss, l2, linear_decay


@dataclass
class Training:
    """What a run produced: the model, the data, and loss and accuracy after every step."""

    model: MLP
    X: list[list[float]]
    y: list[int]
    losses: list[float] = field(default_factory=list)
    accuracies: list[float] = field(default_factory=list)


def moons(samples: int = 100, noise: float = 0.1, seed: int = 0):
    """``make_moons`` as plain lists, labels -1 and +1."""
    from sklearn.datasets import make_moons

    X, y = make_moons(n_samples=samples, noise=noise, random_state=seed)
    return X.tolist(), [int(v) * 2 - 1 for v in y]


def train_moons(
    steps: int = 100,
    seed: int = 0,
    activation: str = "relu",
    on_step: Callable[[int, float, float], None] | None = None,
) -> Training:
    """The seed notebook's experiment: MLP 2-16-16-1, hinge loss + 1e-4 L2, full-batch SGD
    with the learning rate decaying linearly from 1.0 to 0.1."""
    X, y = moons(seed=seed)
    model = MLP(2, [16, 16, 1], activation=activation, seed=seed)
    optimizer = SGD(model.parameters(), lr=linear_decay(1.0, 0.1, steps))
    run = Training(model, X, y)
    for k in range(steps):
        scores = [model([Scalar(a), Scalar(b)]) for a, b in X]
        loss = hinge_loss(scores, y) + l2(model.parameters(), 1e-4)
        accuracy = sum((yi > 0) == (s.data > 0) for yi, s in zip(y, scores)) / len(y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        run.losses.append(loss.data)
        run.accuracies.append(accuracy)
        if on_step is not None:
            on_step(k, loss.data, accuracy)
    return run


def plot(run: Training, path: str, resolution: int = 100) -> None:
    """Write a PNG: the decision boundary over the data, and the loss curve."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    X = np.array(run.X)
    low, high = X.min(axis=0) - 0.5, X.max(axis=0) + 0.5
    xs, ys = (np.linspace(low[i], high[i], resolution) for i in range(2))
    xx, yy = np.meshgrid(xs, ys)
    zz = np.array([run.model([a, b]).data > 0 for a, b in zip(xx.ravel(), yy.ravel())])
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.5))
    left.contourf(xx, yy, zz.reshape(xx.shape), cmap=plt.cm.Spectral, alpha=0.8)
    left.scatter(X[:, 0], X[:, 1], c=run.y, s=40, cmap=plt.cm.Spectral, edgecolors="k")
    left.set_title(f"decision boundary (training accuracy {run.accuracies[-1]:.0%})")
    right.plot(range(1, len(run.losses) + 1), run.losses)
    right.set_xlabel("step")
    right.set_ylabel("loss (hinge + L2)")
    right.set_yscale("log")
    right.set_title("training loss")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
