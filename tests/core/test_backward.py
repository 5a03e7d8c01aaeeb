import math
import re
import struct
import sys

import pytest

from mingrad_core import Scalar, register_op


def test_seed_example():
    a = Scalar(2)
    b = Scalar(-6.5)
    c = a * 5 / 2
    d = c + (b**6).relu()
    d.backward()
    assert d.data == 5.0 + (-6.5) ** 6
    assert a.grad == 2.5
    assert b.grad == 6 * (-6.5) ** 5


def test_million_deep_chain_at_the_default_recursion_limit():
    assert sys.getrecursionlimit() <= 1000 + 100  # pytest's own frames aside, the default
    x = Scalar(1.0)
    y = x
    for _ in range(1_000_000):
        y = y + x
    y.backward()
    assert y.data == 1_000_001.0
    assert x.grad == 1_000_001.0


def test_reused_node_and_diamond_accumulate():
    a = Scalar(0.3)
    b = a * a  # one node, two edges to a
    c = b.tanh()
    d = b.exp()
    e = c * d  # diamond: b reaches e through c and through d
    e.backward()
    db = (1 - math.tanh(0.09) ** 2) * math.exp(0.09) + math.tanh(0.09) * math.exp(0.09)
    assert b.grad == pytest.approx(db)
    assert a.grad == pytest.approx(db * 2 * 0.3)


def test_second_backward_adds_to_leaves_but_recomputes_computed_nodes():
    a = Scalar(2.0)
    c = a * 3.0
    d = c + a
    d.backward()
    assert (a.grad, c.grad, d.grad) == (4.0, 1.0, 1.0)
    d.backward()
    assert (a.grad, c.grad, d.grad) == (8.0, 1.0, 1.0)


def test_zero_grad_clears_every_node_of_the_graph():
    a, b = Scalar(2.0), Scalar(5.0)
    c = a * b
    d = c.relu()
    d.backward()
    d.zero_grad()
    assert (a.grad, b.grad, c.grad, d.grad) == (0.0, 0.0, 0.0, 0.0)
    d.backward()
    assert (a.grad, b.grad) == (5.0, 2.0)


def test_backward_with_an_explicit_seed():
    a = Scalar(2.0)
    (a * a).backward(0.5)
    assert a.grad == 2.0


def test_constants_take_no_gradient():
    b = Scalar(-6.5)
    y = b**6
    y.backward()
    exponent = y.parents[1]
    assert exponent.data == 6.0 and exponent.grad is None  # not nan from log(-6.5)


def test_a_gradient_with_the_wrong_number_of_terms_fails_at_backward():
    register_op(name="broken", arity=1, forward=lambda x: x, gradient=lambda x, out: (1.0, 2.0))
    y = Scalar(1.0).broken()  # the forward is fine
    with pytest.raises(
        ValueError,
        match=rf"op 'broken' \(plugin '{re.escape(__name__)}'\) at inputs \(1.0\) returned "
        r"2 term\(s\); expected a tuple of 1 term\(s\)",
    ):
        y.backward()


@pytest.mark.parametrize("before", [0.0, -0.0, 1.0, math.inf])
@pytest.mark.parametrize("uses", [(1e16, -1e16), (-0.0, -0.0), (0.0, -0.0), (2.0, 3.0)])
def test_leaves_get_before_plus_the_total_bit_for_bit(before, uses):
    # x's uses are summed first, then added to what x held: 1.0 + (1e16 - 1e16) is 1.0, where
    # adding them into x one by one would give 0.0; signs of zero as IEEE addition gives them.
    x = Scalar(0.5)
    out = x * uses[0] + x * uses[1]
    x.grad = before
    out.backward()
    assert struct.pack("<d", x.grad) == struct.pack("<d", before + (uses[0] + uses[1]))
