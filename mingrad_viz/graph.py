"""draw_graph: the computation graph behind a Scalar, as a graphviz Digraph."""

from __future__ import annotations

import base64
import html
import re
import signal
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import graphviz

from mingrad_core import Scalar, composite_of

INSTALL_HINT = (
    "Graphviz's 'dot' program is needed to render graphs and was not found on PATH. Install "
    "Graphviz: 'sudo apt-get install graphviz' (Debian, Ubuntu), 'brew install graphviz' "
    "(macOS), 'conda install graphviz', or see https://graphviz.org/download/"
)
NOT_COMPUTED = "not computed yet"
TABLE = 'BORDER="0" CELLBORDER="1" CELLSPACING="0" CELLPADDING="4"'
# above this many Scalars drawn, edges are straight lines: routing splines is most of dot's
# time on a wide graph (a 600-term sum: 8 s with splines, 3 s without)
_CURVED = 500
# a node feeding more ops than this (x in x+x+...+x) is drawn once, plus a small copy beside
# each user: hundreds of long edges from one node take dot minutes, or crash it
_SHARED = 24
_COPY = {
    "shape": "box", "style": "dashed,rounded", "fontsize": "10", "fontcolor": "gray30",
    "color": "gray50", "height": "0.2", "class": "copy",
}  # fmt: skip
_DOT_SAID = 400  # characters of dot's error output quoted in a GraphvizError


class GraphvizNotFoundError(RuntimeError):
    """Rendering needs Graphviz's ``dot`` program, which is not installed."""


class GraphTooLargeError(ValueError):
    """The graph has more nodes than the drawing limit."""


class GraphvizError(graphviz.CalledProcessError, RuntimeError):
    """Graphviz's ``dot`` failed or crashed; the message gives its exit status and what it said.

    Still a ``graphviz.CalledProcessError`` (``returncode``, ``stderr``), and a RuntimeError.
    """

    def __str__(self) -> str:
        if self.returncode < 0:
            try:
                status = f"was killed by {signal.Signals(-self.returncode).name}"
            except ValueError:
                status = f"was killed by signal {-self.returncode}"
        else:
            status = f"exited with status {self.returncode}"
        said = self.stderr or ""
        if isinstance(said, bytes):
            said = said.decode(errors="replace")
        said = " ".join(said.split())  # one line
        if len(said) > _DOT_SAID:
            said = f"{said[:_DOT_SAID]}..."
        return f"Graphviz's dot {status} while drawing the graph" + (f": {said}" if said else "")


class Graph(graphviz.Digraph):
    """A ``graphviz.Digraph`` whose rendering errors say how to install Graphviz, or what
    ``dot`` said when it failed (``GraphvizError``; dot's messages are not echoed to stderr
    unless ``quiet=False`` is passed)."""

    def pipe(self, *args, **kwargs):
        if len(args) < 5:  # quiet is pipe's fifth parameter
            kwargs.setdefault("quiet", True)
        with _dot_errors():
            return super().pipe(*args, **kwargs)

    def _repr_mimebundle_(self, include=None, exclude=None, **kwargs) -> dict[str, str]:
        """SVG, and a PNG beside it: a notebook opened without running it (untrusted) shows
        no SVG, only the PNG."""
        bundle = super()._repr_mimebundle_(include, exclude, **kwargs)
        if "image/svg+xml" in bundle and "image/png" not in bundle:
            bundle["image/png"] = base64.b64encode(self.picture()).decode("ascii")
        return bundle

    def picture(self) -> bytes:
        """The drawing as a PNG, scaled down to fit 24 by 24 inches (2304 pixels): a deep or
        wide graph at full size is a huge image, slow to make."""
        small = self.copy()
        small.attr(size="24,24")
        return small.pipe("png")

    def render(self, *args, **kwargs):
        if len(args) < 9:  # quiet is render's ninth parameter
            kwargs.setdefault("quiet", True)
        with _dot_errors():
            return super().render(*args, **kwargs)


@contextmanager
def _dot_errors() -> Iterator[None]:
    """Graphviz missing, or dot failing, as errors that say what to do or what dot said."""
    try:
        yield
    except graphviz.ExecutableNotFound as exc:
        raise GraphvizNotFoundError(INSTALL_HINT) from exc
    except graphviz.CalledProcessError as exc:
        raise GraphvizError(exc.returncode, exc.cmd, output=exc.output, stderr=exc.stderr) from exc


# What Graphviz's HTML-like labels cannot hold (C0 controls, even as character references;
# lone surrogates, which are not UTF-8; U+FFFE and U+FFFF), and what they would hide (DEL, C1)
_UNDRAWABLE = re.compile(r"[\x00-\x1f\x7f-\x9f\ud800-\udfff\ufffe\uffff]")


