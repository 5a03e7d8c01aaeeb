"""Ops that mask (OpSpec ``masks``) under jit: every strategy, vmap's batches and a
create_graph=True gradient traced inside jit pass 0 to a masked input where the upstream is
inf or nan, as eager mode does (and PyTorch), decided on each call's values, not the traced
ones; ops that do not mask still give 0 × nan = nan."""

import math

import pytest

from mingrad_core import Scalar, grad, register_op
from mingrad_core import functional as F
from mingrad_jit import jit, vmap

from ..conftest import same

NAN, INF = math.nan, math.inf
STRATEGIES = ["levels", "code", "tape"]

# Per case: the op on one tuple of parameters, and tuples of parameter values to try, each
# call with new values (a masked input on one call passes on the next).
OPS = {
    "relu": (lambda p: F.relu(p[0]), [(-1.5,), (0.0,), (2.0,), (NAN,), (-0.0,)]),
    "where": (
        lambda p: F.where(p[0], p[1], p[2]),
        [(1.0, 2.0, 3.0), (0.0, 2.0, 3.0), (NAN, -1.0, 4.0)],
    ),
    "pow": (lambda p: p[0] ** p[1], [(2.0, 0.0), (0.0, 0.0), (0.0, 2.0), (3.0, 1.5)]),
    "pow by a number 0": (lambda p: p[0] ** 0, [(3.0,), (0.0,)]),
    "pick": (lambda p: F.pick(1.0, p[0], p[1], p[2]), [(1.0, 2.0, 3.0)]),
    "mul by 0": (lambda p: p[0] * 0.0, [(2.0,), (-1.0,)]),
    "abs": (lambda p: abs(p[0]), [(0.0,), (-2.0,)]),
}
UPSTREAMS = [NAN, INF, -INF, 1.5]


def setup(name, n):
    """n copies of the op (n > 1: a group of nodes, run on arrays by the level replay), their
    sum times the upstream k, and the parameters."""
    op, points = OPS[name]
    params = [[Scalar(0.0) for _ in points[0]] for _ in range(n)]

    def fn(k):
        return sum((op(p) for p in params), Scalar(0.0)) * k

    return fn, params, points


def run(fn, params, values, k):
    for group in params:
        for p, v in zip(group, values):
            p.data, p.grad = v, 0.0
    fn(k).backward()
    return [p.grad for group in params for p in group]


@pytest.mark.parametrize("n", [1, 3])
@pytest.mark.parametrize("strategy", STRATEGIES)
@pytest.mark.parametrize("name", OPS)
def test_every_strategy_masks_as_eager_mode_on_each_call(name, strategy, n):
    fn, params, points = setup(name, n)
    jitted = jit(fn, strategy=strategy)
    for values in points:
        for k in UPSTREAMS:
            same(run(jitted, params, values, k), run(fn, params, values, k))
    assert jitted.traces == 1


def test_the_masked_numbers_are_pytorchs():
    fn, params, _ = setup("relu", 3)
    jitted = jit(fn, strategy="levels")
    for k in (NAN, INF):
        same(run(jitted, params, (-1.0,), k), [0.0] * 3)
        assert all(map(math.isnan, run(jitted, params, (1.0,), NAN)))
    fn, params, _ = setup("mul by 0", 3)
    assert all(map(math.isnan, run(jit(fn), params, (2.0,), NAN)))  # 0 × nan, unmasked


@pytest.mark.parametrize("strategy", ["levels", "code", "tape"])
@pytest.mark.parametrize("name", OPS)
def test_vmap_batches_mask_as_eager_mode(name, strategy):
    op, points = OPS[name]
    params = [Scalar(0.0) for _ in points[0]]

    def sample(k):
        return op(params) * k[0]

    def eager(K):
        return sum((sample(k) for k in K), Scalar(0.0))

    jitted = jit(lambda K: sum(vmap(sample)(K), Scalar(0.0)), strategy=strategy)
    for values in points:
        for K in ([[NAN], [2.0]], [[INF], [-INF]], [[1.0], [3.0]]):
            want = run(eager, [params], values, K)
            same(run(jitted, [params], values, K), want)


@pytest.mark.parametrize("name", ["relu", "where", "pow", "pick"])
def test_a_create_graph_gradient_traced_in_jit_masks_as_eager_mode(name):
    op, points = OPS[name]
    params = [Scalar(0.0) for _ in points[0]]

    def first(k):
        return list(grad(op(params) * k, params, create_graph=True))

    jitted = jit(first)
    for values in points:
        for k in UPSTREAMS:
            for p, v in zip(params, values):
                p.data = v
            same([g.data for g in jitted(k)], [g.data for g in first(k)])
    assert jitted.traces == 1


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_a_plugin_op_without_array_forms_masks_too(strategy):
    register_op(  # looped over its scalar forms by the level replay
        name="gate",
        arity=2,
        forward=lambda a, s: a * s,
        gradient=lambda a, s, out: (s, a),
        masks=lambda a, s, out: (s, 1.0),
    )
    register_op(
        name="plus",
        arity=1,
        forward=lambda x: x if x > 0 else 0.0,
        gradient=lambda x, out: (0.0 if x <= 0 else 1.0,),
        masks=True,
    )
    for n in (1, 3):
        params = [[Scalar(0.0), Scalar(0.0)] for _ in range(n)]

        def fn(k, params=params):
            return sum((F.gate(F.plus(a), s) for a, s in params), Scalar(0.0)) * k

        jitted = jit(fn, strategy=strategy)
        for values in ((2.0, 0.0), (-1.0, 3.0), (1.0, 2.0)):
            for k in UPSTREAMS:
                same(run(jitted, params, values, k), run(fn, params, values, k))
