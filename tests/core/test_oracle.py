"""Random expression graphs, differentiated by MinGrad and by HIPS autograd."""

import autograd
import autograd.numpy as anp
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mingrad_core import Scalar, grad

# Each step: (MinGrad version, oracle version); every input keeps every op in its domain.
UNARY = [
    (lambda x: x.tanh(), anp.tanh),
    (lambda x: x.tanh().exp(), lambda x: anp.exp(anp.tanh(x))),
    (lambda x: (x * x + 1).log(), lambda x: anp.log(x * x + 1)),
    # relu'(0) = 0, as MinGrad defines it (np.maximum would split the tie: 0.5)
    (lambda x: x.relu(), lambda x: anp.where(x > 0, x, 0.0)),
    (lambda x: x**2, lambda x: x**2),
    (lambda x: x**3, lambda x: x**3),
    (lambda x: -x, lambda x: -x),
    (lambda x: 0.5 * x - 1, lambda x: 0.5 * x - 1),
]
BINARY = [
    (lambda a, b: a + b, lambda a, b: a + b),
    (lambda a, b: a * b, lambda a, b: a * b),
    (lambda a, b: a - b, lambda a, b: a - b),
    (lambda a, b: a / (b * b + 1), lambda a, b: a / (b * b + 1)),
    # the oracle spells a**b as exp(b log a): autograd's own pow rule gets the mixed second
    # derivative wrong where b is exactly 0
    (lambda a, b: (a * a + 1) ** b.tanh(), lambda a, b: anp.exp(anp.tanh(b) * anp.log(a * a + 1))),
]

step = st.one_of(
    st.tuples(st.just(1), st.integers(0, len(UNARY) - 1), st.integers(0, 99)),
    st.tuples(st.just(2), st.integers(0, len(BINARY) - 1), st.integers(0, 99), st.integers(0, 99)),
)
programs = st.lists(step, min_size=1, max_size=12)
points = st.lists(st.floats(-1.5, 1.5).filter(lambda v: abs(v) > 1e-3), min_size=3, max_size=3)


def run(program, inputs, table):
    """Each step reads earlier values (reuse, diamonds); the output sums the last two."""
    values = list(inputs)
    for arity, which, *args in program:
        fn = table[arity - 1][which][0 if table is OURS else 1]
        values.append(fn(*(values[i % len(values)] for i in args)))
    return values[-1] + values[-2]


OURS = (UNARY, BINARY)
THEIRS = (UNARY, BINARY)


def oracle(program):
    return lambda x0, x1, x2: run(program, (x0, x1, x2), THEIRS)


@settings(max_examples=150, deadline=None)
@given(programs, points)
def test_first_order_matches_autograd(program, point):
    xs = [Scalar(v) for v in point]
    got = grad(run(program, xs, OURS), xs)
    for i in range(3):
        assert got[i] == pytest.approx(
            autograd.grad(oracle(program), i)(*point), rel=1e-9, abs=1e-9
        )


@settings(max_examples=60, deadline=None)
@given(programs, points)
def test_second_order_matches_autograd(program, point):
    xs = [Scalar(v) for v in point]
    first = grad(run(program, xs, OURS), xs, create_graph=True)
    for i in range(3):
        second = grad(first[i], xs)
        for j in range(3):
            expected = autograd.grad(autograd.grad(oracle(program), i), j)(*point)
            assert second[j] == pytest.approx(expected, rel=1e-8, abs=1e-8)


def test_micrograd_sanity_check_expression():
    def f(x, relu):
        z = 2 * x + 2 + x
        q = relu(z) + z * x
        h = relu(z * z)
        return h + q + q * x

    x = Scalar(-4.0)
    y = f(x, lambda v: v.relu())
    y.backward()
    relu = lambda v: anp.maximum(v, 0.0)  # noqa: E731
    assert y.data == f(-4.0, relu)
    assert x.grad == pytest.approx(autograd.grad(f)(-4.0, relu), rel=1e-12)


def test_micrograd_more_ops_expression():
    def f(a, b, relu):
        c = a + b
        d = a * b + b**3
        c = c + c + 1
        c = c + 1 + c + (-a)
        d = d + d * 2 + relu(b + a)
        d = d + 3 * d + relu(b - a)
        e = c - d
        f_ = e**2
        g = f_ / 2.0
        g = g + 10.0 / f_
        return g

    a, b = Scalar(-4.0), Scalar(2.0)
    g = f(a, b, lambda v: v.relu())
    g.backward()
    relu = lambda v: anp.maximum(v, 0.0)  # noqa: E731
    assert g.data == pytest.approx(f(-4.0, 2.0, relu), rel=1e-12)
    assert a.grad == pytest.approx(autograd.grad(f, 0)(-4.0, 2.0, relu), rel=1e-12)
    assert b.grad == pytest.approx(autograd.grad(f, 1)(-4.0, 2.0, relu), rel=1e-12)
