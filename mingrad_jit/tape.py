"""A tape: a large deep, narrow trace replayed node by node, without generating code.

Generated code (``replay``) is fastest per node, but compiling it costs time and memory per
line: a 300,000-node chain took gigabytes and minutes to plan and compile. A tape is the
graph as flat arrays (each node's op and input slots, in topological order) that a Python
loop walks over the ops' scalar forms, so its memory is a few dozen bytes per node and it
starts at once. ``Tape.of`` makes one for a trace that is large and deep (few nodes per
level); any other trace is planned by levels (``plan``).

It computes what eager mode computes: forward results stored as floats (an int too large for
a float is ±inf; anything but a real number is an error naming the op); backward from a root
touches only the nodes that root depends on, gradients start at -0.0, a formula whose float
arithmetic raises is evaluated as eager mode does, an op that masks passes 0 where term ×
upstream is nan (``mingrad_core.masked``), and each parameter's total is added into its
``.grad`` unless that is None at the time (frozen).
"""

from __future__ import annotations

from array import array
from collections.abc import Callable

import numpy as np

from mingrad_core import (
    OpSpec,
    Scalar,
    get_op,
    gradient_terms,
    is_real,
    masked,
    to_float,
    toposort,
)

from .plan import BatchLeaf
from .trace import Trace

TAPE_NODES = 50_000  # at least this many computed nodes ...
TAPE_WIDTH = 4  # ... and fewer than this many per level on average, for "auto"


class Tape:
    """A trace as flat arrays: slot 0 unused, then parameters, argument leaves and constants,
    then the computed nodes in topological order (node ``j`` in slot ``first + j``).

    It has the attributes of a ``Plan`` that callers read: ``params``, ``outputs``,
    ``nodes``, ``levels``, ``groups`` (none) and ``folded`` (none)."""

    groups: tuple = ()
    folded = 0

    def __init__(
        self,
        params: list[Scalar],
        slot_of: np.ndarray,
        constants: list[float],
        specs: list[OpSpec],
        starts: array,
        edges: array,
        outputs: list[int],
        needs_grad: bytearray,
        levels: int,
    ) -> None:
        self.params, self.slot_of, self.constants = params, slot_of, constants
        self.specs, self.starts, self.edges = specs, starts, edges
        self.outputs, self.needs_grad, self.levels = outputs, needs_grad, levels
        self.param_start = 1
        self.slot_start = 1 + len(params)
        self.first = self.slot_start + len(slot_of) + len(constants)
        self.nodes = len(specs)
        self.size = self.first + self.nodes

    @staticmethod
    def of(trace: Trace, strategy: str) -> Tape | None:
        """The tape of ``trace`` if ``strategy`` calls for one: ``"tape"`` always, ``"code"``
        from ``TAPE_NODES`` computed nodes, ``"auto"`` from as many that are also deep (fewer
        than ``TAPE_WIDTH`` per level); else None (plan it by levels)."""
        if strategy == "levels":
            return None
        order = toposort(trace.roots)
        computed = [node for node in order if node.op is not None]
        if strategy != "tape" and len(computed) < TAPE_NODES:
            return None
        leaves = [node for node in order if node.op is None]
        if any(isinstance(node, BatchLeaf) for node in leaves):
            return None  # vmap's results are fed by its batched replay: plan it by levels
        slots, created = trace.slots, trace.created
        params = [n for n in leaves if id(n) not in created]
        fed = sorted((n for n in leaves if id(n) in slots), key=lambda n: slots[id(n)])
        constants = [n for n in leaves if id(n) in created and id(n) not in slots]
        slot: dict[Scalar, int] = {}
        for node in (*params, *fed, *constants, *computed):
            slot[node] = len(slot) + 1
        needs = bytearray(len(slot) + 1)
        needs[1 : 1 + len(params)] = b"\x01" * len(params)
        level = array("l", bytes(8 * (len(slot) + 1)))
        starts, edges = array("q", [0]), array("q")
        deepest = 0
        add = get_op("add")
        sums = bytearray(len(slot) + 1)  # an add, which a plan folds into its sum
        for node in computed:
            ins = [slot[p] for p in node.parents]
            out = slot[node]
            edges.extend(ins)
            starts.append(len(edges))
            needs[out] = any(needs[i] for i in ins)
            if node.op is add:  # a sum() of many terms is one n-ary sum, one level
                sums[out] = 1
                depth = max(level[ins[0]] + 1 - sums[ins[0]], level[ins[1]] + 1)
            else:
                depth = 1 + max(level[i] for i in ins)
            level[out] = depth
            deepest = max(deepest, depth)
        if strategy == "auto" and len(computed) >= TAPE_WIDTH * deepest:
            return None
        return Tape(
            params=params,
            slot_of=np.array([slots[id(n)] for n in fed], dtype=np.intp),
            constants=[n.data for n in constants],
            specs=[node.op for node in computed],
            starts=starts,
            edges=edges,
            outputs=[slot[root] for root in trace.roots],
            needs_grad=needs,
            levels=deepest,
        )


