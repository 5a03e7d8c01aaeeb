import json
import math
import os

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mingrad_nn import MLP, ModelFileError, load, load_into, save


def params(model):
    return [p.data for p in model.parameters()]


@settings(max_examples=25, deadline=None)
@given(
    nin=st.integers(1, 4),
    nouts=st.lists(st.integers(1, 5), min_size=1, max_size=3),
    activation=st.sampled_from(["relu", "tanh"]),
    seed=st.integers(0, 2**32),
    scale=st.floats(1e-300, 1e300),
)
def test_round_trip_is_bit_exact(tmp_path_factory, nin, nouts, activation, seed, scale):
    model = MLP(nin, nouts, activation=activation, seed=seed)
    for p in model.parameters():
        p.data *= scale
    path = tmp_path_factory.mktemp("m") / "model.json"
    save(model, path)
    loaded = load(path)
    assert (loaded.nin, loaded.nouts, loaded.activation) == (nin, nouts, activation)
    assert [v.hex() for v in params(loaded)] == [v.hex() for v in params(model)]
    other = MLP(nin, nouts, activation=activation, seed=seed + 1)
    load_into(other, path)
    assert [v.hex() for v in params(other)] == [v.hex() for v in params(model)]


def test_nan_and_infinities_are_written_explicitly_as_valid_json(tmp_path):
    model = MLP(1, [2], seed=0)
    ps = model.parameters()
    ps[0].data, ps[1].data, ps[2].data = math.nan, math.inf, -math.inf
    save(model, tmp_path / "m.json")
    text = (tmp_path / "m.json").read_text()
    stored = json.loads(text, parse_constant=lambda c: pytest.fail(f"invalid JSON {c}"))
    assert stored["parameters"][:3] == ["NaN", "Infinity", "-Infinity"]
    loaded = params(load(tmp_path / "m.json"))
    assert math.isnan(loaded[0]) and loaded[1:3] == [math.inf, -math.inf]


@pytest.fixture
def good_file(tmp_path):
    path = tmp_path / "good.json"
    save(MLP(2, [3, 1], seed=0), path)
    return path


def corrupt(good_file, how):
    text = good_file.read_text()
    data = json.loads(text)
    if how == "truncated":
        return text[: len(text) // 2]
    if how == "malformed":
        return text.replace(":", "=", 1)
    if how == "not an object":
        return "[1, 2, 3]"
    if how == "wrong version":
        data["version"] = 99
    if how == "wrong format":
        data["format"] = "something-else"
    if how == "too few parameters":
        data["parameters"] = data["parameters"][:-1]
    if how == "too many parameters":
        data["parameters"].append(0.5)
    if how == "non-number parameter":
        data["parameters"][0] = "abc"
    if how == "unknown activation":
        data["architecture"]["activation"] = "no_such_op"
    if how == "bad layer size":
        data["architecture"]["nouts"] = [0, 1]
    if how == "extra field":
        data["pickle"] = "no"
    return json.dumps(data)


CASES = [
    ("truncated", "not a valid MinGrad model file"),
    ("malformed", "not a valid MinGrad model file"),
    ("not an object", "not a valid MinGrad model file"),
    ("wrong version", "format version 99; this MinGrad reads version 1"),
    ("wrong format", "format"),
    ("too few parameters", "holds 12 parameters; its architecture \\[3, 1\\] needs 13"),
    ("too many parameters", "holds 14 parameters"),
    ("non-number parameter", "parameters.0"),
    ("unknown activation", "unknown activation 'no_such_op'"),
    ("bad layer size", "nouts"),
    ("extra field", "pickle"),
]


@pytest.mark.parametrize("how, message", CASES)
def test_bad_files_are_rejected_and_change_nothing(good_file, tmp_path, how, message):
    bad = tmp_path / "bad.json"
    bad.write_text(corrupt(good_file, how))
    with pytest.raises(ModelFileError, match=message):
        load(bad)
    model = MLP(2, [3, 1], seed=5)
    before = params(model)
    with pytest.raises(ModelFileError):
        load_into(model, bad)
    assert params(model) == before


def test_loading_into_a_different_architecture_changes_nothing(good_file):
    model = MLP(2, [4, 1], seed=5)
    before = params(model)
    with pytest.raises(ModelFileError, match="holds an MLP\\(nin=2, nouts=\\[3, 1\\]"):
        load_into(model, good_file)
    assert params(model) == before


def test_missing_or_binary_files_are_reported(tmp_path):
    with pytest.raises(ModelFileError, match="cannot read model file"):
        load(tmp_path / "absent.json")
    (tmp_path / "bin.json").write_bytes(b"\xff\xfe\x00")
    with pytest.raises(ModelFileError, match="cannot read model file"):
        load(tmp_path / "bin.json")


def test_a_crash_mid_write_leaves_the_old_file_in_place(good_file, monkeypatch):
    before = good_file.read_bytes()

    def crash(fd):
        raise OSError("disk full")

    monkeypatch.setattr(os, "fsync", crash)
    with pytest.raises(OSError, match="disk full"):
        save(MLP(2, [5, 1], seed=1), good_file)
    assert good_file.read_bytes() == before
    assert os.listdir(good_file.parent) == [good_file.name]  # no temporary left behind


def test_save_refuses_what_it_cannot_describe(tmp_path):
    from mingrad_nn import Layer

    with pytest.raises(TypeError, match="writes an MLP; got Layer"):
        save(Layer(2, 2), tmp_path / "x.json")
