"""Ops' array forms: how a group of same-op nodes runs as one numpy call, and their checker.

The convention every array form follows (and every caller relies on):

- An op of fixed arity n: ``array_forward(*xs)`` gets n 1-D float64 arrays of equal length m
  and returns a 1-D array of length m; ``array_gradient(*xs, out)`` gets the same n arrays and
  the forward's output array and returns a tuple of n items, each an array of length m or a
  number (broadcast): d(out)/d(input i), elementwise.
- A variadic op: ``array_forward(block)`` gets one 2-D array of shape (k, m), row i being input
  i of each of the m nodes (k >= arity), and returns shape (m,); ``array_gradient(block, out)``
  returns a (k, m) array of terms.
- Values are the scalar forms' values, kinks and IEEE special values included (relu'(0) = 0,
  log(0) = -inf, nan in gives nan out, ...), and a form never warns: it runs numpy under
  ``np.errstate(all="ignore")`` where numpy would. Returned arrays may be the very arrays
  passed in: callers must not write into them.

An op that declares no array forms still runs, through a loop over its scalar forms that
follows the same convention (correct, slower). Composites (``neg``, ``sub``, ``div``) have no
forms: a traced graph holds only the primitives they are built from. A scalar gradient formula
whose float arithmetic raises (``-1 / (x * x)`` at 0) is evaluated as eager mode does, by
``gradient_terms``.
"""

from __future__ import annotations

import functools
import math
import random
import sys
import warnings
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from mingrad_core import OpSpec, Scalar, get_op, origin_of
from mingrad_ops import CheckReport

Forms = tuple[Callable[..., Any], Callable[..., Any]]

TINY = 5e-324  # the smallest subnormal
HUGE = sys.float_info.max
# Zeros, ±1, small integers (odd and even) and halves (pow's exponent cases), 10 and 22 (where
# gelu and tanh change formula), ±tiny, ±huge, ±inf and nan.
EDGES: tuple[float, ...] = (
    0.0, -0.0, 1.0, -1.0, 0.5, -0.5, 2.0, -2.0, 3.0, -3.0, 2.5, -2.5, 400.5, -400.5,
    10.0, -10.0, 22.0, -22.0, TINY, -TINY, sys.float_info.min, -sys.float_info.min,
    1e-300, -1e-300, 1e300, -1e300, HUGE, -HUGE, math.inf, -math.inf, math.nan,
)  # fmt: skip


def array_forms(op: str | OpSpec) -> Forms:
    """``(array_forward, array_gradient)`` of ``op``: its own, or loops over its scalar forms."""
    spec = get_op(op) if isinstance(op, str) else op
    if spec.gradient is None:
        raise ValueError(
            f"op {spec.name!r} is a composite: it has no array forms; the ops it is built "
            "from have them"
        )
    forward = spec.array_forward or (_looped_block if spec.variadic else _looped)(spec)
    gradient = spec.array_gradient or (
        _looped_block_gradient if spec.variadic else _looped_gradient
    )(spec)
    return forward, gradient


def unguarded(form: Callable[..., Any]) -> Callable[..., Any]:
    """``form`` without the ``np.errstate`` it enters on every call, for a caller that has
    switched numpy's floating-point warnings off itself, once around many calls.

    A form made by ``mingrad_ops.numpy_form`` keeps the function it wraps as ``.raw`` (numpy
    comes first); any other form is returned as it is."""
    raw = getattr(form, "raw", None)
    return functools.partial(raw, np) if callable(raw) else form


def is_looped(spec: OpSpec) -> bool:
    """Whether ``spec`` declares no array forms, so that it runs by looping its scalar forms."""
    return spec.array_forward is None and spec.array_gradient is None


def _where(spec: OpSpec) -> str:
    origin = origin_of(spec.name)
    return f" ({origin})" if origin is not None else ""