class TapeReplay:
    """Replays a ``Tape``: one Python step per node over the ops' scalar forms."""

    strategy = "tape"

    def __init__(self, tape: Tape) -> None:
        self.plan = tape
        self.vals: list[float] = [0.0] * tape.size
        start = tape.slot_start + len(tape.slot_of)
        self.vals[start : start + len(tape.constants)] = tape.constants

    def forward(self, values: np.ndarray) -> None:
        """Read the parameters, feed the arguments' numbers, compute every node."""
        tape, v = self.plan, self.vals
        v[tape.param_start : tape.slot_start] = [p.data for p in tape.params]
        fed = values[tape.slot_of].tolist()
        v[tape.slot_start : tape.slot_start + len(fed)] = fed
        starts, edges, out = tape.starts, tape.edges, tape.first
        a = 0
        for spec, b in zip(tape.specs, starts[1:]):
            if b - a == 1:
                r = spec.forward(v[edges[a]])
            elif b - a == 2:
                r = spec.forward(v[edges[a]], v[edges[a + 1]])
            else:
                r = spec.forward(*[v[i] for i in edges[a:b]])
            v[out] = r if r.__class__ is float else _stored(spec, r)
            out += 1
            a = b

    def values(self, slots: np.ndarray) -> list[float]:
        """The values at ``slots``, as Python floats."""
        return [self.vals[i] for i in slots.tolist()]

    def backward(self, root: int, seed: float) -> None:
        """Add d(seed * root)/d(p) into ``p.grad`` of every parameter ``root`` depends on."""
        tape, v = self.plan, self.vals
        starts, edges, needs, specs = tape.starts, tape.edges, tape.needs_grad, tape.specs
        g: list = [None] * (root + 1)  # None: not reached; slots above root are never reached
        g[root] = seed
        first = tape.first
        for j in range(root - first, -1, -1):
            upstream = g[first + j]
            if upstream is None:
                continue
            a, b = starts[j], starts[j + 1]
            ins = (
                (edges[a],)
                if b - a == 1
                else (edges[a], edges[a + 1])
                if b - a == 2
                else edges[a:b]
            )
            spec = specs[j]
            args = [v[i] for i in ins]
            args.append(v[first + j])
            try:
                terms = spec.gradient(*args)
            except ArithmeticError:
                terms = gradient_terms(spec, args[:-1], args[-1])
            if len(terms) != len(ins):
                raise ValueError(
                    f"the gradient of op {spec.name!r} returned {len(terms)} term(s) for "
                    f"{len(ins)} input(s)"
                )
            masks = spec.masks  # relu, where, pow, pick: 0 * nan is 0 where they mask
            if masks:
                masks = terms if masks is True else spec.masks(*args)
            for k, (i, term) in enumerate(zip(ins, terms)):
                if needs[i]:
                    part = masked(masks[k], term, upstream) if masks else term * upstream
                    old = g[i]
                    g[i] = part if old is None else old + part
        params = tape.params
        for k, total in enumerate(g[tape.param_start : tape.slot_start]):
            p = params[k]
            if total is not None and p.grad is not None:
                p.grad += float(total)


def _stored(spec: OpSpec, value: object) -> float:
    """``value`` from ``spec``'s forward, stored as eager mode stores it."""
    if isinstance(value, Scalar) or not is_real(value):
        raise TypeError(
            f"op {spec.name!r} forward returned {type(value).__name__} {value!r:.80}; expected "
            "a real number"
        )
    return to_float(value)


def replay_of(plan: object, strategy: str, make: Callable) -> object:
    """A replay of ``plan``: a ``TapeReplay`` for a tape, else ``make(plan, strategy)``."""
    return TapeReplay(plan) if isinstance(plan, Tape) else make(plan, strategy)
