"""Shared fixtures: a clean registry per test, and throwaway plugin distributions."""

import itertools
import math
import os
import textwrap
from pathlib import Path

import pytest
from hypothesis import settings

import mingrad_core

# CI replays the same examples every run; a developer's runs keep exploring new ones.
settings.register_profile("ci", derandomize=True, database=None)
if os.environ.get("CI"):
    settings.load_profile("ci")


@pytest.fixture(autouse=True)
def fresh_registry(monkeypatch):
    """Each test starts from, and leaves behind, a registry freshly loaded from entry points."""
    monkeypatch.delenv("MINGRAD_PLUGINS", raising=False)
    monkeypatch.delenv("MINGRAD_STRICT_PLUGINS", raising=False)
    mingrad_core.reset()
    yield
    mingrad_core.reset()


_unique = itertools.count()


@pytest.fixture
def install_plugin(tmp_path, monkeypatch):
    """Install a throwaway plugin distribution: real metadata and entry points on sys.path.

    ``install_plugin("dist-name", {"entry_point": "module source"})``; each entry point
    loads a module of its own.
    """

    def install(dist: str, modules: dict[str, str], version: str = "1.0") -> Path:
        root = tmp_path / dist
        info = root / f"{dist.replace('-', '_')}-{version}.dist-info"
        info.mkdir(parents=True)
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\n")
        lines = ["[mingrad]"]
        for name, source in modules.items():
            module = f"{dist.replace('-', '_')}_{name}_{next(_unique)}"  # never cached
            (root / f"{module}.py").write_text(textwrap.dedent(source))
            lines.append(f"{name} = {module}")
        (info / "entry_points.txt").write_text("\n".join(lines) + "\n")
        monkeypatch.syspath_prepend(str(root))
        mingrad_core.reset()
        return root

    return install


def same(got, want):
    """Equal element by element, nan where nan, zeros of the same sign (a masked 0.0 is +0.0,
    as PyTorch's zeros)."""
    assert len(got) == len(want)
    for g, w in zip(got, want):
        if math.isnan(w):
            assert math.isnan(g), (got, want)
        else:
            assert g == w and math.copysign(1.0, g) == math.copysign(1.0, w), (got, want)
