import math
import subprocess
import sys

import pytest

from mingrad.cli import main
from mingrad.demo import DEMO_DEPENDENCIES, MissingDemoDependencyError, moons, train_moons

PNG = b"\x89PNG\r\n\x1a\n"


def test_the_demo_reaches_99_percent_training_accuracy():
    run = train_moons(steps=100, seed=0)
    assert run.accuracies[-1] >= 0.99
    assert run.losses[-1] < run.losses[0] / 10


def test_mingrad_demo_writes_its_png(tmp_path, capsys):
    out = tmp_path / "moons.png"
    assert main(["demo", "--steps", "5", "--output", str(out)]) == 0
    assert out.read_bytes().startswith(PNG)
    summary = capsys.readouterr().out
    assert "5 steps" in summary and "training accuracy" in summary and str(out) in summary


def test_the_mingrad_command_is_installed_and_explains_its_options():
    result = subprocess.run(
        ["mingrad", "demo", "--help"], capture_output=True, text=True, check=True
    )
    for option in ("--steps", "--seed", "--activation", "--output"):
        assert option in result.stdout


def test_demo_reports_a_bad_activation_clearly(tmp_path, capsys):
    assert (
        main(["demo", "--steps", "1", "--activation", "nope", "-o", str(tmp_path / "x.png")]) == 2
    )
    assert "unknown activation 'nope'" in capsys.readouterr().err


def test_an_output_without_a_suffix_is_written_as_png_and_reported_by_its_real_name(
    tmp_path, capsys
):
    name = tmp_path / "boundary"
    assert main(["demo", "--steps", "2", "-o", str(name)]) == 0
    written = tmp_path / "boundary.png"
    assert written.read_bytes().startswith(PNG)
    assert not name.exists()
    assert capsys.readouterr().out.splitlines()[-1] == f"wrote {written}"


def test_training_stops_at_the_first_step_whose_loss_is_nan():
    run = train_moons(steps=10, activation="log")
    assert run.diverged_at == 0
    assert len(run.losses) == 1 and math.isnan(run.losses[0])
    assert train_moons(steps=3).diverged_at is None


def test_demo_warns_naming_the_step_and_exits_1_when_the_loss_becomes_nan(tmp_path, capsys):
    out = tmp_path / "moons.png"
    assert main(["demo", "--activation", "log", "-o", str(out)]) == 1
    err = capsys.readouterr().err
    assert "warning: the loss became nan at step 1 of 100 (activation 'log')" in err
    assert not out.exists()


def test_demo_help_says_a_nan_loss_exits_1(capsys):
    with pytest.raises(SystemExit):
        main(["demo", "--help"])
    help_text = " ".join(capsys.readouterr().out.split())
    assert "exits 1" in help_text and "nan" in help_text


@pytest.mark.parametrize("module", ["sklearn", "matplotlib", "tqdm"])
def test_demo_without_its_extra_exits_2_with_one_line_saying_how_to_install_it(
    module, tmp_path, capsys, monkeypatch
):
    monkeypatch.setitem(sys.modules, module, None)  # `import module` now fails
    assert main(["demo", "-o", str(tmp_path / "moons.png")]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    lines = captured.err.splitlines()
    assert len(lines) == 1
    assert DEMO_DEPENDENCIES[module] in lines[0]
    assert 'pip install "mingrad[demo]"' in lines[0]
    assert not (tmp_path / "moons.png").exists()


def test_the_demo_functions_without_the_extra_raise_the_install_hint(monkeypatch):
    monkeypatch.setitem(sys.modules, "sklearn", None)
    with pytest.raises(MissingDemoDependencyError, match=r"pip install \"mingrad\[demo\]\""):
        moons()


@pytest.mark.parametrize("dataset", ["moons", "digits"])
@pytest.mark.parametrize("steps", ["0", "-5"])
def test_demo_refuses_fewer_than_one_step_naming_the_option(capsys, dataset, steps):
    assert main(["demo", "--dataset", dataset, "--steps", steps]) == 2
    assert (
        capsys.readouterr().err == f"mingrad demo: error: --steps must be at least 1; got {steps}\n"
    )


@pytest.mark.parametrize("steps", [0, -1, 2.5, True])
def test_the_training_functions_refuse_fewer_than_one_step(steps):
    from mingrad.demo import train_digits

    for train in (train_moons, train_digits):
        with pytest.raises(ValueError, match=rf"steps must be a positive int.*got {steps!r}"):
            train(steps=steps)
