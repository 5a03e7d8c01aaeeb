"""The op registry: op specs, the plugins that register them, and lookup by name or operator.

Plugins are found lazily, on the first lookup, once and under a lock: the built-in ops first,
then every other entry point in the group ``mingrad``, each imported and its
``mingrad_register_ops`` hook called. Nothing is visible until all have loaded.
``MINGRAD_PLUGINS``: comma-separated names (distribution or entry point; case, ``-``, ``_`` and
``.`` do not matter) of the installed plugins to load; unset loads all, empty loads none but the
built-ins. ``MINGRAD_STRICT_PLUGINS=1`` (or true, yes, on): if any plugin fails to load, raise
one PluginError listing every failure instead of skipping them.
"""

from __future__ import annotations

import importlib.metadata
import inspect
import keyword
import os
import re
import sys
import threading
import traceback
import types
import warnings
from collections.abc import Callable
from typing import Any, Literal, NamedTuple

import pluggy
from pydantic import ConfigDict, Field, ValidationError, model_validator
from pydantic.dataclasses import dataclass

from . import hookspecs, scalar

PROJECT = "mingrad"
BUILTIN_DISTRIBUTION = "mingrad"  # whose entry points load whatever MINGRAD_PLUGINS says


@dataclass(frozen=True, kw_only=True, config=ConfigDict(extra="forbid"))
class OpSpec:
    """One op as a plugin declares it: how to compute it, differentiate it and draw it.

    ``gradient(*inputs, out)`` returns one term per input: d(out)/d(input). Written in plain
    arithmetic (or with ``mingrad_core.functional``) it works on floats and on Scalars alike,
    which is what makes higher-order gradients work. An op without ``gradient`` is a composite:
    its ``forward`` is built from other ops and is differentiated through them.

    A frozen pydantic dataclass, not a model: its fields are checked once, at construction,
    and read as plain attributes (a model's ``__getattr__`` would slow every read on the hot
    path, where the engine reads ``forward`` and ``gradient`` once per node).
    """

    name: str = Field(pattern=r"^[A-Za-z][A-Za-z0-9_]*$")
    arity: int = Field(ge=1)
    variadic: bool = Field(default=False, description="takes arity or more inputs")
    forward: Callable[..., Any]
    gradient: Callable[..., Any] | None = None
    operator: Literal["+", "-", "*", "/", "**", "neg", "linear"] | None = Field(
        default=None,
        description="the Python operator the op computes (neg: unary minus); or linear, for a "
        "variadic op computing b + Σ wi·xi from (b, w1..wn, x1..xn) left to right, in which "
        "create_graph=True sums each node's gradient as one node",
    )
    label: str = Field(default="", description="how drawings show the op; defaults to the name")
    domain: tuple[tuple[float, float], ...] | None = Field(
        default=None, description="per input, the (low, high) range the gradient checker samples"
    )
    doc: str = ""
    array_forward: Callable[..., Any] | None = Field(
        default=None,
        description="forward on numpy arrays, elementwise (a variadic op: one 2-D block, a row "
        "per input); used by mingrad_jit",
    )
    array_gradient: Callable[..., Any] | None = Field(
        default=None,
        description="gradient on numpy arrays: the inputs and the output in, one array per "
        "input out; used by mingrad_jit",
    )

    @model_validator(mode="after")
    def _consistent(self) -> OpSpec:
        if not self.label:
            object.__setattr__(self, "label", self.name)
        if self.operator is not None and self.variadic != (self.operator == "linear"):
            raise ValueError(
                "operator 'linear' needs a variadic op"
                if self.operator == "linear"
                else "a variadic op cannot be bound to an operator"
            )
        if self.operator not in (None, "linear") and (self.operator == "neg") != (self.arity == 1):
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
    """Plugins failed to load while MINGRAD_STRICT_PLUGINS is on: the ``failures``, and the
    ``ops`` (with their ``origins``) that did load."""

    def __init__(self, message: str, state: _State) -> None:
        super().__init__(message)
        self.failures, self.ops, self.origins = [*state.failures], {**state.ops}, {**state.origins}


class UnknownOpError(LookupError, AttributeError):
    """No registered op has that name."""


