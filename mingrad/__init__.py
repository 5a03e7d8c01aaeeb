"""MinGrad's front door: the everyday names in one place, and the ``mingrad`` command."""

# fmt: off
from mingrad_core import OpSpec, Scalar, functional, grad, hookimpl, register_op
from mingrad_ops import check_op
from mingrad_nn import (MLP, SGD, Adam, Layer, Module, Neuron, bce_with_logits, cross_entropy,
                        hinge_loss, l2, linear_decay, load, load_into, mse_loss, save)
from mingrad_viz import backprop_player, draw_graph

__all__ = [
    "MLP", "SGD", "Adam", "Layer", "Module", "Neuron", "OpSpec", "Scalar", "backprop_player",
    "bce_with_logits", "check_op", "cross_entropy", "draw_graph", "functional", "grad",
    "hinge_loss", "hookimpl", "jit", "l2", "linear_decay", "load", "load_into", "mse_loss",
    "register_op", "save", "vmap",
]


def __getattr__(name: str):
    # jit needs numpy, an optional extra: import it on first use, so ``import mingrad`` works
    # without numpy.
    if name in ("jit", "vmap"):
        try:
            from mingrad_jit import jit, vmap
        except ImportError as exc:
            raise ImportError(
                f'mingrad.{name} needs numpy, not installed here ({exc}); install the jit extra: '
                'pip install "mingrad[jit]"'
            ) from exc
        return {"jit": jit, "vmap": vmap}[name]
    raise AttributeError(f"module 'mingrad' has no attribute {name!r}")
