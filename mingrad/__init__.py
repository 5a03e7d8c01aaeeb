"""MinGrad's front door: the everyday names in one place, and the ``mingrad`` command."""

from mingrad_core import OpSpec, Scalar, check_op, functional, grad, hookimpl, register_op
from mingrad_nn import MLP, SGD, Adam, Layer, Module, Neuron, load, save

__all__ = [
    "MLP",
    "SGD",
    "Adam",
    "Layer",
    "Module",
    "Neuron",
    "OpSpec",
    "Scalar",
    "check_op",
    "functional",
    "grad",
    "hookimpl",
    "load",
    "register_op",
    "save",
]
