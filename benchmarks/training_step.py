"""MinGrad against micrograd on the seed notebook's training step, in one process.

The step: 100 make_moons samples, MLP 2-16-16-1, full-batch hinge loss + 1e-4 L2 over all
parameters, backward, SGD update -- written with Scalars exactly as the seed writes it, and
run alternately on both engines with the garbage collector on, as users run them.
Also: bytes per graph node (tracemalloc), and build and backward time for chains of
2*10^3..2*10^6 nodes, to show linear growth.

Run: uv run --group bench python benchmarks/training_step.py
"""

from __future__ import annotations

import gc
import sys
import time
import tracemalloc

from _common import chained_mlp, training_step
from micrograd.engine import Value
from micrograd.nn import MLP as MicroMLP

from mingrad import MLP, Scalar


def time_steps(rounds: int = 5) -> dict[str, float]:
    engines = {
        "mingrad": (MLP(2, [16, 16, 1], seed=0), Scalar),
        "mingrad-chains": (chained_mlp(), Scalar),
        "micrograd": (MicroMLP(2, [16, 16, 1]), Value),
    }
    best = dict.fromkeys(engines, float("inf"))
    for _ in range(rounds):  # alternate, so both see the same machine state
        for name, (model, value) in engines.items():
            gc.collect()  # neither engine pays for the other's garbage
            start = time.perf_counter()
            training_step(model, value)
            best[name] = min(best[name], time.perf_counter() - start)
    return best


def chain(value, n: int):
    x = value(0.5)
    y = x
    for _ in range(n):
        y = y * 0.999
    return y


def bytes_per_node(value, backward: bool, n: int = 100_000) -> float:
    """Memory held by a graph of n multiplications by a constant (2n nodes)."""
    gc.collect()
    tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]
    y = chain(value, n)
    if backward:
        sys.setrecursionlimit(max(sys.getrecursionlimit(), 10 * n))  # micrograd recurses
        y.backward()
    used = tracemalloc.get_traced_memory()[0] - base
    tracemalloc.stop()
    del y
    return used / (2 * n)


def chain_seconds(n: int, runs: int = 3) -> tuple[float, float]:
    """Best of ``runs``: seconds to build a chain of 2n nodes, and to backpropagate through it."""
    build = backward = float("inf")
    for _ in range(runs):
        gc.collect()
        start = time.perf_counter()
        y = chain(Scalar, n)
        middle = time.perf_counter()
        y.backward()
        end = time.perf_counter()
        build, backward = min(build, middle - start), min(backward, end - middle)
        del y
    return build, backward


def main() -> None:
    print(f"Python {sys.version.split()[0]}, gc {'on' if gc.isenabled() else 'off'}")
    best = time_steps()
    ratio = best["micrograd"] / best["mingrad"]
    print(
        f"training step (best of 5): mingrad {best['mingrad'] * 1e3:.0f} ms, "
        f"micrograd {best['micrograd'] * 1e3:.0f} ms: mingrad is {ratio:.1f}x faster"
    )
    chains = best["micrograd"] / best["mingrad-chains"]
    print(
        f"  with every neuron a chain of * and + nodes, as micrograd builds it: "
        f"mingrad {best['mingrad-chains'] * 1e3:.0f} ms, {chains:.1f}x faster"
    )
    for label, after in (("built", False), ("after backward", True)):
        ours, theirs = bytes_per_node(Scalar, after), bytes_per_node(Value, after)
        print(f"memory per node, {label}: mingrad {ours:.0f} bytes, micrograd {theirs:.0f} bytes")
    for n in (10**3, 10**4, 10**5, 10**6):  # 2n nodes: n products and n constants
        build, backward = chain_seconds(n)
        print(
            f"chain of {2 * n:>9,d} nodes: build {build * 1e3:7.1f} ms, backward "
            f"{backward * 1e3:7.1f} ms ({backward / (2 * n) * 1e9:.0f} ns/node)"
        )


if __name__ == "__main__":
    main()
