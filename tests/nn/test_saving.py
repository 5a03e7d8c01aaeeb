import json
import math
import os
import stat
import subprocess
import sys
import threading

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


def write_model(path, *, nin=2, nouts=(1,), activation="relu", parameters=None, **extra):
    parameters = [0.5] * ((nin + 1) * nouts[0]) if parameters is None else parameters
    data = {
        "format": "mingrad-model",
        "version": 1,
        "architecture": {"kind": "MLP", "nin": nin, "nouts": list(nouts), "activation": activation},
        "parameters": parameters,
        **extra,
    }
    path.write_text(json.dumps(data))
    return path


@pytest.fixture
def no_building(monkeypatch):
    """Fail the test if load() builds a model."""
    import mingrad_nn.saving

    def forbidden(*args, **kwargs):
        pytest.fail("load() built an MLP before checking the file")

    monkeypatch.setattr(mingrad_nn.saving, "MLP", forbidden)


def test_a_tiny_file_claiming_a_huge_model_is_refused_before_building(tmp_path, no_building):
    path = write_model(tmp_path / "huge.json", nin=31623, nouts=[31623], parameters=[0.5])
    with pytest.raises(ModelFileError, match="holds 1 parameters; its architecture .* needs "):
        load(path)


def test_an_unknown_activation_is_refused_before_building(tmp_path, no_building):
    path = write_model(
        tmp_path / "m.json", nin=31623, nouts=[31623], activation="nope", parameters=[0.5]
    )
    with pytest.raises(ModelFileError, match="unknown activation 'nope'"):
        load(path)


@pytest.mark.parametrize(
    "field, value",
    [
        ("version", "1"),
        ("version", True),
        ("version", 1.0),
        ("parameter", "1.5"),
        ("parameter", True),
        ("parameter", None),
        ("parameter", "nan"),
        pytest.param("parameter", 10**400, id="parameter-10**400"),
        ("nin", 2.0),
        ("nin", "2"),
        ("nouts", [True]),
    ],
)
def test_the_schema_takes_strict_types(tmp_path, field, value):
    data = json.loads(write_model(tmp_path / "m.json").read_text())
    if field == "version":
        data["version"] = value
    elif field == "parameter":
        data["parameters"][0] = value
    else:
        data["architecture"][field] = value
    (tmp_path / "m.json").write_text(json.dumps(data))
    with pytest.raises(ModelFileError, match="not a valid MinGrad model file"):
        load(tmp_path / "m.json")


def test_numbers_and_the_three_special_strings_are_parameters(tmp_path):
    path = write_model(tmp_path / "m.json", parameters=[1, -2.5, "NaN"])
    loaded = params(load(path))
    assert loaded[:2] == [1.0, -2.5] and math.isnan(loaded[2])
    assert all(type(v) is float for v in loaded)


HUGE = "x" * 2_000_000


@pytest.mark.parametrize(
    "where",
    ["activation", "format", "version", "parameter", "extra key", "architecture key", "nin"],
)
def test_a_huge_value_is_quoted_briefly(tmp_path, where):
    data = json.loads(write_model(tmp_path / "m.json").read_text())
    if where == "activation":
        data["architecture"]["activation"] = HUGE
    elif where == "format":
        data["format"] = HUGE
    elif where == "version":
        data["version"] = HUGE
    elif where == "parameter":
        data["parameters"] = [HUGE] + ["bad"] * 1000  # many errors, too
    elif where == "extra key":
        data[HUGE] = 1
    elif where == "architecture key":
        data["architecture"][HUGE] = 1
    elif where == "nin":
        data["architecture"]["nin"] = [HUGE]
    (tmp_path / "m.json").write_text(json.dumps(data))
    with pytest.raises(ModelFileError) as info:
        load(tmp_path / "m.json")
    assert len(str(info.value)) < 2000
    assert "xxxxxxxxxx" in str(info.value)  # the value is quoted, cut short


def kill_mid_save(path):
    """Run save() in a child process that dies between writing and renaming."""
    code = (
        "import os, sys; from mingrad_nn import MLP, save\n"
        "os.fsync = lambda fd: os._exit(9)\n"
        "save(MLP(2, [3, 1], seed=0), sys.argv[1])\n"
    )
    result = subprocess.run([sys.executable, "-c", code, str(path)], timeout=60)
    assert result.returncode == 9


