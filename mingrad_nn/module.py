"""Module, Neuron, Layer and MLP: neural networks built from Scalars and registered ops."""

from __future__ import annotations

import numbers
import random
import reprlib
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

from mingrad_core import Scalar, get_op, ops

from .parameters import bulk, in_bulk

Seed = int | random.Random | None


def _rng(seed: Seed) -> random.Random:
    if isinstance(seed, random.Random):
        return seed
    return random.Random(seed)


def _activation(name: str | None):
    """The registered unary op called ``name``; ``None`` means linear."""
    if name is None:
        return None
    available = sorted(n for n, s in ops().items() if s.arity == 1 and not s.variadic)
    if name not in available:
        raise ValueError(
            f"unknown activation {name!r}; expected the name of a registered one-input op: "
            f"{', '.join(available)}"
        )
    return get_op(name)


def _prefix_names(module: Module, prefix: str) -> None:
    """Put ``prefix.`` before each of ``module``'s parameter names (``w2`` -> ``N3.w2`` ->
    ``L1.N3.w2``), so that drawings and tables tell neurons and layers apart."""
    for p in module.parameters():
        p.name = f"{prefix}.{p.name}"


def _layer_sizes(nouts: object) -> list[int]:
    """``nouts`` as a list of ints, or an error saying what an MLP expects."""
    expected = "an MLP's nouts lists its layer sizes: at least one layer, each a positive int"
    got = f"such as [16, 16, 1]; got {type(nouts).__name__} {reprlib.repr(nouts)}"
    if not isinstance(nouts, Sequence) or isinstance(nouts, str | bytes):
        raise TypeError(f"{expected}, {got}")
    if any(not isinstance(n, numbers.Integral) or isinstance(n, bool) for n in nouts):
        raise TypeError(f"{expected}, {got}")
    if not nouts or min(nouts) < 1:
        raise ValueError(f"{expected}, {got}")
    return [int(n) for n in nouts]


_building = threading.local()  # .depth: how many Layers/MLPs this thread is building


@contextmanager
def _parts() -> Iterator[None]:
    """While a Layer or MLP builds its parts, which leave bulk parameters to it."""
    _building.depth = getattr(_building, "depth", 0) + 1
    try:
        yield
    finally:
        _building.depth -= 1


class Module:
    """Something with parameters: Scalars that training adjusts.

    ``Neuron``, ``Layer`` and ``MLP`` keep their parameters in bulk: one ``ParameterStore``
    per model holds every value and gradient in an array (see ``mingrad_nn.parameters``).
    """

    def parameters(self) -> list[Scalar]:
        """Every trainable Scalar, in a fixed order."""
        return []

    def zero_grad(self) -> None:
        """Set every parameter's gradient to zero before the next backward pass."""
        params = self.parameters()
        pairs = in_bulk(params)
        if pairs is not None:
            for store, at in pairs:
                store.grads[at] = 0.0
            return
        for p in params:
            p.grad = 0.0

    def _bulk(self) -> None:
        """Move the parameters into one new store (unless a Layer or MLP is building this)."""
        if not getattr(_building, "depth", 0):
            self.parameter_store, moved = bulk(self.parameters())
            self._adopt(iter(moved))

    def _adopt(self, parameters: Iterator[Scalar]) -> None:
        """Take the next parameters, in ``parameters()`` order, in place of the own."""


