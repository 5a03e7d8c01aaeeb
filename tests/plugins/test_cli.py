"""`mingrad ops` and `mingrad check`, with real throwaway plugin distributions."""

import math
import os
import re
import subprocess
import sys

import numpy as np
import pytest

import mingrad_core
from mingrad.cli import EXIT_INTERNAL_ERROR, main
from mingrad.expression import evaluate
from mingrad_core import register_op
from mingrad_viz import backprop_player

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
    assert lines[0].split() == [
        "op",
        "arity",
        "symbol",
        "operator",
        "array",
        "forms",
        "provided",
        "by",
    ]
    row = {line.split()[0]: line.split() for line in lines[1:] if line.strip()}
    assert row["add"][1:5] == ["2", "+", "+", "yes"]
    assert " ".join(row["add"][5:]).startswith("built-in (mingrad ")
    assert row["gelu"][1:4] == ["1", "GELU", "yes"]
    assert " ".join(row["gelu"][4:]) == "activations (mingrad-activations 0.1.0)"
    assert row["cube"][3] == "looped" and "(registered in code)" in " ".join(row["cube"])
    assert row["sub"][4] == "yes" and "composite" in row["mish"]


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
    assert main(["ops"]) == 0
    out, err = capsys.readouterr()
    assert "tanh" in out and "gelu" in out
    assert "plugins that failed to load:" in out and cause in out
    assert err.count("\n") == 1 and err.startswith("mingrad ops: warning: ") and cause in err
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


