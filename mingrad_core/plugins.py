"""Plugin discovery and loading: pluggy, entry points, and the environment's say in them.

Plugins are found lazily, on the first use of an op, once and under a lock: the built-in ops
first, then every other entry point in the group ``mingrad``, each imported and its
``mingrad_register_ops`` hook called. Nothing is visible to other threads until all have
loaded. ``MINGRAD_PLUGINS``: comma-separated names (distribution or entry point; case, ``-``,
``_`` and ``.`` do not matter) of the installed plugins to load; unset loads all, empty loads
none but the built-ins. ``MINGRAD_STRICT_PLUGINS=1`` (or true, yes, on): if any plugin fails to
load, raise one PluginError listing every failure instead of skipping them.
"""

from __future__ import annotations

import importlib.metadata
import os
import re
import sys
import traceback
import types
import warnings
from collections.abc import Callable
from typing import Any, NamedTuple

import pluggy

from . import engine, hookspecs, registry
from .registry import Tables
from .spec import OpSpec, Origin, as_spec

PROJECT = "mingrad"
BUILTIN_DISTRIBUTION = "mingrad"  # whose entry points load whatever MINGRAD_PLUGINS says
hookimpl = pluggy.HookimplMarker(PROJECT)
"""Marks a plugin's ``mingrad_register_ops(register)`` function as its hook (pluggy's marker)."""


class PluginFailure(NamedTuple):
    """A plugin that could not be loaded, and why."""

    origin: Origin
    error: str


class PluginError(RuntimeError):
    """Plugins failed to load while MINGRAD_STRICT_PLUGINS is on: the ``failures``, and the
    ``ops`` (with their ``origins``) that did load."""

    def __init__(self, message: str, state: Tables) -> None:
        super().__init__(message)
        self.failures, self.ops, self.origins = [*state.failures], {**state.ops}, {**state.origins}


class PluginWarning(UserWarning):
    """A plugin failed to load and was skipped."""


_manager: pluggy.PluginManager | None = None
_loading: Tables | None = None  # the first load, while in progress
_ON, _OFF = ("1", "true", "yes", "on"), ("", "0", "false", "no", "off")
_LOADER = tuple(os.path.join(os.path.dirname(m.__file__), "") for m in (engine, pluggy, importlib))


def get_plugin_manager() -> pluggy.PluginManager:
    """A new plugin manager that knows MinGrad's hooks and no plugin."""
    pm = pluggy.PluginManager(PROJECT)
    pm.add_hookspecs(hookspecs)
    return pm


def _current() -> Tables:
    """The loaded tables, loading every plugin on first use; other threads wait meanwhile, and
    the loading thread (a plugin looking an op up) sees what has loaded so far."""
    with registry.lock:
        if _loading is not None:
            return _loading
        return registry.PUBLISHED if engine.load_ops is None else _load_all()


def plugin_manager() -> pluggy.PluginManager:
    """The plugin manager holding every loaded plugin (loading them on first use)."""
    _current()
    return _manager


def failures() -> list[PluginFailure]:
    """The plugins that failed to load, with the reason."""
    return list(_current().failures)


def reset() -> None:
    """Forget every op and plugin; the next use of an op scans the installed plugins again."""
    global _manager
    with registry.lock:
        registry.clear()
        _manager = None
        engine.load_ops = _current


def _load_all() -> Tables:
    """Load the built-in ops, then the other plugins; publish them all at once, at the end."""
    global _loading, _manager
    strict = _strict()
    manager, state = get_plugin_manager(), Tables({}, {}, {}, [])
    _loading = state
    try:
        for origin, load, module in _entry_points():
            _load(manager, state, origin, load, module)
    finally:
        _loading = None
    if strict and state.failures:
        listing = "; ".join(f"{f.origin}: {f.error}" for f in state.failures)
        raise PluginError(
            f"{len(state.failures)} plugin(s) failed to load while MINGRAD_STRICT_PLUGINS is on: "
            f"{listing}",
            state,
        )
    published = registry.PUBLISHED
    published.ops.update(state.ops)
    published.origins.update(state.origins)
    published.failures.extend(state.failures)
    published.operators.update(state.operators)
    registry.bind_operators()
    _manager, engine.load_ops = manager, None
    return published


