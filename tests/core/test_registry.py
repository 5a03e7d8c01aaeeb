import math
import re
import subprocess
import sys
import warnings

import pytest

import mingrad_core
from mingrad_core import (
    OpRegistrationError,
    OpSpec,
    PluginError,
    PluginWarning,
    Scalar,
    UnknownOpError,
    failures,
    functional,
    get_op,
    hookimpl,
    ops,
    origin_of,
    register_op,
    register_plugin,
)

CUBE = dict(name="cube", arity=1, forward=lambda x: x**3, gradient=lambda x, out: (3 * x * x,))


def test_the_registry_is_built_on_first_use_not_at_import():
    code = (
        "import mingrad_core, mingrad_core.engine as e; assert e.load_ops is not None; "
        "assert not e.ops; mingrad_core.Scalar(1.0) + 1; assert e.load_ops is None and e.ops"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_builtins_come_from_the_builtin_plugin_entry_point():
    assert {"add", "mul", "pow", "relu", "tanh", "exp", "log", "neg", "sub", "div"} <= set(ops())
    origin = origin_of("tanh")
    assert (origin.plugin, origin.distribution) == ("builtins", "mingrad")


def test_an_op_registered_in_a_script_works_as_method_and_function():
    register_op(**CUBE)
    x = Scalar(2.0)
    for y in (x.cube(), functional.cube(x), get_op("cube")(x)):
        assert y.data == 8.0 and y.op.name == "cube"
        x.grad = 0.0
        y.backward()
        assert x.grad == 12.0
    assert functional.cube(2.0) == 8.0  # numbers in, number out
    assert origin_of("cube").plugin == __name__


def test_register_accepts_a_spec():
    spec = register_op(OpSpec(**CUBE))
    assert get_op("cube") is spec and spec.label == "cube"


def test_duplicate_name_names_both_owners_and_changes_nothing():
    before = ops()
    with pytest.raises(
        OpRegistrationError,
        match=rf"'tanh' from plugin '{re.escape(__name__)}' is already registered by "
        r"plugin 'builtins', distribution mingrad",
    ):
        register_op(name="tanh", arity=1, forward=math.tanh, gradient=lambda x, out: (0.0,))
    assert ops() == before


@pytest.mark.parametrize(
    "field, value, message",
    [
        ("arity", 0, "arity"),
        ("name", "2bad", "name"),
        ("forward", "not callable", "forward"),
        ("gradient", lambda x: (1.0,), "gradient must accept 2 positional"),
        ("operator", "+", "operator '\\+' needs arity 2"),
        ("domain", ((1.0, 0.0),), "low < high"),
        ("colour", "red", "colour"),
    ],
)
def test_an_invalid_spec_names_the_op_and_the_field_and_changes_nothing(field, value, message):
    before = ops()
    with pytest.raises(OpRegistrationError, match=f"invalid op .*(?s:.*){message}"):
        register_op(**{**CUBE, field: value})
    assert ops() == before


def test_an_operator_can_be_bound_once():
    with pytest.raises(OpRegistrationError, match="operator '\\+', already bound to op 'add'"):
        register_op(
            name="plus",
            arity=2,
            operator="+",
            forward=lambda a, b: a + b,
            gradient=lambda a, b, out: (1.0, 1.0),
        )


def test_an_op_may_not_hide_a_scalar_attribute():
    with pytest.raises(OpRegistrationError, match="'backward'.*hide the Scalar attribute"):
        register_op(name="backward", arity=1, forward=abs, gradient=lambda x, out: (1.0,))


def test_unknown_op_lists_the_registered_ones():
    expected = "no op named 'nothing'; registered ops: abs, add, div"
    with pytest.raises(UnknownOpError, match=expected):
        get_op("nothing")


def test_wrong_argument_count_and_bad_forward_results_are_named():
    with pytest.raises(TypeError, match="op 'tanh' takes 1 input"):
        functional.tanh(Scalar(1.0), Scalar(2.0))
    register_op(name="cplx", arity=1, forward=lambda x: 1j, gradient=lambda x, out: (0.0,))
    with pytest.raises(TypeError, match="op 'cplx' \\(plugin '.*'\\) forward returned complex"):
        Scalar(1.0).cplx()


class TwoOps:
    """A plugin whose second op is invalid: neither may be registered."""

    @hookimpl
    def mingrad_register_ops(self, register):
        register(**CUBE)
        register(name="bad", arity=-1, forward=abs)


def test_a_plugin_registers_all_of_its_ops_or_none():
    before = ops()
    with pytest.warns(PluginWarning, match="skipped plugin 'two'.*invalid op 'bad'"):
        register_plugin(TwoOps(), name="two")
    assert ops() == before
    assert [f.origin.plugin for f in failures()] == ["two"]


GOOD = """
import math
from mingrad_core import hookimpl

@hookimpl
def mingrad_register_ops(register):
    register(name="softsign", arity=1, label="softsign", forward=lambda x: x / (1 + abs(x)),
             gradient=lambda x, out: (1 / (1 + abs(float(x))) ** 2,))
"""


def test_an_installed_plugin_is_found_through_its_entry_point(install_plugin):
    install_plugin("mingrad-softsign", {"softsign": GOOD}, version="2.3")
    assert Scalar(1.0).softsign().data == 0.5
    assert tuple(origin_of("softsign")) == ("softsign", "mingrad-softsign", "2.3")


def test_a_plugin_that_fails_to_import_is_skipped_with_a_warning(install_plugin):
    install_plugin(
        "mingrad-broken", {"boom": "raise ImportError('no such thing')", "softsign": GOOD}
    )
    with pytest.warns(
        PluginWarning,
        match="plugin 'boom', distribution mingrad-broken 1.0.*ImportError: no such thing",
    ):
        assert (Scalar(1.0) + 1).data == 2.0
    assert Scalar(1.0).softsign().data == 0.5  # the other entry point still loaded
    assert [f.origin.plugin for f in failures()] == ["boom"]
    with pytest.raises(UnknownOpError, match="plugin 'boom'.*failed to load"):
        get_op("missing")


@pytest.mark.parametrize(
    "source, error",
    [
        (
            "from mingrad_core import hookimpl\n@hookimpl\n"
            "def mingrad_register_opz(register): pass",
            "unknown hook 'mingrad_register_opz'",
        ),
        (
            "from mingrad_core import hookimpl\n@hookimpl\ndef mingrad_register_ops(register):\n"
            "    register(name='tanh', arity=1, forward=abs, gradient=lambda x, out: (1.0,))",
            "already registered by plugin 'builtins'",
        ),
        (
            "from mingrad_core import hookimpl\n@hookimpl\ndef mingrad_register_ops(register):\n"
            "    1 / 0",
            "ZeroDivisionError",
        ),
    ],
)
def test_a_plugin_that_fails_to_register_is_skipped(install_plugin, source, error):
    install_plugin("mingrad-faulty", {"faulty": source})
    with pytest.warns(PluginWarning, match=error):
        assert Scalar(2.0).tanh().data == math.tanh(2.0)


def test_strict_mode_turns_a_plugin_failure_into_an_error(install_plugin, monkeypatch):
    install_plugin("mingrad-broken", {"boom": "raise ImportError('no such thing')"})
    monkeypatch.setenv("MINGRAD_STRICT_PLUGINS", "1")
    for _ in range(2):  # and keeps failing, rather than running on half the plugins
        with pytest.raises(PluginError, match="plugin 'boom', distribution mingrad-broken"):
            Scalar(1.0) + 1


@pytest.mark.parametrize(
    "allow, loaded, unknown",
    [
        ("", set(), []),
        ("mingrad-softsign", {"softsign"}, []),
        ("other, softsign", {"softsign"}, ["'other'"]),
        ("something-else", set(), ["'something-else'"]),
    ],
)
def test_the_allowlist_limits_installed_plugins_but_keeps_builtins(
    install_plugin, monkeypatch, allow, loaded, unknown
):
    install_plugin("mingrad-softsign", {"softsign": GOOD})
    monkeypatch.setenv("MINGRAD_PLUGINS", allow)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert {"softsign"} & set(ops()) == loaded
    assert [str(w.message).split()[3].rstrip(",") for w in caught] == unknown
    assert (Scalar(1.0) * 2).data == 2.0


def test_an_operator_without_an_op_is_a_type_error():
    a = Scalar(1.0)
    add = get_op("add")  # registered again without its operator: "+" is left unbound
    register_op(name="add", arity=2, forward=add.forward, gradient=add.gradient, replace=True)
    for expression in (lambda: a + 1, lambda: 1 + a, lambda: a + a):
        with pytest.raises(TypeError, match="no registered op is bound to operator '\\+'"):
            expression()
    assert (a * 2).data == 2.0


def test_replacing_the_op_bound_to_an_operator_takes_effect_on_existing_scalars():
    a, b = Scalar(3.0), Scalar(4.0)
    assert (a * b).op.name == "mul"
    register_op(name="mul", arity=2, operator="*", forward=lambda x, y: x * y + 1,
                gradient=lambda x, y, out: (y, x), label="x", replace=True)  # fmt: skip
    for out, value in ((a * b, 13.0), (a * 2, 7.0), (2 * a, 7.0)):
        assert (out.op.label, out.data) == ("x", value)
    register_op(name="neg", arity=1, operator="neg", forward=lambda x: 10 - x,
                gradient=lambda x, out: (-1.0,), replace=True)  # fmt: skip
    assert (-a).data == 7.0 and (-a).op.name == "neg"
    register_op(
        name="sub", arity=2, operator="-", forward=lambda x, y: x + (y + y), replace=True
    )  # fmt: skip  (a composite: no gradient of its own)
    for out, value in ((a - b, 11.0), (a - 1, 5.0), (1 - a, 7.0)):
        assert (out.data, out.op.name) == (value, "add")
    abs_op = get_op("abs")  # "abs" left free, then bound by a plugin registered by hand
    register_op(name="abs", arity=1, forward=abs_op.forward, gradient=abs_op.gradient, replace=True)
    with pytest.raises(TypeError, match="no registered op is bound to operator .abs."):
        abs(a)

    class Plugin:
        @hookimpl
        def mingrad_register_ops(register):
            register(name="size", arity=1, operator="abs", forward=lambda x: 2 * abs(x),
                     gradient=lambda x, out: (2.0,))  # fmt: skip

    register_plugin(Plugin, name="size-plugin")
    assert abs(Scalar(-4.0)).data == 8.0
    mingrad_core.reset()  # the next use loads the built-in ops again
    assert (a * b).data == 12.0 and (-a).data == -3.0 and (a - b).op.name == "sub"


def test_a_variadic_op_takes_arity_or_more_inputs_and_binds_no_operator():
    register_op(
        name="total",
        arity=1,
        variadic=True,
        forward=lambda *xs: sum(xs),
        gradient=lambda *xs_out: (1.0,) * (len(xs_out) - 1),
    )
    xs = [Scalar(float(i)) for i in range(5)]
    y = functional.total(*xs)
    assert y.data == 10.0 and y.parents == tuple(xs)
    y.backward()
    assert [x.grad for x in xs] == [1.0] * 5
    with pytest.raises(TypeError, match="op 'tanh' takes 1 input"):
        functional.tanh()
    with pytest.raises(TypeError, match="op 'total' takes 1 or more input"):
        functional.total()
    with pytest.raises(OpRegistrationError, match="variadic op cannot be bound to an operator"):
        register_op(name="plus", arity=2, variadic=True, operator="+", forward=lambda *a: 0.0)


def test_an_op_spec_is_frozen():
    spec = get_op("tanh")
    with pytest.raises(AttributeError, match="cannot assign to field .name."):
        spec.name = "other"


RERUN = """
from mingrad_core import register_op
register_op(name="twice", arity=1, forward=lambda x: 2 * x, gradient=lambda x, out: (FACTOR,))
"""


def test_re_registering_from_the_same_module_replaces_with_a_warning():
    module = {"__name__": "notebook_cell"}
    exec(RERUN.replace("FACTOR", "2.0"), module)
    with pytest.warns(UserWarning, match="'twice' .*replaces the op of that name"):
        exec(RERUN.replace("FACTOR", "3.0"), module)  # a re-run cell, with a fix
    x = Scalar(1.0)
    x.twice().backward()
    assert x.grad == 3.0 and origin_of("twice").plugin == "notebook_cell"


def test_another_module_needs_replace_true_and_the_error_says_so():
    exec(RERUN.replace("FACTOR", "2.0"), {"__name__": "first"})
    with pytest.raises(
        OpRegistrationError,
        match=r"already registered by plugin 'first'.*"
        r"replace=True",
    ):
        exec(RERUN.replace("FACTOR", "3.0"), {"__name__": "second"})
    assert ops()["twice"].gradient(1.0, 2.0) == (2.0,)  # unchanged
    register_op(
        name="twice", arity=1, forward=lambda x: 2 * x, gradient=lambda x, out: (5.0,), replace=True
    )
    assert ops()["twice"].gradient(1.0, 2.0) == (5.0,)


def test_replacing_an_op_moves_its_operator_binding():
    old = ops()["sub"]
    register_op(
        name="sub",
        arity=2,
        forward=lambda a, b: a - b,
        gradient=lambda a, b, out: (1.0, -1.0),
        replace=True,
    )
    with pytest.raises(TypeError, match="no registered op is bound to operator '-'"):
        Scalar(1.0) - 1
    assert old.operator == "-"
