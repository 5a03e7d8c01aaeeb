"""jit: replays equal eager mode; value branches are refused; results behave like Scalars."""

import math
import operator
import random
import subprocess
import sys
import threading
import warnings
from collections import Counter, namedtuple

import numpy as np
import pytest

from mingrad_core import Scalar, get_op, grad, register_op, toposort
from mingrad_core import functional as F
from mingrad_jit import (
    JitArgumentError,
    JitOutputError,
    StaleResultError,
    TracedValueError,
    jit,
)
from mingrad_jit import plan as plan_module
from mingrad_jit.plan import RELAX_PASSES, build
from mingrad_jit.trace import Tracer, flatten_arguments
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


@pytest.mark.parametrize("strategy", ["levels", "code", "tape"])
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


@pytest.mark.parametrize(
    "fn, hint",
    [
        (lambda w, x: w * F.sub(x, 1.0), "numbers alone"),  # a composite: it once went unseen
        (lambda w, x: w * F.exp(x), "numbers alone"),
        (lambda w, x: w * np.exp(x), "numpy's exp"),
        (lambda w, x: w * (x % 2), "divmod"),
        (lambda w, x: w * grad((w * x).tanh(), [w])[0], "Gradients: call backward"),
        (lambda w, x: w * x + (w * x).backward(), "Gradients: call backward"),
    ],
)
def test_values_computed_from_arguments_or_gradients_are_refused(fn, hint):
    w = Scalar(0.5)
    jitted = jit(lambda x: fn(w, x))
    with pytest.raises(TracedValueError, match=hint) as info:
        jitted(2.0)
    assert "test_jit.py" in str(info.value) and jitted.traces == 0


def test_gradients_as_scalars_inside_the_function_are_replayed():
    w = Scalar(0.5)

    def fn(x):
        (gw,) = grad((w * x).tanh(), [w], create_graph=True)
        return w * gw

    jitted = jit(fn)
    for x in [1.0, 2.0, -3.0]:
        assert jitted(x).data == pytest.approx(fn(x).data, rel=TOL)


def test_rows_as_tuples_or_lists_are_traced_apart_and_kept():
    a, b = Scalar(0.5), Scalar(-1.5)

    def fn(rows):
        scale = a if isinstance(rows[0], tuple) else b
        return [type(row)(scale * v for v in row) for row in rows]

    jitted = jit(fn)
    for rows in ([(1.0, 2.0)], [[1.0, 2.0]], [(1.0, 2.0), [3.0, 4.0]]):
        got, expected = jitted(rows), fn(rows)
        assert [type(row) for row in got] == [type(row) for row in expected]
        assert [r.data for row in got for r in row] == [e.data for row in expected for e in row]
    assert jitted.traces == 3


def test_named_tuples_go_in_and_come_out():
    Point = namedtuple("Point", "x y")
    w = Scalar(0.5)
    jitted = jit(lambda p: Point(w * p.x, w * p.y))
    out = jitted(Point(1.0, 4.0))
    assert isinstance(out, Point) and (out.x.data, out.y.data) == (0.5, 2.0)


def test_a_jitted_method_traces_each_instance_with_self_bound():
    class Net:
        def __init__(self, scale):
            self.w = Scalar(scale)

        @jit
        def loss(self, xs):
            return sum(self.w * x for x in xs)

    a, b = Net(2.0), Net(3.0)
    assert (a.loss([1.0, 2.0]).data, b.loss([1.0, 2.0]).data) == (6.0, 9.0)
    a.loss([5.0, 5.0]).backward()
    assert a.w.grad == 10.0 and b.w.grad == 0.0
    assert (a.loss.traces, a.loss.replays, b.loss.traces) == (1, 1, 1)

    class Slotted:
        __slots__ = ("w",)

        @jit
        def f(self, x):
            return self.w * x

    with pytest.raises(TypeError, match="__slots__"):
        Slotted().f(1.0)


def test_a_call_that_raises_part_way_spoils_older_results():
    def forward(x):
        if x > 100:
            raise ValueError("out of range")
        return x * x

    register_op(name="jit_sqr", arity=1, forward=forward, gradient=lambda x, out: (2 * x,))
    w = Scalar(1.5)
    jitted = jit(lambda xs: F.jit_sqr((w * xs[0]).tanh() * 200) + (w * xs[1]).exp())
    first = jitted([0.001, 1.0])
    with pytest.raises(ValueError, match="out of range"):
        jitted([1.0, 5.0])
    with pytest.raises(StaleResultError):
        first.backward()


