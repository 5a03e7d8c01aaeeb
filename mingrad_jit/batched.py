"""Replaying one sample's plan over a whole batch: every group one numpy call over B columns.

``vmap`` traces its function on one sample; ``plan.build`` plans that per-sample graph as for
any trace. ``BatchedReplay`` runs the plan on all B samples at once. Each per-sample node (an
argument leaf, a constant, a computed node) is a row of B values in one (rows, B) buffer; the
parameters are shared by every sample, one value each. A group's inputs are read as rows (a
view where they are a range of rows, else one gather), and its op's array forms run on them
flattened, so one call computes the group for the whole batch. A group of ``linear`` nodes
whose weights and biases are parameters is a layer: ``W @ X + b`` over an (n x B) block.
Backward adds ``term * upstream`` into the inputs' rows (an op that masks: ``masked_parts``),
and a parameter's gradient is the sum over the batch (a matrix product for a layer's weights).
The batch runs in chunks of samples, forward and backward, so that each call's operands stay
in the CPU's cache and the backward's gradient buffer is one chunk's, reused.
"""

from __future__ import annotations

import numpy as np

from mingrad_core import get_op

from .arrays import array_forms, masked_parts, unguarded
from .params import Parameters
from .plan import Batch, Group, Plan, _distinct_columns, all_distinct


class _Rows:
    """How to read one (m,) vector of slots as an (m, B) block, and add into them.

    Slots below ``shared`` are parameters (one value for every sample, in ``pv``); the others
    are rows of the batch buffer (row = slot - shared).
    """

    def __init__(self, idx: np.ndarray, shared: int, needs: np.ndarray) -> None:
        self.idx = idx
        is_shared = idx < shared
        self.all_rows = not is_shared.any()
        self.all_shared = is_shared.all()
        self.rows = np.where(is_shared, 0, idx - shared)
        self.shared_at = np.flatnonzero(is_shared)
        self.row_at = np.flatnonzero(~is_shared)
        self.range = None
        if (
            self.all_rows
            and len(idx)
            and np.array_equal(self.rows, np.arange(self.rows[0], self.rows[0] + len(idx)))
        ):
            self.range = slice(int(self.rows[0]), int(self.rows[0]) + len(idx))
        # Where gradients go: only to slots that need them.
        wanted = needs[idx]
        self.grad_rows_at = np.flatnonzero(~is_shared & wanted)
        self.grad_shared_at = np.flatnonzero(is_shared & wanted)
        grad_rows = self.rows[self.grad_rows_at]
        self.grad_rows = grad_rows
        self.rounds = _rounds(grad_rows)
        self.rounds_all = _rounds(self.rows[self.row_at])
        self.grad_shared = idx[self.grad_shared_at]
        self.every_row = len(self.grad_rows_at) == len(idx)
        self.fast = self.range if self.every_row else None  # add: G[fast] += c
        repeated = len(grad_rows) > 1 and (grad_rows == grad_rows[0]).all()
        self.one_row = int(grad_rows[0]) if repeated else None  # one row read by every node

    def read(self, V: np.ndarray, pv: np.ndarray) -> np.ndarray:
        """The (m, B) values: a view of ``V`` where possible."""
        if self.range is not None:
            return V[self.range]
        if self.all_rows:
            return V.take(self.rows, axis=0)
        out = np.empty((len(self.idx), V.shape[1]))
        out[self.shared_at] = pv[self.idx[self.shared_at]][:, None]
        if len(self.row_at):
            out[self.row_at] = V.take(self.rows[self.row_at], axis=0)
        return out

    def mark(self, R: np.ndarray, reached: np.ndarray) -> None:
        """Mark the per-sample rows read where ``reached`` (m x samples) is marked."""
        rows, reached = self.rows[self.row_at], reached[self.row_at]
        for at in self.rounds_all:  # in rounds: a row may repeat
            R[rows[at]] |= reached[at]

    def add(self, G: np.ndarray, gp: np.ndarray, c: np.ndarray) -> None:
        """Add the (m, B) contributions ``c`` into the rows' gradients (parameters: summed
        over the batch)."""
        if len(self.grad_rows_at):
            part = c if self.every_row else c[self.grad_rows_at]
            if self.fast is not None:
                G[self.fast] += part
            elif self.one_row is not None:  # (in another order than eager's: within rounding)
                G[self.one_row] += np.add.reduce(part, axis=0, initial=-0.0)  # -0.0: as +
            else:  # a row that repeats gets its contributions in rounds of distinct rows
                for at in self.rounds:
                    G[self.grad_rows[at]] += part[at]
        if len(self.grad_shared_at):
            np.add.at(gp, self.grad_shared, c[self.grad_shared_at].sum(axis=1))


