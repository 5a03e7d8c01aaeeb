(function () {
  "use strict";
  const here = document.currentScript;
  const root = (here && here.closest(".mgp-player")) || document.getElementById("${prefix}");
  const D = ${data};
  if (!root || root.dataset.ready) return;
  root.dataset.ready = "yes";
  root.innerHTML = D.ui;  // the picture and its hint give way to the player
  const get = (selector) => root.querySelector(selector);
  const view = get(".mgp-view"), svg = view.querySelector("svg");
  const named = new Map();  // the drawing's elements by their classes (n3, n3op, n3in0, ...)
  svg.querySelectorAll("g").forEach((g) => g.classList.forEach((c) => named.set(c, g)));
  const find = (name) => named.get(name);
  const text = get(".mgp-text"), counter = get(".mgp-counter"), slider = get(".mgp-slider");
  const speed = get(".mgp-speed"), follow = get(".mgp-follow");
  const buttons = {};
  root.querySelectorAll("button[data-do]").forEach((b) => { buttons[b.dataset.do] = b; });
  const full = svg.viewBox.baseVal;
  const W = full.width, H = full.height;
  svg.removeAttribute("width");
  svg.removeAttribute("height");
  const READ = 1.0;  // screen pixels per drawing unit when following: 14 px text
  const MOST = 1.6;  // the closest the camera comes by itself
  const grads = [];
  let state = D.nodes.map((node) => node.pending);
  for (const s of D.steps) {
    state = state.slice();
    for (const [j, g] of Object.entries(s.set)) state[j] = g;
    grads.push(state);
  }
  const parts = D.nodes.map((node) => {
    const edges = [find(node.c + "out")];
    for (let e = 0; e < node.ins; e++) edges.push(find(node.c + "in" + e));
    const box = find(node.c);
    return {
      shapes: [box, find(node.c + "op")].filter(Boolean),
      edges: edges.filter(Boolean),
      cells: box.querySelectorAll("text"),
    };
  });
  const n = D.steps.length;
  let k = 0, timer = null, cam = null;

  function size() { return [view.clientWidth, view.clientHeight]; }
  function fitScale() {
    const [vw, vh] = size();
    return Math.min(vw / W, vh / H, MOST);
  }
  function apply() {
    const [vw, vh] = size();
    if (!vw || !vh) return;
    if (!cam) cam = { x: W / 2, y: H / 2, s: fitScale() };
    const w = vw / cam.s, h = vh / cam.s;
    svg.setAttribute("viewBox", [cam.x - w / 2, cam.y - h / 2, w, h].join(" "));
  }
  function fit() {
    cam = { x: W / 2, y: H / 2, s: fitScale() };
    apply();
  }
  function boxOf(elements) {  // in the drawing's units
    const inverse = svg.getScreenCTM().inverse();
    let x0 = Infinity, y0 = Infinity, x1 = -Infinity, y1 = -Infinity;
    for (const e of elements) {
      if (!e) continue;
      const b = e.getBBox(), m = inverse.multiply(e.getScreenCTM());
      for (const [x, y] of [[b.x, b.y], [b.x + b.width, b.y + b.height]]) {
        const p = new DOMPoint(x, y).matrixTransform(m);
        x0 = Math.min(x0, p.x); y0 = Math.min(y0, p.y);
        x1 = Math.max(x1, p.x); y1 = Math.max(y1, p.y);
      }
    }
    return { x: (x0 + x1) / 2, y: (y0 + y1) / 2, w: x1 - x0, h: y1 - y0 };
  }
  function focus() {
    const [vw, vh] = size();
    if (!vw || !vh) return;
    if (!follow.checked && cam) return apply();
    const s = D.steps[k], whole = fitScale();
    if (s.a === undefined || whole >= READ) return fit();
    const node = D.nodes[s.a];
    const at = boxOf([find(node.c), find(node.c + "op")]);
    const around = boxOf([find(node.c), find(node.c + "op"),
      ...(s.i || []).map((j) => find(D.nodes[j].c)), ...s.e.map((e) => find(e[0]))]);
    const scaleFor = (b) => Math.min(vw / (b.w + 40), vh / (b.h + 40), MOST);
    const room = scaleFor(around);
    // the node, its op and inputs; else the node and its op; else the node alone
    const target =
      room >= READ ? around : scaleFor(at) >= READ ? at : boxOf([find(node.c)]);
    cam = { x: target.x, y: target.y, s: Math.max(READ, Math.min(room, MOST)) };
    apply();
  }
  function zoom(by, cx, cy) {
    if (!cam) fit();
    const [vw, vh] = size();
    const px = cx === undefined ? vw / 2 : cx, py = cy === undefined ? vh / 2 : cy;
    const s = Math.min(Math.max(cam.s * by, fitScale() / 2, 0.05), 8);
    // the point under (px, py) stays there
    cam.x += (px - vw / 2) * (1 / cam.s - 1 / s);
    cam.y += (py - vh / 2) * (1 / cam.s - 1 / s);
    cam.s = s;
    follow.checked = false;
    apply();
  }
  const SVGNS = "http://www.w3.org/2000/svg";
  let solid = null;
  const overlap = (a, b) =>
    Math.max(0, Math.min(a.x + a.width, b.x + b.width) - Math.max(a.x, b.x)) *
    Math.max(0, Math.min(a.y + a.height, b.y + b.height) - Math.max(a.y, b.y));
  const AT = [0.5];
  for (let d = 0.05; d < 0.5; d += 0.05) AT.push(0.5 - d, 0.5 + d);
  const SPOTS = (w, h) => [  // right, left, above, below the point; then further out
    [6, -h / 2], [-w - 6, -h / 2], [-w / 2, -h - 4], [-w / 2, 4],
    [24, -h / 2], [-w - 24, -h / 2], [6, -h - 6], [-w - 6, -h - 6], [6, 6], [-w - 6, 6],
  ];
  function labels(pairs) {
    // each beside its edge, at the first spot along it that covers no node, box title or
    // label placed before; failing that, the spot that covers least
    if (!solid) {
      solid = [...svg.querySelectorAll(".node, .cluster > text")].map((e) => e.getBBox());
    }
    const texts = pairs.map(([edge, words]) => {
      const t = document.createElementNS(SVGNS, "text");
      t.setAttribute("class", "mgp-label");
      t.textContent = words;
      layer.appendChild(t);
      return t;
    });
    const widths = texts.map((t) => t.getComputedTextLength());  // one layout for all
    const placed = [], h = 12;
    pairs.forEach(([edge], k) => {
      const w = widths[k], path = edge.querySelector("path");
      const length = path.getTotalLength(), reach = path.getBBox();
      const near = solid.filter((o) => overlap(o, {
        x: reach.x - w - 30, y: reach.y - 30, width: reach.width + 2 * w + 60,
        height: reach.height + 60 }) > 0);
      let best = null, least = Infinity;
      search: for (const f of AT) {
        const p = path.getPointAtLength(length * f);
        for (const [dx, dy] of SPOTS(w, h)) {
          const box = { x: p.x + dx - 2, y: p.y + dy - 2, width: w + 4, height: h + 4 };
          let covered = 0;
          for (const o of near) covered += overlap(box, o);
          for (const o of placed) covered += overlap(box, o);
          if (covered < least) {
            best = box;
            least = covered;
            if (!covered) break search;
          }
        }
      }
      placed.push(best);
      texts[k].setAttribute("x", best.x + 2);
      texts[k].setAttribute("y", best.y + 2 + h * 0.8);
    });
  }
  const layer = svg.querySelector("g.graph");
  function show(i) {
    k = Math.max(0, Math.min(n - 1, i));
    const s = D.steps[k];
    root.querySelectorAll("svg .mgp-on").forEach((e) => e.classList.remove("mgp-on"));
    root.querySelectorAll("svg .mgp-label").forEach((e) => e.remove());
    const inputs = new Set(s.i || []);
    D.nodes.forEach((node, j) => {
      const part = parts[j];
      const future = s.f && node.t > k;
      part.edges.forEach((e) => e.classList.toggle("mgp-future", future));
      for (const g of part.shapes) {
        g.classList.toggle("mgp-future", future);
        g.classList.toggle("mgp-active", j === s.a);
        g.classList.toggle("mgp-input", inputs.has(j));
      }
      const data = future ? "data ?" : node.data;
      if (part.cells[node.d].textContent !== data) part.cells[node.d].textContent = data;
      if (node.g >= 0 && part.cells[node.g].textContent !== grads[k][j]) {
        part.cells[node.g].textContent = grads[k][j];
      }
    });
    const pairs = s.e.map(([name, words]) => [find(name), words]);
    pairs.forEach(([edge]) => edge.classList.add("mgp-on"));
    if (view.clientWidth) labels(pairs);
    text.innerHTML = s.html;
    counter.textContent = "step " + (k + 1) + " of " + n;
    slider.value = String(k + 1);
    buttons.prev.setAttribute("aria-disabled", String(k === 0));
    buttons.next.setAttribute("aria-disabled", String(k === n - 1));
    buttons.backward.setAttribute("aria-disabled", String(k === D.seed));
    if (k === n - 1) pause();
    focus();
  }
  function pause() {
    clearInterval(timer);
    timer = null;
    buttons.play.textContent = "Play";
  }
  function play() {
    if (k === n - 1) show(0);
    buttons.play.textContent = "Pause";
    clearInterval(timer);
    timer = setInterval(() => show(k + 1), Number(speed.value));
  }
  buttons.prev.addEventListener("click", () => show(k - 1));
  buttons.next.addEventListener("click", () => show(k + 1));
  buttons.play.addEventListener("click", () => (timer ? pause() : play()));
  buttons.backward.addEventListener("click", () => show(D.seed));
  buttons.in.addEventListener("click", () => zoom(1.25));
  buttons.out.addEventListener("click", () => zoom(0.8));
  buttons.fit.addEventListener("click", () => { follow.checked = false; fit(); });
  follow.addEventListener("change", () => focus());
  speed.addEventListener("change", () => { if (timer) play(); });
  slider.addEventListener("input", () => show(Number(slider.value) - 1));
  root.addEventListener("keydown", (e) => {
    if (e.target.tagName === "INPUT" || e.target.tagName === "SELECT") return;
    const keys = { ArrowRight: () => show(k + 1), ArrowLeft: () => show(k - 1),
      Home: () => show(0), End: () => show(n - 1), "+": () => zoom(1.25), "-": () => zoom(0.8) };
    if (keys[e.key]) { keys[e.key](); e.preventDefault(); }
  });
  let drag = null;
  view.addEventListener("pointerdown", (e) => {
    if (!cam) return;
    drag = { x: e.clientX, y: e.clientY };
    view.setPointerCapture(e.pointerId);
    view.classList.add("mgp-dragging");
  });
  view.addEventListener("pointermove", (e) => {
    if (!drag) return;
    cam.x -= (e.clientX - drag.x) / cam.s;
    cam.y -= (e.clientY - drag.y) / cam.s;
    drag = { x: e.clientX, y: e.clientY };
    follow.checked = false;
    apply();
  });
  const release = () => { drag = null; view.classList.remove("mgp-dragging"); };
  view.addEventListener("pointerup", release);
  view.addEventListener("pointercancel", release);
  view.addEventListener("wheel", (e) => {
    if (!e.ctrlKey && !e.metaKey) return;  // a plain wheel scrolls the page
    e.preventDefault();
    const r = view.getBoundingClientRect();
    zoom(Math.exp(-e.deltaY / 300), e.clientX - r.left, e.clientY - r.top);
  }, { passive: false });
  // in a notebook the player may be laid out after this runs: place the camera once it has a size
  new ResizeObserver(() => show(k)).observe(view);
  show(0);
})();
