"""jit: replays equal eager mode; value branches are refused; results behave like Scalars."""

import math
import random
import subprocess
import sys

import pytest

from mingrad_core import Scalar, register_op
from mingrad_jit import (
    JitArgumentError,
    JitOutputError,
    StaleResultError,
    TracedValueError,
    jit,
)
from mingrad_nn import MLP, bce_with_logits, cross_entropy, hinge_loss

TOL = 1e-12


def batch(rng: random.Random, n: int) -> tuple[list[list[float]], list[float]]:
    X = [[rng.uniform(-2, 2), rng.uniform(-2, 2)] for _ in range(n)]
    y = [rng.choice((-1.0, 1.0)) for _ in range(n)]
    return X, y


def seed_loss(model):
    def loss_fn(X, y):
        inputs = [list(map(Scalar, row)) for row in X]
        scores = list(map(model, inputs))
        losses = [(1 + -yi * si).relu() for yi, si in zip(y, scores)]
        return sum(losses) * (1.0 / len(losses)) + 1e-4 * sum(p * p for p in model.parameters())

    return loss_fn


def value_and_grads(model, fn, *args):
    model.zero_grad()
    out = fn(*args)
    out.backward()
    return out.data, [p.grad for p in model.parameters()]


def assert_close(a, b, tol=TOL):
    assert len(a) == len(b)
    for x, y in zip(a, b):
        assert x == pytest.approx(y, rel=tol, abs=tol), (x, y)


@pytest.mark.parametrize("strategy", ["levels", "code"])
def test_replay_equals_eager_on_new_batches_every_call(strategy):
    rng = random.Random(0)
    model = MLP(2, [8, 8, 1], seed=1)
    eager = seed_loss(model)
    jitted = jit(seed_loss(model), strategy=strategy)
    for _ in range(4):
        X, y = batch(rng, 12)
        value, grads = value_and_grads(model, jitted, X, y)
        expected, expected_grads = value_and_grads(model, eager, X, y)
        assert value == pytest.approx(expected, rel=TOL)
        assert_close(grads, expected_grads)
    assert (jitted.traces, jitted.replays) == (1, 3)
    assert jitted.info()[0].strategy == strategy


def test_a_new_batch_size_traces_again_and_old_traces_stay_cached():
    rng = random.Random(1)
    model = MLP(2, [4, 1], seed=2)
    eager, jitted = seed_loss(model), jit(seed_loss(model))
    for n in (5, 9, 5, 9, 3):
        X, y = batch(rng, n)
        value, grads = value_and_grads(model, jitted, X, y)
        expected, expected_grads = value_and_grads(model, eager, X, y)
        assert value == pytest.approx(expected, rel=TOL)
        assert_close(grads, expected_grads)
    assert (jitted.traces, jitted.replays) == (3, 2)
    assert [info.key[0][1] for info in jitted.info()] == [(5, 2), (9, 2), (3, 2)]


def test_one_hundred_training_steps_keep_the_parameters_equal():
    rng = random.Random(2)
    X, y = batch(rng, 20)
    models = MLP(2, [8, 8, 1], seed=3), MLP(2, [8, 8, 1], seed=3)
    fns = seed_loss(models[0]), jit(seed_loss(models[1]))
    for _ in range(100):
        for model, fn in zip(models, fns):
            model.zero_grad()
            fn(X, y).backward()
            for p in model.parameters():
                p.data -= 0.1 * p.grad
    a, b = ([p.data for p in m.parameters()] for m in models)
    assert max(abs(u - v) for u, v in zip(a, b)) < 1e-9
    assert a != [p.data for p in MLP(2, [8, 8, 1], seed=3).parameters()]  # it trained


def test_an_op_without_array_forms_runs_looped():
    cube = register_op(
        name="cube", arity=1, forward=lambda x: x * x * x, gradient=lambda x, out: (3 * x * x,)
    )
    assert cube.array_forward is None
    w = [Scalar(0.3), Scalar(-0.7)]

    def fn(xs):
        return sum(Scalar(x).cube() * wi + wi.cube() for x, wi in zip(xs, w))

    jitted = jit(fn)
    for xs in ([1.0, 2.0], [-0.5, 3.0]):
        for p in w:
            p.grad = 0.0
        out = jitted(xs)
        out.backward()
        got = [out.data, *(p.grad for p in w)]
        for p in w:
            p.grad = 0.0
        ref = fn(xs)
        ref.backward()
        assert_close(got, [ref.data, *(p.grad for p in w)])