def _values(spec: OpSpec, results: list, shape: tuple[int, ...], what: str) -> np.ndarray:
    """``results`` (what a scalar form returned, per node) as a float64 array of ``shape``."""
    if not results:
        return np.zeros(shape)
    try:
        values = np.asarray(results)
    except ValueError:  # ragged
        values = None
    if values is not None and values.shape == shape and values.dtype.kind in "biuf":
        return values.astype(np.float64, copy=False)
    for result in results:
        items = result if len(shape) == 2 else (result,)
        if len(shape) == 2 and len(items) != shape[1]:
            raise ValueError(
                f"the {what} of op {spec.name!r}{_where(spec)} returned {len(items)} term(s) "
                f"for {shape[1]} input(s)"
            )
        for item in items:
            if np.asarray(item).shape != () or np.asarray(item).dtype.kind not in "biuf":
                raise TypeError(
                    f"the {what} of op {spec.name!r}{_where(spec)} returned "
                    f"{type(item).__name__} {item!r:.80}; expected a real number"
                )
    return np.array(results, dtype=np.float64).reshape(shape)


def gradient_terms(gradient: Callable[..., Any], *values: float) -> Any:
    """``gradient(*values)`` as eager mode evaluates an op's scalar gradient: a formula whose
    float arithmetic raises ``ArithmeticError`` (``1 / 0``) runs again on Scalar constants,
    through the registered ops, which follow IEEE-754; terms that come back as Scalars are read
    as floats. Callers call ``gradient`` directly and come here once that raised."""
    try:
        return gradient(*values)
    except ArithmeticError:
        pass
    terms = gradient(*map(_constant, values))
    return [t._data if isinstance(t, Scalar) else t for t in terms]


def _constant(value: float) -> Scalar:
    node = Scalar(value)
    node.grad = None  # takes no gradient, as the constants eager mode makes
    return node


def _each_gradient(spec: OpSpec, columns: list[list[float]]) -> list:
    """``spec``'s scalar gradient at each node (``columns``: inputs and outputs, per argument)."""
    try:
        return list(map(spec.gradient, *columns))
    except ArithmeticError:  # again, each node on its own: only a call that raises falls back
        return list(map(functools.partial(gradient_terms, spec.gradient), *columns))


def _looped(spec: OpSpec) -> Callable[..., np.ndarray]:
    def forward(*xs: np.ndarray) -> np.ndarray:
        results = list(map(spec.forward, *(x.tolist() for x in xs)))
        return _values(spec, results, (len(xs[0]),), "forward")

    return forward


def _looped_gradient(spec: OpSpec) -> Callable[..., tuple[np.ndarray, ...]]:
    def gradient(*xs_out: np.ndarray) -> tuple[np.ndarray, ...]:
        results = _each_gradient(spec, [x.tolist() for x in xs_out])
        shape = (len(xs_out[0]), len(xs_out) - 1)
        return tuple(np.ascontiguousarray(_values(spec, results, shape, "gradient").T))

    return gradient


def _looped_block(spec: OpSpec) -> Callable[[np.ndarray], np.ndarray]:
    def forward(block: np.ndarray) -> np.ndarray:
        results = list(map(spec.forward, *block.tolist()))
        return _values(spec, results, (block.shape[1],), "forward")

    return forward


def _looped_block_gradient(spec: OpSpec) -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
    def gradient(block: np.ndarray, out: np.ndarray) -> np.ndarray:
        results = _each_gradient(spec, [*block.tolist(), out.tolist()])
        k, m = block.shape
        return np.ascontiguousarray(_values(spec, results, (m, k), "gradient").T)

    return gradient


