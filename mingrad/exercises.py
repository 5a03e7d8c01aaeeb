"""Graders for `notebooks/exercises.ipynb`: each grades an answer with MinGrad's own checks.

Every grader returns a :class:`Grade`, shown as one line: ``passed``, ``not yet`` (the answer is
still blank: the function returns ``None`` or raises ``NotImplementedError``), or ``wrong``,
with what was off and a hint. A grader never raises for a learner's answer: an answer that
raises is graded ``wrong``, with the error.

The checks are the project's: ``check_op`` (an op's first and second derivatives against finite
differences), ``grad`` (gradients that touch no ``.grad``), and central differences of a whole
function.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from typing import Any, Literal, NamedTuple

from mingrad_core import OpSpec, Scalar, grad, local_gradient, toposort
from mingrad_ops import check_op

Status = Literal["passed", "not yet", "wrong"]

SCALAR_HINT = (
    "the first derivative is right but the second is not: the gradient must also work when its "
    "arguments are Scalars (create_graph=True), so write it with arithmetic, `out`, or "
    "`F.exp`/`F.log`, never `math.*`, which reads a Scalar as a plain float"
)


class Grade(NamedTuple):
    """The outcome of grading one answer."""

    exercise: str
    status: Status
    detail: str
    hint: str = ""

    @property
    def passed(self) -> bool:
        """Whether the answer passed every check."""
        return self.status == "passed"

    def __str__(self) -> str:
        hint = f"\n  hint: {self.hint}" if self.hint else ""
        return f"{self.exercise}: {self.status}: {self.detail}{hint}"

    def __repr__(self) -> str:  # a notebook shows the last expression's repr
        return str(self)


class _Blank(Exception):
    """The answer is still blank."""


def _answer(fn: Callable[..., Any], *args: Any) -> Any:
    """``fn(*args)``; :class:`_Blank` if it returns None or raises NotImplementedError."""
    try:
        result = fn(*args)
    except NotImplementedError:
        raise _Blank from None
    if result is None:
        raise _Blank
    return result


def _name(fn: Callable[..., Any]) -> str:
    return getattr(fn, "__name__", "the function")


def _not_yet(exercise: str, what: str) -> Grade:
    return Grade(exercise, "not yet", f"fill in {what}, then run this cell again")


def _raised(exercise: str, exc: BaseException, hint: str = "") -> Grade:
    return Grade(exercise, "wrong", f"your code raised {type(exc).__name__}: {exc}", hint)


def _close(got: float, expected: float, rtol: float = 1e-7, atol: float = 1e-12) -> bool:
    if math.isnan(expected):
        return math.isnan(got)
    if math.isinf(expected):
        return got == expected
    return abs(got - expected) <= atol + rtol * abs(expected)


# Local gradients, graded by check_op


def check_gradient(
    exercise: str,
    forward: Callable[..., float] | None,
    gradient: Callable[..., Any] | None,
    *,
    arity: int,
    domain: tuple[tuple[float, float], ...] | None = None,
    hint: str = "",
) -> Grade:
    """Grade an op's ``gradient(*inputs, out)`` (one term per input) with ``check_op``.

    ``forward`` computes the op on floats. The op is checked unregistered, first and second
    order, at random points of ``domain`` (default -2..2 per input). ``hint`` is shown when the
    first derivative is wrong; a right first and wrong second derivative gets its own hint.
    """
    if forward is None or gradient is None:
        return _not_yet(exercise, "the forward and the gradient")
    ranges = domain or ((-2.0, 2.0),) * arity
    point = [(lo + hi) / 2 + (hi - lo) / 7 for lo, hi in ranges]
    try:
        out = _answer(forward, *point)
    except _Blank:
        return _not_yet(exercise, f"{_name(forward)} and {_name(gradient)}")
    except Exception as exc:
        return _raised(exercise, exc, hint)
    try:
        _answer(gradient, *point, out)
    except _Blank:
        return _not_yet(exercise, _name(gradient))
    except Exception as exc:
        return _raised(exercise, exc, hint)
    try:
        spec = OpSpec(
            name="exercise", arity=arity, forward=forward, gradient=gradient, domain=domain
        )
    except Exception as exc:  # a signature that cannot take the inputs, a bad domain
        return Grade(exercise, "wrong", str(exc), hint)
    first = check_op(spec, order=1)
    if not first.ok:
        detail = first.message.replace("op 'exercise': ", "")
        if "term(s)" in detail or "expected real numbers" in detail:
            hint = "return a tuple with one number per input, such as (term,) for one input"
        return Grade(exercise, "wrong", detail, hint)
    second = check_op(spec, order=2)
    if not second.ok:
        return Grade(exercise, "wrong", second.message.replace("op 'exercise': ", ""), SCALAR_HINT)
    return Grade(
        exercise,
        "passed",
        f"first and second derivatives match finite differences (worst error "
        f"{max(second.errors):.2g} of the tolerance)",
    )


# Backward, piece by piece: graphs whose gradients are known from grad()


def _graphs() -> list[tuple[str, Scalar, list[Scalar]]]:
    """Small graphs that catch the classic mistakes: a node used twice, a reused non-leaf."""
    x = Scalar(3.0, name="x")
    a, b = Scalar(2.0, name="a"), Scalar(-3.0, name="b")
    c = a * b
    p, q = Scalar(0.5, name="p"), Scalar(-1.5, name="q")
    h = (p * q).tanh()
    seed_a, seed_b = Scalar(2.0, name="a"), Scalar(-6.5, name="b")
    seed = seed_a * 5 / 2 + (seed_b**6).relu()
    return [
        ("x * x (a node used twice)", x * x, [x]),
        ("c = a * b; c + c (a non-leaf used twice)", c + c, [a, b]),
        ("h = tanh(p * q); h * p + h (a diamond)", h * p + h, [p, q]),
        ("the seed example a * 5 / 2 + relu(b ** 6)", seed, [seed_a, seed_b]),
    ]


def backward_with(
    pass_gradient: Callable[[dict, Scalar, float], None],
    root: Scalar,
    order: Callable[[Scalar], list[Scalar]] = toposort,
) -> dict[Scalar, float]:
    """d(root)/d(node) for every node, by the chain rule: each node, users first, passes
    ``local gradient * its own gradient`` to each input through ``pass_gradient(grads, input,
    contribution)``. ``order(root)`` lists every node after its inputs."""
    grads: dict[Scalar, float] = {root: 1.0}
    for node in reversed(order(root)):
        if node.op is None:
            continue
        for parent, term in zip(node.parents, local_gradient(node)):
            pass_gradient(grads, parent, term * grads.get(node, 0.0))
    return grads


def check_backward(
    exercise: str, backward: Callable[[Scalar], dict[Scalar, float]], hint: str = ""
) -> Grade:
    """Grade ``backward(root) -> {node: d(root)/d(node)}`` against ``grad()`` on small graphs
    with a node used twice, a non-leaf used twice, a diamond and the seed example."""
    for description, root, leaves in _graphs():
        expected = grad(root, leaves)
        try:
            grads = backward(root)
        except RecursionError:
            return Grade(exercise, "wrong", f"RecursionError on {description}", hint)
        except Exception as exc:
            return _raised(exercise, exc, hint)
        for leaf, right in zip(leaves, expected):
            got = grads.get(leaf, 0.0)
            if not _close(float(got), right):
                return Grade(
                    exercise,
                    "wrong",
                    f"on {description}: d/d{leaf.name} is {got!r}, grad() gives {right!r}",
                    hint,
                )
    return Grade(exercise, "passed", f"the gradients match grad() on {len(_graphs())} graphs")


def check_pass_gradient(
    exercise: str, pass_gradient: Callable[[dict, Scalar, float], None]
) -> Grade:
    """Grade ``pass_gradient(grads, parent, contribution)``, the step of backward that adds a
    contribution to ``grads[parent]``, by running :func:`backward_with` on graphs where a node
    is used twice."""
    probe: dict = {}
    hint = (
        "a node used twice gets a contribution from each use: add it to what grads already "
        "holds for that node (grads.get(parent, 0.0) + contribution), do not overwrite it"
    )
    try:
        pass_gradient(probe, Scalar(1.0), 1.0)
    except NotImplementedError:
        return _not_yet(exercise, _name(pass_gradient))
    except KeyError as exc:
        return _raised(
            exercise,
            exc,
            "grads holds no entry for a node before its first "
            "contribution: start from grads.get(parent, 0.0)",
        )
    except Exception as exc:
        return _raised(exercise, exc, hint)
    if not probe:
        return _not_yet(exercise, f"{_name(pass_gradient)} (it left grads unchanged)")
    return check_backward(exercise, lambda root: backward_with(pass_gradient, root), hint)


def _added(grads: dict, parent: object, contribution: float) -> None:
    grads[parent] = grads.get(parent, 0.0) + contribution


def check_order(exercise: str, order: Callable[[Scalar], list[Scalar]]) -> Grade:
    """Grade ``order(root)``: every node ``root`` depends on, once, each after its inputs;
    without recursion (a chain 10,000 deep), and backward in that order gives grad()'s numbers."""
    x = Scalar(0.5, name="x")
    c = x * x
    root = (c + c) * c
    try:
        listed = _answer(order, root)
    except _Blank:
        return _not_yet(exercise, _name(order))
    except Exception as exc:
        return _raised(exercise, exc)
    listed = list(listed)
    if len(set(map(id, listed))) != len(listed):
        return Grade(
            exercise,
            "wrong",
            "a node is listed more than once",
            "keep a set of the nodes already visited",
        )
    if set(map(id, listed)) != set(map(id, toposort(root))):
        return Grade(
            exercise,
            "wrong",
            "the order misses a node, or lists one root does not use",
            "list every node reachable from root through .parents, and only those",
        )
    position = {id(node): i for i, node in enumerate(listed)}
    for node in listed:
        for parent in node.parents:
            if position[id(parent)] > position[id(node)]:
                return Grade(
                    exercise,
                    "wrong",
                    f"{node!r} comes before its input {parent!r}",
                    "place a node only once all of its inputs are placed",
                )
    deep = Scalar(0.0)
    for _ in range(10_000):
        deep = deep + 1.0
    hint = (
        "recursion is limited to about 1,000 calls in Python: walk the graph with a list as a stack"
    )
    try:
        if len(order(deep)) != 20_001:  # 10,000 additions and their 10,000 constants, and x
            return Grade(exercise, "wrong", "on a chain of 10,000 additions a node is missing")
    except RecursionError:
        return Grade(exercise, "wrong", "RecursionError on a chain of 10,000 additions", hint)
    grade = check_backward(exercise, lambda root: backward_with(_added, root, order))
    if not grade.passed:
        return grade._replace(detail=f"backward in your order: {grade.detail}")
    return grade._replace(
        detail="every node once, after its inputs, 10,000 deep too; backward in this order "
        f"matches grad() on {len(_graphs())} graphs"
    )


