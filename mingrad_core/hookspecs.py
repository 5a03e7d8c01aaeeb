"""The hooks a MinGrad plugin implements. Each docstring is the contract."""

from collections.abc import Callable

import pluggy

hookspec = pluggy.HookspecMarker("mingrad")


@hookspec
def mingrad_register_ops(register: Callable[..., object]) -> None:
    """Register this plugin's ops by calling ``register`` once per op.

    ``register(name=..., arity=..., forward=..., gradient=..., label=..., ...)`` takes the
    fields of :class:`mingrad_core.OpSpec` (or one ``OpSpec``) and checks the op at once,
    raising ``OpRegistrationError`` if it is invalid or its name or operator is taken (the
    built-in ops are registered first). A plugin's ops are added all together, when its hook
    returns, or, if anything in it raised, not at all.
    """
