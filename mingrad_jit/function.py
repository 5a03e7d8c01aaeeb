"""``jit``: a function's traces cached by argument structure, and the results of a replay."""

from __future__ import annotations

import functools
import gc
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from .plan import Plan, build
from .replay import make_replay
from .trace import JitArgumentError, Tracer, as_float, flatten_arguments, is_number, remake

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

    __slots__ = ("replay", "calls")

    def __init__(self, replay) -> None:
        self.replay, self.calls = replay, 0


class _Entry:
    """One cached trace: its plan, the returned structure, and a replay per thread.

    Each thread replays into buffers of its own, so calls from several threads at once never
    mix their values (a thread's first call writes out and compiles the plan's code again).
    """

    __slots__ = ("plan", "strategy", "outputs", "slots", "info", "_runs")

    def __init__(self, plan: Plan, replay, outputs: Any, info: TraceInfo) -> None:
        self.plan, self.strategy, self.outputs, self.info = plan, replay.strategy, outputs, info
        self.slots = np.array(plan.outputs, dtype=np.intp)  # the roots' slots, to read them
        self._runs = threading.local()
        self._runs.run = _Run(replay)

    def run(self) -> _Run:
        """The calling thread's replay."""
        run = getattr(self._runs, "run", None)
        if run is None:
            run = self._runs.run = _Run(make_replay(self.plan, self.strategy))
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
        """Backpropagate from this result into the parameters' ``.grad`` (they accumulate)."""
        run = self._run
        if run.calls != self._call:
            raise StaleResultError(
                "backward() on a result of an earlier call: the jitted function has been "
                "called again with arguments of the same structure since, which replaced "
                "this call's values; call backward() before the next call"
            )
        if not is_number(gradient):
            raise TypeError(
                f"backward() takes a real number as the gradient; got {type(gradient).__name__} "
                f"{gradient!r:.60}"
            )
        run.replay.backward(self._slot, as_float(gradient))

    def __float__(self) -> float:
        return self.data

    def __repr__(self) -> str:
        return f"Result(data={self.data!r})"


class JitFunction:
    """A function traced once per argument structure and replayed as array code.

    ``traces`` counts the calls that traced (a new structure: nesting and lengths);
    ``replays`` the calls that reused a trace. On a method, each instance gets a jitted
    function of its own, with ``self`` bound: its Scalars are parameters, not arguments.
    """

    def __init__(self, fn: Callable, strategy: str = "auto") -> None:
        if not callable(fn):
            raise TypeError(f"jit() takes a function; got {type(fn).__name__} {fn!r}")
        if strategy not in ("auto", "levels", "code"):
            raise ValueError(f"strategy is 'auto', 'levels' or 'code'; got {strategy!r}")
        functools.update_wrapper(self, fn)
        self.fn = fn
        self._name = getattr(fn, "__qualname__", repr(fn))
        self.strategy = strategy
        self.traces = 0
        self.replays = 0
        self._counting = threading.Lock()
        self._cache: dict[tuple, _Entry] = {}

    @property
    def name(self) -> str:
        return self._name

    def __set_name__(self, owner: type, name: str) -> None:
        self._attribute = name

    def __get__(self, instance: object, owner: type | None = None) -> JitFunction:
        if instance is None:
            return self
        bound = JitFunction(functools.partial(self.fn, instance), self.strategy)
        bound._name = self._name
        try:  # kept on the instance, where the next lookup finds it: one cache per instance
            vars(instance)[self._attribute] = bound
        except (AttributeError, TypeError) as exc:  # no __dict__, or not set by a class body
            raise TypeError(
                f"jitted method {self.name}() keeps each instance's traces in the instance's "
                f"__dict__; {type(instance).__name__} instances have none (__slots__), or jit "
                "was not applied in the class body: jit a function of the instance instead"
            ) from exc
        return bound

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
        if entry is None:
            entry = self._traced(key, args, values)
        else:
            with self._counting:
                self.replays += 1
        run = entry.run()
        run.calls += 1  # first: a forward that raises part-way has still spoiled older results
        run.replay.forward(values)
        data = run.replay.values(entry.slots)
        return _fill(entry.outputs, [Result(d, run, s) for d, s in zip(data, entry.plan.outputs)])

    def _traced(self, key: tuple, args: tuple, values: np.ndarray) -> _Entry:
        # One trace at a time in the process (values are watched process-wide); a thread that
        # waited here finds the trace another thread just made for the same structure.
        with _tracing:
            entry = self._cache.get(key)
            traced = entry is None
            if traced:
                entry = self._cache[key] = self._trace(key, args, values)
        with self._counting:
            if traced:
                self.traces += 1
            else:
                self.replays += 1
        return entry

    def _trace(self, key: tuple, args: tuple, values: np.ndarray) -> _Entry:
        # The cyclic garbage collector would scan every node of the growing graph again and
        # again, and nothing here makes cycles: pause it while recording and planning.
        collecting = gc.isenabled()
        gc.disable()
        try:
            start = time.perf_counter()
            recorded = Tracer(self.name).run(self.fn, args, values)
            middle = time.perf_counter()
            plan = build(recorded)
            replay = make_replay(plan, self.strategy)
            end = time.perf_counter()
        finally:
            if collecting:
                gc.enable()
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
        return _Entry(plan, replay, recorded.outputs, info)

    def info(self) -> list[TraceInfo]:
        """One ``TraceInfo`` per cached trace, in the order they were made."""
        return [entry.info for entry in self._cache.values()]

    def clear(self) -> None:
        """Forget every trace (the next call traces again); the counts are kept."""
        self._cache.clear()


def _fill(structure: Any, results: list[Result]) -> Any:
    if isinstance(structure, int):
        return results[structure]
    return remake(structure, [_fill(item, results) for item in structure])


def jit(fn: Callable | None = None, *, strategy: str = "auto") -> Any:
    """Trace ``fn`` once per argument structure and replay it as numpy code.

    Use as ``@jit`` or ``@jit(strategy="levels")``. ``strategy``: ``"levels"`` (a numpy call
    per group of same-op nodes of a level), ``"code"`` (generated straight-line Python, for
    deep, narrow graphs) or ``"auto"`` (whichever the graph's shape makes faster).
    """
    if fn is None:
        return functools.partial(jit, strategy=strategy)
    return JitFunction(fn, strategy)