def test_numbers_as_eager_mode_takes_them():
    w = Scalar(0.5)
    jitted = jit(lambda x: w * x[0])
    assert jitted([10**400]).data == (w * 10**400).data == math.inf
    result = jitted([1.0])
    result.backward(10**400)
    assert w.grad == math.inf
    with pytest.raises(TypeError, match="got str '2.0'"):
        result.backward("2.0")


@pytest.mark.parametrize("strategy", ["levels", "code", "tape"])
def test_threads_calling_at_once_each_get_their_own_values_and_one_trace(strategy):
    model = MLP(2, [8, 1], seed=0)
    loss_fn = seed_loss(model)
    f = jit(loss_fn, strategy=strategy)
    rng = random.Random(3)
    batches = [batch(rng, 40) for _ in range(6)]
    eager = [value_and_grads(model, loss_fn, *b) for b in batches]
    threads, rounds = 4, 30
    model.zero_grad()
    start, backward = threading.Barrier(threads), threading.Lock()
    seen, failures = [], []

    def worker(k):
        try:
            start.wait()  # every thread's first call at once: one traces, the others wait
            for i in range(rounds):
                j = (k + i) % len(batches)
                result = f(*batches[j])
                seen.append((type(result).__name__, j, result.data))
                with backward:  # as in eager mode, adding into shared .grad needs a lock
                    result.backward()
        except Exception as exc:  # reported below: a thread's exception is lost otherwise
            failures.append(exc)

    pool = [threading.Thread(target=worker, args=(k,)) for k in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    assert failures == []
    assert (f.traces, f.replays) == (1, threads * rounds - 1)
    for kind, j, value in seen:
        assert kind == "Result" and value == pytest.approx(eager[j][0], rel=TOL, abs=TOL)
    calls = Counter(j for _, j, _ in seen)
    expected = [sum(calls[j] * eager[j][1][i] for j in calls) for i in range(len(eager[0][1]))]
    assert_close([p.grad for p in model.parameters()], expected, tol=1e-9)


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


def tangle(w, model):
    """A function whose graph has every shape the planner handles: shared subexpressions, an
    input read twice by one node, constants, add chains that fold and ones that stop, a path
    deeper than the planner's numpy passes, ``linear`` layers, and outputs that are also
    inputs, repeated, or leaves."""

    def fn(xs, ys):
        a, b = Scalar(xs[0]), Scalar(xs[1])
        sq = a * a
        shared = (sq + w[0] * b).tanh()
        long = sum(w[k % 4] * shared + ys[k % 2] for k in range(90))  # from 0: a constant
        pair = a + b
        twice = pair + pair  # an add read twice by one node
        kept = sq + b  # read by two nodes: the chain through it stops there
        left = (kept + w[1]) + w[2]
        scaled = kept * 2.0
        deep = a
        for _ in range(RELAX_PASSES):
            deep = (deep * w[3] + w[4]).tanh()
        hidden = [*model([a, deep]), *model([b, deep])]  # linear grids: matrix products
        lone = get_op("linear")(w[1], w[2], w[3], sq, b)  # a linear node on its own
        return long + twice, [left, scaled, deep, shared, long, *hidden, lone, w[0], left]

    return fn


def planned(fn, *args):
    _, values = flatten_arguments(args, "fn")
    trace = Tracer("fn").run(fn, args, values)
    return build(trace), trace


def test_the_plan_computes_exactly_the_traced_graph():
    rng = random.Random(8)
    w = [Scalar(rng.uniform(-1, 1)) for _ in range(5)]
    w[4].grad = None  # frozen now: planned all the same, skipped at backward
    plan, trace = planned(tangle(w, MLP(2, [3, 2], seed=8)), [0.5, -1.5], [2.0, 0.25])
    nodes = toposort(trace.roots)
    uses = Counter(id(p) for node in nodes for p in node.parents)
    uses.update(id(root) for root in set(trace.roots))
    add = get_op("add")
    column = {s: (g, s - g.start) for g in plan.groups for s in range(g.start, g.stop)}
    param_slot = {id(p): 1 + k for k, p in enumerate(plan.params)}
    slot_of: dict[int, int] = {}
    folded = 0

    def check(node, slot):  # node is computed at slot, from its inputs' slots
        nonlocal folded
        if id(node) in slot_of:  # every reader of a node reads its one slot
            assert slot_of[id(node)] == slot
            return
        slot_of[id(node)] = slot
        if node.op is None:
            if id(node) in trace.slots:
                assert plan.slot_of[slot - plan.slot_start] == trace.slots[id(node)]
            elif id(node) in trace.created:
                assert plan.constants[slot] == node.data
            else:
                assert param_slot[id(node)] == slot
            return
        group, j = column[slot]
        inputs = list(node.parents)
        if node.op is add:  # a single-use add on the left folds in: terms in eager's order
            while inputs[0].op is add and uses[id(inputs[0])] == 1:
                inputs[:1] = inputs[0].parents
                folded += 1
            assert (group.kind, group.spec) == ("sum", None)
        else:
            assert group.spec is node.op
        assert group.idx.shape[0] == len(inputs)
        for parent, parent_slot in zip(inputs, group.idx[:, j].tolist()):
            check(parent, parent_slot)

    for root, slot in zip(trace.roots, plan.outputs):
        check(root, slot)
    assert len({s for s in slot_of.values() if s in column}) == plan.nodes
    assert plan.folded == folded == 89 + 1  # all but the last add of the long sum, and one in left
    level = np.zeros(plan.size, dtype=np.intp)
    needs = np.zeros(plan.size, dtype=bool)
    needs[1 : 1 + len(plan.params)] = True  # frozen or not: read at each backward, as eager does
    kinds, keys = set(), set()
    for before, group in zip([None, *plan.groups], plan.groups):
        kinds.add(group.kind)
        levels = level[group.idx].max(axis=0) + 1
        assert (levels == levels[0]).all()  # one level per group, in level order
        assert before is None or level[before.start] <= levels[0]
        keys.add((int(levels[0]), group.spec, group.idx.shape[0]))  # one group per key
        level[group.start : group.stop] = levels
        reads = needs[group.idx]
        needs[group.start : group.stop] = reads.any(axis=0)
        assert np.array_equal(group.need_rows, np.flatnonzero(reads.any(axis=1)))
        if group.kind == "matmul":  # weights the same for every sample, inputs for every unit
            (S, U), k = group.grid, group.idx.shape[0]
            cube = group.idx.reshape(k, S, U)
            assert (cube[: k // 2 + 1] == cube[: k // 2 + 1, :1]).all()
            assert (cube[k // 2 + 1 :] == cube[k // 2 + 1 :, :, :1]).all()
    assert kinds == {"op", "sum", "block", "matmul"} and len(keys) == len(plan.groups)
    assert plan.levels == level.max() > RELAX_PASSES
    assert np.array_equal(plan.needs_grad, needs)


def test_the_planner_walks_the_graph_in_toposort_order():
    rng = random.Random(9)
    w = [Scalar(rng.uniform(-1, 1)) for _ in range(5)]
    _, trace = planned(tangle(w, MLP(2, [3, 2], seed=9)), [1.0, 2.0], [3.0, 4.0])
    walked, expected = plan_module._read(trace.roots)[0], toposort(trace.roots)
    assert len(walked) == len(expected) and all(map(operator.is_, walked, expected))


@pytest.mark.parametrize("strategy", ["levels", "code", "tape"])
def test_replaying_the_tangle_equals_eager_mode(strategy):
    rng = random.Random(10)
    w = [Scalar(rng.uniform(-1, 1)) for _ in range(5)]
    model = MLP(2, [3, 2], seed=10)
    fn, params = tangle(w, model), [*w, *model.parameters()]
    jitted = jit(fn, strategy=strategy)
    for xs, ys in (([0.5, -1.5], [2.0, 0.25]), ([-0.3, 0.8], [1.0, -2.0])):
        results = []
        for f in (fn, jitted):
            for p in params:
                p.grad = None if p is w[4] else 0.0
            total, outputs = f(xs, ys)
            total.backward()
            outputs[1].backward()
            results.append([total.data, *(o.data for o in outputs), *(p.grad for p in w[:4])])
            results[-1] += [p.grad for p in model.parameters()]
        assert_close(*results)


@pytest.mark.parametrize("strategy", ["levels", "code", "tape"])
def test_outputs_that_compute_nothing_replay(strategy):
    w = Scalar(2.0)
    assert jit(lambda xs: [], strategy=strategy)([1.0]) == []
    param, (argument,) = jit(lambda xs: (w, [Scalar(xs[0])]), strategy=strategy)([3.0])
    assert (param.data, argument.data) == (2.0, 3.0)
    param.backward()
    argument.backward()
    assert w.grad == 1.0


def random_program(rng: random.Random, steps: int) -> list[tuple]:
    """Instructions over vectors of nodes: ops across whole vectors (groups many nodes wide,
    some reading their inputs in a shuffled order), an input read twice by one node, sums with
    a term repeated, single nodes, and a layer of ``linear`` neurons over samples of two."""
    program: list[tuple] = []
    for _ in range(steps):
        i, j = rng.randrange(3 + len(program)), rng.randrange(3 + len(program))
        kind = rng.choice(["unary", "binary", "binary", "twice", "sum", "layer", "scale"])
        if kind == "unary":
            program.append((kind, i, rng.choice(["tanh", "relu", "exp", "log"])))
        elif kind == "binary":
            program.append((kind, i, j, rng.choice([operator.add, operator.mul]), rng.random()))
        elif kind == "scale":
            program.append((kind, i, rng.choice([2.0, -0.5, 0.0])))
        else:
            program.append((kind, i))
    return program


def run_program(program: list[tuple], params: list[Scalar], layer):
    """The function of ``xs`` that ``program`` describes; it returns every vector it made."""

    def fn(xs):
        vectors = [[Scalar(x) for x in xs], params[: len(xs)], params[len(xs) :]]
        for kind, i, *rest in program:
            v = vectors[i]
            if kind == "unary":
                out = [getattr(x, rest[0])() for x in v]
            elif kind == "binary":
                w, op, shuffle = vectors[rest[0]], rest[1], rest[2]
                order = sorted(range(len(v)), key=lambda k: (k * 7919 * shuffle) % 1)
                out = [op(v[k], w[k % len(w)]) for k in order]
            elif kind == "twice":
                out = [x * x for x in v]
            elif kind == "scale":
                out = [x * rest[0] for x in v]
            elif kind == "sum":
                out = [sum(v + v[:1])]
            else:
                pairs = [v[k : k + 2] for k in range(0, len(v) - 1, 2)] or [v * 2]
                out = [y for pair in pairs for y in layer(pair)]
            vectors.append(out)
        return vectors

    return fn


def same(a: float | None, b: float | None) -> bool:
    """Equal up to rounding, infinities equal, nan only where the other is nan."""
    if a is None or b is None:
        return a is b
    if math.isnan(a) or math.isnan(b):
        return math.isnan(a) and math.isnan(b)
    return a == b or math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12)


@pytest.mark.parametrize("seed", range(16))
def test_random_graphs_backpropagate_from_each_output_as_eager_mode_does(seed):
    rng = random.Random(seed)
    width = rng.choice([1, 2, 4, 6])
    layer = MLP(2, [3], seed=seed).layers[0]
    params = [Scalar(rng.uniform(-2, 2)) for _ in range(2 * width)]
    if seed % 3 == 0:  # IEEE specials: what is not reached must not turn them into nan
        params[0].data, params[-1].data = math.inf, math.nan
    params[1].grad = None  # a parameter that takes no gradient
    everything = [*params, *layer.parameters()]
    fn = run_program(random_program(rng, 12), params, layer)
    xs = [rng.uniform(-2, 2) for _ in range(width)]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a replay never warns: inf and nan are values
        replayed = jit(lambda xs: fn(xs)[3:], strategy="levels")(xs)
    reference = fn(xs)[3:]
    picks = [(k, j) for k, v in enumerate(reference) for j in range(len(v))]
    for k, j in rng.sample(picks, min(len(picks), 6)):
        grads = []
        for out in (reference[k][j], replayed[k][j]):
            for p in everything:
                p.grad = None if p is params[1] else -0.0
            with warnings.catch_warnings():
                warnings.simplefilter("error")
                out.backward()
            grads.append([p.grad for p in everything])
        assert same(reference[k][j].data, replayed[k][j].data)
        assert all(map(same, *grads)), (k, j, grads)


def test_zero_gradients_keep_the_sign_eager_mode_gives_them():
    # Eager totals start at -0.0 and a leaf keeps before + total: -0.0 stays -0.0.
    w, v = Scalar(1.0), Scalar(2.0)

    def fn(xs):
        return sum(w * x for x in xs) + v * xs[0]

    for f in (fn, jit(fn, strategy="levels")):
        w.grad = v.grad = -0.0
        f([-0.0, -0.0, -0.0]).backward()
        assert (math.copysign(1.0, w.grad), math.copysign(1.0, v.grad)) == (-1.0, -1.0)


def test_a_scalar_of_a_traced_scalar_is_a_type_error_naming_the_line():
    with pytest.raises(TypeError, match="a real number; got Scalar"):
        Scalar(Scalar(2.0))  # eagerly: refused, unchanged

    @jit
    def f(x):
        s = Scalar(x[0]) * 2
        return Scalar(s)

    with pytest.raises(TypeError, match=r"(?s)test_jit.py:\d+.*Scalar\(s\).*use it as it is"):
        f([1.0])
