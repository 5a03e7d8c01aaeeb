"""MinGrad's eager engine alone against micrograd 0.1.0 (issue 10), in one process.

What is measured (both engines in the same process, alternating, an untimed ``gc.collect()``
before every timed run, best of ``--rounds``, 5 by default):

1. The engine-alone training step: the seed's step (100 make_moons samples, noise 0.1, seed 0;
   MLP 2-16-16-1; hinge loss + 1e-4 L2; zero_grad; backward; SGD) with every neuron a chain of
   ``*`` and ``+`` nodes as micrograd builds it, with the garbage collector on and off (off
   only inside the timed region), as "Nx micrograd" against the issue's targets.
2. The same step by phase on the same graph: build (the forward pass), backward (zero_grad +
   backward), and the rest (SGD update, and dropping the graph), in ms and ns per node.
3. The fused step: mingrad's own MLP, one ``linear`` node per neuron.
4. Per node: a 100k-node chain of tanh (build, backward), a 100k-term ``sum()`` (backward),
   and memory (tracemalloc) of the chain and of the step's graph: bytes per node built, and
   at the peak of backward (micrograd's chain shorter: tracemalloc is slow on deep recursion).
   micrograd 0.1.0 has no tanh; this script gives its ``Value`` one written as its other ops
   are (one closure per node).
5. Second order on the fused tanh MLP: ``grad(loss, inputs, create_graph=True)`` for the 200
   input Scalars, then ``grad(sum(gs), inputs)``; the nodes ``create_graph`` built. PyTorch
   (one thread) for reference when it is importable; it is never installed for this.
6. GC accounting of the best gc-on step of each engine (``gc.callbacks``): collections by
   generation and the time spent in them.

Only the public API is used (Scalar, grad, MLP, Neuron, toposort).

Run: uv run --group bench python benchmarks/engine.py [--rounds N] [--clock wall|cpu]
(about 80 s of CPU time; --clock cpu times this process's CPU time, steadier than the wall clock
when other work shares the machine)

Before: the engine as committed at fdfe82f, before the work on issue 10, run from an export of
that commit: `git archive fdfe82f mingrad_core mingrad_ops mingrad_nn mingrad_viz mingrad | tar
-x -C /tmp/before`, then from /tmp: `MINGRAD_PLUGINS= PYTHONPATH=/tmp/before uv run --project
/work/main --group bench python /work/main/benchmarks/engine.py`. 2-core machine, load average
about 1 (other runs of the same engine under load 5-8 gave 2.2-2.7x gc on, 0.5-0.7x gc off):

    mingrad vs micrograd 0.1.0, Python 3.11.7, 2 CPUs, wall clock, best of 5,
    alternating engines, an untimed gc.collect() before each timed run
    1. engine-alone step, each neuron a chain of * and + (65,818 nodes; micrograd 65,818)
       targets: >= 5x micrograd with gc on, >= 1.0x with gc off (aims: 10x, 1.5x)
       gc on : mingrad  519.5 ms, micrograd 1393.0 ms: 2.68x micrograd, target 5.0x NOT met
       gc off: mingrad  288.0 ms, micrograd  188.4 ms: 0.65x micrograd, target 1.0x NOT met
    2. the same step by phase, best of each: build = forward, backward = zero_grad +
       backward, rest = SGD update + dropping the graph; ns per node of the graph
                             build              backward           rest
       gc on  mingrad     265.7 ms   4036    195.9 ms   2977     15.3 ms
       gc on  micrograd  1241.7 ms  18865     96.5 ms   1467      0.2 ms
       backward per node, mingrad / micrograd: 2.03 (target <= 1)
       gc off mingrad      98.4 ms   1496    174.5 ms   2652     15.0 ms
       gc off micrograd    97.8 ms   1487     90.0 ms   1367      0.1 ms
       backward per node, mingrad / micrograd: 1.94 (target <= 1)
    3. fused step, mingrad's MLP with one `linear` node per neuron (8,318 nodes)
       gc on : mingrad    94.6 ms, micrograd  1393.0 ms: 14.73x micrograd
       gc off: mingrad    60.8 ms, micrograd   188.4 ms:  3.10x micrograd
    4. per node, best of 3, alternating; ns per node
                                                   build  build gc off  backward
       tanh chain of 100,000 mingrad    100,001 nodes   5265          2676      3365
       tanh chain of 100,000 micrograd  100,001 nodes  13061          2120      1231
       sum() of 100,000 terms mingrad    200,001 nodes   4326          1450      2416
       sum() of 100,000 terms micrograd  200,001 nodes  11421          1755       987
       memory (tracemalloc), bytes per node:           built  at the peak of backward
       tanh chain        mingrad    100,001 nodes          152          266 (+114 in it)
       tanh chain        micrograd    2,001 nodes          688          818 (+130 in it)
       engine-alone step mingrad     65,818 nodes          157          241 (+84 in it)
       engine-alone step micrograd   65,818 nodes          680          744 (+64 in it)
    5. second order on the fused tanh MLP, best of 3: the seed's loss, then
       gs = grad(loss, inputs, create_graph=True) for the 200 inputs, grad(sum(gs), inputs)
       mingrad: both grads 1376.7 ms (create_graph 1085.9 ms, again 290.8 ms; forward 24.7 ms)
       create_graph=True built 77,500 nodes beyond the forward graph's 8,318 (9.3x)
       PyTorch: not importable here, so not timed (never installed for this)
    6. gc accounting of each engine's best gc-on step (gc.callbacks)
       mingrad       collections by generation 170/15/1, 175.9 ms in gc (34% of the step), 0 freed
       micrograd     collections by generation 590/53/4, 1107.8 ms in gc (80% of the step), 0 freed
       mingrad-fused collections by generation 21/1/0, 3.7 ms in gc (4% of the step), 0 freed
    (ran 85 s, 85 s of CPU time)

A second run, a minute later (sections 1 and 2):

    gc on : mingrad  533.8 ms, micrograd 1333.4 ms: 2.50x micrograd, target 5.0x NOT met
    gc off: mingrad  282.0 ms, micrograd  194.0 ms: 0.69x micrograd, target 1.0x NOT met
    backward per node, mingrad / micrograd: 2.39 gc on, 1.84 gc off

After (this round: no ``__getattr__`` on Scalar, OpSpec a pydantic dataclass, create_graph
summing through ``linear``; run just before leaves at 0.0 were accumulated in place, which
made sum()'s backward 3x faster), quiet machine, wall clock, sections 1 and 2:

    mingrad vs micrograd 0.1.0, Python 3.11.7, 2 CPUs, wall clock, best of 5,
    alternating engines, an untimed gc.collect() before each timed run
    1. engine-alone step, each neuron a chain of * and + (65,818 nodes; micrograd 65,818)
       targets: >= 5x micrograd with gc on, >= 1.0x with gc off (aims: 10x, 1.5x)
       gc on : mingrad  126.4 ms, micrograd 1326.2 ms: 10.49x micrograd, target 5.0x met
       gc off: mingrad  104.8 ms, micrograd  205.6 ms: 1.96x micrograd, target 1.0x met
    2. the same step by phase, best of each: build = forward, backward = zero_grad +
       backward, rest = SGD update + dropping the graph; ns per node of the graph
                             build              backward           rest
       gc on  mingrad      65.5 ms    994     49.0 ms    745     11.9 ms
       gc on  micrograd  1227.1 ms  18644     99.0 ms   1504      0.1 ms
       backward per node, mingrad / micrograd: 0.50 (target <= 1)

Sections 4 and 5 of that run: tanh chain build gc off 666 vs 1177 ns per node, backward 586
vs 1398; sum() backward 519 vs 1130 (a later run); second order 354 ms, 24,500 nodes (2.9x
the forward graph). A run on the CPU clock while two other jobs ran: 10.13x gc on, 1.52x gc
off, backward per node 0.54 / 0.89.
"""

