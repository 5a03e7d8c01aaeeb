import math

import pytest

import mingrad_core
from mingrad_core import OpSpec, check_op


def registered_ops():
    names = sorted(mingrad_core.ops())
    mingrad_core.reset()
    return names


@pytest.mark.parametrize("name", registered_ops())
def test_every_registered_op_passes_first_and_second_order(name):
    report = check_op(name, samples=20)
    assert report.ok, report.message
    assert len(report.errors) == 2


def exp_with(gradient):
    return OpSpec(name="myexp", arity=1, forward=math.exp, gradient=gradient)


def test_the_checker_accepts_a_right_gradient():
    assert check_op(exp_with(lambda x, out: (out,))).ok


def test_the_checker_catches_a_first_derivative_off_by_a_tenth_of_a_percent():
    report = check_op(exp_with(lambda x, out: (1.001 * out,)), order=1)
    assert not report.ok
    assert "order 1 derivative d/dx0" in report.message


def test_the_checker_catches_a_second_derivative_off_by_a_tenth_of_a_percent():
    # exactly right at first order (out - float(out) is zero), 0.1% off at second order
    report = check_op(exp_with(lambda x, out: (out + 0.001 * (out - float(out)),)))
    assert report.errors[0] <= 1
    assert not report.ok
    assert "order 2 derivative" in report.message


def test_the_checker_reports_nan_as_failure():
    report = check_op(exp_with(lambda x, out: (math.nan,)), order=1)
    assert not report.ok and report.errors[0] == math.inf


def test_the_checker_samples_binary_ops_in_their_domain():
    wrong = OpSpec(
        name="mymul",
        arity=2,
        forward=lambda a, b: a * b,
        gradient=lambda a, b, out: (b, a * 1.001),
        domain=((1.0, 2.0), (3.0, 4.0)),
    )
    report = check_op(wrong)
    assert not report.ok and "d/dx1" in report.message
