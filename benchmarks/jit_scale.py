"""jit at scale with vmap: steady steps, first calls and digits, against PyTorch and numpy.

All in one process, contenders alternating round by round, the median of each printed:
- steady step (forward, backward, the project's SGD ``zero_grad``/``step``) of an MLP
  2-H-H-1 with hinge loss on make_moons-like data, per sample written with ``vmap`` inside a
  ``jit``-ted loss, divided by PyTorch's (float64, one thread) when ``import torch`` works and
  by a hand-written numpy step's (the floor) always;
- the first call (trace, plan, one replay and backward) at B = 200 and B = 20,000, each in a
  fresh process, with that process's peak RSS;
- digits (1,797 x 64, MLP 64-32-10, softmax cross-entropy, SGD 0.5 from the same weights):
  wall time to 97% training accuracy, first call included, and the steady step.

Run: OMP_NUM_THREADS=1 uv run python benchmarks/jit_scale.py [--rounds N] [--quick]
(PyTorch is not a dependency: run it with a Python that has torch and MinGrad installed to
get the PyTorch columns.)
"""

from __future__ import annotations

import argparse
import gc
import json
import statistics
import subprocess
import sys
import time

import numpy as np

from mingrad_core import Scalar
from mingrad_jit import jit, vmap
from mingrad_nn import MLP, SGD, cross_entropy

try:
    import torch

    torch.set_num_threads(1)
except ImportError:
    torch = None

LR = 0.5


