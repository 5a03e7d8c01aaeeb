"""Random bad input at every public entry point: a clear error of the documented type, or a
correct result; never a hang, a raw MemoryError or RecursionError, or a changed registry."""

import json
import keyword
import math
import re
import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import mingrad_core
from mingrad.cli import UsageError, build_parser, main
from mingrad.expression import ExpressionError, evaluate
from mingrad_core import OpRegistrationError, Scalar, register_op
from mingrad_core import functional as F
from mingrad_nn import MLP, ModelFileError, load, load_into, save

fuzz = settings(
    max_examples=50,
    deadline=3000,  # milliseconds: an example that takes longer is a hang
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


def same(a: float, b: float) -> bool:
    return a == b or (math.isnan(a) and math.isnan(b))


# -- Scalar -------------------------------------------------------------------------------------

reals = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(-(2**1000), 2**1000),
    st.booleans(),
    st.fractions(),
    st.floats(width=32).map(np.float32),
    st.integers(-(2**62), 2**62).map(np.int64),
    st.booleans().map(np.bool_),
)
not_reals = st.one_of(
    st.none(),
    st.text(max_size=20),
    st.binary(max_size=20),
    st.complex_numbers(),
    st.lists(st.floats(), max_size=3),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
    st.decimals(allow_nan=False),
    st.just(np.array([1.0, 2.0])),
    st.just(object()),
)


@fuzz
@given(value=reals)
def test_a_scalar_holds_any_real_number_as_a_float(value):
    node = Scalar(value)
    assert type(node.data) is float and same(node.data, float(value))


@fuzz
@given(value=st.integers(min_value=2**1024, max_value=2**5000) | st.integers(max_value=-(2**1024)))
def test_an_integer_beyond_the_float_range_is_infinite(value):
    assert Scalar(value).data == (math.inf if value > 0 else -math.inf)


@fuzz
@given(value=not_reals)
def test_a_scalar_refuses_what_is_not_a_real_number(value):
    with pytest.raises(TypeError, match="real number"):
        Scalar(value)


@fuzz
@given(name=st.none() | st.text(max_size=30))
def test_a_scalar_keeps_a_text_name(name):
    assert Scalar(1.0, name=name).name == name


@fuzz
@given(name=not_reals.filter(lambda v: v is not None and not isinstance(v, str)) | reals)
def test_a_scalar_refuses_a_name_that_is_not_text(name):
    with pytest.raises(TypeError):
        Scalar(1.0, name=name)


# -- register_op --------------------------------------------------------------------------------

junk = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-5, 5),
    st.floats(),
    st.text(max_size=12),
    st.tuples(st.floats(), st.floats()),
    st.lists(st.integers(), max_size=3),
    st.sampled_from(
        [abs, print, lambda: 0.0, lambda x: x, lambda a, b, out: (1.0, 1.0), "+", "**", "neg"]
    ),
)
SHADOWING = sorted({*keyword.kwlist, *keyword.softkwlist, *vars(F), "backward", "data", "grad"})
names = st.one_of(
    st.from_regex(r"[A-Za-z][A-Za-z0-9_]{0,10}", fullmatch=True),
    st.sampled_from(SHADOWING),
    st.sampled_from(["add", "tanh", "relu", "gelu"]),  # taken
    st.text(max_size=12),
)
FIELDS = ["name", "arity", "variadic", "forward", "gradient", "operator", "label", "domain", "doc"]


@fuzz
@given(
    name=names,
    changes=st.dictionaries(st.sampled_from(FIELDS[1:] + ["unknown_field"]), junk, max_size=3),
)
def test_register_op_refuses_bad_fields_and_changes_nothing(name, changes):
    fields = {
        "name": name,
        "arity": 1,
        "forward": lambda x: x,
        "gradient": lambda x, out: (1.0,),
        **changes,
    }
    before = mingrad_core.ops()
    shadows = hasattr(Scalar, name) and name not in before  # a Scalar attribute of its own
    # an earlier example's op, registered from here: registering it again replaces it
    ours = name in before and mingrad_core.origin_of(name).plugin == __name__
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            spec = register_op(**fields)
    except OpRegistrationError as exc:
        assert str(exc) and mingrad_core.ops() == before
        return
    after = mingrad_core.ops()
    assert (name not in before or ours) and name.isidentifier()
    assert ours == any("replaces the op" in str(w.message) for w in caught)
    assert not keyword.iskeyword(name) and not keyword.issoftkeyword(name)
    assert name not in vars(F) and not shadows
    assert after == {**before, name: spec} and mingrad_core.get_op(name) is spec
    assert getattr(Scalar, name).__name__ == name  # and a Scalar method now


@fuzz
@given(spec=junk)
def test_register_op_refuses_what_is_not_a_spec(spec):
    before = mingrad_core.ops()
    with pytest.raises(OpRegistrationError):
        register_op(spec)
    assert mingrad_core.ops() == before


