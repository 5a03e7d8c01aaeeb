"""Time building and backpropagating large graphs: a deep chain and a wide neural-net-like sum.

Run: uv run python benchmarks/graph.py
"""

import time
from functools import partial

from mingrad_core import Scalar


def best_of(runs: int, fn) -> float:
    best = float("inf")
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def chain(n: int) -> None:
    x = Scalar(0.5)
    y = x
    for _ in range(n):
        y = (y * x).tanh() + x
    y.backward()


def wide(n: int) -> None:
    ws = [Scalar(0.01 * i) for i in range(n)]
    total = Scalar(0.0)
    for w in ws:
        total = total + (w * 2.0).relu()
    total.backward()


if __name__ == "__main__":
    for name, fn, n, nodes_per in [("chain", chain, 100_000, 4), ("wide", wide, 100_000, 4)]:
        seconds = best_of(3, partial(fn, n))
        nodes = n * nodes_per
        print(
            f"{name:6s} {nodes:>9,d} nodes  {seconds * 1e3:8.1f} ms  "
            f"{seconds / nodes * 1e9:6.0f} ns/node (build + backward)"
        )
