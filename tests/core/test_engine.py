"""The engine's public pieces: toposort, backprop and its observer, local gradients and their
validation, composites, value watching, and the node layout that keeps garbage collection cheap."""

import gc
import math
import re
import struct
import threading

import numpy as np
import pytest
from hypothesis import given, settings

from mingrad_core import (
    GradientError,
    Scalar,
    backprop,
    composite_of,
    get_op,
    grad,
    local_gradient,
    register_op,
    toposort,
    watch,
)

from .test_oracle import OURS, points, programs, run


def bits(value: float) -> bytes:
    return struct.pack("<d", value)


@settings(max_examples=150, deadline=None)
@given(programs, points)
def test_backward_writes_exactly_what_grad_returns(program, point):
    xs = [Scalar(v) for v in point]
    y = run(program, xs, OURS)
    expected = grad(y, xs)
    y.backward()  # leaves add this call's total to what they held (0.0)
    assert [bits(x.grad) for x in xs] == [bits(0.0 + g) for g in expected]
    totals = backprop(y)
    assert all(bits(n.grad) == bits(totals[n]) for n in totals if n.op is not None)


def test_toposort_places_every_node_after_its_parents_once():
    a, b = Scalar(1.0), Scalar(2.0)
    c = a * b
    d = get_op("linear")(c, a, b, c, a)  # a variadic node
    e = (d + c).tanh() * a
    order = toposort(e)
    assert len(order) == len(set(order))
    position = {node: i for i, node in enumerate(order)}
    assert all(position[p] < position[n] for n in order for p in n.parents)
    assert set(order) >= {a, b, c, d, e} and order[-1] is e
    assert toposort([e, c]) == toposort(e)  # several roots, each node once


def test_backprop_reports_every_step_in_reverse_topological_order():
    a = Scalar(3.0)
    y = a * a + a
    steps = []
    totals = backprop(y, observe=lambda n, up, terms, t: steps.append((n, up, terms, t[a])))
    computed = [n for n in reversed(toposort(y)) if n.op is not None]
    assert [s[0] for s in steps] == computed
    (add, up_add, terms_add, a_after_add), (mul, up_mul, terms_mul, a_after_mul) = steps
    assert (up_add, terms_add, a_after_add) == (1.0, (1.0, 1.0), 1.0)
    assert (up_mul, terms_mul, a_after_mul) == (1.0, (3.0, 3.0), 7.0)  # a*a adds twice
    y.backward()
    assert totals[a] == a.grad == 7.0


def test_leaves_accumulate_the_sum_of_this_calls_gradient():
    x = Scalar(0.1)
    x.grad = 0.2
    y = x * 3.0 + x * 4.0
    y.backward()
    assert bits(x.grad) == bits(0.2 + (4.0 + 3.0))  # earlier value + this call's total


@pytest.mark.parametrize(
    ("returned", "described"),
    [
        (lambda x, out: 2.0, "float 2.0; expected a tuple of 1 term"),
        (lambda x, out: None, "NoneType None; expected a tuple of 1 term"),
        (lambda x, out: ("1",), "a term that is str '1'; expected real numbers"),
        (lambda x, out: (1j,), "a term that is complex 1j; expected real numbers"),
        (lambda x, out: (np.array([1.0, 2.0]),), "a term that is ndarray"),
        (lambda x, out: (1.0, 2.0), "2 term\\(s\\); expected a tuple of 1 term"),
    ],
)
def test_a_malformed_gradient_names_the_op_its_plugin_and_what_it_returned(returned, described):
    register_op(name="bad", arity=1, forward=lambda x: x, gradient=returned)
    where = re.escape(f"(plugin '{__name__}')")
    message = rf"op 'bad' {where} at inputs \(2.0\) returned .*{described}"
    for differentiate in (
        lambda y, x: y.backward(),
        lambda y, x: grad(y, x),
        lambda y, x: grad(y, x, create_graph=True),
    ):
        x = Scalar(2.0)
        y = x.bad() * 1.0
        with pytest.raises(GradientError, match=message):
            differentiate(y, x)


