"""The ``mingrad`` command."""

from __future__ import annotations

import argparse
import sys
import time
import traceback

EXIT_INTERNAL_ERROR = 70  # sysexits' EX_SOFTWARE: an exception that is nobody's input's fault


def _demo(args: argparse.Namespace) -> int:
    from .demo import plot, require_demo_dependencies, train_digits, train_moons

    if args.steps is not None and args.steps < 1:
        raise ValueError(f"--steps must be at least 1; got {args.steps}")
    require_demo_dependencies()
    from tqdm import tqdm

    digits = args.dataset == "digits"
    use_jit = digits if args.jit is None else args.jit
    steps = args.steps if args.steps is not None else 300 if digits else 100
    if use_jit:
        try:
            import mingrad_jit  # noqa: F401
        except ImportError as exc:
            raise RuntimeError(
                f'--jit needs numpy ({exc}); install the jit extra: pip install "mingrad[jit]"'
            ) from None
    start = time.perf_counter()
    with tqdm(total=steps, desc="training", unit="step", file=sys.stderr) as bar:

        def on_step(k: int, loss: float, accuracy: float) -> None:
            bar.set_postfix(loss=f"{loss:.4f}", accuracy=f"{accuracy:.0%}", refresh=False)
            bar.update()

        train = train_digits if digits else train_moons
        run = train(
            steps=steps,
            seed=args.seed,
            activation=args.activation,
            on_step=on_step,
            use_jit=use_jit,
        )
    seconds = time.perf_counter() - start
    print(
        f"{len(run.losses)} steps in {seconds:.1f} s: loss {run.losses[-1]:.4f}, "
        f"training accuracy {run.accuracies[-1]:.0%} ({len(run.y)} samples, "
        f"{len(run.model.parameters())} parameters)"
    )
    if run.diverged_at is not None:
        print(
            f"mingrad demo: warning: the loss became {run.losses[-1]} at step "
            f"{run.diverged_at + 1} of {steps} (activation {args.activation!r}); "
            "training stopped and no picture was written",
            file=sys.stderr,
        )
        return 1
    if digits:
        print("(digits has 64 inputs: no decision boundary to draw, no picture written)")
        return 0
    print(f"wrote {plot(run, args.output)}")
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

    from mingrad_viz import backprop_player, draw_graph

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
    if args.animate:
        out = Path(args.output or "backprop.html")
        limit = 300 if args.max_nodes is None else args.max_nodes
        player = backprop_player(root, rankdir=args.rankdir, max_nodes=limit)
        player.save(out)
        print(f"wrote {out}: {len(player.steps)} steps; open it in a browser")
        return 0
    if not args.no_backward:
        root.backward()
    out = Path(args.output or "graph.svg")
    fmt = out.suffix.lstrip(".").lower() or "svg"
    limit = 2000 if args.max_nodes is None else args.max_nodes
    graph = draw_graph(root, rankdir=args.rankdir, max_nodes=limit, composites=args.composites)
    out.write_bytes(graph.pipe(fmt))
    print(f"wrote {out}: {root!r}")
    return 0


def _table(rows: list[list[str]]) -> str:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join(
        "  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in rows
    )


def _provider(origin) -> str:
    from mingrad_core.plugins import BUILTIN_DISTRIBUTION

    if origin.distribution is None:
        return f"{origin.plugin} (registered in code)"
    release = f"({origin.distribution} {origin.version})"
    if origin.distribution == BUILTIN_DISTRIBUTION:
        return f"built-in {release}"
    return f"{origin.plugin} {release}"


def _array_forms(spec) -> str:
    """How mingrad_jit runs the op: by its array forms, by looping its scalar ones, or (a
    composite) by the ops it is built from."""
    if spec.gradient is None:
        return "composite"
    if spec.array_forward is None and spec.array_gradient is None:
        return "looped"
    if spec.array_forward is None or spec.array_gradient is None:
        return "forward only" if spec.array_gradient is None else "gradient only"
    return "yes"


def _array_check(spec, report) -> str:
    """The ``mingrad check`` cell for an op's array forms, from its ``check_array_forms`` report."""
    if report is None:
        return "unchecked"
    if not report.ok:
        return "FAILED"
    if _array_forms(spec) in ("composite", "looped"):
        return _array_forms(spec)
    return "bitwise" if max(report.errors) == 0 else f"{max(report.errors):g} ulps"


def _ops(args: argparse.Namespace) -> int:
    from mingrad_core import PluginError, failures, ops, origin_of

    try:
        listing, broken, error = ops(), failures(), None
        origins = {name: origin_of(name) for name in listing}
    except PluginError as exc:  # strict mode: list what loaded and what failed, then fail
        listing, broken, error, origins = exc.ops, exc.failures, exc, exc.origins
    rows = [["op", "arity", "symbol", "operator", "array forms", "provided by"]]
    for name, spec in sorted(listing.items()):
        rows.append(
            [
                name,
                f"{spec.arity}{'+' if spec.variadic else ''}",
                spec.label,
                spec.operator or "",
                _array_forms(spec),
                _provider(origins[name]),
            ]
        )
    print(_table(rows))
    if broken:
        print("\nplugins that failed to load:")
        for failure in broken:
            print(f"  {failure.origin}: {failure.error}")
    if error is not None:
        print(f"mingrad ops: error: {error}", file=sys.stderr)
        return 2
    return 0


