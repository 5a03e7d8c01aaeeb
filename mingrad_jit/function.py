"""``jit``: a function's traces cached by argument structure, and the results of a replay."""

from __future__ import annotations

import functools
import gc
import operator
import threading
import time
import warnings
import weakref
from collections import OrderedDict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np

import mingrad_jit as _package
from mingrad_core import Scalar, is_real, to_float

from .guards import Guards, collect
from .params import Parameters
from .plan import Plan, build
from .replay import make_replay
from .tape import Tape, replay_of
from .trace import (
    JitArgumentError,
    TracedStateError,
    Tracer,
    flatten_arguments,
    kept,
    remake,
)

_tracing = threading.RLock()


class StaleResultError(RuntimeError):
    """``backward()`` on a result whose replay was overwritten by a later call."""


@dataclass
class TraceInfo:
    """One cached trace: its size and shape, the chosen strategy, and what it cost once."""

    key: tuple
    nodes: int
    groups: int
    levels: int
    folded: int
    strategy: str
    trace_seconds: float
    plan_seconds: float


class _Run:
    """One thread's replay of a trace (its own buffers), and how many calls have used it."""

    __slots__ = ("replay", "calls", "params")

    def __init__(self, replay) -> None:
        self.replay, self.calls, self.params = replay, 0, Parameters(replay.plan.params)


class _Entry:
    """One cached trace: its plan, the returned structure, and a replay per thread.

    Each thread replays into buffers of its own, so calls from several threads at once never
    mix their values (a thread's first call writes out and compiles the plan's code again).
    """

    __slots__ = ("plan", "strategy", "outputs", "slots", "info", "guards", "_runs")

    def __init__(
        self, plan: Plan | Tape, replay, outputs: Any, info: TraceInfo, guards: Guards
    ) -> None:
        self.plan, self.strategy, self.outputs, self.info = plan, replay.strategy, outputs, info
        self.guards = guards
        self.slots = np.array(plan.outputs, dtype=np.intp)  # the roots' slots, to read them
        self._runs = threading.local()
        self._runs.run = _Run(replay)

    def run(self) -> _Run:
        """The calling thread's replay."""
        run = getattr(self._runs, "run", None)
        if run is None:
            run = self._runs.run = _Run(replay_of(self.plan, self.strategy, make_replay))
        return run


class Result:
    """A Scalar computed by a replay: its value, and ``backward()`` through the trace.

    ``backward()`` adds into the ``.grad`` of every parameter this result depends on, exactly
    as eager ``backward()`` does on leaves. Call it before the thread that made this result
    calls the jitted function again with arguments of the same structure: that call reuses
    (and overwrites) the thread's buffers.
    """

    __slots__ = ("data", "_run", "_slot", "_call")

    def __init__(self, data: float, run: _Run, slot: int) -> None:
        self.data = data
        self._run, self._slot, self._call = run, slot, run.calls

    def backward(self, gradient: float = 1.0) -> None:
        """Backpropagate from this result into the parameters' ``.grad`` (they accumulate).

        All or nothing: should it stop part-way (an exception, ``KeyboardInterrupt``), every
        ``.grad`` is left as it was."""
        run = self._run
        if run.calls != self._call:
            raise StaleResultError(
                "backward() on a result of an earlier call: the jitted function has been "
                "called again with arguments of the same structure since, which replaced "
                "this call's values; call backward() before the next call"
            )
        if isinstance(gradient, Scalar) or not is_real(gradient):
            raise TypeError(
                f"backward() takes a real number as the gradient; got {type(gradient).__name__} "
                f"{gradient!r:.60}"
            )
        restore = run.params.saved_grads()
        try:
            run.replay.backward(self._slot, to_float(gradient))
        except BaseException:
            restore()
            raise

    def __float__(self) -> float:
        return self.data

    def __format__(self, spec: str) -> str:
        return format(self.data, spec) if spec else str(self)

    def __repr__(self) -> str:
        return f"Result(data={self.data!r})"