def test_ints_and_numpy_reals_from_a_gradient_are_accepted_as_floats():
    register_op(
        name="ints",
        arity=2,
        forward=lambda a, b: a + b,
        gradient=lambda a, b, out: (1, np.float32(2)),
    )
    a, b = Scalar(1.0), Scalar(2.0)
    a.ints(b).backward()
    assert (a.grad, b.grad) == (1.0, 2.0) and type(a.grad) is float is type(b.grad)


def test_an_exception_in_a_gradient_is_reported_with_the_op():
    register_op(
        name="oops",
        arity=1,
        forward=lambda x: x,
        gradient=lambda x, out: (undefined_name,),  # noqa: F821
    )
    with pytest.raises(GradientError, match=r"op 'oops' .* raised NameError") as info:
        Scalar(1.0).oops().backward()
    assert isinstance(info.value.__cause__, NameError)


def test_a_gradient_that_divides_by_zero_follows_the_ieee_policy_on_both_paths():
    register_op(
        name="inv",
        arity=1,
        forward=lambda x: 1 / x if x else math.inf,
        gradient=lambda x, out: (-1 / (x * x),),
    )
    x = Scalar(0.0)
    y = x.inv()
    y.backward()
    (scalar_path,) = grad(y, x, create_graph=True)
    assert x.grad == scalar_path.data == grad(y, x)[0] == -math.inf


def test_a_composite_forward_must_return_a_scalar():
    register_op(name="lost", arity=1, forward=lambda x: "not a scalar")
    with pytest.raises(TypeError, match=r"composite op 'lost' .* returned str 'not a scalar'"):
        Scalar(1.0).lost()


def test_composite_results_remember_their_op_and_inputs():
    a, b = Scalar(5.0), Scalar(2.0)
    c = a.mish()  # the activation plugin's composite: x * tanh(softplus(x))
    op, inputs = composite_of(c)
    assert op.name == "mish" and inputs == (a,)
    assert composite_of(a * b) is None and composite_of(a) is None
    assert composite_of(-a) is None and composite_of(a / b) is None  # primitives now


def test_local_gradient_is_the_ops_declared_terms():
    a, b = Scalar(2.0), Scalar(-3.0)
    assert local_gradient(a * b) == (-3.0, 2.0)
    terms = local_gradient(a * b, create_graph=True)
    assert terms == (b, a)


def test_assigned_values_are_stored_as_floats():
    p = Scalar(2.0)
    p.data = 3  # an int
    assert type(p.data) is float and (p ** Scalar(0.5)).data == math.sqrt(3)
    p.data = np.float32(0.5)
    assert type(p.data) is float
    with pytest.raises(TypeError, match="got str"):
        p.data = "1.0"
    assert p.data == 0.5  # unchanged by the refused assignment


def test_numpy_bools_are_numbers_and_names_are_strings():
    assert Scalar(np.bool_(True)).data == 1.0
    with pytest.raises(TypeError, match="name is a str or None; got int"):
        Scalar(1, name=5)


class Watch:
    """A watcher that lists reads and passes leaves to ``on_leaf`` (or converts them)."""

    def __init__(self, on_read, on_leaf=float):
        self.read, self.leaf = on_read, lambda node, value: on_leaf(value)


def test_watch_sees_reads_by_code_but_not_by_the_engine():
    a = Scalar(2.0)
    read, made = [], []

    def on_leaf(value):
        made.append(value)
        return float(value)

    with watch(Watch(read.append, on_leaf)):
        y = (a * 3).tanh()
        assert read == [] and made == [3]  # the constant 3; the engine read nothing
        grad(y, [a], create_graph=True)  # gradients as nodes read no value
        assert read == []
        y.backward()  # gradients as numbers are read from the graph's values
        grad(y, [a])
        float(y)
        _ = a.data
        with pytest.raises(RuntimeError, match="already"):
            with watch(Watch(read.append)):
                pass
    assert read == [y, y, y, a]
    _ = a.data
    assert read == [y, y, y, a]  # the watch ended


