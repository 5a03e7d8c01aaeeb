"""What an op is (``OpSpec``), checked once when it is made, with errors that name the field."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any, Literal, NamedTuple

from pydantic import ConfigDict, Field, ValidationError, model_validator
from pydantic.dataclasses import dataclass

from . import engine

UNARY = ("neg", "abs")  # the Python operators of one input


@dataclass(frozen=True, kw_only=True, config=ConfigDict(extra="forbid"))
class OpSpec:
    """One op as a plugin declares it: how to compute it, differentiate it and draw it.

    ``gradient(*inputs, out)`` returns one term per input: d(out)/d(input). Written in plain
    arithmetic (or with ``mingrad_core.functional``) it works on floats and on Scalars alike,
    which is what makes higher-order gradients work. An op without ``gradient`` is a composite:
    its ``forward`` is built from other ops and is differentiated through them.

    A frozen pydantic dataclass, not a model: its fields are checked once, at construction,
    and read as plain attributes (a model's ``__getattr__`` would slow every read on the hot
    path, where the engine reads ``forward`` and ``gradient`` once per node).
    """

    name: str = Field(pattern=r"^[A-Za-z][A-Za-z0-9_]*$")
    arity: int = Field(ge=1)
    variadic: bool = Field(default=False, description="takes arity or more inputs")
    forward: Callable[..., Any]
    gradient: Callable[..., Any] | None = None
    operator: Literal["+", "-", "*", "/", "**", "neg", "abs", "linear"] | None = Field(
        default=None,
        description="the Python operator the op computes (neg: unary minus, abs: abs()); or "
        "linear, for a variadic op computing b + Σ wi·xi from (b, w1..wn, x1..xn) left to "
        "right, in which create_graph=True sums each node's gradient as one node",
    )
    label: str = Field(default="", description="how drawings show the op; defaults to the name")
    domain: tuple[tuple[float, float], ...] | None = Field(
        default=None, description="per input, the (low, high) range the gradient checker samples"
    )
    doc: str = ""
    masks: bool | Callable[..., Any] = Field(
        default=False,
        description="where the op passes nothing back to an input, that input gets 0.0 where "
        "term × upstream would be nan (0 × inf, 0 × nan), as PyTorch's relu and where give; "
        "a finite upstream gives the same numbers either way. True: the mask is the term (every "
        "zero term masks: relu, where, pick). Or a function of the inputs and the output, as "
        "gradient, one value per input, 0 where the input is masked, in plain arithmetic (it "
        "also runs on Scalars and numpy arrays); pow's is (b, 1.0): the base where the exponent "
        "is 0. Where the mask is 0 the term must be 0 too. A variadic op's can only be True",
    )
    array_forward: Callable[..., Any] | None = Field(
        default=None,
        description="forward on numpy arrays, elementwise (a variadic op: one 2-D block, a row "
        "per input); used by mingrad_jit",
    )
    array_gradient: Callable[..., Any] | None = Field(
        default=None,
        description="gradient on numpy arrays: the inputs and the output in, one array per "
        "input out; used by mingrad_jit",
    )

    @model_validator(mode="after")
    def _consistent(self) -> OpSpec:
        if not self.label:
            object.__setattr__(self, "label", self.name)
        if self.operator is not None and self.variadic != (self.operator == "linear"):
            raise ValueError(
                "operator 'linear' needs a variadic op"
                if self.operator == "linear"
                else "a variadic op cannot be bound to an operator"
            )
        unary = self.operator in UNARY
        if self.operator not in (None, "linear") and unary != (self.arity == 1):
            raise ValueError(
                f"operator {self.operator!r} needs arity {1 if unary else 2}, not {self.arity}"
            )
        if self.domain is not None:
            if len(self.domain) != self.arity:
                raise ValueError(f"domain has {len(self.domain)} range(s) for arity {self.arity}")
            if any(not lo < hi for lo, hi in self.domain):
                raise ValueError(f"each domain range needs low < high; got {self.domain}")
        _check_signature("forward", self.forward, self.arity)
        if self.gradient is not None:
            _check_signature("gradient", self.gradient, self.arity + 1)
        if callable(self.masks):
            if self.variadic:
                raise ValueError("a variadic op's masks can only be True or False")
            _check_signature("masks", self.masks, self.arity + 1)
        return self

    def __call__(self, *args):
        """Apply the op: a Scalar if any argument is a Scalar, else a plain float."""
        return engine.apply(self, args)


def _check_signature(field: str, fn: Callable, count: int) -> None:
    try:
        signature = inspect.signature(fn)
    except (TypeError, ValueError):  # some builtins have none to check
        return
    try:
        signature.bind(*range(count))
    except TypeError:
        raise ValueError(
            f"{field} must accept {count} positional argument(s); its signature is {signature}"
        ) from None


class Origin(NamedTuple):
    """Where an op came from."""

    plugin: str
    distribution: str | None = None
    version: str | None = None

    def __str__(self) -> str:
        dist = f", distribution {self.distribution} {self.version}" if self.distribution else ""
        return f"plugin {self.plugin!r}{dist}"


class OpRegistrationError(ValueError):
    """An op could not be registered; the registry is unchanged."""


def as_spec(spec: object, fields: dict, origin: Origin) -> OpSpec:
    """``spec``, or an OpSpec made from ``fields``; an invalid one raises, naming each field."""
    if spec is None:
        try:
            return OpSpec(**fields)
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(map(str, e['loc']))}: {e['msg']} (got {e['input']!r:.60})"
                if e["loc"]
                else e["msg"]
                for e in exc.errors()
            )
            raise OpRegistrationError(
                f"invalid op {fields.get('name', '?')!r} from {origin}: {problems}"
            ) from None
    if not isinstance(spec, OpSpec) or fields:
        raise OpRegistrationError(
            f"{origin} registered {spec!r:.60}; expected register(OpSpec(...)) "
            f"or register(name=..., arity=..., forward=..., ...)"
        )
    return spec