def _rounds(rows: np.ndarray) -> list[np.ndarray]:
    """Positions of ``rows`` in rounds within which no row repeats (one round if none does)."""
    order = np.argsort(rows, kind="stable")
    sorted_rows = rows[order]
    starts = np.flatnonzero(np.r_[True, sorted_rows[1:] != sorted_rows[:-1]])
    rank = np.arange(len(rows)) - np.repeat(starts, np.diff(np.r_[starts, len(rows)]))
    occurrence = np.empty(len(rows), dtype=np.intp)
    occurrence[order] = rank
    return [np.flatnonzero(occurrence == r) for r in range(int(occurrence.max(initial=-1)) + 1)]


class _Step:
    """One group of the plan, run over the batch. ``scratch`` (at least m x samples of a
    chunk) holds the contributions to one input's gradients while they are added."""

    def __init__(self, group: Group, shared: int, needs: np.ndarray, scratch: np.ndarray) -> None:
        self.group, self.scratch = group, scratch
        self.out = slice(group.start - shared, group.stop - shared)
        self.m = group.stop - group.start
        self.name = group.spec.name if group.spec is not None else "add"
        if group.spec is not None:
            forward, gradient = array_forms(group.spec)
            self.f, self.d = unguarded(forward), unguarded(gradient)
        self.inputs = [_Rows(row, shared, needs) for row in group.idx]
        self.need_rows = group.need_rows.tolist()
        # A variadic op whose inputs are consecutive runs of rows: its block is a view of V.
        runs = [rows.range for rows in self.inputs]
        self.block = None
        if group.kind == "block" and None not in runs:
            if all(a.stop == b.start for a, b in zip(runs, runs[1:])):
                self.block = slice(runs[0].start, runs[-1].stop)
        # A folded sum whose terms are consecutive runs of rows, term after term: every term
        # gets the upstream in one broadcast add over G[terms] seen as (terms, m, B).
        self.terms = None
        ranges = [self.inputs[r].fast for r in self.need_rows]
        if group.spec is None and ranges and None not in ranges:
            if all(a.stop == b.start for a, b in zip(ranges, ranges[1:])):
                self.terms = slice(ranges[0].start, ranges[-1].stop)

    def forward(self, V: np.ndarray, pv: np.ndarray) -> list[np.ndarray]:
        """Compute the group's rows of ``V``; what its backward reads (the inputs)."""
        B = V.shape[1]
        xs = [r.read(V, pv) for r in self.inputs]
        if self.group.spec is None:  # a folded sum, added left to right as eager adds
            total = V[self.out]
            np.add(xs[0], xs[1], total)
            for x in xs[2:]:
                total += x
            return []
        if self.group.kind == "op":
            flat = [np.ascontiguousarray(x).reshape(-1) for x in xs]
            y = self.f(*flat)
        elif self.block is not None:  # a variadic op over consecutive rows: a view
            flat = [V[self.block].reshape(len(xs), self.m * B)]
            y = self.f(flat[0])
        else:  # a variadic op: (k, m * B), row i being input i of every node of every sample
            flat = [np.stack(xs).reshape(len(xs), self.m * B)]
            y = self.f(flat[0])
        V[self.out] = np.asarray(y, dtype=np.float64).reshape(self.m, B)
        return flat

    def reach(self, R: np.ndarray) -> None:
        """Mark in ``R`` (rows x samples) the inputs of the nodes marked reached."""
        reached = R[self.out]
        for rows in self.inputs:
            rows.mark(R, reached)

    def backward(
        self,
        V: np.ndarray,
        G: np.ndarray,
        pv: np.ndarray,
        gp: np.ndarray,
        R: np.ndarray | None,
        saved: list[np.ndarray],
    ) -> None:
        gy = G[self.out]
        if self.terms is not None:
            G[self.terms].reshape(len(self.need_rows), self.m, -1)[...] += gy
            return
        if self.group.spec is None:  # d(sum)/d(term) is 1.0: every term gets the upstream
            for r in self.need_rows:
                self.inputs[r].add(G, gp, gy)
            return
        B = V.shape[1]
        out = V[self.out].reshape(-1)
        terms = self.d(*saved, out)
        k = len(self.inputs)
        if len(terms) != k:
            raise ValueError(
                f"the array gradient of op {self.name!r} returned {len(terms)} term(s) for "
                f"{k} input(s)"
            )
        upstream = gy.reshape(-1)
        scratch = self.scratch[: upstream.size]
        unreached = None if R is None else ~R[self.out]
        spec, masks = self.group.spec, None
        if spec.masks:  # relu, where, pow, pick: 0 * nan is 0 where they mask
            masks = terms if spec.masks is True else spec.masks(*saved, out)
        for r in self.need_rows:
            if masks is None and terms[r].__class__ is float and terms[r] == 1.0:
                c = upstream  # 1.0 * g is g, bit for bit (add's and sub's first input)
            elif masks is None:
                c = np.multiply(terms[r], upstream, out=scratch)
            else:
                c = masked_parts(masks[r], terms[r], upstream, scratch)
            if c.shape != upstream.shape:  # a number, or a term shared by every node
                c = np.broadcast_to(c, upstream.shape)
            c = c.reshape(self.m, B)
            if unreached is not None and unreached.any():  # they pass nothing on
                c = c.copy()
                c[unreached] = -0.0
            rows = self.inputs[r]
            if rows.fast is not None:
                G[rows.fast] += c
            else:
                rows.add(G, gp, c)


