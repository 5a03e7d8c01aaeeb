"""Replaying a plan: forward and backward over preallocated buffers, by levels or as code.

``LevelReplay`` runs one numpy call per group, gathering inputs by index arrays and writing
each group's outputs to its contiguous range; backward walks the groups in reverse, scattering
``term * upstream`` into the inputs' gradients (``bincount`` where an input repeats).
``StraightReplay`` is generated straight-line Python over the ops' scalar forms, for deep,
narrow graphs, where a numpy call per handful of nodes costs more than the nodes themselves.
``make_replay`` picks one by the plan's shape.

Backward from a root touches exactly the nodes that root depends on, like eager backward: a
gradient term is never skipped for being multiplied by zero, and a node the root does not
reach passes nothing on (so ``0 * inf`` is ``nan`` where eager makes it so, and only there).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from .arrays import array_forms
from .plan import Group, Plan

# Rough costs on CPython + numpy, to choose a strategy: a numpy call, a gathered element, one
# node of generated code and one of its inputs (forward and backward together).
CALL_SECONDS = 4e-6
ELEMENT_SECONDS = 1e-8
CODE_NODE_SECONDS = 6e-7
CODE_EDGE_SECONDS = 1.5e-7


def _view(buf: np.ndarray, idx: np.ndarray) -> np.ndarray | None:
    """A strided view of ``buf`` at exactly the slots ``idx`` (1-D or 2-D), if they are an
    affine grid of distinct slots (a range, a matrix's rows or columns); else None."""
    if idx.size == 0 or idx.ndim > 2:
        return None
    first = int(idx.flat[0])
    steps = []
    for axis, n in enumerate(idx.shape):
        at = [0] * idx.ndim
        at[axis] = 1 if n > 1 else 0
        steps.append(int(idx[tuple(at)]) - first)
    if any(step < 0 for step in steps):
        return None
    grid = first + sum(
        np.arange(n).reshape([-1 if a == axis else 1 for a in range(idx.ndim)]) * step
        for axis, (n, step) in enumerate(zip(idx.shape, steps))
    )
    if not np.array_equal(grid, idx):
        return None
    if idx.ndim == 1:
        distinct = idx.size == 1 or steps[0] > 0
    else:  # rows after rows (row-major) or columns after columns: no slot twice
        (rows, cols), (down, across) = idx.shape, steps
        row_major = (cols == 1 or across > 0) and (rows == 1 or down >= cols * max(across, 1))
        col_major = (rows == 1 or down > 0) and (cols == 1 or across >= rows * max(down, 1))
        distinct = row_major or col_major
    if not distinct:
        return None
    itemsize = buf.itemsize
    return np.lib.stride_tricks.as_strided(
        buf[first:], shape=idx.shape, strides=[step * itemsize for step in steps]
    )


class _Scatter:
    """Adds contributions into ``grads`` at fixed slots, which may repeat."""

    def __init__(self, slots: np.ndarray) -> None:
        self.slots = slots.ravel()
        unique, inverse = np.unique(self.slots, return_inverse=True)
        self.repeats = len(unique) != len(self.slots)
        self.unique, self.inverse = unique, inverse.ravel()

    def add(self, grads: np.ndarray, contributions: np.ndarray) -> None:
        if self.repeats:
            grads[self.unique] += np.bincount(
                self.inverse, contributions.ravel(), minlength=len(self.unique)
            )
        else:
            grads[self.slots] += contributions.ravel()


class _Target:
    """Where one input's (rows of) contributions go: a strided view, or a scatter."""

    def __init__(self, grads: np.ndarray, idx: np.ndarray) -> None:
        self.view = _view(grads, idx)
        self.scatter = None if self.view is not None else _Scatter(idx)
        self.grads = grads

    def add(self, contributions: np.ndarray) -> None:
        if self.view is not None:
            self.view += contributions
        else:
            self.scatter.add(self.grads, contributions)


class _Source:
    """Where one input's values come from: a strided view, or a gather into a buffer."""

    def __init__(self, vals: np.ndarray, idx: np.ndarray) -> None:
        self.view = _view(vals, idx)
        self.idx = idx
        self.buffer = np.empty(idx.shape) if self.view is None else None
        self.vals = vals

    def read(self) -> np.ndarray:
        if self.view is not None:
            return self.view
        np.take(self.vals, self.idx, out=self.buffer)
        return self.buffer


def _check_terms(terms, count: int, group: Group) -> None:
    if len(terms) != count:
        name = group.spec.name if group.spec is not None else "add"
        raise ValueError(
            f"the array gradient of op {name!r} returned {len(terms)} term(s) for {count} input(s)"
        )


class _Step:
    """One group's forward and backward, closed over its buffers."""

    def __init__(self, group: Group, vals: np.ndarray, grads: np.ndarray) -> None:
        self.group, self.vals, self.grads = group, vals, grads
        self.out = vals[group.start : group.stop]
        self.g = grads[group.start : group.stop]
        self.rows = group.need_rows
        if group.spec is not None:
            self.array_forward, self.array_gradient = array_forms(group.spec)
        self.X: list[np.ndarray] = []
        if group.kind != "matmul":  # a matmul step builds these only if it ever needs them
            self._node_by_node()

    def _node_by_node(self) -> None:
        """The buffers and index arrays that run the group node by node (one column each)."""
        group, vals, grads = self.group, self.vals, self.grads
        if group.kind == "op":
            self.sources = [_Source(vals, row) for row in group.idx]
            self.targets = [_Target(grads, group.idx[r]) for r in self.rows]
        else:
            self.sources = [_Source(vals, group.idx)]
            self.targets = [_Target(grads, group.idx[self.rows])]
        self.C = np.empty((len(self.rows), group.stop - group.start))

    def gather(self) -> list[np.ndarray]:
        self.X = [source.read() for source in self.sources]
        return self.X

    def forward(self) -> None:
        self.out[:] = self.array_forward(*self.gather())

    def terms(self) -> list:
        """Each input row's gradient term (an array or a number), all rows."""
        if self.group.kind == "op":
            terms = self.array_gradient(*self.X, self.out)
        else:
            terms = self.array_gradient(self.X[0], self.out)
        _check_terms(terms, self.group.idx.shape[0], self.group)
        return terms

    def backward(self, mask: np.ndarray | None) -> None:
        terms = self.terms()
        C, g = self.C, self.g
        for j, r in enumerate(self.rows):
            np.multiply(terms[r], g, out=C[j])
        if mask is not None:
            C[:, ~mask] = 0.0
        if self.group.kind == "op":
            for j, target in enumerate(self.targets):
                target.add(C[j])
        else:
            self.targets[0].add(C)


class _SumStep(_Step):
    """A folded ``add`` chain: rows added in order, left to right, as eager adds them."""

    def __init__(self, group: Group, vals: np.ndarray, grads: np.ndarray) -> None:
        super().__init__(group, vals, grads)
        self.running = np.empty(group.idx.shape)

    def forward(self) -> None:
        (X,) = self.gather()
        if X.shape[0] == 2:
            np.add(X[0], X[1], out=self.out)
        else:
            np.cumsum(X, axis=0, out=self.running)
            self.out[:] = self.running[-1]

    def backward(self, mask: np.ndarray | None) -> None:
        self.C[:] = self.g  # d(sum)/d(term) = 1.0, and 1.0 * g == g
        if mask is not None:
            self.C[:, ~mask] = 0.0
        self.targets[0].add(self.C)


class _MatmulStep(_Step):
    """``linear`` over an S x U grid: out[s, u] = b[u] + x[s] . w[u]."""

    def __init__(self, group: Group, vals: np.ndarray, grads: np.ndarray) -> None:
        super().__init__(group, vals, grads)
        S, U = group.grid
        k = group.idx.shape[0]
        n = (k - 1) // 2
        cube = group.idx.reshape(k, S, U)
        self.parts = {
            "b": cube[0, 0, :],
            "w": np.ascontiguousarray(cube[1 : n + 1, 0, :].T),  # (U, n)
            "x": np.ascontiguousarray(cube[n + 1 :, :, 0].T),  # (S, n)
        }
        self.B, self.W, self.Xs = (_Source(vals, self.parts[p]) for p in "bwx")
        self.Y = self.out.reshape(S, U)
        self.G = self.g.reshape(S, U)
        self.targets_by_part: list[tuple[str, _Target]] = []

    def bind_needs(self, needs_grad: np.ndarray) -> None:
        """Which of bias, weights, inputs take gradients (others are skipped in backward)."""
        self.targets_by_part = [
            (part, _Target(self.grads, idx))
            for part, idx in self.parts.items()
            if needs_grad[idx].any()
        ]

    def forward(self) -> None:
        W, Xs = self.W.read(), self.Xs.read()
        np.matmul(Xs, W.T, out=self.Y)
        self.Y += self.B.read()

    def backward(self, mask: np.ndarray | None) -> None:
        if mask is not None:  # part of the grid is unreached: node by node, as a block
            if not hasattr(self, "sources"):
                self._node_by_node()
            self.gather()
            _Step.backward(self, mask)
            return
        G = self.G
        for part, target in self.targets_by_part:
            if part == "b":
                target.add(G.sum(axis=0))
            elif part == "w":
                target.add(G.T @ self.Xs.read())
            else:
                target.add(G @ self.W.read())


class LevelReplay:
    """Replays a plan one numpy call per group (see the module docstring)."""

    strategy = "levels"

    def __init__(self, plan: Plan) -> None:
        self.plan = plan
        self.vals = np.zeros(plan.size)
        self.grads = np.zeros(plan.size)
        for slot, value in plan.constants.items():
            self.vals[slot] = value
        self.steps: list[_Step] = []
        for group in plan.groups:
            kind = {"sum": _SumStep, "matmul": _MatmulStep}.get(group.kind, _Step)
            step = kind(group, self.vals, self.grads)
            if isinstance(step, _MatmulStep):
                step.bind_needs(plan.needs_grad)
            self.steps.append(step)
        self._reach: dict[int, tuple[list, tuple]] = {}
        n = len(plan.params)
        self._param_vals = self.vals[plan.param_start : plan.param_start + n]
        self._slot_vals = self.vals[plan.slot_start : plan.slot_start + len(plan.slot_of)]
        self._param_grads = self.grads[plan.param_start : plan.param_start + n]

    def forward(self, values: np.ndarray) -> None:
        """Read the parameters, feed the arguments' numbers, compute every node."""
        self._param_vals[:] = [p._data for p in self.plan.params]
        np.take(values, self.plan.slot_of, out=self._slot_vals)
        for step in self.steps:
            step.forward()

    def value(self, slot: int) -> float:
        return float(self.vals[slot])

    def backward(self, root: int, seed: float) -> None:
        """Add d(seed * root)/d(p) into ``p.grad`` of every parameter ``root`` depends on."""
        masks, params = self._reached(root)
        grads = self.grads
        grads.fill(0.0)
        grads[root] += seed
        for step, mask in zip(reversed(self.steps), masks):
            if mask is False or not len(step.rows):
                continue
            step.backward(mask)
        chosen, where = params
        for p, g in zip(chosen, self._param_grads[where].tolist()):
            p.grad += g

    def _reached(self, root: int) -> tuple[list, tuple]:
        """Per step (in reverse): None (all reached), False (none) or a mask; and the
        parameters reached that take gradients, with where their gradients are."""
        cached = self._reach.get(root)
        if cached is None:
            reached = self.plan.reach(root)
            masks: list = []
            for step in reversed(self.steps):
                m = reached[step.group.start : step.group.stop]
                masks.append(None if m.all() else (m.copy() if m.any() else False))
            start = self.plan.param_start
            sel = reached[start : start + len(self.plan.params)]
            sel &= self.plan.needs_grad[start : start + len(self.plan.params)]
            where = np.flatnonzero(sel)
            chosen = [self.plan.params[i] for i in where.tolist()]
            if len(where) == len(sel):
                where = slice(None)
            cached = self._reach[root] = (masks, (chosen, where))
        return cached


class StraightReplay:
    """Replays a plan as generated straight-line Python over the ops' scalar forms."""

    strategy = "code"

    def __init__(self, plan: Plan) -> None:
        self.plan = plan
        self.vals: list[float] = [0.0] * plan.size
        for slot, value in plan.constants.items():
            self.vals[slot] = value
        self.namespace: dict[str, object] = {}
        lines = ["def forward(v):"]
        self._ops: list[tuple[int, object, tuple[int, ...]]] = []
        for group in plan.groups:
            spec = group.spec
            for j in range(group.stop - group.start):
                out = group.start + j
                ins = tuple(int(i) for i in group.idx[:, j])
                self._ops.append((out, spec, ins))
                args = ", ".join(f"v[{i}]" for i in ins)
                if spec is None:
                    lines.append(f"    v[{out}] = {' + '.join(f'v[{i}]' for i in ins)}")
                else:
                    name = self._name(spec.forward, f"f_{spec.name}")
                    lines.append(f"    v[{out}] = {name}({args})")
        if len(lines) == 1:
            lines.append("    pass")
        exec(compile("\n".join(lines), "<mingrad_jit forward>", "exec"), self.namespace)
        self._forward: Callable = self.namespace["forward"]
        self._backward: dict[int, Callable] = {}

    def _name(self, fn: object, name: str) -> str:
        self.namespace.setdefault(name, fn)
        return name

    def forward(self, values: np.ndarray) -> None:
        """Read the parameters, feed the arguments' numbers, compute every node."""
        v = self.vals
        start = self.plan.param_start
        v[start : start + len(self.plan.params)] = [p._data for p in self.plan.params]
        start = self.plan.slot_start
        v[start : start + len(self.plan.slot_of)] = values[self.plan.slot_of].tolist()
        self._forward(v)

    def value(self, slot: int) -> float:
        return self.vals[slot]

    def backward(self, root: int, seed: float) -> None:
        """Add d(seed * root)/d(p) into ``p.grad`` of every parameter ``root`` depends on."""
        fn = self._backward.get(root)
        if fn is None:
            fn = self._backward[root] = self._generate_backward(root)
        grads = fn(self.vals, seed)
        for p, g in grads:
            p.grad += g

    def _generate_backward(self, root: int) -> Callable:
        plan = self.plan
        reached = plan.reach(root)
        needs = plan.needs_grad
        lines = ["def backward(v, seed):", f"    g{root} = seed"]
        have = {root}
        for out, spec, ins in reversed(self._ops):
            if out not in have or not reached[out]:
                continue
            if spec is None:
                terms = ["1.0"] * len(ins)
            else:
                name = self._name(spec.gradient, f"d_{spec.name}")
                args = ", ".join(f"v[{i}]" for i in (*ins, out))
                lines.append(f"    t = {name}({args})")
                lines.append(f"    if len(t) != {len(ins)}: raise _bad_terms({spec.name!r}, t)")
                terms = [f"t[{k}]" for k in range(len(ins))]
            for k, i in enumerate(ins):
                if not needs[i]:
                    continue
                term = f"g{out}" if terms[k] == "1.0" else f"{terms[k]} * g{out}"
                if i in have:
                    lines.append(f"    g{i} = g{i} + {term}")
                else:
                    lines.append(f"    g{i} = {term}")
                    have.add(i)
        start = plan.param_start
        pairs = [
            f"(P[{i}], g{start + i})"
            for i, p in enumerate(plan.params)
            if start + i in have and p.grad is not None
        ]
        lines.append(f"    return [{', '.join(pairs)}]")
        namespace = {**self.namespace, "P": plan.params, "_bad_terms": _bad_terms}
        exec(compile("\n".join(lines), "<mingrad_jit backward>", "exec"), namespace)
        return namespace["backward"]


def _bad_terms(name: str, terms) -> ValueError:
    return ValueError(f"the gradient of op {name!r} returned {len(terms)} term(s)")


def estimate(plan: Plan) -> tuple[float, float]:
    """Estimated seconds per step (forward and backward) by levels and as code."""
    calls = 3 * len(plan.groups)
    elements = 0
    for g in plan.groups:
        if g.kind == "matmul":  # gathers the weight and input matrices once, not per node
            S, U = g.grid
            n = (g.idx.shape[0] - 1) // 2
            elements += 3 * (S * n + U * (n + 1) + S * U)
        else:
            elements += 3 * g.idx.size
    edges = sum(g.idx.size for g in plan.groups)
    by_levels = calls * CALL_SECONDS + elements * ELEMENT_SECONDS
    return by_levels, plan.nodes * CODE_NODE_SECONDS + edges * CODE_EDGE_SECONDS


def make_replay(plan: Plan, strategy: str = "auto") -> LevelReplay | StraightReplay:
    """The replay for ``plan``: ``"levels"``, ``"code"``, or ``"auto"`` (by estimated time)."""
    if strategy == "auto":
        by_levels, as_code = estimate(plan)
        strategy = "levels" if by_levels <= as_code else "code"
    if strategy == "levels":
        return LevelReplay(plan)
    if strategy == "code":
        return StraightReplay(plan)
    raise ValueError(f"strategy is 'auto', 'levels' or 'code'; got {strategy!r}")
