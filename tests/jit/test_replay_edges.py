"""jit replays at the edges, each compared with eager mode: parameters frozen or unfrozen after
the trace, sums of thousands of terms as code, gradient formulas whose float arithmetic raises,
and ops whose forward returns something other than a float."""

import math

import numpy as np
import pytest

from mingrad_core import Scalar, register_op
from mingrad_core import functional as F
from mingrad_jit import jit, tape

TOL = 1e-12
STRATEGIES = ["levels", "code", "tape"]


def value_and_grads(fn, params, *args, frozen=()):
    """``fn(*args)``'s value and, after its backward, the parameters' ``.grad`` (from 0.0, or
    None for those in ``frozen``)."""
    for p in params:
        p.grad = None if any(p is q for q in frozen) else 0.0
    out = fn(*args)
    out.backward()
    return [out.data, *(p.grad for p in params)]


def assert_same(got, expected):
    assert got == pytest.approx(expected, rel=TOL, abs=TOL, nan_ok=True)


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_freezing_or_unfreezing_a_parameter_after_the_trace_acts_at_the_next_backward(strategy):
    w, v = Scalar(1.0), Scalar(2.0)

    def fn(x):
        return w * v * x + (v * x).tanh()

    jitted = jit(fn, strategy=strategy)
    value_and_grads(jitted, [w, v], 3.0, frozen=[w])  # traced with w frozen
    for frozen in ([], [v], [w, v], [w], []):
        got = value_and_grads(jitted, [w, v], 3.0, frozen=frozen)
        assert got == value_and_grads(fn, [w, v], 3.0, frozen=frozen)
        assert [g is None for g in got[1:]] == [any(p is q for q in frozen) for p in (w, v)]
    assert jitted.traces == 1


def rnn_loss(w, u):
    def loss(xs):  # the loss is a sum over the steps: one n-ary sum once folded
        h, total = w * 0.0, 0.0
        for x in xs:
            h = (w * h + u * x).tanh()
            total = total + (h - x) ** 2
        return total

    return loss


def plain_sum(w, u):
    return lambda xs: sum(w * x + u for x in xs)


@pytest.mark.parametrize("make", [rnn_loss, plain_sum])
def test_a_sum_of_thousands_of_terms_replays_as_code_added_left_to_right(make):
    w, u = Scalar(0.5), Scalar(0.3)
    fn = make(w, u)
    jitted = jit(fn, strategy="code")
    for n, scale in ((3500, 0.1), (3500, -0.7)):
        xs = [scale * (k % 7) for k in range(n)]
        got, expected = value_and_grads(jitted, [w, u], xs), value_and_grads(fn, [w, u], xs)
        assert got[0] == expected[0]  # the same additions in the same order
        assert_same(got, expected)


def recip_forward(x):
    return 1 / x if x != 0 else math.copysign(math.inf, x)


def recip_gradient(x, out):
    return (-1 / (x * x),)  # raises ZeroDivisionError at 0


def register_reciprocals():
    """``recip`` (one input) and ``harmonic`` (variadic: the sum of reciprocals), whose scalar
    gradients divide by zero at 0, and have no array forms (they run looped)."""
    register_op(name="recip", arity=1, forward=recip_forward, gradient=recip_gradient)
    register_op(
        name="harmonic",
        arity=2,
        variadic=True,
        forward=lambda *xs: sum(map(recip_forward, xs)),
        gradient=lambda *xs_out: tuple(-1 / (x * x) for x in xs_out[:-1]),
    )


SHAPES = {  # one node (its scalar forms), a group of nodes (looped), a variadic group (looped)
    "one node": lambda a, b: lambda xs: F.recip(a + xs[0]) * b,
    "a group": lambda a, b: lambda xs: F.recip(a + xs[0]) + F.recip(b + xs[1]),
    "a variadic group": lambda a, b: (
        lambda xs: F.harmonic(a + xs[0], b + xs[1]) + F.harmonic(b + xs[1], a + xs[0])
    ),
}


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("strategy", STRATEGIES)
def test_a_gradient_formula_that_divides_by_zero_is_evaluated_as_in_eager_mode(strategy, shape):
    register_reciprocals()
    a, b = Scalar(1.0), Scalar(0.5)
    fn = SHAPES[shape](a, b)
    jitted = jit(fn, strategy=strategy)
    for xs in ([-1.0, 1.0], [2.0, -3.0], [-1.0, -0.5]):  # a + x0 = 0; none; both at 0
        got, expected = value_and_grads(jitted, [a, b], xs), value_and_grads(fn, [a, b], xs)
        assert_same(got, expected)
    assert math.isinf(expected[1])  # evaluated on Scalars: -1 / 0.0 is -inf


@pytest.mark.parametrize("strategy", ["code", "tape"])
def test_code_and_tape_replays_store_op_results_as_floats_as_eager_mode_does(strategy):
    def register(name, forward):
        register_op(name=name, arity=1, forward=forward, gradient=lambda x, out: (0.5,))

    register("half32", lambda x: np.float32(x) / 2)
    register("step", lambda x: int(x > 0))
    register("huge", lambda x: 10**400 if x > 0 else -(10**400))
    register("maybe", lambda x: x if x > 0 else None)
    w = Scalar(1.1)
    for fn in (
        lambda x: [F.half32(w * x) * 3, F.step(w * x) + w],  # a numpy float32, an int
        lambda x: [F.huge(w * x) * w],  # an int too large for a float: ±inf
    ):
        jitted = jit(fn, strategy=strategy)
        for x in (1.0, -0.3, 1.0):
            got, expected = jitted(x), fn(x)
            assert [type(r.data) for r in got] == [float] * len(expected)
            assert [r.data for r in got] == [s.data for s in expected]
            for r, s in zip(got, expected):
                w.grad = 0.0
                r.backward()
                grad, w.grad = w.grad, 0.0
                s.backward()
                assert_same(grad, w.grad)
    jitted = jit(lambda x: F.maybe(w * x), strategy=strategy)
    assert jitted(1.0).data == 1.1
    for fn in (jitted.fn, jitted):  # eager, then the replay: refused, naming the op
        with pytest.raises(TypeError, match="op 'maybe'.* forward returned None"):
            fn(-1.0)


def test_auto_replays_a_large_deep_chain_from_a_tape_and_a_wide_graph_by_levels(monkeypatch):
    monkeypatch.setattr(tape, "TAPE_NODES", 300)
    w = Scalar(0.9)

    def chain(x):
        y = Scalar(x[0])
        for _ in range(200):
            y = (y * w + 0.5).tanh()
        return y

    def wide(xs):
        return sum((w * x).tanh() for x in xs)

    deep, broad = jit(chain), jit(wide)
    for x in (0.3, -2.0):
        got, expected = value_and_grads(deep, [w], [x]), value_and_grads(chain, [w], [x])
        assert got[0] == expected[0] and got[1] == pytest.approx(expected[1], rel=1e-12)
    broad([0.1 * k for k in range(400)])
    assert [deep.info()[0].strategy, broad.info()[0].strategy] == ["tape", "levels"]


def test_a_tape_names_an_op_whose_gradient_gives_the_wrong_count():
    register_op(name="pair", arity=1, forward=lambda x: 2 * x, gradient=lambda x, out: (2, 2))
    w = Scalar(1.0)
    result = jit(lambda x: F.pair(w * x[0]), strategy="tape")([1.0])
    with pytest.raises(ValueError, match=r"gradient of op 'pair' returned 2 term\(s\) for 1"):
        result.backward()
    assert w.grad == 0.0