# Traps of .grad: accumulation across backward() calls and training steps


def check_fresh_gradient(exercise: str, fresh_gradient: Callable[[Scalar, Scalar], float]) -> Grade:
    """Grade ``fresh_gradient(y, x)``, which must return dy/dx through ``y.backward()`` and
    ``x.grad``, right however many times it is called on the same graph."""
    x = Scalar(1.5, name="x")
    y = x * x.tanh() + x
    (expected,) = grad(y, x)
    for call in range(1, 4):
        try:
            got = _answer(fresh_gradient, y, x)
        except _Blank:
            return _not_yet(exercise, _name(fresh_gradient))
        except Exception as exc:
            return _raised(exercise, exc)
        if not _close(float(got), expected):
            return Grade(
                exercise,
                "wrong",
                f"call {call} returned {got!r}; grad() gives {expected!r}",
                "leaves add each backward() to what their .grad holds: y.zero_grad() first",
            )
    return Grade(exercise, "passed", f"three calls each gave {expected!r}, as grad() does")


def regression_problem(seed: int = 0) -> tuple[list[Scalar], Callable[[], Scalar]]:
    """A tiny regression: the parameters ``[w, b]`` (random, from ``seed``), and a function
    building the mean squared error of ``w * x + b`` against ``2 * x - 1`` at five points."""
    rng = random.Random(seed)
    w, b = Scalar(rng.uniform(-1, 1), name="w"), Scalar(rng.uniform(-1, 1), name="b")
    data = [(x, 2.0 * x - 1.0) for x in (-1.0, -0.5, 0.5, 1.0, 2.0)]

    def loss() -> Scalar:
        return sum(((w * x + b) - y) ** 2 for x, y in data) * (1 / len(data))

    return [w, b], loss


