"""``mingrad ops``: every registered op, and the plugin that provided it."""

from __future__ import annotations

import argparse
import sys

from mingrad_core import OpSpec, Origin

BUILT_IN = "mingrad"  # the distribution whose entry point loads the built-in ops: this one


def add_to(commands: argparse._SubParsersAction) -> None:
    """Add the ``ops`` command's parser."""
    listing = commands.add_parser(
        "ops",
        help="list every registered op and the plugin that provided it",
        description="List every registered op: arity, drawing symbol, bound operator, and the "
        "plugin and distribution (with version) that provided it; then any plugin that failed "
        "to load, with the reason.",
    )
    listing.set_defaults(run=run)


def table(rows: list[list[str]]) -> str:
    """``rows`` as left-aligned columns, the first row a header."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join(
        "  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in rows
    )


def array_forms(spec: OpSpec) -> str:
    """How mingrad_jit runs the op: by its array forms, by looping its scalar ones, or (a
    composite) by the ops it is built from."""
    if spec.gradient is None:
        return "composite"
    if spec.array_forward is None and spec.array_gradient is None:
        return "looped"
    if spec.array_forward is None or spec.array_gradient is None:
        return "forward only" if spec.array_gradient is None else "gradient only"
    return "yes"


def _provider(origin: Origin) -> str:
    if origin.distribution is None:
        return f"{origin.plugin} (registered in code)"
    release = f"({origin.distribution} {origin.version})"
    if origin.distribution == BUILT_IN:
        return f"built-in {release}"
    return f"{origin.plugin} {release}"


def run(args: argparse.Namespace) -> int:
    """Print the op table and any plugin that failed to load; 2 if strict mode failed."""
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
                array_forms(spec),
                _provider(origins[name]),
            ]
        )
    print(table(rows))
    if broken:
        print("\nplugins that failed to load:")
        for failure in broken:
            print(f"  {failure.origin}: {failure.error}")
    if error is not None:
        print(f"mingrad ops: error: {error}", file=sys.stderr)
        return 2
    return 0
