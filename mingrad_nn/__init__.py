"""Neural networks on MinGrad: modules, losses, optimizers, and saving models as JSON."""

# fmt: off
from .losses import bce_with_logits, cross_entropy, hinge_loss, l2, mse_loss
from .module import MLP, Layer, Module, Neuron
from .optim import SGD, Adam, Optimizer, linear_decay
from .saving import ModelFileError, load, load_into, save

__all__ = [
    "MLP", "SGD", "Adam", "Layer", "Module", "ModelFileError", "Neuron", "Optimizer",
    "bce_with_logits", "cross_entropy", "hinge_loss", "l2", "linear_decay", "load", "load_into",
    "mse_loss", "save",
]
