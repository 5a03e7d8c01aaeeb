"""backprop_player: step through the forward and backward pass of a graph, in a web page."""

from __future__ import annotations

import base64
import html
import json
import os
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import cache
from importlib.resources import files
from pathlib import Path
from string import Template

from mingrad_core import Scalar, backprop, composite_of, mask_of, masked, toposort

from .graph import NOT_COMPUTED, TABLE, Graph, build, find_composites, label_text, number, walk

_SVG = "http://www.w3.org/2000/svg"
HINT = "A picture of the graph. Run this cell to step through its forward and backward pass."


@dataclass(frozen=True)
class Step:
    """One step of the player.

    ``kind`` is "leaves" (every leaf and constant appears at once, in ``nodes``), "forward"
    (``node``'s value is computed), "seed" (backward starts at the root), "backward" (``node``
    passes ``upstream * term`` to each of its inputs, in order) or "done". ``totals`` are the
    running gradients after the step, as the engine holds them, for every node that takes one.
    ``masks``: per input, the op's mask where it masks (``mingrad_core.mask_of``), else empty.
    Nodes computed from constants only are constants here: no step, no gradient shown.
    """

    kind: str
    node: Scalar | None
    upstream: float | None = None
    terms: tuple[float, ...] = ()
    totals: dict[Scalar, float] = field(default_factory=dict)
    nodes: tuple[Scalar, ...] = ()
    masks: tuple[float, ...] = ()


def constants(topo: list[Scalar]) -> set[Scalar]:
    """The nodes that take no gradient: constants, and nodes computed from constants only
    (the ``2 ** -1`` inside ``x / 2``). ``topo`` lists inputs before their users."""
    fixed: set[Scalar] = set()
    for node in topo:
        if node.grad is None or (node.op is not None and all(p in fixed for p in node.parents)):
            fixed.add(node)
    return fixed


def record_steps(root: Scalar, max_nodes: int = 500) -> list[Step]:
    """The player's steps for the graph behind ``root``, recorded from the engine's backprop."""
    walk(root, max_nodes, "backprop_player")
    topo = toposort(root)
    fixed = constants(topo)
    steps = [Step("leaves", None, nodes=tuple(n for n in topo if n.op is None or n in fixed))]
    steps += [Step("forward", n) for n in topo if n.op is not None and n not in fixed]
    backward: list[Step] = []

    def observe(node: Scalar, upstream: object, terms: tuple, totals: dict) -> None:
        if node not in fixed:
            snapshot = {n: float(g) for n, g in totals.items() if n not in fixed}
            masks = tuple(map(float, mask_of(node, terms))) if node.op.masks else ()
            terms = tuple(map(float, terms))
            backward.append(Step("backward", node, float(upstream), terms, snapshot, masks=masks))

    final = {n: float(g) for n, g in backprop(root, observe=observe).items() if n not in fixed}
    if root not in fixed:
        start = backward[0].upstream if backward else final[root]
        steps.append(Step("seed", root, totals={root: start}))
    steps.extend(backward)
    steps.append(Step("done", None, totals=final))
    return steps


@dataclass(frozen=True)
class Row:
    """One input's line in a backward step: what it held, what it gets, what it then holds."""

    parent: Scalar
    term: float | None  # None: a constant, which takes no gradient
    part: float | None = None
    before: float | None = None
    after: float | None = None


def rows(step: Step, before: dict[Scalar, float], fixed: set[Scalar]) -> list[Row]:
    """A backward step's contributions in the order backward adds them, each with the running
    total before and after it (``x * x``: 0.87 + 0.5 = 1.37, then 1.37 + 0.5 = 1.87).

    The terms, upstream and order are the engine's; the sum after an input's last contribution
    is the engine's own total."""
    running = dict(before)
    last = {p: k for k, p in enumerate(step.node.parents)}
    out = []
    for k, (parent, term) in enumerate(zip(step.node.parents, step.terms)):
        if parent in fixed:
            out.append(Row(parent, None))
            continue
        part = masked(step.masks[k], term, step.upstream) if step.masks else term * step.upstream
        held = running.get(parent)
        if last[parent] == k:
            after = step.totals[parent]
        else:
            after = part if held is None else held + part
        running[parent] = after
        out.append(Row(parent, term, part, held, after))
    return out


