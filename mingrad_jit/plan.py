"""Planning: turn a recorded graph into flat index arrays, grouped for one numpy call each.

Every node gets a slot in one float64 buffer: slot 0 is left unused, then come the
parameters (read on every call), the leaves made from arguments (fed on every call), and the
constants written in the function (kept), then the computed nodes, one contiguous range per
group. Single-use ``add`` chains (``sum()`` of many terms) are folded into n-ary sums, added
left to right as eager does. Nodes are grouped by level (longest path from a leaf) and, within
a level, by op and input count; a group of ``linear`` nodes whose weight rows are shared by
every input row is a matrix product.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from itertools import filterfalse, repeat
from operator import attrgetter, itemgetter

import numpy as np

from mingrad_core import OpSpec, Scalar, get_op, value_of

from .trace import Trace

RELAX_PASSES = 64  # numpy passes over the edges to find levels before looping per node
NARROW = 16  # ... or as soon as a pass settles less than 1 in NARROW + 1 of the nodes left


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


@dataclass(eq=False)
class Batch:
    """One ``vmap`` call inside a trace: the plan of one sample, and where the batch's numbers
    are (``feed``: for each argument leaf of ``plan``, its slot in the flattened arguments for
    each of the ``samples`` samples)."""

    plan: Plan
    feed: np.ndarray
    outputs: int  # per sample
    samples: int


class BatchLeaf(Scalar):
    """A leaf of the trace around a ``vmap`` call standing for the sum of one of its results
    over samples ``start`` to ``stop - 1`` (one sample: that sample's result), plus 0.0 when
    ``zero`` (``sum()``'s start). ``source`` is ``(batch, output index)``. A replay computes
    its value from the batch's and sends its gradient back to those samples."""

    __slots__ = ("source", "start", "stop", "zero")

    source: tuple[Batch, int]
    start: int
    stop: int
    zero: bool


@dataclass
class Plan:
    """The flat form of one trace: buffer layout, groups in level order, outputs, parameters.

    ``batches`` lists the ``vmap`` calls the trace holds, each with the buffer slots of its
    results (outputs x samples; 0 where the graph does not use a result) and of its sums over
    samples (rows of slot, output, start, stop, zero; see ``BatchLeaf``): a replay computes
    them before its groups, and backpropagates their gradients after.
    """

    size: int
    params: list[Scalar]
    param_start: int
    slot_start: int
    slot_of: np.ndarray  # for each argument leaf, its slot in the flattened arguments
    constants: dict[int, float]
    groups: list[Group]
    levels: int
    outputs: list[int]  # buffer slot of each root
    needs_grad: np.ndarray  # per buffer slot: a parameter, or computed from one
    folded: int  # how many add nodes were folded into n-ary sums
    batches: list[tuple[Batch, np.ndarray, np.ndarray]] = field(default_factory=list)

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
    """Plan the replay of ``trace``: fold sums, level, group and number every node.

    The graph is read once into arrays (positions in topological order; each node's inputs a
    range of one edge list). Folding, levels and the buffer layout are numpy over those arrays;
    Python loops only over the groups, and over the nodes of a deep, narrow graph to level them.
    """
    nodes, pos, starts, widths, edges = _read(trace.roots)
    count = len(nodes)
    roots = list(map(pos.__getitem__, trace.roots))
    uses = np.bincount(edges, minlength=count)
    uses[roots] += 1
    op_of, specs = _number_ops(nodes)
    is_add = op_of == _number(specs, get_op("add"))
    absorbed, starts, widths, edges = _fold(is_add, uses, starts, widths, edges)
    is_leaf = op_of == _number(specs, None)
    computed = np.flatnonzero(~is_leaf & ~absorbed)
    level = _levels(count, computed, starts[computed], widths[computed], edges)

    leaves = np.flatnonzero(is_leaf)
    batched, found = _batch_outputs(nodes, leaves)
    if len(batched):
        leaves = leaves[~np.isin(leaves, batched)]
    params, slot_leaves, slot_of, constants = _split_leaves(trace, nodes, leaves)
    new = np.full(count, -1, dtype=np.intp)  # each node's buffer slot
    order = np.concatenate((params, slot_leaves, batched, constants))
    new[order] = np.arange(1, 1 + len(order))
    groups = _layout(computed, level, op_of, specs, starts, widths, edges, new, 1 + len(order))
    size = groups[-1].stop if groups else 1 + len(order)

    params = _order_parameters(params.tolist(), groups, size)
    new[params] = np.arange(1, 1 + len(params))  # for a root that is a parameter
    needs = np.zeros(size, dtype=bool)
    needs[1 : 1 + len(params)] = True  # frozen or not is read at each backward, as eager does
    needs[new[batched]] = True
    for group in groups:
        reads = needs[group.idx]
        needs[group.start : group.stop] = reads.any(axis=0)
        group.need_rows = np.flatnonzero(reads.any(axis=1))
    return Plan(
        size=size,
        params=[nodes[i] for i in params],
        param_start=1,
        slot_start=1 + len(params),
        slot_of=slot_of,
        constants=dict(
            zip(new[constants].tolist(), [value_of(nodes[i]) for i in constants.tolist()])
        ),
        groups=groups,
        levels=int(level.max(initial=0)),
        outputs=new[roots].tolist(),
        needs_grad=needs,
        folded=int(absorbed.sum()),
        batches=[(batch, *_batch_slots(batch, where, nodes, new)) for batch, where in found],
    )


def _batch_outputs(nodes: list[Scalar], leaves: np.ndarray) -> tuple[np.ndarray, list]:
    """The leaves that stand for ``vmap`` results (graph positions, batch by batch, output by
    output, sample by sample), and per batch those leaves' positions."""
    found: dict[Batch, list[int]] = {}
    for i in leaves.tolist():
        node = nodes[i]
        if isinstance(node, BatchLeaf):
            found.setdefault(node.source[0], []).append(i)
    if not found:
        return np.zeros(0, dtype=np.intp), []

    def key(i: int) -> tuple[int, int, int]:
        node = nodes[i]
        return node.source[1], node.start, node.stop

    ordered = [sorted(where, key=key) for where in found.values()]
    return np.array([i for where in ordered for i in where], dtype=np.intp), list(
        zip(found, ordered)
    )


def _batch_slots(
    batch: Batch, where: list[int], nodes: list[Scalar], new: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """The buffer slot of each of ``batch``'s results (outputs x samples, 0 where unused), and
    its sums over samples as rows of (slot, output, start, stop, zero)."""
    slots = np.zeros((batch.outputs, batch.samples), dtype=np.intp)
    sums = []
    for i in where:
        node = nodes[i]
        k = node.source[1]
        if node.stop - node.start == 1 and not node.zero:
            slots[k, node.start] = new[i]
        else:
            sums.append((new[i], k, node.start, node.stop, node.zero))
    return slots, np.array(sums, dtype=np.intp).reshape(-1, 5)


def _read(roots: list[Scalar]) -> tuple[list[Scalar], dict, np.ndarray, np.ndarray, np.ndarray]:
    """The graph the roots depend on, as arrays: the nodes in ``toposort`` order, each node's
    position, and its inputs' positions as one edge list.

    Node ``i``'s inputs are ``edges[starts[i] : starts[i] + widths[i]]``, in argument order.
    This is ``toposort``'s depth-first walk, placing the nodes in the same order, that looks up
    a node's inputs as it places it: a node whose inputs are all placed is placed at once, else
    it waits on the stack under those that are not. (An input is never itself waiting: it would
    be an input of its own input, and the graph has no cycles.) Calling ``toposort`` and then
    reading every node's ``parents`` walks the edges twice and costs over a third more, so this
    reads ``parents`` once per node as it walks. Positions are looked up by node (an identity
    hash), not by ``id()``, which makes a new int per edge.
    """
    pos: dict[Scalar, int] = {}
    get = pos.get
    nodes: list[Scalar] = []
    sizes: list[int] = []  # each node's number of inputs
    flat: list[int] = []  # their positions, node after node
    place, size, edge, edges = nodes.append, sizes.append, flat.append, flat.extend
    stack = list(roots)
    pop, push = stack.pop, stack.append
    while stack:
        node = pop()
        if node in pos:
            continue
        parents = node.parents
        n = len(parents)
        if n == 2:
            a, b = parents
            i, j = get(a), get(b)
            if i is None or j is None:
                push(node)
                if j is None:
                    push(b)
                if i is None:
                    push(a)
                continue
            edge(i)
            edge(j)
            size(2)
        elif n == 1:
            i = get(parents[0])
            if i is None:
                push(node)
                push(parents[0])
                continue
            edge(i)
            size(1)
        elif n == 0:  # a leaf
            size(0)
        else:  # three or more inputs, looked up at once
            try:
                edges(itemgetter(*parents)(pos))
            except KeyError:  # not all placed yet
                push(node)
                stack.extend(filterfalse(pos.__contains__, reversed(parents)))
                continue
            size(n)
        pos[node] = len(nodes)
        place(node)
    widths = np.fromiter(sizes, dtype=np.intp, count=len(nodes))
    starts = np.zeros(len(nodes), dtype=np.intp)
    np.cumsum(widths[:-1], out=starts[1:])
    return nodes, pos, starts, widths, np.fromiter(flat, dtype=np.intp, count=len(flat))


def _number_ops(nodes: list[Scalar]) -> tuple[np.ndarray, list[OpSpec | None]]:
    """Each node's op as a number, and the ops (``None``: a leaf) in order of first appearance.

    OpSpecs hash slowly (pydantic), so they are told apart by ``id``.
    """
    ops_ = list(map(attrgetter("op"), nodes))
    ids = np.fromiter(map(id, ops_), dtype=np.intp, count=len(nodes))
    _, first, number = np.unique(ids, return_index=True, return_inverse=True)
    by_appearance = np.argsort(first)
    renumber = np.empty(len(first), dtype=np.intp)
    renumber[by_appearance] = np.arange(len(first))
    return renumber[number.ravel()], [ops_[i] for i in first[by_appearance].tolist()]


def _number(specs: list[OpSpec | None], op: OpSpec | None) -> int:
    """``op``'s number in ``specs`` (compared by identity), or -1 if no node has it."""
    return next((k for k, spec in enumerate(specs) if spec is op), -1)


def _fold(
    is_add: np.ndarray, uses: np.ndarray, starts: np.ndarray, widths: np.ndarray, edges: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Fold single-use ``add`` chains (``sum()`` of many terms) into n-ary sums.

    An ``add`` used once, as the left input of another ``add``, is absorbed into that one. A
    chain's last add (its head) then reads all the terms in the order eager adds them: the
    innermost add's left input, then every add's right input from the innermost out. The terms
    go after the recorded edges and the head's range points there. Returns which nodes were
    absorbed, and the new starts, widths and edges.
    """
    adds = np.flatnonzero(is_add)
    lefts = edges[starts[adds]]
    absorbed = np.zeros(len(is_add), dtype=bool)
    absorbed[lefts] = is_add[lefts] & (uses[lefts] == 1)
    # Each add's head, as an index into adds: follow the "absorbed into" links, each pass
    # doubling the distance covered.
    into = np.flatnonzero(absorbed[lefts])  # the adds whose left input is absorbed into them
    index = np.zeros(len(is_add), dtype=np.intp)
    index[adds] = np.arange(len(adds))
    head = np.arange(len(adds))
    head[index[lefts[into]]] = into
    while True:
        further = head[head]
        if np.array_equal(further, head):
            break
        head = further
    # The adds chain by chain (heads in topological order), innermost first: an add comes
    # after its left input in topological order.
    by_chain = np.argsort(head, kind="stable")
    chained, owner = adds[by_chain], adds[head[by_chain]]
    opens = np.ones(len(chained), dtype=bool)  # the innermost add of each chain
    opens[1:] = owner[1:] != owner[:-1]
    firsts = np.flatnonzero(opens)
    # Chain c's terms start at firsts[c] + c: its innermost add's left input, then the rights.
    at = firsts + np.arange(len(firsts))
    terms = np.empty(len(chained) + len(firsts), dtype=np.intp)
    terms[at] = edges[starts[chained[firsts]]]
    terms[np.arange(len(chained)) + np.cumsum(opens)] = edges[starts[chained] + 1]
    heads = owner[firsts]
    starts, widths = starts.copy(), widths.copy()
    starts[heads] = len(edges) + at
    widths[heads] = np.diff(at, append=len(terms))
    return absorbed, starts, widths, np.concatenate((edges, terms))


def _levels(
    count: int, computed: np.ndarray, starts: np.ndarray, widths: np.ndarray, edges: np.ndarray
) -> np.ndarray:
    """Each node's level: 0 for leaves, else one more than its highest input's.

    Node ``computed[j]``'s inputs are ``edges[starts[j] : starts[j] + widths[j]]``. Only the
    computed inputs count (a leaf is level 0): a node with none is level 1. Numpy passes each
    settle the nodes whose inputs are all settled, and revisit only the rest; once a pass
    settles few of the nodes left (the graph is deep and narrow from there), or after
    ``RELAX_PASSES``, the rest is one Python step per node, in topological order.
    """
    heads = np.zeros(len(computed), dtype=np.intp)
    np.cumsum(widths[:-1], out=heads[1:])
    inputs = edges[np.repeat(starts - heads, widths) + np.arange(int(widths.sum()))]
    level = np.zeros(count, dtype=np.intp)
    level[computed] = 1
    settled = level == 0
    reads = ~settled[inputs]  # the computed inputs
    lengths = np.add.reduceat(reads, heads) if len(heads) else heads  # per node: how many
    inputs = inputs[reads]
    waiting = lengths > 0
    nodes, lengths = computed[waiting], lengths[waiting]  # nodes, inputs[...] node by node
    settled[computed] = True
    settled[nodes] = False
    for _ in range(RELAX_PASSES):
        if not len(nodes):
            return level
        opens = np.cumsum(lengths) - lengths
        level[nodes] = np.maximum.reduceat(level[inputs], opens) + 1
        done = np.logical_and.reduceat(settled[inputs], opens)
        settled[nodes[done]] = True
        inputs = inputs[np.repeat(~done, lengths)]
        nodes, lengths = nodes[~done], lengths[~done]
        if len(nodes) > NARROW * (len(done) - len(nodes)):  # deep and narrow from here on
            break
    levels, inputs = level.tolist(), inputs.tolist()
    get = levels.__getitem__
    a = 0
    for i, n in zip(nodes.tolist(), lengths.tolist()):
        levels[i] = 1 + max(map(get, inputs[a : a + n]))
        a += n
    return np.array(levels, dtype=np.intp)


def _split_leaves(
    trace: Trace, nodes: list[Scalar], leaves: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The leaves as parameters, argument leaves and constants (graph positions; each kind in
    topological order, but the argument leaves in argument order: rows stay rows), and the
    argument leaves' slots in the flattened arguments."""
    keys = list(map(id, map(nodes.__getitem__, leaves.tolist())))
    slot = np.fromiter(map(trace.slots.get, keys, repeat(-1)), dtype=np.intp, count=len(keys))
    made = np.fromiter(map(trace.created.__contains__, keys), dtype=bool, count=len(keys))
    fed = slot >= 0
    by_slot = np.argsort(slot[fed], kind="stable")
    return leaves[~fed & ~made], leaves[fed][by_slot], slot[fed][by_slot], leaves[~fed & made]


def _layout(
    computed: np.ndarray,
    level: np.ndarray,
    op_of: np.ndarray,
    specs: list[OpSpec | None],
    starts: np.ndarray,
    widths: np.ndarray,
    edges: np.ndarray,
    new: np.ndarray,
    top: int,
) -> list[Group]:
    """The computed nodes' groups in level order, numbered from slot ``top`` on (into ``new``).

    Within a level, groups go by op (in order of first appearance) and input count; within a
    group, nodes keep topological order, but an elementwise op's go in the order of their first
    input, and a matmul's sample-major over its grid.
    """
    if not len(computed):  # the outputs are leaves (or there are none)
        return []
    widths_c, ops_c, levels_c = widths[computed], op_of[computed], level[computed]
    sort = np.lexsort((widths_c, ops_c, levels_c))  # stable: topological order within a group
    keys = np.stack((levels_c[sort], ops_c[sort], widths_c[sort]))
    cuts = [0, *(np.flatnonzero((keys[:, 1:] != keys[:, :-1]).any(axis=0)) + 1).tolist()]
    cuts.append(len(sort))
    groups: list[Group] = []
    add, linear = get_op("add"), get_op("linear")
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
    return groups


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
    order = np.full(m, -1, dtype=np.intp)  # the node in each cell, sample-major
    order[sample_of * U + unit_of] = np.arange(m)
    if (order < 0).any():  # m nodes in m cells, one empty: another holds two
        return members, idx, None
    return members[order], idx[:, order], (S, U)


def all_distinct(a: np.ndarray) -> bool:
    """Whether no number occurs twice in ``a`` (np.unique would import numpy.ma on first use:
    a tenth of a second of a first call)."""
    ordered = np.sort(a, axis=None)
    return not (ordered[1:] == ordered[:-1]).any()


def _distinct_columns(block: np.ndarray) -> tuple[np.ndarray, int]:
    """A number per column of ``block``, equal for equal columns, in order of first appearance;
    and how many distinct.

    Columns are told apart by a random linear hash, then checked against their group's first
    column; should two different columns ever share a hash, tuples decide instead.
    """
    hashes = _hash_weights(block.shape[0]) @ block.astype(np.int64, copy=False)  # wraps: fine
    unique, first, ids = np.unique(hashes, return_index=True, return_inverse=True)
    ids = ids.ravel()
    if np.array_equal(block, block[:, first[ids]]):  # numbered in order of first appearance,
        rank = np.empty(len(first), dtype=np.intp)  # so that a layer's units stay in order
        rank[np.argsort(first)] = np.arange(len(first))
        return rank[ids], len(unique)
    seen: dict[tuple, int] = {}
    ids = [seen.setdefault(col, len(seen)) for col in map(tuple, block.T.tolist())]
    return np.array(ids, dtype=np.intp), len(seen)


@functools.cache
def _hash_weights(rows: int) -> np.ndarray:
    """The column hash's weights for ``rows`` rows (made once per row count: a generator
    costs more to seed than a small group costs to hash)."""
    return np.random.default_rng(0).integers(1, 2**62, size=rows, dtype=np.int64)
