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
  container types. On a method, each instance gets its own jitted function, ``self`` bound
  (on a classmethod, each class; a staticmethod binds nothing); a copy of the instance
  (``copy``, ``deepcopy``, ``pickle``) gets its own on first use.
- Guards (``guards``, as torch.compile's): before each replay, what the trace read from outside
  is checked: the globals and closure cells the function names (and those of the plain
  functions among them), the attributes its code names on captured objects and on ``self``
  (class attributes and ``__slots__`` too; a user module's globals), the methods, properties
  and ``__call__`` of theirs that it runs, followed likewise, the items of captured lists,
  dicts and arrays, and the op table; numbers by value (-0.0 is not 0.0), anything else by
  identity. A change (``model = MLP(...)`` run again in a notebook, ``alpha = 10``,
  ``self.w = Scalar(...)``, ``weights[0] = 2.0``, an op registered anew) traces again. A
  function that changes that state while it is traced (a parameter made on the first call) is
  traced once more; if it changes it every time, ``TracedStateError`` names the variable.
  State further away (``model.layers[0].w`` rebound, items of nested lists) is not guarded.
- The cache keeps ``cache_size`` traces (``jit(f, cache_size=...)``, default
  ``mingrad_jit.CACHE_SIZE``, 32, read when a function is jitted), least recently used out; a
  function that has traced ``mingrad_jit.RETRACE_WARNING`` (8) times warns once, naming what
  changed (an argument's shape, a guarded variable); with a ``cache_size`` of your own, it
  warns once a trace has to be dropped instead.
- What comes back: ``Result`` objects (``.data``, ``.backward()``; formatted, ``float()`` and
  compared with ``< <= > >=`` as a Scalar is) in the structure returned;
  ``backward()`` adds into the parameters' ``.grad`` exactly as eager ``backward()`` does, all
  or nothing (interrupted part-way, every ``.grad`` is left as it was).
- Threads: one trace at a time in a process (a thread that needs a structure being traced
  waits for it); each thread replays into buffers of its own, so calls at once never mix.
- What is refused: reading a value while tracing (``s.data``, ``s.grad``, ``float(s)``,
  ``if``/comparisons/``int()``/``%``/numpy functions on an argument's number,
  ``isinstance()`` of an argument's number, an op on numbers alone, gradients as numbers from
  ``backward()`` or ``grad()``) raises ``TracedValueError`` naming the line, since a replay
  would follow the branch the trace saw whatever the new values; so does drawing numbers
  from ``random`` or ``numpy.random`` (a replay would repeat the trace's draws: pass a dropout
  mask in as an argument). Compute with ops (``x.relu()``, ``b + (a - b).relu()`` for a
  maximum) instead; inside, take gradients with ``grad(..., create_graph=True)``.
  ``type(x)`` of an argument's number cannot be refused: it is ``TracedNumber`` while tracing.
- Memory: a large, deep trace (from ``tape.TAPE_NODES`` nodes, few per level) replays from a
  flat tape instead of generated code (``strategy="tape"``), within a few times eager mode's
  memory (``benchmarks/jit_memory.py``).

Replays equal eager results to within rounding (matrix products, and the contributions to a
parameter's gradient, may add in another order); IEEE special values propagate as in eager
mode. Ops without array forms are looped over their scalar forms.
"""

# fmt: off
from .function import JitFunction, Result, StaleResultError, TraceInfo, jit
from .trace import (JitArgumentError, JitOutputError, TracedNumber, TracedStateError,
                    TracedValueError)
from .vmap import VmapArgumentError, Vmapped, vmap

__all__ = [
    "JitArgumentError", "JitFunction", "JitOutputError", "Result", "StaleResultError",
    "TraceInfo", "TracedNumber", "TracedStateError", "TracedValueError", "VmapArgumentError",
    "Vmapped", "jit", "vmap",
]

# Defaults for jitted functions made from now on (set them here: mingrad_jit.CACHE_SIZE = 64).
CACHE_SIZE = 32  # traces kept per jitted function (per instance, on a method), least recent out
RETRACE_WARNING = 8  # warn (once per jitted function) when it has traced this many times,
# unless cache_size was given: then the warning waits until a trace has to be dropped
