"""The engine's errors, worded for people: what was given, what was expected, which op."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from .values import described, short

if TYPE_CHECKING:
    from .spec import OpSpec


class GradientError(TypeError, ValueError):
    """An op's gradient raised, or returned something other than one real number per input."""


def gradient_error(op: OpSpec, origin: str, inputs: Sequence[float], what: str) -> GradientError:
    """The error for op's gradient at ``inputs``, which ``what`` says went wrong."""
    shown = ", ".join(repr(x) for x in inputs[:8]) + (", ..." if len(inputs) > 8 else "")
    return GradientError(f"the gradient of op {op.name!r} ({origin}) at inputs ({shown}) {what}")


def wrong_terms(terms: object, count: int) -> str:
    """What is wrong with ``terms`` when it is not a tuple or list of ``count`` terms."""
    got = f"{len(terms)} term(s)" if isinstance(terms, tuple | list) else described(terms)
    return f"returned {got}; expected a tuple of {count} term(s), one per input"


def wrong_term(terms: object, term: object) -> str:
    """What is wrong with a gradient ``term`` that is not a real number."""
    return f"returned {short(terms)}: a term that is {described(term)}; expected real numbers"


def forward_error(op: OpSpec, origin: str, value: object, expected: str) -> TypeError:
    """The error for an op's forward that returned ``value`` instead of ``expected``."""
    return TypeError(
        f"{'composite ' if op.gradient is None else ''}op {op.name!r} ({origin}) forward "
        f"returned {described(value)}; expected {expected}"
    )


def arity_error(op: OpSpec, count: int) -> TypeError:
    """The error for ``op`` applied to ``count`` inputs."""
    more = " or more" if op.variadic else ""
    return TypeError(f"op {op.name!r} takes {op.arity}{more} input(s); got {count}")


def unbound(operator: str, names: Sequence[str]) -> TypeError:
    """The error for a Python operator no registered op is bound to."""
    return TypeError(
        f"no registered op is bound to operator {operator!r}; "
        f"registered ops: {', '.join(sorted(names)) or 'none'}"
    )