def temporaries(folder):
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".tmp"))


def test_a_save_cleans_up_after_a_killed_save(tmp_path):
    target = tmp_path / "model.json"
    kill_mid_save(target)
    assert len(temporaries(tmp_path)) == 1 and not target.exists()
    (tmp_path / ".model.json.k3j_9xq2.tmp").write_text("left by an earlier release")
    others = [".other.json.abcdefgh.tmp", ".model.json.keep", "model.json.tmp", "notes.tmp"]
    for name in others:
        (tmp_path / name).write_text("not ours")
    save(MLP(2, [3, 1], seed=1), target)
    assert temporaries(tmp_path) == sorted(n for n in others if n.endswith(".tmp"))
    assert all((tmp_path / name).read_text() == "not ours" for name in others)
    assert params(load(target)) == params(MLP(2, [3, 1], seed=1))


def test_a_save_leaves_another_saves_temporary_alone(tmp_path, monkeypatch):
    target = tmp_path / "model.json"
    writing, may_finish = threading.Event(), threading.Event()
    real_fsync = os.fsync

    def slow_fsync(fd):
        if threading.current_thread().name == "slow":
            writing.set()
            may_finish.wait(30)
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", slow_fsync)
    errors = []

    def slow_save():
        try:
            save(MLP(2, [3, 1], seed=2), target)
        except Exception as exc:  # reported below
            errors.append(exc)

    thread = threading.Thread(target=slow_save, name="slow")
    thread.start()
    assert writing.wait(30)
    save(MLP(2, [3, 1], seed=1), target)
    may_finish.set()
    thread.join(30)
    assert errors == [] and temporaries(tmp_path) == []
    assert params(load(target)) == params(MLP(2, [3, 1], seed=2))


posix_only = pytest.mark.skipif(os.name != "posix", reason="file modes and umask are POSIX")


@pytest.fixture
def umask():
    old = os.umask(0o022)
    yield os.umask
    os.umask(old)


@posix_only
@pytest.mark.parametrize("mask, mode", [(0o022, 0o644), (0o002, 0o664), (0o077, 0o600)])
def test_a_new_file_gets_the_mode_the_umask_allows(tmp_path, umask, mask, mode):
    umask(mask)
    save(MLP(1, [1], seed=0), tmp_path / "m.json")
    assert stat.S_IMODE((tmp_path / "m.json").stat().st_mode) == mode


@posix_only
@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604])
def test_overwriting_keeps_the_files_mode(tmp_path, umask, mode):
    target = tmp_path / "m.json"
    target.write_text("old")
    target.chmod(mode)
    save(MLP(1, [1], seed=0), target)
    assert stat.S_IMODE(target.stat().st_mode) == mode
    assert load(target).nin == 1


@pytest.mark.skipif(not hasattr(os, "symlink") or os.name != "posix", reason="needs symlinks")
def test_saving_to_a_symlink_writes_through_to_its_target(tmp_path):
    real_dir = tmp_path / "real"
    real_dir.mkdir()
    (real_dir / "m.json").write_text("old")
    link = tmp_path / "link.json"
    link.symlink_to(real_dir / "m.json")
    save(MLP(2, [1], seed=3), link)
    assert link.is_symlink() and link.resolve() == real_dir / "m.json"
    assert params(load(real_dir / "m.json")) == params(MLP(2, [1], seed=3))
    assert temporaries(tmp_path) == [] and temporaries(real_dir) == []
    dangling = tmp_path / "dangling.json"
    dangling.symlink_to(real_dir / "new.json")
    save(MLP(2, [1], seed=3), dangling)
    assert dangling.is_symlink() and load(real_dir / "new.json").nin == 2


def test_a_linear_mlp_round_trips(tmp_path):
    model = MLP(2, [3, 1], activation=None, seed=4)
    path = tmp_path / "linear.json"
    save(model, path)
    assert json.loads(path.read_text())["architecture"]["activation"] is None
    loaded = load(path)
    assert (loaded.nin, loaded.nouts, loaded.activation) == (2, [3, 1], None)
    assert params(loaded) == params(model)
    x = [0.5, -2.0]
    assert loaded(x).data == model(x).data
    other = MLP(2, [3, 1], activation=None, seed=5)
    load_into(other, path)
    assert params(other) == params(model)
    with pytest.raises(ModelFileError, match="activation=None\\); the model is MLP.*'relu'"):
        load_into(MLP(2, [3, 1]), path)


