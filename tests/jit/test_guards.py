"""jit guards: a replay follows, or refuses, the Python state its trace read from outside."""

import copy
import math
import pickle
import random
import types
import warnings

import numpy as np
import pytest

from mingrad_core import Scalar, register_op
from mingrad_jit import TracedStateError, TracedValueError, jit
from mingrad_jit.guards import collect
from mingrad_nn import MLP

model = MLP(2, [4, 1], seed=1)
alpha = 2
kept_outside: list = []


def model_loss(x):
    return model([Scalar(x[0]), Scalar(x[1])])


def eager_and_jit_gradients(make_model, fn, x):
    """Value and parameter gradients of ``fn(x)``, eager and jitted, for the current model."""
    out = []
    for f in (fn, jit(fn)):
        current = make_model()
        current.zero_grad()
        result = f(x)
        result.backward()
        out.append((result.data, [p.grad for p in current.parameters()]))
    return out


def test_rebinding_a_global_model_as_rerunning_a_notebook_cell_traces_again():
    global model
    jitted = jit(model_loss)
    first = jitted([1.0, 2.0]).data
    model = MLP(2, [4, 1], seed=2)  # the cell that builds the model runs again
    model.zero_grad()
    result = jitted([1.0, 2.0])
    result.backward()
    assert first != result.data
    assert result.data == pytest.approx(model([1.0, 2.0]).data, rel=1e-12)
    assert any(p.grad != 0 for p in model.parameters())  # backward reached the new model
    assert jitted.traces == 2


def test_training_a_captured_model_in_place_replays_without_tracing_again():
    jitted = jit(model_loss)
    for _ in range(3):
        model.zero_grad()
        jitted([0.5, -1.0]).backward()
        for p in model.parameters():
            p.data -= 0.1 * p.grad
        assert jitted([0.5, -1.0]).data == pytest.approx(model([0.5, -1.0]).data, rel=1e-12)
    assert (jitted.traces, jitted.replays) == (1, 5)


def test_a_captured_global_number_changed_after_the_first_call_is_followed():
    global alpha

    @jit
    def f(x):
        return Scalar(x[0]) * alpha

    alpha = 2
    assert f([1.2]).data == pytest.approx(2.4)
    alpha = 10
    assert f([1.2]).data == pytest.approx(12.0)
    alpha = 10  # the same value again: no new trace
    f([1.2])
    assert f.traces == 2


def test_a_captured_closure_number_changed_after_the_first_call_is_followed():
    scale = 2.0

    @jit
    def f(x):
        return Scalar(x[0]) * scale

    assert f([3.0]).data == 6.0
    scale = 7.0
    assert f([3.0]).data == 21.0


def test_an_attribute_of_self_changed_between_calls_is_followed():
    class Scaled:
        def __init__(self):
            self.w, self.alpha = Scalar(1.5), 2.0

        @jit
        def loss(self, x):
            return self.w * x[0] * self.alpha

    s = Scaled()
    assert s.loss([2.0]).data == 6.0
    s.alpha = 10.0
    assert s.loss([2.0]).data == 30.0
    s.w = Scalar(0.5)  # a new parameter object: replaying the old one would be wrong
    result = s.loss([2.0])
    result.backward()
    assert (result.data, s.w.grad) == (10.0, 20.0)


def test_a_helper_function_reading_a_global_is_guarded_too():
    global alpha

    def helper(x):
        return x * alpha

    @jit
    def f(x):
        return helper(Scalar(x[0]))

    alpha = 3
    assert f([1.0]).data == 3.0
    alpha = 4
    assert f([1.0]).data == 4.0


def test_reading_grad_while_tracing_is_refused_naming_the_line():
    p = Scalar(3.0)
    p.grad = 3.0

    @jit
    def f(x):
        return p * p.grad + x[0]

    with pytest.raises(TracedValueError, match=r"(?s)test_guards.py:\d+.*p\.grad.*\.grad of"):
        f([0.0])
    assert p.grad == 3.0  # reading works again after the trace
    p.grad = 100.0
    assert (p * p.grad).data == 300.0


@pytest.mark.parametrize("draw", ["random", "numpy"])
def test_random_numbers_drawn_while_tracing_are_refused(draw):
    @jit
    def dropout(xs):
        keep = [random.random() > 0.5 if draw == "random" else np.random.rand() > 0.5 for _ in xs]
        return sum((Scalar(x) for x, k in zip(xs, keep) if k), Scalar(0.0))

    with pytest.raises(TracedValueError, match="drew random numbers.*pass them in as an argument"):
        dropout([1.0, 2.0, 3.0])