# -- load ---------------------------------------------------------------------------------------

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=False)
    | st.text(max_size=10),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
KEYS = ["format", "version", "architecture", "parameters", "kind", "nin", "nouts", "activation"]


def good_model() -> dict:
    model = MLP(2, [2, 1], seed=0)
    return {
        "format": "mingrad-model",
        "version": 1,
        "architecture": {"kind": "MLP", "nin": 2, "nouts": [2, 1], "activation": "relu"},
        "parameters": [p.data for p in model.parameters()],
    }


@st.composite
def garbled_files(draw) -> bytes:
    how = draw(st.sampled_from(["bytes", "json", "replace", "delete", "truncate", "flip"]))
    if how == "bytes":
        return draw(st.binary(max_size=200))
    if how == "json":
        return json.dumps(draw(json_values)).encode()
    data = good_model()
    text = json.dumps(data).encode()
    if how == "truncate":
        return text[: draw(st.integers(0, len(text) - 1))]
    if how == "flip":
        at = draw(st.integers(0, len(text) - 1))
        return text[:at] + bytes([draw(st.integers(0, 255))]) + text[at + 1 :]
    section = draw(st.sampled_from([data, data["architecture"]]))
    key = draw(st.sampled_from(KEYS))
    if how == "delete":
        section.pop(key, None)
    else:
        section[key] = draw(json_values)
    return json.dumps(data).encode()


@fuzz
@given(content=garbled_files())
def test_load_refuses_a_garbled_file_or_loads_it_exactly(tmp_path, content):
    path = tmp_path / "m.json"
    path.write_bytes(content)
    try:
        model = load(path)
    except ModelFileError as exc:
        assert 0 < len(str(exc)) < 3000
    else:
        stored = json.loads(content)
        assert model.nin == stored["architecture"]["nin"]
        assert [p.data for p in model.parameters()] == stored["parameters"]
    target = MLP(2, [2, 1], seed=1)
    before = [p.data for p in target.parameters()]
    try:
        load_into(target, path)
    except ModelFileError:
        assert [p.data for p in target.parameters()] == before


@fuzz
@given(nin=st.integers(1, 10**6), nouts=st.lists(st.integers(1, 10**6), min_size=1, max_size=4))
def test_load_refuses_a_claimed_shape_before_building_it(tmp_path, nin, nouts):
    data = good_model()
    data["architecture"].update(nin=nin, nouts=nouts)
    sizes = [nin, *nouts]
    needed = sum((a + 1) * b for a, b in zip(sizes, nouts))
    path = tmp_path / "m.json"
    path.write_text(json.dumps(data))
    if needed == len(data["parameters"]):
        assert len(load(path).parameters()) == needed
    else:
        with pytest.raises(ModelFileError, match=f"needs {needed}"):
            load(path)


@settings(fuzz, max_examples=15)  # each example writes and syncs a file
@given(values=st.lists(st.floats(), min_size=17, max_size=17))
def test_any_floats_round_trip(tmp_path, values):
    model = MLP(2, [2, 1], seed=0)
    model2 = MLP(2, [3, 1], seed=0)
    for p, v in zip(model2.parameters(), values):
        p.data = v
    save(model2, tmp_path / "m.json")
    assert all(same(p.data, v) for p, v in zip(load(tmp_path / "m.json").parameters(), values))
    with pytest.raises(ModelFileError):
        load_into(model, tmp_path / "m.json")


# -- the expression evaluator -------------------------------------------------------------------

ALPHABET = "xyw019.e+-*/%()[],'_ <>=&|^~@:" + "tanhrelupxgsd"
numbers_text = st.one_of(
    st.integers(0, 10**30).map(str),
    st.floats(0, allow_nan=False, allow_infinity=False).map(repr),
    st.sampled_from(["1e400", "0", "0.0", "9", "10"]),
)


def expressions(constants: st.SearchStrategy) -> st.SearchStrategy:
    """Random expression trees, as source text."""
    leaves = constants | st.sampled_from(["x", "w"])
    return st.recursive(
        leaves,
        lambda inner: st.one_of(
            st.tuples(inner, st.sampled_from(["+", "-", "*", "/", "**"]), inner).map(
                lambda t: f"({t[0]} {t[1]} {t[2]})"
            ),
            inner.map(lambda e: f"(-{e})"),
            st.tuples(st.sampled_from(["tanh", "relu", "exp", "log"]), inner).map(
                lambda t: f"{t[0]}({t[1]})"
            ),
        ),
        max_leaves=20,
    )


