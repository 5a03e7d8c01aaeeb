"""Checking an op's array forms against its scalar forms (numpy; ``check_op`` calls it).

The convention every array form follows (``mingrad_jit`` relies on it; see ``mingrad_jit.arrays``)
is checked here: the inputs are read-only, a forward returns one real per node (shape ``(m,)``),
a gradient one term per input (a number, or shape ``(m,)``), and nothing warns.

The numeric policy. An array form may use numpy's own SIMD loops, which differ from the C
library's ``exp``/``tanh``/``expm1`` by a few ulps, and by how many depends on the CPU numpy
dispatches to (AVX-512, AVX2, baseline SSE). So a value passes when it is within ``ULPS`` (16)
floats of the scalar form's, or, near a zero crossing of the value (its sign changes within a
relative distance of 2**-6 of the point), within ``ZERO_CROSSING_ABS`` (16 machine epsilons,
3.6e-15) of it: there the scalar formula itself cancels terms of order one, and a few ulps of
those terms are many ulps of the small result. Values cancel farther from a crossing too:
with numpy's AVX-512 ``exp``, silu's gradient is up to 59 ulps off the C library's 2-3% from
its zero crossing, 32 at 3-6% and 18 at 6-12% (under one epsilon each time). So a value also
passes within 16 epsilons of its sensitivity to the inputs (the sum over inputs of |x f'(x)|,
from the scalar form at x(1 +- 2**-20), the gentler side counting, so that a formula switching
nearby does not count): what a relative error of 16 epsilons in the inputs would change, as a
few ulps of an intermediate of the inputs' size do. Both nan, or equal infinities, pass; 0.0 and
-0.0 are one ulp apart. Forms that call no C library function (``add``, ``mul``, ``relu``,
``linear``) are bitwise equal on every CPU.
"""

from __future__ import annotations

import math
import random
import sys
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np

from mingrad_core import OpSpec, get_op, origin_of

from .gradcheck import CheckReport

ULPS = 16
ZERO_CROSSING_ABS = 16 * sys.float_info.epsilon
_NEIGHBOUR = 2.0**-6  # how near a sign change makes a point "near a zero crossing"
_NUDGE = 2.0**-20  # the relative change of an input that measures a value's sensitivity

TINY = 5e-324  # the smallest subnormal
HUGE = sys.float_info.max
# Zeros, ±1, small integers (odd and even) and halves (pow's exponent cases), 10 and 22 (where
# gelu and tanh change formula), ±tiny, ±huge, ±inf and nan.
EDGES: tuple[float, ...] = (
    0.0, -0.0, 1.0, -1.0, 0.5, -0.5, 2.0, -2.0, 3.0, -3.0, 2.5, -2.5, 400.5, -400.5,
    10.0, -10.0, 22.0, -22.0, TINY, -TINY, sys.float_info.min, -sys.float_info.min,
    1e-300, -1e-300, 1e300, -1e300, HUGE, -HUGE, math.inf, -math.inf, math.nan,
)  # fmt: skip


def where(spec: OpSpec) -> str:
    """`` (plugin ...)`` naming where ``spec`` was registered, if known."""
    origin = origin_of(spec.name)
    return f" ({origin})" if origin is not None else ""


def read_only(arrays: Sequence[np.ndarray]) -> list[np.ndarray]:
    """Views of ``arrays`` that refuse writes (the arrays themselves stay writable)."""
    views = []
    for x in arrays:
        view = x.view()
        view.flags.writeable = False
        views.append(view)
    return views


def wrote_input(spec: OpSpec, what: str, exc: ValueError) -> ValueError:
    """The error for an array form that wrote into one of its (read-only) inputs."""
    return ValueError(
        f"the {what} of op {spec.name!r}{where(spec)} writes into its input arrays "
        f"({exc}); they are views of a buffer other nodes read, so they are read-only: "
        "compute into a new array (np.multiply(x, 2), not np.multiply(x, 2, out=x))"
    )


def is_read_only_error(exc: BaseException) -> bool:
    return isinstance(exc, ValueError) and "read-only" in str(exc)