def test_a_dropout_mask_passed_as_an_argument_changes_every_call():
    @jit
    def dropout(xs, mask):
        return sum(Scalar(x) * m for x, m in zip(xs, mask))

    rng = random.Random(0)
    for _ in range(5):
        mask = [float(rng.random() > 0.5) for _ in range(4)]
        xs = [1.0, 2.0, 3.0, 4.0]
        assert dropout(xs, mask).data == sum(x * m for x, m in zip(xs, mask))
    assert dropout.traces == 1


def test_a_parameter_created_lazily_on_the_first_call_gets_its_gradient():
    class Lazy:
        def __init__(self):
            self.w = None

        @jit
        def loss(self, x):
            if self.w is None:
                self.w = Scalar(0.5)
            return self.w * x[0]

    lazy = Lazy()
    result = lazy.loss([3.0])
    result.backward()
    assert (result.data, lazy.w.grad) == (1.5, 3.0)
    lazy.w.data = 2.0
    assert lazy.loss([3.0]).data == 6.0


def test_a_scalar_made_while_tracing_and_kept_outside_is_an_error_naming_it():
    @jit
    def f(x):
        w = Scalar(0.25)
        kept_outside.append(w)  # a new "parameter" on every call: nothing a replay can do
        return w * x[0]

    with pytest.raises(TracedStateError, match=r"Scalar\(data=0.25.*kept outside the function"):
        f([1.0])
    kept_outside.clear()


def test_a_global_changed_on_every_call_is_an_error_naming_it():
    @jit
    def f(x):
        global alpha
        alpha = alpha + 1
        return Scalar(x[0]) * alpha

    with pytest.raises(TracedStateError, match="global 'alpha'"):
        f([1.0])


def test_isinstance_of_an_argument_is_refused_naming_the_line():
    @jit
    def f(x):
        return Scalar(x[0]) * 2 if isinstance(x[0], float) else Scalar(x[0])

    with pytest.raises(TracedValueError, match=r"(?s)test_guards.py:\d+.*isinstance\(\) or"):
        f([1.0])


def test_type_of_an_argument_while_tracing_is_TracedNumber_as_documented():
    seen = []

    @jit
    def f(x):
        seen.append(type(x[0]).__name__)
        return Scalar(x[0])

    f([1.0])
    assert seen == ["TracedNumber"]


def test_guards_name_what_they_watch():
    names = collect(model_loss).names()
    assert any("global 'model'" in name for name in names)
    assert any("global 'Scalar'" in name for name in names)


def test_excessive_retracing_warns_once_naming_what_changed():
    @jit
    def total(xs):
        return sum(map(Scalar, xs))

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for n in range(1, 13):
            total([1.0] * n)
    messages = [str(w.message) for w in caught if issubclass(w.category, RuntimeWarning)]
    assert len(messages) == 1
    assert [w.filename for w in caught] == [__file__]  # the warning points at the call
    assert "traced 8 times" in messages[0]
    assert "argument 1's shape changed from (7,) to (8,)" in messages[0]


def test_the_trace_cache_keeps_the_most_recently_used_traces():
    @jit(cache_size=2)
    def total(xs):
        return sum(map(Scalar, xs))

    with pytest.warns(RuntimeWarning, match="traced 3 times"):  # a trace had to be dropped
        for n in (1, 2, 1, 3):
            assert total([1.0] * n).data == n
    assert [info.key[0][1] for info in total.info()] == [(1,), (3,)]
    total([1.0] * 2)  # dropped: traced again
    assert total.traces == 4


def test_a_chosen_cache_size_warns_only_once_a_trace_is_dropped():
    @jit(cache_size=12)
    def total(xs):
        return sum(map(Scalar, xs))

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for n in range(1, 13):  # twelve lengths, all kept: expected, no warning
            total([1.0] * n)
        assert caught == []
        total([1.0] * 13)  # the thirteenth drops one
    assert len(caught) == 1
    assert "traced 13 times" in str(caught[0].message)
    assert "(12,) to (13,)" in str(caught[0].message)


def test_the_default_cache_is_bounded():
    @jit
    def total(xs):
        return sum(map(Scalar, xs))

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        for n in range(1, 41):
            total([1.0] * n)
    assert len(total.info()) == total.cache_size == 32


@pytest.mark.parametrize("size", [0, -1, 2.5, "8"])
def test_a_bad_cache_size_is_refused(size):
    with pytest.raises(ValueError, match="cache_size"):
        jit(lambda x: x, cache_size=size)


