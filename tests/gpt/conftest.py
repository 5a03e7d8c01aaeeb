"""The GPT example, imported from examples/gpt.py (the examples folder is not a package)."""

import importlib.util
import sys
from pathlib import Path

import pytest

EXAMPLE = Path(__file__).parents[2] / "examples" / "gpt.py"


@pytest.fixture(scope="session")
def gpt():
    """The ``examples/gpt.py`` module."""
    spec = importlib.util.spec_from_file_location("gpt_example", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module
