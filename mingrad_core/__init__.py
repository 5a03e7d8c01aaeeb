"""MinGrad's engine: Scalar nodes, backpropagation over their graph, and the op registry.

The core names no op; every operation is registered by a plugin (see ``mingrad_ops``).
Modules, each one job: ``engine`` (Scalar, the op table, backward), ``backprop`` (the general
loop and ``grad``), ``spec`` (what an op is), ``registry`` (the table's rules and lookups),
``plugins`` (discovery and loading), ``watch`` (the hook for graph-recording tools),
``values`` (real numbers), ``errors`` (messages).
"""

# fmt: off
from . import functional
from .backprop import backprop, grad
from .engine import (Scalar, bound_to, composite_of, gradient_terms, local_gradient, mask_of,
                     masked, toposort)
from .errors import GradientError
from .plugins import (PluginError, PluginFailure, PluginWarning, failures,
                      get_plugin_manager, hookimpl, plugin_manager, register_plugin, reset)
from .registry import UnknownOpError, get_op, ops, origin_of, register_op
from .spec import OpRegistrationError, OpSpec, Origin
from .values import is_real, to_float
from .watch import Watcher, value_of, watch

__all__ = [
    "GradientError", "OpRegistrationError", "OpSpec", "Origin", "PluginError",
    "PluginFailure", "PluginWarning", "Scalar", "UnknownOpError", "Watcher", "backprop",
    "bound_to", "composite_of", "failures", "functional", "get_op", "get_plugin_manager", "grad",
    "gradient_terms", "hookimpl", "is_real", "local_gradient", "mask_of", "masked", "ops",
    "origin_of", "plugin_manager", "register_op", "register_plugin", "reset", "to_float",
    "toposort", "value_of", "watch",
]
