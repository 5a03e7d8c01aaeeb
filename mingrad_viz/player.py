"""backprop_player: step through the forward and backward pass of a graph, in a web page."""

from __future__ import annotations

import html
import json
import os
import re
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from mingrad_core import Scalar, backprop, composite_of, toposort

from .graph import NOT_COMPUTED, TABLE, build, find_composites, label_text, number, walk

_TOKEN = "mgpPREFIXmgp"  # stands for the per-instance id prefix in the drawing's SVG
# where dot writes it: only at the start of an id attribute ("-" written as "&#45;"), so a name
# that contains the token, in a text element, is left as it is
_TOKEN_ID = re.compile(rf'(?<= id="){_TOKEN}(?=&#45;|-)')
_PLACEHOLDER = re.compile(r"__(P|STYLE|SVG|SCRIPT|DATA)__")


@dataclass(frozen=True)
class Step:
    """One step of the player.

    ``kind`` is "forward" (``node``'s value is computed), "seed" (backward starts at the root),
    "backward" (``node`` passes ``upstream * term`` to each of its inputs) or "done".
    ``totals`` are the running gradients after the step, as the engine holds them.
    """

    kind: str
    node: Scalar | None
    upstream: float | None = None
    terms: tuple[float, ...] = ()
    totals: dict[Scalar, float] = field(default_factory=dict)


def record_steps(root: Scalar, max_nodes: int = 300) -> list[Step]:
    """The player's steps for the graph behind ``root``, recorded from the engine's backprop."""
    walk(root, max_nodes, "backprop_player")
    steps = [Step("forward", node) for node in toposort(root)]
    backward: list[Step] = []

    def observe(node: Scalar, upstream: object, terms: tuple, totals: dict) -> None:
        snapshot = {n: float(g) for n, g in totals.items()}
        backward.append(Step("backward", node, float(upstream), tuple(map(float, terms)), snapshot))

    final = {n: float(g) for n, g in backprop(root, observe=observe).items()}
    if root.grad is not None:
        start = backward[0].upstream if backward else final[root]
        steps.append(Step("seed", root, totals={root: start}))
    steps.extend(backward)
    steps.append(Step("done", None, totals=final))
    return steps


