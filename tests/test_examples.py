"""The examples a learner opens first run as they are."""

import subprocess
import sys
from pathlib import Path

EXAMPLES = Path(__file__).parents[1] / "examples"


def run(name: str) -> str:
    result = subprocess.run(
        [sys.executable, str(EXAMPLES / name)], capture_output=True, text=True, check=True
    )
    return result.stdout


def test_seed_example_prints_the_seed_gradients():
    out = run("seed_example.py")
    assert "dd/da = 2.5" in out
    assert f"dd/db = {6 * (-6.5) ** 5}" in out


def test_train_moons_reaches_full_accuracy():
    last = run("train_moons.py").strip().splitlines()[-1]
    assert last.startswith("step  99") and last.endswith("accuracy 100%")
