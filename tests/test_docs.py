"""The documentation site builds cleanly, documents every public name, and its code runs.

``mkdocs build --strict`` turns every warning (a broken link, a reference mkdocstrings cannot
resolve, a page missing from the nav) into a failure. The Python blocks of each page run in
order, as the README's do; the plugin guide's module is loaded as a real plugin and its tests run.
"""

from __future__ import annotations

import contextlib
import html
import inspect
import io
import os
import re
import subprocess
import sys
import types
from pathlib import Path

import pytest

import mingrad
import mingrad_core

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
PLUGIN_GUIDE = DOCS / "writing-a-plugin.md"
PACKAGES = ("mingrad", "mingrad_core", "mingrad_ops", "mingrad_nn", "mingrad_viz", "mingrad_jit")


def run_block(source: str, namespace: dict, where: str) -> None:
    """Run ``source``; where its ``print(...)  # text`` lines each print one line, each printed
    line must begin ``text`` (a comment may go on to explain it)."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(source, where, "exec"), namespace)
    expected = re.findall(r"^\s*print\(.*\)  # (.*)$", source, flags=re.M)
    printed = out.getvalue().splitlines()
    if expected and len(printed) == len(re.findall(r"^\s*print\(", source, flags=re.M)):
        for line, comment in zip(printed, expected):
            assert comment.startswith(line), f"{where}: printed {line!r}; its comment: {comment!r}"


def python_blocks(page: Path) -> list[str]:
    return re.findall(r"^```python\n(.*?)^```", page.read_text(), flags=re.S | re.M)


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("site")
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    run = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(out)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert run.returncode == 0, f"mkdocs build --strict failed:\n{run.stdout}\n{run.stderr}"
    assert "WARNING" not in run.stderr, run.stderr
    return out


def page_text(page: Path) -> str:
    """The visible text of a built page, whitespace collapsed."""
    text = re.sub(r"<[^>]+>", "", page.read_text())
    return re.sub(r"\s+", " ", html.unescape(text))


def summary(obj: object) -> str | None:
    """The first line of ``obj``'s own docstring as the page shows it, if it has one."""
    if not (inspect.isclass(obj) or inspect.isroutine(obj) or inspect.ismodule(obj)):
        return None  # an instance (hookimpl) shows its class's docstring, not its own
    doc = inspect.getdoc(obj)
    if not doc:
        return None
    return re.sub(r"\s+", " ", re.sub(r"`+|:\w+:", "", doc.split("\n\n")[0].splitlines()[0]))


def test_the_site_builds_strictly_with_every_page_in_the_nav(site):
    pages = {path.stem for path in DOCS.glob("*.md")}
    built = {path.parent.name for path in site.glob("*/index.html")} | {"index"}
    assert pages <= built, f"pages not built: {pages - built}"


@pytest.mark.parametrize("name", mingrad.__all__)
def test_every_public_name_is_in_the_api_reference_with_its_docstring(site, name):
    api = site / "api" / "index.html"
    ids = set(re.findall(r'id="([\w.]+)"', api.read_text()))
    obj = getattr(mingrad, name)
    home = (getattr(obj, "__module__", None) or obj.__name__).split(".")[0]
    assert f"mingrad.{name}" in ids or f"{home}.{name}" in ids, f"{name} is not in docs/api.md"
    line = summary(obj)
    if line is not None:
        assert line in page_text(api), f"{name}'s docstring is not shown: {line!r}"


def test_the_api_reference_documents_the_graph_walk_and_a_nodes_inputs(site):
    ids = set(re.findall(r'id="([\w.]+)"', (site / "api" / "index.html").read_text()))
    for name in ("mingrad_core.toposort", "mingrad.Scalar.parents", "mingrad.Scalar.op"):
        assert name in ids


def test_the_site_says_that_equality_is_identity(site):
    text = page_text(site / "concepts" / "index.html")
    assert "if loss == 0:" in text and "never fires" in text


README = DOCS.parent / "README.md"


@pytest.mark.parametrize(
    "page",
    [README, *sorted(p for p in DOCS.glob("*.md") if p != PLUGIN_GUIDE and python_blocks(p))],
    ids=lambda p: p.name,
)
def test_a_pages_python_blocks_run_in_order(page):
    assert len(python_blocks(page)) >= (3 if page == README else 1)
    namespace = {"__name__": f"docs_{page.stem}"}
    for index, block in enumerate(python_blocks(page)):
        run_block(block, namespace, f"{page.name} python block {index}")


def _guide_blocks(title: str) -> list[str]:
    return [b for b in python_blocks(PLUGIN_GUIDE) if b.startswith(f"# {title}\n")]


@pytest.mark.parametrize("version", ["first", "with array forms"])
def test_the_plugin_guides_plugin_loads_and_passes_its_own_tests(version):
    modules = _guide_blocks("mingrad_tanhshrink.py")
    assert len(modules) == 2
    plugin = types.ModuleType("mingrad_tanhshrink")
    source = modules[0 if version == "first" else 1]
    exec(compile(source, f"{PLUGIN_GUIDE.name}: mingrad_tanhshrink.py", "exec"), plugin.__dict__)
    mingrad_core.register_plugin(plugin, name="tanhshrink")
    assert mingrad_core.origin_of("tanhshrink") is not None, mingrad_core.failures()
    (tests,) = _guide_blocks("test_tanhshrink.py")
    namespace: dict = {"__name__": "test_tanhshrink"}
    exec(compile(tests, f"{PLUGIN_GUIDE.name}: test_tanhshrink.py", "exec"), namespace)
    ran = [fn() for key, fn in namespace.items() if key.startswith("test_")]
    assert len(ran) == 2
    if version == "with array forms":
        from mingrad_jit.arrays import check_array_forms

        assert check_array_forms("tanhshrink").ok


def test_the_engine_pages_excerpts_are_the_engines_code_word_for_word():
    fence = r'^```python title="(mingrad_core/\w+\.py)"\n(.*?)^```'
    excerpts = re.findall(fence, (DOCS / "engine.md").read_text(), flags=re.S | re.M)
    assert len(excerpts) >= 6
    for path, code in excerpts:
        assert code in (ROOT / path).read_text(), f"docs/engine.md quotes {path} wrongly:\n{code}"


def test_the_readme_says_how_to_serve_the_docs():
    assert "uv run mkdocs serve" in (ROOT / "README.md").read_text()
