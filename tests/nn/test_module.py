import random

import autograd
import autograd.numpy as anp
import numpy as np
import pytest

from mingrad_core import Scalar, register_op
from mingrad_nn import MLP, Layer, Neuron


def test_the_seed_architecture_has_337_parameters():
    assert len(MLP(2, [16, 16, 1]).parameters()) == 337


def test_layer_always_returns_a_list_and_mlp_a_scalar_for_one_output():
    assert isinstance(Layer(2, 1)([1.0, 2.0]), list)
    assert isinstance(MLP(2, [3, 1])([1.0, 2.0]), Scalar)
    out = MLP(2, [3, 2])([1.0, 2.0])
    assert isinstance(out, list) and len(out) == 2


def test_initialisation_is_reproducible_from_a_seed_or_a_random():
    values = lambda m: [p.data for p in m.parameters()]  # noqa: E731
    assert values(MLP(2, [4, 1], seed=7)) == values(MLP(2, [4, 1], seed=7))
    assert values(MLP(2, [4, 1], seed=7)) != values(MLP(2, [4, 1], seed=8))
    assert values(MLP(2, [4, 1], seed=random.Random(3))) == values(MLP(2, [4, 1], seed=3))


def test_unknown_activation_fails_at_construction_listing_the_choices():
    with pytest.raises(
        ValueError, match="unknown activation 'nothing'.*: .*exp, .*log, .*neg, relu"
    ):
        MLP(2, [3, 1], activation="nothing")
    with pytest.raises(ValueError, match="unknown activation 'add'"):  # two inputs: not one
        Neuron(2, activation="add")


def test_any_registered_one_input_op_is_an_activation():
    register_op(name="square", arity=1, forward=lambda x: x * x, gradient=lambda x, out: (2 * x,))
    model = MLP(1, [1, 1], activation="square", seed=0)
    assert model.layers[0].neurons[0]([2.0]).op.name == "square"


def test_bad_sizes_and_inputs_are_reported():
    with pytest.raises(ValueError, match="positive number of inputs; got 0"):
        Neuron(0)
    with pytest.raises(ValueError, match="at least one layer"):
        MLP(2, [])
    with pytest.raises(ValueError, match="takes 2 inputs; got 3"):
        MLP(2, [1])([1.0, 2.0, 3.0])


def test_repr_is_readable():
    assert repr(MLP(2, [16, 16, 1])) == (
        "MLP(nin=2, nouts=[16, 16, 1], activation='relu', parameters=337)"
    )
    assert repr(Layer(2, 3, "tanh")) == "Layer(nin=2, nout=3, activation='tanh')"
    assert repr(Neuron(2, None)) == "Neuron(nin=2, activation=None)"


def oracle_mlp(flat, x, sizes, act):
    """The same MLP in autograd.numpy, from the flat parameter list (weights, then bias)."""
    i = 0
    for layer, (nin, nout) in enumerate(zip(sizes, sizes[1:])):
        outs = []
        for _ in range(nout):
            w, b = flat[i : i + nin], flat[i + nin]
            i += nin + 1
            z = anp.sum(w * anp.array(x)) + b
            outs.append(act(z) if layer < len(sizes) - 2 else z)
        x = outs
    return anp.sum(anp.array(x))


@pytest.mark.parametrize(
    "activation, act", [("relu", lambda z: anp.maximum(z, 0.0)), ("tanh", anp.tanh)]
)
def test_mlp_forward_and_backward_match_the_oracle(activation, act):
    sizes = [3, 4, 4, 2]
    model = MLP(3, sizes[1:], activation=activation, seed=1)
    rng = random.Random(2)
    for p in model.parameters():  # away from relu's kink, which the oracle treats differently
        p.data = rng.uniform(-1, 1)
    x = [0.5, -1.2, 0.8]
    out = sum(model(x))
    out.backward()
    flat = anp.array([p.data for p in model.parameters()])
    assert out.data == pytest.approx(oracle_mlp(flat, x, sizes, act), rel=1e-12)
    expected = autograd.grad(oracle_mlp)(flat, x, sizes, act)
    assert [p.grad for p in model.parameters()] == pytest.approx(list(expected), rel=1e-12)


def test_zero_grad_clears_every_parameter():
    model = MLP(2, [3, 1], seed=0)
    model([1.0, 2.0]).backward()
    assert any(p.grad != 0 for p in model.parameters())
    model.zero_grad()
    assert all(p.grad == 0 for p in model.parameters())


def test_the_seed_training_loop_runs_unchanged():
    model = MLP(2, [16, 16, 1], seed=0)
    X, y = [[0.0, 1.0], [1.0, 0.0], [1.0, 1.0], [0.0, 0.0]], [1, -1, 1, -1]
    losses = []
    for k in range(20):
        scores = list(map(model, [list(map(Scalar, row)) for row in X]))
        loss = sum((1 + -yi * s).relu() for yi, s in zip(y, scores)) * (1.0 / len(y))
        model.zero_grad()
        loss.backward()
        lr = 1.0 - 0.9 * k / 100
        for p in model.parameters():
            p.data -= lr * p.grad
        losses.append(loss.data)
    assert losses[-1] < losses[0] * 0.5


def test_a_neuron_is_one_linear_node_and_its_activation():
    neuron = Neuron(3, seed=0)
    x = [Scalar(1.0), Scalar(2.0), Scalar(3.0)]
    out = neuron(x)
    (pre,) = out.parents
    assert out.op.name == "relu" and pre.op.name == "linear"
    assert pre.parents == (neuron.b, *neuron.w, *x)


def test_parameters_are_named_for_drawings():
    neuron = Neuron(2, seed=0)
    assert [p.name for p in neuron.parameters()] == ["w1", "w2", "b"]


def test_a_layers_parameters_name_their_neuron():
    layer = Layer(2, 3, seed=0)
    names = [p.name for p in layer.parameters()]
    assert names[:3] == ["N1.w1", "N1.w2", "N1.b"] and names[-1] == "N3.b"
    assert len(set(names)) == len(names)


def test_an_mlps_parameter_names_are_unique_and_say_layer_and_neuron():
    model = MLP(2, [4, 4, 1], seed=0)
    names = [p.name for p in model.parameters()]
    assert len(set(names)) == len(names) == len(model.parameters())
    assert names[0] == "L1.N1.w1"
    assert "L2.N3.w4" in names and names[-1] == "L3.N1.b"
    assert max(map(len, names)) <= len("L3.N1.w4")  # short enough to draw


@pytest.mark.parametrize(
    "nouts, error",
    [
        (3, TypeError),
        ("16", TypeError),
        (None, TypeError),
        ([16, 1.5], TypeError),
        ([True], TypeError),
        ([], ValueError),
        ([16, 0], ValueError),
    ],
)
def test_layer_sizes_must_be_a_list_of_positive_ints(nouts, error):
    with pytest.raises(error) as caught:
        MLP(2, nouts)
    assert str(caught.value) == (
        "an MLP's nouts lists its layer sizes: at least one layer, each a positive int, such "
        f"as [16, 16, 1]; got {type(nouts).__name__} {nouts!r}"
    )


def test_layer_sizes_may_be_any_sequence_of_integers():
    model = MLP(2, (np.int64(3), 1))
    assert model.nouts == [3, 1] and type(model.nouts[0]) is int


def test_activation_none_makes_every_layer_linear():
    model = MLP(2, [3, 1], activation=None, seed=0)
    assert {neuron.activation for layer in model.layers for neuron in layer.neurons} == {None}
    assert repr(model) == "MLP(nin=2, nouts=[3, 1], activation=None, parameters=13)"