def check_training_step(
    exercise: str, step: Callable[[list[Scalar], Callable[[], Scalar], float], None]
) -> Grade:
    """Grade ``step(params, loss_fn, lr)``, one step of gradient descent on ``loss_fn()``: after
    10 steps the parameters must be those of descent with gradients from ``grad()``."""
    params, loss_fn = regression_problem()
    reference, reference_loss = regression_problem()
    before = [p.data for p in params]
    for k in range(10):
        try:
            step(params, loss_fn, 0.1)
        except NotImplementedError:
            return _not_yet(exercise, _name(step))
        except Exception as exc:
            return _raised(exercise, exc)
        if k == 0 and [p.data for p in params] == before:
            return _not_yet(exercise, f"{_name(step)} (the parameters did not change)")
        grads = grad(reference_loss(), reference)
        for p, g in zip(reference, grads):
            p.data -= 0.1 * g
        got, expected = [p.data for p in params], [p.data for p in reference]
        if not all(_close(a, b, rtol=1e-9) for a, b in zip(got, expected)):
            return Grade(
                exercise,
                "wrong",
                f"after step {k + 1} the parameters are {got}; gradient descent gives {expected}",
                "every step must use this step's gradient only: zero the gradients before "
                "backward(), or they add up over the steps",
            )
    loss = loss_fn().data
    return Grade(exercise, "passed", f"10 steps match gradient descent (loss now {loss:.4g})")


