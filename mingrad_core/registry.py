"""The op registry: op specs, the plugins that register them, and lookup by name or operator.

Plugins are found lazily, on the first lookup: every entry point in the group ``mingrad``
(the built-in ops included) is imported and its ``mingrad_register_ops`` hook called.
``MINGRAD_PLUGINS``: comma-separated names (distribution or entry point) of the installed
plugins to load; unset loads all, empty loads none but the built-ins.
``MINGRAD_STRICT_PLUGINS=1``: a plugin that fails to load raises instead of being skipped.
"""

from __future__ import annotations

import importlib.metadata
import inspect
import os
import warnings
from collections.abc import Callable
from typing import Any, Literal, NamedTuple

import pluggy
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from . import hookspecs, scalar

PROJECT = "mingrad"
BUILTIN_DISTRIBUTION = "mingrad"  # whose entry points load whatever MINGRAD_PLUGINS says


class OpSpec(BaseModel):
    """One op as a plugin declares it: how to compute it, differentiate it and draw it.

    ``gradient(*inputs, out)`` returns one term per input: d(out)/d(input). Written in plain
    arithmetic (or with ``mingrad_core.functional``) it works on floats and on Scalars alike,
    which is what makes higher-order gradients work. An op without ``gradient`` is a composite:
    its ``forward`` is built from other ops and is differentiated through them.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(pattern=r"^[A-Za-z][A-Za-z0-9_]*$")
    arity: int = Field(ge=1)
    variadic: bool = Field(default=False, description="takes arity or more inputs")
    forward: Callable[..., Any]
    gradient: Callable[..., Any] | None = None
    operator: Literal["+", "-", "*", "/", "**", "neg"] | None = None
    label: str = Field(default="", description="how drawings show the op; defaults to the name")
    domain: tuple[tuple[float, float], ...] | None = Field(
        default=None, description="per input, the (low, high) range the gradient checker samples"
    )
    doc: str = ""

    @model_validator(mode="after")
    def _consistent(self) -> OpSpec:
        if not self.label:
            object.__setattr__(self, "label", self.name)
        if self.operator is not None and self.variadic:
            raise ValueError("a variadic op cannot be bound to an operator")
        if self.operator is not None and (self.operator == "neg") != (self.arity == 1):
            raise ValueError(
                f"operator {self.operator!r} needs arity "
                f"{1 if self.operator == 'neg' else 2}, not {self.arity}"
            )
        if self.domain is not None:
            if len(self.domain) != self.arity:
                raise ValueError(f"domain has {len(self.domain)} range(s) for arity {self.arity}")
            if any(not lo < hi for lo, hi in self.domain):
                raise ValueError(f"each domain range needs low < high; got {self.domain}")
        _check_signature("forward", self.forward, self.arity)
        if self.gradient is not None:
            _check_signature("gradient", self.gradient, self.arity + 1)
        return self

    def __call__(self, *args):
        """Apply the op: a Scalar if any argument is a Scalar, else a plain float."""
        return scalar.apply(self, args)


def _check_signature(field: str, fn: Callable, count: int) -> None:
    try:
        signature = inspect.signature(fn)
    except (TypeError, ValueError):  # some builtins have none to check
        return
    try:
        signature.bind(*range(count))
    except TypeError:
        raise ValueError(
            f"{field} must accept {count} positional argument(s); its signature is {signature}"
        ) from None


class Origin(NamedTuple):
    """Where an op came from."""

    plugin: str
    distribution: str | None = None
    version: str | None = None

    def __str__(self) -> str:
        dist = f", distribution {self.distribution} {self.version}" if self.distribution else ""
        return f"plugin {self.plugin!r}{dist}"


class PluginFailure(NamedTuple):
    """A plugin that could not be loaded, and why."""

    origin: Origin
    error: str


class OpRegistrationError(ValueError):
    """An op could not be registered; the registry is unchanged."""


class PluginError(RuntimeError):
    """A plugin failed to load while MINGRAD_STRICT_PLUGINS is set."""


class UnknownOpError(LookupError, AttributeError):
    """No registered op has that name."""


class PluginWarning(UserWarning):
    """A plugin failed to load and was skipped."""


hookimpl = pluggy.HookimplMarker(PROJECT)

_ops: dict[str, OpSpec] = {}
_operators: dict[str, OpSpec] = {}
_origins: dict[str, Origin] = {}
_failures: list[PluginFailure] = []
_manager: pluggy.PluginManager | None = None


def get_plugin_manager() -> pluggy.PluginManager:
    """A new plugin manager that knows MinGrad's hooks and no plugin."""
    pm = pluggy.PluginManager(PROJECT)
    pm.add_hookspecs(hookspecs)
    return pm


def plugin_manager() -> pluggy.PluginManager:
    """The plugin manager holding every loaded plugin (loading them on first use)."""
    global _manager
    if _manager is None:
        _manager = get_plugin_manager()
        _load_entry_points()
    return _manager


def reset() -> None:
    """Forget every op and plugin; the next lookup scans the installed plugins again."""
    global _manager
    _manager = None
    _ops.clear()
    _operators.clear()
    _origins.clear()
    _failures.clear()