@pytest.mark.parametrize(
    "expression, message",
    [
        ("tanh(x, x)", "op 'tanh' takes 1 input(s); got 2"),
        ("add() + x", "op 'add' takes 2 input(s); got 0"),
        ("nosuch(x)", "unknown op 'nosuch'"),
        ("y * x", "'y' has no value"),
        ("0" + "-" * 3000 + "x", "too deeply nested"),
        ("+".join(["x"] * 3000), "too deeply nested"),
        ("(" * 3000 + "x" + ")" * 3000, "cannot parse expression"),
    ],
)
def test_graph_reports_a_bad_expression_in_one_line(expression, message, capsys, tmp_path):
    out = tmp_path / "g.svg"
    assert main(["graph", expression, "x=1", "-o", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("mingrad graph: error: ")
    assert message in err and len(err) < 1000
    assert not out.exists()


@pytest.mark.parametrize(
    "expression, value",
    [("1/0", "inf"), ("0**-1", "inf"), ("(-2)**0.5", "nan"), ("10**400", "inf"), ("x/0", "inf")],
)
def test_graph_evaluates_numbers_under_the_ieee_policy(expression, value, capsys, tmp_path):
    out = tmp_path / "g.svg"
    values = ["x=1"] if "x" in expression else []
    assert main(["graph", expression, *values, "-o", str(out), "--no-backward"]) == 0
    assert f"Scalar(data={value}" in capsys.readouterr().out
    assert out.exists()


def test_graph_evaluates_a_999_term_sum_without_recursion(capsys, tmp_path):
    # evaluated and backpropagated in full; refused only by the drawing's size limit
    out = tmp_path / "g.svg"
    argv = ["graph", "+".join(["x"] * 999), "x=1", "-o", str(out), "--max-nodes", "500"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "more than 500 Scalars" in err


def test_graph_finishes_a_tower_of_powers_at_once(tmp_path):
    out = tmp_path / "g.svg"
    result = subprocess.run(
        ["mingrad", "graph", "2**10**10", "-o", str(out)],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 0, result.stderr
    assert "Scalar(data=inf" in result.stdout


def test_graph_animate_writes_the_backprop_player(capsys, tmp_path):
    out = tmp_path / "player.html"
    assert main(["graph", "x*x + gelu(x)", "x=0.5", "--animate", "-o", str(out)]) == 0
    page = out.read_text(encoding="utf-8")
    assert page.startswith("<!DOCTYPE html>") and "GELU" in page
    steps = len(backprop_player(evaluate("x*x + gelu(x)", {"x": 0.5})).steps)
    assert capsys.readouterr().out == f"wrote {out}: {steps} steps; open it in a browser\n"


def test_graph_animate_refuses_a_graph_over_its_limit_in_one_line(capsys, tmp_path):
    out = tmp_path / "player.html"
    assert main(["graph", "--animate", "--max-nodes", "5", "-o", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "more than 5 Scalars" in err and not out.exists()


WRONG_TERM_COUNT = """
import math
from mingrad_core import hookimpl

@hookimpl
def mingrad_register_ops(register):
    register(name="twoterms", arity=1, forward=math.exp, gradient=lambda x, out: (out, out))
"""


def test_check_reports_every_op_when_one_gradient_is_malformed(install_plugin, capsys):
    install_plugin("mingrad-twoterms", {"twoterms": WRONG_TERM_COUNT})
    assert main(["check", "--samples", "2"]) == 1
    out = capsys.readouterr().out
    rows = {line.split()[0]: line.split() for line in out.splitlines() if line.strip()}
    assert rows["twoterms"][-1] == "FAILED" and rows["twoterms"][1:3] == ["inf", "inf"]
    assert all(rows[name][-1] == "ok" for name in ("add", "tanh", "gelu"))
    assert "FAILED op 'twoterms': at x=[" in out and "2 term(s)" in out
    assert f"{len(mingrad_core.ops()) - 1} passed, 1 failed" in out


@pytest.mark.parametrize("samples", ["0", "-3"])
def test_check_refuses_to_check_nothing(capsys, samples):
    assert main(["check", "--samples", samples]) == 2
    captured = capsys.readouterr()
    assert captured.err == f"mingrad check: error: --samples must be at least 1; got {samples}\n"
    assert captured.out == ""


def test_ops_in_strict_mode_lists_what_loaded_and_every_failure(
    install_plugin, capsys, monkeypatch
):
    install_plugin("mingrad-faulty", {"boom": "raise ImportError('no numpyy')", "dup": DUPLICATE})
    monkeypatch.setenv("MINGRAD_STRICT_PLUGINS", "yes")
    assert main(["ops"]) == 2
    captured = capsys.readouterr()
    rows = {line.split()[0]: line for line in captured.out.splitlines() if line.strip()}
    assert (
        "built-in (mingrad " in rows["relu"] and "activations (mingrad-activations" in rows["gelu"]
    )
    failed = captured.out.split("plugins that failed to load:")[1]
    assert "plugin 'boom'" in failed and "ImportError: no numpyy" in failed
    assert "plugin 'dup'" in failed and "'relu'" in failed
    assert captured.err.count("\n") == 1 and "2 plugin(s) failed to load" in captured.err


TYPO_IN_FORWARD = """
from mingrad_core import hookimpl

@hookimpl
def mingrad_register_ops(register):
    register(
        name="buggy", arity=1, forward=lambda x: undefined_name + x, gradient=lambda x, out: (1.0,)
    )
"""


def test_graph_reports_a_plugin_ops_exception_naming_the_op_and_its_plugin(
    install_plugin, capsys, tmp_path
):
    install_plugin("mingrad-buggy", {"buggy": TYPO_IN_FORWARD})
    out = tmp_path / "g.svg"
    assert main(["graph", "buggy(x) + 1", "x=1.5", "-o", str(out)]) == 2
    assert capsys.readouterr().err == (
        "mingrad graph: error: op 'buggy' (plugin 'buggy', distribution mingrad-buggy 1.0) "
        "raised NameError at input(s) (1.5): name 'undefined_name' is not defined\n"
    )
    assert not out.exists()


def test_the_installed_command_prints_no_traceback_for_a_buggy_plugin(install_plugin, tmp_path):
    root = install_plugin("mingrad-buggy", {"buggy": TYPO_IN_FORWARD})
    result = subprocess.run(
        ["mingrad", "graph", "x.buggy()", "x=1", "-o", str(tmp_path / "g.svg")],
        capture_output=True,
        text=True,
        env={
            **os.environ,
            "PYTHONPATH": os.pathsep.join(filter(None, [str(root), os.getenv("PYTHONPATH")])),
        },
    )
    assert result.returncode == 2
    assert "Traceback" not in result.stderr and result.stderr.count("\n") == 1
    assert "op 'buggy' (plugin 'buggy', distribution mingrad-buggy 1.0)" in result.stderr


@pytest.mark.parametrize(
    "error", [AttributeError("'NoneType' object has no attribute 'x'"), IndexError("list index")]
)
def test_an_internal_error_is_one_line_naming_it_where_it_was_raised_and_whom_to_tell(
    monkeypatch, capsys, error
):
    def broken():
        raise error

    monkeypatch.setattr("mingrad.cli.graph.seed_example", broken)
    assert main(["graph"]) == EXIT_INTERNAL_ERROR
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert err.startswith(f"mingrad graph: internal error: {type(error).__name__}: {error}")
    assert f"(raised at {__file__}:" in err and ", in broken)" in err
    assert "bug in MinGrad or in a plugin" in err and "please report it" in err


def test_an_interrupt_is_one_line(monkeypatch, capsys):
    def interrupted():
        raise KeyboardInterrupt

    monkeypatch.setattr("mingrad.cli.graph.seed_example", interrupted)
    assert main(["graph"]) == 130
    assert capsys.readouterr().err == "mingrad graph: interrupted\n"


# -- the command line as an outsider types it: each finding of a fuzzing session --------------


def one_line_error(capsys, prog: str) -> str:
    """The single stderr line of a refused command (nothing on stdout), without its prefix."""
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err.count("\n") == 1, captured
    assert captured.err.startswith(f"{prog}: error: "), captured.err
    return captured.err[len(f"{prog}: error: ") : -1]


@pytest.mark.parametrize("name", ["g.png", "g.svg", "g.pdf"])
def test_graph_animate_refuses_a_picture_suffix_naming_the_suffixes_that_work(
    capsys, tmp_path, name
):
    out = tmp_path / name
    assert main(["graph", "x*x", "x=0.5", "--animate", "-o", str(out)]) == 2
    err = one_line_error(capsys, "mingrad graph")
    assert err.startswith(f"--output '{out}': --animate writes an HTML page")
    assert ".html or .htm" in err and ".svg, .png, .pdf" in err
    assert not out.exists()


@pytest.mark.parametrize("name", ["g.html", "g.HTM", "player"])
def test_graph_animate_writes_html_to_an_html_suffix_or_none(capsys, tmp_path, name):
    out = tmp_path / name
    assert main(["graph", "x*x", "x=0.5", "--animate", "-o", str(out)]) == 0
    assert out.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")


def test_graph_without_animate_refuses_an_html_suffix(capsys, tmp_path):
    out = tmp_path / "g.html"
    assert main(["graph", "x*x", "x=0.5", "-o", str(out)]) == 2
    assert "an HTML page is the backprop player; add --animate" in one_line_error(
        capsys, "mingrad graph"
    )
    assert not out.exists()


def test_graph_refuses_a_suffix_graphviz_cannot_write_in_one_short_line(capsys, tmp_path):
    out = tmp_path / "g.xyz"
    assert main(["graph", "x*x", "x=0.5", "-o", str(out)]) == 2
    assert one_line_error(capsys, "mingrad graph") == (
        "--output/-o must end in .svg, .png, .pdf (or another suffix Graphviz writes), or in "
        f".html with --animate; got '{out}'"
    )
    assert not out.exists()


@pytest.mark.parametrize("suffix, magic", [(".png", b"\x89PNG"), (".pdf", b"%PDF"), (".dot", b"")])
def test_graph_writes_the_format_its_suffix_names(tmp_path, suffix, magic):
    out = tmp_path / f"g{suffix}"
    assert main(["graph", "x*x", "x=0.5", "-o", str(out)]) == 0
    assert out.read_bytes().startswith(magic or b"digraph")


@pytest.mark.parametrize(
    "values, unused, names",
    [(["x=0.5", "y=2"], "y", "the names x"), (["x=1", "w=2", "b=3"], "w, b", "the names x")],
)
def test_graph_refuses_a_value_the_expression_does_not_use(capsys, tmp_path, values, unused, names):
    out = tmp_path / "g.svg"
    assert main(["graph", "x*x", *values, "-o", str(out)]) == 2
    assert one_line_error(capsys, "mingrad graph") == (
        f"{unused} given a value but not used: expression 'x*x' reads {names}"
    )
    assert not out.exists()


def test_a_misspelled_name_is_shown_beside_the_missing_one(capsys):
    assert main(["graph", "x*x", "X=1"]) == 2
    assert one_line_error(capsys, "mingrad graph") == (
        "'x' has no value; give one as x=1.5 (given but not used: X)"
    )


def test_graph_refuses_a_value_given_twice(capsys):
    assert main(["graph", "x*x", "x=1", "x=2"]) == 2
    assert one_line_error(capsys, "mingrad graph") == "x is given twice (x=1, x=2)"


def test_graph_says_a_value_without_an_expression_is_not_one(capsys):
    assert main(["graph", "x=1"]) == 2
    assert one_line_error(capsys, "mingrad graph").startswith(
        "'x=1' is a value, not an expression; give the expression first"
    )


@pytest.mark.parametrize(
    "argv",
    [
        ["graph", "x*x", "--animate", "x=0.5", "-o", "{out}"],
        ["graph", "-o", "{out}", "x*x", "--rankdir", "LR", "x=0.5", "--animate"],
        ["graph", "--animate", "--", "x*x", "x=0.5"],
    ],
)
def test_graph_takes_options_between_the_expression_and_its_values(
    capsys, tmp_path, monkeypatch, argv
):
    monkeypatch.chdir(tmp_path)
    out = tmp_path / "backprop.html"
    assert main([arg.replace("{out}", str(out)) for arg in argv]) == 0
    steps = len(backprop_player(evaluate("x*x", {"x": 0.5})).steps)
    written = out.name if "--" in argv else out
    assert capsys.readouterr().out == f"wrote {written}: {steps} steps; open it in a browser\n"
    assert out.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")


def test_an_expression_that_starts_with_minus_goes_after_double_dash(capsys, tmp_path):
    out = tmp_path / "g.svg"
    assert main(["graph", "-x*x", "x=2", "-o", str(out)]) == 2
    assert one_line_error(capsys, "mingrad graph") == (
        "unrecognized arguments: -x*x (not options of mingrad graph; a value that starts with "
        "'-' goes after --)"
    )
    assert main(["graph", "-o", str(out), "--", "-x*x", "x=2"]) == 0
    assert "Scalar(data=-4.0" in capsys.readouterr().out


@pytest.mark.parametrize(
    "expression, binding, value",
    [("ﬁ*2", "ﬁ=1.5", 3.0), ("é*2", "é=1.5", 3.0), ("x_1 + x٣", "x٣=1", None)],
)
def test_graph_reads_unicode_names_as_python_does(capsys, tmp_path, expression, binding, value):
    out = tmp_path / "g.svg"
    argv = ["graph", expression, binding, "-o", str(out)]
    if value is None:  # x_1 has no value: the message names it, and the given x٣ is used
        assert main(argv) == 2
        assert one_line_error(capsys, "mingrad graph").startswith("'x_1' has no value")
        return
    assert main(argv) == 0
    assert f"Scalar(data={value}" in capsys.readouterr().out


LONG = "9" * 5000


@pytest.mark.parametrize(
    "argv, message",
    [
        (["demo", "--steps", "abc"], "--steps must be a whole number of at least 1; got 'abc'"),
        (["demo", "--steps", "2.5"], "--steps must be a whole number of at least 1; got '2.5'"),
        (["demo", "--seed", "-1"], "--seed must be at least 0; got -1"),
        (["demo", "--seed", str(2**32)], f"--seed must be at most {2**32 - 1}; got {2**32}"),
        (["demo", "-o", ""], "--output/-o must name a file to write; got ''"),
        (["demo", "-o", "{tmp}"], "--output/-o must name a file, not a folder; got '{tmp}'"),
        (["demo", "--dataset", "mnist"], "argument --dataset: invalid choice: 'mnist'"),
        (["check", "--samples", "1e3"], "--samples must be a whole number of at least 1; got"),
        (["check", "--samples", str(10**20)], f"--samples must be at most 10000; got {10**20}"),
        (["check", "--seed", "x"], "--seed must be a whole number; got 'x'"),
        (["check", "--samples", LONG], f"got '{LONG[:40]}... (5000 characters)'"),
        (["graph", "--max-nodes", "0"], "--max-nodes must be at least 1; got 0"),
        (["graph", "-o", "{tmp}/no/such/g.svg"], "--output/-o must be in a folder that exists"),
        (["graph", "-o", "x" * 300], "--output/-o cannot be a file: File name too long; got"),
        (["graph", "x*x", "x="], "expected NAME=NUMBER, such as x=1.5; got 'x=': '' is not a"),
        (["graph", "x*x", "=1"], "got '=1': '' is not a name"),
        (["graph", "x*x", "if=1"], "got 'if=1': 'if' is not a name"),
        (["graph", "x*x", "x"], "got 'x': no '='"),
        (["graph", "--rankdir", "XX"], "argument --rankdir: invalid choice: 'XX'"),
        (["graph", "--animate=yes"], "argument --animate: ignored explicit argument 'yes'"),
        (["ops", "extra"], "unrecognized arguments: extra"),
    ],
)
def test_a_bad_argument_is_refused_in_one_line_before_any_work(capsys, tmp_path, argv, message):
    argv = [arg.replace("{tmp}", str(tmp_path)) for arg in argv]
    assert main(argv) == 2
    err = one_line_error(capsys, f"mingrad {argv[0]}")
    assert message.replace("{tmp}", str(tmp_path)) in err and len(err) < 400
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    "argv, message",
    [
        ([], "the following arguments are required: COMMAND"),
        (["nosuch"], "argument COMMAND: invalid choice: 'nosuch'"),
    ],
)
def test_a_missing_or_unknown_command_is_one_line(capsys, argv, message):
    assert main(argv) == 2
    assert message in one_line_error(capsys, "mingrad")


def test_demo_refuses_a_picture_format_before_training(capsys, tmp_path):
    out = tmp_path / "m.xyz"
    assert main(["demo", "-o", str(out)]) == 2
    err = one_line_error(capsys, "mingrad demo")
    assert err.startswith(f"--output '{out}': cannot write a .xyz picture; use one of ")
    assert ".png" in err and ".svg" in err and not out.exists()


def test_demo_reports_a_bad_activation_without_a_progress_bar(capsys, tmp_path):
    assert main(["demo", "--activation", "nope", "-o", str(tmp_path / "m.png")]) == 2
    assert one_line_error(capsys, "mingrad demo").startswith("unknown activation 'nope'")


def test_check_checks_an_op_named_twice_once(capsys):
    assert main(["check", "tanh", "--samples", "2", "tanh"]) == 0
    out = capsys.readouterr().out
    assert [line.split()[0] for line in out.splitlines() if line.startswith("tanh")] == ["tanh"]
    assert "1 passed, 0 failed" in out


def test_the_installed_command_prints_a_usage_error_as_one_line():
    result = subprocess.run(
        ["mingrad", "check", "--samples", "0"], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr == "mingrad check: error: --samples must be at least 1; got 0\n"


def test_python_dash_m_runs_the_command():
    result = subprocess.run(
        [sys.executable, "-m", "mingrad.cli", "graph", "x", "x=1", "-o", ""],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert result.stderr == "mingrad graph: error: --output/-o must name a file to write; got ''\n"


MULTILINE_ERROR = """
from mingrad_core import hookimpl

def _forward(x):
    raise ValueError("first line\\n  second line")

@hookimpl
def mingrad_register_ops(register):
    register(name="chatty", arity=1, forward=_forward, gradient=lambda x, out: (1.0,))
"""


def test_a_plugins_multiline_error_is_reported_in_one_line(install_plugin, capsys):
    install_plugin("mingrad-chatty", {"chatty": MULTILINE_ERROR})
    assert main(["graph", "chatty(x)", "x=1"]) == 2
    assert one_line_error(capsys, "mingrad graph").endswith(
        "raised ValueError at input(s) (1.0): first line second line"
    )


def test_a_reader_that_leaves_early_stops_the_command_quietly():
    reader = subprocess.Popen(
        ["mingrad", "check", "--samples", "1"], stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    reader.stdout.close()  # as `| head -0` would
    assert reader.wait(timeout=120) == 141
    assert reader.stderr.read() == b""
    reader.stderr.close()


def test_a_plugin_warning_is_one_line_once_for_a_whole_training(install_plugin, capsys, tmp_path):
    install_plugin("mingrad-bad", {"bad": "raise ImportError('no numpyy')"})
    assert main(["demo", "--steps", "2", "-o", str(tmp_path / "m.png")]) == 0
    lines = capsys.readouterr().err.splitlines()
    warned = [line for line in lines if "warning" in line]
    assert len(warned) == 1, lines
    assert warned[0].startswith("mingrad demo: warning: skipped plugin 'bad', distribution ")
    assert re.search(
        rf"ImportError: no numpyy \(at {re.escape(str(tmp_path))}/.*\.py:1\)$", warned[0]
    )


def test_the_installed_command_refuses_undecodable_bytes_in_one_line(tmp_path):
    result = subprocess.run(
        [b"mingrad", b"graph", b"x\xff", b"x=1", b"-o", os.fsencode(tmp_path / "g.svg")],
        capture_output=True,
        timeout=60,
    )
    assert result.returncode == 2 and result.stderr.count(b"\n") == 1
    assert b"is not a character (the text is not valid UTF-8)" in result.stderr
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    "option, why",
    [
        (["--no-backward"], "--no-backward (the player always steps through the backward pass)"),
        (["--composites", "box"], "--composites (the player does not take it)"),
        (["--composites", "collapse"], "--composites (the player does not take it)"),
    ],
)
def test_graph_animate_refuses_an_option_it_would_ignore(capsys, tmp_path, option, why):
    out = tmp_path / "p.html"
    assert main(["graph", "x*x", "x=1", "--animate", *option, "-o", str(out)]) == 2
    assert one_line_error(capsys, "mingrad graph") == (
        f"{why}: not an option with --animate; leave it out, or leave out --animate to draw a "
        "picture"
    )
    assert not out.exists()
    assert main(["graph", "x - x", "x=1", *option, "-o", str(tmp_path / "g.svg")]) == 0


def test_check_names_an_array_form_that_disagrees_once_and_fails(capsys):
    register_op(
        name="offexp",
        arity=1,
        forward=math.exp,
        gradient=lambda x, out: (out,),
        array_forward=lambda x: np.exp(x) * (1 + 1e-9),
        array_gradient=lambda x, out: (out,),
    )
    register_op(
        name="goodexp",
        arity=1,
        forward=math.exp,
        gradient=lambda x, out: (out,),
        array_forward=np.exp,
        array_gradient=lambda x, out: (out,),
    )
    assert main(["check", "offexp", "goodexp"]) == 1
    out = capsys.readouterr().out
    row = {line.split()[0]: line.split() for line in out.splitlines() if line.strip()}
    assert row["offexp"][3:] == ["FAILED", "FAILED"]  # the derivatives pass; the forms do not
    assert row["goodexp"][-1] == "ok" and "FAILED" not in row["goodexp"]
    assert out.count("FAILED op 'offexp'") == 1 and "1 passed, 1 failed" in out