def _check(args: argparse.Namespace) -> int:
    from mingrad_core import get_op, ops
    from mingrad_ops import check_op

    try:
        from mingrad_jit.arrays import check_array_forms
    except ModuleNotFoundError as exc:
        if exc.name != "numpy":
            raise
        check_array_forms = None  # array forms are checked when the jit extra is installed

    if args.samples < 1:
        raise ValueError(f"--samples must be at least 1; got {args.samples}")
    names = args.ops or sorted(ops())
    specs = [get_op(name) for name in names]  # unknown names fail before any checking
    rows = [["op", "1st order", "2nd order", "array forms", "result"]]
    failed = []
    for spec in specs:
        report = check_op(spec, samples=args.samples, seed=args.seed)
        arrays = None
        if check_array_forms is not None:
            arrays = check_array_forms(spec, samples=args.samples, seed=args.seed)
        messages = [r.message for r in (report, arrays) if r is not None and not r.ok]
        rows.append(
            [
                spec.name,
                *(f"{e:.2g}" for e in report.errors),
                _array_check(spec, arrays),
                "FAILED" if messages else "ok",
            ]
        )
        failed.extend(messages)
    print(_table(rows))
    print(
        "\n(worst error at random points of each op's domain, as a fraction of the tolerance: "
        "above 1 fails;\narray forms: the worst difference from the scalar forms at random and "
        "edge points, in ulps)"
    )
    if check_array_forms is None:
        print('array forms unchecked: they need numpy (pip install "mingrad[jit]")')
    for message in failed:
        print(f"FAILED {message}")
    bad = sum(1 for row in rows[1:] if row[-1] == "FAILED")
    print(f"{len(specs) - bad} passed, {bad} failed")
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
        type=int,
        default=None,
        help="SGD steps (default: 100 for moons; at most 300 for digits, which stops at 97%%)",
    )
    demo.add_argument("--seed", type=int, default=0, help="seed for data and weights (default: 0)")
    demo.add_argument(
        "--activation",
        default="relu",
        help="any registered one-input op, e.g. relu, tanh (default: relu); one that makes "
        "the loss nan stops training, with exit status 1",
    )
    demo.add_argument(
        "--output",
        "-o",
        default="moons.png",
        help="where to write the PNG; without a suffix, .png is added (default: moons.png)",
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
        help="the file to write; its suffix picks the format: svg, png, pdf (default: graph.svg; "
        "with --animate, an HTML page: backprop.html)",
    )
    graph.add_argument(
        "--rankdir",
        default="BT",
        choices=["BT", "TB", "LR", "RL"],
        help="direction of the layout: BT draws inputs at the bottom (default), LR on the left",
    )
    graph.add_argument(
        "--max-nodes",
        type=int,
        help="refuse larger graphs (default: 2000; with --animate, 300)",
    )
    graph.add_argument(
        "--no-backward",
        action="store_true",
        help="draw without computing gradients (they show as not computed yet)",
    )
    graph.add_argument(
        "--composites",
        default="box",
        choices=["box", "collapse"],
        help="draw a composite op (- / or a plugin's) as its ops in a labeled box (default), "
        "or collapse it to one op",
    )
    graph.add_argument(
        "--animate",
        action="store_true",
        help="write the backprop player instead: an HTML page that steps through the forward "
        "and backward pass (open it in a browser; it needs no network)",
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
        "of each op's domain; and its array forms (used by jit) against its scalar forms at "
        "random and edge points. Exits 1 if any op fails.",
    )
    check.add_argument("ops", nargs="*", metavar="OP", help="ops to check (default: all)")
    check.add_argument(
        "--samples", type=int, default=20, help="points per op, at least 1 (default: 20)"
    )
    check.add_argument("--seed", type=int, default=0, help="seed for the points (default: 0)")
    check.set_defaults(run=_check)
    return parser


# raised by a slip in code (MinGrad's or a plugin's), whatever the input: reported as bugs
_BUGS = (IndexError, KeyError, NotImplementedError, RecursionError)


def _internal_error(exc: Exception) -> str:
    """One line for an exception no input explains: what, where it was raised, whom to tell."""
    text = " ".join(str(exc).split())
    if len(text) > 300:
        text = f"{text[:300]}..."
    where = ""
    frames = traceback.extract_tb(exc.__traceback__)
    if frames:
        where = f" (raised at {frames[-1].filename}:{frames[-1].lineno}, in {frames[-1].name})"
    return (
        f"{type(exc).__name__}: {text}{where}. This is a bug in MinGrad or in a plugin, not in "
        "what you typed; please report it with the command you ran"
    )


def main(argv: list[str] | None = None) -> int:
    """Run the ``mingrad`` command and return its exit status: 0, or 1 for what the command
    reports as a failure (``check``, ``demo``). Errors are one line on stderr, never a
    traceback, with status 2 for a bad input or setup and 70 for an internal error."""
    args = build_parser().parse_args(argv)
    try:
        return args.run(args)
    except KeyboardInterrupt:
        print(f"mingrad {args.command}: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:
        if isinstance(exc, ValueError | LookupError | OSError | RuntimeError) and (
            type(exc) not in _BUGS
        ):
            print(f"mingrad {args.command}: error: {exc}", file=sys.stderr)
            return 2
        print(f"mingrad {args.command}: internal error: {_internal_error(exc)}", file=sys.stderr)
        return EXIT_INTERNAL_ERROR


if __name__ == "__main__":
    sys.exit(main())