class BackpropPlayer:
    """A page that steps through the forward and backward pass of the graph behind a Scalar.

    ``save(path)`` writes it as one self-contained HTML file; in Jupyter it shows inline.
    """

    def __init__(self, root: Scalar, *, max_nodes: int = 300, rankdir: str = "BT") -> None:
        self.root = root
        self.steps = record_steps(root, max_nodes)
        order = walk(root, max_nodes, "backprop_player")
        topo = [s.node for s in self.steps if s.kind == "forward"]
        self._index = {node: k for k, node in enumerate(topo)}
        self._short = {node: _short_name(node, k) for k, node in enumerate(topo)}
        self._bfs = {node: f"n{k}" for k, node in enumerate(order)}
        grad_texts = self._grad_texts(topo)
        self._cells: dict[Scalar, tuple[int, int]] = {}

        def label(node: Scalar, nid: str) -> str:
            rows = []
            if node.name:  # an empty name draws as no name
                rows.append(f"<B>{label_text(node.name)}</B>")
            elif node.grad is not None:
                rows.append(f'<FONT COLOR="gray40">{self._short[node]}</FONT>')
            data = len(rows)
            rows.append(f"data {number(node.data)}")
            grad = -1
            if node.grad is not None:
                grad = len(rows)
                rows.append(html.escape(max(grad_texts[node], key=len)))  # room for the widest
            self._cells[node] = (data, grad)
            cells = "".join(f"<TR><TD>{row}</TD></TR>" for row in rows)
            return f"<<TABLE {TABLE}>{cells}</TABLE>>"

        graph = build(
            order, rankdir=rankdir, boxes=find_composites(order), label=label, prefix=_TOKEN
        )
        svg = graph.pipe("svg").decode()
        self._svg = svg[svg.index("<svg") :]
        self._data = self._script_data(topo, grad_texts)

    def _grad_texts(self, topo: list[Scalar]) -> dict[Scalar, list[str]]:
        texts = {node: [f"grad {NOT_COMPUTED}"] for node in topo if node.grad is not None}
        for step in self.steps:
            for node, g in step.totals.items():
                texts[node].append(f"grad {number(g)}")
        return texts

    def _script_data(self, topo: list[Scalar], grad_texts: dict[Scalar, list[str]]) -> dict:
        nodes = []
        for node in topo:
            data, grad = self._cells[node]
            nodes.append(
                {
                    "id": self._bfs[node],
                    "d": data,
                    "g": grad,
                    "data": f"data {number(node.data)}",
                    "pending": f"grad {NOT_COMPUTED}",
                    "ins": len(node.parents),
                }
            )
        steps = []
        shown: dict[Scalar, str] = {}
        before: dict[Scalar, float] = {}
        for step in self.steps:
            changed = {}
            for node, g in step.totals.items():
                text = f"grad {number(g)}"
                if shown.get(node) != text:
                    changed[self._index[node]] = shown[node] = text
            entry = {"set": changed, "html": self._describe(step, before), "edges": []}
            before = step.totals
            if step.kind == "forward":
                entry["upto"] = self._index[step.node]
            if step.node is not None:
                entry["active"] = self._index[step.node]
            if step.kind == "backward":
                entry.update(self._on_drawing(step))
            steps.append(entry)
        return {"nodes": nodes, "steps": steps}

    def _on_drawing(self, step: Step) -> dict:
        nid = self._bfs[step.node]
        edges = [[f"{nid}out", f"upstream {number(step.upstream)}"]]
        for k, (parent, term) in enumerate(zip(step.node.parents, step.terms)):
            text = f"× {number(term)}"
            if parent.grad is not None:
                text += f" = {number(term * step.upstream)}"
            edges.append([f"{nid}in{k}", text])
        return {"inputs": [self._index[p] for p in step.node.parents], "edges": edges}

    def _name(self, node: Scalar) -> str:
        return label_text(self._short[node])

    def _describe(self, step: Step, before: dict[Scalar, float]) -> str:
        if step.kind == "forward":
            return self._describe_forward(step.node)
        if step.kind == "seed":
            return (
                f"<p><b>Backward starts</b> at {self._name(step.node)}: its gradient with "
                f"respect to itself is {number(step.totals[step.node])}. Then each node, in "
                "reverse topological order, passes its gradient to its inputs. Gradients "
                "not reached yet are <i>not computed yet</i>, which is not the same as 0.</p>"
            )
        if step.kind == "backward":
            return self._describe_backward(step, before)
        rows = "".join(
            f"<tr><td>{self._name(n)}</td><td>{number(g)}</td></tr>"
            for n, g in sorted(step.totals.items(), key=lambda item: self._index[item[0]])
        )
        return (
            "<p><b>Done.</b> Every gradient, as <code>backward()</code> writes them to "
            "<code>.grad</code>:</p>"
            f"<table><tr><th>node</th><th>gradient</th></tr>{rows}</table>"
            "<p>Leaves add to what they hold: a second <code>backward()</code> doubles "
            "them, unless <code>zero_grad()</code> clears them first.</p>"
        )

    def _formula(self, node: Scalar) -> str:
        args = [self._name(p) for p in node.parents]
        label = label_text(node.op.label)
        if len(args) == 2 and not node.op.label.isidentifier():
            return f"{args[0]} {label} {args[1]}"
        return f"{label}({', '.join(args)})"

    def _describe_forward(self, node: Scalar) -> str:
        name, value = self._name(node), number(node.data)
        if node.op is None and node.grad is None:
            return (
                f"<p><b>Forward:</b> the constant {value} (a number in the expression; it takes "
                "no gradient).</p>"
            )
        if node.op is None:
            return f"<p><b>Forward:</b> {name} = {value}, a leaf: a value you set.</p>"
        text = f"<p><b>Forward:</b> {name} = {self._formula(node)} = {value}</p>"
        spec = composite_of(node)
        if spec is not None:
            text += (
                f"<p>{name} is the result of the composite op {label_text(spec[0].label)}, "
                "drawn as the ops it is made of, in a dashed box.</p>"
            )
        return text

    def _describe_backward(self, step: Step, before: dict[Scalar, float]) -> str:
        node = step.node
        name, up = self._name(node), number(step.upstream)
        rows = []
        for parent, term in zip(node.parents, step.terms):
            cells = [self._name(parent), number(parent.data), number(term)]
            if parent.grad is None:
                cells += ["—", "constant: takes no gradient"]
            else:
                product = number(term * step.upstream)
                total = number(step.totals[parent])
                if parent in before:
                    total = f"{number(before[parent])} + {product} = {total}"
                cells += [product, total]
            rows.append("".join(f"<td>{c}</td>" for c in cells))
        table = "".join(f"<tr>{r}</tr>" for r in rows)
        note = ""
        if len(set(node.parents)) < len(node.parents) or any(
            p in before for p in node.parents if p.grad is not None
        ):
            note = (
                "<p>An input that already had a gradient adds this one to it (<code>+=</code>): "
                "a node used more than once sums the gradients from every use.</p>"
            )
        return (
            f"<p><b>Backward:</b> {name} = {self._formula(node)}, upstream gradient {up}. "
            f"Each input gets upstream × its local gradient (the term op "
            f"{html.escape(node.op.name)!r} declares).</p>"
            "<table><tr><th>input</th><th>value</th><th>local gradient</th>"
            f"<th>× {up} =</th><th>running total</th></tr>{table}</table>{note}"
        )

    def html(self) -> str:
        """The player as an HTML fragment, with element ids of its own."""
        prefix = f"mgp{uuid.uuid4().hex[:12]}"
        data = json.dumps(self._data).replace("</", "<\\/")
        # each template is filled in one pass, so names and labels (in the SVG and the data)
        # are never taken for placeholders
        script = _fill(_SCRIPT, P=prefix, DATA=data)
        svg = _TOKEN_ID.sub(prefix, self._svg)
        return _fill(_FRAGMENT, P=prefix, STYLE=_STYLE, SVG=svg, SCRIPT=script)

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write the player as one HTML file that works offline; returns the path."""
        path = Path(path)
        page = _PAGE.replace("__BODY__", self.html())  # one placeholder: one pass
        path.write_text(page, encoding="utf-8")
        return path

    def _repr_html_(self) -> str:
        return self.html()


def backprop_player(root: Scalar, *, max_nodes: int = 300, rankdir: str = "BT") -> BackpropPlayer:
    """A player stepping through the forward and backward pass that computes ``root``'s graph.

    Graphs of more than ``max_nodes`` Scalars are refused.
    """
    return BackpropPlayer(root, max_nodes=max_nodes, rankdir=rankdir)


def _fill(template: str, **parts: str) -> str:
    """``template`` with each ``__NAME__`` replaced by ``parts[NAME]``, in one pass."""
    return _PLACEHOLDER.sub(lambda m: parts[m.group(1)], template)


def _short_name(node: Scalar, k: int) -> str:
    if node.name:
        return node.name
    if node.grad is None:
        return number(node.data)
    return f"#{k + 1}"


_STYLE = """
.mgp-player { font-family: Helvetica, Arial, sans-serif; font-size: 14px; color: #222;
  display: flex; flex-wrap: wrap; gap: 16px; align-items: flex-start; outline: none; }