def result_problem(spec: OpSpec, what: str, result: Any, m: int, k: int) -> tuple[str, bool]:
    """What is wrong with ``result`` of ``spec``'s array ``what`` ("array forward" or "array
    gradient") for ``m`` nodes of ``k`` inputs (``""``: nothing), and whether it holds a real
    array or number that is not float64 (ints, bools, float32: converted by the caller)."""
    name = f"the {what} of op {spec.name!r}{where(spec)}"
    if what == "array forward":
        items, shapes = [result], [(m,)]
    elif spec.variadic:
        items, shapes = [result], [(k, m)]
    elif not isinstance(result, tuple | list):
        return f"{name} returned {type(result).__name__}; expected a tuple of {k} items", False
    elif len(result) != k:
        return f"{name} returned {len(result)} items for {k} input(s)", False
    else:
        items, shapes = list(result), [(m,)] * k
    other = False
    for item, shape in zip(items, shapes):
        array = np.asarray(item) if not isinstance(item, np.ndarray) else item
        if array.dtype.kind not in "biuf":
            return f"{name} returned {array.dtype} values; expected real numbers (float64)", False
        allowed = (shape,) if what == "array forward" or spec.variadic else (shape, ())
        if array.shape not in allowed:
            expected = " or ".join(map(str, allowed))
            return (
                f"{name} returned shape {array.shape} for {m} node(s); expected {expected}",
                False,
            )
        other = other or array.dtype != np.float64
    return "", other


def as_float64(result: Any) -> Any:
    """``result`` (an array, or a tuple of terms) with every array and number as float64."""
    if isinstance(result, tuple | list):
        return tuple(np.asarray(t, dtype=np.float64) for t in result)
    return np.asarray(result, dtype=np.float64)


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
    op: str | OpSpec, samples: int = 20, seed: int = 0, ulps: float = ULPS
) -> CheckReport:
    """Compare ``op``'s declared array forms with its scalar forms, at random and edge points.

    Points: ``samples`` random ones from the op's ``domain`` (default -2..2 per input),
    ``samples`` of any magnitude (1e-20..1e20, either sign), every combination of the
    ``EDGES`` (for one or two inputs; random combinations for more), and random points with one
    input set to each edge. A variadic op is checked with ``arity``, ``arity + 2`` and
    ``arity + 32`` inputs. The forms get read-only inputs; the gradient form gets the scalar
    forward's output, so each form is compared on its own. A value passes by the module's
    numeric policy, with ``ulps`` floats of tolerance; ``errors`` holds the worst distance in
    ulps of the forward and of the gradient (0: bitwise equal). Points where the scalar forms
    raise are skipped, and counted in the message. An op without array forms (``mingrad_jit``
    loops its scalar forms) or a composite passes with nothing to check.
    """
    spec = get_op(op) if isinstance(op, str) else op
    if samples < 1:
        raise ValueError(f"samples must be at least 1; got {samples}")
    if spec.gradient is None:
        return CheckReport(spec.name, True, (), f"op {spec.name!r}: a composite, no array forms")
    if spec.array_forward is None and spec.array_gradient is None:
        message = f"op {spec.name!r}: no array forms (looped: jit runs its scalar forms)"
        return CheckReport(spec.name, True, (), message)
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
    if spec.array_forward is None or spec.array_gradient is None:
        message += f" (only its {'gradient' if spec.array_forward is None else 'forward'})"
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


def _scalar_at(spec: OpSpec, point: Sequence[float]) -> tuple[float, list[float]]:
    out = spec(*point)
    return out, [float(t) for t in spec.gradient(*point, out)]


def _scalar_values(spec: OpSpec, points: list[tuple[float, ...]]):
    """The points where the scalar forms run, their outputs and terms, and where they raise."""
    kept, outs, terms, skips = [], [], [], []
    for point in points:
        try:
            out, values = _scalar_at(spec, point)
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


def _scalar_value(spec: OpSpec, at: Sequence[float], row: int) -> float:
    """The scalar forward (``row`` -1) or gradient term ``row`` at ``at``."""
    out, terms = _scalar_at(spec, at)
    return float(out) if row < 0 else terms[row]


def _near_zero_crossing(spec: OpSpec, point: Sequence[float], row: int) -> bool:
    """Whether the scalar value (``row`` -1: the forward; else gradient term ``row``) changes
    sign, or is zero, within a relative distance of 2**-6 of ``point`` in some input."""

    try:
        here = _scalar_value(spec, point, row)
        signs = {math.copysign(1.0, here)} if here != 0 else {1.0, -1.0}
        for i, x in enumerate(point):
            step = abs(x) * _NEIGHBOUR or _NEIGHBOUR
            for moved in (x - step, x + step):
                there = _scalar_value(spec, (*point[:i], moved, *point[i + 1 :]), row)
                if there != 0 and not math.isnan(there):
                    signs.add(math.copysign(1.0, there))
    except Exception:  # the scalar forms raise nearby: not a smooth crossing
        return False
    return len(signs) > 1


