"""The expression evaluator behind `mingrad graph`: IEEE numbers, clear errors, any length."""

import math
import re
import subprocess
import sys

import pytest

from mingrad.expression import MAX_DEPTH, ExpressionError, evaluate


@pytest.mark.parametrize(
    "source, expected",
    [
        ("1/0", math.inf),
        ("-1/0", -math.inf),
        ("0**-1", math.inf),
        ("(-2)**0.5", math.nan),
        ("10**400", math.inf),
        ("9**9**9", math.inf),
        ("2**10**10", math.inf),
        ("1" + "0" * 400, math.inf),  # an integer literal beyond the float range
        ("7/2", 3.5),
        ("2**3 - 1", 7.0),
        ("tanh(0) + exp(0)", 1.0),
        ("+3", 3.0),
    ],
)
def test_numbers_are_floats_under_the_ieee_policy(source, expected):
    result = evaluate(source, {})
    assert type(result.data) is float
    assert result.data == expected or (math.isnan(expected) and math.isnan(result.data))


def test_a_number_divided_by_zero_matches_a_variable_divided_by_zero():
    assert evaluate("1/0", {}).data == evaluate("x/0", {"x": 1.0}).data == math.inf


def test_a_long_flat_sum_evaluates_and_differentiates():
    x_terms = "+".join(["x"] * 999)
    root = evaluate(x_terms, {"x": 2.0})
    root.backward()
    assert root.data == 1998.0
    x = next(n for n in _leaves(root) if n.name == "x")
    assert x.grad == 999.0


def _leaves(root):
    stack, seen = [root], set()
    while stack:
        node = stack.pop()
        if node in seen:
            continue
        seen.add(node)
        stack.extend(node.parents)
        if not node.parents:
            yield node


@pytest.mark.parametrize(
    "source, message",
    [
        ("tanh(x, x)", "op 'tanh' takes 1 input(s); got 2"),
        ("x.tanh(x)", "op 'tanh' takes 1 input(s); got 2"),
        ("add()", "op 'add' takes 2 input(s); got 0"),
        ("linear(x, x)", "linear"),
        ("nosuch(x)", "unknown op 'nosuch'"),
        ("y + 1", "'y' has no value"),
        ("x[0]", "unsupported in an expression: 'x[0]'"),
        ("x.tanh", "unsupported in an expression: 'x.tanh'"),
        ("tanh(*x)", "unsupported in an expression"),
        ("tanh(x=1)", "unsupported in an expression"),
        ("True + x", "unsupported in an expression: 'True'"),
        ("1j * x", "unsupported in an expression: '1j'"),
        ("x +", "cannot parse expression"),
        ("x\udcff", "'\\udcff' is not a character (the text is not valid UTF-8)"),
        ("x\x00", "cannot parse expression 'x\\x00': source code string cannot contain null"),
        ("1" * 5000, "cannot parse expression"),
        ("(" * 3000 + "x" + ")" * 3000, "cannot parse expression"),
        ("+".join(["x"] * 3000), "too deeply nested"),
        ("-" * 3000 + "x", "too deeply nested"),
        ("**".join(["x"] * 3000), "too deeply nested"),
        ("x" + ".tanh()" * 3000, "too deeply nested"),
        ("+".join(["x"] * (MAX_DEPTH + 2)), f"more than {MAX_DEPTH} levels"),
    ],
)
def test_bad_expressions_raise_one_clear_error(source, message):
    values = {"x": 1.0} if re.search(r"\bx\b", source) else {}
    with pytest.raises(ExpressionError, match="^[^\n]*$") as info:
        evaluate(source, values)
    assert message in str(info.value)
    assert len(str(info.value)) < 1000  # the source is quoted, not copied whole


def test_the_evaluator_error_is_a_value_error():
    assert issubclass(ExpressionError, ValueError)


def test_towers_of_powers_finish_at_once_in_a_fresh_process():
    sources = ["9**9**9", "2**10**10", "x**9**9**9**9", "10**10**10**10"]
    code = (
        "import sys; from mingrad.expression import evaluate\n"
        "for source in sys.argv[1:]:\n"
        "    print(evaluate(source, {'x': 2} if 'x' in source else {}).data)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code, *sources], capture_output=True, text=True, timeout=30
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["inf"] * len(sources)


def test_a_value_the_expression_does_not_use_is_refused_naming_it_and_the_names_read():
    with pytest.raises(ExpressionError) as info:
        evaluate("x*x + tanh(w)", {"x": 0.5, "y": 2.0, "w": 1.0, "tanh": 3.0})
    assert str(info.value) == (
        "y, tanh given a value but not used: expression 'x*x + tanh(w)' reads the names w, x"
    )


def test_an_expression_without_names_refuses_any_value():
    with pytest.raises(ExpressionError, match="x given a value but not used: .* reads no names"):
        evaluate("1 + 2", {"x": 1.0})


def test_a_missing_name_error_shows_the_values_not_used():
    with pytest.raises(ExpressionError, match=r"^'x' has no value; .*\(given but not used: X\)$"):
        evaluate("x * 2", {"X": 1.0})


def test_names_are_read_as_python_reads_them():
    root = evaluate("ﬁ * 2", {"ﬁ": 1.5})  # the ligature is "fi" once parsed
    assert root.data == 3.0
    assert {leaf.name for leaf in _leaves(root)} == {"fi", None}
    with pytest.raises(ExpressionError, match="'ﬁ' and 'fi' are the same name"):
        evaluate("fi", {"ﬁ": 1.0, "fi": 2.0})


def test_a_wide_expression_lists_a_few_of_its_names_not_all():
    source = "+".join(f"x{i}*w{i}" for i in range(200))
    values = {f"{v}{i}": 1.0 for i in range(201) for v in "xw"}
    with pytest.raises(ExpressionError) as info:
        evaluate(source, values)
    message = str(info.value)
    assert message.startswith("x200, w200 given a value but not used: expression 'x0*w0+")
    assert message.endswith(
        "reads the names w0, w1, w10, w100, w101, w102, w103, w104, w105, "
        "w106, w107, w108, ... (400 names)"
    )
