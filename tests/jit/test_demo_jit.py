"""The demo under jit: the same training as eager mode."""

import numpy as np
import pytest

from mingrad import demo
from mingrad.cli import main
from mingrad.demo import train_digits, train_moons
from mingrad_core import Scalar
from mingrad_jit import jit, vmap


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


def test_the_digits_demo_trains_the_same_under_jit():
    jitted, eager = train_digits(steps=2), train_digits(steps=2, use_jit=False)
    assert jitted.losses == pytest.approx(eager.losses, rel=1e-9)
    assert jitted.accuracies == eager.accuracies
    assert len(jitted.losses) == 2


def test_hits_counted_with_ops_are_those_the_values_give_ties_included():
    rng = np.random.default_rng(0)
    logits = rng.integers(-2, 3, (300, 4)).astype(float)  # many ties among 5 values
    labels = rng.integers(0, 4, 300)
    onehot = np.eye(4)[labels]

    def on_top(z, t):
        return demo._on_top(list(map(Scalar, z)), t)

    counted = jit(lambda Z, T: sum(vmap(on_top)(Z, T)))(logits, onehot).data
    by_value = sum(demo._top_value(list(map(Scalar, z)), int(k)) for z, k in zip(logits, labels))
    eager = sum(on_top(z, t).data for z, t in zip(logits.tolist(), onehot.tolist()))
    assert counted == eager == by_value
    assert 0 < by_value < 300