from __future__ import annotations

import argparse
import gc
import math
import os
import random
import sys
import time
import tracemalloc

from _common import X, Y, chained_mlp, forward, seed_loss, update
from micrograd.engine import Value
from micrograd.nn import MLP as MicroMLP

from mingrad import MLP
from mingrad_core import Scalar, grad

try:
    from mingrad_core import toposort
except ImportError:  # engines before toposort was public: walk the public ``parents``

    def toposort(roots):
        roots = [roots] if isinstance(roots, Scalar) else list(roots)
        seen, stack = {id(r): r for r in roots}, roots
        while stack:
            for p in stack.pop().parents:
                if id(p) not in seen:
                    seen[id(p)] = p
                    stack.append(p)
        return list(seen.values())  # unordered: only counted and compared as sets here


clock = time.perf_counter


def _micrograd_tanh(self):
    t = math.tanh(self.data)
    out = Value(t, (self,), "tanh")

    def _backward():
        self.grad += (1 - t**2) * out.grad

    out._backward = _backward
    return out


if not hasattr(Value, "tanh"):  # micrograd 0.1.0 has none; written as its relu is
    Value.tanh = _micrograd_tanh


def count_nodes(root) -> int:
    """Nodes in ``root``'s graph: ``toposort`` for mingrad, a walk of ``_prev`` for micrograd."""
    if isinstance(root, Scalar):
        return len(toposort(root))
    seen, stack = {id(root)}, [root]
    while stack:
        for child in stack.pop()._prev:
            if id(child) not in seen:
                seen.add(id(child))
                stack.append(child)
    return len(seen)