@pytest.mark.parametrize("gradient", ["1.0", None])
def test_a_backward_that_fails_leaves_the_leaves_as_they_were(gradient):
    register_op(name="two_terms", arity=1, forward=lambda x: x, gradient=lambda x, out: (1, 2))
    a, b, c = Scalar(3.0), Scalar(4.0), Scalar(5.0)
    (a * b).backward()
    assert (a.grad, b.grad, c.grad) == (4.0, 3.0, 0.0)
    with pytest.raises(GradientError, match="two_terms"):
        (a * b + c * a.two_terms()).backward()
    assert (a.grad, b.grad, c.grad) == (4.0, 3.0, 0.0)  # not -0.0, not partly added
    with pytest.raises(TypeError):
        (a * c).backward(gradient)
    assert (a.grad, b.grad, c.grad) == (4.0, 3.0, 0.0)


def test_grad_says_what_it_was_given_instead_of_scalars():
    x = Scalar(1.0)
    with pytest.raises(TypeError, match="inputs must be Scalars; got float 1.0"):
        grad(x, 1.0)
    with pytest.raises(TypeError, match="outputs must be Scalars; got float 3.0"):
        grad(3.0, x)


def test_a_term_too_large_for_a_float_is_inf():
    register_op(name="huge_slope", arity=1, forward=lambda x: x, gradient=lambda x, out: (10**400,))
    x = Scalar(1.0)
    assert grad(x.huge_slope(), [x]) == (math.inf,)


def test_a_watch_that_raises_stops_watching_reads():
    a = Scalar(2.0)
    read = []
    with pytest.raises(KeyError):
        with watch(Watch(read.append)):
            _ = a.data
            raise KeyError("stop")
    _ = a.data, float(a)
    a.data = 3  # the setter still stores floats
    assert read == [a] and a.data.__class__ is float


def test_comparisons_and_format_are_value_reads():
    a = Scalar(2.0)
    read = []
    with watch(Watch(read.append)):
        assert a < 3 and a <= a and not a > 2 and 1 <= a
        assert f"{a:.2f}" == "2.00"
    assert read == [a] * 6


def test_watch_watches_only_the_thread_that_asked():
    other = Scalar(1.0)
    seen, results = [], []

    def elsewhere():
        results.append((Scalar(2) * other).data)

    with watch(Watch(seen.append, lambda value: seen.append(value) or float(value))):
        thread = threading.Thread(target=elsewhere)
        thread.start()
        thread.join()
    assert results == [2.0] and seen == []


def test_each_node_is_one_object_for_the_garbage_collector():
    x = Scalar(0.5)
    x * x  # plugins load on first use: not part of what is counted
    gc.collect()
    before = len(gc.get_objects())
    y = x
    for _ in range(10_000):
        y = y * x + x  # two nodes per round, no constants
    tracked = len(gc.get_objects()) - before
    assert tracked <= 20_000 * 1.01


def test_registered_ops_are_scalar_methods_until_the_registry_is_reset():
    import mingrad_core

    register_op(name="twice", arity=1, forward=lambda x: 2 * x, gradient=lambda x, out: (2.0,))
    assert Scalar.twice.__name__ == "twice" and Scalar(3.0).twice().data == 6.0
    mingrad_core.reset()
    assert "twice" not in vars(Scalar)
    with pytest.raises(AttributeError, match="twice"):
        Scalar(3.0).twice()


def test_errors_of_an_op_used_without_registering_it_say_so():
    from mingrad_core import OpSpec

    loose = OpSpec(name="loose", arity=1, forward=lambda x: x, gradient=lambda x, out: 2.0)
    with pytest.raises(GradientError, match=r"op 'loose' \(not registered\) at inputs"):
        loose(Scalar(1.0)).backward()
