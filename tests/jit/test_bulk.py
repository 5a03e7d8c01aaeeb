"""Bulk parameters: a model's values and gradients in one array per model, read and written by
the jit replays and the optimizers in bulk, while p.data and p.grad keep working."""

import copy
import pickle

import numpy as np
import pytest

from mingrad_core import Scalar
from mingrad_jit import jit, vmap
from mingrad_nn import MLP, SGD, Adam
from mingrad_nn.parameters import ParameterStore, store_of


def seed_loop(model, steps: int, lr: float = 0.1) -> list[float]:
    """The classic loop, unchanged: zero_grad, backward, p.data -= lr * p.grad."""
    X = [[0.5, -1.0], [1.5, 0.25], [-0.75, 2.0]]
    y = [1.0, -1.0, 1.0]
    losses = []
    for _ in range(steps):
        scores = [model(list(map(Scalar, x))) for x in X]
        loss = sum((1 + -t * s).relu() for s, t in zip(scores, y)) * (1.0 / len(y))
        model.zero_grad()
        loss.backward()
        for p in model.parameters():
            p.data -= lr * p.grad
        losses.append(loss.data)
    return losses


def in_bulk(model) -> MLP:
    """``model`` with its store moved into the arrays, as a jit replay moves it."""
    model.parameter_store.values  # noqa: B018 (reading the arrays moves it)
    return model


def test_one_store_per_model_holds_every_parameter_in_order_as_plain_scalars():
    model = MLP(3, [4, 2], seed=0)
    params = model.parameters()
    assert all(type(p) is Scalar for p in params)  # eager mode's fast paths see them
    assert [store_of(p) for p in params] == [(model.parameter_store, i) for i in range(len(params))]
    assert [p.name for p in params[:4]] == ["L1.N1.w1", "L1.N1.w2", "L1.N1.w3", "L1.N1.b"]
    assert store_of(Scalar(1.0)) is None


def test_the_classic_loop_gives_the_same_numbers_in_bulk_and_not():
    plain, bulk = MLP(2, [8, 8, 1], seed=1), in_bulk(MLP(2, [8, 8, 1], seed=1))
    assert not plain.parameter_store.in_bulk and bulk.parameter_store.in_bulk
    assert seed_loop(plain, 5) == seed_loop(bulk, 5)
    assert [p.data for p in plain.parameters()] == [p.data for p in bulk.parameters()]
    assert [p.grad for p in plain.parameters()] == [p.grad for p in bulk.parameters()]


def test_p_data_and_p_grad_are_views_of_the_arrays():
    model = in_bulk(MLP(2, [3], seed=0))
    p, store = model.parameters()[4], model.parameter_store
    p.data = 2.5
    p.grad = 0.75
    assert (store.values[4], store.grads[4]) == (2.5, 0.75)
    store.values[4] = -1.0
    store.grads[4] += 1.0
    assert (p.data, p.grad) == (-1.0, 1.75)
    p.grad = None  # frozen: kept aside, and zero_grad unfreezes as before
    assert p.grad is None and store.special == {4}
    model.zero_grad()
    assert p.grad == 0.0 and not store.special


@pytest.mark.parametrize("make", [lambda ps: SGD(ps, lr=0.1, momentum=0.9), lambda ps: Adam(ps)])
def test_optimizers_update_in_bulk_as_one_by_one(make):
    rng = np.random.default_rng(0)
    models = [MLP(2, [5, 1], seed=2), in_bulk(MLP(2, [5, 1], seed=2))]
    optimizers = [make(m.parameters()) for m in models]
    for _ in range(3):
        grads = rng.normal(size=len(models[0].parameters())).tolist()
        for model, optimizer in zip(models, optimizers):
            optimizer.zero_grad()
            for p, g in zip(model.parameters(), grads):
                p.grad += g
            optimizer.step()
    a, b = ([p.data for p in m.parameters()] for m in models)
    assert a == b and a != [p.data for p in MLP(2, [5, 1], seed=2).parameters()]


def test_a_jitted_step_reads_and_writes_the_arrays():
    model = MLP(2, [4, 1], seed=3)
    twin = MLP(2, [4, 1], seed=3)
    X = np.array([[0.5, 1.0], [-1.0, 0.25], [2.0, -0.5]])

    def sample(x):
        return model(list(map(Scalar, x))) ** 2

    loss_fn = jit(lambda X: sum(vmap(sample)(X)))
    optimizer = SGD(model.parameters(), lr=0.05)
    for _ in range(3):
        loss = loss_fn(X)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        eager = sum(twin(list(map(Scalar, x))) ** 2 for x in X.tolist())
        twin.zero_grad()
        eager.backward()
        for p in twin.parameters():
            p.data -= 0.05 * p.grad
        assert abs(loss.data - eager.data) < 1e-12
    assert model.parameter_store.in_bulk
    for p, q in zip(model.parameters(), twin.parameters()):
        assert abs(p.data - q.data) < 1e-12


def test_a_frozen_parameter_takes_no_gradient_from_a_replay():
    model = MLP(2, [2, 1], seed=0)
    loss_fn = jit(lambda X: sum(vmap(lambda x: model(list(map(Scalar, x))))(X)))
    loss = loss_fn([[1.0, 2.0], [0.5, -1.0]])
    frozen = model.parameters()[0]
    model.zero_grad()
    frozen.grad = None
    loss.backward()
    assert frozen.grad is None
    assert all(p.grad != 0.0 for p in model.parameters()[1:2])


def test_copies_and_pickles_of_parameters_in_bulk_are_independent():
    model = in_bulk(MLP(2, [3, 1], seed=0))
    twin = copy.deepcopy(model)
    assert [p.data for p in twin.parameters()] == [p.data for p in model.parameters()]
    twin.parameters()[0].data += 1.0
    assert twin.parameters()[0].data != model.parameters()[0].data
    assert seed_loop(twin, 2)  # trains
    store = pickle.loads(pickle.dumps(model.parameter_store))
    assert [p.data for p in store.parameters] == [p.data for p in model.parameters()]
    assert not store.in_bulk and all(type(p) is Scalar for p in store.parameters)
    assert [store_of(p)[1] for p in store.parameters] == list(range(len(store)))


def test_a_store_in_bulk_takes_no_new_parameters():
    store = ParameterStore()
    store.new(1.0)
    store.values  # noqa: B018
    with pytest.raises(RuntimeError, match="make a new store"):
        store.new(2.0)


def test_a_parameter_in_bulk_takes_values_as_any_scalar_does():
    model = in_bulk(MLP(2, [3], seed=0))
    p, plain = model.parameters()[0], Scalar(0.0)
    for q in (p, plain):
        q.data = 3  # an int is stored as a float
        assert q.data == 3.0 and type(q.data) is float
    assert model.parameter_store.values[0] == 3.0
    with pytest.raises(TypeError) as bulk_error:
        p.data = "x"
    with pytest.raises(TypeError) as plain_error:
        plain.data = "x"
    assert str(bulk_error.value) == str(plain_error.value)
    assert p.data == 3.0  # left as it was
