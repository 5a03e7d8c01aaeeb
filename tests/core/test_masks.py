"""Ops that mask (OpSpec ``masks``): where nothing passes back to an input, it gets 0 whatever
the upstream gradient, not 0 × upstream, as PyTorch's relu (threshold_backward), where and
pow (base, exponent 0) do; every other op multiplies, so 0 × nan is still nan (mul by 0, abs
at 0). The same on every path of the core: backward(), grad(), grad(create_graph=True)."""

import math

import pytest

from mingrad_core import OpRegistrationError, Scalar, backprop, grad, register_op
from mingrad_core import functional as F

from ..conftest import same

NAN, INF = math.nan, math.inf
UPSTREAMS = [NAN, INF, -INF]


def case(build, values, terms):
    """``build(params, k)``: a Scalar whose upstream into the op is ``k``; ``values``: the
    parameters'; ``terms``: per parameter, its local gradient, or None where it is masked."""
    return build, values, terms


# Each case: what each parameter should get, as PyTorch computes it: 0.0 where masked, else
# term * upstream (0 × nan is nan where the op does not mask).
CASES = {
    "relu below 0": case(lambda p, k: F.relu(p[0]) * k, [-1.5], [None]),
    "relu at 0": case(lambda p, k: F.relu(p[0]) * k, [0.0], [None]),
    "relu at -0.0": case(lambda p, k: F.relu(p[0]) * k, [-0.0], [None]),
    "relu above 0": case(lambda p, k: F.relu(p[0]) * k, [2.0], [1.0]),
    "relu at nan": case(lambda p, k: F.relu(p[0]) * k, [NAN], [1.0]),
    "relu in a sum": case(
        lambda p, k: sum((F.relu(x) for x in p), Scalar(0.0)) * k,
        [-1.0, 0.0, 3.0],
        [None, None, 1.0],
    ),
    "where true": case(
        lambda p, k: F.where(p[0], p[1], p[2]) * k, [1.0, 2.0, 3.0], [None, 1.0, None]
    ),
    "where false": case(
        lambda p, k: F.where(p[0], p[1], p[2]) * k, [0.0, 2.0, 3.0], [None, None, 1.0]
    ),
    "where nan": case(
        lambda p, k: F.where(p[0], p[1], p[2]) * k, [NAN, 2.0, 3.0], [None, 1.0, None]
    ),
    "pow exponent 0": case(lambda p, k: p[0] ** p[1] * k, [2.0, 0.0], [None, math.log(2.0)]),
    "pow 0 ** 0": case(lambda p, k: p[0] ** p[1] * k, [0.0, 0.0], [None, 0.0]),
    "pow nan ** 0": case(lambda p, k: p[0] ** p[1] * k, [NAN, 0.0], [None, NAN]),
    # the base's term is 0 here too, but PyTorch masks only where the exponent is 0
    "pow 0 ** 2": case(lambda p, k: p[0] ** p[1] * k, [0.0, 2.0], [0.0, 0.0]),
    "x ** 0 (a number)": case(lambda p, k: p[0] ** 0 * k, [3.0], [None]),
    "x ** 2 at 0 (a number)": case(lambda p, k: p[0] ** 2 * k, [0.0], [0.0]),
    "pick": case(
        lambda p, k: F.pick(1.0, p[0], p[1], p[2]) * k, [1.0, 2.0, 3.0], [None, 1.0, None]
    ),
    # ops that do not mask: 0 × upstream
    "mul by 0": case(lambda p, k: p[0] * 0.0 * k, [2.0], [0.0]),
    "mul by a 0 Scalar": case(lambda p, k: p[0] * p[1] * k, [2.0, 0.0], [0.0, 2.0]),
    "abs at 0": case(lambda p, k: abs(p[0]) * k, [0.0], [0.0]),
}


def expected(terms, k):
    return [0.0 if t is None else t * k for t in terms]


def eager(build, values, k):
    params = [Scalar(v) for v in values]
    build(params, Scalar(k)).backward()
    return [p.grad for p in params]


def by_grad(build, values, k):
    params = [Scalar(v) for v in values]
    return list(grad(build(params, Scalar(k)), params))


def by_create_graph(build, values, k):
    params = [Scalar(v) for v in values]
    return [g.data for g in grad(build(params, Scalar(k)), params, create_graph=True)]


def by_seed(build, values, k):
    """The upstream as backward()'s seed rather than a factor."""
    params = [Scalar(v) for v in values]
    out = build(params, 1.0)
    out.backward(k)
    return [p.grad for p in params]


PATHS = {"backward": eager, "grad": by_grad, "create_graph": by_create_graph, "seed": by_seed}


@pytest.mark.parametrize("upstream", UPSTREAMS)
@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("name", CASES)
def test_a_masked_input_gets_0_and_any_other_term_times_upstream(name, path, upstream):
    build, values, terms = CASES[name]
    same(PATHS[path](build, values, upstream), expected(terms, upstream))


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("name", CASES)
def test_with_a_finite_upstream_masking_changes_nothing(name, path):
    build, values, terms = CASES[name]
    got = PATHS[path](build, values, -2.5)
    for g, t in zip(got, terms):
        w = 0.0 if t is None else t * -2.5
        assert g == w or (math.isnan(g) and math.isnan(w))


def test_a_loss_whose_upstream_is_nan_leaves_relus_below_0_at_0():
    xs = [Scalar(-1.0), Scalar(0.0), Scalar(0.5)]
    loss = sum((x.relu() for x in xs), Scalar(0.0)) * Scalar(-1.0).log()  # log(-1) is nan
    loss.backward()
    same([x.grad for x in xs], [0.0, 0.0, NAN])


def test_second_derivatives_through_a_masked_op_mask_too():
    x, k = Scalar(-1.0), Scalar(NAN)
    (dx,) = grad(x.relu() * k, [x], create_graph=True)
    assert dx.data == 0.0
    assert grad(dx, [x, k]) == (0.0, 0.0)


def test_backprop_observes_the_masked_totals():
    x, k = Scalar(-1.0), Scalar(NAN)
    seen = []

    def observe(node, upstream, terms, totals):
        if node.op is not None and node.op.name == "relu":
            seen.append((upstream, terms, totals[x]))

    backprop(x.relu() * k, observe=observe)
    ((upstream, terms, total),) = seen
    assert math.isnan(upstream) and terms == (0.0,) and total == 0.0


def test_a_plugin_op_masks_with_a_function_of_its_inputs():
    # scale(a, s) = a * s, whose a passes nothing back where s is 0 (as pow's base at b = 0)
    register_op(
        name="gate",
        arity=2,
        forward=lambda a, s: a * s,
        gradient=lambda a, s, out: (s, a),
        masks=lambda a, s, out: (s, 1.0),
    )
    for path in PATHS.values():
        same(path(lambda p, k: F.gate(p[0], p[1]) * k, [2.0, 0.0], NAN), [0.0, NAN])
        same(path(lambda p, k: F.gate(p[0], p[1]) * k, [0.0, 3.0], NAN), [NAN, NAN])


def test_masks_is_checked_when_the_op_is_made():
    with pytest.raises(OpRegistrationError, match="masks"):
        register_op(name="bad", arity=1, forward=abs, gradient=lambda x, out: (1.0,),
                    masks=lambda x: (x,))  # fmt: skip
    with pytest.raises(OpRegistrationError, match="variadic"):
        register_op(name="bad", arity=1, variadic=True, forward=max,
                    gradient=lambda *xs: (1.0,) * (len(xs) - 1), masks=lambda *xs: xs)  # fmt: skip
