"""The seed's training step under jit, against eager mode, hand-written numpy and PyTorch.

All in one process, alternating, best of N, printed as ratios:
- the seed step (100 make_moons samples, MLP 2-16-16-1, hinge loss + 1e-4 L2, backward, SGD)
  eager, under ``jit``, as a hand-written numpy step (the floor), and in PyTorch on one thread
  when ``import torch`` works (it is not a dependency of MinGrad);
- what tracing and planning cost once: as the first call of several new processes (beside the
  eager forward in the same processes, which shows the machine's speed at the time), and in
  this process; and a retrace on a new batch size;
- a deep, narrow graph (random DAG, inputs from a recent window) eager and under jit;
- digits: scikit-learn's 8x8 digits, MLP 64-32-10, softmax cross-entropy, full batch, trained
  to 97% training accuracy under jit; eager and jit time per step side by side.

Run: uv run python benchmarks/jit_step.py [--rounds N] [--no-digits]
"""

from __future__ import annotations

import argparse
import gc
import json
import random
import subprocess
import sys
import time

import numpy as np
from sklearn.datasets import load_digits, make_moons

from mingrad import MLP, Scalar, cross_entropy, jit

X, Y = make_moons(n_samples=100, noise=0.1, random_state=0)
X, Y = X.tolist(), (Y * 2 - 1).tolist()
LR = 0.5


def seed_loss(model: MLP):
    """The seed's loss as a function of the batch, written as for eager mode."""

    def loss_fn(X, y):
        inputs = [list(map(Scalar, row)) for row in X]
        scores = list(map(model, inputs))
        losses = [(1 + -yi * si).relu() for yi, si in zip(y, scores)]
        data_loss = sum(losses) * (1.0 / len(losses))
        return data_loss + 1e-4 * sum(p * p for p in model.parameters())

    return loss_fn


def sgd_step(model: MLP, loss_fn, X, y) -> float:
    model.zero_grad()
    loss = loss_fn(X, y)
    loss.backward()
    for p in model.parameters():
        p.data -= LR * p.grad
    return loss.data


class NumpyStep:
    """The same step written by hand in numpy: the floor a replay can approach."""

    def __init__(self, model: MLP) -> None:
        self.layers = [
            (
                np.array([[w.data for w in n.w] for n in layer.neurons]),
                np.array([n.b.data for n in layer.neurons]),
            )
            for layer in model.layers
        ]

    def __call__(self, X, y) -> float:
        X, y = np.asarray(X), np.asarray(y, dtype=float)
        acts = [X]
        for i, (W, b) in enumerate(self.layers):
            z = acts[-1] @ W.T + b
            acts.append(np.maximum(z, 0.0) if i < len(self.layers) - 1 else z)
        score = acts[-1][:, 0]
        margin = 1 - y * score
        n = len(y)
        params = [a for W, b in self.layers for a in (W, b)]
        loss = np.maximum(margin, 0).sum() / n + 1e-4 * sum((a * a).sum() for a in params)
        g = np.where(margin > 0, -y / n, 0.0)[:, None]
        for i in range(len(self.layers) - 1, -1, -1):
            W, b = self.layers[i]
            gW, gb = g.T @ acts[i] + 2e-4 * W, g.sum(axis=0) + 2e-4 * b
            if i:
                g = (g @ W) * (acts[i] > 0)
            W -= LR * gW
            b -= LR * gb
        return float(loss)


def torch_step():
    """The same step in PyTorch on one thread, or None when torch is not importable."""
    try:
        import torch
    except ImportError:
        return None
    torch.set_num_threads(1)
    torch.manual_seed(0)
    net = torch.nn.Sequential(
        torch.nn.Linear(2, 16),
        torch.nn.ReLU(),
        torch.nn.Linear(16, 16),
        torch.nn.ReLU(),
        torch.nn.Linear(16, 1),
    ).double()
    Xt, yt = torch.tensor(X, dtype=torch.float64), torch.tensor(Y, dtype=torch.float64)

    def step(X_, y_) -> float:
        net.zero_grad()
        score = net(Xt)[:, 0]
        loss = torch.relu(1 - yt * score).mean() + 1e-4 * sum(
            (p * p).sum() for p in net.parameters()
        )
        loss.backward()
        with torch.no_grad():
            for p in net.parameters():
                p -= LR * p.grad
        return loss.item()

    return step