class PluginWarning(UserWarning):
    """A plugin failed to load and was skipped."""


hookimpl = pluggy.HookimplMarker(PROJECT)


class _State(NamedTuple):
    """A plugin manager and what its plugins registered: ops by name and operator, origins."""

    manager: pluggy.PluginManager
    ops: dict[str, OpSpec]
    operators: dict[str, OpSpec]
    origins: dict[str, Origin]
    failures: list[PluginFailure]


_ops: dict[str, OpSpec] = {}
_operators: dict[str, OpSpec] = {}  # Scalar's operators read it without taking the lock
_origins: dict[str, Origin] = {}
_failures: list[PluginFailure] = []
_lock = threading.RLock()  # held while plugins load and while the tables change
_methods: set[str] = set()  # ops installed as Scalar methods by _commit, removed by reset
_published: _State | None = None  # the tables above, once every plugin has loaded
_loading: _State | None = None  # the first load, while in progress
_ON, _OFF = ("1", "true", "yes", "on"), ("", "0", "false", "no", "off")
_LOADER = tuple(os.path.join(os.path.dirname(m.__file__), "") for m in (scalar, pluggy, importlib))


def get_plugin_manager() -> pluggy.PluginManager:
    """A new plugin manager that knows MinGrad's hooks and no plugin."""
    pm = pluggy.PluginManager(PROJECT)
    pm.add_hookspecs(hookspecs)
    return pm


def _current() -> _State:
    """The loaded state, loading every plugin on first use; other threads wait meanwhile, and
    the loading thread (a plugin looking an op up) sees what has loaded so far."""
    state = _published
    if state is None:
        with _lock:
            state = _loading or _published or _load_all()
    return state


def plugin_manager() -> pluggy.PluginManager:
    """The plugin manager holding every loaded plugin (loading them on first use)."""
    return _current().manager


def reset() -> None:
    """Forget every op and plugin; the next lookup scans the installed plugins again."""
    global _published
    with _lock:
        _published = None
        for table in (_ops, _operators, _origins, _failures):
            table.clear()
        for name in _methods:
            delattr(scalar.Scalar, name)
        _methods.clear()


def _load_all() -> _State:
    """Load the built-in ops, then the other plugins; publish them all at once, at the end."""
    global _loading, _published
    strict = _strict()
    state = _loading = _State(get_plugin_manager(), {}, {}, {}, [])
    try:
        for origin, load, module in _entry_points():
            _load(state, origin, load, module)
    finally:
        _loading = None
    if strict and state.failures:
        listing = "; ".join(f"{f.origin}: {f.error}" for f in state.failures)
        raise PluginError(
            f"{len(state.failures)} plugin(s) failed to load while MINGRAD_STRICT_PLUGINS is on: "
            f"{listing}",
            state,
        )
    _ops.update(state.ops)
    _origins.update(state.origins)
    _failures.extend(state.failures)
    _operators.update(state.operators)
    _published = _State(state.manager, _ops, _operators, _origins, _failures)
    return _published


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
    with _lock:
        failure = _load(state, origin, lambda: plugin, module)
    if failure is not None and _strict():
        raise PluginError(f"{origin} failed to load: {failure.error}", state)


def _load(
    state: _State, origin: Origin, load: Callable[[], object], module: str
) -> PluginFailure | None:
    """Add one plugin's ops to ``state``, all or none; a failure is recorded (and warned of)."""
    pm, plugin, staged = state.manager, None, {}

    def register(spec: OpSpec | None = None, /, **fields: Any) -> None:
        spec = _as_spec(spec, fields, origin)
        _check_free(spec, origin, state, staged)
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
    _commit(staged, origin, state)
    return None


def _raised_at(exc: BaseException, module: str) -> tuple[str, int]:
    """Where a plugin's error was raised: the innermost frame outside MinGrad and its loaders."""
    for frame in reversed(traceback.extract_tb(exc.__traceback__)):
        if not frame.filename.startswith((*_LOADER, "<frozen ")):
            return frame.filename, frame.lineno or 1
    return getattr(sys.modules.get(module), "__file__", None) or module, 1


