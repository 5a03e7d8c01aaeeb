"""``mingrad check``: ops' derivatives against finite differences, array forms against scalar."""

from __future__ import annotations

import argparse

from mingrad_core import OpSpec

from .arguments import whole_number
from .ops import array_forms, table

MAX_SAMPLES = 10_000  # about 10 s an op: more would look like a hang


def add_to(commands: argparse._SubParsersAction) -> None:
    """Add the ``check`` command's parser."""
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
        "--samples",
        type=whole_number(1, MAX_SAMPLES),
        default=20,
        help=f"points per op, 1 to {MAX_SAMPLES} (default: 20)",
    )
    check.add_argument(
        "--seed", type=whole_number(), default=0, help="seed for the points (default: 0)"
    )
    check.set_defaults(run=run)


def _array_check(spec: OpSpec, report) -> str:
    """The table's cell for an op's array forms, from ``check_op``'s report."""
    if array_forms(spec) in ("composite", "looped"):
        return array_forms(spec)
    if not report.ok and all(e <= 1 for e in report.errors):  # the derivatives passed
        return "FAILED"
    if not report.ulps:
        return "unchecked"
    worst = max(report.ulps)
    return "bitwise" if worst == 0 else f"{worst:g} ulps"


def run(args: argparse.Namespace) -> int:
    """Check the ops and print a table; 1 if any op fails."""
    from mingrad_core import get_op, ops
    from mingrad_ops import check_op

    try:
        import numpy  # noqa: F401  (check_op checks array forms when numpy is installed)
    except ModuleNotFoundError:
        numpy = None

    names = list(dict.fromkeys(args.ops)) or sorted(ops())  # each op once
    specs = [get_op(name) for name in names]  # unknown names fail before any checking
    rows = [["op", "1st order", "2nd order", "array forms", "result"]]
    failed = []
    for spec in specs:
        report = check_op(spec, samples=args.samples, seed=args.seed)
        rows.append(
            [
                spec.name,
                *(f"{e:.2g}" for e in report.errors),
                _array_check(spec, report),
                "ok" if report.ok else "FAILED",
            ]
        )
        if not report.ok:
            failed.append(report.message)
    print(table(rows))
    print(
        "\n(worst error at random points of each op's domain, as a fraction of the tolerance: "
        "above 1 fails;\narray forms: the worst difference from the scalar forms at random and "
        "edge points, in ulps)"
    )
    if numpy is None:
        print('array forms unchecked: they need numpy (pip install "mingrad[jit]")')
    for message in failed:
        print(f"FAILED {message}")
    bad = sum(1 for row in rows[1:] if row[-1] == "FAILED")
    print(f"{len(specs) - bad} passed, {bad} failed")
    return 1 if failed else 0
