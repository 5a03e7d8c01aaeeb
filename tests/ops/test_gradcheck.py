import math

import pytest

import mingrad_core
from mingrad_core import OpSpec
from mingrad_ops import check_op


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


@pytest.mark.parametrize(
    "gradient, error",
    [
        (lambda x, out: (out, out), "2 term(s)"),
        (lambda x, out: out, ""),  # a bare value, not a tuple
        (lambda x, out: ("one",), ""),
        (lambda x, out: (None,), ""),
        (lambda x, out: (1j,), ""),
        (lambda x, out: 1 / 0, "ZeroDivisionError"),
    ],
)
def test_a_raising_or_malformed_gradient_is_a_failed_report_not_an_error(gradient, error):
    report = check_op(exp_with(gradient))
    assert not report.ok and report.errors == (math.inf, math.inf)
    assert report.message.startswith("op 'myexp': at x=[") and error in report.message


def test_a_raising_forward_is_a_failed_report():
    def forward(x):
        raise ValueError("no forward today")

    report = check_op(OpSpec(name="broken", arity=1, forward=forward, gradient=lambda x, out: (1,)))
    assert not report.ok and "ValueError: no forward today" in report.message


def test_a_raising_second_derivative_keeps_the_first_orders_error():
    def gradient(x, out):
        if not isinstance(x, float):
            raise TypeError("floats only")
        return (out,)

    report = check_op(exp_with(gradient))
    assert not report.ok and report.errors[0] <= 1 and report.errors[1] == math.inf
    assert "TypeError: floats only" in report.message


@pytest.mark.parametrize("samples, order", [(0, 2), (-1, 1), (5, 3), (5, 0)])
def test_the_checker_refuses_to_check_nothing(samples, order):
    with pytest.raises(ValueError, match=f"samples >= 1 and order 1 or 2; got samples={samples}"):
        check_op("tanh", samples=samples, order=order)


def test_the_checker_catches_a_one_hot_gradient_on_the_wrong_input():
    from mingrad_ops import select

    def shifted(i, *xs_out):  # 1 for the input after the one picked
        terms = list(select.pick_gradient(i, *xs_out))
        return (0.0, *terms[-1:], *terms[1:-1])

    wrong = OpSpec(
        name="mypick", arity=2, variadic=True, forward=select.pick, gradient=shifted,
        domain=select.PICK_DOMAIN,
    )  # fmt: skip
    report = check_op(wrong, order=1)
    assert not report.ok and "d/dx1" in report.message


def test_the_checker_catches_a_softmax_gradient_off_by_a_tenth_of_a_percent():
    from mingrad_ops import logsumexp

    def off(*xs_out):
        first, *rest = logsumexp.logsumexp_gradient(*xs_out)
        return (first * 1.001, *rest)

    wrong = OpSpec(name="mylse", arity=1, variadic=True, forward=logsumexp.logsumexp, gradient=off)
    report = check_op(wrong, order=1)
    assert not report.ok and "d/dx0" in report.message
    assert check_op("logsumexp").ok