# Whole functions, checked against central differences and known values


def check_function(
    exercise: str,
    f: Callable[[Scalar], Scalar],
    points: list[float],
    value: Callable[[float], float] | None = None,
    derivative: Callable[[float], float] | None = None,
    hint: str = "",
) -> Grade:
    """Grade ``f`` (Scalar in, Scalar out) at each of ``points``: its value against ``value(x)``
    and its gradient against ``derivative(x)`` when given, else against central differences of
    ``f`` itself."""
    for x0 in points:
        x = Scalar(x0, name="x")
        try:
            y = _answer(f, x)
        except _Blank:
            return _not_yet(exercise, _name(f))
        except Exception as exc:
            return _raised(exercise, exc, hint)
        if not isinstance(y, Scalar):
            return Grade(
                exercise,
                "wrong",
                f"at x={x0!r} it returned {type(y).__name__} {y!r}, not a Scalar: the graph "
                "back to x is lost",
                "math.exp(x) and math.log(x) read a Scalar through float(): use x.exp(), x.log()",
            )
        if value is not None and not _close(y.data, value(x0)):
            return Grade(
                exercise,
                "wrong",
                f"at x={x0!r} the value is {y.data!r}, expected {value(x0)!r}",
                hint,
            )
        (got,) = grad(y, x)
        if derivative is not None:
            expected = derivative(x0)
        else:
            step = 1e-6 * max(1.0, abs(x0))
            expected = (float(f(Scalar(x0 + step))) - float(f(Scalar(x0 - step)))) / (2 * step)
        if not _close(got, expected, rtol=1e-5, atol=1e-8):
            return Grade(
                exercise,
                "wrong",
                f"at x={x0!r} the gradient is {got!r}, expected {expected!r}",
                hint,
            )
    return Grade(exercise, "passed", f"value and gradient right at x = {points}")
