"""Guards: what a trace read from outside its arguments, checked before every replay.

A trace freezes the Python state it saw. As torch.compile guards a compiled frame, a trace keeps
what its function reads from outside: the globals it names and the closure cells it captures
(and those of the plain functions among them, followed); the attributes its code names on the
objects it captured or is bound to (``self.model``, ``model.alpha``: instance ``__dict__``,
``__slots__``, class attributes; a user module's globals); the code those objects run (their
classes' methods and properties the code names, their special methods such as ``__call__``,
followed as functions are); the items of captured lists, dicts and numpy arrays (one level);
and the op table. Numbers are compared by value (-0.0 is not 0.0; nan is nan), everything else
by identity (rebinding a global model, as re-running a notebook cell does, is a change;
training its parameters in place is not). A replay whose guards fail traces again;
``Guards.changed`` says which variable changed, for warnings and errors.

What is not guarded: attributes of objects held by a captured object (``model.inner.w``,
``model.layers[0].w``), items of nested containers, the code of the library's classes and
functions (mingrad's, the standard library's, installed packages'), and anything a function
reads through a name computed at run time (``getattr(self, name)``).
"""

from __future__ import annotations

import dis
import functools
import math
import operator
import sys
import sysconfig
import types
from collections.abc import Callable, Iterator

import numpy as np

from mingrad_core.registry import tables

_ABSENT = object()
# Functions of these packages are the machinery: their globals are not the user's state.
_MACHINERY = ("mingrad_core", "mingrad_jit", "mingrad_ops", "mingrad_nn", "numpy")
_GLOBAL_LOADS = frozenset({"LOAD_GLOBAL", "LOAD_NAME"})
# Functions from here (the standard library, installed packages) are not followed either.
_LIBRARIES = tuple({sysconfig.get_path(name) for name in ("stdlib", "purelib", "platlib")})


def _same(a: object, b: object) -> bool:
    """Whether ``b`` still is ``a``: numbers of one type by value, as arithmetic tells them apart
    (-0.0 is not 0.0, since 1 / x differs; nan is nan), anything else by identity."""
    if a is b:
        return True
    kind = type(a)
    if type(b) is not kind:
        return False
    if isinstance(a, float):
        same_sign = math.copysign(1.0, a) == math.copysign(1.0, b)
        return (a == b and same_sign) or (math.isnan(a) and math.isnan(b))
    if kind is complex:
        return _same(a.real, b.real) and _same(a.imag, b.imag)
    if kind is tuple:  # a snapshot: the same items
        return len(a) == len(b) and (all(map(operator.is_, a, b)) or all(map(_same, a, b)))
    return kind in (int, bool, str, bytes) and a == b


def _items(container: list | dict | np.ndarray) -> tuple:
    """A snapshot of a container's items: a list's or a dict's keys and values (compared as
    guards compare), an array's shape, type and bytes."""
    if isinstance(container, np.ndarray):
        return container.shape, container.dtype.str, container.tobytes()
    if isinstance(container, dict):
        return tuple(container), tuple(container.values())
    return tuple(container)


def _op_table() -> tuple:
    """The registered ops: one registered anew (``replace=True``, a notebook cell run again) is
    another object, and a replay must not run the old one's forms."""
    return tuple(tables().ops.values())


def _cell_value(cell: types.CellType) -> object:
    try:
        return cell.cell_contents
    except ValueError:  # an empty cell
        return _ABSENT


class Guards:
    """The outside state one trace read, as ``(description, read, expected)`` entries."""

    __slots__ = ("_entries",)

    def __init__(self, entries: list[tuple[str, Callable[[], object], object]]) -> None:
        self._entries = entries

    def __len__(self) -> int:
        return len(self._entries)

    def changed(self) -> str | None:
        """The first guarded variable whose value changed, described; ``None`` if none."""
        for what, read, expected in self._entries:
            value = read()
            if value is not expected and not _same(expected, value):
                return what
        return None

    def settle(self) -> None:
        """Take the containers' items as the trace left them: a list the function appends to
        while traced (a log) is not a change on every call. (Replays do not append.)"""
        self._entries = [
            (what, read, read() if getattr(read, "func", None) is _items else expected)
            for what, read, expected in self._entries
        ]

    def names(self) -> list[str]:
        """What is guarded, described (``global 'model'``, ``self.alpha``, ...)."""
        return [what for what, _, _ in self._entries]


def _codes(code: types.CodeType) -> Iterator[types.CodeType]:
    """``code`` and the code objects nested in it (comprehensions, lambdas, inner functions)."""
    yield code
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            yield from _codes(const)


def _is_machinery(fn: types.FunctionType) -> bool:
    return fn.__globals__.get("__name__", "").startswith(_MACHINERY) or (
        fn.__code__.co_filename.startswith(_LIBRARIES)
    )


