"""What guards cost a replay: the seed's jitted training step with its guards checked, against
the same step with the check skipped, alternating in one process, best of N, as a ratio.

Run: uv run python benchmarks/jit_guards.py [--rounds N]
"""

from __future__ import annotations

import argparse
import time

from _common import X, Y, seed_loss

from mingrad import MLP, Scalar, jit
from mingrad_jit import guards

model = MLP(2, [16, 16, 1], seed=0)


def loss_fn(X, y):
    """The seed's loss; ``model`` is a global, guarded by identity."""
    return seed_loss(model, [list(map(Scalar, row)) for row in X])


def step(f) -> None:
    model.zero_grad()
    f(X, Y).backward()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--steps", type=int, default=30)
    args = parser.parse_args()
    f = jit(loss_fn)
    step(f)  # trace
    checked = guards.Guards.changed
    best = {"guarded": float("inf"), "unguarded": float("inf")}
    for _ in range(args.rounds):
        for how in best:
            guards.Guards.changed = checked if how == "guarded" else (lambda self: None)
            start = time.perf_counter()
            for _ in range(args.steps):
                step(f)
            best[how] = min(best[how], (time.perf_counter() - start) / args.steps)
    guards.Guards.changed = checked
    count = len(f._cache[next(iter(f._cache))].guards)
    start = time.perf_counter()
    for _ in range(1000):
        f._cache[next(iter(f._cache))].guards.changed()
    check = (time.perf_counter() - start) / 1000
    print(f"seed step under jit ({count} guards, {check * 1e6:.1f} us to check them):")
    for how, seconds in best.items():
        print(f"  {how:9} {seconds * 1e3:7.3f} ms per step")
    print(f"  guarded / unguarded: {best['guarded'] / best['unguarded']:.3f}")


if __name__ == "__main__":
    main()