def _compare(test: Callable[[float, float], bool]) -> Callable[[Result, object], bool]:
    """``<``, ``<=``, ``>``, ``>=`` on values, as Scalar's: with numbers, Results and Scalars."""

    def method(self: Result, other: object) -> bool:
        if isinstance(other, (Result, Scalar)):
            return test(self.data, other.data)
        return test(self.data, to_float(other)) if is_real(other) else NotImplemented

    return method


Result.__lt__, Result.__le__, Result.__gt__, Result.__ge__ = map(
    _compare, (operator.lt, operator.le, operator.gt, operator.ge)
)


class JitFunction:
    """A function traced once per argument structure and replayed as array code.

    ``traces`` counts the calls that traced (a new structure: nesting and lengths; or a guard
    that failed: see ``mingrad_jit.guards``); ``replays`` the calls that reused a trace. The
    ``cache_size`` most recently used traces are kept. On a method, each instance gets a
    jitted function of its own, with ``self`` bound: its Scalars are parameters, not arguments.
    A copy of the instance (``copy.copy``, ``deepcopy``, ``pickle``) gets its own on first use.
    """

    def __init__(self, fn: Callable, strategy: str = "auto", cache_size: int | None = None) -> None:
        self._binds = "self"  # what the function is bound to, read as an attribute of a class
        if isinstance(fn, (staticmethod, classmethod)):  # @jit over @staticmethod/@classmethod
            self._binds, fn = type(fn).__name__, fn.__func__
        if not callable(fn):
            raise TypeError(f"jit() takes a function; got {type(fn).__name__} {fn!r}")
        if strategy not in ("auto", "levels", "code", "tape"):
            raise ValueError(f"strategy is 'auto', 'levels', 'code' or 'tape'; got {strategy!r}")
        if cache_size is not None and (type(cache_size) is not int or cache_size < 1):
            raise ValueError(
                f"cache_size is a whole number of traces, at least 1; got {cache_size!r}"
            )
        functools.update_wrapper(self, fn)
        self.fn = fn
        self._name = getattr(fn, "__qualname__", repr(fn))
        self.strategy = strategy
        self._chosen_size = cache_size  # None: the default size, and the default warning
        # The defaults are the package's: mingrad_jit.CACHE_SIZE = 64 counts from then on.
        self.cache_size = _package.CACHE_SIZE if cache_size is None else cache_size
        self._warn_at = _package.RETRACE_WARNING if cache_size is None else cache_size + 1
        self.traces = 0
        self.replays = 0
        self._counting = threading.Lock()
        self._cache: OrderedDict[tuple, _Entry] = OrderedDict()
        self._owner: object = None  # the instance (or class) a jitted method is bound to
        self._classes: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # classmethods
        self._warned = False

    @property
    def name(self) -> str:
        return self._name

    def __set_name__(self, owner: type, name: str) -> None:
        self._attribute = name

    def __get__(self, instance: object, owner: type | None = None) -> JitFunction:
        if self._binds == "staticmethod":
            return self
        # @classmethod over @jit hands the class over as the instance (Python 3.11, 3.12)
        if self._binds == "classmethod" or (
            isinstance(instance, type) and not hasattr(self, "_attribute")
        ):
            cls = instance if isinstance(instance, type) else owner or type(instance)
            bound = self._classes.get(cls)
            if bound is None:
                bound = self._classes[cls] = self._bound(cls)
            return bound
        if instance is None:
            return self
        try:  # kept on the instance: one cache per instance, and a copy's is not the original's
            state = vars(instance)
            bound = state.get(self._attribute)
        except (AttributeError, TypeError) as exc:  # no __dict__, or not set by a class body
            raise TypeError(
                f"jitted method {self.name}() keeps each instance's traces in the instance's "
                f"__dict__; {type(instance).__name__} instances have none (__slots__), or jit "
                "was not applied in the class body: jit a function of the instance instead"
            ) from exc
        if bound.__class__ is JitFunction and bound._owner is instance:
            return bound
        bound = state[self._attribute] = self._bound(instance)
        return bound

    def _bound(self, owner: object) -> JitFunction:
        """This function with ``owner`` (an instance, or a class) bound as its first argument."""
        bound = JitFunction(functools.partial(self.fn, owner), self.strategy, self._chosen_size)
        bound._name, bound._owner = self._name, owner
        return bound

    def __set__(self, instance: object, value: object) -> None:
        raise AttributeError(f"{self.name} is a jitted method; it cannot be assigned")

    def __reduce__(self) -> str | tuple:
        # A bound method's traces hold the instance's parameters: a copy or an unpickled
        # instance binds afresh on first use. A plain function pickles by its qualified name.
        if self._owner is not None:
            return (_unbound, ())
        return self.__qualname__

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if Tracer.active() is not None:  # called while tracing another function: inline it
            return self.fn(*args, **kwargs)
        if kwargs:
            raise JitArgumentError(
                f"jitted {self.name}() takes positional arguments only; got keyword "
                f"argument(s) {', '.join(sorted(kwargs))}"
            )
        key, values = flatten_arguments(args, self.name)
        entry = self._cache.get(key)
        if entry is None or entry.guards.changed() is not None:
            entry = self._traced(key, args, values)
        else:
            with self._counting:
                self.replays += 1
                if key in self._cache:
                    self._cache.move_to_end(key)
        run = entry.run()
        run.calls += 1  # first: a forward that raises part-way has still spoiled older results
        run.replay.forward(values)
        data = run.replay.values(entry.slots)
        # Many results (a batch's logits, say) would start dozens of collections of every
        # object alive, and none of them makes a cycle: one collection at most, afterwards.
        with _collector_paused(len(data) > 256):
            results = [Result(d, run, s) for d, s in zip(data, entry.plan.outputs)]
            return _fill(entry.outputs, results)

    def _traced(self, key: tuple, args: tuple, values: np.ndarray) -> _Entry:
        # One trace at a time in the process (values are watched process-wide); a thread that
        # waited here finds the trace another thread just made for the same structure.
        with _tracing:
            entry = self._cache.get(key)
            why = _why(self._cache, key, entry)
            traced = why is not None
            if traced:
                entry = self._trace(key, args, values)
        with self._counting:
            if traced:
                self._cache[key] = entry
                self._cache.move_to_end(key)
                while len(self._cache) > self.cache_size:
                    self._cache.popitem(last=False)
                self.traces += 1
                warn = self.traces >= self._warn_at and not self._warned and why
                self._warned = self._warned or bool(warn)
            else:
                self.replays += 1
                warn = ""
        if warn:
            warnings.warn(
                f"jitted {self.name}() has traced {self.traces} times; this time because "
                f"{warn}. Each trace runs the function eagerly and plans it again: keep the "
                "arguments' structure and the state it reads fixed between calls (cache_size="
                f"{self.cache_size} traces are kept).",
                RuntimeWarning,
                stacklevel=3,
            )
        return entry

    def _trace(self, key: tuple, args: tuple, values: np.ndarray) -> _Entry:
        # A function that changes the outside state it reads while tracing (a parameter made
        # on the first call) is traced once more, seeing that state as it now is.
        for _ in range(2):
            guards = collect(self.fn)
            entry, made = self._record(key, args, values, guards)
            guards.settle()
            changed = guards.changed()
            escaped = kept(made)
            if changed is None and not escaped:
                return entry
            del entry
            what = changed
            if escaped:  # the likelier cause: a Scalar kept in a list or attribute read
                what = (
                    f"{len(escaped)} Scalar(s) made while tracing (the first {escaped[0]!r}) are "
                    "kept outside the function"
                )
            del escaped
        raise TracedStateError(
            f"jitted {self.name}() changes state it reads from outside on every call: {what}. "
            "A replay cannot repeat that change. Make the state (parameters, say) before the "
            "first call, or keep it inside the function."
        )

    def _record(
        self, key: tuple, args: tuple, values: np.ndarray, guards: Guards
    ) -> tuple[_Entry, list]:
        # The cyclic garbage collector would scan every node of the growing graph again and
        # again, and nothing here makes cycles: pause it while recording and planning.
        with _collector_paused():
            start = time.perf_counter()
            recorded = Tracer(self.name).run(self.fn, args, values)
            middle = time.perf_counter()
            tape = Tape.of(recorded, self.strategy)
            plan = tape if tape is not None else build(recorded)
            replay = replay_of(plan, self.strategy, make_replay)
            end = time.perf_counter()
        info = TraceInfo(
            key=key,
            nodes=plan.nodes,
            groups=len(plan.groups),
            levels=plan.levels,
            folded=plan.folded,
            strategy=replay.strategy,
            trace_seconds=middle - start,
            plan_seconds=end - middle,
        )
        return _Entry(plan, replay, recorded.outputs, info, guards), recorded.made

    def info(self) -> list[TraceInfo]:
        """One ``TraceInfo`` per cached trace, least recently used first."""
        return [entry.info for entry in self._cache.values()]

    def clear(self) -> None:
        """Forget every trace (the next call traces again); the counts are kept."""
        self._cache.clear()


