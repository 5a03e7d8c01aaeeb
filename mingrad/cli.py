"""The ``mingrad`` command."""

from __future__ import annotations

import argparse
import sys
import time


def _demo(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from .demo import plot, train_moons

    start = time.perf_counter()
    with tqdm(total=args.steps, desc="training", unit="step", file=sys.stderr) as bar:

        def on_step(k: int, loss: float, accuracy: float) -> None:
            bar.set_postfix(loss=f"{loss:.4f}", accuracy=f"{accuracy:.0%}", refresh=False)
            bar.update()

        run = train_moons(
            steps=args.steps, seed=args.seed, activation=args.activation, on_step=on_step
        )
    seconds = time.perf_counter() - start
    plot(run, args.output)
    print(
        f"{args.steps} steps in {seconds:.1f} s: loss {run.losses[-1]:.4f}, "
        f"training accuracy {run.accuracies[-1]:.0%} ({len(run.y)} samples, "
        f"{len(run.model.parameters())} parameters)\nwrote {args.output}"
    )
    return 0


def _seed_example():
    from mingrad_core import Scalar

    a = Scalar(2, name="a")
    b = Scalar(-6.5, name="b")
    c = a * 5 / 2
    c.name = "c"
    d = c + (b**6).relu()
    d.name = "d"
    return d


def _graph(args: argparse.Namespace) -> int:
    from pathlib import Path

    from mingrad_viz import draw_graph

    from .expression import evaluate

    if args.expression is None:
        root = _seed_example()
    else:
        values = {}
        for item in args.values:
            name, sep, value = item.partition("=")
            try:
                values[name.strip()] = float(value)
            except ValueError:
                sep = ""
            if not sep or not name.strip().isidentifier():
                raise ValueError(f"expected NAME=NUMBER, such as x=1.5; got {item!r}")
        root = evaluate(args.expression, values)
    if not args.no_backward:
        root.backward()
    out = Path(args.output)
    fmt = out.suffix.lstrip(".").lower() or "svg"
    out.write_bytes(draw_graph(root, rankdir=args.rankdir, max_nodes=args.max_nodes).pipe(fmt))
    print(f"wrote {out}: {root!r}")
    return 0


def _table(rows: list[list[str]]) -> str:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join(
        "  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in rows
    )


def _provider(name: str) -> str:
    from mingrad_core import origin_of
    from mingrad_core.registry import BUILTIN_DISTRIBUTION

    origin = origin_of(name)
    if origin.distribution is None:
        return f"{origin.plugin} (registered in code)"
    release = f"({origin.distribution} {origin.version})"
    if origin.distribution == BUILTIN_DISTRIBUTION:
        return f"built-in {release}"
    return f"{origin.plugin} {release}"


def _ops(args: argparse.Namespace) -> int:
    from mingrad_core import failures, ops

    rows = [["op", "arity", "symbol", "operator", "provided by"]]
    for name, spec in sorted(ops().items()):
        rows.append(
            [
                name,
                f"{spec.arity}{'+' if spec.variadic else ''}",
                spec.label,
                spec.operator or "",
                _provider(name),
            ]
        )
    print(_table(rows))
    broken = failures()
    if broken:
        print("\nplugins that failed to load:")
        for failure in broken:
            print(f"  {failure.origin}: {failure.error}")
    return 0


def _check(args: argparse.Namespace) -> int:
    from mingrad_core import check_op, get_op, ops

    names = args.ops or sorted(ops())
    specs = [get_op(name) for name in names]  # unknown names fail before any checking
    rows = [["op", "1st order", "2nd order", "result"]]
    failed = []
    for spec in specs:
        report = check_op(spec, samples=args.samples, seed=args.seed)
        rows.append(
            [spec.name, *(f"{e:.2g}" for e in report.errors), "ok" if report.ok else "FAILED"]
        )
        if not report.ok:
            failed.append(report.message)
    print(_table(rows))
    print(
        "\n(worst error at random points of each op's domain, as a fraction of the tolerance: "
        "above 1 fails)"
    )
    for message in failed:
        print(f"FAILED {message}")
    print(f"{len(specs) - len(failed)} passed, {len(failed)} failed")
    return 1 if failed else 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mingrad", description="MinGrad: a scalar autograd engine where every op is a plugin."
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    demo = commands.add_parser(
        "demo",
        help="train an MLP on the two-moons data set and draw its decision boundary",
        description="Train MLP(2, [16, 16, 1]) on make_moons(n_samples=100, noise=0.1) with "
        "hinge loss + 1e-4 L2 and full-batch SGD, the learning rate decaying from 1.0 to 0.1; "
        "then write a PNG of the decision boundary and the loss curve.",
    )
    demo.add_argument("--steps", type=int, default=100, help="SGD steps (default: 100)")
    demo.add_argument("--seed", type=int, default=0, help="seed for data and weights (default: 0)")
    demo.add_argument(
        "--activation",
        default="relu",
        help="any registered one-input op, e.g. relu, tanh (default: relu)",
    )
    demo.add_argument(
        "--output", "-o", default="moons.png", help="where to write the PNG (default: moons.png)"
    )
    demo.set_defaults(run=_demo)

    graph = commands.add_parser(
        "graph",
        help="draw a computation graph (the seed example, or an expression) to a file",
        description="Draw the graph of an expression, after backpropagating through it, with "
        "Graphviz. Without an expression, draws the seed example: a=2, b=-6.5, c=a*5/2, "
        "d=c+(b**6).relu(). Example: mingrad graph 'tanh(x*w + b)' x=1 w=0.5 b=0.1",
    )
    graph.add_argument(
        "expression",
        nargs="?",
        help="numbers, names, + - * / **, and registered ops as functions or methods",
    )
    graph.add_argument("values", nargs="*", metavar="NAME=NUMBER", help="the value of each name")
    graph.add_argument(
        "--output",
        "-o",
        default="graph.svg",
        help="the file to write; its suffix picks the format: svg, png, pdf (default: graph.svg)",
    )
    graph.add_argument(
        "--rankdir",
        default="BT",
        choices=["BT", "TB", "LR", "RL"],
        help="direction of the layout: BT draws inputs at the bottom (default), LR on the left",
    )
    graph.add_argument(
        "--max-nodes", type=int, default=2000, help="refuse larger graphs (default: 2000)"
    )
    graph.add_argument(
        "--no-backward", action="store_true", help="draw without computing gradients"
    )
    graph.set_defaults(run=_graph)

    listing = commands.add_parser(
        "ops",
        help="list every registered op and the plugin that provided it",
        description="List every registered op: arity, drawing symbol, bound operator, and the "
        "plugin and distribution (with version) that provided it; then any plugin that failed "
        "to load, with the reason.",
    )
    listing.set_defaults(run=_ops)

    check = commands.add_parser(
        "check",
        help="check ops' first and second derivatives against finite differences",
        description="Run the gradient checker on every registered op, or on the ops named: "
        "first and second derivatives against float64 central differences at random points "
        "of each op's domain. Exits 1 if any op fails.",
    )
    check.add_argument("ops", nargs="*", metavar="OP", help="ops to check (default: all)")
    check.add_argument("--samples", type=int, default=20, help="points per op (default: 20)")
    check.add_argument("--seed", type=int, default=0, help="seed for the points (default: 0)")
    check.set_defaults(run=_check)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.run(args)
    except (ValueError, LookupError, OSError, RuntimeError) as exc:
        print(f"mingrad {args.command}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
