"""Drawing MinGrad's computation graphs with Graphviz, and the backprop player."""

from .graph import Graph, GraphTooLargeError, GraphvizNotFoundError, draw_graph
from .player import BackpropPlayer, Step, backprop_player, record_steps

__all__ = [
    "BackpropPlayer",
    "Graph",
    "GraphTooLargeError",
    "GraphvizNotFoundError",
    "Step",
    "backprop_player",
    "draw_graph",
    "record_steps",
]