@pytest.mark.parametrize("loss", ["hinge", "bce", "cross_entropy"])
def test_labels_mixed_in_as_constants_are_fed_on_every_call(loss):
    rng = random.Random(4)
    model = MLP(3, [5, 3], seed=4)

    def fn(X, targets):
        logits = [model(list(map(Scalar, row))) for row in X]
        if loss == "hinge":
            return hinge_loss([row[0] for row in logits], targets)
        if loss == "bce":
            return bce_with_logits([row[1] for row in logits], targets)
        return cross_entropy(logits, targets)

    jitted = jit(fn)
    for _ in range(3):
        X = [[rng.uniform(-1, 1) for _ in range(3)] for _ in range(6)]
        if loss == "hinge":
            targets = [rng.choice((-1.0, 1.0)) for _ in X]
        elif loss == "bce":
            targets = [rng.random() for _ in X]
        else:
            targets = [[1.0 if k == rng.randrange(3) else 0.0 for k in range(3)] for _ in X]
        value, grads = value_and_grads(model, jitted, X, targets)
        expected, expected_grads = value_and_grads(model, fn, X, targets)
        assert value == pytest.approx(expected, rel=TOL)
        assert_close(grads, expected_grads)
    assert jitted.traces == 1


def test_outputs_keep_their_structure_and_backpropagate_from_any_of_them():
    model = MLP(2, [4, 2], seed=5)

    def fn(X):
        scores = [model(list(map(Scalar, row))) for row in X]
        loss = sum(s[0] * s[0] for s in scores)
        return loss, [s[1] for s in scores]

    X = [[0.5, -1.0], [2.0, 0.25]]
    loss, scores = jit(fn)(X)
    ref_loss, ref_scores = fn(X)
    assert isinstance(scores, list) and len(scores) == 2
    assert_close(
        [loss.data, *(s.data for s in scores)], [ref_loss.data, *(s.data for s in ref_scores)]
    )
    model.zero_grad()
    scores[1].backward()  # reaches only the second output neuron's parameters
    got = [p.grad for p in model.parameters()]
    model.zero_grad()
    ref_scores[1].backward()
    assert_close(got, [p.grad for p in model.parameters()])
    assert model.layers[1].neurons[0].b.grad == 0.0


def test_backward_accumulates_into_parameters_like_eager_backward():
    w = Scalar(2.0)
    out = jit(lambda xs: w * xs[0])([3.0])
    out.backward()
    out.backward(0.5)
    assert w.grad == 4.5


def test_ieee_specials_propagate_as_in_eager_mode():
    w, v = Scalar(math.inf), Scalar(1.0)

    def fn(xs):
        return (w * xs[0]).relu() + v * xs[1]

    ref = fn([0.0, 2.0])
    ref.backward()
    expected = [w.grad, v.grad]
    w.grad = v.grad = 0.0
    out = jit(fn)([0.0, 2.0])
    out.backward()
    assert math.isnan(out.data) == math.isnan(ref.data)
    assert [math.isnan(w.grad), v.grad] == [math.isnan(expected[0]), expected[1]]


def value_branch(s, y):
    if s.data > 0:
        return s
    return -s


def float_of(s, y):
    return s * float(s)


def compare_argument(s, y):
    return s if y > 0 else -s


@pytest.mark.parametrize(
    ("branch", "line"),
    [
        (value_branch, "if s.data > 0:"),
        (float_of, "return s * float(s)"),
        (compare_argument, "return s if y > 0 else -s"),
    ],
)
def test_a_value_branch_is_refused_naming_the_line(branch, line):
    w = Scalar(1.0)
    jitted = jit(lambda X, y: branch(w * X[0], y[0]))
    with pytest.raises(TracedValueError) as info:
        jitted([1.0], [2.0])
    message = str(info.value)
    assert line in message and "test_jit.py" in message
    assert "Compute with ops instead" in message
    assert jitted.traces == 0


def test_bad_arguments_and_outputs_are_refused():
    w = Scalar(1.0)
    with pytest.raises(JitArgumentError, match=r"argument 1 .* holds str 'a'"):
        jit(lambda x: w * 2)(["a"])
    with pytest.raises(JitArgumentError, match="a Scalar argument"):
        jit(lambda x: w * 2)([w])
    with pytest.raises(JitOutputError, match=r"returned float 2\.0"):
        jit(lambda x: 2.0)([1.0])


def test_backward_on_a_replaced_result_is_refused():
    w = Scalar(1.0)
    f = jit(lambda xs: w * xs[0])
    first = f([1.0])
    f([2.0])
    with pytest.raises(StaleResultError, match="call backward"):
        first.backward()


def test_mingrad_reexports_jit_and_needs_numpy_only_for_it():
    from mingrad import jit as front_door

    assert front_door is jit
    code = (
        "import sys; sys.modules['numpy'] = None\n"
        "import mingrad\n"
        "try:\n    mingrad.jit\nexcept ImportError as e:\n    print(e)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert 'pip install "mingrad[jit]"' in out.stdout, out.stderr
