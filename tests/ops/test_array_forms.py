"""The built-in ops' array forms give their scalar forms' values, and the checker proves it."""

import math
import re
import sys

import numpy as np
import pytest

from mingrad.cli import main
from mingrad_core import OpSpec, Scalar, get_op, grad, register_op
from mingrad_core import Scalar as S
from mingrad_jit import jit
from mingrad_jit.arrays import array_forms
from mingrad_ops import check_op, numpy_form
from mingrad_ops.formcheck import EDGES, ULPS, ZERO_CROSSING_ABS, check_array_forms, ulps_apart

PRIMITIVES = [
    "add",
    "sub",
    "mul",
    "div",
    "neg",
    "abs",
    "pow",
    "relu",
    "tanh",
    "exp",
    "log",
    "linear",
    "where",
    "pick",
    "logsumexp",
]
# no C library call: bitwise on any machine
ARITHMETIC = ["add", "sub", "mul", "div", "neg", "abs", "relu", "linear", "where", "pick"]
INF, NAN = math.inf, math.nan


def a(*values):
    return np.array(values, dtype=np.float64)


@pytest.mark.parametrize("name", PRIMITIVES)
def test_each_primitive_declares_both_array_forms(name):
    spec = get_op(name)
    assert spec.array_forward is not None and spec.array_gradient is not None


@pytest.mark.parametrize("name", PRIMITIVES)
def test_array_forms_equal_the_scalar_forms_at_random_and_edge_points(name):
    report = check_array_forms(name, samples=200, seed=1)
    assert report.ok, report.message
    assert len(report.errors) == 2
    if name in ARITHMETIC:
        assert report.errors == (0.0, 0.0), report.message


@pytest.mark.parametrize("name", ["mish"])
def test_composites_have_no_array_forms_of_their_own(name):
    report = check_array_forms(name)
    assert report.ok and report.errors == () and "composite" in report.message
    with pytest.raises(ValueError, match=f"op '{name}' is a composite"):
        array_forms(name)


def forms(name):
    return array_forms(name)


def test_the_documented_edge_cases_hold_in_the_array_forms():
    relu, relu_grad = forms("relu")
    assert relu(a(0.0, -0.0, -1.0, NAN, INF)).tolist()[:3] == [0.0, 0.0, 0.0]
    assert relu_grad(a(0.0, -0.0, 1e-300), a(0.0, 0.0, 1e-300))[0].tolist() == [0.0, 0.0, 1.0]
    power, power_grad = forms("pow")
    x, e = a(0.0, 0.0, -0.0, 2.0, -1e300, -10.0, -8.0), a(0.0, -1.0, -1.0, 0.0, 2.5, 400.5, 1 / 3)
    out = power(x, e)
    assert out[:4].tolist() == [1.0, INF, -INF, 1.0]
    assert np.isnan(out[4:]).all()  # a negative base to a fractional power
    da, db = power_grad(x[:1], e[:1], out[:1])
    assert (da[0], db[0]) == (0.0, 0.0)  # d(x**0)/dx is 0 at 0 too; d(0**b)/db is 0 for b >= 0
    log, log_grad = forms("log")
    values = log(a(0.0, -1.0, NAN, INF))
    assert values[0] == -INF and np.isnan(values[1]) and np.isnan(values[2]) and values[3] == INF
    assert log_grad(a(0.0, -0.0), values[:2])[0].tolist() == [INF, -INF]
    exp, _ = forms("exp")
    assert exp(a(1000.0, -INF)).tolist() == [INF, 0.0]
    for name in ["add", "mul", "pow", "tanh", "exp", "log"]:
        forward, _ = forms(name)
        arity = get_op(name).arity
        assert np.isnan(forward(*[a(NAN)] * arity)).all(), name


def test_tanh_is_bitwise_math_tanh_across_its_formula_changes():
    x = np.concatenate([np.linspace(-30, 30, 20001), a(2**-55, -(2**-56), 1.0, 22.0, 1e-300)])
    forward, _ = forms("tanh")
    expected = a(*map(math.tanh, x.tolist()))
    # numpy's own SIMD tanh on some CPUs: the numeric policy, not bitwise (formcheck).
    assert ulps_apart(forward(x), expected).max() <= ULPS


