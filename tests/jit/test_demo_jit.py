"""The demo under jit: the same training as eager mode."""

import pytest

from mingrad.cli import main
from mingrad.demo import train_moons


def test_the_moons_demo_trains_the_same_under_jit():
    eager = train_moons(steps=2)
    jitted = train_moons(steps=2, use_jit=True)
    assert jitted.losses == pytest.approx(eager.losses, rel=1e-12)
    assert jitted.accuracies == eager.accuracies


def test_demo_help_says_which_dataset_and_jit_default(capsys):
    with pytest.raises(SystemExit):
        main(["demo", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "--dataset {moons,digits}" in text and "Default: off for moons, on for digits" in text
