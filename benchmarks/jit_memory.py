"""Peak memory of a deep chain under jit against eager mode, and the million-deep chain.

A chain ``y = tanh(y * w + 0.5)``, ``depth`` steps (three nodes a step), its value and its
gradient with respect to ``w``: eagerly, and under ``jit`` (the first call traces and plans,
then a second call replays). Each contender runs in a fresh process of its own, alternating,
``--rounds`` times; peak RSS (the process's high-water mark, ``ru_maxrss``) is printed above
the RSS after imports, with the wall time, and as a ratio jit / eager (the goal: at most 5x at
100,000 steps). Both must give the same gradient. ``--million`` also runs the README's
million-node chain (``y = y * w`` a million times, and ``tanh`` steps) under jit.

Run: uv run python benchmarks/jit_memory.py [--depth 100000] [--rounds 3] [--million]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time


def _rss_mb() -> float:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * resource.getpagesize() / 2**20


def child(mode: str, depth: int, kind: str) -> None:
    """Run one contender in this process and print its figures as JSON."""
    from mingrad_core import Scalar
    from mingrad_jit import jit

    w = Scalar(0.9)

    def chain(x):
        y = Scalar(x[0]) if mode == "jit" else x[0]
        for _ in range(depth):
            y = (y * w + 0.5).tanh() if kind == "tanh" else y * w
        return y

    base = _rss_mb()
    start = time.perf_counter()
    if mode == "eager":
        out = chain([Scalar(0.3)])
        out.backward()
        strategy = "eager"
    else:
        f = jit(chain)
        out = f([0.3])
        out.backward()
        w.grad = 0.0
        out = f([0.3])  # a replay
        out.backward()
        strategy = f.info()[0].strategy
    seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"peak": peak - base, "seconds": seconds, "grad": w.grad, "how": strategy}))


def run(mode: str, depth: int, kind: str = "tanh") -> dict:
    done = subprocess.run(
        [sys.executable, __file__, "--child", mode, "--depth", str(depth), "--kind", kind],
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(done.stdout.splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--depth", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--million", action="store_true")
    parser.add_argument("--child", choices=["eager", "jit"])
    parser.add_argument("--kind", choices=["tanh", "mul"], default="tanh")
    args = parser.parse_args()
    if args.child:
        child(args.child, args.depth, args.kind)
        return
    best: dict[str, dict] = {}
    for _ in range(args.rounds):
        for mode in ("eager", "jit"):
            got = run(mode, args.depth)
            if mode not in best or got["peak"] < best[mode]["peak"]:
                best[mode] = got
    eager, jitted = best["eager"], best["jit"]
    assert abs(eager["grad"] - jitted["grad"]) <= 1e-9 * abs(eager["grad"]) + 1e-300, best
    print(f"chain of {args.depth} tanh steps ({3 * args.depth} nodes), best of {args.rounds}:")
    for mode, got in best.items():
        print(f"  {mode:5} peak {got['peak']:7.0f} MB above imports, {got['seconds']:6.2f} s"
              f"  ({got['how']})")  # fmt: skip
    print(f"  jit / eager peak memory: {jitted['peak'] / eager['peak']:.1f}x (goal: at most 5x)")
    if args.million:
        for kind, depth in (("mul", 1_000_000), ("tanh", 333_334)):
            got = run("jit", depth, kind)
            nodes = depth if kind == "mul" else 3 * depth
            print(f"million-node chain ({nodes} nodes, {kind}) under jit: peak "
                  f"{got['peak']:.0f} MB, {got['seconds']:.1f} s, d/dw {got['grad']:.6g}"
                  f" ({got['how']})")  # fmt: skip


if __name__ == "__main__":
    main()
