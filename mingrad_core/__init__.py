"""MinGrad's engine: Scalar nodes, backpropagation over their graph, and the op registry.

The core names no op; every operation is registered by a plugin (see ``mingrad_ops``).
"""

# fmt: off
from . import functional
from .registry import (OpRegistrationError, OpSpec, Origin, PluginError, PluginFailure,
                       PluginWarning, UnknownOpError, failures, get_op, get_plugin_manager,
                       hookimpl, ops, origin_of, plugin_manager, register_op, register_plugin,
                       reset)
from .scalar import (GradientError, Scalar, backprop, composite_of, grad, local_gradient,
                     toposort, watch_values)

__all__ = [
    "GradientError", "OpRegistrationError", "OpSpec", "Origin", "PluginError",
    "PluginFailure", "PluginWarning", "Scalar", "UnknownOpError", "backprop",
    "composite_of", "failures", "functional", "get_op", "get_plugin_manager", "grad", "hookimpl",
    "local_gradient", "ops", "origin_of", "plugin_manager", "register_op", "register_plugin",
    "reset", "toposort", "watch_values",
]
