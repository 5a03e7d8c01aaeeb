"""The exercises notebook and its graders: a blank answer is "not yet", a wrong one is caught with
a hint, the solutions pass every check, and the notebook runs top to bottom unsolved."""

from __future__ import annotations

import importlib.util
import math
import re
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import nbformat
import pytest

from mingrad import functional as F
from mingrad.exercises import (
    SCALAR_HINT,
    check_backward,
    check_fresh_gradient,
    check_function,
    check_gradient,
    check_order,
    check_pass_gradient,
    check_training_step,
)
from mingrad_core import toposort

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
BLANK = NOTEBOOKS / "exercises.ipynb"
SOLVED = NOTEBOOKS / "solutions" / "exercises.ipynb"
GRADE = re.compile(r"^(Exercise \d+): (passed|not yet|wrong):", re.M)


def blank(*args): ...


def not_implemented(*args):
    raise NotImplementedError


# Local gradients


def test_a_right_gradient_passes_first_and_second_order():
    grade = check_gradient("E", math.tanh, lambda x, out: (1 - out * out,), arity=1)
    assert grade.status == "passed" and grade.passed, grade


@pytest.mark.parametrize("answer", [blank, not_implemented])
def test_a_blank_gradient_is_not_yet(answer):
    grade = check_gradient("E", math.tanh, answer, arity=1)
    assert grade.status == "not yet" and "fill in" in grade.detail


def test_a_gradient_off_by_a_tenth_of_a_percent_is_wrong_with_the_hint_given():
    grade = check_gradient(
        "E", math.tanh, lambda x, out: (1.001 * (1 - out * out),), arity=1, hint="look at out"
    )
    assert grade.status == "wrong" and "analytic" in grade.detail and grade.hint == "look at out"


def test_a_gradient_through_math_is_caught_at_second_order_with_its_own_hint():
    grade = check_gradient("E", math.tanh, lambda x, out: (1 - math.tanh(x) ** 2,), arity=1)
    assert grade.status == "wrong" and "order 2" in grade.detail and grade.hint == SCALAR_HINT


def test_a_bare_number_instead_of_a_tuple_gets_the_tuple_hint():
    grade = check_gradient("E", math.tanh, lambda x, out: 1 - out * out, arity=1)
    assert grade.status == "wrong" and "tuple" in grade.hint


def test_a_gradient_that_raises_is_graded_not_raised():
    grade = check_gradient("E", math.tanh, lambda x, out: (1 / 0,), arity=1)
    assert grade.status == "wrong" and "ZeroDivisionError" in grade.detail


def test_a_two_input_gradient_with_a_term_swapped_is_wrong():
    grade = check_gradient(
        "E",
        math.pow,
        lambda a, b, out: (out * F.log(a), b * a ** (b - 1)),
        arity=2,
        domain=((0.1, 5.0), (-3.0, 3.0)),
    )
    assert grade.status == "wrong"
    right = check_gradient(
        "E",
        math.pow,
        lambda a, b, out: (b * a ** (b - 1), out * F.log(a)),
        arity=2,
        domain=((0.1, 5.0), (-3.0, 3.0)),
    )
    assert right.passed, right


def test_a_blank_forward_is_not_yet_even_with_a_gradient():
    assert check_gradient("E", blank, lambda a, b, out: (1.0, 1.0), arity=2).status == "not yet"
    assert check_gradient("E", None, None, arity=2).status == "not yet"


# Backward, piece by piece


def overwrite(grads, parent, contribution):
    grads[parent] = contribution


def add(grads, parent, contribution):
    grads[parent] = grads.get(parent, 0.0) + contribution


def test_overwriting_a_gradient_is_caught_on_a_node_used_twice():
    grade = check_pass_gradient("E", overwrite)
    assert grade.status == "wrong" and "d/dx is 3.0, grad() gives 6.0" in grade.detail
    assert check_pass_gradient("E", add).passed
    assert check_pass_gradient("E", blank).status == "not yet"