def deep_recursion(nodes: int) -> None:
    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10 * nodes))  # micrograd recurses


class GcMeter:
    """A ``gc.callbacks`` entry counting collections by generation, and their time, when on."""

    def __init__(self) -> None:
        self.active = False
        self.reset()

    def reset(self) -> None:
        self.counts, self.seconds, self.collected, self._start = [0, 0, 0], 0.0, 0, 0.0

    def __call__(self, phase: str, info: dict) -> None:
        if not self.active:
            return
        if phase == "start":
            self._start = clock()
        else:
            self.seconds += clock() - self._start
            self.counts[info["generation"]] += 1
            self.collected += info["collected"]


def phased_step(model, value) -> tuple[float, float, float]:
    """The seed's step; seconds spent building, in zero_grad + backward, and in the rest."""
    t0 = clock()
    loss = forward(model, value)
    t1 = clock()
    model.zero_grad()
    loss.backward()
    t2 = clock()
    update(model)
    del loss  # mingrad frees its graph here, by reference counting; micrograd's waits for gc
    return t1 - t0, t2 - t1, clock() - t2


def time_steps(engines: dict, rounds: int, meter: GcMeter) -> dict:
    """Best total and best phases per (engine, gc on/off); gc accounting of the best gc-on step."""
    best = {}
    for _ in range(rounds):
        for gc_on in (True, False):
            for name, (model, value) in engines.items():
                was_enabled = gc.isenabled()
                gc.collect()  # untimed: neither engine pays for the other's garbage
                meter.reset()
                meter.active = gc_on
                if not gc_on:
                    gc.disable()
                try:
                    start = clock()
                    phases = phased_step(model, value)
                    total = clock() - start
                finally:
                    meter.active = False
                    if was_enabled:
                        gc.enable()
                b = best.setdefault((name, gc_on), {"total": math.inf, "phases": [math.inf] * 3})
                b["phases"] = [min(x, y) for x, y in zip(b["phases"], phases)]
                if total < b["total"]:
                    b["total"] = total
                    b["gc"] = (list(meter.counts), meter.seconds, meter.collected)
    return best


