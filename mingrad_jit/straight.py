"""The straight-line replay: a plan as generated straight-line Python over the ops' scalar
forms, for deep, narrow graphs, where a numpy call per handful of nodes costs more than the
nodes themselves. Its numbers are eager mode's, as the level replay's are (an op that masks
passes 0 where term × upstream is nan, through ``mingrad_core.masked``)."""

from __future__ import annotations

import functools
import types
from array import array
from collections.abc import Callable

import numpy as np

from mingrad_core import OpSpec, masked

from .arrays import gradient_terms
from .codegen import Code, check_count, wrong_count
from .params import Parameters
from .plan import Plan
from .trace import as_float, is_number

SUM_CHUNK = 100  # terms per statement of a sum in generated straight-line code


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
        self.namespace: dict[str, object] = {"_wrong_count": wrong_count, "masked": masked}
        self._careful_names: dict[str, Callable] = {}  # a form's name: its careful version
        self._careful: dict[Callable, Callable] = {}  # generated code: the same, careful
        code = Code(self.namespace, "def forward(v):")
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

    def _bind(self, code: Code, name: str, form: Callable, careful: Callable) -> str:
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
        code = Code(self.namespace, "def backward(v, seed):")
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
                check_count(code, "gradient", spec.name, len(ins), indent=1)
                terms = [f"t[{k}]" for k in range(len(ins))]
                if spec.masks is True:  # relu, where, pick: 0 * nan is 0 where they mask
                    code("m = t", 1)
                elif spec.masks:  # pow: its own masks
                    code(f"m = {code.bind(f'masks_{spec.name}', spec.masks)}({args})", 1)
            for k, i in enumerate(ins):
                if not needs[i]:
                    continue
                if spec is not None and spec.masks:
                    term = f"masked(m[{k}], t[{k}], g{out})"
                else:
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


def _emit_sum(code: Code, out: int, ins: tuple[int, ...]) -> None:
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
