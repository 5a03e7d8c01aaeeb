"""vmap: eagerly a list comprehension; under jit one sample traced, the batch replayed as arrays,
equal to eager mode within rounding."""

import importlib
import math
import operator
import random
import warnings

import numpy as np
import pytest

from mingrad_core import Scalar, grad, register_op
from mingrad_jit import TracedValueError, VmapArgumentError, jit, vmap
from mingrad_jit import plan as plan_module
from mingrad_nn import MLP, cross_entropy

vmap_module = importlib.import_module("mingrad_jit.vmap")  # (the package exports the function)
function_module = importlib.import_module("mingrad_jit.function")
batched_module = importlib.import_module("mingrad_jit.batched")


def same(a: float | None, b: float | None) -> bool:
    """Equal up to rounding, infinities equal, nan only where the other is nan."""
    if a is None or b is None:
        return a is b
    if math.isnan(a) or math.isnan(b):
        return math.isnan(a) and math.isnan(b)
    return a == b or math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12)


def gradients(out, params) -> list:
    for p in params:
        p.grad = 0.0
    out.backward()
    return [p.grad for p in params]


def digits_like(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    return rng.uniform(0, 1, (n, 8)), np.eye(3)[rng.integers(0, 3, n)]


def classifier(model):
    def sample_loss(x, t):
        return cross_entropy([model(list(map(Scalar, x)))], [t])

    return sample_loss


def test_eager_vmap_is_the_list_comprehension():
    w = Scalar(0.5)

    def f(x, t):
        return (w * x[0] + x[1] - t) ** 2

    X, T = [[1.0, 2.0], [3.0, -1.0], [0.5, 0.5]], [1.0, 0.0, 2.0]
    got = vmap(f)(X, T)
    want = [f(x, t) for x, t in zip(X, T)]
    assert [g.data for g in got] == [v.data for v in want]
    assert vmap(f)(np.array(X), np.array(T))[1].data == want[1].data  # rows of an array
    assert vmap(f)([], []) == []


@pytest.mark.parametrize("chunk", [1 << 21, 1, 1500])  # bytes: a sample a chunk, a few
@pytest.mark.parametrize("n", [1, 2, 37])
def test_a_classifier_replays_as_eager_mode_computes_it(n, chunk, monkeypatch):
    monkeypatch.setattr(batched_module, "CHUNK_BYTES", chunk)
    rng = np.random.default_rng(n)
    model = MLP(8, [5, 3], seed=n)
    sample_loss = classifier(model)

    @jit
    def loss_fn(X, T):
        losses = vmap(sample_loss)(X, T)
        return sum(losses) * (1.0 / len(losses))

    for _ in range(2):  # a trace, then a replay on new numbers
        X, T = digits_like(rng, n)
        replayed = loss_fn(X, T)
        eager = sum(sample_loss(x, t) for x, t in zip(X.tolist(), T.tolist())) * (1.0 / n)
        assert same(replayed.data, eager.data)
        params = model.parameters()
        assert all(map(same, gradients(replayed, params), gradients(eager, params)))
    assert loss_fn.traces == 1 and loss_fn.replays == 1


def plans_built_by(module, monkeypatch) -> list:
    """The plans ``module`` builds from now on, in order."""
    planned = []

    def build(trace):
        planned.append(plan_module.build(trace))
        return planned[-1]

    monkeypatch.setattr(module, "build", build)
    return planned


def test_the_batch_is_traced_once_and_planned_at_the_size_of_one_sample(monkeypatch):
    model = MLP(8, [5, 3], seed=0)
    sample_loss = classifier(model)
    planned = plans_built_by(vmap_module, monkeypatch)
    for n in (10, 1000):
        X, T = digits_like(np.random.default_rng(0), n)
        calls = []

        def counting(x, t, calls=calls):
            calls.append(1)
            return sample_loss(x, t)

        loss_fn = jit(lambda X, T: sum(vmap(counting)(X, T)))
        loss_fn(X, T).backward()
        assert len(calls) == 1  # traced on one sample
    small, large = planned
    assert (small.size, small.nodes, len(small.groups)) == (
        large.size,
        large.nodes,
        len(large.groups),
    )


def test_a_sum_over_the_batch_is_one_leaf_of_the_trace_around_it(monkeypatch):
    model = MLP(8, [5, 3], seed=0)
    sample_loss = classifier(model)
    outer = plans_built_by(function_module, monkeypatch)
    for n in (10, 1000):
        X, T = digits_like(np.random.default_rng(n), n)

        @jit
        def loss_fn(X, T):
            losses = vmap(sample_loss)(X, T)
            return sum(losses) * (1.0 / len(losses))

        replayed = loss_fn(X, T)
        eager = sum(sample_loss(x, t) for x, t in zip(X.tolist(), T.tolist())) * (1.0 / n)
        assert same(replayed.data, eager.data)
        assert all(
            map(same, gradients(replayed, model.parameters()), gradients(eager, model.parameters()))
        )
    small, large = outer
    # the mean is one leaf (the sum over the batch) times a constant, whatever the batch size
    assert small.nodes == large.nodes == 1
    assert [len(sums) for _, _, sums in large.batches] == [1]


@pytest.mark.parametrize("chunk", [1 << 21, 1, 100])
@pytest.mark.parametrize("n", [1, 2, 7])
def test_partial_sums_of_batch_results_replay_as_eager_mode_computes_them(n, chunk, monkeypatch):
    monkeypatch.setattr(batched_module, "CHUNK_BYTES", chunk)
    model = MLP(3, [4, 2], seed=2)
    rng = np.random.default_rng(n)

    def per_sample(x):
        out = model(list(map(Scalar, x)))
        return [out[0].tanh(), out[1] * out[1]]

    def fn(X):
        results = vmap(per_sample)(X)
        first, second = [r[0] for r in results], [r[1] for r in results]
        return [
            sum(first),  # one sum over the batch
            sum(first[n // 2 :]) + sum(second[: n // 2 + 1]),  # sums over some samples
            first[0] + first[-1] + second[0],  # single results beside the sums
            sum(second, Scalar(0.5)),  # a Scalar start
            sum(reversed(second)),  # not in sample order: added node by node
            sum(r[0] + r[1] for r in results),  # both results of each sample
            0.0 + second[-1],
        ]

    jitted = jit(fn)
    for _ in range(2):
        X = rng.uniform(-1, 1, (n, 3))
        replayed, eager = jitted(X), fn(X.tolist())
        for k in range(len(eager)):
            assert same(replayed[k].data, eager[k].data)
            grads = gradients(replayed[k], model.parameters())
            assert all(map(same, grads, gradients(eager[k], model.parameters())))
    assert jitted.traces == 1


def test_a_sum_over_the_batch_keeps_the_sign_of_zero_as_sum_does():
    def per_sample(x):
        return Scalar(x) * -0.0  # -0.0 for every positive x

    def fn(X):
        results = vmap(per_sample)(X)
        return [sum(results), results[0] + results[1], -0.0 + results[0]]

    replayed, eager = jit(fn)([1.0, 2.0, 3.0]), fn([1.0, 2.0, 3.0])
    signs = [math.copysign(1, r.data) for r in replayed]
    assert signs == [math.copysign(1, e.data) for e in eager] == [1, -1, -1]


def test_vmap_inside_ordinary_traced_code():
    rng = random.Random(0)
    model = MLP(3, [4, 2], seed=1)
    scale = Scalar(0.7)

    def per_sample(x, t):
        out = model(list(map(Scalar, x)))
        return [(out[0] - t) ** 2, out[1].tanh() * scale]

    def fn(X, T, c):
        before = scale * c[0] + scale.exp()  # traced code around the batch
        results = vmap(per_sample)(X, T)
        first = sum(r[0] for r in results)
        second = sum(r[1] for r in results[::2])  # some samples' second result only
        return [first * before + second, second.relu() + c[1]]

    jitted = jit(fn)
    params = [*model.parameters(), scale]
    for _ in range(2):
        X = [[rng.uniform(-1, 1) for _ in range(3)] for _ in range(5)]
        T = [rng.uniform(-1, 1) for _ in range(5)]
        c = [rng.uniform(-1, 1), rng.uniform(-1, 1)]
        replayed, eager = jitted(X, T, c), fn(X, T, c)
        for k in range(2):
            assert same(replayed[k].data, eager[k].data)
            assert all(map(same, gradients(replayed[k], params), gradients(eager[k], params)))
    assert jitted.traces == 1


def test_per_sample_structures_that_differ_are_traced_once_each():
    w = Scalar(1.5)
    calls = []

    def f(x):
        calls.append(len(x))
        return sum(xi * w for xi in x).tanh()

    X = [[1.0, 2.0], [0.5, -1.0, 2.0], [3.0, -2.0], [0.1, 0.2, 0.3], [4.0]]

    @jit
    def fn(X):
        return sum(vmap(f)(X))

    replayed = fn(X)
    assert sorted(calls) == [1, 2, 3]  # one trace per structure, in the order they come
    eager = sum(f(x) for x in X)
    assert same(replayed.data, eager.data)
    assert same(gradients(replayed, [w])[0], gradients(eager, [w])[0])


def test_an_op_without_array_forms_runs_looped_over_the_batch():
    square = register_op(
        name="vmap_square", arity=1, forward=lambda x: x * x, gradient=lambda x, out: (2 * x,)
    )
    assert square.array_forward is None
    w = Scalar(0.3)

    def f(x):
        return (w * x[0]).vmap_square() + x[1]

    @jit
    def fn(X):
        return sum(vmap(f)(X))

    X = [[1.0, 2.0], [-3.0, 0.5], [2.0, 2.0]]
    replayed, eager = fn(X), sum(f(x) for x in X)
    assert same(replayed.data, eager.data)
    assert same(gradients(replayed, [w])[0], gradients(eager, [w])[0])


def test_what_cannot_be_batched_is_traced_sample_by_sample_with_the_same_results():
    w = Scalar(2.0)

    def f(x, y):
        return w * x + y

    @jit
    def fn(X):
        hidden = [w * row[0] for row in X]  # Scalars computed in the function: not arguments
        constants = [1.0, 2.0, 3.0]  # numbers written in the function
        return sum(vmap(f)(hidden, constants))

    X = [[1.0], [2.0], [-1.0]]
    replayed = fn(X)
    eager = sum(f(w * row[0], c) for row, c in zip(X, [1.0, 2.0, 3.0]))
    assert same(replayed.data, eager.data)
    assert same(gradients(replayed, [w])[0], gradients(eager, [w])[0])


def test_vmap_refuses_arguments_that_are_not_one_batch():
    f = vmap(lambda x: x)
    with pytest.raises(VmapArgumentError, match=r"different batch sizes \(2, 3\)"):
        f([1.0, 2.0], [1.0, 2.0, 3.0])
    with pytest.raises(VmapArgumentError, match="argument 1 .* float 3.0; expected a sequence"):
        f(3.0)
    with pytest.raises(VmapArgumentError, match="no arguments"):
        f()
    with pytest.raises(TypeError, match="vmap\\(\\) takes a function"):
        vmap(3)


def random_program(rng: random.Random, steps: int) -> list[tuple]:
    program: list[tuple] = []
    for _ in range(steps):
        i, j = rng.randrange(3 + len(program)), rng.randrange(3 + len(program))
        kind = rng.choice(["unary", "binary", "binary", "twice", "sum", "layer"])
        if kind == "unary":
            program.append((kind, i, rng.choice(["tanh", "relu", "exp", "log"])))
        elif kind == "binary":
            program.append((kind, i, j, rng.choice([operator.add, operator.mul])))
        else:
            program.append((kind, i))
    return program


def run_program(program: list[tuple], params: list[Scalar], layer):
    """A per-sample function of ``xs``: every vector the program makes."""

    def fn(xs):
        vectors = [[Scalar(x) for x in xs], params[: len(xs)], params[len(xs) :]]
        for kind, i, *rest in program:
            v = vectors[i]
            if kind == "unary":
                out = [getattr(x, rest[0])() for x in v]
            elif kind == "binary":
                w = vectors[rest[0]]
                out = [rest[1](x, w[k % len(w)]) for k, x in enumerate(v)]
            elif kind == "twice":
                out = [x * x for x in v]
            elif kind == "sum":
                out = [sum(v + v[:1])]
            else:
                pairs = [v[k : k + 2] for k in range(0, len(v) - 1, 2)] or [v * 2]
                out = [y for pair in pairs for y in layer(pair)]
            vectors.append(out)
        return vectors[3:]

    return fn


@pytest.mark.parametrize("chunk", [1 << 21, 1, 300])
@pytest.mark.parametrize("seed", range(12))
def test_random_per_sample_programs_replay_as_eager_mode_computes_them(seed, chunk, monkeypatch):
    monkeypatch.setattr(batched_module, "CHUNK_BYTES", chunk)
    rng = random.Random(seed)
    width, size = rng.choice([1, 2, 4]), rng.choice([1, 3, 8])
    layer = MLP(2, [3], seed=seed).layers[0]
    params = [Scalar(rng.uniform(-2, 2)) for _ in range(2 * width)]
    if seed % 3 == 0:  # IEEE specials: what is not reached must not turn them into nan
        params[0].data, params[-1].data = math.inf, math.nan
    params[1].grad = None  # a parameter that takes no gradient
    everything = [*params, *layer.parameters()]
    f = run_program(random_program(rng, 10), params, layer)
    X = [[rng.uniform(-2, 2) for _ in range(width)] for _ in range(size)]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a replay never warns: inf and nan are values
        replayed = jit(lambda X: vmap(f)(X))(X)
    reference = [f(x) for x in X]
    picks = [
        (b, k, j) for b, r in enumerate(reference) for k, v in enumerate(r) for j in range(len(v))
    ]
    for b, k, j in rng.sample(picks, min(len(picks), 6)):
        grads = []
        for out in (reference[b][k][j], replayed[b][k][j]):
            for p in everything:
                p.grad = None if p is params[1] else -0.0
            with warnings.catch_warnings():
                warnings.simplefilter("error")
                out.backward()
            grads.append([p.grad for p in everything])
        assert same(reference[b][k][j].data, replayed[b][k][j].data), (b, k, j)
        assert all(map(same, *grads)), (b, k, j, grads)


def test_numpy_arguments_reach_the_function_as_their_nested_lists():
    w = Scalar(0.5)

    def fn(X):
        assert isinstance(X, list) and isinstance(X[0], list)
        return sum(w * X[i][1] + X[i][0] for i in range(len(X)))

    X = np.arange(6.0).reshape(3, 2)
    jitted = jit(fn)
    from_array, from_lists = jitted(X), jit(fn)(X.tolist())
    assert from_array.data == from_lists.data == fn(X.tolist()).data


@pytest.mark.parametrize("units", [1, 3])
def test_a_layer_reading_one_number_many_times_replays_as_eager_mode(units, monkeypatch):
    monkeypatch.setattr(batched_module, "CHUNK_BYTES", 200)  # a few samples
    model, w = MLP(40, [units], seed=1), Scalar(0.7)

    def per_sample(x):
        outs = model([w * x[0] + x[1]] * 40)  # 40 inputs, one row of the batch
        return sum(outs) if units > 1 else outs

    jitted = jit(lambda X: sum(vmap(per_sample)(X)))
    X = np.random.default_rng(units).normal(size=(9, 2))
    replayed, eager = jitted(X), sum(per_sample(x) for x in X.tolist())
    assert same(replayed.data, eager.data)
    params = [w, *model.parameters()]
    assert all(map(same, gradients(replayed, params), gradients(eager, params)))


def test_vmap_over_an_array_argument_makes_the_stand_ins_of_the_traced_sample_only():
    w = Scalar(0.5)
    seen = []

    def fn(X, Y, Z):
        losses = vmap(lambda x, y, z: (w * x[0] + x[1] - y) ** 2 * z[1][0] - z[0][1])(X, Y, Z)
        if hasattr(X, "filled"):  # while tracing (eagerly: lists)
            seen.append((type(X).__name__, len(X), X.filled, Y.filled, Z.filled))
        return sum(losses) * (1.0 / len(losses))

    X, Y = np.arange(12.0).reshape(6, 2), np.linspace(-1, 1, 6)
    Z = np.random.default_rng(0).normal(size=(6, 2, 2))
    replayed = jit(fn)(X, Y, Z)
    assert seen == [("ArrayArgument", 6, False, False, False)]
    assert same(replayed.data, fn(X.tolist(), Y.tolist(), Z.tolist()).data)


def test_an_array_argument_looked_inside_is_the_list_of_its_rows():
    import copy

    w = Scalar(0.5)
    checks = []

    def fn(X):
        losses = vmap(lambda x: w * x[0] * x[1])(X)  # traces X[0] alone
        first = X[0]  # looking inside makes every stand-in; X[0] stays what vmap traced
        if hasattr(X, "filled"):  # while tracing (eagerly: lists)
            checks.append(X.filled and isinstance(X, list) and len(X) == 3 and X == X.copy())
            checks.append(type(copy.copy(X)) is list and copy.copy(X) == X)
            checks.append([len(row) for row in ([[1.0]] + X + X[:1])] == [1, 2, 2, 2, 2])
            checks.append(repr(X).startswith("[[TracedNumber(slot=0)"))
        return sum(losses) + first[1] * w + sum(w * row[0] for row in reversed(X))

    X = np.arange(6.0).reshape(3, 2)
    jitted = jit(fn)
    for _ in range(2):
        assert same(jitted(X).data, fn(X.tolist()).data)
        X = X * -1.5
    assert checks == [True] * 4 and jitted.traces == 1


@pytest.mark.parametrize("strategy", ["auto", "levels", "code", "tape"])
def test_every_strategy_replays_batches_through_the_level_replay(strategy):
    w = Scalar(2.0)

    def f(x):
        return w * x[0]

    jitted = jit(lambda X: sum(vmap(f)(X)), strategy=strategy)
    for X in ([[1.0], [2.0]], [[3.0], [-1.0]]):
        replayed = jitted(X)
        replayed.backward()
        assert replayed.data == sum(f(x).data for x in X)
    assert w.grad == 3.0 + 2.0  # the two calls' sums of x


@pytest.mark.parametrize("seed", range(6))
def test_rows_of_a_batch_are_fed_as_the_gather_of_their_slots_would_feed_them(seed):
    rng = np.random.default_rng(seed)
    B = int(rng.integers(2, 9))
    blocks, base = [], 0
    for _ in range(int(rng.integers(1, 4))):  # arguments of B rows of `width` numbers each
        width = int(rng.integers(1, 6))
        rows = rng.integers(1, width + 1)
        first = base + int(rng.integers(0, width - rows + 1))
        blocks.append(first + np.arange(rows)[:, None] + width * np.arange(B))
        base += width * B
    feed = np.vstack(blocks)
    if seed % 2:  # rows in another order: each row is still its own run of slots
        feed = feed[rng.permutation(len(feed))]
    values = rng.standard_normal(base)
    found = batched_module._feed_blocks(feed)
    V = np.full(feed.shape, np.nan)
    for rows, start, stride in found:
        shape, strides = (rows.stop - rows.start, B), (8, 8 * stride)
        V[rows] = np.lib.stride_tricks.as_strided(values[start:], shape, strides)
    assert np.array_equal(V, values.take(feed))
    shuffled = feed.copy()
    shuffled[0] = shuffled[0, ::-1]  # the samples of a row in reverse: gathered instead
    assert batched_module._feed_blocks(shuffled) is None


def test_grad_through_a_batch_result_inside_jit_is_refused_not_zero():
    w = Scalar(0.5)

    def loss_and_gradient(X):
        total = sum(vmap(lambda x: (w * x) ** 2)(X))
        return grad(total * 2.0, [w], create_graph=True)[0]

    assert loss_and_gradient([1.0, 2.0, 3.0]).data == 28.0  # eagerly: 4 w sum x^2
    with pytest.raises(TracedValueError, match="reached a vmap result"):
        jit(loss_and_gradient)([1.0, 2.0, 3.0])


def test_a_gradient_taken_inside_the_per_sample_function_is_batched():
    w = Scalar(0.5)

    def per_sample(x):
        (g,) = grad((w * x).tanh() ** 2, [w], create_graph=True)
        return g * g  # a gradient penalty, per sample

    def fn(X):
        return sum(vmap(per_sample)(X))

    jitted = jit(fn)
    for X in ([0.3, -1.2, 2.0], [1.5, 0.1, -0.4]):
        replayed, eager = jitted(X), fn(X)
        assert same(replayed.data, eager.data)
        assert same(gradients(replayed, [w])[0], gradients(eager, [w])[0])
    assert jitted.traces == 1