def test_linear_adds_left_to_right_even_for_one_node_of_33_inputs():
    rng = np.random.default_rng(0)
    for m in (1, 7):
        block = rng.normal(size=(33, m)) * 10.0 ** rng.integers(-8, 8, size=(33, 1))
        forward, gradient = forms("linear")
        expected = [get_op("linear").forward(*column) for column in block.T.tolist()]
        assert forward(block).tolist() == expected
        terms = gradient(block, forward(block))
        assert terms.shape == (33, m)
        assert terms[0].tolist() == [1.0] * m and (terms[1:17] == block[17:]).all()


def test_linear_refuses_a_block_without_pairs():
    forward, _ = forms("linear")
    with pytest.raises(TypeError, match="linear takes a bias, n weights and n inputs; got 2 rows"):
        forward(np.ones((2, 3)))


def test_forms_do_not_warn_at_special_values():
    with np.errstate(divide="raise", over="raise", invalid="raise"):  # numpy's warnings, raised
        for name in PRIMITIVES:
            forward, gradient = forms(name)
            spec = get_op(name)
            xs = [a(*EDGES)] * (3 if spec.variadic else spec.arity)
            if name == "pick":  # its first input is an index: 0 or 1 of the two values
                xs = [np.arange(len(EDGES)) % 2.0, a(*EDGES), a(*EDGES)]
            out = forward(np.stack(xs)) if spec.variadic else forward(*xs)
            gradient(np.stack(xs), out) if spec.variadic else gradient(*xs, out)


def relu_spec(**arrays):
    scalar = get_op("relu")
    return OpSpec(
        name="myrelu", arity=1, forward=scalar.forward, gradient=scalar.gradient, **arrays
    )


def test_the_checker_catches_a_wrong_kink_convention():
    report = check_array_forms(
        relu_spec(
            array_forward=lambda x: np.where(x <= 0, 0.0, x),
            array_gradient=lambda x, out: (np.where(x >= 0, 1.0, 0.0),),  # relu'(0) = 1
        )
    )
    assert not report.ok
    assert report.message.startswith("op 'myrelu': array gradient d/dx0 at x=0.0: array 1.0")
    assert "scalar 0.0" in report.message


def test_the_checker_catches_nan_where_the_scalar_form_gives_a_number():
    report = check_array_forms(
        relu_spec(
            array_forward=lambda x: np.where(np.isinf(x), np.nan, np.where(x <= 0, 0.0, x)),
            array_gradient=lambda x, out: (np.where(x > 0, 1.0, 0.0),),
        )
    )
    assert not report.ok and report.errors[0] == INF
    assert report.message == (
        "op 'myrelu': array forward at x=inf: array nan, scalar inf (inf ulps apart; "
        "the tolerance is 16, or 3.6e-15 near a zero crossing, or 16 epsilons times the value's "
        "sensitivity to its inputs)"
    )


def test_the_checker_measures_ulps_and_allows_only_the_tolerance():
    exp = get_op("exp")

    def off_by(n):
        def forward(x):
            with np.errstate(all="ignore"):
                out = np.exp(x)
            for _ in range(n):
                out = np.nextafter(out, INF)
            return out

        return OpSpec(name="myexp", arity=1, forward=exp.forward, gradient=exp.gradient,
                      array_forward=forward, array_gradient=exp.array_gradient)  # fmt: skip

    one = check_array_forms(off_by(1))
    assert one.ok and one.errors[0] == 1.0 and "within 1 ulps" in one.message
    many = check_array_forms(off_by(17))
    assert not many.ok and "17 ulps apart; the tolerance is 16" in many.message
    assert check_array_forms(off_by(17), ulps=17).ok


def test_the_checker_catches_a_form_that_warns_or_has_the_wrong_shape():
    warns = relu_spec(array_forward=lambda x: np.log(np.exp(x)) * 0 + np.where(x <= 0, 0.0, x))
    report = check_array_forms(warns)
    assert not report.ok and "RuntimeWarning" in report.message and "errstate" in report.message
    short = relu_spec(array_forward=lambda x: x[:-1])
    message = check_array_forms(short).message
    assert re.search(r"array forward of op 'myrelu' returned shape \((\d+),\) for (?!\1)", message)
    count = relu_spec(array_gradient=lambda x, out: (1.0, 1.0))
    message = check_array_forms(count).message
    assert "array gradient of op 'myrelu' returned 2 items for 1 input(s)" in message
    bare = relu_spec(array_gradient=lambda x, out: np.where(x > 0, 1.0, 0.0))
    message = check_array_forms(bare).message
    assert "array gradient of op 'myrelu' returned ndarray; expected a tuple" in message


