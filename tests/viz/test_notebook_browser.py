"""The stored graphs notebook opened in JupyterLab (dark theme) without running it, then its
player cell run: JupyterLab from the dev environment on a free local port, driven by Chromium."""

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from .conftest import SHOWN_TEXT, low_contrast

NOTEBOOK = Path(__file__).resolve().parents[2] / "notebooks" / "graphs.ipynb"
SETTINGS = {  # JupyterLab's user settings: the dark theme, no question about news, and every
    # cell rendered (not only those in view)
    "@jupyterlab/apputils-extension/themes.jupyterlab-settings": {"theme": "JupyterLab Dark"},
    "@jupyterlab/apputils-extension/notification.jupyterlab-settings": {"fetchNews": "false"},
    "@jupyterlab/notebook-extension/tracker.jupyterlab-settings": {"windowingMode": "none"},
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """A JupyterLab serving a copy of graphs.ipynb; its URL. Stopped after the module."""
    home = tmp_path_factory.mktemp("lab")
    (home / "root").mkdir()
    shutil.copy(NOTEBOOK, home / "root" / NOTEBOOK.name)
    for name, value in SETTINGS.items():
        (home / "settings" / name).parent.mkdir(parents=True, exist_ok=True)
        (home / "settings" / name).write_text(json.dumps(value))
    port = free_port()
    env = dict(
        os.environ,
        JUPYTERLAB_SETTINGS_DIR=str(home / "settings"),
        JUPYTERLAB_WORKSPACES_DIR=str(home / "workspaces"),
        JUPYTER_RUNTIME_DIR=str(home / "runtime"),
    )
    command = [
        sys.executable, "-m", "jupyterlab", "--no-browser", f"--port={port}",
        "--ServerApp.ip=127.0.0.1", "--ServerApp.port_retries=0", "--IdentityProvider.token=",
        "--ServerApp.password=", f"--ServerApp.root_dir={home / 'root'}",
        "--ServerApp.allow_root=True", "--LabApp.news_url=",
        "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
    ]  # fmt: skip
    log = open(home / "lab.log", "wb")  # noqa: SIM115 (closed below)
    server = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            assert server.poll() is None, (home / "lab.log").read_text()[-2000:]
            assert time.monotonic() < deadline, "JupyterLab did not start in 120 s"
            try:
                urllib.request.urlopen(f"{url}/api/status", timeout=2)
                break
            except OSError:
                time.sleep(0.5)
        yield url
    finally:
        server.terminate()
        try:
            server.wait(20)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        log.close()


@pytest.fixture(scope="module")
def notebook_page(lab, browser, tmp_path_factory):
    """graphs.ipynb open in JupyterLab at 1280x800, as stored: untrusted, nothing run."""
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    page = context.new_page()
    page.goto(f"{lab}/lab/tree/{NOTEBOOK.name}")
    page.wait_for_selector(".jp-OutputArea-output img", timeout=90_000)
    yield page
    context.close()


def test_an_unrun_notebook_shows_every_drawing_and_the_players_picture(notebook_page, tmp_path):
    page = notebook_page
    assert page.evaluate("document.body.dataset.jpThemeLight") == "false"
    stored = json.loads(NOTEBOOK.read_text())
    drawings = sum(
        "image/png" in output.get("data", {})
        for cell in stored["cells"]
        for output in cell.get("outputs", [])
    )
    images = page.locator(".jp-OutputArea-output img")
    images.last.scroll_into_view_if_needed()
    # every drawing, and the player's picture, loaded
    page.wait_for_function(
        "(n) => { const all = [...document.querySelectorAll('.jp-OutputArea-output img')];"
        " return all.length >= n && all.every((i) => i.complete && i.naturalWidth > 100); }",
        arg=drawings + 1,
    )
    assert images.count() == drawings + 1
    shown = page.locator(".jp-OutputArea-output").all_inner_texts()
    assert not any("Graph" in text or "BackpropPlayer" in text for text in shown)
    player = page.locator(".jp-OutputArea-output .mgp-player")
    player.scroll_into_view_if_needed()
    assert "Run this cell to step through" in player.inner_text()
    assert player.locator("button").count() == 0 and player.locator("img").count() == 1
    page.screenshot(path=str(tmp_path / "untrusted.png"))


def test_the_player_run_in_jupyterlabs_dark_theme_is_readable(notebook_page, tmp_path):
    page = notebook_page
    cell = page.locator(".jp-CodeCell", has_text="backprop_player(x * x")
    cell.locator(".jp-InputArea-editor").click()
    page.keyboard.press("Shift+Enter")
    player = cell.locator(".mgp-player")
    player.locator(".mgp-counter").wait_for(timeout=120_000)
    n = int(player.locator(".mgp-counter").inner_text().split(" of ")[1])
    for k in [1, n - 3, n - 1, n]:
        player.locator(".mgp-slider").fill(str(k))
        player.scroll_into_view_if_needed()
        shown = page.evaluate(SHOWN_TEXT, player.element_handle())
        assert len(shown) > 10
        assert low_contrast(shown) == [], f"step {k}"
        page.screenshot(path=str(tmp_path / f"dark-{k}.png"))
