"""Extra activation functions for MinGrad, registered through the ``mingrad`` entry point.

``mish`` is a composite, built from softplus and tanh and differentiated through them.

They follow the built-in ops' numeric policy: IEEE-754 values, never a Python error. Where a
formula would overflow to ``inf * 0``, they give the limit instead: gelu(x) is x for large
positive x and -0.0 for large negative x, with gradient 1 and 0; silu(-inf) is -0.0, with
gradient 0 at -inf and 1 at inf.

Each op also has array forms (numpy, for ``mingrad_jit``) with the same formulas in the same
order, so that they agree with the scalar forms bit for bit where numpy's exp, log1p and expm1
are the C library's. numpy is imported only when an array form first runs.
"""

import math

from mingrad_core import functional as F
from mingrad_core import hookimpl
from mingrad_ops import numpy_form

GELU_K = math.sqrt(2 / math.pi)
SATURATED = 10.0  # beyond ±10, gelu is x or -0.0, its slope 1 or 0 (the formula: within 1e-36)


def _sigmoid(x: float) -> float:
    if x >= 0:
        return 1 / (1 + math.exp(-x))
    e = math.exp(x)  # never overflows for x < 0
    return e / (1 + e)


def _sigmoid_array(np, x):
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1 / (1 + e), e / (1 + e))


def _silu(x: float) -> float:
    return -0.0 if x == -math.inf else x * _sigmoid(x)


def _held(x, edge: float, to: float):
    """On Scalars: x, but ±to beyond ±edge (infinities included), chosen with where() rather
    than by reading a value, so that jit records it; nan stays nan. Its derivative is 1
    inside and 0 beyond, so a formula saturated beyond ``edge`` keeps finite derivatives."""
    beyond = F.relu(x - edge) + F.relu(-x - edge)  # nonzero beyond ±edge (and at nan)
    return F.where(beyond, F.where(F.relu(x), to, -to), x) + F.tanh(x) * 0.0  # 0, or nan


def _silu_gradient(x, out):
    if x.__class__ is float:
        if math.isinf(x):  # the limits, where the formula gives inf * 0
            return (1.0 if x > 0 else 0.0,)
    else:
        x = _held(x, 1e300, 1e300)  # the same limits, with finite derivatives
    s = F.sigmoid(x)
    return (s * (1 + x * (1 - s)),)


def _silu_gradient_array(np, x, out):
    s = _sigmoid_array(np, x)
    return (np.where(np.isinf(x), np.where(x > 0, 1.0, 0.0), s * (1 + x * (1 - s))),)


def _softplus(x: float) -> float:
    return max(x, 0.0) + math.log1p(math.exp(-abs(x)))


def _gelu(x: float) -> float:
    # 0.5 x (1 + tanh(u)) written as x / (1 + exp(-2u)): the same function, but 1 + tanh(u)
    # cancels to a few digits for negative x (it is 0.003 at x = -3), where a few ulps of
    # tanh are hundreds of ulps of the result.
    if x > SATURATED:
        return x
    if x < -SATURATED:
        return -0.0
    return x / (1 + math.exp(-2 * GELU_K * (x + 0.044715 * x * x * x)))


def _gelu_array(np, x):
    out = x / (1 + np.exp(-2 * GELU_K * (x + 0.044715 * x * x * x)))
    return np.where(x > SATURATED, x, np.where(x < -SATURATED, -0.0, out))


def _gelu_gradient(x, out):
    # 0.5 (1 + tanh(u)) is s = sigmoid(2u) and 1 - tanh(u)^2 is 4 s (1 - s), 1 - s being
    # sigmoid(-2u): no 1 + tanh(u) or 1 - tanh(u)^2 cancelling away its digits. Beyond ±10
    # the slope is 1 or 0; on Scalars x is held at ±30 there, where it is exactly that.
    if x.__class__ is float:
        if abs(x) > SATURATED:
            return (1.0 if x > 0 else 0.0,)
        u = GELU_K * (x + 0.044715 * x * x * x)
        s, rest = _sigmoid(2 * u), _sigmoid(-2 * u)
    else:
        x = _held(x, SATURATED, 3 * SATURATED)
        u = GELU_K * (x + 0.044715 * x * x * x)
        s, rest = F.sigmoid(2 * u), F.sigmoid(-2 * u)
    return (s + 2 * x * s * rest * GELU_K * (1 + 3 * 0.044715 * x * x),)


