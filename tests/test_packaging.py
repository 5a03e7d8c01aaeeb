"""The distributions as a new user gets them: built by ``uv build``, installed into a fresh venv.

A plain install brings only the engine's dependencies; the moons demo then says how to get its
own. Building and installing take a few seconds once uv's cache holds the dependencies.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tarfile
import zipfile
from email.parser import Parser
from pathlib import Path

import pytest
from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[1]
RUNTIME = {"graphviz", "pluggy", "pydantic"}
DEMO_ONLY = ["sklearn", "scipy", "matplotlib", "tqdm", "numpy"]


def uv(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    executable = shutil.which("uv")
    assert executable is not None, "the packaging tests need uv on PATH (pip install uv)"
    # a clean environment: nothing points uv at this project's virtualenv
    env = {k: v for k, v in os.environ.items() if not k.startswith(("UV_", "VIRTUAL_ENV"))}
    result = subprocess.run(
        [executable, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, f"uv {' '.join(args)} failed:\n{result.stderr[-3000:]}"
    return result


@pytest.fixture(scope="module")
def dist(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    uv("build", "--all-packages", "--out-dir", str(out), cwd=ROOT)
    return out


@pytest.fixture(scope="module")
def venv(dist, tmp_path_factory) -> Path:
    """A fresh venv holding the built wheels of mingrad and mingrad-activations, nothing else."""
    where = tmp_path_factory.mktemp("venv")
    uv("venv", "--python", sys.executable, str(where / "venv"), cwd=where)
    python = where / "venv" / "bin" / "python"
    uv("pip", "install", "--python", str(python), *map(str, sorted(dist.glob("*.whl"))), cwd=where)
    return where / "venv"


def one(dist: Path, pattern: str) -> Path:
    (found,) = dist.glob(pattern)
    return found


def metadata(wheel: Path):
    with zipfile.ZipFile(wheel) as archive:
        (name,) = [n for n in archive.namelist() if n.endswith(".dist-info/METADATA")]
        return Parser().parsestr(archive.read(name).decode())


def run(venv: Path, *args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH")}
    env["PATH"] = f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    return subprocess.run(
        [str(venv / "bin" / args[0]), *args[1:]],
        cwd=venv,  # not the checkout, whose folders would shadow the installed packages
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_uv_build_makes_a_wheel_and_an_sdist_of_each_distribution(dist):
    names = sorted(path.name for path in dist.iterdir() if path.suffix in (".whl", ".gz"))
    assert names == [
        "mingrad-0.1.0-py3-none-any.whl",
        "mingrad-0.1.0.tar.gz",
        "mingrad_activations-0.1.0-py3-none-any.whl",
        "mingrad_activations-0.1.0.tar.gz",
    ]


@pytest.mark.parametrize("pattern", ["mingrad-*.whl", "mingrad_activations-*.whl"])
def test_wheel_metadata_is_complete_and_invents_no_urls(dist, pattern):
    meta = metadata(one(dist, pattern))
    assert meta["License-Expression"] == "MIT"
    assert meta["Requires-Python"] == ">=3.11"
    assert meta["Summary"]
    assert meta["Description-Content-Type"] == "text/markdown"
    assert "# mingrad" in meta.get_payload().lower()  # the readme is the long description
    classifiers = meta.get_all("Classifier") or []
    assert "Programming Language :: Python :: 3.11" in classifiers
    assert "Typing :: Typed" in classifiers
    assert not meta.get_all("Project-URL") and not meta["Home-page"]


def test_a_plain_install_requires_only_the_engines_dependencies(dist):
    requires = [
        Requirement(r) for r in metadata(one(dist, "mingrad-*.whl")).get_all("Requires-Dist")
    ]
    assert {r.name for r in requires if r.marker is None} == RUNTIME
    extras = {
        r.name: [extra for extra in ("demo", "jit") if r.marker.evaluate({"extra": extra})]
        for r in requires
        if r.marker is not None
    }
    assert extras == {
        "matplotlib": ["demo"],
        "scikit-learn": ["demo"],
        "tqdm": ["demo"],
        "numpy": ["jit"],
    }


def test_the_wheel_holds_every_package_of_the_checkout(dist):
    packages = {p.parent.name for p in ROOT.glob("mingrad*/__init__.py")}
    with zipfile.ZipFile(one(dist, "mingrad-*.whl")) as archive:
        files = set(archive.namelist())
    shipped = {name.split("/")[0] for name in files if "/" in name}
    assert packages <= shipped, f"pyproject.toml's wheel packages miss {packages - shipped}"
    templates = {str(p.relative_to(ROOT)) for p in (ROOT / "mingrad_viz" / "templates").iterdir()}
    assert templates and templates <= files, f"the player's templates miss {templates - files}"
    untyped = sorted(p for p in packages if f"{p}/py.typed" not in files)
    assert not untyped, f"the wheel claims 'Typing :: Typed' but these lack py.typed: {untyped}"


def test_the_sdist_holds_the_source_and_not_the_separate_plugin(dist):
    with tarfile.open(one(dist, "mingrad-*.tar.gz")) as archive:
        names = {name.split("/", 1)[1] for name in archive.getnames() if "/" in name}
    source = {"README.md", "pyproject.toml", "mingrad_core/engine.py", "mingrad/cli/__init__.py"}
    assert source <= names
    assert not any(name.startswith("plugins/") for name in names)


def test_the_installed_engine_computes_the_seed_examples_gradients(venv):
    seed = (
        "from mingrad import Scalar\n"
        "a = Scalar(2); b = Scalar(-6.5); c = a * 5 / 2; d = c + (b**6).relu()\n"
        "d.backward(); print(a.grad, b.grad)"
    )
    result = run(venv, "python", "-c", seed)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["2.5", "-69617.4375"]


def test_a_plain_install_has_none_of_the_demos_dependencies(venv):
    probe = f"import importlib.util as u; print([m for m in {DEMO_ONLY!r} if u.find_spec(m)])"
    result = run(venv, "python", "-c", probe)
    assert result.stdout.strip() == "[]", result.stderr


def test_mingrad_ops_lists_the_installed_activation_plugin(venv):
    result = run(venv, "mingrad", "ops")
    assert result.returncode == 0, result.stderr
    for op in ("gelu", "silu", "softplus", "relu", "linear"):
        assert f"\n{op} " in result.stdout
    assert "mingrad-activations 0.1.0" in result.stdout
    assert "failed to load" not in result.stdout


def test_mingrad_demo_without_the_demo_extra_exits_2_with_the_install_hint(venv):
    result = run(venv, "mingrad", "demo")
    assert result.returncode == 2
    assert result.stdout == ""
    (line,) = result.stderr.splitlines()
    assert line.startswith("mingrad demo: error: the demo needs scikit-learn, matplotlib, tqdm")
    assert line.endswith('pip install "mingrad[demo]"')