class Affine:
    """A module-level class with a jitted method, for copying and pickling."""

    def __init__(self, w: float):
        self.w = Scalar(w)

    @jit
    def __call__(self, x):
        return self.w * x[0]


@pytest.mark.parametrize(
    "clone", [copy.copy, copy.deepcopy, lambda a: pickle.loads(pickle.dumps(a))]
)
def test_a_copy_of_an_object_whose_jitted_method_ran_replays_its_own_self(clone):
    original = Affine(2.0)
    assert original([3.0]).data == 6.0
    twin = clone(original)
    twin.w = Scalar(5.0)
    result = twin([3.0])
    result.backward()
    assert (result.data, twin.w.grad, original.w.grad) == (15.0, 3.0, 0.0)
    assert original([3.0]).data == 6.0


class Boom(float):
    """A gradient whose addition is interrupted."""

    def __add__(self, other):
        raise KeyboardInterrupt


@pytest.mark.parametrize("strategy", ["levels", "code"])
def test_an_interrupted_backward_leaves_every_gradient_as_it_was(strategy):
    params = [Scalar(0.1 * i) for i in range(50)]
    for p in params:
        p.grad = 1.0

    @jit(strategy=strategy)
    def f(x):
        return sum(p * x[0] for p in params)

    result = f([2.0])
    params[30].grad = Boom(7.0)  # adding into it is interrupted, after the others began
    with pytest.raises(KeyboardInterrupt):
        result.backward()
    assert [p.grad for p in params] == [1.0] * 30 + [7.0] + [1.0] * 19
    params[30].grad = 1.0
    result.backward()
    assert [p.grad for p in params] == [3.0] * 50


def test_an_interrupted_backward_restores_parameters_kept_in_bulk(monkeypatch):
    # the level replay adds into a store's array at once ("code" adds one by one: Boom above)
    strategy = "levels"
    from mingrad_jit.params import Parameters
    from mingrad_nn import MLP

    added = Parameters.add_grads

    def add_then_interrupt(self, grads):
        added(self, grads)  # every gradient is added into the store's array ...
        raise KeyboardInterrupt  # ... and then the backward is interrupted

    model = MLP(2, [3, 1], seed=0)
    loss = jit(strategy=strategy)(lambda x: model(list(map(Scalar, x))))
    loss([0.5, -1.0]).backward()  # the store is in bulk now
    before = [p.grad for p in model.parameters()]
    assert model.parameter_store.in_bulk and any(before)
    monkeypatch.setattr(Parameters, "add_grads", add_then_interrupt)
    loss2 = jit(strategy=strategy)(lambda x: model(list(map(Scalar, x))))
    result = loss2([0.5, -1.0])
    with pytest.raises(KeyboardInterrupt):
        result.backward()
    assert [p.grad for p in model.parameters()] == before


def test_library_functions_are_not_followed():
    from textwrap import dedent

    def f(x):
        return Scalar(len(dedent("  a"))) * x[0]

    names = collect(f).names()
    assert any("'dedent'" in name for name in names)  # the name is guarded ...
    assert not any("of textwrap" in name for name in names)  # ... its module's state is not


@jit
def total_of_squares(xs):
    return sum(Scalar(x) * x for x in xs)


def test_a_jitted_function_pickles_by_name():
    assert pickle.loads(pickle.dumps(total_of_squares)) is total_of_squares


def test_the_package_cache_size_counts_for_functions_jitted_afterwards(monkeypatch):
    import mingrad_jit

    monkeypatch.setattr(mingrad_jit, "CACHE_SIZE", 3, raising=False)
    total = jit(lambda xs: sum(map(Scalar, xs)))
    assert total.cache_size == 3
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        for n in range(1, 6):
            total([1.0] * n)
    assert len(total.info()) == 3


def test_a_captured_number_is_compared_as_arithmetic_sees_it():
    offset = 0.0

    @jit
    def f(x):
        return Scalar(x[0]) * offset

    assert math.copysign(1.0, f([1.0]).data) == 1.0
    offset = -0.0  # == 0.0, but 1 / offset and x * offset differ
    assert math.copysign(1.0, f([1.0]).data) == -1.0
    offset = float("nan")
    assert math.isnan(f([1.0]).data)
    offset = float("nan")  # another nan object: the same value, no new trace
    assert math.isnan(f([1.0]).data)
    assert f.traces == 3


