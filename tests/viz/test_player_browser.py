"""The backprop player's page, driven in a real headless Chromium (the system's, not a download)."""

import re
from pathlib import Path

import pytest
from playwright.sync_api import sync_playwright

from mingrad.cli import main

CHROMIUM = Path("/usr/bin/chromium")
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@pytest.fixture
def page():
    assert CHROMIUM.exists(), "the browser test needs Debian's chromium: apt-get install chromium"
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        try:
            yield browser.new_page(viewport={"width": 1280, "height": 720})
        finally:
            browser.close()


def test_the_seed_players_page_steps_through_backprop_offline(page, tmp_path, capsys):
    html = tmp_path / "backprop.html"
    assert main(["graph", "--animate", "-o", str(html)]) == 0
    requests, errors = [], []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))

    def count(route):
        requests.append(route.request.url)
        if route.request.url == html.as_uri():
            route.continue_()
        else:
            route.abort()

    page.route("**/*", count)
    page.goto(html.as_uri())
    player = page.locator(".mgp-player")
    counter = page.locator(".mgp-counter")
    n = int(counter.inner_text().split(" of ")[1])
    assert counter.inner_text() == f"step 1 of {n}"
    b_grad = page.locator("g.node:has(text:text-is('b')) text").last
    texts, b_grads = [player.inner_text()], [b_grad.text_content()]
    for k in range(2, n + 1):
        page.get_by_role("button", name="Next").click()
        assert counter.inner_text() == f"step {k} of {n}"
        texts.append(player.inner_text())
        b_grads.append(b_grad.text_content())

    # b's gradient appears once backward reaches it (the b**6 node), and stays to the end
    reached = [k for k, text in enumerate(texts) if "-69617.4" in text]
    assert reached == list(range(reached[0], n))
    assert "Backward:" in texts[reached[0]] and "= b ** 6," in texts[reached[0]]
    assert all(text == "grad not computed yet" for text in b_grads[: reached[0]])
    assert all(text == "grad -69617.4" for text in b_grads[reached[0] :])
    assert not any(re.search(r"grad -?0(?![.\d])", text) for text in texts)
    assert "Done." in texts[-1] and "grad 2.5" in texts[-1] and "grad -69617.4" in texts[-1]
    page.screenshot(path=str(tmp_path / "player-end.png"))

    page.get_by_role("button", name="Previous").click()
    assert counter.inner_text() == f"step {n - 1} of {n}"
    player.focus()
    page.keyboard.press("ArrowLeft")
    page.keyboard.press("ArrowLeft")
    assert counter.inner_text() == f"step {n - 3} of {n}"
    page.keyboard.press("ArrowRight")
    assert counter.inner_text() == f"step {n - 2} of {n}"
    page.get_by_role("button", name="Play").click()
    page.get_by_role("button", name="Pause").click()
    page.screenshot(path=str(tmp_path / "player.png"))

    assert requests == [html.as_uri()]
    assert errors == []
