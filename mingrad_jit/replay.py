"""Replaying a plan: forward and backward over preallocated buffers, as generated code.

``LevelReplay`` writes a plan out once as Python source over numpy, and compiles it: a forward
that runs each group in a numpy call or two (its inputs read through strided views where their
slots form a grid, else gathered by one ``take``; its outputs written to its contiguous range
of the buffer), and for each root backpropagated from, a backward that walks the groups in
reverse, adding ``term * upstream`` into the inputs' gradients. Every array, view and index
array is a constant of the generated code, so a replay is one Python call with no dispatch per
group, and numpy's floating-point warnings are switched off once around it, not per call (inf
and nan are values). A group of one node runs on Python floats through the op's scalar forms.
``replay.source`` shows the code.
``StraightReplay`` is generated straight-line Python over the ops' scalar forms, for deep,
narrow graphs, where a numpy call per handful of nodes costs more than the nodes themselves.
``make_replay`` picks one by the plan's shape.

Backward from a root touches exactly the nodes that root depends on, like eager backward: a
gradient term is never skipped for being multiplied by zero, and a node the root does not
reach passes nothing on (so ``0 * inf`` is ``nan`` where eager makes it so, and only there).
Gradients start at -0.0, as eager backward's totals do, so that zeros keep eager's signs. Every
parameter's gradient is computed, and added into its ``.grad`` unless that is None at the time
of the backward (a frozen parameter, as eager backward checks on every call). A scalar gradient
formula whose float arithmetic raises falls back as eager mode's does (``gradient_terms``).
"""

from __future__ import annotations

import functools
import types
from array import array
from collections.abc import Callable

import numpy as np

from mingrad_core import OpSpec

from .arrays import array_forms, gradient_terms, unguarded
from .batched import BatchedReplay
from .params import Parameters
from .plan import Group, Plan
from .trace import as_float, is_number

# Rough costs on CPython + numpy, to choose a strategy: a numpy call, a gathered element, one
# node of generated code and one of its inputs (forward and backward together).
CALL_SECONDS = 4e-6
ELEMENT_SECONDS = 1e-8
CODE_NODE_SECONDS = 6e-7
CODE_EDGE_SECONDS = 1.5e-7
SUM_CHUNK = 100  # terms per statement of a sum in generated straight-line code


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


class _Code:
    """Python source being generated, and the objects its names stand for (its globals)."""

    def __init__(self, namespace: dict[str, object], header: str) -> None:
        self.namespace = namespace
        self.lines = [header]

    def bind(self, name: str, value: object) -> str:
        """Make ``value`` a global of the generated code, as ``name`` (numbered if taken)."""
        base, number = name, 1
        while self.namespace.get(name, value) is not value:
            number += 1
            name = f"{base}__{number}"
        self.namespace[name] = value
        return name

    def __call__(self, line: str, indent: int = 2) -> None:
        self.lines.append("    " * indent + line)

    def compile(self, filename: str) -> Callable:
        """The function the lines define (the first line names it)."""
        name = self.lines[0].split()[1].split("(")[0]
        scope: dict[str, object] = {}
        exec(compile(self.source, filename, "exec"), self.namespace, scope)
        return scope[name]

    @property
    def source(self) -> str:
        return "\n".join(self.lines) + "\n"


class _Term:
    """A gradient contribution: ``a * b`` (``call`` "multiply"), ``a @ b`` ("matmul") or an
    array as it is (None); as an expression, or written straight into an array."""

    SYMBOLS = {"multiply": " * ", "matmul": " @ "}

    def __init__(self, call: str | None, *args: str) -> None:
        self.call, self.args = call, args

    def value(self) -> str:
        return self.args[0] if self.call is None else self.SYMBOLS[self.call].join(self.args)

    def into(self, out: str) -> str:
        if self.call is None:
            return f"{out}[...] = {self.args[0]}"
        return f"{self.call}({', '.join(self.args)}, {out})"