class _LayerStep:
    """A group of ``linear`` nodes whose biases and weights are parameters and whose inputs
    are per-sample rows, over an S x U grid (S input vectors, U units): per input vector,
    ``W @ X + b`` on an (n x B) block. ``scratch`` (at least n x samples of a chunk) holds
    the gradients of one input vector while they are added."""

    def __init__(
        self, group: Group, shared: int, needs: np.ndarray, grid: tuple, scratch: np.ndarray
    ) -> None:
        self.out = slice(group.start - shared, group.stop - shared)
        self.scratch = scratch
        S, U, unit_of, sample_of = grid
        k = group.idx.shape[0]
        n = (k - 1) // 2
        first_unit = np.array([np.flatnonzero(unit_of == u)[0] for u in range(U)])
        first_sample = np.array([np.flatnonzero(sample_of == s)[0] for s in range(S)])
        self.b = group.idx[0, first_unit]  # (U,) parameter slots
        self.w = group.idx[1 : n + 1, first_unit].T  # (U, n)
        self.x = [_Rows(group.idx[n + 1 :, j], shared, needs) for j in first_sample.tolist()]
        # node j of the group is (sample_of[j], unit_of[j]): its row in (S * U) sample-major
        self.order = sample_of * U + unit_of
        self.in_order = np.array_equal(self.order, np.arange(len(self.order)))
        self.S, self.U = S, U
        self.needs_b, self.needs_w = needs[self.b].any(), needs[self.w].any()
        self.w_distinct = all_distinct(self.w)

    def forward(self, V: np.ndarray, pv: np.ndarray) -> list[np.ndarray]:
        """Compute the layer's rows of ``V``; what its backward reads (the input vectors)."""
        W, b = pv[self.w], pv[self.b][:, None]
        self.W = W
        saved = [x.read(V, pv) for x in self.x]
        if self.S == 1 and self.in_order:
            y = V[self.out]
            np.matmul(W, saved[0], y)
            y += b
            return saved
        ys = np.concatenate([W @ x + b for x in saved])  # (S * U, B), sample-major
        V[self.out] = ys if self.in_order else ys[self.order]
        return saved

    def reach(self, R: np.ndarray) -> None:
        """Mark in ``R`` the input vectors of the units marked reached."""
        reached = R[self.out]
        if not self.in_order:
            reached = reached[np.argsort(self.order)]
        for rows, any_unit in zip(self.x, reached.reshape(self.S, self.U, -1)):
            rows.mark(R, np.broadcast_to(any_unit.any(axis=0), (len(rows.idx), R.shape[1])))

    def backward(
        self,
        V: np.ndarray,
        G: np.ndarray,
        pv: np.ndarray,
        gp: np.ndarray,
        R: np.ndarray | None,
        saved: list[np.ndarray],
    ) -> None:
        gy = G[self.out]
        if not self.in_order:
            gy = gy[np.argsort(self.order)]
        gys = gy.reshape(self.S, self.U, -1)
        if R is not None:
            reached = R[self.out] if self.in_order else R[self.out][np.argsort(self.order)]
            if not reached.any():
                return
            if not reached.all():  # term by term: a unit a sample does not reach adds nothing
                self._masked(G, gp, gys, reached.reshape(gys.shape), saved)
                return
        for x, rows, g in zip(saved, self.x, gys):
            if self.needs_w:
                dw = g @ x.T
                if self.w_distinct:
                    gp[self.w] += dw
                else:
                    np.add.at(gp, self.w, dw)
            if self.needs_b:
                np.add.at(gp, self.b, g.sum(axis=1))
            if len(rows.grad_rows_at):  # one unit: a product per term (a matmul is slower)
                dx = self.scratch[: x.size].reshape(x.shape)
                (np.matmul if self.U > 1 else np.multiply)(self.W.T, g, out=dx)
                rows.add(G, gp, dx)

    def _masked(
        self, G: np.ndarray, gp: np.ndarray, gys: np.ndarray, reached: np.ndarray, saved: list
    ) -> None:
        """Backward where only some (unit, sample) are reached: every product masked."""
        for x, rows, g, r in zip(saved, self.x, gys, reached):
            # (units, inputs, samples): each term w[u, i] * g[u, b] or x[i, b] * g[u, b]
            keep = r[:, None, :]
            if self.needs_w:
                dw = np.where(keep, g[:, None, :] * x[None, :, :], -0.0).sum(axis=2)
                np.add.at(gp, self.w, dw)
            if self.needs_b:
                np.add.at(gp, self.b, np.where(r, g, -0.0).sum(axis=1))
            if len(rows.grad_rows_at):
                dx = np.where(keep, self.W[:, :, None] * g[:, None, :], -0.0).sum(axis=0)
                rows.add(G, gp, dx)


