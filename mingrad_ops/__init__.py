"""The built-in ops, shipped as the default plugin and registered as any plugin's would be.

Numeric policy, the same for every op: IEEE-754 results, as PyTorch gives, never a Python
error. exp overflows to inf; log(0) is -inf and log of a negative is nan; 0 to a negative
power is inf; a negative base to a fractional power is nan; nan goes in, nan comes out.
At kinks: relu'(0) = 0, and d(x**0)/dx = 0 everywhere, 0 included. relu(nan) is nan and its
gradient there is 1, as PyTorch's (which passes the upstream gradient on at nan).

An input gets its term times the upstream gradient, so 0 × inf and 0 × nan give nan (``x * 0``,
``abs`` at 0), except that four ops mask, as PyTorch's do (OpSpec ``masks``): where the product
would be nan and the op passes nothing back, the input gets 0.0. relu at or below 0 (PyTorch's
threshold_backward); where's branch not taken and its condition (where(c, grad, 0)); pick's
inputs not picked and its index (embedding); pow's base where the exponent is 0, and only there
(pow_backward_self; the exponent's gradient is a product, as pow_backward_exponent's).

Gradients branch with ``where`` (a zero-gradient op), never by reading a value, so that
``grad(..., create_graph=True)`` inside a jitted function records them.

Each primitive also has array forms (numpy, for ``mingrad_jit``) beside its scalar forms,
giving the same values: the same formulas in the same order, calling the same C library
functions through numpy's ufuncs, so that they agree bit for bit where numpy's exp, log, expm1
and power are the C library's (x86-64 without AVX-512, measured; a few ulps apart elsewhere).
tanh is the one computed differently: numpy's tanh is its own and differs from ``math.tanh`` by
up to 2 ulps, so its array form uses the C library's formula. numpy is imported only when an
array form first runs.

``check_op`` (in ``gradcheck``) checks any registered op's gradients, a plugin's included,
against finite differences.
"""

import math
import operator
import sys
from collections.abc import Callable

from mingrad_core import functional as F
from mingrad_core import hookimpl

from . import logsumexp, select
from .gradcheck import CheckReport, check_op
from .logsumexp import log_softmax, softmax

__all__ = [
    "CheckReport",
    "check_op",
    "log_softmax",
    "mingrad_register_ops",
    "numpy_form",
    "softmax",
]

POSITIVE = (0.1, 5.0)


def numpy_form(form: Callable) -> Callable:
    """The array form ``form(np, *arrays)``, with numpy imported on its first call (only
    mingrad_jit needs numpy) and numpy's floating-point warnings off (inf and nan are values).

    For plugins too: ``array_forward=numpy_form(lambda np, x: np.tanh(x))``. The returned
    form keeps ``form`` as ``.raw``: a replay that switches the warnings off once around all
    its calls calls ``raw(np, *arrays)`` and saves entering ``np.errstate`` on every call."""

    def run(*arrays):
        import numpy as np

        with np.errstate(all="ignore"):
            return form(np, *arrays)

    run.raw = form
    return run


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
        if a < 0 and not b.is_integer():  # the complex result of a negative base overflowed
            return math.nan
        odd = b.is_integer() and b % 2 == 1
        return math.copysign(math.inf, a) if odd else math.inf
    return out if type(out) is float else math.nan  # a complex result: negative ** fraction


_MAX = sys.float_info.max


def _pow_gradient(a, b, out):
    # d(x**0)/dx = 0 for every x, where the formula can give 0 * inf (x = 0, or x so small
    # that x**-1 overflows); d(0**b)/db = 0 for b >= 0 (0**b is 0, or 1 at b = 0), where the
    # formula gives 0 * -inf. PyTorch takes the same values.
    if a.__class__ is float and b.__class__ is float:
        da = 0.0 if b == 0 else b * F.pow(a, b - 1)
        return da, 0.0 if a == 0 and b >= 0 else out * F.log(a)
    # On Scalars (create_graph=True) the same choices, made by where() rather than by reading
    # a value, so that a trace records them; at b = 0, b * (1/a) keeps the dependence on b
    # that the second derivatives need (d2/da db is 1/a), and only an infinite 1/a becomes 0.
    power = F.pow(a, b - 1)
    infinite = F.relu(power - _MAX) + F.relu(-power - _MAX)
    da = b * F.where(b, power, F.where(infinite, 0.0, power))
    log_term = out * F.log(a)
    return da, F.where(a, log_term, F.where(F.relu(-b), log_term, 0.0))


