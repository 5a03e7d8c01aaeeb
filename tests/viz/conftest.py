"""A headless Chromium (the system's, not a download) shared by the browser tests, and what
they measure in a page: text that overlaps, and text's contrast against what is under it."""

from pathlib import Path

import pytest
from playwright.sync_api import sync_playwright

CHROMIUM = Path("/usr/bin/chromium")
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]

# Every text shown in `root` (SVG text, HTML text, a select's choice): its box on screen, its
# colour and the colour painted under its middle. Text that is hidden, clipped away or covered
# is left out: the point under its middle does not reach it.
SHOWN_TEXT = """(root) => {
  const parse = (c) => {
    const m = /rgba?\\(([^)]+)\\)/.exec(c || "");
    if (!m) return null;
    const v = m[1].split(/[\\s,\\/]+/).filter(Boolean).map(Number);
    return [v[0], v[1], v[2], v.length > 3 ? v[3] : 1];
  };
  const found = new Map();
  root.querySelectorAll("svg text, select").forEach((e) => found.set(e, true));
  const walker = document.createTreeWalker(root, NodeFilter.SHOW_TEXT);
  while (walker.nextNode()) {
    const e = walker.currentNode.parentElement;
    if (walker.currentNode.textContent.trim() && !e.closest("svg, style, script, option")) {
      found.set(e, true);
    }
  }
  const shown = [];
  for (const e of found.keys()) {
    const style = getComputedStyle(e);
    const r = e.getBoundingClientRect();
    if (style.visibility === "hidden" || !r.width || !r.height) continue;
    const x = r.left + r.width / 2, y = r.top + r.height / 2;
    if (x < 0 || y < 0 || x >= innerWidth || y >= innerHeight) continue;
    const stack = document.elementsFromPoint(x, y);
    if (!stack.some((s) => s === e || e.contains(s))) continue;
    let under = [255, 255, 255, 1];
    for (const s of stack) {
      if (s === e || e.contains(s) || s.tagName === "text") continue;
      const st = getComputedStyle(s);
      const svgShape = s instanceof SVGElement && s.tagName !== "svg";
      const c = parse(svgShape ? st.fill : st.backgroundColor);
      if (c && c[3] > 0.5) { under = c; break; }
    }
    const fg = parse(e instanceof SVGElement ? style.fill : style.color);
    shown.push({
      text: e.textContent.trim().slice(0, 60), svg: e instanceof SVGElement,
      box: [r.left, r.top, r.right, r.bottom], fg, bg: under, opacity: Number(style.opacity),
    });
  }
  return shown;
}"""


def contrast(fg: list[float], bg: list[float]) -> float:
    """WCAG 2 contrast ratio of two sRGB colours."""

    def luminance(c: list[float]) -> float:
        def channel(v: float) -> float:
            v /= 255
            return v / 12.92 if v <= 0.03928 else ((v + 0.055) / 1.055) ** 2.4

        return 0.2126 * channel(c[0]) + 0.7152 * channel(c[1]) + 0.0722 * channel(c[2])

    hi, lo = sorted([luminance(fg), luminance(bg)], reverse=True)
    return (hi + 0.05) / (lo + 0.05)


def low_contrast(texts: list[dict], least: float = 4.5) -> list[tuple[str, float]]:
    """The texts whose contrast is under ``least``, with their ratio."""
    return [
        (t["text"], round(contrast(t["fg"], t["bg"]), 2))
        for t in texts
        if contrast(t["fg"], t["bg"]) < least or t["opacity"] < 1
    ]


def overlapping(texts: list[dict], slack: float = 0.5) -> list[tuple[str, str]]:
    """Pairs of texts whose boxes on screen overlap by more than ``slack`` pixels each way."""
    pairs = []
    for k, a in enumerate(texts):
        ax0, ay0, ax1, ay1 = a["box"]
        for b in texts[k + 1 :]:
            bx0, by0, bx1, by1 = b["box"]
            if min(ax1, bx1) - max(ax0, bx0) > slack and min(ay1, by1) - max(ay0, by0) > slack:
                pairs.append((a["text"], b["text"]))
    return pairs


@pytest.fixture(scope="module")
def browser():
    assert CHROMIUM.exists(), "the browser tests need Debian's chromium: apt-get install chromium"
    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def open_page(browser):
    """``open_page(path, width, height, scheme, clock)``: a new page showing ``path``, offline,
    with every script error collected in ``page.errors`` (and a fake clock, if ``clock``)."""
    contexts = []

    def opened(
        path: Path, width: int = 1280, height: int = 800, scheme: str = "light", clock=False
    ):
        context = browser.new_context(
            viewport={"width": width, "height": height}, color_scheme=scheme
        )
        contexts.append(context)
        page = context.new_page()
        page.errors = []
        page.on("pageerror", lambda e: page.errors.append(str(e)))
        page.on("console", lambda m: page.errors.append(m.text) if m.type == "error" else None)
        page.route(
            "**/*",
            lambda route: (
                route.continue_() if route.request.url == path.as_uri() else route.abort()
            ),
        )
        if clock:  # timers run only when the test says so
            page.clock.install()
        page.goto(path.as_uri())
        return page

    yield opened
    for context in contexts:
        context.close()