def best_times(steps: dict, rounds: int) -> dict[str, float]:
    best = dict.fromkeys(steps, float("inf"))
    for _ in range(rounds):
        for name, step in steps.items():  # alternate, so all see the same machine state
            gc.collect()
            start = time.perf_counter()
            step()
            best[name] = min(best[name], time.perf_counter() - start)
    return best


def seed_step(rounds: int) -> None:
    eager_model, jit_model = MLP(2, [16, 16, 1], seed=0), MLP(2, [16, 16, 1], seed=0)
    eager_fn, jit_fn = seed_loss(eager_model), jit(seed_loss(jit_model))
    start = time.perf_counter()
    sgd_step(jit_model, jit_fn, X, Y)
    first = time.perf_counter() - start
    (info,) = jit_fn.info()
    print(
        f"seed graph: {info.nodes} nodes in {info.groups} groups over {info.levels} levels "
        f"({info.folded} adds folded into sums), strategy {info.strategy!r}"
    )
    print(
        f"trace {info.trace_seconds * 1e3:.1f} ms + plan {info.plan_seconds * 1e3:.1f} ms = "
        f"{(info.trace_seconds + info.plan_seconds) * 1e3:.1f} ms once (first call in all: "
        f"{first * 1e3:.1f} ms)"
    )
    sgd_step(eager_model, eager_fn, X, Y)
    numpy_step = NumpyStep(MLP(2, [16, 16, 1], seed=0))
    steps = {
        "eager": lambda: sgd_step(eager_model, eager_fn, X, Y),
        "jit": lambda: sgd_step(jit_model, jit_fn, X, Y),
        "numpy": lambda: numpy_step(X, Y),
    }
    torch_fn = torch_step()
    if torch_fn is not None:
        steps["torch"] = lambda: torch_fn(X, Y)
    best = best_times(steps, rounds)
    ms = {k: v * 1e3 for k, v in best.items()}
    print(f"seed step, best of {rounds} (alternating):")
    print(
        f"  eager {ms['eager']:.2f} ms, jit {ms['jit']:.3f} ms: jit is "
        f"{best['eager'] / best['jit']:.0f}x faster than eager"
    )
    print(
        f"  hand-written numpy {ms['numpy']:.3f} ms: jit takes "
        f"{best['jit'] / best['numpy']:.2f}x the numpy floor"
    )
    if "torch" in best:
        print(
            f"  PyTorch (1 thread) {ms['torch']:.3f} ms: jit is "
            f"{best['torch'] / best['jit']:.2f}x faster than PyTorch"
        )
    else:
        print("  PyTorch: not importable here (import torch failed), not measured")
    grads_equal(eager_model, jit_model)
    X2, Y2 = X[:64], Y[:64]
    start = time.perf_counter()
    sgd_step(jit_model, jit_fn, X2, Y2)
    retrace = time.perf_counter() - start
    print(
        f"retrace on a batch of 64: {retrace * 1e3:.1f} ms; traces {jit_fn.traces}, "
        f"replays {jit_fn.replays}"
    )


def grads_equal(eager_model: MLP, jit_model: MLP) -> None:
    diff = max(
        abs(a.data - b.data) for a, b in zip(eager_model.parameters(), jit_model.parameters())
    )
    print(f"  parameters after the same steps: eager and jit differ by at most {diff:.1e}")


