"""Planning: turn a recorded graph into flat index arrays, grouped for one numpy call each.

Every node gets a slot in one float64 buffer: first the constant 0 (padding), then the
parameters (read on every call), the leaves made from arguments (fed on every call), and the
constants written in the function (kept), then the computed nodes, one contiguous range per
group. Single-use ``add`` chains (``sum()`` of many terms) are folded into n-ary sums, added
left to right as eager does. Nodes are grouped by level (longest path from a leaf) and, within
a level, by op and input count; a group of ``linear`` nodes whose weight rows are shared by
every input row is a matrix product.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from operator import attrgetter

import numpy as np

from mingrad_core import OpSpec, Scalar, get_op, toposort

from .trace import Trace

ZERO = 0  # buffer slot of the constant 0.0 that pads n-ary sums
RELAX_PASSES = 64  # numpy passes over the edges to find levels before looping per node


@dataclass
class Group:
    """Nodes of one level computed by one numpy call; outputs in ``vals[start:stop]``.

    ``kind`` is ``"op"`` (fixed arity: one row of ``idx`` per input), ``"block"`` (a variadic
    op, all inputs as one 2-D block), ``"sum"`` (a folded ``add`` chain, rows added in order) or
    ``"matmul"`` (``linear`` nodes over an S x U grid of input rows and weight rows).
    """

    kind: str
    spec: OpSpec | None
    start: int
    stop: int
    idx: np.ndarray  # (inputs, nodes) buffer slots of each node's inputs
    need_rows: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.intp))
    grid: tuple[int, int] | None = None  # (S, U) for matmul groups


@dataclass
class Plan:
    """The flat form of one trace: buffer layout, groups in level order, outputs, parameters."""

    size: int
    params: list[Scalar]
    param_start: int
    slot_start: int
    slot_of: np.ndarray  # for each argument leaf, its slot in the flattened arguments
    constants: dict[int, float]
    groups: list[Group]
    levels: int
    outputs: list[int]  # buffer slot of each root
    needs_grad: np.ndarray  # per buffer slot: a parameter with .grad, or computed from one
    folded: int  # how many add nodes were folded into n-ary sums

    @property
    def nodes(self) -> int:
        """How many computed nodes the plan runs."""
        return self.size - self.groups[0].start if self.groups else 0

    def reach(self, root: int) -> np.ndarray:
        """Which buffer slots ``root`` depends on (itself included)."""
        reached = np.zeros(self.size, dtype=bool)
        reached[root] = True
        for group in reversed(self.groups):
            mask = reached[group.start : group.stop]
            if mask.any():
                reached[group.idx[:, mask].ravel()] = True
        return reached


def build(trace: Trace) -> Plan:
    """Plan the replay of ``trace``: fold sums, level, group and number every node."""
    nodes = toposort(trace.roots)
    count = len(nodes)
    parents = list(map(attrgetter("parents"), nodes))
    pos = dict(zip(map(id, nodes), range(count)))
    widths = np.fromiter(map(len, parents), dtype=np.intp, count=count)
    flat = np.fromiter(
        map(pos.__getitem__, map(id, itertools.chain.from_iterable(parents))),
        dtype=np.intp,
        count=int(widths.sum()),
    )
    offsets = np.zeros(count + 1, dtype=np.intp)
    np.cumsum(widths, out=offsets[1:])
    roots = [pos[id(r)] for r in trace.roots]
    uses = np.bincount(flat, minlength=count)
    uses[roots] += 1

    ops = list(map(attrgetter("op"), nodes))
    by_id = {id(op): op for op in ops}  # OpSpecs hash slowly (pydantic): number them by id
    op_number = {key: k for k, key in enumerate(by_id)}
    op_of = np.array(list(map(op_number.__getitem__, map(id, ops))), dtype=np.intp)
    specs = list(by_id.values())
    add = get_op("add")
    is_add = op_of == op_number.get(id(add), -1)
    absorbed = np.zeros(count, dtype=bool)
    add_nodes = np.flatnonzero(is_add)
    lefts = flat[offsets[add_nodes]]
    absorbed[lefts] = is_add[lefts] & (uses[lefts] == 1)
    # A sum's terms go after the recorded edges; its node points there instead.
    starts = offsets[:-1].copy()
    extra: list[int] = []
    heads = add_nodes[~absorbed[add_nodes]]
    pairs = {
        i: (left, right)
        for i, left, right in zip(
            add_nodes.tolist(),
            flat[offsets[add_nodes]].tolist(),
            flat[offsets[add_nodes] + 1].tolist(),
        )
    }
    for i in heads.tolist():
        terms, cur = [], i
        while True:
            left, right = pairs[cur]
            terms.append(right)
            if not absorbed[left]:
                terms.append(left)
                break
            cur = left
        starts[i] = len(flat) + len(extra)
        widths[i] = len(terms)
        extra.extend(reversed(terms))
    edges = np.concatenate((flat, np.array(extra, dtype=np.intp)))

    is_leaf = op_of == op_number.get(id(None), -1)
    computed = np.flatnonzero(~is_leaf & ~absorbed)
    level = _levels(count, computed, starts[computed], widths[computed], edges)

    params, slot_leaves, constants = [], [], []
    for i in np.flatnonzero(is_leaf).tolist():
        key = id(nodes[i])
        if key in trace.slots:
            slot_leaves.append(i)
        elif key in trace.created:
            constants.append(i)
        else:
            params.append(i)
    new = np.full(count, -1, dtype=np.intp)
    slot_leaves.sort(key=lambda i: trace.slots[id(nodes[i])])  # argument order: rows stay rows
    order = [*params, *slot_leaves, *constants]
    new[order] = np.arange(1, 1 + len(order))
    top = 1 + len(order)

    widths_c, ops_c, levels_c = widths[computed], op_of[computed], level[computed]
    sort = np.lexsort((widths_c, ops_c, levels_c))  # stable: topological order within a group
    keys = np.stack((levels_c[sort], ops_c[sort], widths_c[sort]))
    cuts = [0, *(np.flatnonzero((keys[:, 1:] != keys[:, :-1]).any(axis=0)) + 1).tolist()]
    cuts.append(len(sort))
    groups: list[Group] = []
    linear = get_op("linear")
    for a, b in zip(cuts[:-1], cuts[1:]):
        members = computed[sort[a:b]]
        spec = specs[op_of[members[0]]]
        width = int(widths[members[0]])
        idx = new[edges[starts[members][None, :] + np.arange(width)[:, None]]]
        kind = "sum" if spec is add else "block" if spec.variadic else "op"
        if kind == "op":  # in the order of their first input: an elementwise op after a
            by_input = np.argsort(idx[0], kind="stable")  # group reads it as one range
            members, idx = members[by_input], idx[:, by_input]
        grid = None
        if spec is linear:
            members, idx, grid = _as_grid(members, idx)
            kind = "matmul" if grid is not None else kind
        new[members] = np.arange(top, top + len(members))
        group = Group(kind, None if spec is add else spec, top, top + len(members), idx)
        group.grid = grid
        groups.append(group)
        top += len(members)

    params = _order_parameters(params, groups, top)
    needs = np.zeros(top, dtype=bool)
    needs[1 : 1 + len(params)] = [nodes[i].grad is not None for i in params]
    for group in groups:
        needs[group.start : group.stop] = needs[group.idx].any(axis=0)
        group.need_rows = np.flatnonzero(needs[group.idx].any(axis=1))
    return Plan(
        size=top,
        params=[nodes[i] for i in params],
        param_start=1,
        slot_start=1 + len(params),
        slot_of=np.array([trace.slots[id(nodes[i])] for i in slot_leaves], dtype=np.intp),
        constants={int(new[i]): nodes[i]._data for i in constants},
        groups=groups,
        levels=int(level.max(initial=0)),
        outputs=new[roots].tolist(),
        needs_grad=needs,
        folded=int(absorbed.sum()),
    )


def _order_parameters(params: list[int], groups: list[Group], size: int) -> list[int]:
    """Renumber the parameter slots (1..P) in the order the groups first read them.

    A layer's weights then sit in its weight matrix's order (rows of weights, bias last), so
    that gathers and scatters become strided views instead of index copies. Rewrites every
    group's ``idx``; returns the parameters (graph positions) in their new slot order.
    """
    count = len(params)
    seen: list[np.ndarray] = []
    for group in groups:
        if group.kind == "matmul":
            S, U = group.grid
            k = group.idx.shape[0]
            n = (k - 1) // 2
            cube = group.idx.reshape(k, S, U)[: n + 1, 0, :]  # (bias + weights, units)
            seen.append(np.concatenate((cube[1:], cube[:1])).T.ravel())
        else:
            seen.append(group.idx.T.ravel())
    reads = np.concatenate([*seen, np.arange(1, count + 1)])
    reads = reads[(reads >= 1) & (reads <= count)]
    _, first = np.unique(reads, return_index=True)
    order = reads[np.sort(first)]  # old slots, in order of first read
    remap = np.arange(size)
    remap[order] = np.arange(1, count + 1)
    for group in groups:
        group.idx = remap[group.idx]
    return [params[slot - 1] for slot in order.tolist()]


def _levels(
    count: int, computed: np.ndarray, starts: np.ndarray, widths: np.ndarray, edges: np.ndarray
) -> np.ndarray:
    """Each node's level: 0 for leaves, else one more than its highest input's.

    Node ``computed[j]``'s inputs are ``edges[starts[j] : starts[j] + widths[j]]``. Shallow
    graphs: numpy passes, each settling the nodes whose inputs are all settled and revisiting
    only the rest. A deep graph falls back to one Python step per node, in topological order.
    """
    level = np.zeros(count, dtype=np.intp)
    settled = np.ones(count, dtype=bool)
    settled[computed] = False
    active = np.arange(len(computed))
    for _ in range(RELAX_PASSES):
        if not len(active):
            return level
        w = widths[active]
        heads = np.zeros(len(active), dtype=np.intp)
        np.cumsum(w[:-1], out=heads[1:])
        inputs = edges[np.repeat(starts[active] - heads, w) + np.arange(int(w.sum()))]
        nodes = computed[active]
        level[nodes] = np.maximum.reduceat(level[inputs], heads) + 1
        done = np.logical_and.reduceat(settled[inputs], heads)
        settled[nodes[done]] = True
        active = active[~done]
    levels = level.tolist()
    get = levels.__getitem__
    for i, a, w in zip(computed.tolist(), starts.tolist(), widths.tolist()):
        levels[i] = 1 + max(map(get, edges[a : a + w].tolist()))
    return np.array(levels, dtype=np.intp)


def _as_grid(
    members: np.ndarray, idx: np.ndarray
) -> tuple[np.ndarray, np.ndarray, tuple[int, int] | None]:
    """Reorder a ``linear`` group sample-major if its nodes form a full (S x U) grid.

    Row 0 of ``idx`` is the bias, rows 1..n the weights, rows n+1..2n the inputs; a unit is a
    distinct (bias, weights) column, a sample a distinct inputs column.
    """
    k, m = idx.shape
    n = (k - 1) // 2
    if k != 2 * n + 1 or n == 0 or m < 2:
        return members, idx, None
    unit_of, U = _distinct_columns(idx[: n + 1])
    sample_of, S = _distinct_columns(idx[n + 1 :])
    if U * S != m:
        return members, idx, None
    cell = sample_of * U + unit_of
    if len(np.unique(cell)) != m:
        return members, idx, None
    order = np.argsort(cell)
    return members[order], idx[:, order], (S, U)


def _distinct_columns(block: np.ndarray) -> tuple[np.ndarray, int]:
    """A number per column of ``block``, equal for equal columns; and how many distinct.

    Columns are told apart by a random linear hash, then checked against their group's first
    column; should two different columns ever share a hash, tuples decide instead.
    """
    weights = np.random.default_rng(0).integers(1, 2**62, size=block.shape[0], dtype=np.int64)
    hashes = (block.astype(np.int64) * weights[:, None]).sum(axis=0)  # wraps around: fine
    unique, first, ids = np.unique(hashes, return_index=True, return_inverse=True)
    ids = ids.ravel()
    if np.array_equal(block, block[:, first[ids]]):
        return ids, len(unique)
    seen: dict[tuple, int] = {}
    ids = [seen.setdefault(col, len(seen)) for col in map(tuple, block.T.tolist())]
    return np.array(ids, dtype=np.intp), len(seen)