def moons_like(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Two noisy interleaved half-circles, labels -1 and +1."""
    rng = np.random.default_rng(seed)
    t = rng.uniform(0, np.pi, n)
    y = rng.integers(0, 2, n)
    X = np.stack((np.cos(t) + y, np.sin(t) * (1 - 2 * y) + 0.5 * y), 1)
    return X + rng.normal(0, 0.1, X.shape), (y * 2 - 1).astype(float)


def weights(model: MLP) -> list[tuple[np.ndarray, np.ndarray]]:
    """Each layer's (W, b) as arrays: the same starting point for every contender."""
    return [
        (
            np.array([[w.data for w in n.w] for n in layer.neurons]),
            np.array([n.b.data for n in layer.neurons]),
        )
        for layer in model.layers
    ]


class Mingrad:
    """The project's step: a vmapped per-sample loss inside a jitted mean, SGD in bulk."""

    def __init__(self, model: MLP, loss: str) -> None:
        self.model = model
        self.optimizer = SGD(model.parameters(), lr=LR)

        if loss == "hinge":

            def sample_loss(x, y):
                return (1 + -y * model(list(map(Scalar, x)))).relu()

        else:

            def sample_loss(x, t):
                return cross_entropy([model(list(map(Scalar, x)))], [t])

        @jit
        def loss_fn(X, Y):
            losses = vmap(sample_loss)(X, Y)
            return sum(losses) * (1.0 / len(losses))

        self.loss_fn = loss_fn

    def __call__(self, X, Y) -> float:
        loss = self.loss_fn(X, Y)
        self.optimizer.zero_grad()
        loss.backward()
        self.optimizer.step()
        return loss.data


class Numpy:
    """The same step written by hand in numpy: the floor."""

    def __init__(self, model: MLP, loss: str) -> None:
        self.layers = [[W.copy(), b.copy()] for W, b in weights(model)]
        self.loss = loss

    def __call__(self, X, Y) -> float:
        acts = [X]
        for i, (W, b) in enumerate(self.layers):
            z = acts[-1] @ W.T + b
            acts.append(np.maximum(z, 0.0) if i < len(self.layers) - 1 else z)
        n = len(X)
        if self.loss == "hinge":
            margin = 1 - Y * acts[-1][:, 0]
            value = np.maximum(margin, 0.0).mean()
            g = (-(margin > 0).astype(float) * Y / n)[:, None]
        else:
            z = acts[-1] - acts[-1].max(axis=1, keepdims=True)
            p = np.exp(z)
            p /= p.sum(axis=1, keepdims=True)
            value = -(Y * np.log(p)).sum() / n
            g = (p - Y) / n
        for i in range(len(self.layers) - 1, -1, -1):
            W, b = self.layers[i]
            gW, gb = g.T @ acts[i], g.sum(axis=0)
            if i:
                g = (g @ W) * (acts[i] > 0)
            self.layers[i] = [W - LR * gW, b - LR * gb]
        return float(value)


class Torch:
    """The same step in PyTorch (float64, one thread)."""

    def __init__(self, model: MLP, loss: str) -> None:
        self.params = []
        for W, b in weights(model):
            self.params += [
                torch.tensor(W, requires_grad=True),
                torch.tensor(b, requires_grad=True),
            ]
        self.optimizer = torch.optim.SGD(self.params, lr=LR)
        self.loss = loss

    def __call__(self, X, Y) -> float:
        h = X
        layers = list(zip(self.params[::2], self.params[1::2]))
        for i, (W, b) in enumerate(layers):
            h = torch.addmm(b, h, W.T)
            if i < len(layers) - 1:
                h = torch.relu(h)
        if self.loss == "hinge":
            value = torch.relu(1 - Y * h[:, 0]).mean()
        else:
            value = -(Y * torch.log_softmax(h, dim=1)).sum() / len(X)
        self.optimizer.zero_grad()
        value.backward()
        self.optimizer.step()
        return value.item()


def contenders(nin: int, nouts: list[int], loss: str, X, Y) -> dict:
    """Each contender's step and its data, from the same weights."""
    model = MLP(nin, nouts, seed=0)
    steps = {"numpy": (Numpy(model, loss), (X, Y))}
    if torch is not None:
        steps["torch"] = (Torch(model, loss), (torch.tensor(X), torch.tensor(Y)))
    steps["mingrad"] = (Mingrad(model, loss), (X, Y))
    return steps


def steady(steps: dict, rounds: int, per_round: int) -> dict[str, float]:
    """Median seconds per step of each contender, alternating, back to back as training runs."""
    for step, data in steps.values():  # the first call (the trace) is not a steady step
        step(*data)
        step(*data)
    times: dict[str, list[float]] = {name: [] for name in steps}
    for _ in range(rounds):
        for name, (step, data) in steps.items():
            start = time.perf_counter()
            for _ in range(per_round):
                step(*data)
            times[name].append((time.perf_counter() - start) / per_round)
    return {name: statistics.median(t) for name, t in times.items()}


def table(rounds: int, quick: bool) -> None:
    sizes = {16: [10, 100, 1000, 10000], 64: [10, 100, 1000, 10000], 256: [10, 100, 1000]}
    if quick:
        sizes = {16: [100, 1000], 64: [1000], 256: [100]}
    against = "torch" if torch is not None else "numpy"
    print(
        f"Steady step, MLP 2-H-H-1, hinge loss: mingrad (vmap) / {against}, and numpy / "
        f"{against}; ms per mingrad step"
    )
    if torch is None:
        print("(PyTorch is not importable here: ratios are against the hand-written numpy step)")
    for H, batches in sizes.items():
        cells = []
        for B in batches:
            X, Y = moons_like(B)
            per_round = max(1, min(50, 20000 // (B * max(1, H // 16))))
            t = steady(contenders(2, [H, H, 1], "hinge", X, Y), rounds, per_round)
            cells.append(
                f"B={B}: {t['mingrad'] / t[against]:.2f} (numpy {t['numpy'] / t[against]:.2f}, "
                f"{t['mingrad'] * 1e3:.2f} ms)"
            )
        print(f"  H={H}: " + "; ".join(cells))


def first_call(B: int, H: int, who: str = "mingrad") -> dict:
    """In this process: the first call at batch B of MLP 2-H-H-1, and the peak RSS."""
    import resource

    X, Y = moons_like(B)
    model = MLP(2, [H, H, 1], seed=0)
    if who == "torch":
        step, data = Torch(model, "hinge"), (torch.tensor(X), torch.tensor(Y))
    else:
        step, data = Mingrad(model, "hinge"), (X, Y)
    start = time.perf_counter()
    step(*data)
    seconds = time.perf_counter() - start
    gc.collect()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"seconds": seconds, "peak_mb": peak}


def first_calls(H: int) -> None:
    """Each first call in a fresh process, B = 200 and B = 20,000 alternating; PyTorch's first
    step too where it is importable (its first touch of fresh memory is part of it as well)."""
    for who in ("mingrad", "torch") if torch is not None else ("mingrad",):
        results: dict[int, list[dict]] = {}
        for B in (200, 20000, 200, 20000, 200, 20000):
            out = subprocess.run(
                [sys.executable, __file__, "--first-call", str(B), str(H), who],
                capture_output=True,
                text=True,
                check=True,
            )
            results.setdefault(B, []).append(json.loads(out.stdout))
        small = min(r["seconds"] for r in results[200])
        large = min(r["seconds"] for r in results[20000])
        peak = max(r["peak_mb"] for r in results[20000])
        print(
            f"First call, MLP 2-{H}-{H}-1, {who}: B=200 {small * 1e3:.0f} ms, B=20,000 "
            f"{large * 1e3:.0f} ms ({large / small:.1f}x), peak RSS at B=20,000 {peak:.0f} MB"
        )


def digits(rounds: int) -> None:
    from sklearn.datasets import load_digits

    data = load_digits()
    X, T = data.data / 16.0, np.eye(10)[data.target]
    labels = data.target

    def accuracy(name, step) -> float:
        if name == "mingrad":
            W = weights(step.model)
        elif name == "numpy":
            W = step.layers
        else:
            W = [
                (p.detach().numpy(), q.detach().numpy())
                for p, q in zip(step.params[::2], step.params[1::2])
            ]
        h = X
        for i, (w, b) in enumerate(W):
            h = h @ w.T + b
            h = np.maximum(h, 0) if i < len(W) - 1 else h
        return float((h.argmax(axis=1) == labels).mean())

    print("Digits (1,797 x 64, MLP 64-32-10, cross-entropy, SGD 0.5, same weights):")
    walls: dict[str, list[float]] = {}
    for _ in range(max(1, rounds // 3)):
        for name, (step, data) in contenders(64, [32, 10], "ce", X, T).items():
            start = time.perf_counter()
            first = None
            for k in range(1, 2001):
                step(*data)
                if first is None:
                    first = time.perf_counter() - start
                if k % 10 == 0 and accuracy(name, step) >= 0.97:
                    break
            wall = time.perf_counter() - start
            walls.setdefault(name, []).append(wall)
            print(f"  {name}: 97% after {k} steps, {wall:.2f} s (first call {first * 1e3:.0f} ms)")
    against = "torch" if torch is not None else "numpy"
    ratio = min(walls["mingrad"]) / min(walls[against])
    print(f"  wall time to 97%, mingrad / {against}: {ratio:.2f}")
    t = steady(contenders(64, [32, 10], "ce", X, T), rounds, 10)
    print(
        f"  steady step: mingrad {t['mingrad'] * 1e3:.2f} ms, mingrad / {against} "
        f"{t['mingrad'] / t[against]:.2f}, numpy / {against} {t['numpy'] / t[against]:.2f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--quick", action="store_true", help="a few sizes only")
    parser.add_argument("--first-call", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.first_call:
        B, H, who = args.first_call
        print(json.dumps(first_call(int(B), int(H), who)))
        return
    print(f"PyTorch {torch.__version__}" if torch is not None else "PyTorch: not importable")
    digits(args.rounds)
    first_calls(64)
    table(args.rounds, args.quick)


if __name__ == "__main__":
    main()
