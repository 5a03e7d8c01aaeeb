"""Which installed plugins load, in what order, and how a failing one is reported."""

import math

import pytest

import mingrad_core
from mingrad_core import (
    PluginError,
    PluginWarning,
    Scalar,
    failures,
    hookimpl,
    ops,
    origin_of,
    register_plugin,
)

RELU_CLASH = """
from mingrad_core import hookimpl

@hookimpl
def mingrad_register_ops(register):
    register(name="relu", arity=1, forward=abs, gradient=lambda x, out: (1.0,))
"""
SOFTSIGN = """
from mingrad_core import hookimpl

@hookimpl
def mingrad_register_ops(register):
    register(name="softsign", arity=1, forward=lambda x: x / (1 + abs(x)),
             gradient=lambda x, out: (1 / (1 + abs(float(x))) ** 2,))
"""
RAISES_IN_HOOK = """\
from mingrad_core import hookimpl


@hookimpl
def mingrad_register_ops(register):
    raise RuntimeError("hook broke")
"""


def module_file(root, entry_point):
    (path,) = root.glob(f"*_{entry_point}_*.py")
    return path


def test_a_plugin_named_before_builtins_cannot_take_a_builtin_op(install_plugin):
    root = install_plugin("mingrad-aaa", {"aaa": RELU_CLASH})
    with pytest.warns(PluginWarning, match="skipped plugin 'aaa'.*'relu'.*already registered by"):
        assert (Scalar(2.0) * 3).data == 6.0
    assert origin_of("relu").plugin == "builtins"
    assert Scalar(-1.0).relu().data == 0.0
    assert [(f.origin.plugin, f.origin.distribution) for f in failures()] == [
        ("aaa", "mingrad-aaa")
    ]
    assert module_file(root, "aaa").exists()


def test_a_skipped_plugin_warning_points_at_the_line_that_raised_in_its_hook(install_plugin):
    root = install_plugin("mingrad-faulty", {"faulty": RAISES_IN_HOOK})
    path = module_file(root, "faulty")
    with pytest.warns(PluginWarning, match=f"module {path.stem}.*RuntimeError: hook broke") as w:
        ops()
    (warning,) = w.list
    assert (warning.filename, warning.lineno) == (str(path), 6)


def test_a_skipped_plugin_warning_points_at_its_bad_register_call(install_plugin):
    source = "from mingrad_core import hookimpl\n\n@hookimpl\ndef mingrad_register_ops(register):\n"
    source += "    register(name='relu', arity=1, forward=abs, gradient=lambda x, out: (1.0,))\n"
    root = install_plugin("mingrad-faulty", {"faulty": source})
    with pytest.warns(PluginWarning, match="already registered") as w:
        ops()
    assert (w.list[0].filename, w.list[0].lineno) == (str(module_file(root, "faulty")), 5)


def test_a_plugin_that_fails_to_import_is_blamed_on_its_import_line(install_plugin):
    root = install_plugin("mingrad-faulty", {"faulty": "import math\nimport no_such_module_x\n"})
    with pytest.warns(PluginWarning, match="ModuleNotFoundError.*no_such_module_x") as w:
        ops()
    assert (w.list[0].filename, w.list[0].lineno) == (str(module_file(root, "faulty")), 2)


@pytest.mark.parametrize(
    "allow", ["mingrad_softsign", "Mingrad-Softsign", "MINGRAD.softsign", "SoftSign"]
)
def test_the_allowlist_matches_names_case_insensitively_and_normalized(
    install_plugin, monkeypatch, allow
):
    install_plugin("mingrad-softsign", {"softsign": SOFTSIGN})
    monkeypatch.setenv("MINGRAD_PLUGINS", f" {allow} ")
    assert "softsign" in ops()


