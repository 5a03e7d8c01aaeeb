"""MinGrad's front door: the everyday names in one place, and the ``mingrad`` command."""

# fmt: off
from mingrad_core import OpSpec, Scalar, check_op, functional, grad, hookimpl, register_op
from mingrad_nn import (MLP, SGD, Adam, Layer, Module, Neuron, bce_with_logits, hinge_loss, l2,
                        linear_decay, load, load_into, mse_loss, save)
from mingrad_viz import draw_graph

__all__ = [
    "MLP", "SGD", "Adam", "Layer", "Module", "Neuron", "OpSpec", "Scalar", "bce_with_logits",
    "check_op", "draw_graph", "functional", "grad", "hinge_loss", "hookimpl", "l2",
    "linear_decay", "load", "load_into", "mse_loss", "register_op", "save",
]