def ulps_apart(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """How many float64 values apart ``a`` and ``b`` are, elementwise.

    0 where the bits are equal or both are nan; 0.0 and -0.0 are neighbours (1 apart); inf
    where only one is nan, or where they differ and one is infinite.
    """
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    ka, kb = _ordered(a), _ordered(b)
    same_side = (ka >= 0) == (kb >= 0)
    with np.errstate(all="ignore"):  # opposite sides may wrap; those are taken from floats
        near = np.abs(ka - kb).astype(np.float64)
    far = np.abs(ka.astype(np.float64)) + np.abs(kb.astype(np.float64))
    apart = np.where(same_side, near, far)
    nan_a, nan_b = np.isnan(a), np.isnan(b)
    apart[nan_a | nan_b] = np.where(nan_a & nan_b, 0.0, math.inf)[nan_a | nan_b]
    apart[(np.isinf(a) | np.isinf(b)) & (a != b) & ~(nan_a | nan_b)] = math.inf
    return apart


def _ordered(x: np.ndarray) -> np.ndarray:
    """The floats' bits as integers in the floats' order (-0.0 just below 0.0)."""
    bits = x.view(np.int64)
    return np.where(bits < 0, -(bits & np.int64(0x7FFF_FFFF_FFFF_FFFF)) - 1, bits)


def check_array_forms(
    op: str | OpSpec, samples: int = 20, seed: int = 0, ulps: float = 4
) -> CheckReport:
    """Compare ``op``'s array forms with its scalar forms, at random and at edge points.

    Points: ``samples`` random ones from the op's ``domain`` (default -2..2 per input),
    ``samples`` of any magnitude (1e-20..1e20, either sign), every combination of the
    ``EDGES`` (for one or two inputs; random combinations for more), and random points with one
    input set to each edge. A variadic op is checked with ``arity``, ``arity + 2`` and
    ``arity + 32`` inputs. The gradient forms get the scalar forward's output, so each form is
    compared on its own. A value passes when both are nan, or when they are at most ``ulps``
    floats apart (infinities must be equal, and 0.0 and -0.0 are 1 apart); ``errors`` holds
    the worst distance in ulps of the forward and of the gradient (0: bitwise equal). Points
    where the scalar forms raise are skipped, and counted in the message. An op without array
    forms is checked through the loop that runs it; a composite passes with nothing to check.
    """
    spec = get_op(op) if isinstance(op, str) else op
    if samples < 1:
        raise ValueError(f"samples must be at least 1; got {samples}")
    if spec.gradient is None:
        return CheckReport(spec.name, True, (), f"op {spec.name!r}: a composite, no array forms")
    rng = random.Random(seed)
    sizes = [spec.arity, spec.arity + 2, spec.arity + 32] if spec.variadic else [spec.arity]
    worst = [0.0, 0.0]
    checked = skipped = 0
    first_skip = ""
    for k in sizes:
        points, outs, terms, skips = _scalar_values(spec, _points(spec, k, samples, rng))
        skipped += len(skips)
        first_skip = first_skip or (skips[0] if skips else "")
        if not points:
            continue
        checked += len(points)
        failure = _compare(spec, points, outs, terms, ulps, worst)
        if failure:
            return CheckReport(spec.name, False, tuple(worst), f"op {spec.name!r}: {failure}")
    if not checked:
        return CheckReport(
            spec.name,
            False,
            tuple(worst),
            f"op {spec.name!r}: its scalar forms raise at every "
            f"point, so nothing was compared (first: {first_skip})",
        )
    how = "bitwise equal to" if max(worst) == 0 else f"within {max(worst):g} ulps of"
    message = f"op {spec.name!r}: array forms {how} the scalar forms at {checked} points"
    if is_looped(spec):
        message += " (looped: the op declares no array forms)"
    if skipped:
        message += f"; {skipped} points skipped where the scalar forms raise (first: {first_skip})"
    return CheckReport(spec.name, True, tuple(worst), message)


def _points(spec: OpSpec, k: int, samples: int, rng: random.Random) -> list[tuple[float, ...]]:
    domain = spec.domain or ((-2.0, 2.0),) * spec.arity
    ranges = (*domain, *(domain[-1],) * (k - len(domain)))
    inside = [tuple(rng.uniform(lo, hi) for lo, hi in ranges) for _ in range(samples)]
    wide = [
        tuple(rng.choice((-1, 1)) * 10 ** rng.uniform(-20, 20) for _ in range(k))
        for _ in range(samples)
    ]
    if k <= 2:
        grid = [(e,) for e in EDGES] if k == 1 else [(a, b) for a in EDGES for b in EDGES]
    else:
        grid = [tuple(rng.choice(EDGES) for _ in range(k)) for _ in range(samples * 10)]
    one_edge = [
        (*base[:i], edge, *base[i + 1 :])
        for i in range(k)
        for edge, base in zip(EDGES, rng.choices(inside + wide, k=len(EDGES)))
    ]
    return inside + wide + grid + one_edge


def _scalar_values(spec: OpSpec, points: list[tuple[float, ...]]):
    """The points where the scalar forms run, their outputs and terms, and where they raise."""
    kept, outs, terms, skips = [], [], [], []
    for point in points:
        try:
            out = spec(*point)
            point_terms = spec.gradient(*point, out)
            values = [float(t) for t in point_terms]
        except Exception as exc:
            skips.append(f"{type(exc).__name__} at x={_show(point)}")
            continue
        if len(values) != len(point):
            skips.append(f"{len(values)} gradient terms for {len(point)} inputs at {point}")
            continue
        kept.append(point)
        outs.append(out)
        terms.append(values)
    return kept, outs, terms, skips


def _show(point: Sequence[float]) -> str:
    if len(point) == 1:
        return repr(point[0])
    return "(" + ", ".join(map(repr, point)) + ")" if len(point) <= 4 else f"{len(point)} values"


def _compare(spec, points, outs, terms, ulps: float, worst: list[float]) -> str:
    """Run the array forms on ``points``; the first disagreement, or ``""``."""
    forward, gradient = array_forms(spec)
    block = np.array(points, dtype=np.float64).T.copy()  # (k, m)
    k, m = block.shape
    scalar_out = np.array(outs, dtype=np.float64)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a form must not warn (np.errstate(all="ignore"))
        try:
            array_out = forward(block) if spec.variadic else forward(*block)
        except Exception as exc:
            return f"array forward raised {type(exc).__name__}: {exc}{_hint(exc, m, k)}"
        try:
            grads = gradient(block, scalar_out) if spec.variadic else gradient(*block, scalar_out)
        except Exception as exc:
            return f"array gradient raised {type(exc).__name__}: {exc}{_hint(exc, m, k)}"
    array_out = np.asarray(array_out)
    if array_out.shape != (m,):
        return f"array forward returned shape {array_out.shape} for {m} points; expected ({m},)"
    if spec.variadic:
        grads = np.asarray(grads)
        if grads.shape != (k, m):
            return (
                f"array gradient returned shape {grads.shape} for {k} inputs at {m} points; "
                f"expected ({k}, {m})"
            )
    elif not isinstance(grads, tuple | list):
        return f"array gradient returned {type(grads).__name__}; expected a tuple of {k} items"
    elif len(grads) != k:
        return f"array gradient returned {len(grads)} items for {k} input(s)"
    scalar_terms = np.array(terms, dtype=np.float64).T  # (k, m)
    rows = [("forward", array_out, scalar_out)] + [
        (f"gradient d/dx{i}", _row(grads[i], m), scalar_terms[i]) for i in range(k)
    ]
    for what, got, expected in rows:
        if got is None:
            return f"array {what} is not a number or an array of {m}"
        apart = ulps_apart(got, expected)
        slot = 0 if what == "forward" else 1
        worst[slot] = max(worst[slot], float(apart.max()))
        bad = np.flatnonzero(~(apart <= ulps))
        if len(bad):
            j = bad[0]
            return (
                f"array {what} at x={_show(points[j])}: array {float(got[j])!r}, scalar "
                f"{float(expected[j])!r} ({apart[j]:g} ulps apart; the tolerance is {ulps:g})"
            )
    return ""


def _hint(exc: Exception, m: int, k: int) -> str:
    where = f" ({m} points of {k} input(s))"
    if isinstance(exc, RuntimeWarning):
        return f"{where}; run numpy under np.errstate(all='ignore'): inf and nan are values"
    return where


def _row(item: object, m: int) -> np.ndarray | None:
    try:
        return np.broadcast_to(np.asarray(item, dtype=np.float64), (m,))
    except (TypeError, ValueError):
        return None
