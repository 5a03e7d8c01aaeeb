"""A checker for op authors: an op's gradients against central finite differences, and its
array forms (if it declares any) against its scalar forms (``formcheck``, with numpy)."""

from __future__ import annotations

import math
import random
from typing import NamedTuple

from mingrad_core import OpSpec, Scalar, get_op, grad


class CheckReport(NamedTuple):
    """The outcome of checking one op. ``errors`` are worst relative errors, first order first;
    ``ulps``: the array forms' worst distance from the scalar forms (forward, gradient), in
    ulps, when ``check_op`` compared them."""

    op: str
    ok: bool
    errors: tuple[float, ...]
    message: str
    ulps: tuple[float, ...] = ()


def _value(spec: OpSpec, point: list[float]) -> tuple[float]:
    return (float(spec(*point)),)


def _first(spec: OpSpec, point: list[float]) -> tuple[float, ...]:
    xs = [Scalar(v) for v in point]
    return grad(spec(*xs), xs)


def _second(spec: OpSpec, point: list[float]) -> tuple[tuple[float, ...], ...]:
    xs = [Scalar(v) for v in point]
    return tuple(grad(g, xs) for g in grad(spec(*xs), xs, create_graph=True))


def check_op(
    op: str | OpSpec,
    *,
    order: int = 2,
    samples: int = 10,
    seed: int = 0,
    rtol: float = 1e-5,
    atol: float = 1e-6,
    step: float = 1e-6,
) -> CheckReport:
    """Check ``op``'s first (and, with ``order=2``, second) derivatives at random points.

    Points are drawn uniformly from the op's declared ``domain`` (default -2..2 per input);
    a variadic op is checked with ``arity`` inputs and with two more (drawn from the last range).
    The reference is float64 central differences of the forward (for the first derivative)
    and of the engine's first derivative (for the second). A derivative passes when
    ``|analytic - numeric| <= atol + rtol * |numeric|``; ``errors`` holds, per order, the
    worst ``|analytic - numeric| / (atol + rtol * |numeric|)``, so above 1 means failed.
    An op whose forward or gradient raises, or returns the wrong number or kind of terms, fails
    with the error in ``message`` and an infinite error from the order where it happened on.
    An op that declares array forms has them checked too (``formcheck.check_array_forms``, with
    the same ``samples`` and ``seed``) when numpy is installed: read-only inputs, one real per
    node back, and values within the numeric policy of the scalar forms'; ``ulps`` holds the
    worst (empty when they were not checked).
    """
    if samples < 1 or order not in (1, 2):
        raise ValueError(f"check_op needs samples >= 1 and order 1 or 2; got {samples=}, {order=}")
    spec = get_op(op) if isinstance(op, str) else op
    rng = random.Random(seed)
    domain = spec.domain or ((-2.0, 2.0),) * spec.arity
    domains = [domain, (*domain, domain[-1], domain[-1])] if spec.variadic else [domain]
    levels = [(_value, _first), (_first, _second)][:order]
    worst = [0.0] * len(levels)
    failure = ""
    for n in range(samples * len(domains)):
        point = [rng.uniform(lo, hi) for lo, hi in domains[n % len(domains)]]
        for k, (lower, derivative) in enumerate(levels):
            try:
                exact = derivative(spec, point)
                rows = (exact,) if k == 0 else exact  # rows[i][j] = d(lower_i)/d(x_j)
                for j in range(len(point)):
                    up, down = list(point), list(point)
                    up[j] += step
                    down[j] -= step
                    for i, (hi, lo) in enumerate(zip(lower(spec, up), lower(spec, down))):
                        numeric = (hi - lo) / (2 * step)
                        error = abs(rows[i][j] - numeric) / (atol + rtol * abs(numeric))
                        if not error <= 1:  # also catches nan
                            error = error if math.isfinite(error) else math.inf
                            what = f"d/dx{j}" if k == 0 else f"d/dx{j} of d/dx{i}"
                            failure = failure or (
                                f"order {k + 1} derivative {what} at x={point}: "
                                f"analytic {rows[i][j]!r}, numeric {numeric!r}"
                            )
                        worst[k] = max(worst[k], error)
            except Exception as exc:  # the op raised, or its gradient is malformed
                worst[k:] = [math.inf] * (len(worst) - k)
                message = f"op {spec.name!r}: at x={point}, {type(exc).__name__}: {exc}"
                return CheckReport(spec.name, False, tuple(worst), message)
    report = CheckReport(
        spec.name, not failure, tuple(worst), f"op {spec.name!r}: {failure}" if failure else "ok"
    )
    if spec.gradient is None or (spec.array_forward is None and spec.array_gradient is None):
        return report
    try:
        from .formcheck import check_array_forms
    except ModuleNotFoundError as exc:  # numpy: only jit uses array forms, and jit needs it
        if exc.name != "numpy":
            raise
        return report  # ulps stays empty: the array forms were not checked
    arrays = check_array_forms(spec, samples=samples, seed=seed)
    if not arrays.ok:
        return report._replace(ok=False, message=arrays.message, ulps=arrays.errors)
    return report._replace(ulps=arrays.errors)
