"""The built-in ops, shipped as the default plugin and registered as any plugin's would be.

Numeric policy, the same for every op: IEEE-754 results, as PyTorch gives, never a Python
error. exp overflows to inf; log(0) is -inf and log of a negative is nan; 0 to a negative
power is inf; a negative base to a fractional power is nan; nan goes in, nan comes out.
At kinks: relu'(0) = 0, and d(x**0)/dx = 0 everywhere, 0 included.
"""

import math
import operator

from mingrad_core import functional as F
from mingrad_core import hookimpl

POSITIVE = (0.1, 5.0)


def _exp(x: float) -> float:
    try:
        return math.exp(x)
    except OverflowError:
        return math.inf


def _log(x: float) -> float:
    if x > 0:
        return math.log(x)
    return -math.inf if x == 0 else math.nan


def _pow(a: float, b: float) -> float:
    try:
        out = a**b
    except (ZeroDivisionError, OverflowError):  # 0 to a negative power, or too large
        odd = b.is_integer() and b % 2 == 1
        return math.copysign(math.inf, a) if odd else math.inf
    return out if type(out) is float else math.nan  # a complex result: negative ** fraction


def _linear(b, *weights_then_inputs):
    n, odd = divmod(len(weights_then_inputs), 2)
    if odd:
        got = 1 + len(weights_then_inputs)
        raise TypeError(f"linear takes a bias, n weights and n inputs; got {got} values")
    return sum(map(operator.mul, weights_then_inputs[:n], weights_then_inputs[n:]), b)


def _linear_gradient(b, *weights_inputs_out):
    n = (len(weights_inputs_out) - 1) // 2
    return (1.0, *weights_inputs_out[n : 2 * n], *weights_inputs_out[:n])


def _pow_gradient(a, b, out):
    # d(x**0)/dx = 0 even at x = 0, where the formula gives 0 * inf; elsewhere keep the
    # formula, whose dependence on b is what the second derivatives need.
    da = 0.0 if float(b) == 0 and float(a) == 0 else b * F.pow(a, b - 1)
    return da, out * F.log(a)


# fmt: off
@hookimpl
def mingrad_register_ops(register):
    # Primitives: the forward and the local gradient (one term per input, given the inputs
    # and the output) side by side.
    register(name="add", arity=2, operator="+", label="+", forward=operator.add,
             gradient=lambda a, b, out: (1.0, 1.0), doc="a + b")
    register(name="mul", arity=2, operator="*", label="*", forward=operator.mul,
             gradient=lambda a, b, out: (b, a), doc="a * b")
    register(name="pow", arity=2, operator="**", label="**", forward=_pow,
             gradient=_pow_gradient, domain=(POSITIVE, (-3.0, 3.0)), doc="a ** b")
    register(name="relu", arity=1, label="ReLU", forward=lambda x: 0.0 if x <= 0 else x,
             gradient=lambda x, out: (1.0 if float(x) > 0 else 0.0,), doc="max(x, 0)")
    register(name="tanh", arity=1, forward=math.tanh,
             gradient=lambda x, out: (1 - out * out,), doc="hyperbolic tangent")
    register(name="exp", arity=1, forward=_exp, gradient=lambda x, out: (out,), doc="e ** x")
    register(name="log", arity=1, forward=_log, gradient=lambda x, out: (F.pow(x, -1.0),),
             domain=(POSITIVE,), doc="natural logarithm")
    register(name="linear", arity=1, variadic=True, label="Σ w·x + b", forward=_linear,
             gradient=_linear_gradient, doc="linear(b, w1..wn, x1..xn) = b + Σ wi·xi")
    # Composites: built from the primitives, differentiated through them.
    register(name="neg", arity=1, operator="neg", label="-", forward=lambda x: x * -1.0,
             doc="-x")
    register(name="sub", arity=2, operator="-", label="-", forward=lambda a, b: a + b * -1.0,
             doc="a - b")
    register(name="div", arity=2, operator="/", label="/", forward=lambda a, b: a * b**-1.0,
             domain=((-2.0, 2.0), POSITIVE), doc="a / b")
