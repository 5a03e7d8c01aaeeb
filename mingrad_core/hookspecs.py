"""The hooks a MinGrad plugin implements. Each docstring is the contract."""

from collections.abc import Callable

import pluggy

hookspec = pluggy.HookspecMarker("mingrad")


@hookspec
def mingrad_register_ops(register: Callable[..., object]) -> None:
    """Register this plugin's ops by calling ``register`` once per op.

    ``register(name=..., arity=..., forward=..., gradient=..., label=..., ...)`` takes the
    fields of :class:`mingrad_core.OpSpec` (or one ``OpSpec``). A plugin's ops are added all
    together or, if any of them is invalid or its name is taken, not at all.
    """
