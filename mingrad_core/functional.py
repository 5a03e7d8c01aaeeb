"""Every registered op as a function: ``F.tanh(x)``, or ``F.gelu(x)`` once a plugin adds it.

Given a Scalar, an op returns a Scalar; given only numbers, it returns a float. That is what
lets one gradient formula serve both first-order and higher-order differentiation.
"""

from . import registry as _registry


def __getattr__(name: str) -> "_registry.OpSpec":
    if name.startswith("__"):
        raise AttributeError(name)
    return _registry.get_op(name)


def __dir__() -> list[str]:
    return sorted(_registry.ops())