def _short(value: float) -> str:
    """A number as an edge label shows it: four significant digits, -0 as 0."""
    return format(value + 0.0, ".4g")


class BackpropPlayer:
    """A page that steps through the forward and backward pass of the graph behind a Scalar.

    ``save(path)`` writes it as one self-contained HTML file; in Jupyter it shows inline, and
    a stored notebook opened without running it shows a picture of the graph instead.
    """

    def __init__(self, root: Scalar, *, max_nodes: int = 500, rankdir: str = "BT") -> None:
        self.root = root
        self.steps = record_steps(root, max_nodes)
        order = walk(root, max_nodes, "backprop_player")
        topo = toposort(root)
        self._fixed = constants(topo)
        self._index = {node: k for k, node in enumerate(topo)}
        self._short = {node: _short_name(node, k, self._fixed) for k, node in enumerate(topo)}
        self._bfs = {node: f"n{k}" for k, node in enumerate(order)}
        self._rows = self._all_rows()
        grad_texts = self._grad_texts(topo)
        self._cells: dict[Scalar, tuple[int, int]] = {}

        def label(node: Scalar, grads: Callable[[Scalar], str]) -> str:
            rows = []
            if node.name:  # an empty name draws as no name
                rows.append(f"<B>{label_text(node.name)}</B>")
            elif node not in self._fixed:
                rows.append(f'<FONT COLOR="gray40">{self._short[node]}</FONT>')
            data = len(rows)
            rows.append(f"data {number(node.data)}")
            grad = -1
            if node not in self._fixed:
                grad = len(rows)
                rows.append(html.escape(grads(node)))
            self._cells[node] = (data, grad)
            cells = "".join(f"<TR><TD>{row}</TD></TR>" for row in rows)
            return f"<<TABLE {TABLE}>{cells}</TABLE>>"

        def drawing(grads: Callable[[Scalar], str]) -> Graph:
            return build(
                order,
                rankdir=rankdir,
                boxes=find_composites(order),
                label=lambda node, nid: label(node, grads),
                constant=self._fixed.__contains__,
            )

        # room for the widest text a cell will hold; and the picture at the end, for a
        # notebook opened without running it (two dot processes, side by side)
        widest = drawing(lambda node: max(grad_texts[node], key=len))
        final = self.steps[-1].totals
        picture = drawing(lambda node: f"grad {number(final[node])}")
        with ThreadPoolExecutor(2) as pool:
            svg, png = pool.map(lambda job: job(), [lambda: widest.pipe("svg"), picture.picture])
        self._svg, self._png = _centred(svg), png
        self._data = self._script_data(topo, grad_texts)

    def _all_rows(self) -> dict[int, list[Row]]:
        """Each backward step's rows, by the step's index."""
        found = {}
        before: dict[Scalar, float] = {}
        for k, step in enumerate(self.steps):
            if step.kind == "backward":
                found[k] = rows(step, before, self._fixed)
            before = step.totals
        return found

    def _grad_texts(self, topo: list[Scalar]) -> dict[Scalar, list[str]]:
        texts = {node: [f"grad {NOT_COMPUTED}"] for node in topo if node not in self._fixed}
        for step in self.steps:
            for node, g in step.totals.items():
                texts[node].append(f"grad {number(g)}")
        return texts

    def _script_data(self, topo: list[Scalar], grad_texts: dict[Scalar, list[str]]) -> dict:
        appears = {node: 0 for node in self.steps[0].nodes}
        appears.update((s.node, k) for k, s in enumerate(self.steps) if s.kind == "forward")
        nodes = []
        for node in topo:
            data, grad = self._cells[node]
            nodes.append(
                {
                    "c": self._bfs[node],
                    "d": data,
                    "g": grad,
                    "t": appears[node],
                    "data": f"data {number(node.data)}",
                    "pending": f"grad {NOT_COMPUTED}",
                    "ins": len(node.parents),
                }
            )
        steps = []
        shown: dict[Scalar, str] = {}
        for i, step in enumerate(self.steps):
            changed = {}
            for node, g in step.totals.items():
                text = f"grad {number(g)}"
                if shown.get(node) != text:
                    changed[self._index[node]] = shown[node] = text
            entry = {
                "set": changed,
                "html": self._describe(i),
                "f": step.kind in ("leaves", "forward"),
                "e": [],
            }
            if step.node is not None:
                entry["a"] = self._index[step.node]
            if step.kind == "forward":
                entry["i"] = [self._index[p] for p in step.node.parents if p not in self._fixed]
            if step.kind == "backward":
                nid = self._bfs[step.node]
                found = self._rows[i]
                entry["i"] = [self._index[r.parent] for r in found if r.term is not None]
                entry["e"] = [
                    [f"{nid}in{k}", f"× {_short(r.term)} = {_short(r.part)}"]
                    for k, r in enumerate(found)
                    if r.term is not None
                ]
            steps.append(entry)
        seed = next(k for k, s in enumerate(self.steps) if s.kind in ("seed", "done"))
        return {"nodes": nodes, "steps": steps, "seed": seed}

    def _name(self, node: Scalar) -> str:
        return label_text(self._short[node])

    def _describe(self, i: int) -> str:
        step = self.steps[i]
        if step.kind == "leaves":
            return self._describe_leaves(step.nodes)
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
            return self._describe_backward(i)
        table = "".join(
            f"<tr><td>{self._name(n)}</td><td>{number(g)}</td></tr>"
            for n, g in sorted(step.totals.items(), key=lambda item: self._index[item[0]])
        )
        return (
            "<p><b>Done.</b> Every gradient, as <code>backward()</code> writes them to "
            "<code>.grad</code>:</p>"
            f"<table><tr><th>node</th><th>gradient</th></tr>{table}</table>"
            "<p>Leaves add to what they hold: a second <code>backward()</code> doubles "
            "them, unless <code>zero_grad()</code> clears them first.</p>"
        )

    def _describe_leaves(self, nodes: tuple[Scalar, ...]) -> str:
        leaves = [n for n in nodes if n not in self._fixed]
        fixed = [n for n in nodes if n in self._fixed]
        text = "<p><b>Forward:</b> the leaves, values you set"
        if leaves:
            shown = ", ".join(f"{self._name(n)} = {number(n.data)}" for n in leaves[:12])
            text += f": {shown}{', …' if len(leaves) > 12 else ''}"
        text += f" ({len(leaves)} in all).</p>"
        if fixed:
            text += (
                f"<p>Grey: {len(fixed)} constant{'s' if len(fixed) > 1 else ''}, numbers in the "
                "expression or computed from numbers only; they take no gradient.</p>"
            )
        return text + "<p>Next, each computed node, inputs first.</p>"

    def _formula(self, node: Scalar) -> str:
        args = [self._name(p) for p in node.parents]
        label = label_text(node.op.label)
        if node.op.operator == "linear":  # b, w1..wn, x1..xn: the weighted sum it computes
            b, rest = args[0], args[1:]
            half = len(rest) // 2
            products = [f"{w}·{x}" for w, x in zip(rest[:half], rest[half:])]
            return " + ".join([*products, b])
        if len(args) == 2 and not node.op.label.isidentifier():
            return f"{args[0]} {label} {args[1]}"
        return f"{label}({', '.join(args)})"

    def _describe_forward(self, node: Scalar) -> str:
        name, value = self._name(node), number(node.data)
        text = f"<p><b>Forward:</b> {name} = {self._formula(node)} = {value}</p>"
        spec = composite_of(node)
        if spec is not None:
            text += (
                f"<p>{name} is the result of the composite op {label_text(spec[0].label)}, "
                "drawn as the ops it is made of, in a dashed box.</p>"
            )
        return text

    def _describe_backward(self, i: int) -> str:
        step = self.steps[i]
        node = step.node
        name, up = self._name(node), number(step.upstream)
        lines = []
        for row in self._rows[i]:
            cells = [self._name(row.parent), number(row.parent.data)]
            if row.term is None:
                cells += ["—", "—", "constant: takes no gradient"]
            else:
                total = number(row.after)
                if row.before is not None:
                    total = f"{number(row.before)} + {number(row.part)} = {total}"
                cells += [number(row.term), number(row.part), total]
            lines.append("".join(f"<td>{c}</td>" for c in cells))
        table = "".join(f"<tr>{line}</tr>" for line in lines)
        note = ""
        if any(row.before is not None for row in self._rows[i]):
            note = (
                "<p>An input that already had a gradient adds this one to it (<code>+=</code>), "
                "row by row in this order: a node used more than once sums the gradients "
                "from every use.</p>"
            )
        return (
            f"<p><b>Backward:</b> {name} = {self._formula(node)}, upstream gradient {up}. "
            f"Each input gets upstream × its local gradient (the term op "
            f"{html.escape(node.op.name)!r} declares).</p>"
            "<table><tr><th>input</th><th>value</th><th>local gradient</th>"
            f"<th>× {up} =</th><th>running total</th></tr>{table}</table>{note}"
        )

    def html(self) -> str:
        """The player as an HTML fragment with an element id of its own. Without its script
        (a notebook opened untrusted), it is a picture of the graph and a line saying to run
        the cell."""
        prefix = f"mgp{uuid.uuid4().hex[:12]}"
        ui = _template("ui.html").substitute(
            style=_template("player.css").template, svg=self._svg, steps=len(self.steps)
        )
        data = json.dumps({"ui": ui, **self._data}, ensure_ascii=False)
        # nothing in the data can end the script or open a comment in it
        data = data.replace("</", "<\\/").replace("<!--", "<\\u0021--")
        script = _template("player.js").substitute(prefix=prefix, data=data)
        return _template("player.html").substitute(
            prefix=prefix,
            png=base64.b64encode(self._png).decode("ascii"),
            alt=html.escape(f"the graph of {self._short[self.root]}, after backward"),
            hint=HINT,
            script=script,
        )

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write the player as one HTML file that works offline; returns the path."""
        path = Path(path)
        path.write_text(_template("page.html").substitute(body=self.html()), encoding="utf-8")
        return path

    def _repr_html_(self) -> str:
        return self.html()


def backprop_player(root: Scalar, *, max_nodes: int = 500, rankdir: str = "BT") -> BackpropPlayer:
    """A player stepping through the forward and backward pass that computes ``root``'s graph.

    Graphs of more than ``max_nodes`` Scalars are refused: at 500 (an MLP 2-16-16-1 on one
    sample is 404) a step takes about 0.2 s in a browser and the page about 1.5 MB; both grow
    with the graph (800 Scalars: 0.3 to 0.6 s a step).
    """
    return BackpropPlayer(root, max_nodes=max_nodes, rankdir=rankdir)


@cache
def _template(name: str) -> Template:
    """One of the page's files in ``mingrad_viz/templates``, as a ``string.Template``."""
    return Template(files("mingrad_viz").joinpath("templates", name).read_text(encoding="utf-8"))


def _centred(svg: bytes) -> str:
    """dot's SVG with each table cell's text centred in its cell (the player changes the text)
    and without dot's element ids and comments (two players on one page share no id)."""
    ET.register_namespace("", _SVG)
    ET.register_namespace("xlink", "http://www.w3.org/1999/xlink")
    drawing = ET.fromstring(svg)
    for element in drawing.iter():
        element.attrib.pop("id", None)
    for group in drawing.iter(f"{{{_SVG}}}g"):
        if "node" not in group.get("class", "").split():
            continue
        cell = None
        for child in group:
            if child.tag == f"{{{_SVG}}}polygon":
                cell = child
            elif child.tag == f"{{{_SVG}}}text" and cell is not None:
                xs = [float(point.split(",")[0]) for point in cell.get("points").split()]
                child.set("text-anchor", "middle")
                child.set("x", f"{(min(xs) + max(xs)) / 2:.2f}")
                cell = None
    return ET.tostring(drawing, encoding="unicode")


def _short_name(node: Scalar, k: int, fixed: set[Scalar]) -> str:
    if node.name:
        return node.name
    if node in fixed:
        return number(node.data)
    return f"#{k + 1}"