def ms(seconds: float, width: int = 7) -> str:
    return f"{seconds * 1e3:{width}.1f} ms"


def verdict(ratio: float, target: float) -> str:
    return "met" if ratio >= target else "NOT met"


def report_steps(rounds: int) -> dict:
    random.seed(0)
    engines = {
        "mingrad": (chained_mlp(), Scalar),
        "micrograd": (MicroMLP(2, [16, 16, 1]), Value),
        "mingrad-fused": (MLP(2, [16, 16, 1], seed=0), Scalar),
    }
    nodes = {name: count_nodes(forward(m, v)) for name, (m, v) in engines.items()}
    meter = GcMeter()
    gc.callbacks.append(meter)
    try:
        best = time_steps(engines, rounds, meter)
    finally:
        gc.callbacks.remove(meter)

    print(
        "1. engine-alone step, each neuron a chain of * and + "
        f"({nodes['mingrad']:,} nodes; micrograd {nodes['micrograd']:,})"
    )
    print("   targets: >= 5x micrograd with gc on, >= 1.0x with gc off (aims: 10x, 1.5x)")
    for gc_on, target in ((True, 5.0), (False, 1.0)):
        ours, theirs = best["mingrad", gc_on]["total"], best["micrograd", gc_on]["total"]
        ratio = theirs / ours
        print(
            f"   gc {'on ' if gc_on else 'off'}: mingrad {ms(ours, 6)}, micrograd {ms(theirs, 6)}: "
            f"{ratio:.2f}x micrograd, target {target}x {verdict(ratio, target)}"
        )

    print("2. the same step by phase, best of each: build = forward, backward = zero_grad +")
    print("   backward, rest = SGD update + dropping the graph; ns per node of the graph")
    print("                         build              backward           rest")
    for gc_on in (True, False):
        for name in ("mingrad", "micrograd"):
            n = nodes[name]
            build, backward, rest = best[name, gc_on]["phases"]
            print(
                f"   gc {'on ' if gc_on else 'off'} {name:9} {ms(build)} {build / n * 1e9:6.0f}  "
                f"{ms(backward)} {backward / n * 1e9:6.0f}  {ms(rest)}"
            )
        ours, theirs = (best[e, gc_on]["phases"][1] / nodes[e] for e in ("mingrad", "micrograd"))
        print(f"   backward per node, mingrad / micrograd: {ours / theirs:.2f} (target <= 1)")

    print(
        "3. fused step, mingrad's MLP with one `linear` node per neuron "
        f"({nodes['mingrad-fused']:,} nodes)"
    )
    for gc_on in (True, False):
        ours, theirs = best["mingrad-fused", gc_on]["total"], best["micrograd", gc_on]["total"]
        print(
            f"   gc {'on ' if gc_on else 'off'}: mingrad {ms(ours)}, micrograd {ms(theirs)}: "
            f"{theirs / ours:5.2f}x micrograd"
        )

    return best


def tanh_chain(value, n: int):
    y = value(0.5)
    for _ in range(n):
        y = y.tanh()
    return y


def sum_terms(value, n: int):
    rng = random.Random(0)
    return sum(value(rng.uniform(-1, 1)) for _ in range(n))


def time_graph(build, gc_on: bool) -> tuple[float, float, int]:
    """Seconds to build ``build()``'s graph, to backpropagate (gc on only), and its node count."""
    was_enabled = gc.isenabled()
    gc.collect()
    if not gc_on:
        gc.disable()
    try:
        start = clock()
        y = build()
        build_s = clock() - start
    finally:
        if was_enabled:
            gc.enable()
    backward_s = math.inf
    if gc_on:
        start = clock()
        y.backward()
        backward_s = clock() - start
    return build_s, backward_s, count_nodes(y)