def deep_graph(rounds: int, ops: int = 100_000, window: int = 16) -> None:
    """A random DAG of ``ops`` binary ops, each reading two of the last ``window`` nodes."""
    rng = random.Random(0)
    picks = [(rng.randrange(window), rng.randrange(window), rng.random() < 0.5) for _ in range(ops)]
    params = [Scalar(rng.uniform(0.5, 1.5)) for _ in range(window)]

    def fn(scale):
        nodes = [p * scale[0] for p in params]
        for a, b, use_mul in picks:
            x, y = nodes[-1 - a], nodes[-1 - b]
            nodes.append((x * y).tanh() if use_mul else x + y * 0.5)
        return sum(nodes[-window:])

    jitted = jit(fn)

    def step(f):
        for p in params:
            p.grad = 0.0
        f([1.0]).backward()

    step(jitted)
    (info,) = jitted.info()
    best = best_times(
        {"eager": lambda: step(fn), "jit": lambda: step(jitted)}, max(2, rounds // 10)
    )
    print(
        f"deep, narrow graph ({info.nodes} nodes, {info.levels} levels, strategy "
        f"{info.strategy!r}): eager {best['eager'] * 1e3:.0f} ms, jit {best['jit'] * 1e3:.0f} ms "
        f"({best['eager'] / best['jit']:.1f}x)"
    )


def digits(max_steps: int = 400, lr: float = 0.5) -> None:
    data = load_digits()
    X_d = (data.data / 16.0).tolist()
    labels = data.target.tolist()
    onehot = np.eye(10)[data.target].tolist()
    model = MLP(64, [32, 10], seed=0)

    def loss_fn(X, targets):
        logits = [model(list(map(Scalar, row))) for row in X]
        return cross_entropy(logits, targets), logits

    jitted = jit(loss_fn)

    def step(f):
        model.zero_grad()
        loss, logits = f(X_d, onehot)
        loss.backward()
        for p in model.parameters():
            p.data -= lr * p.grad
        return loss.data, logits

    gc.collect()
    start = time.perf_counter()
    step(loss_fn)
    eager = time.perf_counter() - start
    start = time.perf_counter()
    step(jitted)
    first = time.perf_counter() - start
    times, accuracy, k = [], 0.0, 1
    while accuracy < 0.97 and k < max_steps:
        start = time.perf_counter()
        loss, logits = step(jitted)
        times.append(time.perf_counter() - start)
        k += 1
        scores = np.array([[s.data for s in row] for row in logits])
        accuracy = float((scores.argmax(axis=1) == np.array(labels)).mean())
    print(
        f"digits (1,797 x 64, MLP 64-32-10, cross-entropy, full batch): eager "
        f"{eager * 1e3:.0f} ms/step, jit {np.median(times) * 1e3:.1f} ms/step "
        f"({eager / np.median(times):.0f}x; first jit call {first:.2f} s); training accuracy "
        f"{accuracy:.1%} after {k + 1} steps"
    )


def first_call() -> None:
    """Run in a new process: the seed step's first jit call, then the eager forward twice."""
    model = MLP(2, [16, 16, 1], seed=0)
    loss_fn = seed_loss(model)
    jitted = jit(loss_fn)
    jitted(X, Y)
    (info,) = jitted.info()
    eager = []
    for _ in range(2):
        start = time.perf_counter()
        loss_fn(X, Y)
        eager.append(time.perf_counter() - start)
    print(json.dumps({"trace_plan": info.trace_seconds + info.plan_seconds, "eager": eager[-1]}))


def fresh_processes(count: int) -> None:
    """Trace + plan as the first call of ``count`` new processes, beside the eager forward.

    The first call of a process is the slowest (cold caches, memory the process has not used
    yet), and this machine's speed drifts between processes; the eager forward of the same
    function, timed in the same process, shows how fast the machine was at the time.
    """
    runs = []
    for _ in range(count):
        out = subprocess.run(
            [sys.executable, __file__, "--first-call"], capture_output=True, text=True, check=True
        )
        runs.append(json.loads(out.stdout.splitlines()[-1]))
    plan = sorted(r["trace_plan"] * 1e3 for r in runs)
    eager = sorted(r["eager"] * 1e3 for r in runs)
    print(
        f"trace + plan as the first call of {count} new processes: median "
        f"{np.median(plan):.0f} ms (range {plan[0]:.0f}-{plan[-1]:.0f}); the eager forward in "
        f"the same processes: median {np.median(eager):.0f} ms ({eager[0]:.0f}-{eager[-1]:.0f})"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument(
        "--processes", type=int, default=7, help="new processes to time the first call in"
    )
    parser.add_argument("--no-digits", action="store_true")
    parser.add_argument("--first-call", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.first_call:
        first_call()
        return
    print(f"Python {sys.version.split()[0]}, numpy {np.__version__}")
    fresh_processes(args.processes)
    seed_step(args.rounds)
    deep_graph(args.rounds)
    if not args.no_digits:
        digits()


if __name__ == "__main__":
    main()