def _feed_blocks(feed: np.ndarray) -> list[tuple[slice, int, int]] | None:
    """``feed`` as blocks of consecutive rows whose slots are ``base + row + stride * sample``
    (a batch given as a numpy array or rows of one length): per block its rows, base slot and
    stride; None if it is not so."""
    if feed.shape[1] < 2 or not feed.size:
        return None
    stride = feed[:, 1] - feed[:, 0]
    if (stride <= 0).any() or not np.array_equal(
        feed, feed[:, :1] + stride[:, None] * np.arange(feed.shape[1])
    ):
        return None
    starts = np.flatnonzero(
        np.r_[True, (np.diff(feed[:, 0]) != 1) | (stride[1:] != stride[:-1])]
    ).tolist()
    return [
        (slice(a, b), int(feed[a, 0]), int(stride[a]))
        for a, b in zip(starts, [*starts[1:], len(feed)])
    ]


def _layer_grid(group: Group, shared: int) -> tuple | None:
    """``(S, U, unit_of, sample_of)`` if ``group`` (of ``linear`` nodes) is a layer over a full
    grid, its biases and weights parameters and its inputs per-sample rows; else None."""
    k, m = group.idx.shape
    n = (k - 1) // 2
    if k != 2 * n + 1 or n == 0:
        return None
    if (group.idx[: n + 1] >= shared).any() or (group.idx[n + 1 :] < shared).any():
        return None
    unit_of, U = _distinct_columns(group.idx[: n + 1])
    sample_of, S = _distinct_columns(group.idx[n + 1 :])
    if U * S != m or not all_distinct(sample_of * U + unit_of):
        return None
    return S, U, unit_of, sample_of


