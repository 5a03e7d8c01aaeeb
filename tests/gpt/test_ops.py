"""The ops the GPT needs: pick (an embedding lookup), logsumexp (a stable softmax), and the
primitive sub, div and neg."""

import math

import numpy as np
import pytest

from mingrad_core import Scalar, get_op, grad, toposort
from mingrad_core import functional as F
from mingrad_jit import jit
from mingrad_jit.arrays import array_forms, check_array_forms
from mingrad_ops import check_op, log_softmax, softmax
from mingrad_viz import draw_graph


def test_pick_takes_the_input_at_the_index_and_sends_it_a_one_hot_gradient():
    xs = [Scalar(v) for v in (0.5, -1.0, 2.0, 4.0)]
    for i in range(4):
        y = F.pick(i, *xs)
        assert y.data == xs[i].data
        assert grad(y, xs) == tuple(1.0 if k == i else 0.0 for k in range(4))


def test_pick_sums_the_gradients_of_an_input_picked_twice():
    xs = [Scalar(1.0), Scalar(2.0)]
    total = F.pick(1, *xs) * 3 + F.pick(1, *xs) + F.pick(0, *xs)
    total.backward()
    assert [x.grad for x in xs] == [1.0, 4.0]


@pytest.mark.parametrize("index", [-1, 3, 3.5, math.nan, math.inf])
def test_pick_refuses_an_index_outside_its_inputs(index):
    with pytest.raises(ValueError, match=r"pick's index must be in 0\.\.2 \(one of 3 inputs\)"):
        F.pick(index, Scalar(1.0), Scalar(2.0), Scalar(3.0))
    forward, _ = array_forms("pick")
    with pytest.raises(ValueError, match=r"pick's index must be in 0\.\.2"):
        forward(np.array([[0.0, index], [1.0, 1.0], [2.0, 2.0], [3.0, 3.0]]))


def test_pick_array_forms_gather_and_scatter_per_column():
    forward, gradient = array_forms("pick")
    block = np.array([[2.0, 0.0, 1.0], [10.0, 11.0, 12.0], [20.0, 21.0, 22.0], [30.0, 31.0, 32]])
    out = forward(block)
    assert out.tolist() == [30.0, 11.0, 22.0]
    assert gradient(block, out).tolist() == [
        [0.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0], [1.0, 0.0, 0.0],
    ]  # fmt: skip


def test_pick_under_jit_is_fed_each_index_anew():
    table = [Scalar(v) for v in (1.0, 10.0, 100.0)]
    looked_up = jit(lambda i, j: F.pick(i, *table) + F.pick(j, *table))
    assert [looked_up(i, j).data for i, j in [(0, 1), (2, 2), (1, 0)]] == [11.0, 200.0, 11.0]
    result = looked_up(2, 2)
    result.backward()
    assert [t.grad for t in table] == [0.0, 0.0, 2.0]
    assert looked_up.traces == 1


@pytest.mark.parametrize("name", ["pick", "logsumexp", "where", "sub", "div", "neg", "log"])
def test_the_new_primitives_pass_both_checkers(name):
    assert check_op(name, samples=30).ok
    report = check_array_forms(name, samples=30)
    assert report.ok and "composite" not in report.message, report.message


def test_logsumexp_is_stable_where_exp_overflows_and_differentiates_to_the_softmax():
    xs = [Scalar(1000.0), Scalar(1000.0), Scalar(-1000.0)]
    y = F.logsumexp(*xs)
    assert y.data == 1000.0 + math.log(2.0)
    assert grad(y, xs) == pytest.approx((0.5, 0.5, 0.0), rel=1e-13, abs=0.0)
    assert F.logsumexp(-math.inf, -math.inf) == -math.inf
    assert F.logsumexp(math.inf, 1.0) == math.inf
    assert math.isnan(F.logsumexp(1.0, math.nan, math.inf))


def test_softmax_and_log_softmax_agree_and_sum_to_one():
    xs = [Scalar(v) for v in (0.3, -2.0, 5.0, 5.0)]
    probs = [p.data for p in softmax(xs)]
    assert math.fsum(probs) == pytest.approx(1.0, abs=1e-15)
    assert probs == pytest.approx([math.exp(lp.data) for lp in log_softmax(xs)], rel=1e-15)
    assert probs[2] == probs[3] > probs[0] > probs[1]


def test_softmax_traces_under_jit_without_reading_a_value():
    f = jit(lambda scores: [p for p in softmax([Scalar(s) for s in scores])])
    for scores in ([1.0, 2.0, 3.0], [300.0, -5.0, 299.0]):
        expected = [p.data for p in softmax([Scalar(s) for s in scores])]
        assert [p.data for p in f(scores)] == pytest.approx(expected, rel=1e-15)
    assert f.traces == 1


def test_division_is_exact_and_survives_a_subnormal_divisor():
    assert (Scalar(3.0) / 10).data == 0.3
    assert (1 / Scalar(3.0)).data == 1 / 3.0
    a, b = Scalar(1e-310), Scalar(1e-310)
    y = a / b
    assert y.data == 1.0
    assert grad(y, [a, b]) == (1 / 1e-310, -1 / 1e-310)
    assert (Scalar(1.0) / 0.0).data == math.inf and (Scalar(-1.0) / 0.0).data == -math.inf
    assert math.isnan((Scalar(0.0) / 0.0).data)


def test_sub_div_and_neg_are_one_node_each_and_draw_with_their_symbols():
    a, b = Scalar(5.0, name="a"), Scalar(2.0, name="b")
    for y, name, label in [(a - b, "sub", "-"), (a / b, "div", "/"), (-a, "neg", "-")]:
        assert y.op is get_op(name) and y.op.gradient is not None
        assert [n for n in toposort(y) if n.op is not None] == [y]
        assert f"n0op [label=<{label}>" in draw_graph(y).source
    assert grad(a - b, [a, b]) == (1.0, -1.0)
    assert grad(a / b, [a, b]) == (0.5, -1.25)
    assert grad(-a, a) == (-1.0,)


def test_log_gradient_is_one_over_x():
    x = Scalar(3.0)
    assert grad(x.log(), x) == (1 / 3.0,)
    zero = Scalar(0.0)
    assert grad(zero.log(), zero) == (math.inf,)