def test_saving_into_a_missing_directory_names_the_path_given(tmp_path):
    target = tmp_path / "absent" / "model.json"
    with pytest.raises(FileNotFoundError) as caught:
        save(MLP(2, [1]), target)
    assert str(caught.value) == (
        f"cannot save the model to {str(target)!r}: the directory "
        f"{str(tmp_path / 'absent')!r} does not exist"
    )
    assert caught.value.errno == 2 and ".tmp" not in str(caught.value)


def test_saving_onto_a_directory_names_the_path_given_and_leaves_nothing(tmp_path):
    folder = tmp_path / "models"
    folder.mkdir()
    with pytest.raises(IsADirectoryError) as caught:
        save(MLP(2, [1]), folder)
    assert str(caught.value) == (
        f"cannot save the model to {str(folder)!r}: it is a directory; expected the path of a "
        "file, such as model.json inside it"
    )
    assert ".tmp" not in str(caught.value)
    assert sorted(os.listdir(tmp_path)) == ["models"] and os.listdir(folder) == []


def test_saving_under_a_file_names_the_path_given(tmp_path):
    (tmp_path / "file").write_text("")
    with pytest.raises(NotADirectoryError, match=r"/file/m.json': '.*/file' is not a directory$"):
        save(MLP(2, [1]), tmp_path / "file" / "m.json")


def test_a_plugin_activation_is_saved_with_its_distribution(tmp_path):
    model = MLP(2, [3, 1], activation="gelu", seed=0)  # gelu: from mingrad-activations
    save(model, tmp_path / "gelu.json")
    architecture = json.loads((tmp_path / "gelu.json").read_text())["architecture"]
    assert architecture["plugin"] == "mingrad-activations"
    assert params(load(tmp_path / "gelu.json")) == params(model)
    save(MLP(2, [1], seed=0), tmp_path / "relu.json")  # a built-in one names no plugin
    assert "plugin" not in json.loads((tmp_path / "relu.json").read_text())["architecture"]


def test_loading_without_the_activations_plugin_names_the_plugin_to_install(tmp_path):
    save(MLP(2, [3, 1], activation="gelu", seed=0), tmp_path / "gelu.json")
    script = (
        "import sys\n"
        "from mingrad_nn import ModelFileError, load\n"
        "try:\n"
        f"    load({str(tmp_path / 'gelu.json')!r})\n"
        "except ModelFileError as exc:\n"
        "    print(exc)\n"
        "    sys.exit(3)\n"
    )
    env = {**os.environ, "MINGRAD_PLUGINS": ""}  # as if only the built-in ops were installed
    run = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True)
    assert run.returncode == 3, run.stderr
    assert "needs the activation 'gelu' from the plugin distribution 'mingrad-activations'" in (
        run.stdout
    )
    assert "pip install mingrad-activations" in run.stdout


def test_a_file_naming_a_plugin_still_loads_into_a_model_of_the_same_shape(tmp_path):
    path = write_model(tmp_path / "m.json", activation="gelu")
    data = json.loads(path.read_text())
    data["architecture"]["plugin"] = "mingrad-activations"
    path.write_text(json.dumps(data))
    model = MLP(2, [1], activation="gelu", seed=1)
    load_into(model, path)
    assert params(model) == [0.5, 0.5, 0.5]


@pytest.mark.parametrize("plugin", ["", "a b", "-x", "x;rm", 7, None])
def test_a_plugin_name_that_is_not_a_distribution_name_is_refused(tmp_path, plugin):
    path = write_model(tmp_path / "m.json", activation="nope")
    data = json.loads(path.read_text())
    data["architecture"]["plugin"] = plugin
    path.write_text(json.dumps(data))
    if plugin is None:  # null is as good as absent
        with pytest.raises(ModelFileError, match="unknown activation 'nope'"):
            load(path)
    else:
        with pytest.raises(ModelFileError, match="architecture.plugin"):
            load(path)
