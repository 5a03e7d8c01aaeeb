"""``mingrad demo``: train an MLP on two moons (or digits) and draw its decision boundary."""

from __future__ import annotations

import argparse
import sys
import time

from .arguments import output_file, quote, whole_number

SEEDS = 2**32 - 1  # the largest seed scikit-learn's data sets take


def add_to(commands: argparse._SubParsersAction) -> None:
    """Add the ``demo`` command's parser."""
    demo = commands.add_parser(
        "demo",
        help="train an MLP on the two-moons data set and draw its decision boundary",
        description="Train MLP(2, [16, 16, 1]) on make_moons(n_samples=100, noise=0.1) with "
        "hinge loss + 1e-4 L2 and full-batch SGD, the learning rate decaying from 1.0 to 0.1; "
        "then write a PNG of the decision boundary and the loss curve. If the loss becomes nan "
        "or infinite (e.g. --activation log), training stops with a warning naming the step, "
        'and the command exits 1. Needs the demo extra: pip install "mingrad[demo]".',
    )
    demo.add_argument(
        "--dataset",
        choices=["moons", "digits"],
        default="moons",
        help="moons (default): the seed's experiment above, and a picture; digits: "
        "scikit-learn's 1,797 8x8 digits, MLP 64-32-10, softmax cross-entropy, full-batch SGD "
        "(lr 0.5) until 97%% training accuracy, no picture",
    )
    demo.add_argument(
        "--jit",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="trace the loss once and replay it as numpy code (same results, faster; needs "
        "the jit extra). Default: off for moons, on for digits (eager digits takes seconds "
        "per step)",
    )
    demo.add_argument(
        "--steps",
        type=whole_number(1),
        default=None,
        help="SGD steps (default: 100 for moons; at most 300 for digits, which stops at 97%%)",
    )
    demo.add_argument(
        "--seed",
        type=whole_number(0, SEEDS),
        default=0,
        help=f"seed for data and weights, 0 to {SEEDS} (default: 0)",
    )
    demo.add_argument(
        "--activation",
        default="relu",
        help="any registered one-input op, e.g. relu, tanh (default: relu); one that makes "
        "the loss nan stops training, with exit status 1",
    )
    demo.add_argument(
        "--output",
        "-o",
        type=output_file,
        default="moons.png",
        help="where to write the picture; its suffix picks the format (png, svg, pdf, ...); "
        "without a suffix, .png is added (default: moons.png)",
    )
    demo.set_defaults(run=run)


def _check_picture_format(args: argparse.Namespace) -> None:
    """Refuse, before training, a picture suffix matplotlib cannot write."""
    from matplotlib.backend_bases import FigureCanvasBase

    suffix = args.output.suffix.lstrip(".").lower()
    formats = FigureCanvasBase.get_supported_filetypes()
    if suffix and suffix not in formats:
        raise ValueError(
            f"--output {quote(str(args.output), 500)}: cannot write a .{suffix} picture; "
            f"use one of {', '.join('.' + f for f in sorted(formats))}"
        )


def run(args: argparse.Namespace) -> int:
    """Train, print a summary, and write the picture (moons); 1 if the loss became nan."""
    from mingrad.demo import plot, require_demo_dependencies, train_digits, train_moons

    require_demo_dependencies()
    from tqdm import tqdm

    digits = args.dataset == "digits"
    if not digits:
        _check_picture_format(args)
    use_jit = digits if args.jit is None else args.jit
    steps = args.steps if args.steps is not None else 300 if digits else 100
    if use_jit:
        try:
            import mingrad_jit  # noqa: F401
        except ImportError as exc:
            raise RuntimeError(
                f'--jit needs numpy ({exc}); install the jit extra: pip install "mingrad[jit]"'
            ) from None
    bars: list[tqdm] = []  # opened at the first step: a setup error shows no bar

    def on_step(k: int, loss: float, accuracy: float) -> None:
        if not bars:
            bars.append(tqdm(total=steps, desc="training", unit="step", file=sys.stderr))
        bars[0].set_postfix(loss=f"{loss:.4f}", accuracy=f"{accuracy:.0%}", refresh=False)
        bars[0].update()

    start = time.perf_counter()
    train = train_digits if digits else train_moons
    try:
        training = train(
            steps=steps,
            seed=args.seed,
            activation=args.activation,
            on_step=on_step,
            use_jit=use_jit,
        )
    finally:
        for bar in bars:
            bar.close()
    seconds = time.perf_counter() - start
    print(
        f"{len(training.losses)} steps in {seconds:.1f} s: loss {training.losses[-1]:.4f}, "
        f"training accuracy {training.accuracies[-1]:.0%} ({len(training.y)} samples, "
        f"{len(training.model.parameters())} parameters)"
    )
    if training.diverged_at is not None:
        print(
            f"mingrad demo: warning: the loss became {training.losses[-1]} at step "
            f"{training.diverged_at + 1} of {steps} (activation {args.activation!r}); "
            "training stopped and no picture was written",
            file=sys.stderr,
        )
        return 1
    if digits:
        print("(digits has 64 inputs: no decision boundary to draw, no picture written)")
        return 0
    print(f"wrote {plot(training, args.output)}")
    return 0
