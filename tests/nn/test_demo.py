import subprocess

from mingrad.cli import main
from mingrad.demo import train_moons

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