class Neuron(Module):
    """``activation(w · x + b)``; weights drawn uniformly from [-1, 1], bias 0.

    ``w · x + b`` is one node of the graph (the op ``linear``) rather than a chain of
    multiplications and additions: the same gradients, with far fewer nodes to build,
    backpropagate, and draw.
    """

    def __init__(self, nin: int, activation: str | None = "relu", seed: Seed = None) -> None:
        if not isinstance(nin, int) or nin < 1:
            raise ValueError(f"a Neuron needs a positive number of inputs; got {nin!r}")
        rng = _rng(seed)
        self.w = [Scalar(rng.uniform(-1, 1), name=f"w{i}") for i in range(1, nin + 1)]
        self.b = Scalar(0.0, name="b")  # names show in drawings
        self.activation = activation
        self._act = _activation(activation)
        self._linear = get_op("linear")
        self._bulk()

    def _adopt(self, parameters: Iterator[Scalar]) -> None:
        self.w = [next(parameters) for _ in self.w]
        self.b = next(parameters)

    def __call__(self, x: Sequence[Scalar | float]) -> Scalar:
        if len(x) != len(self.w):
            raise ValueError(f"this Neuron takes {len(self.w)} inputs; got {len(x)}")
        out = self._linear(self.b, *self.w, *x)  # b + Σ wi·xi as one node
        return self._act(out) if self._act is not None else out

    def parameters(self) -> list[Scalar]:
        return [*self.w, self.b]

    def __repr__(self) -> str:
        return f"Neuron(nin={len(self.w)}, activation={self.activation!r})"


class Layer(Module):
    """``nout`` neurons over the same inputs; calling it always returns a list."""

    def __init__(self, nin: int, nout: int, activation: str | None = "relu", seed: Seed = None):
        if not isinstance(nout, int) or nout < 1:
            raise ValueError(f"a Layer needs a positive number of outputs; got {nout!r}")
        rng = _rng(seed)
        with _parts():
            self.neurons = [Neuron(nin, activation, rng) for _ in range(nout)]
        for i, neuron in enumerate(self.neurons, 1):
            _prefix_names(neuron, f"N{i}")
        self._bulk()

    def _adopt(self, parameters: Iterator[Scalar]) -> None:
        for neuron in self.neurons:
            neuron._adopt(parameters)

    def __call__(self, x: Sequence[Scalar | float]) -> list[Scalar]:
        return [n(x) for n in self.neurons]

    def parameters(self) -> list[Scalar]:
        params: list[Scalar] = []
        for neuron in self.neurons:  # extending a list: the loop runs on every training step
            params += neuron.parameters()
        return params

    def __repr__(self) -> str:
        first = self.neurons[0]
        return (
            f"Layer(nin={len(first.w)}, nout={len(self.neurons)}, activation={first.activation!r})"
        )


class MLP(Module):
    """A multi-layer perceptron: ``activation`` after every layer but the last, which is linear.

    ``nouts`` lists the layers' sizes (``[16, 16, 1]``); ``activation=None`` makes every layer
    linear. Returns a Scalar when the last layer has one output, else a list.
    """

    def __init__(
        self, nin: int, nouts: Sequence[int], activation: str | None = "relu", seed: Seed = None
    ) -> None:
        nouts = _layer_sizes(nouts)
        rng = _rng(seed)
        sizes = [nin, *nouts]
        last = len(nouts) - 1
        _activation(activation)  # fail here, with the list of choices, even for one layer
        self.nin, self.nouts, self.activation = nin, nouts, activation
        with _parts():
            self.layers = [
                Layer(sizes[i], sizes[i + 1], activation if i < last else None, rng)
                for i in range(len(nouts))
            ]
        for i, layer in enumerate(self.layers, 1):
            _prefix_names(layer, f"L{i}")
        self._bulk()

    def _adopt(self, parameters: Iterator[Scalar]) -> None:
        for layer in self.layers:
            layer._adopt(parameters)

    def __call__(self, x: Sequence[Scalar | float]) -> Scalar | list[Scalar]:
        for layer in self.layers:
            x = layer(x)
        return x[0] if len(x) == 1 else x

    def parameters(self) -> list[Scalar]:
        params: list[Scalar] = []
        for layer in self.layers:
            params += layer.parameters()
        return params

    def __repr__(self) -> str:
        return (
            f"MLP(nin={self.nin}, nouts={self.nouts}, activation={self.activation!r}, "
            f"parameters={len(self.parameters())})"
        )