def test_an_op_without_array_forms_is_looped_with_the_same_values():
    spec = register_op(
        name="cube", arity=1, forward=lambda x: x * x * x, gradient=lambda x, out: (3 * x * x,)
    )
    forward, gradient = array_forms(spec)
    x = a(-2.0, 0.5, 3.0)
    assert forward(x).tolist() == [-8.0, 0.125, 27.0]
    (dx,) = gradient(x, forward(x))
    assert dx.tolist() == [12.0, 0.75, 27.0]
    assert forward(a()).shape == (0,) and gradient(a(), a())[0].shape == (0,)
    report = check_array_forms("cube")
    assert report.ok and report.errors == () and "looped" in report.message


def test_a_variadic_op_without_array_forms_is_looped_over_columns():
    spec = register_op(
        name="total", arity=1, variadic=True, forward=lambda *xs: sum(xs),
        gradient=lambda *xs_out: (1.0,) * (len(xs_out) - 1),
    )  # fmt: skip
    forward, gradient = array_forms(spec)
    block = a(1.0, 2.0, 3.0, 4.0, 5.0, 6.0).reshape(3, 2)
    assert forward(block).tolist() == [9.0, 12.0]
    assert gradient(block, forward(block)).tolist() == [[1.0, 1.0]] * 3
    assert check_array_forms(spec).ok


def test_the_loop_names_the_op_when_its_scalar_forms_misbehave():
    spec = OpSpec(name="odd", arity=1, forward=lambda x: complex(x, 1),
                  gradient=lambda x, out: (1.0, 2.0))  # fmt: skip
    forward, gradient = array_forms(spec)
    with pytest.raises(TypeError, match="the forward of op 'odd' returned complex"):
        forward(a(1.0))
    with pytest.raises(ValueError, match=r"gradient of op 'odd' returned 2 term\(s\) for 1 input"):
        gradient(a(1.0), a(1.0))


def test_points_where_the_scalar_form_raises_are_skipped_and_counted():
    forms = {
        "array_forward": numpy_form(lambda np, x: 1 / x),
        "array_gradient": numpy_form(lambda np, x, out: (-1 / (x * x),)),
    }
    spec = OpSpec(name="inverse", arity=1, forward=lambda x: 1 / x,
                  gradient=lambda x, out: (-1 / (x * x),), **forms)  # fmt: skip
    report = check_array_forms(spec)
    assert report.ok and "skipped where the scalar forms raise" in report.message
    assert "ZeroDivisionError at x=0.0" in report.message
    never = OpSpec(name="never", arity=1, forward=lambda x: 1 / 0, gradient=lambda x, out: (0,),
                   **forms)  # fmt: skip
    report = check_array_forms(never)
    assert not report.ok and "raise at every point" in report.message


def test_ulps_apart():
    one = np.nextafter(1.0, 2.0)
    got = ulps_apart(
        a(1.0, 1.0, 0.0, NAN, NAN, INF, INF, -INF, 5e-324),
        a(1.0, one, -0.0, NAN, 1.0, INF, sys.float_info.max, INF, -5e-324),
    )
    assert got.tolist() == [0.0, 1.0, 1.0, 0.0, INF, 0.0, INF, INF, 3.0]


def test_samples_must_be_positive():
    with pytest.raises(ValueError, match="samples must be at least 1; got 0"):
        check_array_forms("relu", samples=0)


def test_negative_base_to_a_fractional_power_is_nan_even_when_huge():
    for base, exponent in [(-1e300, 2.5), (-10.0, 400.5), (-1e-300, -2.5)]:
        x = Scalar(base)
        y = x**exponent
        assert math.isnan(y.data), (base, exponent)
        (dx,) = grad(y, x)
        assert math.isnan(dx)
    assert (Scalar(-10.0) ** 401).data == -INF and (Scalar(-1e300) ** 2).data == INF


def test_ops_lists_which_ops_have_array_forms(capsys):
    register_op(name="cube", arity=1, forward=lambda x: x**3, gradient=lambda x, out: (3 * x * x,))
    assert main(["ops"]) == 0
    lines = capsys.readouterr().out.splitlines()
    column = lines[0].index("array forms")
    cell = {line.split()[0]: line[column:].split("  ")[0].strip() for line in lines[1:] if line}
    assert cell["relu"] == cell["gelu"] == "yes"
    assert cell["cube"] == "looped" and cell["div"] == "yes" and cell["mish"] == "composite"