def _as_spec(spec: object, fields: dict, origin: Origin) -> OpSpec:
    if spec is None:
        try:
            return OpSpec(**fields)
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(map(str, e['loc']))}: {e['msg']} (got {e['input']!r:.60})"
                if e["loc"]
                else e["msg"]
                for e in exc.errors()
            )
            raise OpRegistrationError(
                f"invalid op {fields.get('name', '?')!r} from {origin}: {problems}"
            ) from None
    if not isinstance(spec, OpSpec) or fields:
        raise OpRegistrationError(
            f"{origin} registered {spec!r:.60}; expected register(OpSpec(...)) "
            f"or register(name=..., arity=..., forward=..., ...)"
        )
    return spec


def _check_free(spec: OpSpec, origin: Origin, state: _State, staged: dict[str, OpSpec]) -> None:
    """Refuse ``spec`` if its name or operator is taken, or its name would hide another one."""
    from . import functional

    name = spec.name
    owner = state.origins.get(name) or (origin if name in staged else None)
    if owner is not None:
        raise OpRegistrationError(f"op {name!r} from {origin} is already registered by {owner}")
    if keyword.iskeyword(name) or keyword.issoftkeyword(name):
        hidden = "Python keyword"
    elif hasattr(scalar.Scalar, name) and name not in _methods:
        hidden = "Scalar attribute of that name"
    elif name in vars(functional):
        hidden = f"name mingrad_core.functional.{name}"
    else:
        hidden = ""
    if hidden:
        raise OpRegistrationError(
            f"op {name!r} from {origin} would hide the {hidden}; choose another name"
        )
    if spec.operator is not None:
        taken = state.operators.get(spec.operator) or next(
            (s for s in staged.values() if s.operator == spec.operator), None
        )
        if taken is not None:
            raise OpRegistrationError(
                f"op {name!r} from {origin} binds operator {spec.operator!r}, already bound to "
                f"op {taken.name!r} by {state.origins.get(taken.name, origin)}"
            )


def _commit(specs: dict[str, OpSpec], origin: Origin, state: _State) -> None:
    """Add checked ``specs``; operators last, since Scalar reads them without the lock."""
    state.ops.update(specs)
    state.origins.update(dict.fromkeys(specs, origin))
    state.operators.update({s.operator: s for s in specs.values() if s.operator is not None})
    for name, spec in specs.items():  # x.tanh() as a method: no failed lookup, no __getattr__
        setattr(scalar.Scalar, name, scalar.method(spec))
        _methods.add(name)


def register_op(spec: OpSpec | None = None, /, **fields: Any) -> OpSpec:
    """Register one op from a script: ``register_op(name="cube", arity=1, forward=..., ...)``."""
    origin = Origin(inspect.currentframe().f_back.f_globals.get("__name__", "?"))
    spec = _as_spec(spec, fields, origin)
    state = _current()
    with _lock:
        _check_free(spec, origin, state, {})
        _commit({spec.name: spec}, origin, state)
    return spec


def get_op(name: str) -> OpSpec:
    """The op registered under ``name``."""
    state = _current()
    try:
        return state.ops[name]
    except KeyError:
        failed = "".join(f"\n  {f.origin} failed to load: {f.error}" for f in state.failures)
        raise UnknownOpError(
            f"no op named {name!r}; registered ops: {', '.join(sorted(state.ops))}{failed}"
        ) from None


def bound_to(operator: str) -> OpSpec:
    """The op bound to a Python operator (``"+"``, ``"**"``, ``"neg"``, ...)."""
    state = _current()
    try:
        return state.operators[operator]
    except KeyError:
        raise TypeError(
            f"no registered op is bound to operator {operator!r}; "
            f"registered ops: {', '.join(sorted(state.ops)) or 'none'}"
        ) from None


def ops() -> dict[str, OpSpec]:
    """Every registered op by name."""
    return dict(_current().ops)


def origin_of(name: str) -> Origin | None:
    """Which plugin registered op ``name``."""
    return _current().origins.get(name)


def failures() -> list[PluginFailure]:
    """The plugins that failed to load, with the reason."""
    return list(_current().failures)
