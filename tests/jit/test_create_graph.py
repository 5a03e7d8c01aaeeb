"""grad(..., create_graph=True) inside jit: every registered op, built-in or bundled, gives
first and second derivatives equal to eager mode's, at points on both sides of its kinks."""

import pytest

import mingrad_core
from mingrad_core import Scalar, get_op, grad
from mingrad_jit import jit
from mingrad_nn import cross_entropy, hinge_loss, mse_loss

TOL = 1e-9
UNARY = [[-1.3], [0.7], [2.1], [-0.2], [0.0], [-40.0], [12.5], [-12.5]]
POINTS = {
    "pow": [[1.5, 2.0], [0.3, -1.5], [2.0, 0.0], [0.0, 2.0], [0.7, 0.5]],
    "log": [[0.5], [2.0], [1e-3]],
    "div": [[1.0, 3.0], [-2.0, 0.25], [0.0, -1.5], [1e-310, 1e-310]],
    "where": [[0.0, 1.5, -2.0], [2.0, 1.5, -2.0], [-0.5, 0.25, 3.0]],
    "pick": [[0.0, 1.5, -2.0, 0.5], [2.0, 1.5, -2.0, 0.5], [1.0, 0.25, 3.0, -1.0]],
}


def registered():
    names = sorted(mingrad_core.ops())
    mingrad_core.reset()
    return names


def points(name):
    spec = get_op(name)
    if name in POINTS:
        return POINTS[name]
    if spec.arity == 1 and not spec.variadic:
        return UNARY
    k = spec.arity + 2 if spec.variadic else spec.arity
    if name == "linear":
        k = 5
    return [[(-1) ** (i + j) * (0.3 + 0.4 * i + 0.2 * j) for i in range(k)] for j in range(3)]


def derivatives(name):
    """f(*numbers): the op's gradient (create_graph) and each term's own gradient."""
    op = get_op(name)

    def f(values):
        xs = [Scalar(v) for v in values]
        firsts = grad(op(*xs), xs, create_graph=True)
        seconds = [grad(g, xs, create_graph=True) for g in firsts]
        return list(firsts), [list(row) for row in seconds]

    return f


def flat(result):
    firsts, seconds = result
    return [g.data for g in firsts] + [g.data for row in seconds for g in row]


@pytest.mark.parametrize("name", registered())
def test_create_graph_inside_jit_equals_eager_for_every_registered_op(name):
    f = derivatives(name)
    jitted = jit(f)
    for point in points(name):
        expected = flat(f(point))
        got = flat(jitted(point))
        for e, g in zip(expected, got, strict=True):
            assert g == pytest.approx(e, rel=TOL, abs=TOL, nan_ok=True), (name, point)
    assert jitted.traces == 1  # one trace, replayed across kinks: no value was read


def test_relu_gradient_follows_the_sign_of_each_new_input_not_the_traced_one():
    f = derivatives("relu")
    jitted = jit(f)
    assert flat(jitted([-1.0]))[0] == 0.0
    assert flat(jitted([1.0]))[0] == 1.0
    assert flat(jitted([-3.0]))[0] == 0.0


@pytest.mark.parametrize(
    "loss",
    [
        lambda s, t: mse_loss(s, t),
        lambda s, t: hinge_loss(s, t),
        lambda s, t: cross_entropy([s, [x * 2 for x in s]], [0, 2]),
    ],
)
def test_losses_differentiate_twice_under_jit(loss):
    def f(scores, targets):
        xs = [Scalar(v) for v in scores]
        (total,) = [loss(xs, targets)]
        return list(grad(total, xs, create_graph=True))

    jitted = jit(f)
    for scores in ([0.5, -1.2, 2.0], [-0.3, 0.8, 0.1]):
        targets = [1.0, -1.0, 1.0]
        expected = [g.data for g in f(scores, targets)]
        got = [g.data for g in jitted(scores, targets)]
        assert got == pytest.approx(expected, rel=TOL, abs=TOL)
    assert jitted.traces == 1
