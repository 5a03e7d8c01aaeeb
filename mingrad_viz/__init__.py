"""Drawing MinGrad's computation graphs with Graphviz."""

from .graph import Graph, GraphTooLargeError, GraphvizNotFoundError, draw_graph

__all__ = ["Graph", "GraphTooLargeError", "GraphvizNotFoundError", "draw_graph"]