def _unbound() -> None:
    """What a jitted method's per-instance cache becomes in a copy: nothing, bound afresh."""
    return None


def _why(cache: OrderedDict, key: tuple, entry: _Entry | None) -> str | None:
    """Why a call with ``key`` must trace (``""``: the first trace), or None if ``entry`` holds."""
    if entry is not None:
        changed = entry.guards.changed()
        return None if changed is None else f"{changed} changed"
    if not cache:
        return ""
    last = next(reversed(cache))
    return _difference(last, key)


def _difference(old: tuple, new: tuple) -> str:
    """How the arguments' structure ``new`` differs from ``old``, in words."""
    if len(old) != len(new):
        return f"the number of arguments changed from {len(old)} to {len(new)}"
    for position, (a, b) in enumerate(zip(old, new), 1):
        if a == b:
            continue
        shapes = [x[1] if isinstance(x, tuple) and len(x) == 3 else None for x in (a, b)]
        if None not in shapes and shapes[0] != shapes[1]:
            return f"argument {position}'s shape changed from {shapes[0]} to {shapes[1]}"
        return f"argument {position}'s structure changed (nesting, lengths or container types)"
    return "a trace was dropped from the cache (cache_size) and is needed again"


@contextmanager
def _collector_paused(pause: bool = True) -> Iterator[None]:
    """Inside, the cyclic garbage collector does not run (if ``pause``); as it was after."""
    collecting = pause and gc.isenabled()
    if collecting:
        gc.disable()
    try:
        yield
    finally:
        if collecting:
            gc.enable()