bad_expressions = st.recursive(
    numbers_text | st.sampled_from(["x", "y", "w", "True", "None", "1j", "'s'", "tanh", "[]"]),
    lambda inner: st.one_of(
        st.tuples(
            inner, st.sampled_from(["+", "%", "//", "@", "<<", "<", "and", "if", "."]), inner
        ).map(lambda t: f"({t[0]} {t[1]} {t[2]})"),
        st.tuples(
            st.sampled_from(["tanh", "add", "linear", "nosuch", "x.tanh", "lambda"]),
            st.lists(inner, max_size=3),
        ).map(lambda t: f"{t[0]}({', '.join(t[1])})"),
        inner.map(lambda e: f"{e}[0]"),
        inner.map(lambda e: f"not {e}"),
    ),
    max_leaves=12,
)


def used(source: str, values: dict[str, float]) -> dict[str, float]:
    """The values whose names occur in ``source`` (evaluate refuses a value not used)."""
    return {name: v for name, v in values.items() if re.search(rf"\b{name}\b", source)}


def check_evaluates_or_refuses(source: str) -> None:
    try:
        result = evaluate(source, used(source, {"x": 1.5, "w": -0.5}))
    except ExpressionError as exc:
        assert "\n" not in str(exc) and 0 < len(str(exc)) < 1000
    else:
        assert isinstance(result, Scalar) and type(result.data) is float


@fuzz
@given(source=st.text(ALPHABET, max_size=60) | st.text(max_size=30))
def test_random_text_evaluates_or_is_refused_clearly(source):
    check_evaluates_or_refuses(source)


@fuzz
@given(source=bad_expressions)
def test_random_bad_trees_evaluate_or_are_refused_clearly(source):
    check_evaluates_or_refuses(source)


@fuzz
@given(source=expressions(numbers_text))
def test_numbers_fold_exactly_as_the_same_values_in_variables_would(source):
    folded = evaluate(source, used(source, {"x": 1.5, "w": -0.5})).data
    # the same expression with every number replaced by a variable holding it
    constants: dict[str, float] = {}

    def variable(match) -> str:
        name = f"c{len(constants)}"
        constants[name] = float(match.group(0))
        return name

    pattern = r"(?<![A-Za-z_0-9.])\d+(?:\.\d*)?(?:e[+-]?\d+)?"
    as_variables = re.sub(pattern, variable, source)
    unfolded = evaluate(as_variables, used(as_variables, {"x": 1.5, "w": -0.5, **constants})).data
    assert isinstance(folded, float) and same(folded, unfolded), (source, as_variables)


@settings(fuzz, max_examples=25)
@given(depth=st.integers(1, 5000), kind=st.sampled_from(["+", "**", "-", "tanh", "("]))
def test_any_depth_evaluates_or_is_refused_as_too_deep(depth, kind):
    source = {
        "+": "+".join(["x"] * depth),
        "**": "**".join(["1"] * depth),
        "-": "0" + "-" * depth + "x",
        "tanh": "tanh(" * depth + "x" + ")" * depth,
        "(": "(" * depth + "x" + ")" * depth,
    }[kind]
    check_evaluates_or_refuses(source)


# -- the command line ---------------------------------------------------------------------------

COMMANDS = ["demo", "graph", "ops", "check"]
OPTIONS = [
    "--steps", "--seed", "--samples", "--max-nodes", "--rankdir", "--composites", "--dataset",
    "--activation", "-o", "--output", "--animate", "--no-backward", "--jit", "--no-jit", "--",
]  # fmt: skip
VALUES = [
    "", " ", "-", "0", "-1", "2", "1e3", "nan", "9" * 30, "x*x", "-x*x", "x=1", "y=2", "x=",
    "=1", "é=1", "ﬁ*ﬁ", "ﬁ=2", "LR", "XX", "box", "relu", "tanh", "digits", "g.svg", "g.png",
    "g.html", "g.xyz", "no/such/g.svg", ".", "x" * 300, "💥", "if=1",
]  # fmt: skip
words = st.sampled_from(COMMANDS + OPTIONS + VALUES)


@fuzz
@given(argv=st.lists(words, max_size=8))
def test_the_parser_returns_a_command_or_refuses_in_one_line(argv):
    try:
        args = build_parser().parse_args(argv)
    except UsageError as exc:
        assert str(exc).startswith("mingrad") and "\n" not in str(exc) and len(str(exc)) < 1000
    else:
        assert args.command in COMMANDS and callable(args.run)


@settings(fuzz, max_examples=30)  # each example may draw with Graphviz
@given(argv=st.lists(st.sampled_from(OPTIONS[3:5] + OPTIONS[6:12] + VALUES), max_size=7))
def test_graph_draws_or_refuses_in_one_line(tmp_path, monkeypatch, capsys, argv):
    monkeypatch.chdir(tmp_path)
    status = main(["graph", *argv])
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err
    if status == 0:
        assert captured.out.startswith("wrote ") and captured.err == ""
    else:
        assert status == 2 and captured.out == "" and captured.err.count("\n") == 1
        assert captured.err.startswith("mingrad graph: error: ")
