"""The level replay: a plan as generated Python over numpy, a numpy call or two per group.

``LevelReplay`` writes a plan out once as Python source over numpy, and compiles it: a forward
that runs each group in a numpy call or two (its inputs read through strided views where their
slots form a grid, else gathered by one ``take``; its outputs written to its contiguous range
of the buffer), and for each root backpropagated from, a backward that walks the groups in
reverse, adding ``term * upstream`` into the inputs' gradients. Every array, view and index
array is a constant of the generated code, so a replay is one Python call with no dispatch per
group, and numpy's floating-point warnings are switched off once around it, not per call (inf
and nan are values). A group of one node runs on Python floats through the op's scalar forms.
``replay.source`` shows the code. The ``vmap`` batches a plan holds run beside it
(``BatchedReplay``): before the groups forward, after them backward.

Backward from a root touches exactly the nodes that root depends on, like eager backward: a
gradient term is never skipped for being multiplied by zero (an op that masks passes 0 where
term × upstream is nan, as eager backward does: ``masked_parts``), and a node the root does not
reach passes nothing on (so ``0 * inf`` is ``nan`` where eager makes it so, and only there).
Gradients start at -0.0, as eager backward's totals do, so that zeros keep eager's signs. Every
parameter's gradient is computed, and added into its ``.grad`` unless that is None at the time
of the backward (a frozen parameter, as eager backward checks on every call). A scalar gradient
formula whose float arithmetic raises falls back as eager mode's does (``gradient_terms``).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from mingrad_core import masked

from .arrays import array_forms, gradient_terms, masked_parts, unguarded
from .batched import BatchLink
from .codegen import Code, check_count, wrong_count
from .params import Parameters
from .plan import Group, Plan, all_distinct


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


class _Term:
    """A gradient contribution: ``a * b`` (``call`` "multiply"), ``a @ b`` ("matmul"),
    ``masked_parts(mask, term, upstream)`` ("masked_parts": an op that masks) or an array as it
    is (None); as an expression, or written straight into an array."""

    SYMBOLS = {"multiply": " * ", "matmul": " @ "}

    def __init__(self, call: str | None, *args: str) -> None:
        self.call, self.args = call, args

    def value(self) -> str:
        if self.call == "masked_parts":
            return f"masked_parts({', '.join(self.args)})"
        return self.args[0] if self.call is None else self.SYMBOLS[self.call].join(self.args)

    def into(self, out: str) -> str:
        if self.call is None or self.call == "masked_parts":
            return f"{out}[...] = {self.value()}"
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

    def read(self, code: Code, reads: list[tuple[str, np.ndarray]]) -> list[str]:
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
        code: Code,
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
        distinct = view is not None or all_distinct(idx)
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

    def add_one(self, code: Code, slot: int, value: str) -> None:
        """Emit ``grads[slot] += value`` for one slot and a Python float."""
        code(f"grads[{slot}] {'=' if self.first(slot) else '+='} {value}")


class _OpGroup:
    """An ``op`` group: the op's array forms on one row of inputs per argument."""

    def __init__(self, group: Group, number: int, slots: _Slots, code: Code) -> None:
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

    def comment(self, code: Code) -> None:
        g = self.group
        code(f"# group {self.number}: {g.kind} {self.name}, {g.stop - g.start} node(s)")

    def forward(self, code: Code) -> None:
        n = self.number
        rows = [(f"x{n}_{r}", row) for r, row in enumerate(self.group.idx)]
        self.inputs = self.slots.read(code, rows)
        code(f"{self.out}[:] = {self.f}({', '.join(self.inputs)})")

    def backward(self, code: Code, unreached: np.ndarray | None) -> None:
        self.terms(code, ", ".join(self.inputs))
        masks = self.masks(code, ", ".join(self.inputs))
        for r in self.group.need_rows.tolist():
            term = _Term("multiply", f"t[{r}]", self.g)
            if masks:
                term = _Term("masked_parts", f"m[{r}]", f"t[{r}]", self.g)
            self.slots.add(code, self.group.idx[r], term, f"dx{self.number}_{r}", unreached)

    def terms(self, code: Code, inputs: str) -> None:
        """Emit ``t = <the op's gradient>``, checking that it gave a term per input."""
        code(f"t = {self.d}({inputs}, {self.out})")
        check_count(code, "array gradient", self.name, self.group.idx.shape[0])

    def masks(self, code: Code, inputs: str) -> bool:
        """For an op that masks (relu, where, pow, pick), emit ``m = <its masks>`` (its terms,
        or its own function of the inputs and output) and return True."""
        spec = self.group.spec
        if spec is None or not spec.masks:
            return False
        if spec.masks is True:
            code("m = t")
        else:
            masks = code.bind(f"{self.name}{self.number}_masks", spec.masks)
            code(f"m = {masks}({inputs}, {self.out})")
        return True


