"""The backprop player's page, driven in a real headless Chromium (the system's, not a download)."""

import re

import pytest

from mingrad.cli import main
from mingrad_core import Scalar
from mingrad_nn import MLP
from mingrad_viz import backprop_player

from .conftest import SHOWN_TEXT, low_contrast, overlapping


def seed_root():
    a = Scalar(2, name="a")
    b = Scalar(-6.5, name="b")
    return a * 5 / 2 + (b**6).relu()


def square_and_gelu():
    x = Scalar(0.5, name="x")
    return x * x + x.gelu()


def one_sample_mlp():
    model = MLP(2, [4, 4, 1], seed=0)
    return model([Scalar(0.5, name="x1"), Scalar(-1.0, name="x2")])


PAGES = {"seed": seed_root, "x*x + gelu(x)": square_and_gelu, "MLP 2-4-4-1": one_sample_mlp}


@pytest.fixture(scope="module")
def pages(tmp_path_factory):
    """Each page saved once for the module's tests."""
    where = tmp_path_factory.mktemp("players")
    return {
        name: backprop_player(make()).save(where / f"{k}.html")
        for k, (name, make) in enumerate(PAGES.items())
    }


def steps_of(page) -> int:
    return int(page.locator(".mgp-counter").inner_text().split(" of ")[1])


def go(page, k: int) -> None:
    """Step ``k`` (from 1), through the slider."""
    page.locator(".mgp-slider").fill(str(k))
    assert page.locator(".mgp-counter").inner_text().startswith(f"step {k} of")


def drawing_text(page) -> list[dict]:
    """The drawing's texts on screen."""
    return page.evaluate(SHOWN_TEXT, page.locator(".mgp-view").element_handle())


def test_the_seed_players_page_steps_through_backprop_offline(open_page, tmp_path, capsys):
    html = tmp_path / "backprop.html"
    assert main(["graph", "--animate", "-o", str(html)]) == 0
    page = open_page(html)
    player = page.locator(".mgp-player")
    counter = page.locator(".mgp-counter")
    n = steps_of(page)
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
    assert page.errors == []


def test_the_x_times_x_step_adds_each_use_to_the_running_total_in_order(open_page, pages):
    page = open_page(pages["x*x + gelu(x)"])
    n = steps_of(page)
    for k in range(1, n + 1):
        go(page, k)
        if "= x * x," in page.locator(".mgp-text").inner_text():
            break
    rows = page.locator(".mgp-text tr").all_inner_texts()[1:]
    assert [row.split("\t")[-1] for row in rows] == [
        "0.86737 + 0.5 = 1.36737",
        "1.36737 + 0.5 = 1.86737",
    ]
    labels = page.locator(".mgp-view .mgp-label").all_text_contents()
    assert labels == ["× 0.5 = 0.5", "× 0.5 = 0.5"]  # one on each edge from x
    assert page.errors == []


@pytest.mark.parametrize("name", ["seed", "x*x + gelu(x)"])
def test_no_text_in_the_drawing_overlaps_another_on_any_step(open_page, pages, name):
    page = open_page(pages[name])
    for k in range(1, steps_of(page) + 1):
        go(page, k)
        shown = drawing_text(page)
        assert shown, f"step {k}: no text in view"
        assert overlapping(shown) == [], f"step {k} of the {name} page"