def _strict() -> bool:
    value = os.environ.get("MINGRAD_STRICT_PLUGINS", "")
    if value.strip().lower() not in (*_ON, *_OFF):
        raise ValueError(
            f"MINGRAD_STRICT_PLUGINS must be one of {', '.join(_ON)} (on) or {', '.join(_OFF[1:])} "
            f"or empty (off); got {value!r}"
        )
    return value.strip().lower() in _ON


def _normalized(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name.strip()).lower()


def _entry_points() -> list[tuple[Origin, Callable[[], object], str]]:
    """The entry points MINGRAD_PLUGINS allows, the built-in ops first."""
    found = sorted(
        importlib.metadata.entry_points(group=PROJECT),
        key=lambda ep: (not ep.dist or ep.dist.name != BUILTIN_DISTRIBUTION, ep.name),
    )
    allowed = os.environ.get("MINGRAD_PLUGINS")
    allow = None if allowed is None else {_normalized(n) for n in allowed.split(",") if n.strip()}
    chosen, known = [], set()
    for ep in found:
        dist = ep.dist.name if ep.dist else None
        names = {_normalized(ep.name), _normalized(dist or "")}
        known |= names
        if allow is None or dist == BUILTIN_DISTRIBUTION or names & allow:
            origin = Origin(ep.name, dist, ep.dist.version if ep.dist else None)
            chosen.append((origin, ep.load, ep.module))
    if allow is not None and allow - known:
        installed = ", ".join(f"{ep.dist.name if ep.dist else '?'} ({ep.name})" for ep in found)
        warnings.warn(
            f"mingrad: MINGRAD_PLUGINS names {', '.join(map(repr, sorted(allow - known)))}, "
            f"which matches no installed plugin; installed: {installed or 'none'}",
            PluginWarning,
            stacklevel=2,
        )
    return chosen


def register_plugin(plugin: object, name: str | None = None) -> None:
    """Register a plugin object (a module or class with ``@hookimpl`` functions) by hand."""
    origin = Origin(name or getattr(plugin, "__name__", repr(plugin)))
    module = plugin.__name__ if isinstance(plugin, types.ModuleType) else plugin.__module__
    state = _current()
    with registry.lock:
        failure = _load(_manager, state, origin, lambda: plugin, module)
    if failure is not None and _strict():
        raise PluginError(f"{origin} failed to load: {failure.error}", state)


def _load(
    pm: pluggy.PluginManager,
    state: Tables,
    origin: Origin,
    load: Callable[[], object],
    module: str,
) -> PluginFailure | None:
    """Add one plugin's ops to ``state``, all or none; a failure is recorded (and warned of)."""
    plugin, staged = None, {}

    def register(spec: OpSpec | None = None, /, **fields: Any) -> None:
        spec = as_spec(spec, fields, origin)
        registry.check_free(spec, origin, state, staged)
        staged[spec.name] = spec

    try:
        plugin = load()
        pm.register(plugin, name=origin.plugin)
        pm.check_pending()
        for impl in pm.hook.mingrad_register_ops.get_hookimpls():
            if impl.plugin is plugin:
                impl.function(register=register)
    except Exception as exc:
        if plugin is not None and pm.is_registered(plugin):
            pm.unregister(plugin)
        state.failures.append(PluginFailure(origin, f"{type(exc).__name__}: {exc}"))
        if not _strict():
            warnings.warn_explicit(
                f"mingrad: skipped {origin} (module {module}): {state.failures[-1].error}",
                PluginWarning,
                *_raised_at(exc, module),
                module=module,
            )
        return state.failures[-1]
    registry.commit(staged, origin, state)
    return None


def _raised_at(exc: BaseException, module: str) -> tuple[str, int]:
    """Where a plugin's error was raised: the innermost frame outside MinGrad and its loaders."""
    for frame in reversed(traceback.extract_tb(exc.__traceback__)):
        if not frame.filename.startswith((*_LOADER, "<frozen ")):
            return frame.filename, frame.lineno or 1
    return getattr(sys.modules.get(module), "__file__", None) or module, 1


engine.load_ops = _current