def label_text(text: str) -> str:
    """``text`` for a Graphviz HTML-like label: markup escaped, and every character Graphviz
    cannot hold shown as its Python escape (``"\\x01"``, ``"\\n"``), so any str draws."""
    shown = _UNDRAWABLE.sub(lambda m: m.group().encode("unicode_escape").decode("ascii"), text)
    # dot's lexer misreads some "]" next to markup ("<B>]</B>"): a character reference is safe
    return html.escape(shown).replace("]", "&#93;")


def number(value: object) -> str:
    """A value as drawings show it: six significant digits, "—" for none, -0 as 0."""
    if value is None:
        return "—"
    return format((value.data if isinstance(value, Scalar) else float(value)) + 0.0, ".6g")


def check_limit(max_nodes: object, caller: str) -> int:
    """``max_nodes`` if it is a positive int, else a ValueError naming ``caller``."""
    if not isinstance(max_nodes, int) or isinstance(max_nodes, bool) or max_nodes < 1:
        raise ValueError(
            f"{caller}(max_nodes=...) takes a positive int, the largest graph to draw; "
            f"got {max_nodes!r}"
        )
    return max_nodes


def walk(root: Scalar, max_nodes: int, caller: str) -> list[Scalar]:
    """Every node ``root`` was computed from, breadth-first from the root; at most ``max_nodes``."""
    if not isinstance(root, Scalar):
        raise TypeError(f"{caller} draws a Scalar; got {type(root).__name__}")
    check_limit(max_nodes, caller)
    seen = {root}
    order = [root]
    for node in order:  # `order` grows while it is walked
        for parent in node.parents:
            if parent not in seen:
                if len(order) == max_nodes:
                    raise GraphTooLargeError(
                        f"the graph has more than {max_nodes} Scalars; {caller}(root, "
                        f"max_nodes=...) raises the limit (very large graphs are slow to lay out)"
                    )
                seen.add(parent)
                order.append(parent)
    return order


@dataclass
class Composite:
    """One application of a composite op: its result, inputs, and the nodes made inside it."""

    result: Scalar
    label: str
    inputs: tuple[Scalar, ...]
    members: set[Scalar]
    children: list[Composite]


def _members(result: Scalar, inputs: tuple[Scalar, ...]) -> set[Scalar]:
    """The nodes between ``inputs`` and ``result``: computed from an input inside, or constants
    that only such nodes use."""
    stop = set(inputs)
    reached = {result}
    stack = [result]
    while stack:  # every node from result back to the inputs (and leaves)
        for p in stack.pop().parents:
            if p not in stop and p not in reached and p.op is not None:
                reached.add(p)
                stack.append(p)
    inside: set[Scalar] = set()
    opened: set[Scalar] = set()
    stack = [result]
    while stack:  # post-order: a node is inside if one of its inputs is an input or inside
        node = stack[-1]
        if node not in opened:
            opened.add(node)
            stack.extend(p for p in node.parents if p in reached and p not in opened)
            continue
        stack.pop()
        if node is result or any(p in stop or p in inside for p in node.parents):
            inside.add(node)
    stack = list(inside)
    while stack:  # and what inside nodes compute from constants only (2 ** -1, its 2 and -1)
        for p in stack.pop().parents:
            if p not in inside and p not in stop and _from_constants(p):
                inside.add(p)
                stack.append(p)
    return inside - stop


def _from_constants(node: Scalar) -> bool:
    """Whether ``node`` is a constant, or computed from constants only."""
    seen, stack = {node}, [node]
    while stack:
        here = stack.pop()
        if here.op is None and here.grad is not None:
            return False
        for p in here.parents:
            if p not in seen:
                seen.add(p)
                stack.append(p)
    return True


def find_composites(order: list[Scalar]) -> list[Composite]:
    """The composite ops applied in the graph, outermost first, each with its nested ones."""
    found = []
    for node in order:
        spec = composite_of(node)
        if spec is not None:
            op, inputs = spec
            found.append(Composite(node, op.label, inputs, _members(node, inputs), []))
    found.sort(key=lambda c: len(c.members))
    outer: list[Composite] = []
    for k, inner in enumerate(found):
        parent = next((c for c in found[k + 1 :] if inner.result in c.members), None)
        if parent is None:
            outer.append(inner)
        elif inner.members <= parent.members:
            parent.children.append(inner)
    return outer[::-1]


@dataclass
class Sum:
    """A chain of ``+`` drawn as one Σ node: its terms in order, and the partial sums hidden."""

    terms: tuple[Scalar, ...]
    inner: set[Scalar]