def test_a_small_mlp_is_readable_at_every_step(open_page, pages, tmp_path):
    page = open_page(pages["MLP 2-4-4-1"])
    n = steps_of(page)
    view = page.locator(".mgp-view").bounding_box()
    controls = page.locator(".mgp-bar")
    for k in range(1, n + 1):
        go(page, k)
        bar = controls.bounding_box()
        assert bar["y"] >= 0 and bar["y"] + bar["height"] <= 800, f"step {k}: controls away"
        active = page.locator(".mgp-view g.node.mgp-active:not([class*='op']) text")
        if not active.count():  # the leaves, and done: the whole drawing
            continue
        for box in map(lambda t: t.bounding_box(), active.all()):
            assert box["height"] >= 9, f"step {k}: the node at work is {box['height']} px tall"
            middle = (box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
            assert view["x"] <= middle[0] <= view["x"] + view["width"], f"step {k}: not in view"
            assert view["y"] <= middle[1] <= view["y"] + view["height"], f"step {k}: not in view"
        assert overlapping(drawing_text(page)) == [], f"step {k}"
    page.screenshot(path=str(tmp_path / "mlp-done.png"))
    assert page.errors == []


def test_leaves_come_in_one_step_and_backward_is_one_click_away(open_page, pages):
    page = open_page(pages["MLP 2-4-4-1"])
    leaves = page.locator(".mgp-view g.leaf")
    assert leaves.count() == 2 + 12 + 20 + 5
    assert page.locator(".mgp-view g.leaf.mgp-future").count() == 0
    assert "the leaves" in page.locator(".mgp-text").inner_text()
    computed = page.locator(".mgp-view g.computed")
    assert computed.count() == page.locator(".mgp-view g.computed.mgp-future").count() > 0
    page.get_by_role("button", name="Jump to backward").click()
    assert "Backward starts" in page.locator(".mgp-text").inner_text()
    assert page.locator(".mgp-view g.mgp-future").count() == 0
    go(page, 1)
    assert "the leaves" in page.locator(".mgp-text").inner_text()


def test_pan_zoom_and_fit_move_the_view_and_stop_following(open_page, pages):
    page = open_page(pages["MLP 2-4-4-1"])
    svg = page.locator(".mgp-view svg")
    go(page, 20)
    follow = page.locator(".mgp-follow")
    assert follow.is_checked()

    def box():
        return [float(v) for v in svg.get_attribute("viewBox").split()]

    before = box()
    page.get_by_role("button", name="Zoom in").click()
    assert box()[2] < before[2] and not follow.is_checked()
    view = page.locator(".mgp-view").bounding_box()
    x, y = view["x"] + view["width"] / 2, view["y"] + view["height"] / 2
    zoomed = box()
    page.mouse.move(x, y)
    page.mouse.down()
    page.mouse.move(x - 100, y - 50, steps=4)
    page.mouse.up()
    panned = box()
    assert panned[0] > zoomed[0] and panned[1] > zoomed[1] and panned[2] == zoomed[2]
    page.get_by_role("button", name="Fit").click()
    fitted = box()
    width, height = page.evaluate(
        "() => { const g = document.querySelector('.mgp-view svg g.graph').getBBox();"
        " return [g.width, g.height]; }"
    )
    assert fitted[2] >= width and fitted[3] >= height  # all of it in view
    follow.check()
    go(page, 21)
    assert box()[2] < fitted[2]  # following again: zoomed in on the node at work
    assert page.errors == []


def test_play_has_a_speed_control(open_page, pages):
    page = open_page(pages["MLP 2-4-4-1"], clock=True)
    page.clock.pause_at(page.evaluate("Date.now()") + 1000)  # from here, only run_for moves it
    page.locator(".mgp-speed").select_option("300")  # 4×
    page.get_by_role("button", name="Play").click()
    page.clock.run_for(1250)
    assert page.locator(".mgp-counter").inner_text().startswith("step 5 of")
    page.locator(".mgp-speed").select_option("2400")  # ½×
    page.clock.run_for(2500)
    assert page.locator(".mgp-counter").inner_text().startswith("step 6 of")
    page.get_by_role("button", name="Pause").click()


STEPS_TO_READ = {"first": 1, "forward": 3, "backward": -3, "done": -1}


@pytest.mark.parametrize("scheme", ["light", "dark"])
@pytest.mark.parametrize("size", [(1280, 800), (1024, 768)])
def test_all_text_has_contrast_of_at_least_4_5_to_1(open_page, pages, scheme, size, tmp_path):
    page = open_page(pages["seed"], *size, scheme=scheme)
    n = steps_of(page)
    for what, k in STEPS_TO_READ.items():
        go(page, k if k > 0 else n + 1 + k)
        shown = page.evaluate(SHOWN_TEXT, page.locator(".mgp-player").element_handle())
        assert len(shown) > 20
        assert low_contrast(shown) == [], f"the {what} step, {scheme}"
        page.screenshot(path=str(tmp_path / f"{scheme}-{what}.png"))
    assert page.errors == []
