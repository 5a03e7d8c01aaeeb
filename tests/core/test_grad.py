import autograd
import autograd.numpy as anp
import pytest

from mingrad_core import Scalar, grad

# Each built-in op, as MinGrad computes it and as the oracle (HIPS autograd) does.
UNARY = {
    "relu": (lambda x: x.relu(), lambda x: anp.maximum(x, 0.0), 0.7),
    "tanh": (lambda x: x.tanh(), anp.tanh, 0.4),
    "exp": (lambda x: x.exp(), anp.exp, 0.3),
    "log": (lambda x: x.log(), anp.log, 1.7),
    "pow_int": (lambda x: x**3, lambda x: x**3, -1.3),
    "pow_float": (lambda x: x**2.5, lambda x: x**2.5, 1.3),
    "neg": (lambda x: -x, lambda x: -x, 0.9),
    "rsub": (lambda x: 2 - x, lambda x: 2 - x, 0.9),
    "rdiv": (lambda x: 2 / x, lambda x: 2 / x, 0.9),
    "rpow": (lambda x: 2.0**x, lambda x: 2.0**x, 0.9),
    "product": (lambda x: x * x * x, lambda x: x * x * x, -0.8),
}


@pytest.mark.parametrize("name", UNARY)
def test_first_second_and_third_derivatives_match_the_oracle(name):
    ours, theirs, at = UNARY[name]
    x = Scalar(at)
    (d1,) = grad(ours(x), x, create_graph=True)
    (d2,) = grad(d1, x, create_graph=True)
    (d3,) = grad(d2, x)
    oracle = theirs
    for got in (d1.data, d2.data, d3):
        oracle = autograd.grad(oracle)
        assert got == pytest.approx(oracle(at), rel=1e-12, abs=1e-12)


@pytest.mark.parametrize("op", ["add", "mul", "sub", "div", "pow"])
def test_binary_second_derivatives_match_the_oracle(op):
    ours = {
        "add": lambda a, b: a + b,
        "mul": lambda a, b: a * b,
        "sub": lambda a, b: a - b,
        "div": lambda a, b: a / b,
        "pow": lambda a, b: a**b,
    }[op]
    point = (1.3, 0.7)
    xs = [Scalar(v) for v in point]
    first = grad(ours(*xs), xs, create_graph=True)
    for i in range(2):
        assert first[i].data == pytest.approx(autograd.grad(ours, i)(*point), rel=1e-12)
        second = grad(first[i], xs)
        for j in range(2):
            expected = autograd.grad(autograd.grad(ours, i), j)(*point)
            assert second[j] == pytest.approx(expected, rel=1e-12, abs=1e-12)


def test_grad_leaves_dot_grad_untouched():
    x = Scalar(1.5)
    y = x * x
    assert grad(y, x) == (3.0,)
    assert x.grad == 0.0 and y.grad == 0.0


def test_grad_of_several_outputs_sums_them_and_unrelated_inputs_get_zero():
    x, unused = Scalar(2.0), Scalar(9.0)
    assert grad([x * x, x * 3.0], [x, unused]) == (7.0, 0.0)
    (g,) = grad(x * 3.0, x, create_graph=True)
    assert isinstance(g, Scalar)
    assert grad(g, x) == (0.0,)


def test_grad_rejects_non_scalars():
    with pytest.raises(TypeError, match="inputs must be Scalars; got float"):
        grad(Scalar(1.0), [1.0])


def test_linear_matches_the_oracle_to_second_order():
    values = [0.3, -1.2, 0.7, 2.0, -0.4]  # b, w1, w2, x1, x2
    xs = [Scalar(v) for v in values]
    y = xs[0].linear(*xs[1:])
    assert y.data == pytest.approx(0.3 - 1.2 * 2.0 + 0.7 * -0.4)

    def f(b, w1, w2, x1, x2):
        return b + w1 * x1 + w2 * x2

    first = grad(y, xs, create_graph=True)
    for i in range(5):
        assert first[i].data == pytest.approx(autograd.grad(f, i)(*values))
        second = grad(first[i], xs)
        for j in range(5):
            assert second[j] == pytest.approx(autograd.grad(autograd.grad(f, i), j)(*values))


def test_linear_refuses_unpaired_weights_and_inputs():
    with pytest.raises(TypeError, match="linear takes a bias, n weights and n inputs"):
        Scalar(1.0).linear(Scalar(2.0))


def test_create_graph_sums_each_gradient_in_one_node():
    from mingrad_core import toposort

    x, a, b, c = (Scalar(v) for v in (0.5, 2.0, -3.0, 0.25))
    y = (x * a + x * b + x * c).tanh()
    (gx,) = grad(y, x, create_graph=True)
    (plain,) = grad(y, x)
    assert gx.data == plain  # the same number as first order, bit for bit
    # x's three uses meet in one linear node, not three products and two sums
    assert gx.op.name == "linear"
    assert len(gx.parents) == 7  # the start (-0.0), three terms, three upstreams
    built = {n for n in toposort(gx) if n.op is not None} - set(toposort(y))
    assert len(built) == 3  # tanh's term 1 - out*out (a mul, a sub) and the linear node
    (d2,) = grad(gx, x)
    oracle = autograd.grad(autograd.grad(lambda v: anp.tanh(v * 2.0 + v * -3.0 + v * 0.25)))
    assert d2 == pytest.approx(oracle(0.5), rel=1e-12)


def test_only_a_variadic_op_can_take_the_linear_role():
    from mingrad_core import OpRegistrationError, register_op

    with pytest.raises(OpRegistrationError, match="operator 'linear' needs a variadic op"):
        register_op(name="lin2", arity=2, operator="linear", forward=lambda a, b: a + b)
    with pytest.raises(OpRegistrationError, match="already bound to op 'linear'"):
        register_op(name="lin3", arity=1, variadic=True, operator="linear", forward=lambda *a: 0.0)