class _Slots:
    """Reading and adding into one replay's buffers by slot, as lines of generated code.

    A read is a strided view where the slots form a grid (bound once, free on every call); the
    other reads of a group are gathered together by one ``take`` into a buffer that the
    backward pass reads again. An add goes through a view, a fancy index, or ``np.add.at``
    where a slot repeats (which sums its contributions in order).

    While a backward is generated, ``touched`` marks the slots that have had a contribution,
    and ``written`` those whose first contribution was written rather than added: every
    gradient starts at -0.0 and -0.0 + x is x, so a first contribution can be written, which
    saves a pass and the zeroing of that slot.
    """

    def __init__(self, vals: np.ndarray, grads: np.ndarray, needs_grad: np.ndarray) -> None:
        self.vals, self.grads, self.needs_grad = vals, grads, needs_grad
        self.touched = np.zeros(len(grads), dtype=bool)
        self.written = np.zeros(len(grads), dtype=bool)

    def read(self, code: _Code, reads: list[tuple[str, np.ndarray]]) -> list[str]:
        """The names of arrays holding ``vals`` at each ``(name, idx)``, as ``idx`` is shaped."""
        names: list[str] = []
        gathered: list[tuple[int, np.ndarray]] = []
        for name, idx in reads:
            view = _view(self.vals, idx)
            names.append(code.bind(name, view) if view is not None else name)
            if view is None:
                gathered.append((len(names) - 1, idx))
        if gathered:
            flat = np.concatenate([idx.ravel() for _, idx in gathered])
            buffer = np.empty(len(flat))
            at = 0
            for i, idx in gathered:
                names[i] = code.bind(names[i], buffer[at : at + idx.size].reshape(idx.shape))
                at += idx.size
            lead = names[gathered[0][0]]
            # The slots are in range: mode="wrap" only spares numpy the copy "raise" makes.
            index, into = code.bind(f"i_{lead}", flat), code.bind(f"gathered_{lead}", buffer)
            code(f"vals.take({index}, None, {into}, 'wrap')")
        return names

    def first(self, idx: np.ndarray | int) -> bool:
        """Whether no slot of ``idx`` has had a contribution yet (and mark them all)."""
        first = not self.touched[idx].any()
        self.touched[idx] = True
        self.written[idx] |= first
        return first

    def add(
        self,
        code: _Code,
        idx: np.ndarray,
        term: _Term,
        name: str,
        unreached: np.ndarray | None = None,
        rows: bool = False,
    ) -> None:
        """Emit ``grads[idx] += term``, summing the contributions of a slot that repeats.

        ``unreached``: the nodes (last axis) the root does not reach, whose contributions
        become -0.0 (adding -0.0 changes nothing, where ``term * upstream`` could be nan).
        ``rows``: the term is one row, the same for every row of a 2-D ``idx``.
        """
        view = _view(self.grads, idx)
        distinct = view is not None or len(np.unique(idx)) == idx.size
        if distinct:
            first = self.first(idx)
        else:  # added to through np.add.at, which sums what a slot gets
            first, self.touched[idx] = False, True
        masked = "" if unreached is None else f"[..., {code.bind(f'unreached_{name}', unreached)}]"
        if view is not None and first and (term.call != "matmul" or view.flags.c_contiguous):
            into = code.bind(name, view)
            code(term.into(into))  # (matmul writes at full speed into a contiguous block only)
            if masked:
                code(f"{into}{masked} = -0.0")
            return
        value = term.value()
        if masked:  # (a copy when the term is an array as it is, which must stay so)
            code(f"c = {value}" if term.call is not None else f"c = {value}.copy()")
            code(f"c{masked} = -0.0")
            value = "c"
        if view is not None:
            into = code.bind(name, view)
            code(f"{into}[...] = {value}" if first else f"add({into}, {value}, {into})")
        elif distinct:
            code(f"grads[{code.bind(f'i_{name}', idx)}] {'=' if first else '+='} {value}")
        else:  # np.add.at is fast on 1-D indices and values only
            if rows:
                column = np.tile(np.arange(idx.shape[-1]), idx.size // idx.shape[-1])
                value = f"{value}[{code.bind(f'columns_{name}', column)}]"
            else:
                value = f"({value}).ravel()"
            code(f"add_at(grads, {code.bind(f'i_{name}', idx.ravel())}, {value})")

    def add_one(self, code: _Code, slot: int, value: str) -> None:
        """Emit ``grads[slot] += value`` for one slot and a Python float."""
        code(f"grads[{slot}] {'=' if self.first(slot) else '+='} {value}")


def _wrong_count(what: str, name: str, terms, count: int) -> ValueError:
    return ValueError(
        f"the {what} of op {name!r} returned {len(terms)} term(s) for {count} input(s)"
    )


def _check_count(code: _Code, what: str, name: str, count: int, indent: int = 2) -> None:
    """Emit a check that the gradient terms ``t`` just computed are one per input."""
    code(f"if len(t) != {count}: raise _wrong_count({what!r}, {name!r}, t, {count})", indent)


class _OpGroup:
    """An ``op`` group: the op's array forms on one row of inputs per argument."""

    def __init__(self, group: Group, number: int, slots: _Slots, code: _Code) -> None:
        self.group, self.number, self.slots = group, number, slots
        n = number
        self.name = group.spec.name if group.spec is not None else "add"
        self.out = code.bind(f"out{n}", slots.vals[group.start : group.stop])
        self.g = code.bind(f"g{n}", slots.grads[group.start : group.stop])
        if group.spec is not None:
            forward, gradient = array_forms(group.spec)
            self.f = code.bind(f"{self.name}{n}", unguarded(forward))
            self.d = code.bind(f"{self.name}{n}_gradient", unguarded(gradient))
        self.inputs: list[str] = []

    def comment(self, code: _Code) -> None:
        g = self.group
        code(f"# group {self.number}: {g.kind} {self.name}, {g.stop - g.start} node(s)")

    def forward(self, code: _Code) -> None:
        n = self.number
        rows = [(f"x{n}_{r}", row) for r, row in enumerate(self.group.idx)]
        self.inputs = self.slots.read(code, rows)
        code(f"{self.out}[:] = {self.f}({', '.join(self.inputs)})")

    def backward(self, code: _Code, unreached: np.ndarray | None) -> None:
        self.terms(code, ", ".join(self.inputs))
        for r in self.group.need_rows.tolist():
            term = _Term("multiply", f"t[{r}]", self.g)
            self.slots.add(code, self.group.idx[r], term, f"dx{self.number}_{r}", unreached)

    def terms(self, code: _Code, inputs: str) -> None:
        """Emit ``t = <the op's gradient>``, checking that it gave a term per input."""
        code(f"t = {self.d}({inputs}, {self.out})")
        _check_count(code, "array gradient", self.name, self.group.idx.shape[0])


class _BlockGroup(_OpGroup):
    """A ``block`` group: a variadic op's array forms on one (inputs, nodes) block."""

    def forward(self, code: _Code) -> None:
        self.inputs = self.slots.read(code, [(f"x{self.number}", self.group.idx)])
        code(f"{self.out}[:] = {self.f}({self.inputs[0]})")

    def backward(self, code: _Code, unreached: np.ndarray | None) -> None:
        self.block_backward(code, self.inputs[0], unreached)

    def block_backward(self, code: _Code, block: str, unreached: np.ndarray | None) -> None:
        group, n = self.group, self.number
        self.terms(code, block)
        rows = group.need_rows
        if len(rows) == group.idx.shape[0]:
            self.slots.add(code, group.idx, _Term("multiply", "t", self.g), f"dx{n}", unreached)
        else:
            chosen = f"take_rows(t, {code.bind(f'rows{n}', rows)}, axis=0)"
            term = _Term("multiply", chosen, self.g)
            self.slots.add(code, group.idx[rows], term, f"dx{n}", unreached)


class _SumGroup(_OpGroup):
    """A folded ``add`` chain: rows added in order, left to right, as eager adds them."""

    def forward(self, code: _Code) -> None:
        n, (k, m) = self.number, self.group.idx.shape
        if k == 2:  # each row on its own, so that each can be a view
            a, b = self.slots.read(
                code, [(f"x{n}_{r}", row) for r, row in enumerate(self.group.idx)]
            )
            code(f"add({a}, {b}, {self.out})")
            return
        (block,) = self.slots.read(code, [(f"x{n}", self.group.idx)])
        # A running sum (accumulate adds one row at a time): its last row is the sum. A single
        # column is accumulated as a 1-D array, which numpy runs in a tight loop.
        running = np.empty((k, m))
        into = running
        if m == 1:
            block, into = code.bind(f"x{n}_column", code.namespace[block][:, 0]), running[:, 0]
        code(f"accumulate({block}, 0, None, {code.bind(f'running{n}', into)})")
        code(f"{self.out}[:] = {code.bind(f'sum{n}', running[-1])}")

    def backward(self, code: _Code, unreached: np.ndarray | None) -> None:
        # d(sum)/d(term) is 1.0 and 1.0 * g is g: every term gets g. No masking is needed: a
        # node the root does not reach keeps the -0.0 it started from, and passes that on.
        rows = self.group.need_rows
        idx = self.group.idx if len(rows) == self.group.idx.shape[0] else self.group.idx[rows]
        self.slots.add(code, idx, _Term(None, self.g), f"dx{self.number}", rows=True)


class _MatmulGroup(_BlockGroup):
    """``linear`` over an S x U grid, out[s, u] = b[u] + x[s] . w[u], as a matrix product.

    Where the inputs must be gathered anyway, they are gathered with a column of ones beside
    them (and the weights with the bias on the same side, whichever side makes them a view of
    the buffer), so that one product adds the bias too.
    Where part of the grid is not reached from the root, backward runs the op's array
    gradient on the whole block instead, so that the nodes not reached pass nothing on.
    """

    def __init__(self, group: Group, number: int, slots: _Slots, code: _Code) -> None:
        super().__init__(group, number, slots, code)
        S, U = group.grid
        k = group.idx.shape[0]
        n = (k - 1) // 2
        cube = group.idx.reshape(k, S, U)
        self.b = cube[0, 0, :]  # (U,)
        self.w = np.ascontiguousarray(cube[1 : n + 1, 0, :].T)  # (U, n)
        self.x = np.ascontiguousarray(cube[n + 1 :, :, 0].T)  # (S, n)
        self.y = code.bind(f"y{number}", slots.vals[group.start : group.stop].reshape(S, U))
        self.gy = code.bind(f"gy{number}", slots.grads[group.start : group.stop].reshape(S, U))
        self.augmented = _view(slots.vals, self.x) is None
        # The bias before the weights only if that makes [b, w] a view of the buffer.
        self.bias_last = _view(slots.vals, np.hstack((self.b[:, None], self.w))) is None
        self.read: dict[str, str] = {}

    def _beside(self, a: np.ndarray, column: np.ndarray) -> np.ndarray:
        """``a`` with ``column`` after it or before it, where the bias goes."""
        return np.hstack((a, column) if self.bias_last else (column, a))

    def forward(self, code: _Code) -> None:
        n = self.number
        if self.augmented:  # [x, 1] @ [w, b].T: the bias rides in the product
            one = np.full((len(self.x), 1), len(self.slots.vals) - 1)
            x1, wb = self.slots.read(
                code,
                [
                    (f"x{n}_1", self._beside(self.x, one)),
                    (f"w{n}_b", self._beside(self.w, self.b[:, None])),
                ],
            )
            weights = code.namespace[wb][:, :-1] if self.bias_last else code.namespace[wb][:, 1:]
            w = code.bind(f"w{n}", weights)
            self.read = {"x": x1, "w": w}
            code(f"matmul({x1}, {code.bind(f'{wb}_T', code.namespace[wb].T)}, {self.y})")
            return
        x, b, w = self.slots.read(code, [(f"x{n}", self.x), (f"b{n}", self.b), (f"w{n}", self.w)])
        self.read = {"x": x, "w": w}
        code(f"matmul({x}, {code.bind(f'{w}_T', code.namespace[w].T)}, {self.y})")
        code(f"add({self.y}, {b}, {self.y})")

    def backward(self, code: _Code, unreached: np.ndarray | None) -> None:
        n = self.number
        if unreached is not None:
            (block,) = self.slots.read(code, [(f"x{n}", self.group.idx)])
            self.block_backward(code, block, unreached)
            return
        needs, add = self.slots.needs_grad, self.slots.add
        gy_t = code.bind(f"gy{n}_T", code.namespace[self.gy].T)
        if self.augmented:
            if needs[self.b].any() or needs[self.w].any():
                wb = self._beside(self.w, self.b[:, None])
                add(code, wb, _Term("matmul", gy_t, self.read["x"]), f"dw{n}_b")
        else:
            if needs[self.b].any():  # the sum over samples, as a product with ones
                ones = code.bind(f"ones{n}", np.ones(len(self.x)))
                add(code, self.b, _Term("matmul", ones, self.gy), f"db{n}")
            if needs[self.w].any():
                add(code, self.w, _Term("matmul", gy_t, self.read["x"]), f"dw{n}")
        if needs[self.x].any():
            add(code, self.x, _Term("matmul", self.gy, self.read["w"]), f"dx{n}")


class _ScalarGroup(_OpGroup):
    """A group of one node with few inputs, on Python floats through the op's scalar forms
    (as eager mode computes it): there a numpy call costs more than the arithmetic."""

    INPUTS = 8  # at most this many inputs

    def __init__(self, group: Group, number: int, slots: _Slots, code: _Code) -> None:
        self.group, self.number, self.slots = group, number, slots
        self.name = group.spec.name if group.spec is not None else "add"
        self.inputs = [f"vals.item({i})" for i in group.idx[:, 0].tolist()]
        self.out = f"vals.item({group.start})"
        if group.spec is not None:
            self.f = code.bind(f"{self.name}{number}_scalar", group.spec.forward)
            self.d = code.bind(f"{self.name}{number}_scalar_gradient", group.spec.gradient)

    def forward(self, code: _Code) -> None:
        if self.group.spec is None:  # left to right, as eager adds
            code(f"vals[{self.group.start}] = {' + '.join(self.inputs)}")
        else:
            code(f"vals[{self.group.start}] = {self.f}({', '.join(self.inputs)})")

    def terms(self, code: _Code, inputs: str) -> None:
        """Emit ``t = <the op's scalar gradient>``, evaluated as eager mode does where its
        float arithmetic raises, checking that it gave a term per input."""
        args = f"{inputs}, {self.out}"
        code("try:")
        code(f"t = {self.d}({args})", 3)
        code("except ArithmeticError:")
        code(f"t = gradient_terms({self.d}, {args})", 3)
        _check_count(code, "gradient", self.name, self.group.idx.shape[0])

    def backward(self, code: _Code, unreached: np.ndarray | None) -> None:
        # One node: the root reaches it (unreached is None), or its group is skipped.
        code(f"g = grads.item({self.group.start})")
        if self.group.spec is not None:
            self.terms(code, ", ".join(self.inputs))
        for r in self.group.need_rows.tolist():
            term = "g" if self.group.spec is None else f"t[{r}] * g"  # d(sum)/d(term) is 1.0
            self.slots.add_one(code, int(self.group.idx[r, 0]), term)


def _emitter(group: Group, number: int, slots: _Slots, code: _Code) -> _OpGroup:
    """The code emitter for ``group``, by its kind and size."""
    if group.stop - group.start == 1 and group.idx.shape[0] <= _ScalarGroup.INPUTS:
        return _ScalarGroup(group, number, slots, code)
    kinds = {"op": _OpGroup, "block": _BlockGroup, "sum": _SumGroup, "matmul": _MatmulGroup}
    return kinds[group.kind](group, number, slots, code)


class LevelReplay:
    """Replays a plan as generated code, a numpy call or two per group (see the module
    docstring).

    ``source`` holds the generated forward, and the backward of every root used so far. The
    buffers have one slot more than the plan: a 1.0 that matrix products read as a column
    of ones.
    """

    strategy = "levels"

    def __init__(self, plan: Plan) -> None:
        self.plan = plan
        self.vals = np.zeros(plan.size + 1)
        self.vals[-1] = 1.0
        self.grads = np.zeros(plan.size + 1)
        for slot, value in plan.constants.items():
            self.vals[slot] = value
        self._slots = _Slots(self.vals, self.grads, plan.needs_grad)
        self._namespace: dict[str, object] = {
            "vals": self.vals,
            "grads": self.grads,
            "errstate": np.errstate,
            "take_rows": np.take,
            "add": np.add,
            "add_at": np.add.at,
            "multiply": np.multiply,
            "accumulate": np.add.accumulate,
            "matmul": np.matmul,
            "_wrong_count": _wrong_count,
            "gradient_terms": gradient_terms,
        }
        code = _Code(self._namespace, "def forward(args):")
        self._groups = [
            _emitter(group, number, self._slots, code) for number, group in enumerate(plan.groups)
        ]
        n = len(plan.params)
        if n:
            read = code.bind("read_params", Parameters(plan.params).read)
            values = code.bind("param_vals", self.vals[plan.param_start : plan.param_start + n])
            code(f"{read}({values})", 1)
        if len(plan.slot_of):
            start = plan.slot_start
            fed = code.bind("arg_vals", self.vals[start : start + len(plan.slot_of)])
            code(f"args.take({code.bind('slot_of', plan.slot_of)}, None, {fed}, 'wrap')", 1)
        code("with errstate(all='ignore'):  # inf and nan are values", 1)
        for group in self._groups:
            group.comment(code)
            group.forward(code)
        if not self._groups:
            code("pass")
        self._forward = code.compile("<mingrad_jit forward>")
        self.source = code.source
        self._backward: dict[int, Callable] = {}
        self._batches = [(BatchedReplay(b.plan, b.feed), slots) for b, slots in plan.batches]

    def forward(self, values: np.ndarray) -> None:
        """Run the ``vmap`` batches, read the parameters, feed the arguments' numbers, compute
        every node."""
        for batch, slots in self._batches:
            self.vals[slots] = batch.forward(values)
        self._forward(values)

    def values(self, slots: np.ndarray) -> list[float]:
        """The values at ``slots``, as Python floats."""
        return self.vals[slots].tolist()

    def backward(self, root: int, seed: float) -> None:
        """Add d(seed * root)/d(p) into ``p.grad`` of every parameter ``root`` depends on."""
        backward = self._backward.get(root)
        if backward is None:
            backward = self._backward[root] = self._generate_backward(root)
        backward(seed)

    def _generate_backward(self, root: int) -> Callable:
        """The backward from ``root``: groups in reverse, skipping those it does not reach.

        Every gradient starts at -0.0, as eager backward's totals do (-0.0 + x is x for every
        x): the slots that are read before anything is written to them are set to -0.0 first.
        """
        plan, slots = self.plan, self._slots
        reached = plan.reach(root)
        read = np.zeros(len(self.grads), dtype=bool)  # the gradients this backward reads
        slots.touched[:] = slots.written[:] = False
        slots.first(root)
        code = _Code(self._namespace, f"def backward_{root}(seed):")
        code(f"grads[{root}] = seed", 1)
        code("with errstate(all='ignore'):  # inf and nan are values", 1)
        body = len(code.lines)
        for group in reversed(self._groups):
            g = group.group
            mask = reached[g.start : g.stop]
            if not mask.any() or not len(g.need_rows):
                continue
            read[g.start : g.stop] = True
            group.comment(code)
            group.backward(code, None if mask.all() else np.flatnonzero(~mask))
        for number, (batch, where) in enumerate(self._batches):
            if reached[where].any():
                read[where] = True
                run, at = code.bind(f"batch{number}", batch), code.bind(f"batch{number}_at", where)
                marks = code.bind(f"batch{number}_reached_{root}", reached[where])
                code(f"{run}.backward(grads[{at}], {marks})")
        if len(code.lines) == body:
            code("pass")
        start, n = plan.param_start, len(plan.params)
        chosen = np.flatnonzero(reached[start : start + n] & plan.needs_grad[start : start + n])
        read[chosen + start] = True
        if len(chosen) == n > 0:
            add = code.bind("add_grads", Parameters(plan.params).add_grads)
            grads = code.bind("param_grads", self.grads[start : start + n])
        elif len(chosen):
            chosen_params = Parameters([plan.params[i] for i in chosen.tolist()])
            add = code.bind(f"add_grads_{root}", chosen_params.add_grads)
            grads = f"grads[{code.bind(f'i_params_{root}', chosen + start)}]"
        if len(chosen):  # as eager backward leaves them: before + total, unless frozen now
            code(f"{add}({grads})", 1)
        unset = np.flatnonzero(read & ~slots.written)
        if len(unset):
            code.lines.insert(1, f"    grads[{code.bind(f'unset_{root}', unset)}] = -0.0")
        backward = code.compile(f"<mingrad_jit backward from slot {root}>")
        self.source += "\n" + code.source
        return backward


class StraightReplay:
    """Replays a plan as generated straight-line Python over the ops' scalar forms.

    The values live in an ``array.array`` of doubles, which converts every forward result to
    a float as it stores it (an int, a bool, a numpy number), as eager mode does: it runs as
    fast as a list, where a ``float()`` call per node costs half as much again. The code calls
    the ops' scalar forms by name; should it raise, it runs again with each name standing for
    a careful version that does what eager mode does: a forward whose result the array refuses
    (an int too large for a float is ±inf, anything but a real number is an error naming the
    op; ``_forward_result``), a gradient whose float arithmetic raises (``gradient_terms``).
    """

    strategy = "code"

    def __init__(self, plan: Plan) -> None:
        self.plan = plan
        self.vals = array("d", bytes(8 * plan.size))
        self._view = np.frombuffer(self.vals)  # the same memory, to feed values in
        self._params = Parameters(plan.params)
        for slot, value in plan.constants.items():
            self.vals[slot] = value
        self.namespace: dict[str, object] = {"_wrong_count": _wrong_count}
        self._careful_names: dict[str, Callable] = {}  # a form's name: its careful version
        self._careful: dict[Callable, Callable] = {}  # generated code: the same, careful
        code = _Code(self.namespace, "def forward(v):")
        self._ops: list[tuple[int, OpSpec | None, tuple[int, ...]]] = []
        for group in plan.groups:
            spec = group.spec
            if spec is not None:
                careful = functools.partial(_forward_result, spec)
                f = self._bind(code, f"f_{spec.name}", spec.forward, careful)
            for j in range(group.stop - group.start):
                out = group.start + j
                ins = tuple(int(i) for i in group.idx[:, j])
                self._ops.append((out, spec, ins))
                if spec is None:
                    _emit_sum(code, out, ins)
                else:
                    code(f"v[{out}] = {f}({', '.join(f'v[{i}]' for i in ins)})", 1)
        if len(code.lines) == 1:
            code("pass", 1)
        self._forward: Callable = code.compile("<mingrad_jit forward>")
        self._backward: dict[int, Callable] = {}

    def _bind(self, code: _Code, name: str, form: Callable, careful: Callable) -> str:
        """Bind an op's scalar ``form`` as ``name``, and ``careful`` as what it stands for
        when the code runs carefully."""
        name = code.bind(name, form)
        self._careful_names[name] = careful
        return name

    def _carefully(self, generated: Callable) -> Callable:
        """``generated`` with each op's scalar form standing for its careful version."""
        careful = self._careful.get(generated)
        if careful is None:
            names = {**self.namespace, **self._careful_names}
            careful = self._careful[generated] = types.FunctionType(generated.__code__, names)
        return careful

    def forward(self, values: np.ndarray) -> None:
        """Read the parameters, feed the arguments' numbers, compute every node."""
        plan, view = self.plan, self._view
        self._params.read(view[plan.param_start : plan.param_start + len(plan.params)])
        view[plan.slot_start : plan.slot_start + len(plan.slot_of)] = values[plan.slot_of]
        try:
            self._forward(self.vals)
            return
        except Exception:  # run again carefully, outside this handler: its error is the one
            pass
        self._carefully(self._forward)(self.vals)

    def values(self, slots: np.ndarray) -> list[float]:
        """The values at ``slots``, as Python floats."""
        return self._view[slots].tolist()

    def backward(self, root: int, seed: float) -> None:
        """Add d(seed * root)/d(p) into ``p.grad`` of every parameter ``root`` depends on."""
        fn = self._backward.get(root)
        if fn is None:
            fn = self._backward[root] = self._generate_backward(root)
        try:
            grads = fn(self.vals, seed)
        except ArithmeticError:  # a gradient formula raised: run again carefully, outside this
            grads = None  # handler (should it raise too, its error is the one)
        if grads is None:
            grads = self._carefully(fn)(self.vals, seed)
        for p, g in grads:
            if p.grad is not None:  # unless frozen now, as eager backward checks every time
                p.grad += g

    def _generate_backward(self, root: int) -> Callable:
        plan = self.plan
        reached = plan.reach(root)
        needs = plan.needs_grad
        code = _Code(self.namespace, "def backward(v, seed):")
        code(f"g{root} = seed", 1)
        have = {root}
        for out, spec, ins in reversed(self._ops):
            if out not in have or not reached[out]:
                continue
            if spec is None:
                terms = ["1.0"] * len(ins)
            else:
                careful = functools.partial(gradient_terms, spec.gradient)
                name = self._bind(code, f"d_{spec.name}", spec.gradient, careful)
                args = ", ".join(f"v[{i}]" for i in (*ins, out))
                code(f"t = {name}({args})", 1)
                _check_count(code, "gradient", spec.name, len(ins), indent=1)
                terms = [f"t[{k}]" for k in range(len(ins))]
            for k, i in enumerate(ins):
                if not needs[i]:
                    continue
                term = f"g{out}" if terms[k] == "1.0" else f"{terms[k]} * g{out}"
                if i in have:
                    code(f"g{i} = g{i} + {term}", 1)
                else:
                    code(f"g{i} = {term}", 1)
                    have.add(i)
        start = plan.param_start
        params = code.bind("P", plan.params)
        pairs = [
            f"({params}[{i}], g{start + i})" for i in range(len(plan.params)) if start + i in have
        ]
        code(f"return [{', '.join(pairs)}]", 1)
        return code.compile(f"<mingrad_jit backward from slot {root}>")


def _emit_sum(code: _Code, out: int, ins: tuple[int, ...]) -> None:
    """Emit ``v[out] = v[a] + v[b] + ...``, added left to right as eager adds, ``SUM_CHUNK``
    terms per statement (one expression of thousands nests too deep for Python's compiler)."""
    terms = [f"v[{i}]" for i in ins]
    total = ""
    for k in range(0, len(terms), SUM_CHUNK):
        into = f"v[{out}]" if k + SUM_CHUNK >= len(terms) else "s"
        code(f"{into} = {total}{' + '.join(terms[k : k + SUM_CHUNK])}", 1)
        total = "s + "


def _forward_result(spec: OpSpec, *args: float) -> float:
    """``spec``'s forward at ``args``, stored as eager mode stores it: ints, bools and numpy
    reals as floats, an int too large for a float as ±inf; anything else is refused."""
    value = spec.forward(*args)
    if not is_number(value):
        raise TypeError(
            f"op {spec.name!r} forward returned {type(value).__name__} {value!r:.80}; expected "
            "a real number"
        )
    return as_float(value)


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
    if plan.batches:  # a vmap's batch runs as arrays, beside the level replay
        strategy = "levels"
    if strategy == "auto":
        by_levels, as_code = estimate(plan)
        strategy = "levels" if by_levels <= as_code else "code"
    if strategy == "levels":
        return LevelReplay(plan)
    if strategy == "code":
        return StraightReplay(plan)
    raise ValueError(f"strategy is 'auto', 'levels' or 'code'; got {strategy!r}")