def _pow_masks(a, b, out):
    # nothing passes to the base where the exponent is 0 (PyTorch's pow_backward_self); the
    # exponent's gradient is multiplied, so 0 * nan is nan there (pow_backward_exponent)
    return b, 1.0


def _pow_gradient_array(np, a, b, out):
    da = np.where(b == 0, 0.0, b * np.power(a, b - 1))
    return da, np.where((a == 0) & (b >= 0), 0.0, out * np.log(a))


def _div(a: float, b: float) -> float:
    try:
        return a / b
    except ZeroDivisionError:  # IEEE: ±inf, or nan for 0 / 0 and nan / 0
        if a == 0 or a != a:
            return math.nan
        return math.copysign(math.inf, a) * math.copysign(1.0, b)


def _relu_gradient(x, out):
    # 1 above 0, 0 at or below it, and 1 at nan (the upstream gradient passes, as PyTorch's)
    if x.__class__ is float:
        return (0.0 if x <= 0 else 1.0,)
    return (F.where(F.relu(x), 1.0, 0.0),)  # relu(x) is nonzero above 0 and at nan


def _abs_gradient(x, out):
    # the sign of x: 0 at 0, and 1 at nan (the upstream gradient passes, as relu's)
    if x.__class__ is float:
        return (0.0 if x == 0 else -1.0 if x < 0 else 1.0,)
    return (F.where(x, F.where(F.relu(x), 1.0, -1.0), 0.0),)


def _abs_gradient_array(np, x, out):
    return (np.where(x == 0, 0.0, np.where(x < 0, -1.0, 1.0)),)


def _relu_gradient_array(np, x, out):
    # 1 - (x <= 0): 0.0 at or below 0, 1.0 above and at nan, as the float form; five times
    # faster than where(x <= 0, 0.0, 1.0), whose number operands numpy broadcasts first
    return (np.subtract(1.0, x <= 0),)


def _relu_array(np, x):
    out = np.maximum(x, 0.0)  # nan stays nan; but max(-0.0, 0.0) may be -0.0, where relu gives 0.0
    out += 0.0  # -0.0 + 0.0 is 0.0, and x + 0.0 is x for every other x
    return out


def _tanh_array(np, x):
    """tanh by the C library's own formula (fdlibm's, as glibc computes it) from expm1."""
    size = np.abs(x)
    big = size >= 1.0
    t = np.expm1(np.where(big, 2.0, -2.0) * size)
    z = np.where(big, 1.0 - 2.0 / (t + 2.0), -t / (t + 2.0))
    z = np.copysign(np.where(size >= 22.0, 1.0, z), x)
    return np.where(size < 2.0**-55, x * (1.0 + x), z)


def _linear(b, *weights_then_inputs):
    n, odd = divmod(len(weights_then_inputs), 2)
    if odd:
        got = 1 + len(weights_then_inputs)
        raise TypeError(f"linear takes a bias, n weights and n inputs; got {got} values")
    return sum(map(operator.mul, weights_then_inputs[:n], weights_then_inputs[n:]), b)


def _linear_gradient(b, *weights_inputs_out):
    n = (len(weights_inputs_out) - 1) // 2
    return (1.0, *weights_inputs_out[n : 2 * n], *weights_inputs_out[:n])


def _linear_array(np, block):
    n, odd = divmod(len(block) - 1, 2)
    if odd:
        raise TypeError(f"linear takes a bias, n weights and n inputs; got {len(block)} rows")
    if n == 0:
        return block[0].copy()
    terms = block[1 : n + 1] * block[n + 1 :]
    terms[0] += block[0]
    # Added left to right from the bias, as sum() does (an accumulation is never reordered).
    return np.add.accumulate(terms, axis=0)[-1]


def _linear_gradient_array(np, block, out):
    n = (len(block) - 1) // 2
    return np.concatenate((np.ones_like(block[:1]), block[n + 1 :], block[1 : n + 1]))


