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
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.run(args)
    except (ValueError, OSError) as exc:
        print(f"mingrad {args.command}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
