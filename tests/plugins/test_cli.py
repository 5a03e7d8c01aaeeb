"""`mingrad ops` and `mingrad check`, with real throwaway plugin distributions."""

import subprocess

import pytest

import mingrad_core
from mingrad.cli import main
from mingrad_core import register_op

WRONG_GRADIENT = """
import math
from mingrad_core import hookimpl

@hookimpl
def mingrad_register_ops(register):
    register(name="badexp", arity=1, forward=math.exp, gradient=lambda x, out: (1.001 * out,))
"""
INVALID_SPEC = """
from mingrad_core import hookimpl

@hookimpl
def mingrad_register_ops(register):
    register(name="nogood", arity=0, forward=abs)
"""
DUPLICATE = """
from mingrad_core import hookimpl

@hookimpl
def mingrad_register_ops(register):
    register(name="relu", arity=1, forward=abs, gradient=lambda x, out: (1.0,))
"""


def test_ops_lists_every_op_with_arity_symbol_and_provider(capsys):
    register_op(name="cube", arity=1, forward=lambda x: x**3, gradient=lambda x, out: (3 * x * x,))
    assert main(["ops"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["op", "arity", "symbol", "operator", "provided", "by"]
    row = {line.split()[0]: line.split() for line in lines[1:] if line.strip()}
    assert row["add"][1:4] == ["2", "+", "+"]
    assert " ".join(row["add"][4:]).startswith("built-in (mingrad ")
    assert row["gelu"][1:3] == ["1", "GELU"]
    assert " ".join(row["gelu"][3:]) == "activations (mingrad-activations 0.1.0)"
    assert "(registered in code)" in " ".join(row["cube"])


@pytest.mark.parametrize(
    "source, cause",
    [
        (
            "raise ImportError('missing dependency numpyy')",
            "ImportError: missing dependency numpyy",
        ),
        (INVALID_SPEC, "invalid op 'nogood'"),
        (
            DUPLICATE,
            "op 'relu' from plugin 'faulty', distribution mingrad-faulty 1.0 is already "
            "registered by plugin 'builtins'",
        ),
    ],
)
def test_ops_still_works_and_shows_a_broken_plugin_with_its_cause(
    install_plugin, capsys, monkeypatch, source, cause
):
    install_plugin("mingrad-faulty", {"faulty": source})
    with pytest.warns(UserWarning):
        assert main(["ops"]) == 0
    out = capsys.readouterr().out
    assert "tanh" in out and "gelu" in out
    assert "plugins that failed to load:" in out and cause in out
    monkeypatch.setenv("MINGRAD_STRICT_PLUGINS", "1")
    mingrad_core.reset()  # as a new process would start
    assert main(["ops"]) == 2
    assert cause in capsys.readouterr().err


def test_check_passes_on_every_registered_op(capsys):
    assert main(["check"]) == 0
    out = capsys.readouterr().out
    for name in ("add", "tanh", "gelu", "softplus"):
        assert any(line.split()[:1] == [name] and line.endswith("ok") for line in out.splitlines())


def test_check_fails_on_a_wrong_gradient_naming_it(install_plugin, capsys):
    install_plugin("mingrad-badexp", {"badexp": WRONG_GRADIENT})
    assert main(["check", "badexp", "tanh"]) == 1
    out = capsys.readouterr().out
    assert "FAILED op 'badexp': order 1 derivative" in out
    assert "1 passed, 1 failed" in out


def test_check_refuses_unknown_ops(capsys):
    assert main(["check", "nope"]) == 2
    assert "no op named 'nope'" in capsys.readouterr().err


def test_the_installed_command_runs_ops():
    result = subprocess.run(["mingrad", "ops"], capture_output=True, text=True, check=True)
    assert "activations (mingrad-activations 0.1.0)" in result.stdout
