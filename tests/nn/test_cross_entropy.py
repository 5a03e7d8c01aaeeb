"""cross_entropy, and bce_with_logits without value branches: values, gradients, extremes."""

import math

import pytest

from mingrad_core import Scalar
from mingrad_nn import bce_with_logits, cross_entropy


def softmax(values):
    top = max(values)
    e = [math.exp(v - top) for v in values]
    return [x / sum(e) for x in e]


def test_cross_entropy_by_hand_with_indices_and_one_hot_rows():
    rows = [[1.0, 2.0, 0.5], [-1.0, 0.0, 3.0]]
    labels = [1, 2]
    for targets in (labels, [[0.0, 1.0, 0.0], [0.0, 0.0, 1.0]]):
        logits = [[Scalar(v) for v in row] for row in rows]
        loss = cross_entropy(logits, targets)
        loss.backward()
        expected = sum(-math.log(softmax(r)[k]) for r, k in zip(rows, labels)) / 2
        assert loss.data == pytest.approx(expected, rel=1e-12)
        for row, values, k in zip(logits, rows, labels):
            want = [(p - (j == k)) / 2 for j, p in enumerate(softmax(values))]
            assert [s.grad for s in row] == pytest.approx(want, rel=1e-12, abs=1e-15)


def test_cross_entropy_is_stable_at_huge_logits():
    logits = [[Scalar(1000.0), Scalar(0.0), Scalar(-1000.0)]]
    loss = cross_entropy(logits, [1])
    loss.backward()
    assert loss.data == 1000.0
    assert [s.grad for s in logits[0]] == pytest.approx([1.0, -1.0, 0.0])


def test_cross_entropy_refuses_bad_labels():
    with pytest.raises(ValueError, match=r"class index in 0\.\.1 .* got int 2"):
        cross_entropy([[Scalar(0.0), Scalar(1.0)]], [2])
    with pytest.raises(ValueError, match="one probability per class: 2; got 3"):
        cross_entropy([[Scalar(0.0), Scalar(1.0)]], [[1.0, 0.0, 0.0]])


@pytest.mark.parametrize("t", [0.0, 0.3, 1.0])
def test_bce_value_and_gradient_at_zero_are_exact(t):
    z = Scalar(0.0)
    loss = bce_with_logits([z], [t])
    loss.backward()
    assert loss.data == math.log(2)
    assert z.grad == 0.5 - t


def test_bce_matches_the_branching_formula_and_is_stable():
    for v, t in [(3.0, 0.2), (-2.5, 0.7), (40.0, 1.0), (-40.0, 0.0)]:
        z = Scalar(v)
        loss = bce_with_logits([z], [t])
        loss.backward()
        if v >= 0:
            want = v - v * t + math.log(1 + math.exp(-v))
        else:
            want = -v * t + math.log(1 + math.exp(v))
        assert loss.data == pytest.approx(want, rel=1e-15)
        assert z.grad == pytest.approx(1 / (1 + math.exp(-v)) - t, rel=1e-12, abs=1e-15)
    big = [Scalar(1e308), Scalar(-1e308)]
    loss = bce_with_logits(big, [1.0, 0.0])
    loss.backward()
    assert loss.data == 0.0 and [s.grad for s in big] == [0.0, 0.0]