def test_adding_to_a_missing_entry_gets_a_hint_not_a_traceback():
    def plus_equals(grads, parent, contribution):
        grads[parent] += contribution

    grade = check_pass_gradient("E", plus_equals)
    assert grade.status == "wrong" and "KeyError" in grade.detail and "grads.get" in grade.hint


def recursive_order(root):
    order, seen = [], set()

    def visit(node):
        if node not in seen:
            seen.add(node)
            for parent in node.parents:
                visit(parent)
            order.append(node)

    visit(root)
    return order


def test_an_order_by_recursion_fails_on_a_deep_chain():
    grade = check_order("E", recursive_order)
    assert grade.status == "wrong" and "RecursionError" in grade.detail
    assert "stack" in grade.hint


@pytest.mark.parametrize(
    "order, problem",
    [
        (lambda root: toposort(root)[::-1], "before its input"),
        (lambda root: toposort(root)[1:], "misses a node"),
        (lambda root: [*toposort(root), root], "more than once"),
    ],
)
def test_an_order_that_is_not_topological_is_caught(order, problem):
    grade = check_order("E", order)
    assert grade.status == "wrong" and problem in grade.detail


def test_the_engines_own_order_passes_and_blank_is_not_yet():
    assert check_order("E", toposort).passed
    assert check_order("E", blank).status == "not yet"


def test_a_recursive_backward_is_caught_on_a_reused_non_leaf():
    def recursive(root):
        grads = {root: 1.0}

        def visit(node):
            if node.op is None:
                return
            from mingrad_core import local_gradient

            for parent, term in zip(node.parents, local_gradient(node)):
                grads[parent] = grads.get(parent, 0.0) + term * grads[node]
                visit(parent)

        visit(root)
        return grads

    grade = check_backward("E", recursive)
    assert grade.status == "wrong" and "a non-leaf used twice" in grade.detail


# .grad accumulation


def test_backward_twice_without_zero_grad_is_caught_on_the_second_call():
    def backward_alone(y, x):
        y.backward()
        return x.grad

    def fresh(y, x):
        y.zero_grad()
        y.backward()
        return x.grad

    grade = check_fresh_gradient("E", backward_alone)
    assert grade.status == "wrong" and grade.detail.startswith("call 2 returned")
    assert check_fresh_gradient("E", fresh).passed
    assert check_fresh_gradient("E", blank).status == "not yet"


def test_a_training_loop_without_zero_grad_is_caught():
    def without(params, loss_fn, lr):
        loss_fn().backward()
        for p in params:
            p.data -= lr * p.grad

    def with_zero_grad(params, loss_fn, lr):
        loss = loss_fn()
        loss.zero_grad()
        loss.backward()
        for p in params:
            p.data -= lr * p.grad

    grade = check_training_step("E", without)
    assert grade.status == "wrong" and "after step 2" in grade.detail
    assert check_training_step("E", with_zero_grad).passed
    assert check_training_step("E", blank).status == "not yet"
    assert check_training_step("E", not_implemented).status == "not yet"


# Whole functions


def test_math_exp_on_a_scalar_is_caught_by_finite_differences():
    grade = check_function("E", lambda x: x * math.exp(x), [1.0])
    assert grade.status == "wrong" and "gradient is 2.718281828459045" in grade.detail
    assert check_function("E", lambda x: x * x.exp(), [1.0, -2.0]).passed


def test_a_function_returning_a_float_is_caught_with_a_hint():
    grade = check_function("E", lambda x: math.log(1 + math.exp(x)), [0.5])
    assert grade.status == "wrong" and "not a Scalar" in grade.detail and "x.exp()" in grade.hint


def test_an_overflowing_sigmoid_is_caught_where_only_its_gradient_is_nan():
    def sigmoid(v):
        return 1 / (1 + math.exp(-v)) if v >= 0 else math.exp(v) / (1 + math.exp(v))

    def naive(x):
        return 1 / (1 + (-x).exp())

    grade = check_function(
        "E",
        naive,
        [0.0, -1000.0],
        value=sigmoid,
        derivative=lambda v: sigmoid(v) * (1 - sigmoid(v)),
    )
    assert grade.status == "wrong" and "x=-1000.0 the gradient is nan" in grade.detail
    assert check_function("E", blank, [0.0]).status == "not yet"


