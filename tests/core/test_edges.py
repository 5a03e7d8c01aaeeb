"""The built-in ops' numeric policy: IEEE inf/nan results, never a Python error."""

import math

import pytest

from mingrad_core import Scalar, grad


def value_and_grad(f, at):
    x = Scalar(at)
    y = f(x)
    return y.data, grad(y, x)[0]


def test_relu_gradient_at_zero_is_zero():
    assert value_and_grad(lambda x: x.relu(), 0.0) == (0.0, 0.0)
    assert value_and_grad(lambda x: x.relu(), -0.0) == (0.0, 0.0)
    assert value_and_grad(lambda x: x.relu(), 1e-300) == (1e-300, 1.0)


@pytest.mark.parametrize("at, expected", [(1000.0, 1.0), (-1000.0, -1.0)])
def test_tanh_saturates_without_overflow(at, expected):
    assert value_and_grad(lambda x: x.tanh(), at) == (expected, 0.0)


def test_exp_overflows_to_inf():
    assert value_and_grad(lambda x: x.exp(), 1000.0) == (math.inf, math.inf)


def test_log_of_zero_and_of_a_negative():
    assert value_and_grad(lambda x: x.log(), 0.0) == (-math.inf, math.inf)
    value, slope = value_and_grad(lambda x: x.log(), -1.0)
    assert math.isnan(value) and slope == -1.0


@pytest.mark.parametrize("at", [0.0, 2.0, -3.0, 1e-310, -5e-324, 1e-308])
def test_power_zero_is_one_with_zero_gradient_everywhere(at):
    assert value_and_grad(lambda x: x**0, at) == (1.0, 0.0)
    x = Scalar(at)  # where x**-1 overflows, 0 * x**-1 would be nan, on either path
    (dx,) = grad(x**0, [x], create_graph=True)
    assert dx.data == 0.0
    (x**0).backward()
    assert x.grad == 0.0


@pytest.mark.parametrize("exponent, slope", [(2.0, 0.0), (0.0, 0.0), (1.0, 0.0), (0.5, 0.0)])
def test_zero_to_a_power_has_zero_slope_in_the_exponent_as_in_pytorch(exponent, slope):
    x, b = Scalar(0.0), Scalar(exponent)
    assert grad(x**b, [b]) == (slope,)  # 0 * log(0) would be nan (or -inf at b = 0)
    (x**b).backward()
    assert b.grad == slope
    assert grad(Scalar(0.0) ** b, [b], create_graph=True)[0].data == slope


def test_zero_to_a_negative_power_is_inf():
    assert value_and_grad(lambda x: x**-1, 0.0)[0] == math.inf
    assert value_and_grad(lambda x: x**-2, 0.0) == (math.inf, -math.inf)
    assert value_and_grad(lambda x: x**-1, -0.0)[0] == -math.inf
    assert (Scalar(1.0) / 0).data == math.inf


def test_negative_base_to_a_fraction_is_nan_and_overflow_is_inf():
    assert math.isnan((Scalar(-8.0) ** (1 / 3)).data)
    assert (Scalar(10.0) ** 400).data == math.inf
    assert (Scalar(-10.0) ** 401).data == -math.inf


def test_nan_propagates():
    for f in (
        lambda x: x.relu(),
        lambda x: x.tanh(),
        lambda x: x.exp(),
        lambda x: x.log(),
        lambda x: x * 2,
        lambda x: x**2,
    ):
        assert math.isnan(f(Scalar(math.nan)).data)


def test_power_zero_keeps_its_dependence_on_the_exponent_for_second_derivatives():
    a, b = Scalar(2.0), Scalar(0.0)
    da, db = grad(a**b, [a, b], create_graph=True)
    assert (da.data, db.data) == (0.0, math.log(2.0))
    # d/db (b * a**(b-1)) = a**(b-1) * (1 + b log a) = 0.5 at a=2, b=0
    assert grad(da, [a, b]) == (0.0, 0.5)
