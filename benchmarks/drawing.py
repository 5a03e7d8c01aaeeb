"""How long ``draw_graph(root).pipe("svg")`` takes, with default arguments, on the graphs that
used to stall Graphviz: a 600-term sum of products (the shape of every loss), an MLP 2-16-16-1
on one sample, and ``x + x + ...`` with 400 terms (one node feeding hundreds of others).
The goal (issue 18): each under 30 s; the 600-term sum took more than 300 s before sums were
drawn as one n-ary node.

Run: uv run python benchmarks/drawing.py
"""

from __future__ import annotations

import time

from mingrad import Scalar, draw_graph
from mingrad_nn import MLP

GOAL = 30.0  # seconds


def graphs() -> dict[str, Scalar]:
    w = Scalar(0.5, name="w")
    x = Scalar(1.0, name="x")
    chain = x
    for _ in range(399):
        chain = chain + x
    return {
        "600-term sum of products": sum(Scalar(i) * w for i in range(600)),
        "MLP 2-16-16-1, one sample": MLP(2, [16, 16, 1], seed=0)([Scalar(0.3), Scalar(-0.2)]),
        "x + x + ..., 400 terms": chain,
    }


def main() -> None:
    for name, root in graphs().items():
        root.backward()
        start = time.perf_counter()
        svg = draw_graph(root).pipe("svg")
        seconds = time.perf_counter() - start
        verdict = "met" if seconds < GOAL else "NOT met"
        size = len(svg) // 1024
        print(f"{name:28s} {seconds:6.2f} s ({size} KB of SVG); goal < {GOAL:.0f} s {verdict}")


if __name__ == "__main__":
    main()
