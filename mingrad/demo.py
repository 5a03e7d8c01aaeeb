"""The moons demo: an MLP learns to separate scikit-learn's two interleaving half-circles."""

from __future__ import annotations

import importlib
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from mingrad_core import Scalar
from mingrad_core import functional as F
from mingrad_nn import MLP, SGD, cross_entropy, hinge_loss, l2, linear_decay

# import name -> distribution name, for everything the demo needs beyond the engine
DEMO_DEPENDENCIES = {"sklearn": "scikit-learn", "matplotlib": "matplotlib", "tqdm": "tqdm"}


class MissingDemoDependencyError(RuntimeError):
    """The demo's optional dependencies (the ``demo`` extra) are not installed."""


def require_demo_dependencies() -> None:
    """Raise ``MissingDemoDependencyError``, saying how to install them, if any is missing."""
    missing = []
    for module, distribution in DEMO_DEPENDENCIES.items():
        try:
            importlib.import_module(module)
        except ImportError:
            missing.append(distribution)
    if missing:
        raise MissingDemoDependencyError(
            f"the demo needs {', '.join(missing)}, not installed here; "
            'install the demo extra: pip install "mingrad[demo]"'
        )


@dataclass
class Training:
    """What a run produced: the model, the data, and loss and accuracy after every step.

    ``diverged_at`` is the step whose loss was not finite (nan or infinite), where training
    stopped; ``None`` when every step's loss was a number.
    """

    model: MLP
    X: list[list[float]]
    y: list[int]
    losses: list[float] = field(default_factory=list)
    accuracies: list[float] = field(default_factory=list)
    diverged_at: int | None = None


def moons(samples: int = 100, noise: float = 0.1, seed: int = 0):
    """``make_moons`` as plain lists, labels -1 and +1."""
    require_demo_dependencies()
    from sklearn.datasets import make_moons

    X, y = make_moons(n_samples=samples, noise=noise, random_state=seed)
    return X.tolist(), [int(v) * 2 - 1 for v in y]


def train_moons(
    steps: int = 100,
    seed: int = 0,
    activation: str = "relu",
    on_step: Callable[[int, float, float], None] | None = None,
    use_jit: bool = False,
) -> Training:
    """The seed notebook's experiment: MLP 2-16-16-1, hinge loss + 1e-4 L2, full-batch SGD
    with the learning rate decaying linearly from 1.0 to 0.1.

    Stops after the first step whose loss is not finite (see ``Training.diverged_at``).
    ``use_jit``: trace the loss once and replay it (``mingrad_jit``; same results, faster).
    """
    _check_steps(steps)
    X, y = moons(seed=seed)
    model = MLP(2, [16, 16, 1], activation=activation, seed=seed)
    optimizer = SGD(model.parameters(), lr=linear_decay(1.0, 0.1, steps))
    run = Training(model, X, y)

    def loss_and_scores(X, y):
        scores = [model([Scalar(a), Scalar(b)]) for a, b in X]
        return hinge_loss(scores, y) + l2(model.parameters(), 1e-4), scores

    if use_jit:
        from mingrad_jit import jit

        loss_and_scores = jit(loss_and_scores)
    for k in range(steps):
        loss, scores = loss_and_scores(X, y)
        accuracy = sum((yi > 0) == (s.data > 0) for yi, s in zip(y, scores)) / len(y)
        if not _step(run, k, loss, accuracy, optimizer, on_step):
            break
    return run