def _fill(structure: Any, results: list[Result]) -> Any:
    if isinstance(structure, int):
        return results[structure]
    return remake(structure, [_fill(item, results) for item in structure])


def jit(
    fn: Callable | None = None, *, strategy: str = "auto", cache_size: int | None = None
) -> Any:
    """Trace ``fn`` once per argument structure and replay it as numpy code.

    Use as ``@jit`` or ``@jit(strategy="levels")``. ``strategy``: ``"levels"`` (a numpy call
    per group of same-op nodes of a level), ``"code"`` (generated straight-line Python, for
    deep, narrow graphs), ``"tape"`` (a loop over a flat tape of the graph, for very large
    deep ones, where generated code costs too much to compile; ``mingrad_jit.tape``) or
    ``"auto"`` (whichever the graph's shape and size make best).
    ``cache_size``: how many traces to keep (default ``CACHE_SIZE``, 32); the least recently
    used goes first. After ``RETRACE_WARNING`` (8) traces, a ``RuntimeWarning`` (once) names
    what changed; a ``cache_size`` you choose says how many variants you expect (one per name
    length, say), and the warning then waits until a trace has to be dropped.
    """
    if fn is None:
        return functools.partial(jit, strategy=strategy, cache_size=cache_size)
    return JitFunction(fn, strategy, cache_size)