# fmt: off
@hookimpl
def mingrad_register_ops(register):
    # The forward and the local gradient (one term per input, given the inputs and the
    # output) side by side, then the same two on numpy arrays (for mingrad_jit).
    register(name="add", arity=2, operator="+", label="+", forward=operator.add,
             gradient=lambda a, b, out: (1.0, 1.0),
             array_forward=numpy_form(lambda np, a, b: a + b),
             array_gradient=lambda a, b, out: (1.0, 1.0), doc="a + b")
    register(name="sub", arity=2, operator="-", label="-", forward=operator.sub,
             gradient=lambda a, b, out: (1.0, -1.0),
             array_forward=numpy_form(lambda np, a, b: a - b),
             array_gradient=lambda a, b, out: (1.0, -1.0), doc="a - b")
    register(name="neg", arity=1, operator="neg", label="-", forward=operator.neg,
             gradient=lambda x, out: (-1.0,),
             array_forward=numpy_form(lambda np, x: -x),
             array_gradient=lambda x, out: (-1.0,), doc="-x")
    register(name="mul", arity=2, operator="*", label="*", forward=operator.mul,
             gradient=lambda a, b, out: (b, a),
             array_forward=numpy_form(lambda np, a, b: a * b),
             array_gradient=lambda a, b, out: (b, a), doc="a * b")
    # d/db is -out / b rather than -a / b**2, which overflows for a tiny b.
    register(name="div", arity=2, operator="/", label="/", forward=_div,
             gradient=lambda a, b, out: (1 / b, -out / b),
             array_forward=numpy_form(lambda np, a, b: a / b),
             array_gradient=numpy_form(lambda np, a, b, out: (1 / b, -out / b)),
             domain=((-2.0, 2.0), POSITIVE), doc="a / b")
    register(name="pow", arity=2, operator="**", label="**", forward=_pow,
             gradient=_pow_gradient,
             array_forward=numpy_form(lambda np, a, b: np.power(a, b)),
             array_gradient=numpy_form(_pow_gradient_array),
             masks=_pow_masks, domain=(POSITIVE, (-3.0, 3.0)), doc="a ** b")
    register(name="relu", arity=1, label="ReLU", forward=lambda x: 0.0 if x <= 0 else x,
             gradient=_relu_gradient,
             array_forward=numpy_form(_relu_array),
             array_gradient=numpy_form(_relu_gradient_array),
             masks=True, doc="max(x, 0)")
    register(name="abs", arity=1, operator="abs", label="|x|", forward=math.fabs,
             gradient=_abs_gradient,
             array_forward=numpy_form(lambda np, x: np.abs(x)),
             array_gradient=numpy_form(_abs_gradient_array), doc="|x|, the absolute value")
    register(name="tanh", arity=1, forward=math.tanh,
             gradient=lambda x, out: (1 - out * out,),
             array_forward=numpy_form(_tanh_array),
             array_gradient=lambda x, out: (1 - out * out,), doc="hyperbolic tangent")
    register(name="exp", arity=1, forward=_exp, gradient=lambda x, out: (out,),
             array_forward=numpy_form(lambda np, x: np.exp(x)),
             array_gradient=lambda x, out: (out,), doc="e ** x")
    register(name="log", arity=1, forward=_log, gradient=lambda x, out: (1 / x,),
             array_forward=numpy_form(lambda np, x: np.log(x)),
             array_gradient=numpy_form(lambda np, x, out: (1 / x,)),
             domain=(POSITIVE,), doc="natural logarithm")
    register(name="linear", arity=1, variadic=True, operator="linear", label="Σ w·x + b",
             forward=_linear,
             gradient=_linear_gradient,
             array_forward=numpy_form(_linear_array),
             array_gradient=numpy_form(_linear_gradient_array),
             doc="linear(b, w1..wn, x1..xn) = b + Σ wi·xi")
    register(name="logsumexp", arity=1, variadic=True, label="logΣexp",
             forward=logsumexp.logsumexp, gradient=logsumexp.logsumexp_gradient,
             array_forward=numpy_form(logsumexp.logsumexp_array),
             array_gradient=numpy_form(logsumexp.logsumexp_gradient_array),
             doc="log(exp(x1) + ... + exp(xn)), stable")
    # Choices: the condition or index is an input (fed anew under jit), with zero gradient.
    register(name="where", arity=3, label="where", forward=select.where,
             gradient=select.where_gradient,
             array_forward=numpy_form(select.where_array),
             array_gradient=numpy_form(select.where_gradient_array),
             masks=True, doc="a if c != 0 else b")
    register(name="pick", arity=2, variadic=True, label="[i]", forward=select.pick,
             gradient=select.pick_gradient,
             array_forward=numpy_form(select.pick_array),
             array_gradient=numpy_form(select.pick_gradient_array),
             masks=True, domain=select.PICK_DOMAIN,
             doc="pick(i, x0..xn-1) = xi (an embedding lookup)")