def _gelu_gradient_array(np, x, out):
    u = GELU_K * (x + 0.044715 * x * x * x)
    s, rest = _sigmoid_array(np, 2 * u), _sigmoid_array(np, -2 * u)
    slope = s + 2 * x * s * rest * GELU_K * (1 + 3 * 0.044715 * x * x)
    return (np.where(np.abs(x) > SATURATED, np.where(x > 0, 1.0, 0.0), slope),)


def _leaky_relu_gradient(x, out):
    if x.__class__ is float:  # 0.01 at nan, as PyTorch's
        return (1.0 if x > 0 else 0.01,)
    # On Scalars (create_graph=True): where(), not a value read, so that jit records it.
    return (F.where(F.relu(x), 1.0, 0.01),)


def _elu_gradient(x, out):
    # exp(min(x, 0)): exp(x) at or below 0, not out + 1, which cancels to 0 below about -37;
    # 1 at nan, as PyTorch's.
    if x.__class__ is float:
        return (math.exp(x) if x <= 0 else 1.0,)
    return (F.exp(-F.relu(-x)),)


def _mish(x):
    """A composite: built from registered ops, differentiated through them."""
    return x * x.softplus().tanh()


# fmt: off
@hookimpl
def mingrad_register_ops(register):
    register(name="sigmoid", arity=1, label="σ", forward=_sigmoid,
             gradient=lambda x, out: (out * (1 - out),),
             array_forward=numpy_form(_sigmoid_array),
             array_gradient=lambda x, out: (out * (1 - out),), doc="1 / (1 + exp(-x))")
    register(name="silu", arity=1, label="SiLU", forward=_silu, gradient=_silu_gradient,
             array_forward=numpy_form(lambda np, x: np.where(
                 x == -np.inf, -0.0, x * _sigmoid_array(np, x))),
             array_gradient=numpy_form(_silu_gradient_array), doc="x * sigmoid(x)")
    register(name="gelu", arity=1, label="GELU", forward=_gelu, gradient=_gelu_gradient,
             array_forward=numpy_form(_gelu_array), array_gradient=numpy_form(_gelu_gradient_array),
             domain=((-3.0, 3.0),), doc="GELU, tanh approximation")
    register(name="softplus", arity=1, label="softplus", forward=_softplus,
             gradient=lambda x, out: (F.sigmoid(x),),
             array_forward=numpy_form(lambda np, x: np.where(0.0 > x, 0.0, x)
                                  + np.log1p(np.exp(-np.abs(x)))),
             array_gradient=numpy_form(lambda np, x, out: (_sigmoid_array(np, x),)),
             doc="log(1 + exp(x))")
    register(name="leaky_relu", arity=1, label="LeakyReLU",
             forward=lambda x: x if x > 0 else 0.01 * x,
             gradient=_leaky_relu_gradient,
             array_forward=numpy_form(lambda np, x: np.where(x > 0, x, 0.01 * x)),
             array_gradient=numpy_form(lambda np, x, out: (np.where(x > 0, 1.0, 0.01),)),
             doc="slope 0.01 below 0")
    register(name="elu", arity=1, label="ELU", forward=lambda x: x if x > 0 else math.expm1(x),
             gradient=_elu_gradient,
             array_forward=numpy_form(lambda np, x: np.where(x > 0, x, np.expm1(x))),
             array_gradient=numpy_form(lambda np, x, out: (np.where(x <= 0, np.exp(x), 1.0),)),
             doc="alpha 1")
    register(name="mish", arity=1, label="Mish", forward=_mish, doc="x * tanh(softplus(x))")