def memory(build) -> tuple[float, float, int]:
    """Bytes per node held once built, and at the peak of backward (graph included)."""
    gc.collect()
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        y = build()
        built = tracemalloc.get_traced_memory()[0] - base
        tracemalloc.reset_peak()
        y.backward()
        peak = tracemalloc.get_traced_memory()[1] - base
    finally:
        tracemalloc.stop()
    nodes = count_nodes(y)
    del y
    return built / nodes, peak / nodes, nodes


def report_per_node(n: int = 100_000, runs: int = 3, micro_chain: int = 2_000) -> None:
    deep_recursion(2 * n)
    print(f"4. per node, best of {runs}, alternating; ns per node")
    print("                                               build  build gc off  backward")
    builds = {
        f"tanh chain of {n:,}": lambda v: tanh_chain(v, n),
        f"sum() of {n:,} terms": lambda v: sum_terms(v, n),
    }
    best = {}
    for _ in range(runs):
        for label, build in builds.items():
            for value in (Scalar, Value):
                for gc_on in (True, False):
                    got = time_graph(lambda b=build, v=value: b(v), gc_on)
                    old = best.get((label, value, gc_on), got)
                    best[label, value, gc_on] = (*map(min, old[:2], got[:2]), got[2])
    for label in builds:
        for value, name in ((Scalar, "mingrad"), (Value, "micrograd")):
            build, backward, nodes = best[label, value, True]
            off = best[label, value, False][0]
            print(
                f"   {label:21} {name:9} {nodes:8,} nodes {build / nodes * 1e9:6.0f} "
                f"{off / nodes * 1e9:13.0f} {backward / nodes * 1e9:9.0f}"
            )
    # tracemalloc walks the whole stack on every allocation, so micrograd's recursive backward
    # is quadratic in depth under it: its chain is measured shorter (bytes per node stay put).
    random.seed(0)
    ours, theirs = chained_mlp(), MicroMLP(2, [16, 16, 1])
    graphs = [
        ("mingrad", "tanh chain", lambda: tanh_chain(Scalar, n)),
        ("micrograd", "tanh chain", lambda: tanh_chain(Value, micro_chain)),
        ("mingrad", "engine-alone step", lambda: forward(ours, Scalar)),
        ("micrograd", "engine-alone step", lambda: forward(theirs, Value)),
    ]
    print("   memory (tracemalloc), bytes per node:           built  at the peak of backward")
    for name, label, build in graphs:
        built, peak, nodes = memory(build)
        print(
            f"   {label:17} {name:9} {nodes:8,} nodes {built:12.0f} {peak:12.0f} "
            f"(+{peak - built:.0f} in it)"
        )


def second_order_mingrad(model) -> tuple[float, float, float, int, int, list[float]]:
    gc.collect()
    t0 = clock()
    inputs = [list(map(Scalar, row)) for row in X]
    loss = seed_loss(model, inputs)
    flat = [x for row in inputs for x in row]
    t1 = clock()
    gs = grad(loss, flat, create_graph=True)
    t2 = clock()
    second = grad(sum(gs), flat)
    t3 = clock()
    forward_nodes = set(toposort(loss))
    built = set(toposort(gs)) - forward_nodes
    return t1 - t0, t2 - t1, t3 - t2, len(forward_nodes), len(built), list(second)


def second_order_torch(torch, model) -> tuple[float, float, float, list[float]]:
    f64 = torch.float64
    layers = [
        (
            torch.tensor([[w.data for w in n.w] for n in layer.neurons], dtype=f64),
            torch.tensor([n.b.data for n in layer.neurons], dtype=f64),
        )
        for layer in model.layers
    ]
    params = [t for pair in layers for t in pair]
    y = torch.tensor(Y, dtype=f64)
    gc.collect()
    t0 = clock()
    x = torch.tensor(X, dtype=f64, requires_grad=True)
    h = x
    for i, (w, b) in enumerate(layers):
        h = h @ w.T + b
        if i < len(layers) - 1:
            h = torch.tanh(h)
    data_loss = torch.relu(1 - y * h[:, 0]).mean()
    loss = data_loss + 1e-4 * sum((p * p).sum() for p in params)
    t1 = clock()
    (gs,) = torch.autograd.grad(loss, x, create_graph=True)
    t2 = clock()
    (second,) = torch.autograd.grad(gs.sum(), x)
    t3 = clock()
    return t1 - t0, t2 - t1, t3 - t2, second.reshape(-1).tolist()