def collect(fn: Callable) -> Guards:
    """The guards of a trace of ``fn``: read now, before the trace runs."""
    entries: list[tuple[str, Callable[[], object], object]] = [
        ("the registered ops (one registered anew)", _op_table, _op_table())
    ]
    seen: set[int] = set()

    def add(what: str, read: Callable[[], object], value: object) -> None:
        entries.append((what, read, value))
        if isinstance(value, (list, dict, np.ndarray)):  # its items, shallowly
            entries.append((f"an item of {what}", functools.partial(_items, value), _items(value)))

    captured: list[tuple[str, object]] = []  # (how it is named, object) to guard attributes of
    attributes: set[str] = set()  # every name the followed code uses (attribute reads among them)

    def follow(obj: object, label: str) -> None:
        if id(obj) in seen:
            return
        seen.add(id(obj))
        if isinstance(obj, functools.partial):
            follow(obj.func, label)
            for i, arg in enumerate(obj.args):
                captured.append(("self" if i == 0 else f"{label} argument {i + 1}", arg))
            return
        inner = getattr(obj, "fn", None)  # a jitted function called from this one
        if inner is not None and type(obj).__module__.startswith("mingrad_jit"):
            follow(inner, label)
            return
        if isinstance(obj, types.MethodType):
            captured.append(("self", obj.__self__))
            follow(obj.__func__, label)
            return
        if not isinstance(obj, types.FunctionType) or _is_machinery(obj):
            captured.append((label, obj))
            return
        function(obj)

    def function(fn: types.FunctionType) -> None:
        namespace = fn.__globals__
        module = namespace.get("__name__", "?")
        loads: set[str] = set()
        for code in _codes(fn.__code__):
            attributes.update(code.co_names)
            loads.update(i.argval for i in dis.get_instructions(code) if i.opname in _GLOBAL_LOADS)
        for name in sorted(loads):
            value = namespace.get(name, _ABSENT)
            add(
                f"global {name!r} of {module}",
                functools.partial(namespace.get, name, _ABSENT),
                value,
            )
            if value is not _ABSENT:
                follow(value, f"global {name!r}")
        for name, cell in zip(fn.__code__.co_freevars, fn.__closure__ or ()):
            value = _cell_value(cell)
            add(
                f"{name!r} (captured by {fn.__qualname__})",
                functools.partial(_cell_value, cell),
                value,
            )
            if value is not _ABSENT:
                follow(value, repr(name))

    def methods(label: str, obj: object) -> None:
        # The code reading obj's attributes runs: its class's methods and properties the code
        # names, its special methods (model(x) runs __call__), functions kept on it.
        state, owners = _dict_of(obj), _owners(obj)
        found = [(n, v) for n, v in (state or {}).items() if n in attributes]
        for klass in owners:
            found += [(n, v) for n, v in vars(klass).items() if n in attributes or _special(n)]
        for name, member in found:
            if isinstance(member, property):
                member = member.fget
            elif isinstance(member, (classmethod, staticmethod)):
                member = member.__func__
            if isinstance(member, types.FunctionType) or type(member).__module__.startswith(
                "mingrad_jit"
            ):
                follow(member, f"{_prefix(label)}.{name}")

    follow(fn, fn.__qualname__ if hasattr(fn, "__qualname__") else repr(fn))
    while True:  # following methods captures more objects and names more attributes
        followed = len(seen)
        for label, obj in list(captured):
            if _guarded(obj):
                methods(label, obj)
        if len(seen) == followed:
            break
    for label, obj in captured:
        if not _guarded(obj):
            continue
        state, owners = _dict_of(obj), _owners(obj)
        for name in sorted(attributes):
            if state is not None and name in state:
                read = functools.partial(state.get, name, _ABSENT)
            else:
                read = functools.partial(_lookup, obj, owners, name)
            value = read()
            if value is _ABSENT or type(value).__module__.startswith("mingrad_jit"):
                continue  # (a jitted method's cache)
            add(f"{_prefix(label)}.{name}", read, value)
    return Guards(entries)


def _prefix(label: str) -> str:
    return label if label == "self" else label.replace("global ", "").strip("'")


_OBJECT = frozenset(vars(object))


def _special(name: str) -> bool:
    """A special method Python calls without naming it in the code (``__call__``, ``__add__``)."""
    return name.startswith("__") and name.endswith("__") and name not in _OBJECT


@functools.cache
def _library(module: str) -> bool:
    """Whether a module is the machinery, the standard library's or an installed package's."""
    if module.startswith(_MACHINERY) or module in sys.builtin_module_names:
        return True
    file = getattr(sys.modules.get(module), "__file__", None)  # none in a notebook's __main__
    return bool(file) and file.startswith(_LIBRARIES)


def _guarded(obj: object) -> bool:
    """Whether the attributes of a captured object are guarded (and its methods followed)."""
    if isinstance(obj, (types.FunctionType, types.BuiltinFunctionType, types.MethodType)):
        return False
    if isinstance(obj, types.ModuleType):
        return not _library(obj.__name__)
    return not type(obj).__module__.startswith(("mingrad_core", "mingrad_jit"))  # Scalars


def _dict_of(obj: object) -> dict | None:
    """An instance's or a module's own ``__dict__`` (not a class's), without ``__getattr__``."""
    if isinstance(obj, type):
        return None
    try:
        state = object.__getattribute__(obj, "__dict__")
    except AttributeError:
        return None
    return state if isinstance(state, dict) else None


def _owners(obj: object) -> tuple[type, ...]:
    """The classes an attribute of ``obj`` is looked up in: its class's (or, for a class, its
    own) method resolution order, less the library's and builtins' classes."""
    mro = obj.__mro__ if isinstance(obj, type) else type(obj).__mro__
    return tuple(klass for klass in mro if not _library(klass.__module__))


def _lookup(obj: object, owners: tuple[type, ...], name: str) -> object:
    """``obj.name`` as Python finds it, without running a property or ``__getattr__``: the
    instance's ``__dict__``, else the first of ``owners`` that has it (a slot's value)."""
    state = _dict_of(obj)
    if state is not None and name in state:
        return state[name]
    for klass in owners:
        member = vars(klass).get(name, _ABSENT)
        if member is _ABSENT:
            continue
        if isinstance(member, types.MemberDescriptorType) and not isinstance(obj, type):
            try:  # a __slots__ attribute
                return member.__get__(obj, type(obj))
            except AttributeError:  # not set
                return _ABSENT
        return member
    return _ABSENT