def test_check_reports_array_forms_and_fails_on_a_mismatch(capsys):
    register_op(name="cube", arity=1, forward=lambda x: x**3, gradient=lambda x, out: (3 * x * x,))
    assert main(["check", "relu", "cube", "mish"]) == 0
    out = capsys.readouterr().out
    rows = {line.split()[0]: line.split() for line in out.splitlines()[1:4]}
    assert rows["relu"][3:] == ["bitwise", "ok"]
    assert rows["cube"][3:] == ["looped", "ok"] and rows["mish"][3:] == ["composite", "ok"]
    register_op(relu_spec(array_gradient=lambda x, out: (np.where(x >= 0, 1.0, 0.0),)))
    assert main(["check", "myrelu", "relu"]) == 1
    out = capsys.readouterr().out
    assert "FAILED op 'myrelu': array gradient d/dx0 at x=0.0: array 1.0, scalar 0.0" in out
    assert [line.split()[3:] for line in out.splitlines()[1:3]] == [
        ["FAILED", "FAILED"],
        ["bitwise", "ok"],
    ]
    assert "1 passed, 1 failed" in out


def twice_spec(name="twice", forward=None, gradient=None):
    """x -> 2x, with the array forms given (default: right ones)."""
    return OpSpec(
        name=name, arity=1, forward=lambda x: 2.0 * x, gradient=lambda x, out: (2.0,),
        array_forward=forward or (lambda x: 2.0 * x),
        array_gradient=gradient or (lambda x, out: (np.full_like(x, 2.0),)),
    )  # fmt: skip


def jit_twice_sum(name, n=4):
    """A parameter per input, each times ``name(x)``; the value and the parameters' grads."""
    params = [S(0.5 + i) for i in range(n)]

    @jit(strategy="levels")
    def f(xs):
        return sum(getattr(p, name)() * x for x, p in zip(xs, params))

    result = f([float(i) for i in range(n)])
    result.backward()
    return result.data, [p.grad for p in params]


def test_an_array_form_that_writes_into_its_input_is_an_error_naming_the_op():
    spec = twice_spec("inplace", forward=lambda x: np.multiply(x, 2, out=x))
    report = check_array_forms(spec)
    assert not report.ok and "writes into its input arrays" in report.message
    assert "np.multiply(x, 2, out=x)" in report.message
    assert not check_op(spec).ok and "writes into its input" in check_op(spec).message
    register_op(spec)
    with pytest.raises(ValueError, match="array forward of op 'inplace'.*writes into its input"):
        jit_twice_sum("inplace")


@pytest.mark.parametrize(
    "forward, gradient, message",
    [
        (lambda x: x[:1] * 2.0, None, r"array forward of op 'bad' .*shape \(1,\) for 4 node"),
        (lambda x: np.float64(2.0), None, r"array forward of op 'bad' .*shape \(\) for 4 node"),
        (None, lambda x, out: (np.full(1, 2.0),), r"array gradient .*shape \(1,\) for 4 node"),
        (lambda x: (2 * x).astype(complex), None, "returned complex128 values"),
    ],
)
def test_a_replay_checks_what_an_array_form_returns_naming_the_op(forward, gradient, message):
    register_op(twice_spec("bad", forward, gradient))
    with pytest.raises(TypeError, match=message):
        jit_twice_sum("bad")


@pytest.mark.parametrize(
    "forward, gradient",
    [
        (lambda x: (2 * x).astype(np.float32), lambda x, out: (np.full(len(x), 2, np.float32),)),
        (lambda x: (2 * x).astype(np.int64), lambda x, out: (np.full(len(x), 2),)),
        (None, lambda x, out: (np.float32(2.0),)),
    ],
)
def test_float32_and_int_results_are_converted_to_floats(forward, gradient):
    register_op(twice_spec("narrow", forward, gradient))
    register_op(twice_spec("wide"))
    value, grads = jit_twice_sum("narrow")
    assert (value, grads) == jit_twice_sum("wide")
    assert all(type(g) is float for g in grads)
    _, array_gradient = array_forms("narrow")
    for _ in range(2):  # checked on the first call, converted on every call
        (term,) = array_gradient(a(1.0, 2.0), a(2.0, 4.0))
        assert term.dtype == np.float64