def test_a_grade_prints_as_one_line_and_its_hint():
    grade = check_pass_gradient("Exercise 5", overwrite)
    assert str(grade).startswith("Exercise 5: wrong: ") and "\n  hint: " in str(grade)
    assert repr(grade) == str(grade)


# The notebooks


def _executor():
    spec = importlib.util.spec_from_file_location("notebooks_execute", NOTEBOOKS / "execute.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def outputs_text(notebook) -> str:
    parts = []
    for cell in notebook.cells:
        for output in cell.get("outputs", []):
            if output.output_type == "stream":
                parts.append(output.text)
            elif "text/plain" in output.get("data", {}):
                parts.append(output.data["text/plain"] + "\n")
    return "".join(parts)


def exercise_headings(notebook) -> list[str]:
    return [
        match
        for cell in notebook.cells
        if cell.cell_type == "markdown"
        for match in re.findall(r"^#+ (Exercise \d+)\b", cell.source, flags=re.M)
    ]


def grades(notebook) -> dict[str, str]:
    found = GRADE.findall(outputs_text(notebook))
    result = dict(found)
    assert len(result) == len(found), f"an exercise is graded twice: {found}"
    return result


def test_there_are_at_least_eight_exercises_each_under_its_own_heading():
    headings = exercise_headings(nbformat.read(BLANK, as_version=4))
    assert len(headings) >= 8 and len(set(headings)) == len(headings), headings


def test_the_solutions_are_the_same_notebook_with_the_answers_filled_in():
    blank_nb, solved_nb = (nbformat.read(p, as_version=4) for p in (BLANK, SOLVED))
    assert [c.cell_type for c in blank_nb.cells] == [c.cell_type for c in solved_nb.cells]
    for mine, theirs in zip(blank_nb.cells, solved_nb.cells):
        if mine.cell_type == "markdown":  # the same text; links are relative to each folder
            unlinked = re.sub(r"\]\([^)]*\)", "]()", mine.source)
            assert unlinked == re.sub(r"\]\([^)]*\)", "]()", theirs.source)
        elif "# your code" not in mine.source:
            assert mine.source == theirs.source
        else:
            assert "# your code" not in theirs.source, f"no answer in:\n{theirs.source}"


@pytest.mark.parametrize("path", [BLANK, SOLVED], ids=["exercises", "solutions"])
def test_stored_notebooks_show_every_grade(path):
    notebook = nbformat.read(path, as_version=4)
    expected = "not yet" if path == BLANK else "passed"
    assert grades(notebook) == dict.fromkeys(exercise_headings(notebook), expected), (
        f"{path.name}: store fresh outputs with: uv run python notebooks/execute.py "
        "exercises.ipynb solutions/exercises.ipynb"
    )


@pytest.fixture(scope="module")
def fresh():
    executor = _executor()
    with ThreadPoolExecutor(max_workers=2) as pool:
        runs = {path: pool.submit(executor.execute, path, 300) for path in (BLANK, SOLVED)}
    return {path: run.result() for path, run in runs.items()}


def test_unsolved_the_notebook_runs_and_every_exercise_says_not_yet(fresh):
    notebook = fresh[BLANK]
    assert grades(notebook) == dict.fromkeys(exercise_headings(notebook), "not yet")
    # each trap is shown caught: its broken version graded wrong by the same check
    text = outputs_text(notebook)
    assert len(re.findall(r"^(?!Exercise)[^\n]+: wrong: ", text, flags=re.M)) >= 6


def test_solved_every_exercise_passes(fresh):
    notebook = fresh[SOLVED]
    assert grades(notebook) == dict.fromkeys(exercise_headings(notebook), "passed")
