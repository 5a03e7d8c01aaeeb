"""The op table's rules: which names and operators are free, installing an op as a Scalar
method, replacing one, and looking ops up by name. The table itself is the engine's."""

from __future__ import annotations

import inspect
import keyword
import threading
import warnings
from typing import Any, NamedTuple

from . import engine
from .engine import Scalar, _binary, method
from .spec import OpRegistrationError, OpSpec, Origin, as_spec


class UnknownOpError(LookupError, AttributeError):
    """No registered op has that name."""


class Tables(NamedTuple):
    """Ops by name and by operator, their origins, and the plugins that failed to load."""

    ops: dict[str, OpSpec]
    operators: dict[str, OpSpec]
    origins: dict[str, Origin]
    failures: list


PUBLISHED = Tables(engine.ops, engine.operators, engine.origins, [])
lock = threading.RLock()  # held while plugins load and while the tables change
_methods: set[str] = set()  # ops installed as Scalar methods, removed by clear()
# The Scalar methods of each Python operator an op can be bound to.
OPERATOR_METHODS = {
    "+": ("__add__", "__radd__"),
    "-": ("__sub__", "__rsub__"),
    "*": ("__mul__", "__rmul__"),
    "/": ("__truediv__", "__rtruediv__"),
    "**": ("__pow__", "__rpow__"),
    "neg": ("__neg__",),
    "abs": ("__abs__",),
}


def tables() -> Tables:
    """The tables to read, once the plugins have loaded (the loading thread sees them grow)."""
    load = engine.load_ops
    return PUBLISHED if load is None else load()


def check_free(
    spec: OpSpec,
    origin: Origin,
    into: Tables,
    staged: dict,
    replacing: OpSpec | None = None,
    hint: str = "",
) -> None:
    """Refuse ``spec`` if its name or operator is taken, or its name would hide another one."""
    name = spec.name
    owner = into.origins.get(name) or (origin if name in staged else None)
    if owner is not None and replacing is None:
        raise OpRegistrationError(
            f"op {name!r} from {origin} is already registered by {owner}{hint}"
        )
    if keyword.iskeyword(name) or keyword.issoftkeyword(name):
        raise OpRegistrationError(
            f"op {name!r} from {origin} would hide the Python keyword; choose another name"
        )
    if hasattr(Scalar, name) and name not in _methods:
        raise OpRegistrationError(
            f"op {name!r} from {origin} would hide the Scalar attribute "
            "of that name; choose another name"
        )
    if spec.operator is not None:
        taken = into.operators.get(spec.operator) or next(
            (s for s in staged.values() if s.operator == spec.operator), None
        )
        if taken is not None and taken is not replacing:
            raise OpRegistrationError(
                f"op {name!r} from {origin} binds operator {spec.operator!r}, already bound to "
                f"op {taken.name!r} by {into.origins.get(taken.name, origin)}"
            )


def commit(specs: dict[str, OpSpec], origin: Origin, into: Tables) -> None:
    """Add checked ``specs``; operators last, since Scalar reads them without the lock."""
    into.ops.update(specs)
    into.origins.update(dict.fromkeys(specs, origin))
    into.operators.update({s.operator: s for s in specs.values() if s.operator is not None})
    for name, spec in specs.items():  # x.tanh() as a method: no failed lookup, no __getattr__
        setattr(Scalar, name, method(spec))
        _methods.add(name)
    if into is PUBLISHED:  # (plugins loading all at once publish their ops at the end)
        bind_operators()


def bind_operators() -> None:
    """Give each Python operator Scalar methods made for the op published for it (so that
    ``x + y`` needs no lookup), or, where none is, methods that look it up."""
    for symbol, names in OPERATOR_METHODS.items():
        op = PUBLISHED.operators.get(symbol)
        if len(names) == 1:
            setattr(Scalar, names[0], method(op, symbol))
        else:
            setattr(Scalar, names[0], _binary(op, symbol))
            setattr(Scalar, names[1], _binary(op, symbol, reflected=True))


def clear() -> None:
    """Empty the tables and remove the installed methods."""
    for table in PUBLISHED:
        table.clear()
    for name in _methods:
        delattr(Scalar, name)
    _methods.clear()
    bind_operators()


def register_op(spec: OpSpec | None = None, /, *, replace: bool = False, **fields: Any) -> OpSpec:
    """Register one op from a script: ``register_op(name="cube", arity=1, forward=..., ...)``.

    Registering a name again from the same module (re-running a notebook cell) replaces the
    op, with a warning; ``replace=True`` replaces an op registered elsewhere, silently.
    """
    origin = Origin(inspect.currentframe().f_back.f_globals.get("__name__", "?"))
    spec = as_spec(spec, fields, origin)
    into = tables()
    with lock:
        old = into.ops.get(spec.name)
        if old is not None and not replace and into.origins[spec.name] == origin:
            warnings.warn(
                f"op {spec.name!r} from {origin} replaces the op of that name it registered before",
                UserWarning,
                stacklevel=2,
            )
            replace = True
        hint = " (register_op(..., replace=True) replaces it)"
        check_free(spec, origin, into, {}, old if replace else None, hint)
        if old is not None and old.operator not in (None, spec.operator):
            del into.operators[old.operator]  # the op no longer binds it (commit rebinds)
        commit({spec.name: spec}, origin, into)
    return spec


def get_op(name: str) -> OpSpec:
    """The op registered under ``name``."""
    found = tables()
    try:
        return found.ops[name]
    except KeyError:
        failed = "".join(f"\n  {f.origin} failed to load: {f.error}" for f in found.failures)
        raise UnknownOpError(
            f"no op named {name!r}; registered ops: {', '.join(sorted(found.ops))}{failed}"
        ) from None


def ops() -> dict[str, OpSpec]:
    """Every registered op by name."""
    return dict(tables().ops)


def origin_of(name: str) -> Origin | None:
    """Which plugin registered op ``name``."""
    return tables().origins.get(name)
