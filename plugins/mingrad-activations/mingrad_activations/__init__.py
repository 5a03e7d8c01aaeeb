"""Extra activation functions for MinGrad, registered through the ``mingrad`` entry point."""

import math

from mingrad_core import functional as F
from mingrad_core import hookimpl

GELU_K = math.sqrt(2 / math.pi)


def _sigmoid(x: float) -> float:
    if x >= 0:
        return 1 / (1 + math.exp(-x))
    e = math.exp(x)  # never overflows for x < 0
    return e / (1 + e)


def _softplus(x: float) -> float:
    return max(x, 0.0) + math.log1p(math.exp(-abs(x)))


def _gelu(x: float) -> float:
    return 0.5 * x * (1 + math.tanh(GELU_K * (x + 0.044715 * x**3)))


def _gelu_gradient(x, out):
    t = F.tanh(GELU_K * (x + 0.044715 * x * x * x))
    return (0.5 * (1 + t) + 0.5 * x * (1 - t * t) * GELU_K * (1 + 3 * 0.044715 * x * x),)


def _silu_gradient(x, out):
    s = F.sigmoid(x)
    return (s * (1 + x * (1 - s)),)


# fmt: off
@hookimpl
def mingrad_register_ops(register):
    register(name="sigmoid", arity=1, label="σ", forward=_sigmoid,
             gradient=lambda x, out: (out * (1 - out),), doc="1 / (1 + exp(-x))")
    register(name="silu", arity=1, label="SiLU", forward=lambda x: x * _sigmoid(x),
             gradient=_silu_gradient, doc="x * sigmoid(x)")
    register(name="gelu", arity=1, label="GELU", forward=_gelu, gradient=_gelu_gradient,
             domain=((-3.0, 3.0),), doc="GELU, tanh approximation")
    register(name="softplus", arity=1, label="softplus", forward=_softplus,
             gradient=lambda x, out: (F.sigmoid(x),), doc="log(1 + exp(x))")
    register(name="leaky_relu", arity=1, label="LeakyReLU",
             forward=lambda x: x if x > 0 else 0.01 * x,
             gradient=lambda x, out: (1.0 if float(x) > 0 else 0.01,), doc="slope 0.01 below 0")
    register(name="elu", arity=1, label="ELU", forward=lambda x: x if x > 0 else math.expm1(x),
             gradient=lambda x, out: (1.0 if float(x) > 0 else out + 1,), doc="alpha 1")