def _sensitivity(spec: OpSpec, point: Sequence[float], row: int) -> float:
    """How much the scalar value (``row`` -1: the forward; else gradient term ``row``) moves
    per unit of relative change in the inputs: the sum over inputs of |x f'(x)|, each from the
    gentler of the one-sided differences at x(1 +- 2**-20), so that a formula switching at a
    point nearby does not count; nan where the scalar forms raise or give no finite number."""

    try:
        here, total = _scalar_value(spec, point, row), 0.0
        for i, x in enumerate(point):
            sides = [
                abs(_scalar_value(spec, (*point[:i], x * (1 + nudge), *point[i + 1 :]), row) - here)
                for nudge in (_NUDGE, -_NUDGE)
            ]
            total += min(sides) / _NUDGE
    except Exception:
        return math.nan
    return total if math.isfinite(total) else math.nan


def _compare(spec, points, outs, terms, ulps: float, worst: list[float]) -> str:
    """Run the declared array forms on ``points``; the first disagreement, or ``""``."""
    block = np.array(points, dtype=np.float64).T.copy()  # (k, m)
    k, m = block.shape
    scalar_out = np.array(outs, dtype=np.float64)
    inputs = read_only([block] if spec.variadic else list(block))
    rows: list[tuple[str, int, Any, np.ndarray]] = []
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a form must not warn (np.errstate(all="ignore"))
        if spec.array_forward is not None:
            try:
                array_out = spec.array_forward(*inputs)
            except Exception as exc:
                return _raised(spec, "array forward", exc, m, k)
            problem, _ = result_problem(spec, "array forward", array_out, m, k)
            if problem:
                return problem
            rows.append(("forward", -1, array_out, scalar_out))
        if spec.array_gradient is not None:
            try:
                grads = spec.array_gradient(*inputs, *read_only([scalar_out]))
            except Exception as exc:
                return _raised(spec, "array gradient", exc, m, k)
            problem, _ = result_problem(spec, "array gradient", grads, m, k)
            if problem:
                return problem
            scalar_terms = np.array(terms, dtype=np.float64).T  # (k, m)
            for i in range(k):
                got = np.broadcast_to(np.asarray(grads[i], dtype=np.float64), (m,))
                rows.append((f"gradient d/dx{i}", i, got, scalar_terms[i]))
    for what, row, got, expected in rows:
        got = np.asarray(got, dtype=np.float64)
        apart = ulps_apart(got, expected)
        with np.errstate(all="ignore"):
            off = np.abs(got - expected)
        bad = np.flatnonzero(~(apart <= ulps))
        crossing = [
            j
            for j in bad.tolist()
            if off[j] <= ZERO_CROSSING_ABS and _near_zero_crossing(spec, points[j], row)
        ]
        apart[crossing] = 0.0  # within the policy's absolute bound, at a zero crossing
        bad = np.flatnonzero(~(apart <= ulps))
        sensitivity = {j: _sensitivity(spec, points[j], row) for j in bad.tolist()}
        sensitive = [j for j, at in sensitivity.items() if off[j] <= ZERO_CROSSING_ABS * at]
        apart[sensitive] = 0.0  # within 16 epsilons of the value's sensitivity to its inputs
        bad = np.flatnonzero(~(apart <= ulps))
        slot = 0 if row < 0 else 1
        worst[slot] = max(worst[slot], float(apart.max()))
        if len(bad):
            j = bad[0]
            shown = f" ({sensitivity[j]:.2g} here)" if sensitivity[j] == sensitivity[j] else ""
            return (
                f"array {what} at x={_show(points[j])}: array {float(got[j])!r}, scalar "
                f"{float(expected[j])!r} ({apart[j]:g} ulps apart; the tolerance is {ulps:g}, "
                f"or {ZERO_CROSSING_ABS:.2g} near a zero crossing, or 16 epsilons times the "
                f"value's sensitivity to its inputs{shown})"
            )
    return ""


def _raised(spec: OpSpec, what: str, exc: Exception, m: int, k: int) -> str:
    if is_read_only_error(exc):
        return str(wrote_input(spec, what, exc))
    where_ = f" ({m} points of {k} input(s))"
    if isinstance(exc, RuntimeWarning):
        where_ += "; run numpy under np.errstate(all='ignore'): inf and nan are values"
    return f"{what} raised {type(exc).__name__}: {exc}{where_}"