def find_sums(order: list[Scalar], boxes: list[Composite]) -> dict[Scalar, Sum]:
    """Each chain of ``+`` whose partial sums are used once, unnamed and not inside a composite
    (``((a + b) + c) + d``, the shape of every loss), as one Σ over its terms, by its total."""
    uses = Counter(p for node in order for p in node.parents)
    boxed: set[Scalar] = set()
    stack = list(boxes)
    while stack:
        box = stack.pop()
        boxed |= box.members
        stack.extend(box.children)

    def adds(node: Scalar) -> bool:
        return node.op is not None and node.op.operator == "+" and node not in boxed

    def foldable(node: Scalar) -> bool:
        return adds(node) and uses[node] == 1 and not node.name and node.grad is not None

    sums: dict[Scalar, Sum] = {}
    folded: set[Scalar] = set()
    for total in order:  # breadth-first from the root: a chain's total comes before its parts
        if total in folded or not adds(total):
            continue
        terms: list[Scalar] = []
        inner: set[Scalar] = set()
        stack = list(reversed(total.parents))
        while stack:  # depth-first, left to right: the terms in the order they were added
            node = stack.pop()
            if foldable(node):
                inner.add(node)
                stack.extend(reversed(node.parents))
            else:
                terms.append(node)
        if inner:
            sums[total] = Sum(tuple(terms), inner)
            folded |= inner
    return sums


def grads_computed(order: list[Scalar]) -> bool:
    """Whether any backward has written a gradient: some node's gradient is not zero."""
    return any(n.grad is not None and number(n.grad) != "0" for n in order)


def build(
    order: list[Scalar],
    *,
    rankdir: str,
    boxes: list[Composite],
    label: Callable[[Scalar, str], str],
    collapse: bool = False,
    sums: dict[Scalar, Sum] | None = None,
    constant: Callable[[Scalar], bool] = lambda node: node.grad is None,
) -> Graph:
    """The Digraph of ``order``: ``label(node, nid)`` draws each Scalar; composites are boxes,
    or one op each when ``collapse``; each of ``sums`` is one Σ node over its terms (an input
    used k times is one edge marked ×k); ``constant(node)`` says which nodes are drawn grey
    (no gradient). Elements carry classes the player finds them by: ``n3`` (a Scalar, with ``leaf``,
    ``constant`` or ``computed``), ``n3op``, ``n3out``, ``n3in0``, ``n3box``."""
    if rankdir not in ("BT", "TB", "LR", "RL"):
        raise ValueError(f"rankdir must be one of 'BT', 'TB', 'LR', 'RL'; got {rankdir!r}")
    ids = {node: f"n{k}" for k, node in enumerate(order)}
    owner: dict[Scalar, Composite] = {}
    made: dict[Scalar, tuple[str, tuple[Scalar, ...]]] = {}  # node -> (op label, inputs)
    hidden: set[Scalar] = set()
    for total, folded in (sums or {}).items():
        made[total] = ("Σ", folded.terms)
        hidden.update(folded.inner)
    stack = list(boxes)
    while stack:
        box = stack.pop()
        if collapse:
            made[box.result] = (box.label, box.inputs)
            hidden.update(box.members - {box.result})
            continue
        owner.update((m, box) for m in box.members if m not in owner or box in owner[m].children)
        stack.extend(box.children)
    graph = Graph(
        # nslimit bounds dot's network-simplex passes: without it, one node feeding hundreds
        # (x+x+...+x) takes dot minutes; with it, a second
        graph_attr={
            "rankdir": rankdir,
            "ordering": "in",
            "nslimit": "2",
            "nslimit1": "2",
        },
        node_attr={"fontname": "Helvetica"},
    )
    if len(order) - len(hidden) > _CURVED:
        graph.attr(splines="line")
    shared = Counter(
        p for node in order if node not in hidden and node not in (sums or {})
        for p in made.get(node, ("", node.parents))[1]
    )  # fmt: skip
    bodies: dict[int, Graph] = {}
    for node in reversed(order):  # inputs first, so the source reads in computation order
        if node in hidden:
            continue
        box = owner.get(node)
        where = graph
        if box is not None:
            where = bodies.get(id(box))
            if where is None:
                where = bodies[id(box)] = Graph(name=f"cluster_{ids[box.result]}")
        nid = ids[node]
        style = {"shape": "plaintext", "class": f"computed {nid}"}
        if constant(node):
            style.update(fontcolor="gray40", color="gray60", **{"class": f"constant {nid}"})
        elif node.op is None:
            style.update(style="filled", fillcolor="lightblue", **{"class": f"leaf {nid}"})
        where.node(nid, label(node, nid), **style)
        if node.op is not None:
            op_label, inputs = made.get(node, (node.op.label, node.parents))
            where.node(
                f"{nid}op", f"<{label_text(op_label)}>", shape="ellipse", **{"class": f"{nid}op"}
            )
            graph.edge(f"{nid}op", nid, **{"class": f"{nid}out"})
            if sums and node in sums:
                uses = Counter(inputs)  # dot crashes on hundreds of parallel edges
                for parent, k in uses.items():
                    graph.edge(ids[parent], f"{nid}op", label=f"×{k}" if k > 1 else None)
                continue
            for k, parent in enumerate(inputs):
                source = ids[parent]
                if shared[parent] > _SHARED:  # a copy of its name beside each user
                    source = f"{nid}in{k}from"
                    where.node(source, f"<{label_text(_mention(parent))}>", **_COPY)
                graph.edge(source, f"{nid}op", **{"class": f"{nid}in{k}"})
    if not collapse:
        _nest(graph, boxes, bodies, ids)
    return graph