def _load_entry_points() -> None:
    allowed = os.environ.get("MINGRAD_PLUGINS")
    allow = None if allowed is None else {n.strip() for n in allowed.split(",") if n.strip()}
    for ep in sorted(importlib.metadata.entry_points(group=PROJECT), key=lambda e: e.name):
        dist = ep.dist.name if ep.dist else None
        if allow is not None and dist != BUILTIN_DISTRIBUTION and not {ep.name, dist} & allow:
            continue
        origin = Origin(ep.name, dist, ep.dist.version if ep.dist else None)
        _load(origin, ep.load)


def register_plugin(plugin: object, name: str | None = None) -> None:
    """Register a plugin object (a module or class with ``@hookimpl`` functions) by hand."""
    plugin_manager()
    _load(Origin(name or getattr(plugin, "__name__", repr(plugin))), lambda: plugin)


def _load(origin: Origin, load: Callable[[], object]) -> None:
    pm = _manager
    plugin = None
    try:
        plugin = load()
        pm.register(plugin, name=origin.plugin)
        pm.check_pending()
        staged: list[OpSpec] = []
        for impl in pm.hook.mingrad_register_ops.get_hookimpls():
            if impl.plugin is plugin:
                impl.function(
                    register=lambda spec=None, /, **fields: staged.append(
                        _as_spec(spec, fields, origin)
                    )
                )
        _commit(staged, origin)
    except Exception as exc:
        if plugin is not None and pm.is_registered(plugin):
            pm.unregister(plugin)
        error = f"{type(exc).__name__}: {exc}"
        _failures.append(PluginFailure(origin, error))
        if os.environ.get("MINGRAD_STRICT_PLUGINS", "") not in ("", "0"):
            reset()  # so that every later lookup fails the same way
            raise PluginError(f"{origin} failed to load: {error}") from exc
        warnings.warn(f"mingrad: skipped {origin}: {error}", PluginWarning, stacklevel=2)


def _as_spec(spec: object, fields: dict, origin: Origin) -> OpSpec:
    if spec is None:
        try:
            return OpSpec(**fields)
        except ValidationError as exc:
            raise OpRegistrationError(
                f"invalid op {fields.get('name', '?')!r} from {origin}: {exc}"
            ) from None
    if not isinstance(spec, OpSpec) or fields:
        raise OpRegistrationError(
            f"{origin} registered {spec!r}; expected register(OpSpec(...)) "
            f"or register(name=..., arity=..., forward=..., ...)"
        )
    return spec


def _commit(specs: list[OpSpec], origin: Origin) -> None:
    """Add all of ``specs`` or, if any clashes, none of them."""
    names: dict[str, OpSpec] = {}
    operators: dict[str, OpSpec] = {}
    for spec in specs:
        if spec.name in _ops or spec.name in names:
            owner = _origins.get(spec.name, origin)
            raise OpRegistrationError(
                f"op {spec.name!r} from {origin} is already registered by {owner}"
            )
        if hasattr(scalar.Scalar, spec.name):
            raise OpRegistrationError(
                f"op {spec.name!r} from {origin} would hide the Scalar "
                f"attribute of that name; choose another name"
            )
        if spec.operator is not None:
            taken = _operators.get(spec.operator) or operators.get(spec.operator)
            if taken is not None:
                raise OpRegistrationError(
                    f"op {spec.name!r} from {origin} binds operator {spec.operator!r}, already "
                    f"bound to op {taken.name!r} by {_origins.get(taken.name, origin)}"
                )
            operators[spec.operator] = spec
        names[spec.name] = spec
    _ops.update(names)
    _operators.update(operators)
    _origins.update(dict.fromkeys(names, origin))


def register_op(spec: OpSpec | None = None, /, **fields) -> OpSpec:
    """Register one op from a script: ``register_op(name="cube", arity=1, forward=..., ...)``."""
    plugin_manager()
    caller = inspect.currentframe().f_back.f_globals.get("__name__", "?")
    origin = Origin(caller)
    spec = _as_spec(spec, fields, origin)
    _commit([spec], origin)
    return spec


def get_op(name: str) -> OpSpec:
    """The op registered under ``name``."""
    plugin_manager()
    try:
        return _ops[name]
    except KeyError:
        failed = "".join(f"\n  {f.origin} failed to load: {f.error}" for f in _failures)
        raise UnknownOpError(
            f"no op named {name!r}; registered ops: {', '.join(sorted(_ops))}{failed}"
        ) from None


def bound_to(operator: str) -> OpSpec:
    """The op bound to a Python operator (``"+"``, ``"**"``, ``"neg"``, ...)."""
    plugin_manager()
    try:
        return _operators[operator]
    except KeyError:
        raise TypeError(
            f"no registered op is bound to operator {operator!r}; "
            f"registered ops: {', '.join(sorted(_ops)) or 'none'}"
        ) from None


def ops() -> dict[str, OpSpec]:
    """Every registered op by name."""
    plugin_manager()
    return dict(_ops)


def origin_of(name: str) -> Origin | None:
    """Which plugin registered op ``name``."""
    plugin_manager()
    return _origins.get(name)


def failures() -> list[PluginFailure]:
    """The plugins that failed to load, with the reason."""
    plugin_manager()
    return list(_failures)