def report_second_order(runs: int = 5) -> None:
    model = MLP(2, [16, 16, 1], activation="tanh", seed=0)
    print(
        f"5. second order on the fused tanh MLP, best of {runs}: the seed's loss, then\n"
        "   gs = grad(loss, inputs, create_graph=True) for the 200 inputs, grad(sum(gs), inputs)"
    )
    try:
        import torch
    except ImportError:
        torch = None
    else:
        torch.set_num_threads(1)
    best = {"mingrad": [math.inf] * 3, "torch": [math.inf] * 3}
    for _ in range(runs):
        *times, fwd_nodes, built, second = second_order_mingrad(model)
        best["mingrad"] = [min(a, b) for a, b in zip(best["mingrad"], times)]
        if torch is not None:
            *times, reference = second_order_torch(torch, model)
            best["torch"] = [min(a, b) for a, b in zip(best["torch"], times)]
    forward_s, first, again = best["mingrad"]
    print(
        f"   mingrad: both grads {ms(first + again, 0)} (create_graph {ms(first, 0)}, "
        f"again {ms(again, 0)}; forward {ms(forward_s, 0)})"
    )
    print(
        f"   create_graph=True built {built:,} nodes beyond the forward graph's {fwd_nodes:,} "
        f"({built / fwd_nodes:.1f}x)"
    )
    if torch is None:
        print("   PyTorch: not importable here, so not timed (never installed for this)")
        return
    forward_s, first, again = best["torch"]
    diff = max(abs(a - b) for a, b in zip(second, reference))
    print(
        f"   PyTorch {torch.__version__}, 1 thread: both grads {ms(first + again, 0)} "
        f"(create_graph {ms(first, 0)}, again {ms(again, 0)}; forward {ms(forward_s, 0)})"
    )
    print(f"   largest difference of PyTorch's second-order gradients from mingrad's: {diff:.1e}")


def report_gc(best: dict) -> None:
    print("6. gc accounting of each engine's best gc-on step (gc.callbacks)")
    for name in ("mingrad", "micrograd", "mingrad-fused"):
        b = best[name, True]
        counts, seconds, collected = b["gc"]
        print(
            f"   {name:13} collections by generation {counts[0]}/{counts[1]}/{counts[2]}, "
            f"{ms(seconds, 0)} in gc ({seconds / b['total']:.0%} of the step), {collected} freed"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5, help="timed rounds per figure")
    parser.add_argument(
        "--clock",
        choices=("wall", "cpu"),
        default="wall",
        help="wall: time.perf_counter (default); cpu: this process's CPU time "
        "(time.process_time), steadier on a machine busy with other work",
    )
    args = parser.parse_args()
    global clock
    clock = time.perf_counter if args.clock == "wall" else time.process_time
    rounds = args.rounds
    print(
        f"mingrad vs micrograd 0.1.0, Python {sys.version.split()[0]}, {os.cpu_count()} CPUs, "
        f"{args.clock} clock, best of {rounds},\n"
        "alternating engines, an untimed gc.collect() before each timed run"
    )
    wall, cpu = time.perf_counter(), time.process_time()
    best = report_steps(rounds)
    report_per_node()
    report_second_order(min(rounds, 3))
    report_gc(best)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    print(f"(ran {wall:.0f} s, {cpu:.0f} s of CPU time)")


if __name__ == "__main__":
    main()