def _mention(node: Scalar) -> str:
    """How a copy drawn beside a user names a node that feeds very many: its name, or value."""
    return f"{node.name or number(node.data)} ↗"


def _nest(graph: Graph, boxes: list[Composite], bodies: dict[int, Graph], ids) -> None:
    """Put each box's body in its parent's, innermost first (no recursion), then in ``graph``."""
    everything: list[tuple[Composite, Graph | None]] = []
    stack: list[tuple[Composite, Composite | None]] = [(box, None) for box in boxes]
    while stack:
        box, parent = stack.pop()
        everything.append((box, parent))
        stack.extend((child, box) for child in box.children)
    for box, parent in reversed(everything):  # children were listed after their parents
        body = bodies.setdefault(id(box), Graph(name=f"cluster_{ids[box.result]}"))
        body.attr(
            label=f"<{label_text(box.label)} (composite)>",
            labelloc="b" if graph.graph_attr.get("rankdir") == "BT" else "t",
            style="rounded,dashed",
            color="gray50",
            fontcolor="gray30",
            fontname="Helvetica",
            **{"class": f"{ids[box.result]}box"},
        )
        target = (
            graph
            if parent is None
            else bodies.setdefault(id(parent), Graph(name=f"cluster_{ids[parent.result]}"))
        )
        target.subgraph(body)


def _label(node: Scalar, grads: str) -> str:
    rows = []
    if node.name:  # an empty name draws as no name
        rows.append(f"<B>{label_text(node.name)}</B>")
    rows.append(f"data {number(node.data)}")
    if node.grad is not None and grads != "off":
        rows.append(f"grad {number(node.grad) if grads == 'on' else NOT_COMPUTED}")
    cells = "".join(f"<TD>{row}</TD>" for row in rows)
    return f"<<TABLE {TABLE}><TR>{cells}</TR></TABLE>>"


def draw_graph(
    root: Scalar,
    *,
    rankdir: str = "BT",
    max_nodes: int = 2000,
    composites: str = "box",
    grads: bool | str = "auto",
    sums: bool = True,
) -> Graph:
    """The DAG that computed ``root``: one box per Scalar, one ellipse per op application.

    Boxes show the Scalar's name (when set), value and gradient; leaves are shaded, and
    constants (numbers mixed into the expression) are grey, without a gradient. Ops show the
    label their plugin declared. A composite op (a plugin's, such as ``mish``) is drawn
    as the ops it is made of inside a dashed box labeled with its own label
    (``composites="box"``), or as one op (``composites="collapse"``). ``grads="auto"`` shows
    gradients once a backward has written any (some gradient is not zero), and "not computed
    yet" before; ``True`` always shows the numbers, ``False`` leaves gradients out.
    ``rankdir="BT"`` draws inputs at the bottom; ``"LR"`` draws left to right. ``sums=True``
    draws a chain of ``+`` whose partial sums are used once and unnamed (``sum(...)`` of a
    loss) as one Σ node over its terms; ``False`` draws every ``+``. Graphs of more than
    ``max_nodes`` Scalars are refused.
    """
    if not isinstance(sums, bool):
        raise ValueError(f"sums must be True or False; got {sums!r}")
    if composites not in ("box", "collapse"):
        raise ValueError(f"composites must be 'box' or 'collapse'; got {composites!r}")
    if not isinstance(grads, bool) and grads != "auto":
        raise ValueError(f"grads must be 'auto', True or False; got {grads!r}")
    order = walk(root, max_nodes, "draw_graph")
    if grads == "auto":
        mode = "on" if grads_computed(order) else "pending"
    else:
        mode = "on" if grads else "off"
    boxes = find_composites(order)
    return build(
        order,
        rankdir=rankdir,
        boxes=boxes,
        label=lambda node, nid: _label(node, mode),
        collapse=composites == "collapse",
        sums=find_sums(order, boxes) if sums else None,
    )