def test_an_allowlist_name_that_matches_nothing_warns_naming_the_installed_plugins(
    install_plugin, monkeypatch
):
    install_plugin("mingrad-softsign", {"softsign": SOFTSIGN})
    monkeypatch.setenv("MINGRAD_PLUGINS", "softsign,mingrad-sofsign")
    with pytest.warns(
        PluginWarning,
        match=r"'mingrad-sofsign', which matches no installed plugin; installed: .*"
        r"mingrad-softsign \(softsign\)",
    ):
        assert "softsign" in ops()


@pytest.mark.parametrize("value", ["0", "false", "No", "OFF", ""])
def test_strict_mode_off_values_skip_a_broken_plugin(install_plugin, monkeypatch, value):
    install_plugin("mingrad-broken", {"boom": "raise ImportError('no such thing')"})
    monkeypatch.setenv("MINGRAD_STRICT_PLUGINS", value)
    with pytest.warns(PluginWarning, match="no such thing"):
        assert (Scalar(1.0) + 1).data == 2.0


@pytest.mark.parametrize("value", ["1", "true", "Yes", "ON"])
def test_strict_mode_on_values_raise(install_plugin, monkeypatch, value):
    install_plugin("mingrad-broken", {"boom": "raise ImportError('no such thing')"})
    monkeypatch.setenv("MINGRAD_STRICT_PLUGINS", value)
    with pytest.raises(PluginError, match="no such thing"):
        ops()


@pytest.mark.parametrize("value", ["2", "maybe", "enabled"])
def test_strict_mode_rejects_an_unknown_value(monkeypatch, value):
    monkeypatch.setenv("MINGRAD_STRICT_PLUGINS", value)
    with pytest.raises(ValueError, match=f"MINGRAD_STRICT_PLUGINS.*got '{value}'"):
        ops()


def test_strict_mode_reports_every_failed_plugin_and_what_loaded(install_plugin, monkeypatch):
    install_plugin(
        "mingrad-broken",
        {"boom": "raise ImportError('no such thing')", "clash": RELU_CLASH, "softsign": SOFTSIGN},
    )
    monkeypatch.setenv("MINGRAD_STRICT_PLUGINS", "1")
    with pytest.raises(PluginError, match="2 plugin") as caught:
        ops()
    error = caught.value
    assert "plugin 'boom'" in str(error) and "plugin 'clash'" in str(error)
    assert [f.origin.plugin for f in error.failures] == ["boom", "clash"]
    assert {"softsign", "relu", "add"} <= set(error.ops)
    assert error.origins["relu"].plugin == "builtins"
    with pytest.raises(PluginError):  # and keeps failing, rather than running on what loaded
        Scalar(1.0) * 2


@pytest.mark.parametrize("name", ["if", "None", "match", "case", "backward", "grad"])
def test_an_op_may_not_shadow_a_keyword_or_a_scalar_attribute(name):
    before = ops()
    with pytest.raises(mingrad_core.OpRegistrationError, match=f"op '{name}' .*choose another"):
        mingrad_core.register_op(name=name, arity=1, forward=abs, gradient=lambda x, out: (1.0,))
    assert ops() == before


@pytest.mark.parametrize("name", ["get_op", "ops", "OpSpec"])
def test_functional_has_no_names_of_its_own_to_shadow(name):
    mingrad_core.register_op(name=name, arity=1, forward=abs, gradient=lambda x, out: (1.0,))
    assert getattr(mingrad_core.functional, name)(-2.0) == 2.0
    assert mingrad_core.functional.tanh(0.0) == math.tanh(0.0)


class Patching:
    """A plugin that monkeypatches Scalar and then fails to register."""

    @hookimpl
    def mingrad_register_ops(self, register):
        Scalar.patched_by_plugin = True
        register(name="relu", arity=1, forward=abs, gradient=lambda x, out: (1.0,))


def test_a_failed_plugin_is_skipped_but_its_side_effects_stay():
    try:
        with pytest.warns(PluginWarning, match="skipped plugin 'patching'"):
            register_plugin(Patching(), name="patching")
        assert Scalar.patched_by_plugin is True  # documented: plugins are trusted code
    finally:
        del Scalar.patched_by_plugin
