"""``mingrad graph``: draw an expression's graph, or write the backprop player for it."""

from __future__ import annotations

import argparse
from argparse import ArgumentTypeError
from pathlib import Path

from mingrad_core import Scalar

from .arguments import binding, output_file, quote, whole_number

PLAYER_SUFFIXES = (".html", ".htm")
PICTURE_SUFFIXES = (".svg", ".png", ".pdf")  # the usual ones; any format Graphviz writes works


def add_to(commands: argparse._SubParsersAction) -> None:
    """Add the ``graph`` command's parser."""
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
        help="numbers, names, + - * / **, and registered ops as functions or methods; one "
        "that starts with '-' goes after --, as in: mingrad graph -- '-x*x' x=1",
    )
    graph.add_argument(
        "values",
        nargs="*",
        type=binding,
        metavar="NAME=NUMBER",
        help="the value of each name in the expression, each given once and each used",
    )
    graph.add_argument(
        "--output",
        "-o",
        type=_output_file,
        help="the file to write; its suffix picks the format: svg, png, pdf or any other "
        "Graphviz writes; a name without a suffix gets SVG, under that exact name (default: "
        "graph.svg); with --animate, an HTML page (default: backprop.html)",
    )
    graph.add_argument(
        "--rankdir",
        default="BT",
        choices=["BT", "TB", "LR", "RL"],
        help="direction of the layout: BT draws inputs at the bottom (default), LR on the left",
    )
    graph.add_argument(
        "--max-nodes",
        type=whole_number(1),
        help="refuse larger graphs (default: 2000; with --animate, 500)",
    )
    graph.add_argument(
        "--no-backward",
        action="store_true",
        help="draw without computing gradients (they show as not computed yet)",
    )
    graph.add_argument(
        "--composites",
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
    graph.set_defaults(run=run)


def seed_example() -> Scalar:
    """The seed's example: a=2, b=-6.5, c=a*5/2, d=c+(b**6).relu()."""
    a = Scalar(2, name="a")
    b = Scalar(-6.5, name="b")
    c = a * 5 / 2
    c.name = "c"
    d = c + (b**6).relu()
    d.name = "d"
    return d


def _output_file(text: str) -> Path:
    """A file to write whose suffix is a format Graphviz writes, or the player's."""
    import graphviz

    path = output_file(text)
    suffix = path.suffix.lower()
    if suffix and suffix not in PLAYER_SUFFIXES and suffix[1:] not in graphviz.FORMATS:
        raise ArgumentTypeError(
            f"must end in {', '.join(PICTURE_SUFFIXES)} (or another suffix Graphviz writes), "
            f"or in .html with --animate; got {quote(text, 500)}"
        )
    return path


def _output(args: argparse.Namespace) -> Path:
    """The file to write, refused if its suffix names a format this mode does not write."""
    if args.output is None:
        return Path("backprop.html" if args.animate else "graph.svg")
    suffix = args.output.suffix.lower()
    given = f"--output '{args.output}'"
    if args.animate and suffix not in ("", *PLAYER_SUFFIXES):
        raise ValueError(
            f"{given}: --animate writes an HTML page, so the file must end in .html or .htm "
            f"(or draw a picture without --animate: {', '.join(PICTURE_SUFFIXES)})"
        )
    if not args.animate and suffix in PLAYER_SUFFIXES:
        raise ValueError(f"{given}: an HTML page is the backprop player; add --animate")
    return args.output


def _refuse_what_animate_ignores(args: argparse.Namespace) -> None:
    """An option that would do nothing is refused, as an unused value is."""
    reasons = {
        "--no-backward": (args.no_backward, "the player always steps through the backward pass"),
        "--composites": (args.composites, "the player does not take it"),
    }
    ignored = [f"{flag} ({why})" for flag, (given, why) in reasons.items() if given]
    if args.animate and ignored:
        raise ValueError(
            f"{' and '.join(ignored)}: not an option with --animate; leave it out, or leave "
            "out --animate to draw a picture"
        )


def _root(args: argparse.Namespace) -> Scalar:
    """The expression's Scalar, or the seed example's without one."""
    from mingrad.expression import evaluate

    if args.expression is None:
        return seed_example()
    try:
        binding(args.expression)
    except argparse.ArgumentTypeError:
        pass
    else:
        raise ValueError(
            f"{quote(args.expression)} is a value, not an expression; give the expression "
            f"first, such as: mingrad graph 'x*x' {args.expression}"
        )
    values: dict[str, float] = {}
    for name, value in args.values:
        if name in values:
            raise ValueError(f"{name} is given twice ({name}={values[name]:g}, {name}={value:g})")
        values[name] = value
    return evaluate(args.expression, values)


def run(args: argparse.Namespace) -> int:
    """Write the drawing (or, with ``--animate``, the player) of the expression's graph."""
    from mingrad_viz import backprop_player, draw_graph

    _refuse_what_animate_ignores(args)
    out = _output(args)
    root = _root(args)
    if args.animate:
        limits = {} if args.max_nodes is None else {"max_nodes": args.max_nodes}
        player = backprop_player(root, rankdir=args.rankdir, **limits)
        player.save(out)
        print(f"wrote {out}: {len(player.steps)} steps; open it in a browser")
        return 0
    if not args.no_backward:
        root.backward()
    fmt = out.suffix.lstrip(".").lower() or "svg"
    limit = 2000 if args.max_nodes is None else args.max_nodes
    composites = args.composites or "box"
    graph = draw_graph(root, rankdir=args.rankdir, max_nodes=limit, composites=composites)
    out.write_bytes(graph.pipe(fmt))
    print(f"wrote {out}: {root!r}")
    return 0