def test_an_op_registered_anew_after_the_trace_is_replayed_in_its_new_form():
    def define(factor):  # a notebook cell defining the op, run again with another factor
        register_op(
            name="stretch",
            arity=1,
            forward=lambda x: factor * x,
            gradient=lambda x, out: (factor,),
            replace=True,
        )

    define(2.0)
    p = Scalar(1.0)

    @jit
    def f(x):
        return (p * x[0]).stretch()

    assert f([3.0]).data == 6.0
    define(5.0)
    result = f([3.0])
    result.backward()
    assert (result.data, p.grad) == (15.0, 15.0)
    assert f.traces == 2


class Model:
    """State read through code the jitted function calls: __call__, a property, a method."""

    alpha = 1.0  # a class attribute, read as self.alpha

    def __init__(self):
        self.w, self._scale = Scalar(2.0), 1.0

    def __call__(self, x):
        return self.w * x * self.scale

    @property
    def scale(self):
        return self._scale * self.alpha

    def shifted(self, x):
        return self(x) + self.alpha


def test_state_read_through_a_captured_objects_call_and_property_is_guarded():
    model = Model()

    @jit
    def f(x):
        return model(x[0])

    assert f([3.0]).data == 6.0
    model.w = Scalar(5.0)  # read by Model.__call__
    result = f([3.0])
    result.backward()
    assert (result.data, model.w.grad) == (15.0, 3.0)
    model._scale = 3.0  # read by the property scale
    assert f([3.0]).data == 45.0
    assert f.traces == 3


def test_class_attributes_read_through_self_and_a_method_are_guarded():
    model = Model()

    @jit
    def f(x):
        return model.shifted(x[0])

    assert f([3.0]).data == 7.0
    Model.alpha = 10.0
    try:
        assert f([3.0]).data == 70.0
    finally:
        Model.alpha = 1.0
    assert f([3.0]).data == 7.0


def test_a_jitted_methods_own_calls_on_self_are_guarded():
    class Net(Model):
        @jit
        def loss(self, x):
            return self(x[0])

    net = Net()
    assert net.loss([1.0]).data == 2.0
    net._scale = 4.0
    assert net.loss([1.0]).data == 8.0


def test_slots_attributes_are_guarded():
    class Slotted:
        __slots__ = ("w", "beta")

        def __init__(self):
            self.w, self.beta = Scalar(1.0), 2.0

    s = Slotted()

    @jit
    def f(x):
        return s.w * x[0] * s.beta

    assert f([3.0]).data == 6.0
    s.beta = 5.0
    assert f([3.0]).data == 15.0
    s.w = Scalar(2.0)
    assert f([3.0]).data == 30.0


def test_attributes_of_a_captured_module_are_guarded():
    cfg = types.ModuleType("jit_test_cfg")  # as `import cfg` of a module of the user's
    cfg.alpha = 2.0
    exec("def scaled(x):\n    return x * alpha\n", vars(cfg))

    @jit
    def f(x):
        return Scalar(x[0]) * cfg.alpha + cfg.scaled(Scalar(1.0))

    assert f([3.0]).data == 8.0
    cfg.alpha = 10.0  # read by f, and by cfg.scaled as a global of cfg
    assert f([3.0]).data == 40.0


def test_items_of_captured_lists_dicts_and_arrays_changed_after_the_trace_are_followed():
    weights, table, array = [2.0, 3.0], {"a": 4.0}, np.array([5.0])

    @jit
    def f(x):
        return Scalar(x[0]) * weights[0] * table["a"] * array[0]

    assert f([1.0]).data == 40.0
    weights[0] = 1.0
    assert f([1.0]).data == 20.0
    table["a"] = 1.0
    assert f([1.0]).data == 5.0
    array[0] = -1.0
    assert f([1.0]).data == -1.0
    weights[1] = 3.0  # the same value again, another float object: no new trace
    assert f([1.0]).data == -1.0
    assert (f.traces, f.replays) == (4, 1)


def test_a_list_of_parameters_with_an_item_replaced_traces_again():
    class Holder:
        def __init__(self):
            self.params = [Scalar(1.0), Scalar(2.0)]

        @jit
        def total(self, x):
            return sum(p * x[0] for p in self.params)

    h = Holder()
    assert h.total([1.0]).data == 3.0
    h.params[0] = Scalar(10.0)
    result = h.total([1.0])
    result.backward()
    assert (result.data, h.params[0].grad) == (12.0, 1.0)


def test_a_list_the_function_appends_to_while_traced_is_no_change():
    log = []

    @jit
    def f(x):
        log.append("traced")
        return Scalar(x[0])

    f([1.0])
    f([2.0])
    assert (log, f.traces) == (["traced"], 1)
