"""Ops' array forms: how a group of same-op nodes runs as one numpy call.

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
  passed in: callers must not write into them; and a form must not write into its inputs.

An op's own forms are checked on their first call for each group of a replay (``array_forms``
makes the pair afresh for each): they get read-only inputs there (a form that writes into
them raises an error naming the op and its plugin, instead of corrupting what other nodes
read), and what they return must be one real per node (a gradient term may be one number);
ints, bools and float32 are converted to float64 on every call after. ``check_op`` checks the
same and compares the values (``mingrad_ops.formcheck``).

An op that declares no array forms still runs, through a loop over its scalar forms that
follows the same convention (correct, slower). Composites (``mish``) have no
forms: a traced graph holds only the primitives they are built from. A scalar gradient formula
whose float arithmetic raises (``-1 / (x * x)`` at 0) is evaluated as eager mode does, by
``gradient_terms``.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import numpy as np

from mingrad_core import OpSpec, Scalar, get_op
from mingrad_core import gradient_terms as core_gradient_terms
from mingrad_ops.formcheck import (  # the checker moved to mingrad_ops; kept importable here
    EDGES,
    as_float64,
    check_array_forms,
    is_read_only_error,
    read_only,
    result_problem,
    ulps_apart,
    where,
    wrote_input,
)

Forms = tuple[Callable[..., Any], Callable[..., Any]]
__all__ = [
    "EDGES",
    "array_forms",
    "check_array_forms",
    "is_looped",
    "masked_parts",
    "ulps_apart",
    "unguarded",
]


def array_forms(op: str | OpSpec) -> Forms:
    """``(array_forward, array_gradient)`` of ``op``: its own, or loops over its scalar forms."""
    spec = get_op(op) if isinstance(op, str) else op
    if spec.gradient is None:
        raise ValueError(
            f"op {spec.name!r} is a composite: it has no array forms; the ops it is built "
            "from have them"
        )
    if spec.array_forward is not None:
        forward = _checked(spec, spec.array_forward, "array forward")
    else:
        forward = (_looped_block if spec.variadic else _looped)(spec)
    if spec.array_gradient is not None:
        gradient = _checked(spec, spec.array_gradient, "array gradient")
    else:
        gradient = (_looped_block_gradient if spec.variadic else _looped_gradient)(spec)
    return forward, gradient


def _checked(spec: OpSpec, form: Callable[..., Any], what: str) -> Callable[..., Any]:
    """``form``, checked on its first call (read-only inputs; one real per node back), and
    converted to float64 on every call after if it returned ints, bools or float32."""
    convert: list[bool] = []  # [whether to convert], once the first call passed

    def run(*arrays: np.ndarray) -> Any:
        if convert:
            return as_float64(form(*arrays)) if convert[0] else form(*arrays)
        m = arrays[0].shape[-1]
        k = arrays[0].shape[0] if spec.variadic else len(arrays) - (what == "array gradient")
        try:
            result = form(*read_only(arrays))
        except ValueError as exc:
            if is_read_only_error(exc):
                raise wrote_input(spec, what, exc) from None
            raise
        problem, other = result_problem(spec, what, result, m, k)
        if problem:
            raise TypeError(f"{problem} (the array form convention: mingrad_jit.arrays)")
        convert.append(other)
        return as_float64(result) if other else result

    run.checked = (spec, form, what)  # type: ignore[attr-defined]
    return run


def masked_parts(
    mask: Any, term: Any, upstream: np.ndarray, out: np.ndarray | None = None
) -> np.ndarray:
    """``term * upstream`` elementwise, but 0.0 where ``mask`` is 0 and that product is nan:
    ``mingrad_core.masked`` on arrays (``mask`` and ``term`` may be numbers, broadcast), what
    an op that masks (``OpSpec.masks``) passes to an input. The products go into ``out`` if
    given; the result is ``out`` unless some product is nan (then a new array)."""
    parts = np.multiply(term, upstream, out=out)
    total = parts.sum()
    if total == total:  # no nan among the parts (a sum with one is nan): nothing to mask
        return parts
    return np.where(np.isnan(parts) & (np.asarray(mask) == 0), 0.0, parts)


def unguarded(form: Callable[..., Any]) -> Callable[..., Any]:
    """``form`` without the ``np.errstate`` it enters on every call, for a caller that has
    switched numpy's floating-point warnings off itself, once around many calls.

    A form made by ``mingrad_ops.numpy_form`` keeps the function it wraps as ``.raw`` (numpy
    comes first); any other form is returned as it is. A form checked on its first call by
    ``array_forms`` stays checked."""
    checked = getattr(form, "checked", None)
    if checked is not None:
        spec, inner, what = checked
        return _checked(spec, unguarded(inner), what)
    raw = getattr(form, "raw", None)
    return functools.partial(raw, np) if callable(raw) else form


def is_looped(spec: OpSpec) -> bool:
    """Whether ``spec`` declares no array forms, so that it runs by looping its scalar forms."""
    return spec.array_forward is None and spec.array_gradient is None


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
                f"the {what} of op {spec.name!r}{where(spec)} returned {len(items)} term(s) "
                f"for {shape[1]} input(s)"
            )
        for item in items:
            if np.asarray(item).shape != () or np.asarray(item).dtype.kind not in "biuf":
                raise TypeError(
                    f"the {what} of op {spec.name!r}{where(spec)} returned "
                    f"{type(item).__name__} {item!r:.80}; expected a real number"
                )
    return np.array(results, dtype=np.float64).reshape(shape)


def gradient_terms(gradient: Callable[..., Any], *values: float) -> Any:
    """``gradient(*values)`` as eager mode evaluates an op's scalar gradient: a formula whose
    float arithmetic raises ``ArithmeticError`` (``1 / 0``) runs again on Scalar constants,
    through the registered ops, which follow IEEE-754; terms that come back as Scalars are read
    as floats. Callers call ``gradient`` directly and come here once that raised. (For code that
    holds an op's gradient function rather than the op; with the op, use the core's
    ``mingrad_core.gradient_terms(op, inputs, out)``.)"""
    try:
        return gradient(*values)
    except ArithmeticError:
        pass
    terms = gradient(*map(_constant, values))
    return [t.data if isinstance(t, Scalar) else t for t in terms]


def _constant(value: float) -> Scalar:
    node = Scalar(value)
    node.grad = None  # takes no gradient, as the constants eager mode makes
    return node


def _each_gradient(spec: OpSpec, columns: list[list[float]]) -> list:
    """``spec``'s scalar gradient at each node (``columns``: inputs and outputs, per argument)."""
    try:
        return list(map(spec.gradient, *columns))
    except ArithmeticError:  # again, each node on its own: the core's IEEE fallback
        return [core_gradient_terms(spec, at[:-1], at[-1]) for at in zip(*columns)]


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
