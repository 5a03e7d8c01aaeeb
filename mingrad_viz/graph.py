"""draw_graph: the computation graph behind a Scalar, as a graphviz Digraph."""

from __future__ import annotations

import html

import graphviz

from mingrad_core import Scalar

INSTALL_HINT = (
    "Graphviz's 'dot' program is needed to render graphs and was not found on PATH. Install "
    "Graphviz: 'sudo apt-get install graphviz' (Debian, Ubuntu), 'brew install graphviz' "
    "(macOS), 'conda install graphviz', or see https://graphviz.org/download/"
)


class GraphvizNotFoundError(RuntimeError):
    """Rendering needs Graphviz's ``dot`` program, which is not installed."""


class GraphTooLargeError(ValueError):
    """The graph has more nodes than the drawing limit."""


class Graph(graphviz.Digraph):
    """A ``graphviz.Digraph`` whose rendering errors say how to install Graphviz."""

    def pipe(self, *args, **kwargs):
        try:
            return super().pipe(*args, **kwargs)
        except graphviz.ExecutableNotFound as exc:
            raise GraphvizNotFoundError(INSTALL_HINT) from exc

    def render(self, *args, **kwargs):
        try:
            return super().render(*args, **kwargs)
        except graphviz.ExecutableNotFound as exc:
            raise GraphvizNotFoundError(INSTALL_HINT) from exc


def _number(value: float | None) -> str:
    return "—" if value is None else format(value, ".6g")


def _label(node: Scalar) -> str:
    rows = []
    if node.name is not None:
        rows.append(f"<B>{html.escape(node.name)}</B>")
    rows.append(f"data {_number(node.data)}")
    if node.grad is not None:
        grad = node.grad.data if isinstance(node.grad, Scalar) else node.grad
        rows.append(f"grad {_number(grad)}")
    cells = "".join(f"<TD>{row}</TD>" for row in rows)
    table = 'BORDER="0" CELLBORDER="1" CELLSPACING="0" CELLPADDING="4"'
    return f"<<TABLE {table}><TR>{cells}</TR></TABLE>>"


def draw_graph(root: Scalar, *, rankdir: str = "BT", max_nodes: int = 2000) -> Graph:
    """The DAG that computed ``root``: one box per Scalar, one ellipse per op application.

    Boxes show the Scalar's name (when set), value and gradient; leaves are shaded, and
    constants (numbers mixed into the expression) are grey, without a gradient. Ops show the
    label their plugin declared. ``rankdir="BT"`` draws inputs at the bottom; ``"LR"`` draws
    left to right. Graphs of more than ``max_nodes`` Scalars are refused.
    """
    if not isinstance(root, Scalar):
        raise TypeError(f"draw_graph draws a Scalar; got {type(root).__name__}")
    if rankdir not in ("BT", "TB", "LR", "RL"):
        raise ValueError(f"rankdir must be one of 'BT', 'TB', 'LR', 'RL'; got {rankdir!r}")
    ids: dict[Scalar, str] = {root: "n0"}
    order = [root]
    for node in order:  # breadth-first; `order` grows while it is walked
        for parent in node.parents:
            if parent not in ids:
                if len(ids) == max_nodes:
                    raise GraphTooLargeError(
                        f"the graph has more than {max_nodes} Scalars; draw_graph(root, "
                        f"max_nodes=...) raises the limit (dot is slow on very large graphs)"
                    )
                ids[parent] = f"n{len(ids)}"
                order.append(parent)

    graph = Graph(
        graph_attr={"rankdir": rankdir, "ordering": "in"},  # inputs drawn in argument order
        node_attr={"fontname": "Helvetica"},
    )
    for node in reversed(order):  # inputs first, so the source reads in computation order
        nid = ids[node]
        style = {"shape": "plaintext"}
        if node.grad is None:
            style.update(fontcolor="gray40", color="gray60")
        elif node.op is None:
            style.update(style="filled", fillcolor="lightblue")
        graph.node(nid, _label(node), **style)
        if node.op is not None:
            graph.node(f"{nid}op", f"<{html.escape(node.op.label)}>", shape="ellipse")
            graph.edge(f"{nid}op", nid)
            for parent in node.parents:
                graph.edge(ids[parent], f"{nid}op")
    return graph