def test_check_op_checks_the_array_forms_too():
    wrong_kink = relu_spec(
        array_forward=lambda x: np.where(x <= 0, 0.0, x),
        array_gradient=lambda x, out: (np.where(x >= 0, 1.0, 0.0),),
    )
    report = check_op(wrong_kink)
    assert not report.ok and "array gradient d/dx0 at x=0.0" in report.message
    right = check_op("tanh")
    assert right.ok and len(right.ulps) == 2 and max(right.ulps) <= ULPS
    assert check_op("mish").ulps == ()  # a composite: nothing to compare


def shifted(name, forward_scalar, forward_array, offset, **extra):
    """An op whose array forward is ``forward_array`` plus ``offset``."""
    return OpSpec(
        name=name, arity=1, forward=forward_scalar, gradient=lambda x, out: (1.0,),
        array_forward=numpy_form(lambda np, x: forward_array(np, x) + offset(np, x)),
        array_gradient=lambda x, out: (np.ones_like(x),), **extra,
    )  # fmt: skip


def test_the_policy_allows_an_error_within_16_epsilons_of_the_values_sensitivity():
    # silu's gradient 4.5% from its zero crossing near -1.2785 (outside the 2**-6 window),
    # 5.4e-17 off: 31 ulps of 0.013, as numpy's AVX-512 exp makes it. Moving x by 16 epsilons
    # (relatively) moves that value by about 1e-15: within the policy.
    silu = get_op("silu")

    def simd_like(at, bump):
        def off(x, out):
            near = np.abs(x - at) < 1e-4
            return (silu.array_gradient(x, out)[0] + np.where(near, bump, 0.0),)

        return OpSpec(name="silu_simd", arity=1, forward=silu.forward, gradient=silu.gradient,
                      array_forward=silu.array_forward, array_gradient=off,
                      domain=((at - 5e-5, at + 5e-5),))  # fmt: skip

    near_crossing = simd_like(-1.2209582651656312, 5.4e-17)
    report = check_array_forms(near_crossing)
    assert report.ok, report.message
    x = a(-1.2209582651656312)
    assert ulps_apart(near_crossing.array_gradient(x, silu.array_forward(x))[0],
                      silu.array_gradient(x, silu.array_forward(x))[0])[0] > ULPS  # fmt: skip
    # At x = 2 the same gradient is 1.09 and hardly moves with x: 40 ulps there fail.
    report = check_array_forms(simd_like(2.0, 40 * np.spacing(1.09)))
    assert not report.ok
    assert re.search(r"\(40 ulps apart; .* sensitivity to its inputs \(0\.\d+ here\)\)$",
                     report.message), report.message  # fmt: skip


def test_the_policy_allows_an_absolute_error_only_near_a_zero_crossing():
    # x - 1 crosses zero at 1.0: 2e-15 off there is within the absolute bound.
    bump = ZERO_CROSSING_ABS / 2

    def near(np, x, centre):
        return np.where(np.abs(x - centre) < 1e-3, bump, 0.0)

    crossing = shifted("minus_one", lambda x: x - 1.0, lambda np, x: x - 1.0,
                       lambda np, x: near(np, x, 1.0))  # fmt: skip
    assert check_array_forms(crossing).ok
    # gelu's gradient 2.5e-3 from its zero crossing near -0.7518, 1.8e-15 off (thousands of
    # ulps), as numpy's AVX-512 exp makes it: within the policy.
    gelu = get_op("gelu")

    def off(x, out):
        return (gelu.array_gradient(x, out)[0] + np.where(np.abs(x + 0.7493) < 1e-3, 1.8e-15, 0),)

    simd = OpSpec(name="gelu_simd", arity=1, forward=gelu.forward, gradient=gelu.gradient,
                  array_forward=gelu.array_forward, array_gradient=off,
                  domain=((-0.7494, -0.7492),))  # fmt: skip
    report = check_array_forms(simd)
    assert report.ok, report.message
    assert ulps_apart(simd.array_gradient(a(-0.7493), a(0.0))[0],
                      gelu.array_gradient(a(-0.7493), a(0.0))[0])[0] > 4096  # fmt: skip

    # exp(x) - 1e-18 never crosses zero near x = -40: the same absolute error is a failure.
    def exp_tiny(x):
        return math.exp(x) if x < 700 else INF

    away = shifted("exp_away", exp_tiny, lambda np, x: np.exp(x),
                   lambda np, x: near(np, x, -40.0), domain=((-40.0005, -39.9995),))  # fmt: skip
    report = check_array_forms(away)
    assert not report.ok and re.match(
        r"op 'exp_away': array forward at x=-(40|39)\.", report.message
    )