.mgp-player .mgp-drawing { flex: 1 1 420px; max-width: 760px; }
.mgp-player .mgp-drawing svg { max-width: 100%; height: auto; }
.mgp-player .mgp-side { flex: 1 1 320px; max-width: 520px; }
.mgp-player .mgp-controls { display: flex; gap: 8px; align-items: center; margin-bottom: 8px; }
.mgp-player button { font: inherit; padding: 4px 12px; cursor: pointer; }
.mgp-player button[aria-disabled="true"] { opacity: 0.4; cursor: default; }
.mgp-player table { border-collapse: collapse; margin: 4px 0; }
.mgp-player td, .mgp-player th { border: 1px solid #ccc; padding: 2px 8px; text-align: right; }
.mgp-player th { background: #f3f3f3; }
.mgp-player td:first-child { text-align: left; }
.mgp-player .mgp-future { opacity: 0.2; }
.mgp-player .mgp-active polygon, .mgp-player .mgp-active ellipse {
  stroke: #d62728; stroke-width: 3px; }
.mgp-player .mgp-input polygon { stroke: #ff7f0e; stroke-width: 3px; }
.mgp-player .mgp-edge path { stroke: #d62728; stroke-width: 2px; }
.mgp-player .mgp-label { font-size: 12px; font-weight: bold; fill: #b0151f;
  paint-order: stroke; stroke: white; stroke-width: 4px; }
.mgp-player .mgp-legend { color: #555; font-size: 12px; }
"""

_FRAGMENT = """<div id="__P__" class="mgp-player" tabindex="0"><style>__STYLE__</style>
<div class="mgp-drawing">__SVG__</div>
<div class="mgp-side">
<div class="mgp-controls">
<button type="button" data-do="prev">Previous</button>
<button type="button" data-do="play">Play</button>
<button type="button" data-do="next">Next</button>
<span class="mgp-counter" aria-live="polite"></span>
</div>
<div class="mgp-text"></div>
<p class="mgp-legend">Red: the node at work; orange: its inputs. Arrow keys step too.</p>
</div>
<script>__SCRIPT__</script>
</div>"""

_SCRIPT = """(function () {
  const P = "__P__", D = __DATA__;
  const root = document.getElementById(P);
  const find = (id) => document.getElementById(P + "-" + id);
  const text = root.querySelector(".mgp-text"), counter = root.querySelector(".mgp-counter");
  const buttons = {};
  root.querySelectorAll("button").forEach((b) => { buttons[b.dataset.do] = b; });
  const grads = [];
  let state = D.nodes.map((n) => n.pending);
  for (const s of D.steps) {
    state = state.slice();
    for (const [j, g] of Object.entries(s.set)) state[j] = g;
    grads.push(state);
  }
  D.nodes.forEach((node) => {  // the values change: centre them in their cells
    find(node.id).querySelectorAll("text").forEach((t) => {
      const cell = t.previousElementSibling;
      if (!cell || cell.tagName !== "polygon") return;
      const box = cell.getBBox();
      t.setAttribute("text-anchor", "middle");
      t.setAttribute("x", box.x + box.width / 2);
    });
  });
  const n = D.steps.length;
  let k = 0, timer = null;
  function show(i) {
    k = Math.max(0, Math.min(n - 1, i));
    const s = D.steps[k];
    root.querySelectorAll(".mgp-label").forEach((e) => e.remove());
    root.querySelectorAll(".mgp-edge").forEach((e) => e.classList.remove("mgp-edge"));
    D.nodes.forEach((node, j) => {
      const box = find(node.id), op = find(node.id + "op");
      const future = s.upto !== undefined && j > s.upto;
      const edges = [find(node.id + "out")];
      for (let e = 0; e < node.ins; e++) edges.push(find(node.id + "in" + e));
      edges.forEach((e) => e && e.classList.toggle("mgp-future", future));
      for (const g of [box, op]) {
        if (!g) continue;
        g.classList.toggle("mgp-future", future);
        g.classList.toggle("mgp-active", j === s.active);
        g.classList.toggle("mgp-input", (s.inputs || []).includes(j));
      }
      const cells = box.querySelectorAll("text");
      cells[node.d].textContent = future ? "data ?" : node.data;
      if (node.g >= 0) cells[node.g].textContent = grads[k][j];
    });
    for (const [id, label] of s.edges) {
      const edge = find(id);
      if (!edge) continue;
      edge.classList.add("mgp-edge");
      const path = edge.querySelector("path");
      const at = path.getPointAtLength(path.getTotalLength() / 2);
      const t = document.createElementNS("http://www.w3.org/2000/svg", "text");
      t.setAttribute("x", at.x + 6);
      t.setAttribute("y", at.y + 4);
      t.setAttribute("class", "mgp-label");
      t.textContent = label;
      edge.parentNode.appendChild(t);
    }
    text.innerHTML = s.html;
    counter.textContent = "step " + (k + 1) + " of " + n;
    buttons.prev.setAttribute("aria-disabled", String(k === 0));
    buttons.next.setAttribute("aria-disabled", String(k === n - 1));
    if (k === n - 1) pause();
  }
  function pause() {
    clearInterval(timer);
    timer = null;
    buttons.play.textContent = "Play";
  }
  function play() {
    if (k === n - 1) show(0);
    buttons.play.textContent = "Pause";
    timer = setInterval(() => show(k + 1), 1200);
  }
  buttons.prev.addEventListener("click", () => show(k - 1));
  buttons.next.addEventListener("click", () => show(k + 1));
  buttons.play.addEventListener("click", () => (timer ? pause() : play()));
  root.addEventListener("keydown", (e) => {
    if (e.key === "ArrowRight") { show(k + 1); e.preventDefault(); }
    if (e.key === "ArrowLeft") { show(k - 1); e.preventDefault(); }
  });
  show(0);
})();"""

_PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy"
 content="default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>MinGrad backprop player</title>
</head>
<body>
<h1 style="font-family: Helvetica, Arial, sans-serif; font-size: 20px">Backprop, step by step</h1>
__BODY__
<script>document.querySelector(".mgp-player").focus();</script>
</body>
</html>
"""
