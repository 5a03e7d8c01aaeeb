"""Every activation follows the IEEE policy (limits, never an error) and has exact array forms."""

import math
import sys
from decimal import Decimal, getcontext

import numpy as np
import pytest

from mingrad_core import Scalar, get_op, grad
from mingrad_jit.arrays import array_forms, check_array_forms

NAMES = ["sigmoid", "silu", "gelu", "softplus", "leaky_relu", "elu"]
HUGE = [1e103, 1e200, sys.float_info.max, math.inf]

# Per op, at a huge positive x and a huge negative x: the value and the first derivative.
# ``"x"`` means x itself; the second derivative there is 0.
LIMITS = {
    "sigmoid": ((1.0, 0.0), (0.0, 0.0)),
    "silu": (("x", 1.0), (-0.0, 0.0)),
    "gelu": (("x", 1.0), (-0.0, 0.0)),
    "softplus": (("x", 1.0), (0.0, 0.0)),
    "leaky_relu": (("x", 1.0), ("0.01x", 0.01)),
    "elu": (("x", 1.0), (-1.0, 0.0)),
}


def derivatives(name, at):
    x = Scalar(at)
    y = getattr(x, name)()
    (d1,) = grad(y, x, create_graph=True)
    (d2,) = grad(d1, x)
    return y.data, d1.data, d2


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("size", HUGE)
@pytest.mark.parametrize("sign", [1, -1])
def test_huge_inputs_give_the_limits_in_value_and_two_derivatives(name, size, sign):
    at = sign * size
    (value, slope) = LIMITS[name][0 if sign > 0 else 1]
    expected = {"x": at, "0.01x": 0.01 * at}.get(value, value)
    got, d1, d2 = derivatives(name, at)
    assert got == expected and math.copysign(1, got) == math.copysign(1, expected)
    assert d1 == slope and d2 == 0.0


@pytest.mark.parametrize("name", NAMES)
def test_nan_gives_nan(name):
    assert math.isnan(getattr(Scalar(math.nan), name)().data)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("at", [0.0, -0.0, 5e-324, -5e-324, 1e-300])
def test_zero_and_tiny_inputs_have_finite_derivatives(name, at):
    value, d1, d2 = derivatives(name, at)
    assert all(math.isfinite(v) for v in (value, d1, d2))


def test_gelu_no_longer_overflows_where_x_cubed_does():
    # x**3 overflowed from |x| ~ 5.6e102: gelu raised OverflowError there.
    for at in (6e102, -6e102, 1e154, -1e154):
        value, d1, _ = derivatives("gelu", at)
        assert (value, d1) == ((at, 1.0) if at > 0 else (-0.0, 0.0))


def gelu_reference(x: float) -> tuple[float, float]:
    """gelu and its slope at the float x, to 60 digits (the tanh formula, in decimal)."""
    getcontext().prec = 60
    k, c, x = Decimal(math.sqrt(2 / math.pi)), Decimal("0.044715"), Decimal(x)
    e = (2 * k * (x + c * x * x * x)).exp()
    t = (e - 1) / (e + 1)
    slope = (1 + t) / 2 + x * (1 - t * t) * k * (1 + 3 * c * x * x) / 2
    return float(x * (1 + t) / 2), float(slope)


@pytest.mark.parametrize("at", [-6.0, -3.0, -2.3, -1.5, -0.5, 0.5, 2.0, 9.5])
def test_gelu_keeps_its_digits_for_negative_x(at):
    # 1 + tanh(u) cancels for negative x (it is 0.003 at x = -3): written so, gelu lost 53
    # ulps at -3 and 1.7e9 at -6, its slope 119 and 2e9.
    value, slope = gelu_reference(at)
    x = Scalar(at)
    y = x.gelu()
    y.backward()
    assert abs(y.data - value) <= 32 * np.spacing(abs(value))
    assert abs(x.grad - slope) <= 32 * np.spacing(abs(slope))


@pytest.mark.parametrize("name", NAMES)
def test_gelu_and_silu_are_continuous_where_they_switch_to_the_limit(name):
    below, above = 10.0, np.nextafter(10.0, 11.0)
    for side in (1, -1):
        y0, d0, _ = derivatives(name, side * below)
        y1, d1, _ = derivatives(name, side * above)
        assert y1 == pytest.approx(y0, rel=1e-12, abs=1e-12)
        assert d1 == pytest.approx(d0, rel=1e-12, abs=1e-12)


@pytest.mark.parametrize("name", NAMES)
def test_each_activation_declares_array_forms_equal_to_its_scalar_forms(name):
    spec = get_op(name)
    assert spec.array_forward is not None and spec.array_gradient is not None
    report = check_array_forms(name, samples=200, seed=2)
    assert report.ok, report.message
    if name == "leaky_relu":  # no C library call: bitwise on any machine
        assert report.errors == (0.0, 0.0)


@pytest.mark.parametrize("name", NAMES)
def test_array_forms_give_the_limits_at_huge_inputs(name):
    forward, gradient = array_forms(name)
    x = np.array([-math.inf, -1e200, 1e200, math.inf, math.nan])
    out = forward(x)
    (slope,) = gradient(x, out)
    expected = [getattr(Scalar(v), name)().data for v in x.tolist()]
    assert np.array_equal(out, expected, equal_nan=True)
    assert np.array_equal(np.signbit(out[:4]), np.signbit(expected[:4]))  # -0.0 where -0.0
    assert np.isfinite(slope[:4]).all()


def test_elu_gradient_is_exp_x_far_below_zero_where_out_plus_one_cancels():
    for at in (-40.0, -50.0, -700.0):
        value, d1, d2 = derivatives("elu", at)
        assert d1 == math.exp(at) and d2 == math.exp(at)
        (slope,) = array_forms("elu")[1](np.array([at]), np.array([value]))
        assert slope[0] == math.exp(at)


# PyTorch 2.13 (float64): relu and elu pass the upstream gradient on at nan, leaky_relu
# scales it by its slope 0.01.
@pytest.mark.parametrize("name, slope", [("relu", 1.0), ("elu", 1.0), ("leaky_relu", 0.01)])
def test_the_gradient_at_nan_is_pytorchs(name, slope):
    x = Scalar(math.nan)
    assert grad(getattr(x, name)(), x) == (slope,)
    (array_slope,) = array_forms(name)[1](np.array([math.nan]), np.array([math.nan]))
    assert array_slope[0] == slope


def test_mish_is_a_composite_differentiated_through_its_parts():
    x = Scalar(0.8)
    y = x.mish()
    assert get_op("mish").gradient is None and y.op.name == "mul"
    softplus = math.log1p(math.exp(0.8))
    assert y.data == pytest.approx(0.8 * math.tanh(softplus), rel=1e-15)
    t, s = math.tanh(softplus), 1 / (1 + math.exp(-0.8))
    assert grad(y, x)[0] == pytest.approx(t + 0.8 * (1 - t * t) * s, rel=1e-14)
