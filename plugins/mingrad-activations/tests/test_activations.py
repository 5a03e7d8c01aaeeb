import math

import autograd
import autograd.numpy as anp
import pytest

from mingrad_core import Scalar, functional, grad, origin_of
from mingrad_nn import MLP
from mingrad_ops import check_op
from mingrad_viz import draw_graph

ORACLES = {
    "sigmoid": lambda x: 1 / (1 + anp.exp(-x)),
    "silu": lambda x: x / (1 + anp.exp(-x)),
    "gelu": lambda x: 0.5 * x * (1 + anp.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x**3))),
    "softplus": lambda x: anp.log(1 + anp.exp(x)),
    "leaky_relu": lambda x: anp.where(x > 0, x, 0.01 * x),
    "elu": lambda x: anp.where(x > 0, x, anp.exp(x) - 1),
}


@pytest.mark.parametrize("name", ORACLES)
def test_found_through_the_installed_entry_point(name):
    assert origin_of(name)[:2] == ("activations", "mingrad-activations")


@pytest.mark.parametrize("name", ORACLES)
@pytest.mark.parametrize("at", [-1.7, -0.3, 0.4, 2.2])
def test_values_and_two_derivatives_match_the_oracle(name, at):
    x = Scalar(at)
    y = getattr(x, name)()
    (d1,) = grad(y, x, create_graph=True)
    (d2,) = grad(d1, x)
    f = ORACLES[name]
    assert y.data == pytest.approx(float(f(at)), rel=1e-12)
    assert d1.data == pytest.approx(autograd.grad(f)(at), rel=1e-9)
    assert d2 == pytest.approx(autograd.grad(autograd.grad(f))(at), rel=1e-9, abs=1e-12)


@pytest.mark.parametrize("name", ORACLES)
def test_the_gradient_checker_passes(name):
    report = check_op(name, samples=20)
    assert report.ok, report.message


def test_stable_at_large_inputs():
    assert functional.softplus(1000.0) == 1000.0
    assert functional.softplus(-1000.0) == 0.0
    assert functional.sigmoid(-1000.0) == 0.0 and functional.sigmoid(1000.0) == 1.0
    assert functional.silu(-1000.0) == -0.0
    x = Scalar(800.0)
    y = x.softplus()
    y.backward()
    assert (y.data, x.grad) == (800.0, 1.0)


def test_derivatives_at_zero_follow_the_documented_choice():
    for name, expected in [("leaky_relu", 0.01), ("elu", 1.0)]:
        x = Scalar(0.0)
        getattr(x, name)().backward()
        assert x.grad == expected


def test_usable_as_methods_functions_activations_and_in_drawings():
    x = Scalar(0.5)
    assert x.gelu().data == functional.gelu(x).data == functional.gelu(0.5)
    model = MLP(2, [3, 1], activation="gelu", seed=0)
    out = model([1.0, -1.0])
    assert model.layers[0].neurons[0]([1.0, -1.0]).op.name == "gelu"
    out.backward()
    assert "GELU" in draw_graph(out).source
    assert "σ" in draw_graph(x.sigmoid()).source
