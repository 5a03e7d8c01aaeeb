"""Replaying a plan: the back end that suits its shape.

``LevelReplay`` (``levels``) runs each group of same-op nodes of a level as a numpy call over
generated code; ``StraightReplay`` (``straight``) is generated straight-line Python over the
ops' scalar forms, for deep, narrow graphs. ``make_replay`` picks one by estimated time. Both
equal eager mode within rounding (see ``levels``).
"""

from __future__ import annotations

from .levels import LevelReplay
from .plan import Plan
from .straight import StraightReplay

# Rough costs on CPython + numpy, to choose a strategy: a numpy call, a gathered element, one
# node of generated code and one of its inputs (forward and backward together).
CALL_SECONDS = 4e-6
ELEMENT_SECONDS = 1e-8
CODE_NODE_SECONDS = 6e-7
CODE_EDGE_SECONDS = 1.5e-7


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
