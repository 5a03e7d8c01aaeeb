"""Scalar code, array speed: trace a function once, replay it as numpy array code.

``@jit`` wraps a function written exactly as for eager mode (Scalars, registered ops, modules).

- What is traced: the first call for each argument structure (the nesting and lengths of its
  arguments) runs the function eagerly on stand-ins for its numbers and records the graph
  its outputs depend on. ``plan`` folds ``sum()`` chains into n-ary sums, levels and groups
  the nodes (one numpy call per group of same-op nodes of a level; ``linear`` layers as matrix
  products); ``replay`` writes the groups out once as Python source over numpy and compiles
  it (one call per forward, one per backward from each root), or generates straight-line code
  over the ops' scalar forms for deep, narrow graphs.
- What is fed on every call: every number in the arguments, including numbers mixed into
  expressions as constants (labels in ``-y * score``), and the current ``.data`` of every
  parameter (a leaf Scalar made outside the function that the outputs depend on; a Scalar
  computed outside is computed again from its leaves). Constants written in the function
  itself (``1.0 / len(xs)``) are kept. The cache key is the arguments' nesting, lengths and
  container types. On a method, each instance gets its own jitted function, ``self`` bound.
- What comes back: ``Result`` objects (``.data``, ``.backward()``) in the structure returned;
  ``backward()`` adds into the parameters' ``.grad`` exactly as eager ``backward()`` does.
- Threads: one trace at a time in a process (a thread that needs a structure being traced
  waits for it); each thread replays into buffers of its own, so calls at once never mix.
- What is refused: reading a value while tracing (``s.data``, ``float(s)``, ``if``/comparisons/
  ``int()``/``%``/numpy functions on an argument's number, an op on numbers alone, gradients
  as numbers from ``backward()`` or ``grad()``) raises ``TracedValueError`` naming the line,
  since a replay would follow the branch the trace saw whatever the new values. Compute with
  ops (``x.relu()``, ``b + (a - b).relu()`` for a maximum) instead; inside, take gradients
  with ``grad(..., create_graph=True)``.

Replays equal eager results to within rounding (matrix products, and the contributions to a
parameter's gradient, may add in another order); IEEE special values propagate as in eager
mode. Ops without array forms are looped over their scalar forms.
"""

# fmt: off
from .function import JitFunction, Result, StaleResultError, TraceInfo, jit
from .trace import JitArgumentError, JitOutputError, TracedNumber, TracedValueError
from .vmap import VmapArgumentError, Vmapped, vmap

__all__ = [
    "JitArgumentError", "JitFunction", "JitOutputError", "Result", "StaleResultError",
    "TraceInfo", "TracedNumber", "TracedValueError", "VmapArgumentError", "Vmapped", "jit",
    "vmap",
]