def train_digits(
    steps: int = 300,
    seed: int = 0,
    activation: str = "relu",
    on_step: Callable[[int, float, float], None] | None = None,
    use_jit: bool = True,
    lr: float = 0.5,
    target: float = 0.97,
) -> Training:
    """scikit-learn's digits (1,797 images of 8x8 pixels, 10 classes): MLP 64-32-10, softmax
    cross-entropy, full-batch SGD at ``lr``, until the training accuracy reaches ``target``
    or after ``steps`` steps. Labels go in as one-hot rows, so the loss traces under jit.

    ``use_jit``: the loss of one image is written per sample and mapped over the batch with
    ``vmap`` inside a jitted mean, so one image is traced and the batch is replayed as arrays
    (the same numbers as eager mode, within rounding).
    """
    _check_steps(steps)
    require_demo_dependencies()
    import numpy as np
    from sklearn.datasets import load_digits

    data = load_digits()
    X = data.data / 16.0
    y = [int(v) for v in data.target]
    onehot = np.eye(10)[data.target]
    model = MLP(64, [32, 10], activation=activation, seed=seed)
    optimizer = SGD(model.parameters(), lr=lr)
    run = Training(model, X.tolist(), y)

    def sample(x, target):
        logits = model(list(map(Scalar, x)))
        return cross_entropy([logits], [target]), _on_top(logits, target)

    def loss_and_hits(X, targets):
        losses, hits = zip(*vmap(sample)(X, targets))
        return sum(losses) * (1.0 / len(losses)), sum(hits)

    if use_jit:
        from mingrad_jit import jit, vmap

        loss_and_hits = jit(loss_and_hits)
    for k in range(steps):
        if use_jit:  # the hits are counted in the replay: one number comes back, not 17,970
            loss, hits = loss_and_hits(X, onehot)
            accuracy = hits.data / len(y)
        else:  # eagerly, read the logits' values (counting hits with ops would add nodes)
            logits = [model(list(map(Scalar, row))) for row in X.tolist()]
            loss = cross_entropy(logits, onehot.tolist())
            accuracy = sum(_top_value(row, label) for row, label in zip(logits, y)) / len(y)
        if not _step(run, k, loss, accuracy, optimizer, on_step) or accuracy >= target:
            break
    return run


def _on_top(logits: list[Scalar], target) -> Scalar:
    """1.0 if the true class's logit (``target`` is a one-hot row) is at least every other
    logit, else 0.0: counted with ops (``where`` of how many logits are above it), so no value
    is read and it traces under jit."""
    true = sum(t * z for t, z in zip(target, logits))
    above = sum(F.where((z - true).relu(), 1.0, 0.0) for z in logits)
    return F.where(above, 0.0, 1.0)


def _top_value(logits: list[Scalar], label: int) -> bool:
    """What ``_on_top`` counts, from the values: the true class's logit is at least every other."""
    values = [z.data for z in logits]
    return values[label] >= max(values)


def _check_steps(steps: object) -> None:
    if not isinstance(steps, int) or isinstance(steps, bool) or steps < 1:
        raise ValueError(f"steps must be a positive int, the number of SGD steps; got {steps!r}")


def _step(run: Training, k: int, loss, accuracy: float, optimizer, on_step) -> bool:
    """Backpropagate, update and record step ``k``; False once the loss is no longer finite."""
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    run.losses.append(loss.data)
    run.accuracies.append(accuracy)
    if on_step is not None:
        on_step(k, loss.data, accuracy)
    if not math.isfinite(loss.data):
        run.diverged_at = k
        return False
    return True


def figure(run: Training, resolution: int = 100):
    """A matplotlib ``Figure``: the decision boundary over the data, and the loss curve.

    Built without pyplot, so it changes no global plotting state; in Jupyter it shows inline.
    """
    require_demo_dependencies()
    import numpy as np
    from matplotlib import colormaps
    from matplotlib.figure import Figure

    X = np.array(run.X)
    low, high = X.min(axis=0) - 0.5, X.max(axis=0) + 0.5
    xs, ys = (np.linspace(low[i], high[i], resolution) for i in range(2))
    xx, yy = np.meshgrid(xs, ys)
    zz = np.array([run.model([a, b]).data > 0 for a, b in zip(xx.ravel(), yy.ravel())])
    fig = Figure(figsize=(11, 4.5), layout="tight")
    left, right = fig.subplots(1, 2)
    cmap = colormaps["Spectral"]
    left.contourf(xx, yy, zz.reshape(xx.shape), cmap=cmap, alpha=0.8)
    left.scatter(X[:, 0], X[:, 1], c=run.y, s=40, cmap=cmap, edgecolors="k")
    left.set_title(f"decision boundary (training accuracy {run.accuracies[-1]:.0%})")
    right.plot(range(1, len(run.losses) + 1), run.losses)
    right.set_xlabel("step")
    right.set_ylabel("loss (hinge + L2)")
    right.set_yscale("log")
    right.set_title("training loss")
    return fig


def plot(run: Training, path: str | Path, resolution: int = 100) -> Path:
    """Write the decision boundary and the loss curve to ``path``; return the path written.

    A ``path`` without a suffix gets ``.png``; another suffix (``.svg``, ``.pdf``) picks that
    format.
    """
    out = Path(path)
    if not out.suffix:
        out = out.with_suffix(".png")
    figure(run, resolution).savefig(out, dpi=100)
    return out