class _BlockGroup(_OpGroup):
    """A ``block`` group: a variadic op's array forms on one (inputs, nodes) block."""

    def forward(self, code: Code) -> None:
        self.inputs = self.slots.read(code, [(f"x{self.number}", self.group.idx)])
        code(f"{self.out}[:] = {self.f}({self.inputs[0]})")

    def backward(self, code: Code, unreached: np.ndarray | None) -> None:
        self.block_backward(code, self.inputs[0], unreached)

    def block_backward(self, code: Code, block: str, unreached: np.ndarray | None) -> None:
        group, n = self.group, self.number
        self.terms(code, block)
        masks = self.masks(code, block)  # (a variadic op's masks are its terms: m is t)
        rows, idx = group.need_rows, group.idx
        if len(rows) != group.idx.shape[0]:
            code(f"t = take_rows(t, {code.bind(f'rows{n}', rows)}, axis=0)")
            idx = group.idx[rows]
        term = _Term("masked_parts", "t", "t", self.g) if masks else _Term("multiply", "t", self.g)
        self.slots.add(code, idx, term, f"dx{n}", unreached)


class _SumGroup(_OpGroup):
    """A folded ``add`` chain: rows added in order, left to right, as eager adds them."""

    def forward(self, code: Code) -> None:
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

    def backward(self, code: Code, unreached: np.ndarray | None) -> None:
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

    def __init__(self, group: Group, number: int, slots: _Slots, code: Code) -> None:
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

    def forward(self, code: Code) -> None:
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

    def backward(self, code: Code, unreached: np.ndarray | None) -> None:
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

    def __init__(self, group: Group, number: int, slots: _Slots, code: Code) -> None:
        self.group, self.number, self.slots = group, number, slots
        self.name = group.spec.name if group.spec is not None else "add"
        self.inputs = [f"vals.item({i})" for i in group.idx[:, 0].tolist()]
        self.out = f"vals.item({group.start})"
        if group.spec is not None:
            self.f = code.bind(f"{self.name}{number}_scalar", group.spec.forward)
            self.d = code.bind(f"{self.name}{number}_scalar_gradient", group.spec.gradient)

    def forward(self, code: Code) -> None:
        if self.group.spec is None:  # left to right, as eager adds
            code(f"vals[{self.group.start}] = {' + '.join(self.inputs)}")
        else:
            code(f"vals[{self.group.start}] = {self.f}({', '.join(self.inputs)})")

    def terms(self, code: Code, inputs: str) -> None:
        """Emit ``t = <the op's scalar gradient>``, evaluated as eager mode does where its
        float arithmetic raises, checking that it gave a term per input."""
        args = f"{inputs}, {self.out}"
        code("try:")
        code(f"t = {self.d}({args})", 3)
        code("except ArithmeticError:")
        code(f"t = gradient_terms({self.d}, {args})", 3)
        check_count(code, "gradient", self.name, self.group.idx.shape[0])

    def backward(self, code: Code, unreached: np.ndarray | None) -> None:
        # One node: the root reaches it (unreached is None), or its group is skipped.
        code(f"g = grads.item({self.group.start})")
        masks = False
        if self.group.spec is not None:
            self.terms(code, ", ".join(self.inputs))
            masks = self.masks(code, ", ".join(self.inputs))
        for r in self.group.need_rows.tolist():
            term = "g" if self.group.spec is None else f"t[{r}] * g"  # d(sum)/d(term) is 1.0
            if masks:
                term = f"masked(m[{r}], t[{r}], g)"
            self.slots.add_one(code, int(self.group.idx[r, 0]), term)


def _emitter(group: Group, number: int, slots: _Slots, code: Code) -> _OpGroup:
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
            "_wrong_count": wrong_count,
            "gradient_terms": gradient_terms,
            "masked": masked,
            "masked_parts": masked_parts,
        }
        code = Code(self._namespace, "def forward(args):")
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
        self._batches = [BatchLink(*entry) for entry in plan.batches]

    def forward(self, values: np.ndarray) -> None:
        """Run the ``vmap`` batches, read the parameters, feed the arguments' numbers, compute
        every node."""
        for batch in self._batches:
            batch.forward(values, self.vals)
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
        code = Code(self._namespace, f"def backward_{root}(seed):")
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
        for number, batch in enumerate(self._batches):
            marks = batch.reached(reached)
            if marks is not None:
                read[batch.slots] = read[batch.sums[:, 0]] = True
                run = code.bind(f"batch{number}", batch.backward)
                code(f"{run}(grads, {code.bind(f'batch{number}_reached_{root}', marks)})")
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