class BatchedReplay:
    """Replays a per-sample ``plan`` over a batch of ``feed.shape[1]`` samples.

    ``feed`` (one row per argument leaf of the plan, one column per sample) holds the slot of
    each sample's number in the flattened arguments of the jitted call. ``forward(values)``
    returns the outputs as an (outputs, B) array; ``backward(upstream)`` takes their
    gradients in the same shape and adds into the parameters' ``.grad``.

    The batch runs in chunks of at most ``CHUNK_BYTES`` of values (samples x rows x 8 bytes; at
    least one sample), each a contiguous (rows, samples) block of the value buffer: a group's
    numpy calls work on a block that stays in the CPU's cache, and the backward reuses one
    chunk's gradient buffer, chunk after chunk (a parameter's gradient is summed over the
    chunks).
    """

    def __init__(self, plan: Plan, feed: np.ndarray) -> None:
        self.plan = plan
        self.params = Parameters(plan.params)
        shared = self.shared = plan.slot_start  # parameters first, then per-sample rows
        rows, B = plan.size - shared, feed.shape[1]
        self.shape = (rows, B)
        most = max(1, CHUNK_BYTES // (8 * max(rows, 1)))  # samples per chunk
        count = max(1, -(-B // most))  # as few chunks as can be, of lengths as even
        step = max(1, -(-B // count))
        self.chunks = [slice(a, min(a + step, B)) for a in range(0, B, step)]
        values = np.zeros(rows * B)  # zeros: pages are written (touched) chunk by chunk
        grads = np.zeros(rows * min(B, step))  # one chunk's, reused
        widest = max([rows] + [group.idx.shape[0] for group in plan.groups])  # rows, inputs
        scratch = np.zeros(widest * min(B, step))
        self.V = [_block(values, rows, c.start, c.stop) for c in self.chunks]
        self.G = [_block(grads, rows, 0, c.stop - c.start) for c in self.chunks]
        self.saved: list[list] = [[] for _ in self.chunks]  # per chunk, per step
        self.pv = np.zeros(shared)
        self.gp = np.zeros(shared)
        for V in self.V:
            for slot, value in plan.constants.items():
                V[slot - shared] = value
        linear = get_op("linear")
        self.steps: list[_Step | _LayerStep] = []
        for group in plan.groups:
            grid = _layer_grid(group, shared) if group.spec is linear else None
            if grid is not None:
                self.steps.append(_LayerStep(group, shared, plan.needs_grad, grid, scratch))
            else:
                self.steps.append(_Step(group, shared, plan.needs_grad, scratch))
        self.outputs = _Rows(np.array(plan.outputs, dtype=np.intp), shared, plan.needs_grad)
        self.fed = slice(0, len(plan.slot_of))
        self.blocks = _feed_blocks(feed)
        self.feeds = [np.ascontiguousarray(feed[:, c]) for c in self.chunks]
        first = plan.groups[0].start - shared if plan.groups else rows
        self.computed = slice(first, rows)
        self._reached: dict[bytes, np.ndarray] = {}

    def _reach(self, reached: np.ndarray) -> np.ndarray:
        """Which (row, sample) the marked outputs depend on (kept per marking)."""
        key = np.packbits(reached).tobytes()
        R = self._reached.get(key)
        if R is None:
            R = np.zeros(self.shape, dtype=bool)
            self.outputs.mark(R, reached)
            for step in reversed(self.steps):
                step.reach(R)
            self._reached[key] = R
        return R

    def forward(self, values: np.ndarray) -> np.ndarray:
        """Compute every sample's nodes; the outputs as an (outputs, B) array."""
        plan, pv = self.plan, self.pv
        self.params.read(pv[plan.param_start : plan.slot_start])
        out = np.empty((len(plan.outputs), self.shape[1]))
        viewed = self.blocks is not None and values.dtype == np.float64
        viewed = viewed and values.flags.c_contiguous
        with np.errstate(all="ignore"):  # inf and nan are values
            for k, (chunk, V) in enumerate(zip(self.chunks, self.V)):
                if viewed:  # rows of arrays: a strided copy (a transpose), no gather
                    for rows, base, step in self.blocks:  # a view of values (float64)
                        shape, strides = (rows.stop - rows.start, V.shape[1]), (8, 8 * step)
                        at = 8 * (base + step * chunk.start)
                        V[rows] = np.ndarray(shape, np.float64, values, at, strides)
                else:
                    values.take(self.feeds[k], None, V[self.fed], "wrap")
                self.saved[k] = [step.forward(V, pv) for step in self.steps]
                out[:, chunk] = self.outputs.read(V, pv)
        return out

    def backward(self, upstream: np.ndarray, reached: np.ndarray | None = None) -> None:
        """Backpropagate the outputs' gradients (outputs, B) into the parameters' ``.grad``.

        ``reached`` (outputs, B), if given, marks the outputs the root reaches: as in eager
        backward, a node that only unmarked outputs depend on passes nothing on.
        """
        pv, gp = self.pv, self.gp
        gp[...] = -0.0
        R = None if reached is None or reached.all() else self._reach(reached)
        steps = self.steps[::-1]
        with np.errstate(all="ignore"):
            for chunk, V, G, saved in zip(self.chunks, self.V, self.G, self.saved):
                G[self.computed] = -0.0  # as eager backward's totals start (leaves take none)
                Rk = None if R is None else R[:, chunk]
                self.outputs.add(G, gp, upstream[:, chunk])
                for step, kept in zip(steps, saved[::-1]):
                    step.backward(V, G, pv, gp, Rk, kept)
        self.params.add_grads(gp[self.plan.param_start : self.plan.slot_start])


CHUNK_BYTES = 1 << 22  # values per chunk of a batched replay (see BatchedReplay)


def _block(buffer: np.ndarray, rows: int, start: int, stop: int) -> np.ndarray:
    """Samples ``start`` to ``stop - 1`` of ``buffer`` laid out chunk by chunk: (rows, samples)."""
    return buffer[rows * start : rows * stop].reshape(rows, stop - start)


class BatchLink:
    """A ``vmap`` batch inside a level replay: its replay, the outer buffer slots of its
    results (outputs x samples, 0 where unused) and of its sums over samples (rows of slot,
    output, start, stop, zero: see ``plan.BatchLeaf``)."""

    def __init__(self, batch: Batch, slots: np.ndarray, sums: np.ndarray) -> None:
        self.replay = BatchedReplay(batch.plan, batch.feed)
        self.slots, self.sums = slots, sums
        self._sums = sums.tolist()

    def forward(self, values: np.ndarray, vals: np.ndarray) -> None:
        """Replay the batch on the call's numbers; write its results and sums into ``vals``."""
        out = self.replay.forward(values)
        vals[self.slots] = out
        for slot, k, start, stop, zero in self._sums:  # from -0.0, which adds nothing (numpy's
            # sum starts from 0.0: -0.0 + -0.0 would come out 0.0); + 0.0 as sum()'s start
            total = np.add.reduce(out[k, start:stop], initial=-0.0)
            vals[slot] = total + 0.0 if zero else total

    def reached(self, reached: np.ndarray) -> np.ndarray | None:
        """Which results (outputs x samples) the slots marked in ``reached`` use; None if none."""
        marks = reached[self.slots]
        for slot, k, start, stop, _ in self._sums:
            if reached[slot]:
                marks[k, start:stop] = True
        return marks if marks.any() else None

    def backward(self, grads: np.ndarray, marks: np.ndarray) -> None:
        """Backpropagate the gradients at the results' and sums' slots through the batch."""
        upstream = grads[self.slots]
        for slot, k, start, stop, _ in self._sums:
            upstream[k, start:stop] += grads[slot]
        self.replay.backward(upstream, marks)
